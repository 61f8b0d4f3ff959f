"""Table-driven coding with constriction's range coder (a queue: decode in encode order).

Symbols are coded in groups that share one table row, which keeps constriction vectorised.
Values outside a row's range are sent as the row's escape symbol followed by the value itself
(zig-zag mapped, Elias-gamma length, bits in uniform chunks), so any integer round-trips.
"""

from __future__ import annotations

from functools import lru_cache

import constriction
import numpy as np
import torch

from versacodec.errors import StreamError

_CHUNK_BITS = 16
Categorical = constriction.stream.model.Categorical
Uniform = constriction.stream.model.Uniform
RangeEncoder = constriction.stream.queue.RangeEncoder
RangeDecoder = constriction.stream.queue.RangeDecoder
_LENGTH_MODEL = Uniform(64)


class TableSet:
    """Integer pmf tables (see `tables`) turned into cached constriction models."""

    def __init__(self, pmf: torch.Tensor, lengths: torch.Tensor, offsets: torch.Tensor) -> None:
        self.pmf = pmf.cpu().numpy().astype(np.float64)
        self.lengths = lengths.cpu().numpy().astype(np.int64)
        self.offsets = offsets.cpu().numpy().astype(np.int64)
        self._model = lru_cache(maxsize=None)(self._build_model)

    def __len__(self) -> int:
        return len(self.lengths)

    def _build_model(self, index: int) -> Categorical:
        return Categorical(self.pmf[index, : self.lengths[index]], perfect=False)

    def model(self, index: int) -> Categorical:
        return self._model(int(index))


def _group_order(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(indices, kind="stable")
    unique, starts = np.unique(indices[order], return_index=True)
    ends = np.append(starts[1:], len(order))[: len(starts)]  # nothing to code: no groups at all
    return order, unique, np.stack([starts, ends], 1)


def _zigzag(values: np.ndarray) -> np.ndarray:
    return np.where(values >= 0, 2 * values, -2 * values - 1)


def _unzigzag(values: np.ndarray) -> np.ndarray:
    return np.where(values % 2 == 0, values // 2, -(values + 1) // 2)


class SymbolWriter:
    def __init__(self) -> None:
        self.encoder = RangeEncoder()

    def write(self, values: np.ndarray, indices: np.ndarray, tables: TableSet) -> None:
        """Code integer `values` (any shape) with table rows `indices` (same shape)."""
        values = np.asarray(values, dtype=np.int64).ravel()
        indices = np.asarray(indices, dtype=np.int64).ravel()
        order, unique, spans = _group_order(indices)
        for index, (start, end) in zip(unique, spans, strict=True):
            group = values[order[start:end]]
            escape = int(tables.lengths[index]) - 1
            symbols = group - tables.offsets[index]
            outside = (symbols < 0) | (symbols >= escape)
            symbols = np.where(outside, escape, symbols).astype(np.int32)
            self.encoder.encode(symbols, tables.model(index))
            if outside.any():
                self.write_raw(group[outside])

    def write_raw(self, values: np.ndarray) -> None:
        """Any integers, without a model: zig-zag, Elias-gamma length, bits in uniform chunks."""
        for value in _zigzag(values).tolist():
            value += 1
            length = value.bit_length()
            self.encoder.encode(np.array([length], dtype=np.int32), _LENGTH_MODEL)
            remaining = length - 1
            while remaining > 0:
                take = min(_CHUNK_BITS, remaining)
                remaining -= take
                chunk = (value >> remaining) & ((1 << take) - 1)
                self.encoder.encode(np.array([chunk], dtype=np.int32), Uniform(1 << take))

    def write_gaussian(self, gaussian, y_gained):
        """A coder callback for LatentCodec._code_pass that writes y's groups."""

        def code(group, scales, means, mask):
            return gaussian.write(self, y_gained[:, group], scales, means, mask)

        return code

    def getvalue(self) -> bytes:
        return self.encoder.get_compressed().tobytes()


class SymbolReader:
    def __init__(self, data: bytes) -> None:
        if len(data) % 4:
            raise StreamError("entropy-coded section length is not a multiple of 4 bytes")
        self.decoder = RangeDecoder(np.frombuffer(data, dtype=np.uint32).copy())

    def read(self, indices: np.ndarray, tables: TableSet) -> np.ndarray:
        shape = np.shape(indices)
        indices = np.asarray(indices, dtype=np.int64).ravel()
        if len(indices) and (indices.min() < 0 or indices.max() >= len(tables)):
            raise StreamError("table index out of range while decoding")
        values = np.empty(len(indices), dtype=np.int64)
        order, unique, spans = _group_order(indices)
        for index, (start, end) in zip(unique, spans, strict=True):
            escape = int(tables.lengths[index]) - 1
            symbols = self.decode(tables.model(index), end - start).astype(np.int64)
            group = symbols + tables.offsets[index]
            outside = symbols == escape
            if outside.any():
                group[outside] = self.read_raw(int(outside.sum()))
            values[order[start:end]] = group
        return values.reshape(shape)

    def gaussian_source(self, gaussian):
        """A coder callback for LatentCodec._code_pass that reads y's groups."""

        def code(group, scales, means, mask):
            return gaussian.read(self, scales, means, mask)

        return code

    def decode(self, model, count: int | None = None):
        """One symbol (or `count`) under a constriction model; damage becomes a StreamError."""
        # Damaged data can be impossible under the model: constriction then raises AssertionError.
        try:
            return self.decoder.decode(model) if count is None else self.decoder.decode(model, count)
        except (AssertionError, ValueError, RuntimeError) as exc:
            raise StreamError(f"corrupted: entropy-coded data does not decode ({exc})") from exc

    def read_raw(self, count: int) -> np.ndarray:
        out = []
        for _ in range(count):
            length = int(self.decode(_LENGTH_MODEL))
            if length < 1:
                raise StreamError("corrupt escape code in entropy-coded data")
            value, remaining = 1, length - 1
            while remaining > 0:
                take = min(_CHUNK_BITS, remaining)
                remaining -= take
                value = (value << take) | int(self.decode(Uniform(1 << take)))
            out.append(value - 1)
        return _unzigzag(np.array(out, dtype=np.int64))
