"""Tiles, so that a network's memory is bounded by the tile rather than the image.

`tiled_map`: overlapping tiles with linear blending, for denoising and decoding images larger
than memory or than the sizes the networks saw in training. `tiled_exact`: tiles read with a halo
at least the network's receptive field and cropped back, with no blending, so that every output
value is computed from the same inputs as without tiles (the same bits for the latent codec's
exact fixed-point networks; float networks within rounding)."""

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


def tiled_exact(function: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor], tile: int, halo: int,
                scales: Sequence[int], output_scale: int) -> torch.Tensor:
    """`function` over tiles of a grid of units, each tile read with `halo` units of context on
    every side and its output cropped to the tile. Input i has `scales[i]` values per unit along
    each side, the output `output_scale` (so strided and transposed convolutions keep their phase
    when a unit is a multiple of their stride). `halo` must cover the network's receptive field in
    units: then every kept output value sees exactly what it sees untiled. Runs whole when the grid
    fits in one tile; `function` may then also take inputs of any size."""
    height, width = (size // scales[0] for size in inputs[0].shape[-2:])
    if height <= tile and width <= tile:
        return function(*inputs)
    output = None
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            window = (max(top - halo, 0), min(top + tile + halo, height), max(left - halo, 0),
                      min(left + tile + halo, width))
            result = function(*(x[..., window[0] * scale : window[1] * scale, window[2] * scale : window[3] * scale]
                                for x, scale in zip(inputs, scales, strict=True)))
            if output is None:
                output = result.new_empty((*result.shape[:-2], height * output_scale, width * output_scale))
            rows = slice((top - window[0]) * output_scale, (min(top + tile, height) - window[0]) * output_scale)
            cols = slice((left - window[2]) * output_scale, (min(left + tile, width) - window[2]) * output_scale)
            output[..., top * output_scale : min(top + tile, height) * output_scale,
                   left * output_scale : min(left + tile, width) * output_scale] = result[..., rows, cols]
    return output
