"""Layered streams' palette layers: build them from a latent, code each as a LAYER payload, and
decode the latent of the deepest layer present.

A layered stream of K layers carries palette layers 1 .. K−1 and then the full latent-codec stream
as layer K (`versacodec.codec.layout` orders the sections; any prefix that ends at a layer
boundary is a valid stream). A LAYER payload is: varint layer number (1-based), varint diffusion
start timestep, then the range-coded palette level (see `palette`). The encoder writes each
layer's start timestep from the generative decoder's calibrated table
(`GenerativeConfig.layer_start_timesteps`, measured by benchmarks/calibrate_generative.py): the
generative decoder starts from that prefix's palette latent noised to it (0: the prefix is decoded
as it is). The table is per palette level rather than matched to each image's latent error: on
held-out images the error-matched starts (t ≈ 150–360 for every level) scored worse on LPIPS +
DISTS, on average, than starts of 50–100.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from versacodec.container.format import get_varint, put_varint
from versacodec.entropy.range_coder import SymbolReader, SymbolWriter
from versacodec.errors import StreamError
from versacodec.layers.palette import PaletteLevel, build_palette, read_level, reconstruct, write_level


@dataclass(frozen=True)
class PaletteLayer:
    number: int  # 1-based
    start_timestep: int  # where the generative decoder starts on the prefix ending here
    coded: bytes  # the range-coded palette level

    def pack(self) -> bytes:
        """The LAYER section's payload."""
        return put_varint(self.number) + put_varint(self.start_timestep) + self.coded

    @classmethod
    def unpack(cls, payload: bytes) -> PaletteLayer:
        number, offset = get_varint(payload, 0, "the layer number")
        start, offset = get_varint(payload, offset, "the layer start timestep")
        return cls(number, start, payload[offset:])


def layer_start_timestep(start_timesteps: Sequence[int], number: int) -> int:
    """Layer `number`'s (1-based) start timestep from a per-level table; deeper layers use its last entry."""
    return start_timesteps[min(number, len(start_timesteps)) - 1] if start_timesteps else 0


def palette_layers(latent: torch.Tensor, layers: int, start_timesteps: Sequence[int]) -> tuple[PaletteLayer, ...]:
    """Palette layers 1..layers−1 for a normalised latent (1, C, h, w), each carrying its
    generative start timestep from `start_timesteps` (see `layer_start_timestep`)."""
    array = latent[0].double().numpy()
    levels = build_palette(array, layers - 1)
    coded = []
    for number in range(1, layers):
        writer = SymbolWriter()
        write_level(writer, levels[number - 1], levels[number], first=number == 1)
        coded.append(PaletteLayer(number, layer_start_timestep(start_timesteps, number), writer.getvalue()))
    return tuple(coded)


def check_numbering(layers: Sequence[PaletteLayer]) -> None:
    for expected, layer in enumerate(layers, start=1):
        if layer.number != expected:
            raise StreamError(f"corrupted: layer {layer.number} where layer {expected} was expected")


def decode_palette(layers: Sequence[PaletteLayer], channels: int, shape: tuple[int, int]) -> torch.Tensor:
    """The latent (1, C, h, w) of the deepest palette layer present."""
    level: PaletteLevel | None = None
    for layer in layers:
        reader = SymbolReader(layer.coded)
        _, level = read_level(reader, level, channels, shape)
    return torch.from_numpy(reconstruct(level)).float()[None]
