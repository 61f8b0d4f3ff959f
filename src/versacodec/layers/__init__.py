"""Scalable layers: a content-adaptive palette of the latent, refined layer by layer; any prefix
of layers decodes, and the last layer is the full-quality latent-codec stream."""

MAX_LAYERS = 9  # a layered stream's layers, the full one included
