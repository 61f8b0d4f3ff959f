"""Damaged streams for robustness testing (tests/test_fuzz.py, benchmarks/fuzz.py).

A `Mutation` damages a valid stream at one of five depths:
- "raw": byte edits (flips, insertions, deletions, splices from another stream, truncation) on the
  whole file. The CRCs catch nearly all of them, so these exercise the parser's framing checks.
- "header": byte edits inside the header body, re-framed with fresh checksums, so garbage
  fields reach the field checks.
- "fields": header fields replaced by chosen values (sizes up to and past every limit, quality,
  colour, seed, flags), re-sealed.
- "payload": byte edits inside one section's payload, re-sealed, so damaged entropy-coded data
  and tags reach the decoder.
- "section": one section's kind and flags replaced, or the section dropped or duplicated, re-sealed.
Mutations are plain values, so hypothesis can draw and shrink them and a seeded `random.Random`
can generate the same shapes for a long campaign.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace

from versacodec.container.format import MAGIC, MAX_VARINT, Section, Stream, get_varint

EDIT_KINDS = ("flip", "insert", "delete", "splice", "truncate")
TARGETS = ("raw", "header", "fields", "payload", "section")
SECTION_OPS = ("retag", "drop", "duplicate")
FIELDS = ("width", "height", "quality", "seed", "colour", "bit_depth", "flags")


@dataclass(frozen=True)
class ByteEdit:
    kind: str  # one of EDIT_KINDS
    position: int  # taken modulo the length of the bytes edited, so any value fits any input
    length: int = 1  # bytes deleted or spliced
    value: int = 1  # flip mask / inserted byte / splice source offset


@dataclass(frozen=True)
class Mutation:
    target: str  # one of TARGETS
    edits: tuple[ByteEdit, ...] = ()
    section: int = 0  # which section ("payload", "section"), modulo the count
    section_op: str = "retag"  # one of SECTION_OPS
    kind: int = 0  # new section kind and flags for "retag"
    flags: int = 0
    fields: tuple[tuple[str, int], ...] = ()  # (field, value) for "fields"


def edit_bytes(data: bytes, edits: Sequence[ByteEdit], donor: bytes = b"") -> bytes:
    out = bytearray(data)
    for edit in edits:
        at = edit.position % (len(out) + 1)
        if edit.kind == "flip" and out:
            out[at % len(out)] ^= edit.value & 0xFF or 1
        elif edit.kind == "insert":
            out[at:at] = bytes([edit.value & 0xFF])
        elif edit.kind == "delete":
            del out[at : at + edit.length]
        elif edit.kind == "splice" and donor:
            start = edit.value % len(donor)
            out[at : at + edit.length] = donor[start : start + edit.length]
        elif edit.kind == "truncate":
            del out[at:]
    return bytes(out)


def mutate(data: bytes, mutation: Mutation, donor: bytes = b"") -> bytes:
    """The damaged copy of `data` (a valid stream); `donor` (another stream) feeds splices."""
    if mutation.target == "raw":
        return edit_bytes(data, mutation.edits, donor)
    stream = Stream.from_bytes(data)
    sections = [Section(s.kind, s.payload, s.flags) for s in stream.sections]
    if mutation.target == "header":
        header = stream.header_bytes()
        length, body_start = get_varint(header, len(MAGIC) + 2, "header length")
        body = edit_bytes(header[body_start : body_start + length], mutation.edits, donor)
        return Stream(stream.header, sections, stream.version).with_header_body(body)
    if mutation.target == "fields":
        values = dict(mutation.fields)
        # Fold values into what the header can encode: quality is one byte, colour a nibble, depth 8 or 16,
        # sizes and the seed at most MAX_VARINT (longer varints come from the byte edits of "header").
        for name, size in (("quality", 256), ("colour", 16)):
            if name in values:
                values[name] %= size
        for name in ("width", "height", "seed", "flags"):
            if name in values:
                values[name] = min(values[name], MAX_VARINT)
        if "bit_depth" in values:
            values["bit_depth"] = 16 if values["bit_depth"] % 2 else 8
        return Stream(replace(stream.header, **values), sections, stream.version).to_bytes()
    index = mutation.section % len(sections)
    chosen = sections[index]
    if mutation.target == "payload":
        sections[index] = Section(chosen.kind, edit_bytes(chosen.payload, mutation.edits, donor), chosen.flags)
    elif mutation.section_op == "retag":  # 2.x kinds are 1..127 (the top bit is the critical flag)
        kind = mutation.kind & 0xFF if stream.version[0] == 1 else (mutation.kind & 0x7F) or 0x7F
        sections[index] = Section(kind, chosen.payload, mutation.flags & 0xFF)
    elif mutation.section_op == "drop":
        del sections[index]
    else:
        sections.insert(index, chosen)
    return Stream(stream.header, sections, stream.version).to_bytes()


def random_mutation(rng: random.Random) -> Mutation:
    """One mutation drawn with the weights of the fuzz campaign (most reach past the CRCs)."""
    target = rng.choices(TARGETS, weights=(3, 2, 2, 4, 1))[0]
    edits = tuple(_random_edit(rng) for _ in range(rng.choice((1, 1, 2, 3))))
    if target == "fields":
        count = rng.choice((1, 1, 2))
        return Mutation(target, fields=tuple((name, _random_field(rng, name)) for name in rng.sample(FIELDS, count)))
    return Mutation(target, edits, section=rng.randrange(8), section_op=rng.choice(SECTION_OPS),
                    kind=rng.randrange(256), flags=rng.randrange(256))


def _random_edit(rng: random.Random) -> ByteEdit:
    return ByteEdit(rng.choice(EDIT_KINDS), rng.randrange(1 << 16), rng.choice((1, 1, 2, 4, 16, 64)),
                    rng.randrange(1, 256) if rng.random() < 0.5 else 1 << rng.randrange(8))


def _random_field(rng: random.Random, name: str) -> int:
    if name in ("width", "height"):
        # Mostly near real sizes, sometimes past the pixel limits and the 5-byte varint range.
        return rng.choice((1, 2, 7, 63, 64, 65, 127, 300, 1 << 12, 1 << 20, (1 << 35) - 1, 1 << 35))
    if name == "quality":
        return rng.randrange(256)
    if name == "colour":
        return rng.randrange(16)
    return rng.randrange(1 << rng.choice((1, 8, 32)))
