"""Stage name → (config dataclass, stage class); what `versacodec train STAGE` can run."""

from __future__ import annotations

from versacodec.training.stages.autoencoder import AutoencoderStage, AutoencoderStageConfig

STAGES: dict[str, tuple[type, type]] = {
    "autoencoder": (AutoencoderStageConfig, AutoencoderStage),
}
