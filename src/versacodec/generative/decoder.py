"""The generative decoder: decoded compressed latent ẑ (+ tags) → a realistic latent.

Folder layout (diffusers formats where diffusers defines one):
    generative.json   GenerativeConfig
    unet/             frozen base prior (UNet2DConditionModel)
    controlnet/       control branch (ControlNetModel), conditioned on ẑ
    scheduler/        DDIMScheduler config (noise schedule, prediction type)
    tags/             TagEmbedding
    pixel_decoder/    optional: the pixel decoder of generated latents (`versacodec.pixel_decoders`)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import ControlNetModel, DDIMScheduler, UNet2DConditionModel
from torch import nn

from versacodec.errors import ModelError
from versacodec.generative.config import CONFIG_NAME, GenerativeConfig
from versacodec.generative.schedule import BETA_END, BETA_START, TRAIN_TIMESTEPS, NoiseSchedule
from versacodec.generative.tags import TagEmbedding, TagEmbeddingConfig
from versacodec.pixel_decoders import PixelDecoder, load_pixel_decoder
from versacodec.progress import stage
from versacodec.tiling import tiled_map

PIXEL_DECODER = "pixel_decoder"


@dataclass(frozen=True)
class PriorArchitecture:
    """The small base prior trained here (see configs/prior.yaml)."""

    latent_channels: int = 16
    block_out_channels: tuple[int, ...] = (64, 128, 128)
    layers_per_block: int = 1
    cross_attention_dim: int = 128
    attention_head_dim: int = 32

    def build(self) -> UNet2DConditionModel:
        depth = len(self.block_out_channels)
        return UNet2DConditionModel(
            sample_size=32, in_channels=self.latent_channels, out_channels=self.latent_channels,
            layers_per_block=self.layers_per_block, block_out_channels=self.block_out_channels,
            down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (depth - 1),
            up_block_types=("CrossAttnUpBlock2D",) * (depth - 1) + ("UpBlock2D",),
            cross_attention_dim=self.cross_attention_dim, attention_head_dim=self.attention_head_dim)


def default_scheduler() -> DDIMScheduler:
    return DDIMScheduler(num_train_timesteps=TRAIN_TIMESTEPS, beta_schedule="scaled_linear", beta_start=BETA_START,
                         beta_end=BETA_END, prediction_type="v_prediction", clip_sample=False,
                         set_alpha_to_one=True, steps_offset=0)


def control_branch(unet: UNet2DConditionModel) -> ControlNetModel:
    """A trainable copy of the denoiser's encoder with zero-initialised output projections; its
    condition (ẑ, same resolution as the latent) enters through one zero-initialised conv."""
    return ControlNetModel.from_unet(unet, conditioning_channels=unet.config.in_channels,
                                     conditioning_embedding_out_channels=(32,))


class GenerativeDecoder(nn.Module):
    def __init__(self, unet: UNet2DConditionModel, controlnet: ControlNetModel, tags: TagEmbedding,
                 scheduler: DDIMScheduler, config: GenerativeConfig | None = None,
                 pixel_decoder: PixelDecoder | None = None) -> None:
        super().__init__()
        self.unet, self.controlnet, self.tags = unet, controlnet, tags
        self.pixel_decoder = pixel_decoder
        self.scheduler = scheduler
        self.schedule = NoiseSchedule(scheduler)
        self.config = config or GenerativeConfig()

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.unet.save_pretrained(directory / "unet")
        self.controlnet.save_pretrained(directory / "controlnet")
        self.scheduler.save_pretrained(directory / "scheduler")
        self.tags.save_pretrained(directory / "tags")
        if self.pixel_decoder is not None:
            self.pixel_decoder.save_pretrained(directory / PIXEL_DECODER)
        self.config.write(directory)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> GenerativeDecoder:
        directory = Path(directory)
        for part in ("unet", "controlnet", "scheduler", "tags", CONFIG_NAME):
            if not (directory / part).exists():
                raise ModelError(f"generative decoder folder {directory} lacks {part}")
        try:
            # Shipped weights are float16 on disk; computation is float32.
            unet = UNet2DConditionModel.from_pretrained(directory / "unet", local_files_only=True,
                                                        torch_dtype=torch.float32)
            controlnet = ControlNetModel.from_pretrained(directory / "controlnet", local_files_only=True,
                                                         torch_dtype=torch.float32)
            scheduler = DDIMScheduler.from_pretrained(directory / "scheduler", local_files_only=True)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot load the generative decoder from {directory}: {exc}") from exc
        tags = TagEmbedding.from_pretrained(directory / "tags")
        config = GenerativeConfig.read(directory)
        pixel_decoder = (load_pixel_decoder(directory / PIXEL_DECODER)
                         if (directory / PIXEL_DECODER).is_dir() else None)
        return cls(unet.eval(), controlnet.eval(), tags.eval(), scheduler, config, pixel_decoder)

    @classmethod
    def from_stable_diffusion(cls, folder: str | Path, tag_config: TagEmbeddingConfig | None = None
                              ) -> GenerativeDecoder:
        """Base prior and noise schedule from a local diffusers Stable Diffusion folder (unet/,
        scheduler/); the control branch and tag embedding start fresh, to be trained with
        `versacodec train control`. The folder's vae/ is the matching latent space
        (latent_space.sd_vae)."""
        folder = Path(folder)
        if not (folder / "unet").is_dir() or not (folder / "scheduler").is_dir():
            raise ModelError(f"{folder} is not a diffusers Stable Diffusion folder (needs unet/ and scheduler/)")
        try:
            unet = UNet2DConditionModel.from_pretrained(folder / "unet", local_files_only=True)
            scheduler = DDIMScheduler.from_pretrained(folder / "scheduler", local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load Stable Diffusion components from {folder}: {exc}") from exc
        dim = unet.config.cross_attention_dim
        tag_config = tag_config or TagEmbeddingConfig(embedding_dim=dim)
        if tag_config.embedding_dim != dim:
            raise ModelError(f"tag embedding dim {tag_config.embedding_dim} != cross_attention_dim {dim}")
        return cls(unet.eval(), control_branch(unet), TagEmbedding(tag_config), scheduler)

    # ------------------------------------------------------------------ denoising
    def predict(self, noisy: torch.Tensor, timesteps: torch.Tensor, condition: torch.Tensor,
                tokens: torch.Tensor) -> torch.Tensor:
        """One denoiser evaluation (prior + control residuals) → model output (v, ε or x0)."""
        down, mid = self.controlnet(noisy, timesteps, encoder_hidden_states=tokens, controlnet_cond=condition,
                                    return_dict=False)
        return self.unet(noisy, timesteps, encoder_hidden_states=tokens, down_block_additional_residuals=down,
                         mid_block_additional_residual=mid).sample

    def guided(self, noisy: torch.Tensor, timestep: int, condition: torch.Tensor, tags: torch.Tensor,
               cfg: float) -> torch.Tensor:
        """Classifier-free guidance: the empty tag set is the unconditional branch."""
        t = torch.full((noisy.shape[0],), timestep, dtype=torch.long, device=noisy.device)
        tokens = self.tags(tags)
        if cfg == 1.0:
            return self.predict(noisy, t, condition, tokens)
        empty = self.tags(torch.full_like(tags, -1))
        both = self.predict(noisy.repeat(2, 1, 1, 1), t.repeat(2), condition.repeat(2, 1, 1, 1),
                            torch.cat([tokens, empty]))
        conditional, unconditional = both.chunk(2)
        return unconditional + cfg * (conditional - unconditional)

    @torch.no_grad()
    def sample(self, latent_hat: torch.Tensor, tags: list[int], *, steps: int, cfg: float, seed: int = 0,
               start: int | None = None, quality: int | None = None) -> torch.Tensor:
        """ẑ (1, C, h, w) → generated latent. `steps` = 1 is the one-step mode, more run DDIM, from ẑ
        noised to `start` (None: where the config starts a stream of this `quality`, see
        `GenerativeConfig.start_timestep`); 0 steps or a start of 0 return ẑ as it is (it goes to
        the generative pixel decoder). Deterministic given `seed`; large latents are denoised in
        tiles. Settings are taken as given: `DecodeOptions` checks them, and the model's
        `ModelDefaults` fills in `default_steps` and `default_cfg` from this decoder's config."""
        if start is None:
            start = self.config.start_timestep(steps, quality, self.schedule.num_train_timesteps)
        if start == 0 or steps == 0:
            return latent_hat
        generator = torch.Generator().manual_seed(seed)
        noise = torch.randn(latent_hat.shape, generator=generator).to(latent_hat)
        tag_ids = self.tags.pad([tags], device=latent_hat.device)
        sample = self.schedule.add_noise(latent_hat, noise, torch.tensor([start]))
        trajectory = self.schedule.trajectory(steps, start)
        done = stage("denoise", len(trajectory))
        for index, timestep in enumerate(trajectory):
            previous = trajectory[index + 1] if index + 1 < len(trajectory) else -1

            def step(noisy: torch.Tensor, condition: torch.Tensor, t: int = timestep, p: int = previous):
                output = self.guided(noisy, t, condition, tag_ids, cfg)
                return self.schedule.ddim_step(noisy, output, t, p)

            sample = tiled_map(step, (sample, latent_hat), self.config.tile_size, self.config.tile_overlap)
            done()
        return sample
