"""A second synthesis transform for partial streams (DISCOVER stage II, decoder side).

A task-only stream leaves parts of y out; the latent codec fills them with its entropy model's
predicted means, which the codec's own synthesis never saw in training. Fine-tuning that
synthesis on randomly dropped regions makes partial decodes better but costs full streams
0.6–1.5 dB (docs/experiments/model-history-v1-v3.md), so the mask-trained copy ships beside it as the bundle's optional
`partial_synthesis` component and decodes only streams that lack sections. It reads the same y
and writes the same latent as `LatentCodec.synthesis`, so it changes no bitstream.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from versacodec.latent_codec.model import LatentCodec
from versacodec.latent_codec.transforms import Synthesis
from versacodec.modeling import PretrainedModule

COMPONENT = "partial_synthesis"


@dataclass(frozen=True)
class PartialSynthesisConfig:
    y_channels: int = 160
    width: int = 192
    latent_channels: int = 16
    blocks: int = 2


class PartialSynthesis(PretrainedModule):
    config_class = PartialSynthesisConfig
    name = "versacodec-partial-synthesis"

    def __init__(self, config: PartialSynthesisConfig) -> None:
        super().__init__(config)
        self.synthesis = Synthesis(config.y_channels, config.width, config.latent_channels, config.blocks)

    @classmethod
    def from_codec(cls, codec: LatentCodec) -> PartialSynthesis:
        """A copy of `codec`'s synthesis (after mask training, the weights to ship)."""
        c = codec.config
        module = cls(PartialSynthesisConfig(c.y_channels, c.width, c.latent_channels, c.blocks))
        module.synthesis.load_state_dict(codec.synthesis.state_dict())
        return module

    def fits(self, codec: LatentCodec) -> bool:
        c = codec.config
        return (self.config.y_channels, self.config.latent_channels) == (c.y_channels, c.latent_channels)

    @torch.no_grad()
    def forward(self, y_hat: torch.Tensor) -> torch.Tensor:
        return self.synthesis(y_hat)
