"""The TAGS section: an ordered list of ImageNet-1k class ids, packed losslessly.

Layout: 3 bits of count (0-7), then 10 bits per class id, most-confident first, zero-padded to
whole bytes — 4 to 10 bytes for 1 to 5 tags, so ≈10 bits per tag.
"""

from __future__ import annotations

from versacodec.errors import StreamError

COUNT_BITS = 3
ID_BITS = 10
NUM_CLASSES = 1000
MAX_TAGS = (1 << COUNT_BITS) - 1


def pack_tags(tags: list[int]) -> bytes:
    if len(tags) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags fit the tags section")
    value, bits = len(tags), COUNT_BITS
    for tag in tags:
        if not 0 <= tag < NUM_CLASSES:
            raise ValueError(f"tag id {tag} is not an ImageNet-1k class")
        value = (value << ID_BITS) | tag
        bits += ID_BITS
    padding = -bits % 8
    return (value << padding).to_bytes((bits + padding) // 8, "big")


def unpack_tags(payload: bytes) -> list[int]:
    if not payload:
        raise StreamError("corrupted: empty tags section")
    total = len(payload) * 8
    value = int.from_bytes(payload, "big")
    count = value >> (total - COUNT_BITS)
    needed = COUNT_BITS + count * ID_BITS
    if needed > total or total - needed >= 8:
        raise StreamError("corrupted: tags section length does not match its tag count")
    tags = []
    for index in range(count):
        shift = total - COUNT_BITS - (index + 1) * ID_BITS
        tag = (value >> shift) & ((1 << ID_BITS) - 1)
        if tag >= NUM_CLASSES:
            raise StreamError(f"corrupted: tag id {tag} is not an ImageNet-1k class")
        tags.append(tag)
    return tags
