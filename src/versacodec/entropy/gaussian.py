"""Conditional Gaussian (mean-scale) model for latents: y ~ N(μ, σ²) convolved with U(−½, ½).

Coding sends round(y − μ) with the zero-mean table of the scale-table entry nearest σ; μ and σ
come from networks run in exact fixed-point mode, so the decoder picks the same entries.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from versacodec.entropy.factorized import LIKELIHOOD_BOUND
from versacodec.entropy.range_coder import SymbolReader, SymbolWriter, TableSet
from versacodec.entropy.tables import default_scale_table, gaussian_tables

TABLE_WIDTH = 1160  # fits ±9σ for the largest default scale (64)


def _standard_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(-x / math.sqrt(2.0))


class GaussianConditional(nn.Module):
    def __init__(self, scale_table: torch.Tensor | None = None) -> None:
        super().__init__()
        table = default_scale_table() if scale_table is None else scale_table.double()
        self.register_buffer("scale_table", table)
        # Geometric midpoints: a scale maps to the table entry nearest in log-space.
        self.register_buffer("scale_boundaries", torch.sqrt(table[1:] * table[:-1]))
        # The coding tables follow from the scale table and are stored with the weights. A model
        # loaded from its weights reads them; a new one computes them when first needed (to code,
        # or to save them), since computing takes scipy, a third of a second to import.
        self.register_buffer("pmf", torch.zeros(len(table), TABLE_WIDTH, dtype=torch.int32))
        self.register_buffer("pmf_length", torch.zeros(len(table), dtype=torch.int32))
        self.register_buffer("pmf_offset", torch.zeros(len(table), dtype=torch.int32))
        self._tables_ready = False
        self._tables: TableSet | None = None
        self.register_state_dict_pre_hook(lambda module, prefix, keep_vars: module._ready_tables())

    def _ready_tables(self) -> None:
        if not self._tables_ready:
            for buffer, values in zip((self.pmf, self.pmf_length, self.pmf_offset),
                                      gaussian_tables(self.scale_table, TABLE_WIDTH), strict=True):
                buffer.copy_(values)
            self._tables_ready = True

    @property
    def lower_bound(self) -> float:
        return float(self.scale_table[0])

    def likelihood(self, y: torch.Tensor, scales: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
        scales = scales.clamp_min(self.lower_bound)
        distance = (y - means).abs()
        upper = _standard_normal_cdf((0.5 - distance) / scales)
        lower = _standard_normal_cdf((-0.5 - distance) / scales)
        return (upper - lower).clamp_min(LIKELIHOOD_BOUND)

    def forward(self, y: torch.Tensor, scales: torch.Tensor, means: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (ŷ for the synthesis: straight-through rounding around μ, likelihoods: noisy y)."""
        if self.training:
            noisy = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        else:
            noisy = torch.round(y - means) + means
        rounded = torch.round(y - means).detach() + means + (y - y.detach())
        return rounded, self.likelihood(noisy, scales, means)

    def scale_indices(self, scales: torch.Tensor) -> np.ndarray:
        return torch.bucketize(scales.double(), self.scale_boundaries).cpu().numpy()

    def tables(self) -> TableSet:
        if self._tables is None:
            self._ready_tables()
            self._tables = TableSet(self.pmf, self.pmf_length, self.pmf_offset)
        return self._tables

    def write(self, writer: SymbolWriter, y: torch.Tensor, scales: torch.Tensor, means: torch.Tensor,
              mask: torch.Tensor | None = None) -> torch.Tensor:
        """Code the elements of y where `mask` is true (all when None); returns ŷ there (else 0)."""
        symbols = torch.round(y.double() - means).to(torch.int64)
        selected = slice(None) if mask is None else mask.cpu().numpy()
        writer.write(symbols.cpu().numpy()[selected], self.scale_indices(scales)[selected], self.tables())
        y_hat = symbols.double() + means
        return y_hat if mask is None else torch.where(mask, y_hat, torch.zeros_like(y_hat))

    def read(self, reader: SymbolReader, scales: torch.Tensor, means: torch.Tensor,
             mask: torch.Tensor | None = None) -> torch.Tensor:
        indices = self.scale_indices(scales)
        if mask is None:
            symbols = torch.from_numpy(reader.read(indices, self.tables()))
            return symbols.double() + means
        selected = mask.cpu().numpy()
        symbols = np.zeros(indices.shape, dtype=np.int64)
        symbols[selected] = reader.read(indices[selected], self.tables())
        y_hat = torch.from_numpy(symbols).double() + means
        return torch.where(mask, y_hat, torch.zeros_like(y_hat))

    def _load_from_state_dict(self, *args, **kwargs):
        self._tables, self._tables_ready = None, True
        super()._load_from_state_dict(*args, **kwargs)
