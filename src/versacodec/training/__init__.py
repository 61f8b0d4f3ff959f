"""Staged, resumable training recipes (autoencoder, latent codec, diffusion prior, control)."""
