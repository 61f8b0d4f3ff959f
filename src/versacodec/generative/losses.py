"""Semantic-consistency loss (Diff-ICMH §3.3): features of the frozen denoiser on the original
latent z and on the decoded latent ẑ should agree; by default the mid-block output at t = 0,
compared by cosine similarity per spatial position."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel


@dataclass(frozen=True)
class SemanticLossConfig:
    location: str = "mid"  # "mid" or "down.N" (output of down block N)
    timestep: int = 0
    metric: str = "cosine"  # "cosine" or "mse"


class _Captured(Exception):
    """Raised by the hook to stop the forward pass once the features are in hand."""


def denoiser_features(unet: UNet2DConditionModel, latent: torch.Tensor, tokens: torch.Tensor,
                      config: SemanticLossConfig) -> torch.Tensor:
    if config.location == "mid":
        module = unet.mid_block
    elif config.location.startswith("down."):
        module = unet.down_blocks[int(config.location.split(".", 1)[1])]
    else:
        raise ValueError(f"unknown semantic-loss location {config.location!r}")
    captured: list[torch.Tensor] = []

    def hook(_module, _inputs, output):
        captured.append(output[0] if isinstance(output, tuple) else output)
        raise _Captured

    handle = module.register_forward_hook(hook)
    try:
        timesteps = torch.full((latent.shape[0],), config.timestep, dtype=torch.long, device=latent.device)
        unet(latent, timesteps, encoder_hidden_states=tokens)
    except _Captured:
        pass
    finally:
        handle.remove()
    return captured[0]


def semantic_consistency_loss(unet: UNet2DConditionModel, latent: torch.Tensor, latent_hat: torch.Tensor,
                              tokens: torch.Tensor, config: SemanticLossConfig) -> torch.Tensor:
    """Per-sample loss (B,): negative mean cosine similarity over positions, or the features' MSE."""
    with torch.no_grad():
        target = denoiser_features(unet, latent, tokens, config)
    features = denoiser_features(unet, latent_hat, tokens, config)
    if config.metric == "mse":
        return (features - target).pow(2).flatten(1).mean(1)
    if config.metric != "cosine":
        raise ValueError(f"unknown semantic-loss metric {config.metric!r}")
    return -F.cosine_similarity(features, target, dim=1).flatten(1).mean(1)
