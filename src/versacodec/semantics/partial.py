"""Partial streams' decoding: the latent that was sent stays, the prior composes the rest.

A partial stream keeps only a task's region section (DISCOVER's partial transmission; see
`versacodec.codec.layout.extract`): the hyperprior, region map and tags stay, so it decodes to a
whole image, the missing latent predicted from the hyperprior and composed by the generative
decoder. `keep_sent_regions` keeps the latent that was sent as it was decoded: the prior composes
only what was dropped (re-generating the sent regions too cost 1.2 mAP,
docs/experiments/model-history-v1-v3.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def keep_sent_regions(decoded: torch.Tensor, generated: torch.Tensor, sent: torch.Tensor) -> torch.Tensor:
    """`decoded` (1, C, h, w) where a partial stream's latent was `sent` ((h', w') bool on y's
    coarser grid), `generated` elsewhere, cross-faded over one latent cell so no seam shows."""
    scale = decoded.shape[-1] // sent.shape[-1]
    mask = F.interpolate(sent[None, None].to(decoded.dtype), scale_factor=scale, mode="nearest")
    mask = F.avg_pool2d(mask, 3, stride=1, padding=1, count_include_pad=False)
    return mask * decoded + (1 - mask) * generated
