"""Integer probability tables: built once after training, stored in the model weights.

A table row describes one discrete distribution over the values offset .. offset+length-2;
its last entry is the escape symbol for values outside that range (coded separately, see
`range_coder`). Probabilities are integers summing to 2**PRECISION, each at least 1.
"""

from __future__ import annotations

import math

import numpy as np
import torch

PRECISION = 16
TAIL_MASS = 1e-9


def quantize_pmf(probabilities: np.ndarray) -> np.ndarray:
    """Float pmf (escape last) → int64 counts summing to 2**PRECISION, none zero.

    Deterministic float64 arithmetic at table-building time only; coding reads the result.
    """
    total = 1 << PRECISION
    p = np.maximum(np.asarray(probabilities, dtype=np.float64), 0.0)
    p = p / p.sum()
    counts = np.maximum(np.floor(p * (total - len(p))).astype(np.int64), 0) + 1
    # Hand out what flooring left over to the largest probabilities (stable order).
    leftover = total - int(counts.sum())
    order = np.argsort(-p, kind="stable")
    counts[order[: max(leftover, 0)]] += 1
    while counts.sum() > total:  # only for degenerate tiny alphabets
        largest = int(np.argmax(counts))
        counts[largest] -= counts.sum() - total
    assert counts.sum() == total and counts.min() >= 1
    return counts


def pack_tables(rows: list[np.ndarray], offsets: list[int], width: int) -> tuple[torch.Tensor, ...]:
    """Rows of varying length → (pmf [N, width] int32, length [N] int32, offset [N] int32)."""
    pmf = torch.zeros(len(rows), width, dtype=torch.int32)
    lengths = torch.zeros(len(rows), dtype=torch.int32)
    for index, row in enumerate(rows):
        if len(row) > width:
            raise ValueError(f"table row of {len(row)} entries exceeds width {width}")
        pmf[index, : len(row)] = torch.from_numpy(row.astype(np.int32))
        lengths[index] = len(row)
    return pmf, lengths, torch.tensor(offsets, dtype=torch.int32)


def default_scale_table(minimum: float = 0.11, maximum: float = 64.0, levels: int = 160) -> torch.Tensor:
    """Log-spaced Gaussian scales; fine enough that table quantisation costs well under 1%."""
    return torch.exp(torch.linspace(math.log(minimum), math.log(maximum), levels, dtype=torch.float64))


def gaussian_tables(scale_table: torch.Tensor, width: int) -> tuple[torch.Tensor, ...]:
    """Zero-mean quantised Gaussians, one row per scale; symbols are round(y − μ)."""
    from scipy.special import ndtr

    rows, offsets = [], []
    for scale in scale_table.tolist():
        half = min((width - 2) // 2, max(1, math.ceil(scale * 9.0)))
        values = np.arange(-half, half + 1, dtype=np.float64)
        mass = ndtr((values + 0.5) / scale) - ndtr((values - 0.5) / scale)
        escape = max(2 * ndtr((-half - 0.5) / scale), TAIL_MASS)
        rows.append(quantize_pmf(np.append(mass, escape)))
        offsets.append(-half)
    return pack_tables(rows, offsets, width)
