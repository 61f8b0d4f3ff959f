"""Layered streams: palette layers 1..K−1, then the full latent-codec stream as layer K.

Order of sections: tags, LAYER 1 .. LAYER K−1, hyperprior, latent. Every prefix that ends at a
layer boundary is a valid stream (`truncate_layers` rewrites the header's section count).

A LAYER payload is: varint layer number (1-based), varint diffusion start timestep, then the
range-coded palette level (see `palette`). The encoder writes each layer's start timestep from
the generative decoder's calibrated table (`GenerativeConfig.layer_start_timesteps`, measured
by benchmarks/calibrate_generative.py): the generative decoder starts from that prefix's palette
latent noised to it (0: the prefix is decoded as it is). The table is per palette level rather
than matched to each image's latent error: on held-out images the error-matched starts (t ≈
150–360 for every level) scored worse on LPIPS + DISTS, on average, than starts of 50–100.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from versacodec.container.format import REGION_MAP_KINDS, Section, SectionKind, Stream, get_varint, put_varint
from versacodec.entropy.range_coder import SymbolReader, SymbolWriter
from versacodec.errors import InputError, StreamError
from versacodec.layers.palette import PaletteLevel, build_palette, read_level, reconstruct, write_level

MAX_LAYERS = 9


@dataclass(frozen=True)
class LayerInfo:
    number: int
    start_timestep: int
    payload: bytes


def layer_start_timestep(start_timesteps: Sequence[int], number: int) -> int:
    """Layer `number`'s (1-based) start timestep from a per-level table; deeper layers use its last entry."""
    return start_timesteps[min(number, len(start_timesteps)) - 1] if start_timesteps else 0


def palette_sections(latent: torch.Tensor, layers: int, start_timesteps: Sequence[int]) -> list[Section]:
    """LAYER sections 1..layers−1 for a normalised latent (1, C, h, w), each carrying its
    generative start timestep from `start_timesteps` (see `layer_start_timestep`)."""
    if not 2 <= layers <= MAX_LAYERS:
        raise InputError(f"--layers must be between 2 and {MAX_LAYERS}")
    array = latent[0].double().numpy()
    levels = build_palette(array, layers - 1)
    sections = []
    for number in range(1, layers):
        writer = SymbolWriter()
        write_level(writer, levels[number - 1], levels[number], first=number == 1)
        start = layer_start_timestep(start_timesteps, number)
        payload = put_varint(number) + put_varint(start) + writer.getvalue()
        sections.append(Section(SectionKind.LAYER, payload))
    return sections


def read_layers(stream: Stream) -> list[LayerInfo]:
    layers = []
    for expected, section in enumerate(stream.sections_of(SectionKind.LAYER), start=1):
        number, offset = get_varint(section.payload, 0, "the layer number")
        start, offset = get_varint(section.payload, offset, "the layer start timestep")
        if number != expected:
            raise StreamError(f"corrupted: layer {number} where layer {expected} was expected")
        layers.append(LayerInfo(number, start, section.payload[offset:]))
    return layers


def decode_palette(layers: list[LayerInfo], channels: int, shape: tuple[int, int]) -> torch.Tensor:
    """The latent (1, C, h, w) of the deepest palette layer present."""
    level: PaletteLevel | None = None
    for layer in layers:
        reader = SymbolReader(layer.payload)
        _, level = read_level(reader, level, channels, shape)
    return torch.from_numpy(reconstruct(level)).float()[None]


def truncate_layers(data: bytes, keep: int) -> bytes:
    """The prefix of a layered stream with its first `keep` layers (the last layer is the full
    latent-codec stream: hyperprior and latent sections)."""
    stream = Stream.from_bytes(data)
    palette = stream.sections_of(SectionKind.LAYER)
    if not palette:
        raise InputError("this stream has no layers; compress it with --layers K first")
    total = len(palette) + (1 if stream.sections_of(SectionKind.LATENT) else 0)
    if not 1 <= keep <= total:
        raise InputError(f"this stream has {total} layers; keep between 1 and {total}")
    kept_palette = 0
    sections = []
    for section in stream.sections:
        if section.kind == SectionKind.LAYER:
            kept_palette += 1
            if kept_palette > keep:
                continue
        elif section.kind in (SectionKind.HYPERPRIOR, SectionKind.LATENT, *REGION_MAP_KINDS) and keep <= len(
                palette):
            continue
        sections.append(section)
    return stream.with_sections(sections).to_bytes()


def layer_summary(stream: Stream, pixels: int) -> list[dict]:
    """Bytes of each layer and the bpp of each prefix (header and tags counted in layer 1)."""
    fixed = len(stream.header_bytes()) + sum(s.coded_size for s in stream.sections_of(SectionKind.TAGS))
    rows, total = [], fixed
    for layer in stream.sections_of(SectionKind.LAYER):
        total += layer.coded_size
        rows.append({"layer": len(rows) + 1, "kind": "palette", "bytes": layer.coded_size,
                     "prefix_bytes": total, "prefix_bpp": total * 8 / pixels})
    final = [s for s in stream.sections if s.kind in (SectionKind.HYPERPRIOR, SectionKind.LATENT,
                                                        *REGION_MAP_KINDS)]
    if final and rows:
        size = sum(s.coded_size for s in final)
        total += size
        rows.append({"layer": len(rows) + 1, "kind": "latent codec", "bytes": size, "prefix_bytes": total,
                     "prefix_bpp": total * 8 / pixels})
    return rows
