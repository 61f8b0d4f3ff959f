"""Adaptive (count-based) models for small side streams such as palettes and index maps.

Probabilities are integer counts, identical in encoder and decoder by construction, so no table
needs to travel and nothing depends on floating-point maths beyond exact integer-to-float
conversion. Encoders know every symbol in advance; decoders read one symbol at a time.
"""

from __future__ import annotations

import numpy as np

from versacodec.entropy.range_coder import Categorical, SymbolReader, SymbolWriter

MAX_COUNT = 1 << 12  # halve the counts beyond this, so statistics can drift along the stream


class AdaptiveModel:
    """Frequencies over symbols 0..size-1 (the last one is the escape), starting uniform."""

    def __init__(self, size: int) -> None:
        self.counts = np.ones(size, dtype=np.int64)

    def model(self) -> Categorical:
        return Categorical(self.counts.astype(np.float64), perfect=False)

    def update(self, symbol: int) -> None:
        self.counts[symbol] += 2
        if self.counts.sum() > MAX_COUNT:
            self.counts = (self.counts + 1) // 2


def write_small_integers(writer: SymbolWriter, values: np.ndarray, alphabet: int = 32) -> None:
    """Signed integers, mostly small: zig-zag symbols with an adaptive model, escape beyond."""
    model = AdaptiveModel(alphabet + 1)
    for value in np.asarray(values, dtype=np.int64).ravel().tolist():
        symbol = 2 * value if value >= 0 else -2 * value - 1
        coded = symbol if symbol < alphabet else alphabet
        writer.encoder.encode(np.array([coded], dtype=np.int32), model.model())
        if coded == alphabet:
            writer.write_raw(np.array([value]))
        model.update(coded)


def read_small_integers(reader: SymbolReader, count: int, alphabet: int = 32) -> np.ndarray:
    model = AdaptiveModel(alphabet + 1)
    out = np.empty(count, dtype=np.int64)
    for index in range(count):
        coded = int(reader.decode(model.model()))
        out[index] = reader.read_raw(1)[0] if coded == alphabet else (coded // 2 if coded % 2 == 0
                                                                      else -(coded + 1) // 2)
        model.update(coded)
    return out


class ContextBits:
    """Binary symbols with one adaptive model per context."""

    def __init__(self, contexts: int) -> None:
        self.models = [AdaptiveModel(2) for _ in range(contexts)]

    def write(self, writer: SymbolWriter, bit: int, context: int) -> None:
        model = self.models[context]
        writer.encoder.encode(np.array([bit], dtype=np.int32), model.model())
        model.update(bit)

    def read(self, reader: SymbolReader, context: int) -> int:
        model = self.models[context]
        bit = int(reader.decode(model.model()))
        model.update(bit)
        return bit
