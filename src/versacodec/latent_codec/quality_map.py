"""A two-level quality map over y's grid: the side information of a spatially varying rate.

The stream's quality q codes z, and y outside the map's blocks; y inside them is coded at
q + delta (clamped to the codec's qualities). The entropy model predicts y's scales and means
before the gain (`gain.GainUnits.for_quality`), so any map decodes; rate control still searches
q on the real file size, the map fixed.

Payload (a QUALITY_MAP section): one byte, the block side in y cells; a zig-zag varint, delta;
then the blocks' bits (rows × cols of blocks covering y's grid, row by row), each range-coded with
an adaptive model chosen by its left, upper and upper-left neighbours, so that compact regions
cost a few bytes: on a 640×480 image (8 × 10 blocks of 64 px) a typical map is 8–12 bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import torch

from versacodec.container.format import get_varint, put_varint
from versacodec.entropy.adaptive import ContextBits
from versacodec.entropy.range_coder import SymbolReader, SymbolWriter
from versacodec.errors import StreamError

MAX_BLOCK = 64


def _zigzag(value: int) -> int:
    return 2 * value if value >= 0 else -2 * value - 1


def _unzigzag(value: int) -> int:
    return value // 2 if value % 2 == 0 else -(value + 1) // 2


def _context(bits: torch.Tensor, row: int, col: int) -> int:
    left = int(bits[row, col - 1]) if col else 0
    up = int(bits[row - 1, col]) if row else 0
    corner = int(bits[row - 1, col - 1]) if row and col else 0
    return left | up << 1 | corner << 2


@dataclass(frozen=True)
class QualityMap:
    block: int  # side of a block in y cells
    delta: int  # quality offset of y inside the blocks
    blocks: torch.Tensor  # (rows, cols) bool: which blocks are coded at q + delta

    def __post_init__(self) -> None:
        if not 1 <= self.block <= MAX_BLOCK:
            raise ValueError(f"quality map block side must be 1..{MAX_BLOCK} y cells, not {self.block}")

    @staticmethod
    def block_grid(grid: tuple[int, int], block: int) -> tuple[int, int]:
        return math.ceil(grid[0] / block), math.ceil(grid[1] / block)

    @classmethod
    def from_mask(cls, mask: torch.Tensor, block: int, delta: int) -> QualityMap:
        """The map whose blocks are those where `mask` ((h, w) bool on y's grid) holds anywhere."""
        rows, cols = cls.block_grid(tuple(mask.shape), block)
        padded = torch.zeros(rows * block, cols * block, dtype=torch.bool)
        padded[: mask.shape[0], : mask.shape[1]] = mask
        return cls(block, delta, padded.view(rows, block, cols, block).any(3).any(1))

    def qualities(self, quality: int, grid: tuple[int, int], levels: int) -> torch.Tensor:
        """(h, w) int64: y's quality per position on a grid of `grid` cells."""
        inside = min(max(quality + self.delta, 0), levels - 1)
        cells = self.blocks.repeat_interleave(self.block, 0).repeat_interleave(self.block, 1)
        return torch.where(cells[: grid[0], : grid[1]], inside, quality).long()

    def pack(self) -> bytes:
        return self._payload

    @cached_property
    def _payload(self) -> bytes:
        """Coded once: rate control writes the same map into every trial stream."""
        writer, coder = SymbolWriter(), ContextBits(8)
        for row in range(self.blocks.shape[0]):
            for col in range(self.blocks.shape[1]):
                coder.write(writer, int(self.blocks[row, col]), _context(self.blocks, row, col))
        return bytes([self.block]) + put_varint(_zigzag(self.delta)) + writer.getvalue()

    @staticmethod
    def read_settings(payload: bytes) -> tuple[int, int, int]:
        """(block, delta, where the blocks' bits start) of a payload."""
        if not payload or not 1 <= payload[0] <= MAX_BLOCK:
            raise StreamError("corrupted: the quality map's block size is invalid")
        delta, offset = get_varint(payload, 1, "the quality map's offset")
        return payload[0], _unzigzag(delta), offset

    @classmethod
    def unpack(cls, payload: bytes, grid: tuple[int, int]) -> QualityMap:
        """The map of a stream whose y has `grid` (rows, cols) cells."""
        block, delta, offset = cls.read_settings(payload)
        rows, cols = cls.block_grid(grid, block)
        bits = torch.zeros(rows, cols, dtype=torch.bool)
        reader, coder = SymbolReader(payload[offset:]), ContextBits(8)  # damage raises StreamError
        for row in range(rows):
            for col in range(cols):
                bits[row, col] = bool(coder.read(reader, _context(bits, row, col)))
        return cls(block, delta, bits)
