"""Reading and writing .vcx streams (layout documented in docs/format.md).

The parser trusts nothing: every length is bounded by the bytes present, every CRC is checked,
dimensions are capped by a pixel limit, and each failure is a StreamError saying what is wrong.
"""

from __future__ import annotations

import enum
import os
import struct
import zlib
from dataclasses import dataclass, field, replace

from versacodec.errors import StreamError

MAGIC = b"\x89VCX\r\n\x1a\n"
FORMAT_VERSION = (1, 0)  # (major, minor): a reader accepts any minor of its major
DEFAULT_MAX_PIXELS = 1 << 28  # 268 megapixels; override with VERSACODEC_MAX_PIXELS or max_pixels=
MAX_SECTIONS = 4096

# magic(8) major(1) minor(1) header_length(2) — header_length counts the fields that follow.
_PREAMBLE = struct.Struct(">8sBBH")
# width height colour bit_depth quality seed section_count flags
_FIXED = struct.Struct(">IIBBHIHI")
# kind flags length crc32 (over kind, flags, length and payload)
_SECTION = struct.Struct(">HHII")
_CRC = struct.Struct(">I")
SECTION_OVERHEAD = _SECTION.size
HASH_BYTES = 16


class ColourMode(enum.IntEnum):
    """How the decoder should present the image (the coded data is always RGB)."""

    RGB = 0
    GREYSCALE = 1  # the input was greyscale: decode to mode "L"


class SectionKind(enum.IntEnum):
    HYPERPRIOR = 1  # side information z; always needed
    LATENT = 2  # latent groups y (one section per region set when task-structured)
    TAGS = 3  # semantic tag ids for the generative decoder
    REGION_MAP = 4  # which latent positions each region section covers
    LAYER = 5  # one scalable layer (palette base or refinement)
    METADATA = 6  # UTF-8 JSON, informational only


SECTION_CRITICAL = 0x0001  # a reader that does not know the kind must refuse the stream


@dataclass(frozen=True)
class StreamHeader:
    width: int
    height: int
    model_id: str
    weights_hash: bytes  # first 16 bytes of SHA-256 over the model's weight files
    quality: int  # rate setting (quality index of the latent codec)
    seed: int = 0  # random seed for generative decoding
    colour: ColourMode = ColourMode.RGB
    bit_depth: int = 8  # of the original image (informational)
    flags: int = 0


@dataclass
class Section:
    kind: int
    payload: bytes
    flags: int = SECTION_CRITICAL

    @property
    def coded_size(self) -> int:
        return SECTION_OVERHEAD + len(self.payload)

    @property
    def kind_name(self) -> str:
        try:
            return SectionKind(self.kind).name.lower()
        except ValueError:
            return f"unknown-{self.kind}"


@dataclass
class Stream:
    header: StreamHeader
    sections: list[Section] = field(default_factory=list)

    def header_bytes(self) -> bytes:
        return _encode_header(self.header, len(self.sections))

    def to_bytes(self) -> bytes:
        parts = [self.header_bytes()]
        for section in self.sections:
            crc = _section_crc(section.kind, section.flags, section.payload)
            parts.append(_SECTION.pack(section.kind, section.flags, len(section.payload), crc))
            parts.append(section.payload)
        return b"".join(parts)

    def sections_of(self, kind: SectionKind) -> list[Section]:
        return [s for s in self.sections if s.kind == kind]

    def section(self, kind: SectionKind) -> Section:
        found = self.sections_of(kind)
        if len(found) != 1:
            raise StreamError(f"stream has {len(found)} {kind.name.lower()} sections, expected exactly 1")
        return found[0]

    def with_sections(self, sections: list[Section]) -> Stream:
        return Stream(replace(self.header), list(sections))

    @classmethod
    def from_bytes(cls, data: bytes, max_pixels: int | None = None) -> Stream:
        header, offset, count = _decode_header(data, _pixel_limit(max_pixels))
        sections = []
        for index in range(count):
            if len(data) - offset < _SECTION.size:
                raise StreamError(f"truncated: section {index + 1} of {count} is missing or cut short")
            kind, flags, length, crc = _SECTION.unpack_from(data, offset)
            offset += _SECTION.size
            if length > len(data) - offset:
                raise StreamError(f"truncated: section {index + 1} declares {length} bytes, "
                                  f"{len(data) - offset} remain")
            payload = bytes(data[offset : offset + length])
            offset += length
            if _section_crc(kind, flags, payload) != crc:
                raise StreamError(f"corrupted: CRC mismatch in section {index + 1} ({_kind_name(kind)})")
            if kind not in SectionKind.__members__.values():
                if flags & SECTION_CRITICAL:
                    raise StreamError(f"section kind {kind} is required but unknown to this version")
                continue  # a later minor version's optional section: skip it
            sections.append(Section(kind, payload, flags))
        if offset != len(data):
            raise StreamError(f"corrupted: {len(data) - offset} unexpected bytes after the last section")
        return cls(header, sections)


