"""Reading and writing .vcx streams (layout documented in docs/format.md).

At 0.01–0.05 bits per pixel a whole image is a few hundred bytes, so the container is compact.
Format 2.0 (written since v5): unsigned LEB128 varints for sizes, a 4-byte weights hash and no
model name, one byte of kind and a length per section, one CRC-32 at the end over everything: about
21 bytes plus 2–3 per section. Format 1.0 (v1–v4: a model name, an 8-byte hash, a CRC per header and
section, about 45 bytes plus 7–8 per section) is still read, and a 1.0 stream is written back as
1.0 by tools that keep its sections (`extract`, `truncate`), so nothing is re-encoded.

The parser trusts nothing: every length is bounded by the bytes present, every CRC is checked,
dimensions are capped by a pixel limit, and each failure is a StreamError saying what is wrong.
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass, field, replace

from versacodec.errors import StreamError
from versacodec.limits import PIXELS_VARIABLE, SECTIONS_VARIABLE, pixel_limit, section_limit

MAGIC = b"\x89VCX"
FORMAT_VERSION = (2, 0)  # (major, minor) written; a reader accepts any minor of the majors it reads
READ_MAJORS = (1, 2)
HASH_BYTES = 8  # the bundle's weights hash (`bundle.weights_hash`); 1.x streams store all of it
# 2.x streams store its first 4 bytes: a stream of other weights is still refused (a chance
# collision is one in 4 billion), for 4 bytes less in a budget of a few hundred.
STREAM_HASH_BYTES = 4
_CRC = struct.Struct(">I")
_MAX_VARINT_BYTES = 5
MAX_VARINT = (1 << 7 * _MAX_VARINT_BYTES) - 1  # the largest size, count or seed a reader accepts


class ColourMode(enum.IntEnum):
    """How the decoder should present the image (the coded data is always RGB)."""

    RGB = 0
    GREYSCALE = 1  # the input was greyscale: decode to mode "L"


class SectionKind(enum.IntEnum):
    """The kinds of section a reader knows; which a stream holds and what their payloads mean is
    `versacodec.codec.layout`'s business."""

    HYPERPRIOR = 1  # side information z; always needed
    LATENT = 2  # latent groups y (one section per region set when task-structured)
    TAGS = 3  # semantic tag ids for the generative decoder
    REGION_MAP_V1 = 4  # read only: the region map before its label table
    LAYER = 5  # one scalable layer (palette base or refinement)
    METADATA = 6  # UTF-8 JSON, informational only
    REGION_MAP = 7  # which latent positions each region section covers
    QUALITY_MAP = 8  # where y is coded at another quality than the header's (spatially varying rate)


SECTION_CRITICAL = 0x01  # a reader that does not know the kind must refuse the stream
_CRITICAL_KIND_BIT = 0x80  # 2.x: the critical flag is the kind byte's top bit (kinds are 1..127)


