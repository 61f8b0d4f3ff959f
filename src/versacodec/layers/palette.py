"""A content-adaptive palette of latent features by hierarchical (bisecting) clustering.

The latent vectors of one image (its autoencoder latent, one C-dimensional vector per latent
pixel) are split into 2, then each cluster into 2 again, and so on: level j has 2**j clusters
and each position's level-j cluster is a child of its level-(j−1) cluster. Layer j of a stream
sends the level-j centroids (as integer offsets from their parent, on a grid of CENTROID_STEP)
and one bit per position saying which child it falls in, coded with an adaptive model whose
context is the left and upper neighbours' bits where they share the parent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from versacodec.entropy.adaptive import ContextBits, read_small_integers, write_small_integers
from versacodec.entropy.range_coder import SymbolReader, SymbolWriter
from versacodec.errors import StreamError

CENTROID_STEP = 1 / 8  # latent units (normalised latents have unit variance per channel)
KMEANS_ITERATIONS = 8
_UNKNOWN = 2  # context value for a neighbour outside the image or under another parent


@dataclass
class PaletteLevel:
    centroids: np.ndarray  # (2**j, C) int64, in CENTROID_STEP units
    assignment: np.ndarray  # (h, w) int64 cluster index at this level


def _two_means(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split into two clusters: start from ±1 std along the principal direction, then Lloyd steps."""
    mean = vectors.mean(0)
    if len(vectors) < 2:
        return np.stack([mean, mean]), np.zeros(len(vectors), dtype=np.int64)
    centred = vectors - mean
    direction = np.linalg.svd(centred, full_matrices=False)[2][0]
    spread = float((centred @ direction).std()) or 1e-3
    centres = np.stack([mean - spread * direction, mean + spread * direction])
    labels = np.zeros(len(vectors), dtype=np.int64)
    for _ in range(KMEANS_ITERATIONS):
        labels = ((vectors[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
        for child in (0, 1):
            if (labels == child).any():
                centres[child] = vectors[labels == child].mean(0)
    return centres, labels


def build_palette(latent: np.ndarray, depth: int) -> list[PaletteLevel]:
    """Levels 0..depth of the palette tree for a latent (C, h, w)."""
    channels, height, width = latent.shape
    vectors = latent.reshape(channels, -1).T.astype(np.float64)
    root = np.round(vectors.mean(0) / CENTROID_STEP).astype(np.int64)
    levels = [PaletteLevel(root[None], np.zeros((height, width), dtype=np.int64))]
    for _ in range(depth):
        parent = levels[-1]
        flat_parent = parent.assignment.ravel()
        centroids = np.repeat(parent.centroids, 2, axis=0)
        assignment = flat_parent * 2
        for cluster in range(len(parent.centroids)):
            members = np.nonzero(flat_parent == cluster)[0]
            if len(members) == 0:
                continue
            centres, _ = _two_means(vectors[members])
            quantised = np.round(centres / CENTROID_STEP).astype(np.int64)
            centroids[2 * cluster : 2 * cluster + 2] = quantised
            # Assign with the centroids the decoder will see.
            distances = ((vectors[members, None, :] - quantised[None] * CENTROID_STEP) ** 2).sum(-1)
            assignment[members] = 2 * cluster + distances.argmin(1)
        levels.append(PaletteLevel(centroids, assignment.reshape(height, width)))
    return levels


def reconstruct(level: PaletteLevel) -> np.ndarray:
    """(C, h, w) float latent: every position takes its cluster's centroid."""
    return (level.centroids[level.assignment] * CENTROID_STEP).transpose(2, 0, 1)


def _context(bits: np.ndarray, parents: np.ndarray, row: int, col: int) -> int:
    left = bits[row, col - 1] if col > 0 and parents[row, col - 1] == parents[row, col] else _UNKNOWN
    up = bits[row - 1, col] if row > 0 and parents[row - 1, col] == parents[row, col] else _UNKNOWN
    return int(left) * 3 + int(up)


def write_level(writer: SymbolWriter, parent: PaletteLevel, level: PaletteLevel, first: bool) -> None:
    """Layer payload for `level` given its parent (the root centroid travels with the first)."""
    if first:
        write_small_integers(writer, parent.centroids)
    offsets = level.centroids - np.repeat(parent.centroids, 2, axis=0)
    write_small_integers(writer, offsets)
    bits = level.assignment % 2
    coder = ContextBits(9)
    height, width = bits.shape
    for row in range(height):
        for col in range(width):
            coder.write(writer, int(bits[row, col]), _context(bits, parent.assignment, row, col))


def read_level(reader: SymbolReader, parent: PaletteLevel | None, channels: int, shape: tuple[int, int]
               ) -> tuple[PaletteLevel, PaletteLevel]:
    """(parent, level) read from one layer payload; `parent` None for the first layer."""
    if parent is None:
        parent = PaletteLevel(read_small_integers(reader, channels).reshape(1, channels),
                              np.zeros(shape, dtype=np.int64))
    if len(parent.centroids) > 1 << 12:
        raise StreamError("corrupted: palette deeper than 12 levels")
    offsets = read_small_integers(reader, 2 * len(parent.centroids) * channels).reshape(-1, channels)
    centroids = np.repeat(parent.centroids, 2, axis=0) + offsets
    height, width = shape
    bits = np.zeros(shape, dtype=np.int64)
    coder = ContextBits(9)
    for row in range(height):
        for col in range(width):
            bits[row, col] = coder.read(reader, _context(bits, parent.assignment, row, col))
    return parent, PaletteLevel(centroids, parent.assignment * 2 + bits)
