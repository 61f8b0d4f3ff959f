"""The one interface every latent space offers to the rest of versacodec.

Images are float tensors (N, 3, H, W) in [0, 1] with H and W divisible by `factor`; latents are
(N, channels, H/factor, W/factor), normalised to roughly zero mean and unit variance per channel
so the latent codec and the diffusion prior see the same scale whatever the autoencoder.

A bundle names its latent space's class in bundle.json and the codec loads it with
`from_pretrained(folder)`; `peak_channels_per_pixel` sizes the codec's memory estimate.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class LatentSpace(Protocol):
    name: str

    @property
    def factor(self) -> int: ...

    @property
    def channels(self) -> int: ...

    @property
    def peak_channels_per_pixel(self) -> float:
        """The widest activation of encoder or decoder, in channels per image pixel (a layer of C
        channels at 1/s resolution counts C / s²)."""
        ...

    def encode(self, images: torch.Tensor) -> torch.Tensor: ...

    def decode(self, latents: torch.Tensor) -> torch.Tensor: ...