def put_varint(value: int) -> bytes:
    if not 0 <= value <= MAX_VARINT:  # a writer must never make what get_varint refuses
        raise ValueError(f"varint {value} is outside 0..{MAX_VARINT}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def get_varint(data: bytes, offset: int, what: str) -> tuple[int, int]:
    value = 0
    for index in range(_MAX_VARINT_BYTES):
        if offset + index >= len(data):
            raise StreamError(f"truncated: {what} is cut short")
        byte = data[offset + index]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return value, offset + index + 1
    raise StreamError(f"corrupted: {what} is not a valid number")


@dataclass(frozen=True)
class StreamHeader:
    width: int
    height: int
    model_id: str  # 1.x streams only: the bundle's name ("" in 2.x, whose hash names the model)
    weights_hash: bytes  # first bytes of SHA-256 over the model's bitstream-defining weights: 8 (1.x), 4 (2.x)
    quality: int  # rate setting (quality index of the latent codec)
    seed: int = 0  # random seed for generative decoding
    colour: ColourMode = ColourMode.RGB
    bit_depth: int = 8  # of the original image (informational): 8 or 16
    flags: int = 0


@dataclass
class Section:
    kind: int
    payload: bytes
    flags: int = SECTION_CRITICAL

    def header_bytes(self, major: int = FORMAT_VERSION[0]) -> bytes:
        """The section's framing before its payload in format `major` (1.x: with its own CRC)."""
        if major == 1:
            prefix = bytes([self.kind, self.flags]) + put_varint(len(self.payload))
            return prefix + _CRC.pack(zlib.crc32(self.payload, zlib.crc32(prefix)))
        if not 0 < self.kind < _CRITICAL_KIND_BIT:
            raise ValueError(f"section kind {self.kind} is outside 1..127")
        critical = _CRITICAL_KIND_BIT if self.flags & SECTION_CRITICAL else 0
        return bytes([self.kind | critical]) + put_varint(len(self.payload))

    def coded_size(self, major: int = FORMAT_VERSION[0]) -> int:
        return len(self.header_bytes(major)) + len(self.payload)

    @property
    def kind_name(self) -> str:
        try:
            return SectionKind(self.kind).name.lower()
        except ValueError:
            return f"unknown-{self.kind}"


@dataclass
class Stream:
    """A header and sections, written in `version`'s major layout: new streams in FORMAT_VERSION,
    a parsed stream in the major it was read in (as the minor this versacodec writes: fields of a
    later minor are not kept)."""

    header: StreamHeader
    sections: list[Section] = field(default_factory=list)
    version: tuple[int, int] = FORMAT_VERSION

    def header_bytes(self) -> bytes:
        if self.version[0] == 1:
            return _encode_header_v1(self.header, len(self.sections))
        return frame_header(_header_body(self.header))

    def to_bytes(self) -> bytes:
        return self.with_header_body(None)

    def with_header_body(self, body: bytes | None) -> bytes:
        """The stream's bytes; with `body`, that header body in place of its own, framed and
        checksummed (robustness tests feed parsers damaged fields this way)."""
        major = self.version[0]
        if body is None:
            header = self.header_bytes()
        else:
            header = frame_header_v1(body) if major == 1 else frame_header(body)
        parts = [header]
        for section in self.sections:
            parts += [section.header_bytes(major), section.payload]
        data = b"".join(parts)
        return data if major == 1 else data + _CRC.pack(zlib.crc32(data))

    def checksum_bytes(self) -> int:
        """Bytes of the stream-wide checksum at the end (2.x; 1.x checks per header and section)."""
        return 0 if self.version[0] == 1 else _CRC.size

    def byte_breakdown(self) -> dict[str, int]:
        """Where the bytes of `to_bytes()` go: "header", "framing" (section headers and
        checksums), and the payload bytes of each section kind by name."""
        sizes = {"header": len(self.header_bytes()), "framing": self.checksum_bytes()}
        for section in self.sections:
            sizes["framing"] += section.coded_size(self.version[0]) - len(section.payload)
            sizes[section.kind_name] = sizes.get(section.kind_name, 0) + len(section.payload)
        return sizes

    def sections_of(self, kind: SectionKind) -> list[Section]:
        return [s for s in self.sections if s.kind == kind]

    def section(self, kind: SectionKind) -> Section:
        found = self.sections_of(kind)
        if len(found) != 1:
            raise StreamError(f"stream has {len(found)} {kind.name.lower()} sections, expected exactly 1")
        return found[0]

    def with_sections(self, sections: list[Section]) -> Stream:
        return Stream(replace(self.header), list(sections), self.version)

    @classmethod
    def from_bytes(cls, data: bytes, max_pixels: int | None = None, max_sections: int | None = None) -> Stream:
        data = bytes(data)
        major, minor = _read_version(data)
        if major == 1:
            return _read_v1(data, (major, minor), pixel_limit(max_pixels), section_limit(max_sections))
        return _read_v2(data, (major, minor), pixel_limit(max_pixels), section_limit(max_sections))


def _read_version(data: bytes) -> tuple[int, int]:
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise StreamError("not a versacodec stream (wrong magic bytes)")
    if len(data) < len(MAGIC) + 2:
        raise StreamError("truncated: the header is incomplete")
    major, minor = data[len(MAGIC)], data[len(MAGIC) + 1]
    if major not in READ_MAJORS:
        readable = ", ".join(f"{m}.x" for m in READ_MAJORS)
        raise StreamError(f"format version {major}.{minor} is not supported by this versacodec "
                          f"(reads {readable}); upgrade versacodec")
    return major, minor


def _read_v2(data: bytes, version: tuple[int, int], max_pixels: int, max_sections: int) -> Stream:
    """2.x, in three passes so each failure is named for what it is: the framing (lengths that run
    past the end: truncation), then the checksum at the end (corruption), then the fields."""
    end = len(data) - _CRC.size
    if end < len(MAGIC) + 3:
        raise StreamError("truncated: the header is incomplete")
    length, body_start = get_varint(data, len(MAGIC) + 2, "the header length")
    if body_start + length > end:
        raise StreamError("truncated: the header is incomplete")
    spans, offset = [], body_start + length
    while offset < end:
        where = f"section {len(spans) + 1}"
        if len(spans) >= max_sections:
            raise StreamError(f"corrupted: the number of sections exceeds the limit of {max_sections} "
                              f"(raise it with {SECTIONS_VARIABLE} if this is intended)")
        size, cursor = get_varint(data, offset + 1, f"the length of {where}")
        if cursor + size > end:
            raise StreamError(f"truncated: {where} declares {size} bytes, {max(0, end - cursor)} remain")
        spans.append((data[offset], cursor, cursor + size))
        offset = cursor + size
    (crc,) = _CRC.unpack_from(data, end)
    if zlib.crc32(data[:end]) != crc:
        raise StreamError("corrupted: CRC mismatch (the stream was damaged)")
    body = data[: body_start + length]  # fields past the known ones belong to later minor versions
    header_fields, cursor = _read_size_and_rate(body, body_start)
    flags, cursor = get_varint(body, cursor, "the flags")
    if cursor + STREAM_HASH_BYTES > len(body):
        raise StreamError("corrupted: header fields overrun the header length")
    header = _checked_header(*header_fields, "", body[cursor: cursor + STREAM_HASH_BYTES], flags, max_pixels)
    sections = []
    for kind_byte, start, stop in spans:
        kind, critical = kind_byte & ~_CRITICAL_KIND_BIT, kind_byte & _CRITICAL_KIND_BIT
        if kind not in SectionKind.__members__.values():
            if critical:
                raise StreamError(f"section kind {kind} is required but unknown to this version")
            continue  # a later minor version's optional section: skip it
        sections.append(Section(kind, data[start:stop], SECTION_CRITICAL if critical else 0))
    return Stream(header, sections, version)


def _read_size_and_rate(body: bytes, cursor: int) -> tuple[tuple[int, int, int, int, int], int]:
    """Width, height, colour byte, quality and seed: the fields both majors open with."""
    width, cursor = get_varint(body, cursor, "the image width")
    height, cursor = get_varint(body, cursor, "the image height")
    if cursor + 2 > len(body):
        raise StreamError("corrupted: header fields overrun the header length")
    colour_byte, quality = body[cursor], body[cursor + 1]
    seed, cursor = get_varint(body, cursor + 2, "the seed")
    return (width, height, colour_byte, quality, seed), cursor


def _checked_header(width: int, height: int, colour_byte: int, quality: int, seed: int, model_id: str,
                    weights_hash: bytes, flags: int, max_pixels: int) -> StreamHeader:
    if width == 0 or height == 0:
        raise StreamError(f"corrupted: image size {width}x{height}")
    if width * height > max_pixels:
        raise StreamError(f"image size {width}x{height} exceeds the pixel limit {max_pixels} "
                          f"(raise it with {PIXELS_VARIABLE} if this is intended)")
    try:
        colour = ColourMode(colour_byte & 0x0F)
        bit_depth = {0: 8, 1: 16}[colour_byte >> 4]
    except (ValueError, KeyError) as exc:
        raise StreamError(f"corrupted: unknown colour byte {colour_byte:#04x}") from exc
    return StreamHeader(width, height, model_id, weights_hash, quality, seed, colour, bit_depth, flags)


def _check_writable(header: StreamHeader) -> None:
    if not 0 <= header.quality <= 255:
        raise ValueError("quality must fit one byte")


def _colour_byte(header: StreamHeader) -> bytes:
    return bytes([int(header.colour) | {8: 0, 16: 1}[header.bit_depth] << 4])


def _header_body(header: StreamHeader) -> bytes:
    """2.x header body: size, colour, quality, seed, flags, the 4-byte weights hash."""
    if header.model_id:
        raise ValueError("format 2 streams carry no model id (the weights hash names the model)")
    if len(header.weights_hash) != STREAM_HASH_BYTES:
        raise ValueError(f"a format 2 weights hash is {STREAM_HASH_BYTES} bytes")
    _check_writable(header)
    return b"".join([put_varint(header.width), put_varint(header.height), _colour_byte(header),
                     bytes([header.quality]), put_varint(header.seed), put_varint(header.flags),
                     header.weights_hash])


def frame_header(body: bytes) -> bytes:
    """2.x: magic, version, body length and the header body (the stream's checksum covers them)."""
    return MAGIC + bytes(FORMAT_VERSION) + put_varint(len(body)) + body


# ---------------------------------------------------------------------- format 1.x (v1–v4 streams)
def _read_v1(data: bytes, version: tuple[int, int], max_pixels: int, max_sections: int) -> Stream:
    header, offset, count = _decode_header_v1(data, max_pixels, max_sections)
    sections = []
    for index in range(count):
        where = f"section {index + 1} of {count}"
        if len(data) - offset < 2:
            raise StreamError(f"truncated: {where} is missing or cut short")
        kind, flags = data[offset], data[offset + 1]
        length, cursor = get_varint(data, offset + 2, f"the length of {where}")
        if len(data) - cursor < _CRC.size + length:
            remain = max(0, len(data) - cursor - _CRC.size)
            raise StreamError(f"truncated: {where} declares {length} bytes, {remain} remain")
        (crc,) = _CRC.unpack_from(data, cursor)
        payload = data[cursor + _CRC.size : cursor + _CRC.size + length]
        if zlib.crc32(payload, zlib.crc32(data[offset:cursor])) != crc:
            raise StreamError(f"corrupted: CRC mismatch in {where} ({Section(kind, b'').kind_name})")
        offset = cursor + _CRC.size + length
        if kind not in SectionKind.__members__.values():
            if flags & SECTION_CRITICAL:
                raise StreamError(f"section kind {kind} is required but unknown to this version")
            continue  # a later minor version's optional section: skip it
        sections.append(Section(kind, payload, flags))
    if offset != len(data):
        raise StreamError(f"corrupted: {len(data) - offset} unexpected bytes after the last section")
    return Stream(header, sections, version)


def _encode_header_v1(header: StreamHeader, section_count: int) -> bytes:
    model_id = header.model_id.encode("utf-8")
    if len(model_id) > 255:
        raise ValueError("model id longer than 255 bytes")
    if len(header.weights_hash) != HASH_BYTES:
        raise ValueError(f"a format 1 weights hash is {HASH_BYTES} bytes")
    _check_writable(header)
    body = b"".join([
        put_varint(header.width), put_varint(header.height), _colour_byte(header),
        bytes([header.quality]), put_varint(header.seed), put_varint(section_count), put_varint(header.flags),
        bytes([len(model_id)]), model_id, header.weights_hash,
    ])
    return frame_header_v1(body)


def frame_header_v1(body: bytes) -> bytes:
    """1.x: magic, version, body length, the header body and the CRC over all of them."""
    start = MAGIC + bytes((1, 0)) + put_varint(len(body)) + body
    return start + _CRC.pack(zlib.crc32(start))


def _decode_header_v1(data: bytes, max_pixels: int, max_sections: int) -> tuple[StreamHeader, int, int]:
    length, body_start = get_varint(data, len(MAGIC) + 2, "the header length")
    end = body_start + length
    if len(data) < end + _CRC.size:
        raise StreamError("truncated: the header is incomplete")
    (crc,) = _CRC.unpack_from(data, end)
    if zlib.crc32(data[:end]) != crc:
        raise StreamError("corrupted: header CRC mismatch")
    body = data[:end]  # fields past the known ones belong to later minor versions and are skipped
    fields, cursor = _read_size_and_rate(body, body_start)
    count, cursor = get_varint(body, cursor, "the section count")
    flags, cursor = get_varint(body, cursor, "the flags")
    if cursor >= end:
        raise StreamError("corrupted: header fields overrun the header length")
    id_length = body[cursor]
    cursor += 1
    if cursor + id_length + HASH_BYTES > end:
        raise StreamError("corrupted: header fields overrun the header length")
    try:
        model_id = body[cursor : cursor + id_length].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StreamError("corrupted: model id is not UTF-8") from exc
    weights_hash = body[cursor + id_length : cursor + id_length + HASH_BYTES]
    header = _checked_header(*fields, model_id, weights_hash, flags, max_pixels)
    if count > max_sections:
        raise StreamError(f"corrupted: {count} sections exceeds the limit of {max_sections} "
                          f"(raise it with {SECTIONS_VARIABLE} if this is intended)")
    return header, end + _CRC.size, count
