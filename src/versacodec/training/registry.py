"""The training stages `versacodec train STAGE` runs: each a class with its config dataclass as
`config_class`, imported when its name is looked up."""

from __future__ import annotations

from versacodec.registry import Registry

STAGES: Registry[type] = Registry("training stage", {
    "autoencoder": "versacodec.training.stages.autoencoder:AutoencoderStage",
    "latent_codec": "versacodec.training.stages.latent_codec:LatentCodecStage",
    "prior": "versacodec.training.stages.prior:PriorStage",
    "control": "versacodec.training.stages.control:ControlStage",
    "pixel_decoder": "versacodec.training.stages.pixel_decoder:PixelDecoderStage",
})
