"""A description of a stream (header fields, sections, byte counts) for `versacodec info`."""

from __future__ import annotations

from versacodec.container.format import (
    FORMAT_VERSION,
    REGION_MAP_KINDS,
    SECTION_CRITICAL,
    Section,
    SectionKind,
    Stream,
    latent_part,
)
from versacodec.layers.scalable import layer_summary


def describe(data: bytes) -> dict:
    stream = Stream.from_bytes(data)
    header = stream.header
    header_bytes = len(stream.header_bytes())
    sections = [{"kind": section.kind_name, "bytes": section.coded_size, "payload_bytes": len(section.payload),
                 "critical": bool(section.flags & SECTION_CRITICAL), "details": _details(section, stream)}
                for section in stream.sections]
    return {
        "format_version": f"{FORMAT_VERSION[0]}.{FORMAT_VERSION[1]}",
        "file_bytes": len(data),
        "header_bytes": header_bytes,
        "bpp": len(data) * 8 / (header.width * header.height),
        "header": {"width": header.width, "height": header.height, "colour": header.colour.name.lower(),
                   "bit_depth": header.bit_depth, "model_id": header.model_id,
                   "weights_hash": header.weights_hash.hex(), "quality": header.quality, "seed": header.seed,
                   "flags": header.flags},
        "sections": sections,
        "layers": layer_summary(stream, header.width * header.height),
    }


def _details(section: Section, stream: Stream) -> dict:
    """What a person wants to know about a section beyond its size."""
    if section.kind == SectionKind.TAGS:
        from versacodec.semantics.tag_stream import unpack_tags
        from versacodec.semantics.tagger import class_names

        ids = unpack_tags(section.payload)
        return {"tags": [class_names()[i] for i in ids], "tag_ids": ids, "bits": len(section.payload) * 8}
    if section.kind in REGION_MAP_KINDS:
        from versacodec.semantics.region_map import unpack_region_section

        sets = unpack_region_section(section)
        return {"sets": [{"task": s.name, "regions": len(s.boxes), "labels": sorted({b[0] for b in s.boxes})}
                         for s in sets]}
    if section.kind == SectionKind.LAYER:
        from versacodec.container.format import get_varint

        number, offset = get_varint(section.payload, 0, "the layer number")
        start, _ = get_varint(section.payload, offset, "the layer start timestep")
        return {"layer": number, "start_timestep": start}
    if section.kind == SectionKind.LATENT:
        from versacodec.semantics.partial import region_set_names

        index, _ = latent_part(section)
        names = region_set_names(stream)
        if not names:
            return {}
        return {"part": names[index] if index < len(names) else "background"}
    return {}
