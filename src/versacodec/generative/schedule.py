"""Noise schedule and deterministic DDIM updates on top of a diffusers scheduler config.

Our own update keeps sampling exact and simple: any descending list of timesteps (a full
trajectory, or a short one that starts from the compressed latent noised to an intermediate
timestep), eta = 0, and x0-, epsilon- or v-prediction as the scheduler config says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from diffusers import DDIMScheduler

# Stable Diffusion's "scaled_linear" schedule, which the prior trained here uses too.
TRAIN_TIMESTEPS = 1000
BETA_START = 0.00085
BETA_END = 0.012


class NoiseSchedule:
    def __init__(self, scheduler: DDIMScheduler) -> None:
        self.config = scheduler.config
        self.prediction_type = scheduler.config.prediction_type
        self.alphas_cumprod = scheduler.alphas_cumprod.double()
        self.num_train_timesteps = int(scheduler.config.num_train_timesteps)

    def alpha(self, timesteps: torch.Tensor) -> torch.Tensor:
        """ᾱ_t as (B, 1, 1, 1) float32; t = −1 means the clean signal (ᾱ = 1)."""
        t = timesteps.long().cpu()
        values = torch.where(t >= 0, self.alphas_cumprod[t.clamp_min(0)], torch.ones((), dtype=torch.float64))
        return values.float().view(-1, 1, 1, 1).to(timesteps.device)

    def add_noise(self, clean: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha(timesteps)
        return alpha.sqrt() * clean + (1 - alpha).sqrt() * noise

    def target(self, clean: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """What the denoiser is trained to output."""
        if self.prediction_type == "epsilon":
            return noise
        if self.prediction_type == "sample":
            return clean
        alpha = self.alpha(timesteps)
        return alpha.sqrt() * noise - (1 - alpha).sqrt() * clean  # v-prediction

    def split(self, noisy: torch.Tensor, output: torch.Tensor, timesteps: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Model output at x_t → (x0 estimate, epsilon estimate)."""
        alpha = self.alpha(timesteps)
        a, s = alpha.sqrt(), (1 - alpha).sqrt()
        if self.prediction_type == "epsilon":
            return (noisy - s * output) / a, output
        if self.prediction_type == "sample":
            return output, (noisy - a * output) / s.clamp_min(1e-8)
        return a * noisy - s * output, s * noisy + a * output

    def ddim_step(self, noisy: torch.Tensor, output: torch.Tensor, timestep: int, previous: int) -> torch.Tensor:
        clean, noise = self.split(noisy, output, torch.tensor([timestep], device=noisy.device))
        alpha_prev = self.alpha(torch.tensor([previous], device=noisy.device))
        return alpha_prev.sqrt() * clean + (1 - alpha_prev).sqrt() * noise

    def trajectory(self, steps: int, start: int) -> list[int]:
        """`steps` evenly spaced timesteps from `start` down towards 0 (then −1 = clean)."""
        if steps < 1:
            raise ValueError("steps must be at least 1")
        points = torch.linspace(start, 0, steps + 1)[:-1].round().long().tolist()
        return sorted(set(points), reverse=True)
