"""A description of a stream (header fields, sections, byte counts) for `versacodec info`."""

from __future__ import annotations

from versacodec.codec.layout import LATENT_CODEC_KINDS, REGION_MAP_KINDS, latent_part_index, read_region_sets
from versacodec.container.format import SECTION_CRITICAL, Section, SectionKind, Stream
from versacodec.latent_codec.quality_map import QualityMap
from versacodec.layers.scalable import PaletteLayer
from versacodec.semantics.region_map import unpack_region_map, unpack_region_map_v1
from versacodec.semantics.tag_stream import unpack_tags


def describe(data: bytes) -> dict:
    stream = Stream.from_bytes(data)
    header = stream.header
    header_bytes, major = len(stream.header_bytes()), stream.version[0]
    sections = [{"kind": section.kind_name, "bytes": section.coded_size(major), "payload_bytes": len(section.payload),
                 "critical": bool(section.flags & SECTION_CRITICAL), "details": _details(section, stream)}
                for section in stream.sections]
    return {
        "format_version": f"{stream.version[0]}.{stream.version[1]}",
        "file_bytes": len(data),
        "header_bytes": header_bytes,
        "checksum_bytes": stream.checksum_bytes(),  # 2.x: the CRC-32 at the end
        "breakdown": stream.byte_breakdown(),
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
        from versacodec.semantics.tagger import class_names

        ids = unpack_tags(section.payload)
        return {"tags": [class_names()[i] for i in ids], "tag_ids": ids, "bits": len(section.payload) * 8}
    if section.kind in REGION_MAP_KINDS:
        unpack = unpack_region_map_v1 if section.kind == SectionKind.REGION_MAP_V1 else unpack_region_map
        return {"sets": [{"task": s.name, "regions": len(s.boxes), "labels": sorted({b[0] for b in s.boxes})}
                         for s in unpack(section.payload)]}
    if section.kind == SectionKind.QUALITY_MAP:
        block, delta, _ = QualityMap.read_settings(section.payload)  # the blocks need the model's grid
        return {"block_cells": block, "delta": delta}
    if section.kind == SectionKind.LAYER:
        layer = PaletteLayer.unpack(section.payload)
        return {"layer": layer.number, "start_timestep": layer.start_timestep}
    if section.kind == SectionKind.LATENT:
        names = [region_set.name for region_set in read_region_sets(stream)]
        if not names:
            return {}
        index = latent_part_index(section)
        return {"part": names[index] if index < len(names) else "background"}
    return {}


def layer_summary(stream: Stream, pixels: int) -> list[dict]:
    """Bytes of each layer and the bpp of each prefix (header, checksum and tags counted in layer 1)."""
    major = stream.version[0]
    fixed = (len(stream.header_bytes()) + stream.checksum_bytes()
             + sum(s.coded_size(major) for s in stream.sections_of(SectionKind.TAGS)))
    rows, total = [], fixed
    for layer in stream.sections_of(SectionKind.LAYER):
        total += layer.coded_size(major)
        rows.append({"layer": len(rows) + 1, "kind": "palette", "bytes": layer.coded_size(major),
                     "prefix_bytes": total, "prefix_bpp": total * 8 / pixels})
    final = [s for s in stream.sections if s.kind in LATENT_CODEC_KINDS]
    if final and rows:
        size = sum(s.coded_size(major) for s in final)
        total += size
        rows.append({"layer": len(rows) + 1, "kind": "latent codec", "bytes": size, "prefix_bytes": total,
                     "prefix_bpp": total * 8 / pixels})
    return rows
