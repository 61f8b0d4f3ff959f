"""Stage name → (config dataclass, stage class); what `versacodec train STAGE` can run."""

from __future__ import annotations

from versacodec.training.stages.autoencoder import AutoencoderStage, AutoencoderStageConfig
from versacodec.training.stages.control import ControlStage, ControlStageConfig
from versacodec.training.stages.latent_codec import LatentCodecStage, LatentCodecStageConfig
from versacodec.training.stages.pixel_decoder import PixelDecoderStage, PixelDecoderStageConfig
from versacodec.training.stages.prior import PriorStage, PriorStageConfig

STAGES: dict[str, tuple[type, type]] = {
    "autoencoder": (AutoencoderStageConfig, AutoencoderStage),
    "latent_codec": (LatentCodecStageConfig, LatentCodecStage),
    "prior": (PriorStageConfig, PriorStage),
    "control": (ControlStageConfig, ControlStage),
    "pixel_decoder": (PixelDecoderStageConfig, PixelDecoderStage),
}
