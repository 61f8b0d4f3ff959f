"""Generative decoder (Diff-ICMH): a frozen latent diffusion prior, a ControlNet-style control
branch fed by the decoded compressed latent, tag conditioning with classifier-free guidance,
DDIM multi-step and one-step sampling, and tiling for large images."""
