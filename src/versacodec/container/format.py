"""Reading and writing .vcx streams (layout documented in docs/format.md).

At 0.01–0.05 bits per pixel a whole image is a few hundred bytes, so the container is compact:
unsigned LEB128 varints for sizes and counts, an 8-byte weights hash, and 6–9 bytes per section.

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
FORMAT_VERSION = (1, 0)  # (major, minor): a reader accepts any minor of its major
HASH_BYTES = 8
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


SECTION_CRITICAL = 0x01  # a reader that does not know the kind must refuse the stream


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
    model_id: str
    weights_hash: bytes  # first 8 bytes of SHA-256 over the model's bitstream-defining weights
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

    def header_bytes(self) -> bytes:
        prefix = bytes([self.kind, self.flags]) + put_varint(len(self.payload))
        return prefix + _CRC.pack(zlib.crc32(self.payload, zlib.crc32(prefix)))

    @property
    def coded_size(self) -> int:
        return len(self.header_bytes()) + len(self.payload)

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
            parts += [section.header_bytes(), section.payload]
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
    def from_bytes(cls, data: bytes, max_pixels: int | None = None, max_sections: int | None = None) -> Stream:
        data = bytes(data)
        header, offset, count = _decode_header(data, pixel_limit(max_pixels), section_limit(max_sections))
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
        return cls(header, sections)


def _encode_header(header: StreamHeader, section_count: int) -> bytes:
    model_id = header.model_id.encode("utf-8")
    if len(model_id) > 255:
        raise ValueError("model id longer than 255 bytes")
    if len(header.weights_hash) != HASH_BYTES:
        raise ValueError(f"weights hash must be {HASH_BYTES} bytes")
    if not 0 <= header.quality <= 255:
        raise ValueError("quality must fit one byte")
    depth_code = {8: 0, 16: 1}[header.bit_depth]
    body = b"".join([
        put_varint(header.width), put_varint(header.height), bytes([int(header.colour) | depth_code << 4]),
        bytes([header.quality]), put_varint(header.seed), put_varint(section_count), put_varint(header.flags),
        bytes([len(model_id)]), model_id, header.weights_hash,
    ])
    return frame_header(body)


def frame_header(body: bytes) -> bytes:
    """Magic, version, body length, the header body and the CRC over all of them."""
    start = MAGIC + bytes(FORMAT_VERSION) + put_varint(len(body)) + body
    return start + _CRC.pack(zlib.crc32(start))


def _decode_header(data: bytes, max_pixels: int, max_sections: int) -> tuple[StreamHeader, int, int]:
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise StreamError("not a versacodec stream (wrong magic bytes)")
    if len(data) < len(MAGIC) + 2:
        raise StreamError("truncated: the header is incomplete")
    major, minor = data[len(MAGIC)], data[len(MAGIC) + 1]
    if major != FORMAT_VERSION[0]:
        raise StreamError(f"format version {major}.{minor} is not supported by this versacodec "
                          f"(reads {FORMAT_VERSION[0]}.x); upgrade versacodec")
    length, body_start = get_varint(data, len(MAGIC) + 2, "the header length")
    end = body_start + length
    if len(data) < end + _CRC.size:
        raise StreamError("truncated: the header is incomplete")
    (crc,) = _CRC.unpack_from(data, end)
    if zlib.crc32(data[:end]) != crc:
        raise StreamError("corrupted: header CRC mismatch")
    body = data[:end]  # fields past the known ones belong to later minor versions and are skipped
    width, cursor = get_varint(body, body_start, "the image width")
    height, cursor = get_varint(body, cursor, "the image height")
    if cursor + 2 > end:
        raise StreamError("corrupted: header fields overrun the header length")
    colour_byte, quality = body[cursor], body[cursor + 1]
    seed, cursor = get_varint(body, cursor + 2, "the seed")
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
    if count > max_sections:
        raise StreamError(f"corrupted: {count} sections exceeds the limit of {max_sections} "
                          f"(raise it with {SECTIONS_VARIABLE} if this is intended)")
    header = StreamHeader(width, height, model_id, weights_hash, quality, seed, colour, bit_depth, flags)
    return header, end + _CRC.size, count