def _section_crc(kind: int, flags: int, payload: bytes) -> int:
    """CRC32 over the section's kind, flags, length and payload."""
    return zlib.crc32(payload, zlib.crc32(struct.pack(">HHI", kind, flags, len(payload))))


def _kind_name(kind: int) -> str:
    return Section(kind, b"").kind_name


def _pixel_limit(max_pixels: int | None) -> int:
    if max_pixels is not None:
        return max_pixels
    configured = os.environ.get("VERSACODEC_MAX_PIXELS")
    return int(configured) if configured and configured.isdigit() else DEFAULT_MAX_PIXELS


def _encode_header(header: StreamHeader, section_count: int) -> bytes:
    model_id = header.model_id.encode("utf-8")
    if len(model_id) > 255:
        raise ValueError("model id longer than 255 bytes")
    if len(header.weights_hash) != HASH_BYTES:
        raise ValueError(f"weights hash must be {HASH_BYTES} bytes")
    body = (_FIXED.pack(header.width, header.height, int(header.colour), header.bit_depth, header.quality,
                        header.seed, section_count, header.flags)
            + bytes([len(model_id)]) + model_id + header.weights_hash)
    preamble = _PREAMBLE.pack(MAGIC, *FORMAT_VERSION, len(body))
    return preamble + body + _CRC.pack(zlib.crc32(preamble + body))


def _decode_header(data: bytes, max_pixels: int) -> tuple[StreamHeader, int, int]:
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise StreamError("not a versacodec stream (wrong magic bytes)")
    if len(data) < _PREAMBLE.size:
        raise StreamError("truncated: the header is incomplete")
    _, major, minor, length = _PREAMBLE.unpack_from(data, 0)
    if major != FORMAT_VERSION[0]:
        raise StreamError(f"format version {major}.{minor} is not supported by this versacodec "
                          f"(reads {FORMAT_VERSION[0]}.x); upgrade versacodec")
    end = _PREAMBLE.size + length
    if len(data) < end + _CRC.size:
        raise StreamError("truncated: the header is incomplete")
    (crc,) = _CRC.unpack_from(data, end)
    if zlib.crc32(data[:end]) != crc:
        raise StreamError("corrupted: header CRC mismatch")
    if length < _FIXED.size + 1:
        raise StreamError("corrupted: header too short")
    width, height, colour, bit_depth, quality, seed, count, flags = _FIXED.unpack_from(data, _PREAMBLE.size)
    cursor = _PREAMBLE.size + _FIXED.size
    id_length = data[cursor]
    cursor += 1
    if cursor + id_length + HASH_BYTES > end:
        raise StreamError("corrupted: header fields overrun the header length")
    try:
        model_id = bytes(data[cursor : cursor + id_length]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StreamError("corrupted: model id is not UTF-8") from exc
    weights_hash = bytes(data[cursor + id_length : cursor + id_length + HASH_BYTES])
    if width == 0 or height == 0:
        raise StreamError(f"corrupted: image size {width}x{height}")
    if width * height > max_pixels:
        raise StreamError(f"image size {width}x{height} exceeds the pixel limit {max_pixels} "
                          "(raise it with VERSACODEC_MAX_PIXELS if this is intended)")
    try:
        colour_mode = ColourMode(colour)
    except ValueError as exc:
        raise StreamError(f"corrupted: unknown colour mode {colour}") from exc
    if count > MAX_SECTIONS:
        raise StreamError(f"corrupted: {count} sections exceeds the limit of {MAX_SECTIONS}")
    header = StreamHeader(width, height, model_id, weights_hash, quality, seed, colour_mode, bit_depth, flags)
    return header, end + _CRC.size, count
