"""Where an image's content needs bits: the encoder's importance map for a spatially varying rate.

Importance is the energy of frozen EfficientNet-Lite2 features at stride 16 (`metrics.semantic`;
none of the evaluation's judging networks), averaged over blocks of 4 × 4 y cells (64 px): the
blocks where an ImageNet network sees the most are objects and their edges, the ones where it sees
little are sky, walls and road. The top `IMPORTANT_FRACTION` of blocks are coded `IMPORTANCE_DELTA`
qualities finer than the rest; rate control then finds the base quality on the real file size, so
the bits move from background to content. At 0.05 bpp this raised YOLOX-nano's mAP on
coco-val-mini from 13.5 to 14.4 at the same bytes and cost Kodak 0.018 LPIPS (0.410 → 0.428; with
+10 instead of +20 neither gained: docs/experiments/2026-12-04-machine-tasks.md), so streams use it
only when asked (`quality_map="importance"`).

A task stream (`--task`) moves them to its regions instead (`regions_quality_map`, its default:
mAP 13.5 → 16.7 at 0.05 bpp with the detection profile, whose finder is YOLOX-nano itself).
"""

from __future__ import annotations

import math
from functools import cache

import torch
import torch.nn.functional as F

from versacodec.latent_codec.quality_map import QualityMap
from versacodec.metrics.semantic import STAGE_ENDS, Lite2Features

IMPORTANCE_BLOCK = 4  # y cells per block side
IMPORTANT_FRACTION = 0.3
IMPORTANCE_DELTA = 20  # one of the latent codec's six trained rate levels
REGIONS_DELTA = 20
MAX_PIXELS = 1 << 20
_STRIDE_16 = STAGE_ENDS[2]


def quality_map_settings() -> str:
    """The settings that decide the maps, as text (caches of coded streams are keyed by it)."""
    return (f"importance block {IMPORTANCE_BLOCK} top {IMPORTANT_FRACTION} +{IMPORTANCE_DELTA}, "
            f"regions +{REGIONS_DELTA}")


@cache
def _network() -> Lite2Features:
    return Lite2Features((_STRIDE_16,))


@torch.inference_mode()
def importance_quality_map(pixels: torch.Tensor, grid: tuple[int, int]) -> QualityMap:
    """The map for an image ((1, 3, H, W) in [0, 1], as the encoder holds it) whose y has `grid`
    (rows, cols) cells of 16 px. Images above MAX_PIXELS are measured downscaled (bounded memory;
    blocks of large images are large too)."""
    height, width = pixels.shape[-2:]
    scale = min(1.0, math.sqrt(MAX_PIXELS / (width * height)))
    if scale < 1.0:
        size = (max(32, round(height * scale)), max(32, round(width * scale)))
        pixels = F.interpolate(pixels.float(), size=size, mode="bilinear", antialias=True)
    energy = _network()(pixels)[_STRIDE_16].square().sum(1, keepdim=True)
    blocks = QualityMap.block_grid(grid, IMPORTANCE_BLOCK)
    per_block = F.adaptive_avg_pool2d(energy, blocks)[0, 0]
    threshold = torch.quantile(per_block.flatten(), 1.0 - IMPORTANT_FRACTION)
    return QualityMap(IMPORTANCE_BLOCK, IMPORTANCE_DELTA, per_block >= threshold)


def regions_quality_map(masks: tuple[torch.Tensor, ...], grid: tuple[int, int]) -> QualityMap | None:
    """A task stream's map: its region sets' cells ((h, w) bool masks on y's grid), finer; None
    when the task found no region."""
    union = torch.zeros(grid, dtype=torch.bool)
    for mask in masks:
        union |= mask
    return QualityMap.from_mask(union, 1, REGIONS_DELTA) if bool(union.any()) else None
