"""Factorized (fully learned, per-channel) density for hyper-latents — Ballé et al. 2018, §6.1.

Training: `forward` returns the straight-through rounded values and the likelihoods of the
noisy values (additive uniform noise). Coding: `build_tables()` once after training freezes
each channel's density into an integer table stored with the weights; `write`/`read` code
round(z) through them.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from versacodec.entropy.range_coder import SymbolReader, SymbolWriter, TableSet
from versacodec.entropy.tables import TAIL_MASS, pack_tables, quantize_pmf

LIKELIHOOD_BOUND = 1e-9


def straight_through_round(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


class FactorizedDensity(nn.Module):
    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3), init_scale: float = 10.0,
                 table_radius: int = 64) -> None:
        super().__init__()
        self.channels, self.table_radius = channels, table_radius
        widths = (1, *filters, 1)
        scale = init_scale ** (1 / (len(widths) - 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(widths) - 1):
            init = math.log(math.expm1(1 / scale / widths[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, widths[i + 1], widths[i]), init)))
            self.biases.append(nn.Parameter(torch.empty(channels, widths[i + 1], 1).uniform_(-0.5, 0.5)))
            if i < len(widths) - 2:
                self.factors.append(nn.Parameter(torch.zeros(channels, widths[i + 1], 1)))
        width = 2 * table_radius + 2
        self.register_buffer("pmf", torch.zeros(channels, width, dtype=torch.int32))
        self.register_buffer("pmf_length", torch.zeros(channels, dtype=torch.int32))
        self.register_buffer("pmf_offset", torch.zeros(channels, dtype=torch.int32))
        self._tables: TableSet | None = None

    def _cumulative_logits(self, values: torch.Tensor) -> torch.Tensor:
        logits = values  # (C, 1, N)
        for i, (matrix, bias) in enumerate(zip(self.matrices, self.biases, strict=True)):
            logits = torch.matmul(F.softplus(matrix), logits) + bias
            if i < len(self.factors):
                logits = logits + torch.tanh(self.factors[i]) * torch.tanh(logits)
        return logits

    def likelihood(self, z: torch.Tensor) -> torch.Tensor:
        values = z.transpose(0, 1).reshape(self.channels, 1, -1)
        lower = self._cumulative_logits(values - 0.5)
        upper = self._cumulative_logits(values + 0.5)
        sign = -torch.sign(lower + upper).detach()
        mass = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        mass = mass.reshape(self.channels, z.shape[0], *z.shape[2:]).transpose(0, 1)
        return mass.clamp_min(LIKELIHOOD_BOUND)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        noisy = z + torch.empty_like(z).uniform_(-0.5, 0.5) if self.training else torch.round(z)
        return straight_through_round(z), self.likelihood(noisy)

    @torch.no_grad()
    def build_tables(self) -> None:
        radius = self.table_radius
        edges = torch.arange(-radius - 1, radius + 1, dtype=torch.float32) + 0.5  # 2R+2 edges
        logits = self._cumulative_logits(edges.view(1, 1, -1).expand(self.channels, 1, -1))
        cdf = torch.sigmoid(logits.double()).squeeze(1).numpy()  # (C, 2R+2)
        rows, offsets = [], []
        for c in range(self.channels):
            mass = np.diff(cdf[c])  # values -R .. R
            keep = np.nonzero(mass > TAIL_MASS)[0]
            first, last = (int(keep[0]), int(keep[-1])) if len(keep) else (radius, radius)
            kept = mass[first : last + 1]
            escape = max(1.0 - kept.sum(), TAIL_MASS)
            rows.append(quantize_pmf(np.append(kept, escape)))
            offsets.append(first - radius)
        self.pmf, self.pmf_length, self.pmf_offset = pack_tables(rows, offsets, self.pmf.shape[1])
        self._tables = None

    def tables(self) -> TableSet:
        if int(self.pmf_length.min()) < 2:
            raise RuntimeError("entropy tables are not built; call build_tables() after training")
        if self._tables is None:
            self._tables = TableSet(self.pmf, self.pmf_length, self.pmf_offset)
        return self._tables

    def _indices(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.broadcast_to(np.arange(self.channels).reshape(1, -1, 1, 1), shape)

    def write(self, writer: SymbolWriter, z: torch.Tensor) -> torch.Tensor:
        symbols = torch.round(z.detach().double().cpu()).to(torch.int64)
        writer.write(symbols.numpy(), self._indices(tuple(symbols.shape)), self.tables())
        return symbols.double()

    def read(self, reader: SymbolReader, shape: tuple[int, ...]) -> torch.Tensor:
        values = reader.read(self._indices(shape), self.tables())
        return torch.from_numpy(values).double()

    def _load_from_state_dict(self, *args, **kwargs):
        self._tables = None
        super()._load_from_state_dict(*args, **kwargs)
