"""The stream layout: which sections a .vcx stream holds, in which order, and what each carries.

    TAGS           the tagger's ImageNet class ids (optional, not critical)   semantics.tag_stream
    LAYER 1..K−1   palette layers of a layered stream, each with the          layers.scalable
                   generative start timestep of the prefix ending there
    HYPERPRIOR     the latent codec's side information z                      latent_codec
    QUALITY_MAP    where y is coded at another quality (optional)             latent_codec.quality_map
    REGION_MAP     the region sets of a task-structured stream                semantics.region_map
    LATENT ...     the coded passes over y: a varint part index, then the     latent_codec
                   range-coded bytes; part i < n is region set i of the
                   region map, part n the background (a plain stream: part 0)

Tags come first and palette layers next, so that every prefix of layers carries the tags. Each
payload's codec lives with what it codes; this module alone knows a stream as a whole: it writes a
`CompressedImage` as sections (`to_stream`), reads one back (`from_stream`), and keeps parts of a
stream without re-encoding (`extract`, `truncate`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from versacodec.container.format import Section, SectionKind, Stream, StreamHeader, get_varint, put_varint
from versacodec.errors import InputError, StreamError
from versacodec.latent_codec.model import CompressedLatent
from versacodec.latent_codec.quality_map import QualityMap
from versacodec.layers.scalable import PaletteLayer, check_numbering
from versacodec.semantics.region_map import RegionSet, pack_region_map, unpack_region_map, unpack_region_map_v1
from versacodec.semantics.tag_stream import pack_tags, unpack_tags

REGION_MAP_KINDS = (SectionKind.REGION_MAP, SectionKind.REGION_MAP_V1)
# The sections of the last layer of a layered stream (the full latent-codec stream).
LATENT_CODEC_KINDS = (SectionKind.HYPERPRIOR, SectionKind.QUALITY_MAP, SectionKind.LATENT, *REGION_MAP_KINDS)


@dataclass(frozen=True)
class CompressedImage:
    """Everything a stream carries, as values."""

    header: StreamHeader
    tags: tuple[int, ...] | None = None  # None: no tags section
    layers: tuple[PaletteLayer, ...] = ()
    latent: CompressedLatent | None = None  # None: a prefix of palette layers only
    region_sets: tuple[RegionSet, ...] = ()


def to_stream(image: CompressedImage) -> Stream:
    sections = [] if image.tags is None else [Section(SectionKind.TAGS, pack_tags(list(image.tags)), flags=0)]
    sections += [Section(SectionKind.LAYER, layer.pack()) for layer in image.layers]
    latent = image.latent
    if latent is not None:
        sections.append(Section(SectionKind.HYPERPRIOR, latent.hyperprior))
        if latent.quality_map is not None:
            sections.append(Section(SectionKind.QUALITY_MAP, latent.quality_map.pack()))
        if image.region_sets:
            sections.append(Section(SectionKind.REGION_MAP, pack_region_map(list(image.region_sets), latent.y_shape)))
        sections += [Section(SectionKind.LATENT, put_varint(index) + part)
                     for index, part in enumerate(latent.parts) if part is not None]
    return Stream(image.header, sections)


def from_stream(stream: Stream, grid: tuple[int, int]) -> CompressedImage:
    """The stream's content; `grid` (rows, cols) is y's grid for the image the header declares."""
    tags = stream.sections_of(SectionKind.TAGS)
    layers = tuple(PaletteLayer.unpack(section.payload) for section in stream.sections_of(SectionKind.LAYER))
    check_numbering(layers)
    image = CompressedImage(stream.header, tuple(unpack_tags(tags[0].payload)) if tags else None, layers)
    if layers and not stream.sections_of(SectionKind.HYPERPRIOR):
        return image  # a prefix of palette layers
    region_sets = tuple(read_region_sets(stream, grid))
    parts: list[bytes | None] = [None] * (len(region_sets) + 1)
    for section in stream.sections_of(SectionKind.LATENT):
        index, payload = _latent_part(section)
        if index >= len(parts) or parts[index] is not None:
            raise StreamError(f"corrupted: unexpected latent part {index}")
        parts[index] = payload
    if all(part is None for part in parts) and not region_sets:
        raise StreamError("stream has no latent section")
    maps = stream.sections_of(SectionKind.QUALITY_MAP)
    if len(maps) > 1:
        raise StreamError("corrupted: more than one quality map")
    latent = CompressedLatent(stream.section(SectionKind.HYPERPRIOR).payload, tuple(parts), grid,
                              tuple(region_set.mask(grid) for region_set in region_sets),
                              QualityMap.unpack(maps[0].payload, grid) if maps else None)
    return CompressedImage(image.header, image.tags, layers, latent, region_sets)


def read_region_sets(stream: Stream, grid: tuple[int, int] | None = None) -> list[RegionSet]:
    """The stream's region sets (none for a plain stream); with `grid`, checked to lie on it."""
    maps = [section for section in stream.sections if section.kind in REGION_MAP_KINDS]
    if len(maps) > 1:
        raise StreamError("corrupted: more than one region map")
    if not maps:
        return []
    unpack = unpack_region_map_v1 if maps[0].kind == SectionKind.REGION_MAP_V1 else unpack_region_map
    return unpack(maps[0].payload, grid)


def _latent_part(section: Section) -> tuple[int, bytes]:
    index, offset = get_varint(section.payload, 0, "the latent part index")
    return index, section.payload[offset:]


def latent_part_index(section: Section) -> int:
    """Which part of y a LATENT section codes (see the module docstring)."""
    return _latent_part(section)[0]


def extract(data: bytes, task: str) -> bytes:
    """The partial stream keeping only `task`'s regions: a region set name, or the profile file
    (.yaml) the stream was made with. The background and every other region set's latent section
    are dropped, nothing is re-encoded."""
    if task.endswith((".yaml", ".yml")) and Path(task).is_file():
        from versacodec.semantics.profiles import load_profile

        task = load_profile(task).name
    stream = Stream.from_bytes(data)
    names = [region_set.name for region_set in read_region_sets(stream)]
    if not names:
        raise InputError("this stream has no task regions; compress it with a task first", options=("task",))
    if task not in names:
        raise InputError(f"this stream has regions for {', '.join(names)}, not {task!r}")
    keep = names.index(task)
    sections = [section for section in stream.sections
                if section.kind != SectionKind.LATENT or latent_part_index(section) == keep]
    return stream.with_sections(sections).to_bytes()


def truncate(data: bytes, keep: int) -> bytes:
    """The prefix of a layered stream with its first `keep` layers (the last layer is the full
    latent-codec stream: hyperprior, region map and latent sections)."""
    stream = Stream.from_bytes(data)
    palette = stream.sections_of(SectionKind.LAYER)
    if not palette:
        raise InputError("this stream has no layers; compress it with layers first", options=("layers",))
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
        elif section.kind in LATENT_CODEC_KINDS and keep <= len(palette):
            continue
        sections.append(section)
    return stream.with_sections(sections).to_bytes()
