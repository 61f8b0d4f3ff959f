"""Overlapping tiles with linear blending, for denoising and decoding images larger than memory
or than the sizes the networks saw in training."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from versacodec.progress import stage as progress_stage


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = [*range(0, length - tile, stride), length - tile]
    return sorted(set(starts))


def _ramp(length: int, overlap: int, at_start: bool, at_end: bool) -> torch.Tensor:
    weight = torch.ones(length)
    ramp = torch.linspace(0, 1, overlap + 2)[1:-1] if overlap > 0 else torch.ones(0)
    if not at_start and overlap:
        weight[:overlap] = ramp
    if not at_end and overlap:
        weight[-overlap:] = ramp.flip(0)
    return weight


def tiled_map(function: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor], tile: int, overlap: int,
              scale: int = 1, stage: str | None = None) -> torch.Tensor:
    """Apply `function` to aligned tiles of every tensor in `inputs` (same H, W) and blend the outputs,
    which are `scale` times larger than the inputs. Runs whole when the input fits in one tile.
    `stage`: the name under which the tiles are reported to `versacodec.progress` (None: not reported)."""
    height, width = inputs[0].shape[-2:]
    if height <= tile and width <= tile:
        return function(*inputs)
    output = weights = None
    rows, cols = _starts(height, tile, overlap), _starts(width, tile, overlap)
    done = progress_stage(stage, len(rows) * len(cols)) if stage else None
    for top in rows:
        for left in cols:
            window = [x[..., top : top + tile, left : left + tile] for x in inputs]
            result = function(*window)
            h, w = window[0].shape[-2:]
            weight = (_ramp(h * scale, overlap * scale, top == rows[0], top == rows[-1]).view(-1, 1)
                      * _ramp(w * scale, overlap * scale, left == cols[0], left == cols[-1]).view(1, -1))
            weight = weight.to(result)
            if output is None:
                output = result.new_zeros((*result.shape[:-2], height * scale, width * scale))
                weights = result.new_zeros((height * scale, width * scale))
            region = (..., slice(top * scale, (top + h) * scale), slice(left * scale, (left + w) * scale))
            output[region] += result * weight
            weights[region[1:]] += weight
            if done is not None:
                done()
    return output / weights
