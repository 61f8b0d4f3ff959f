"""The working-memory limit for coding one image.

Pixels and sections are limited where streams are parsed (container.format); memory is limited
here. A stream of a few bytes can declare a very large image, so the decoder compares an estimate
of the peak memory that image needs against the limit before allocating anything of that size.
The limit is the `max_memory` argument, else $VERSACODEC_MAX_MEMORY (bytes, or with a K/M/G/T
suffix: "512M", "8G"), else half of the machine's physical memory.
"""

from __future__ import annotations

import os
import re

from versacodec.errors import InputError

MEMORY_VARIABLE = "VERSACODEC_MAX_MEMORY"
_FALLBACK_PHYSICAL = 16 << 30  # when the platform cannot report its memory
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?)I?B?", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """'8G' → 8 GiB; units are binary (K = 1024); a bare number is bytes."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a size like 512M or 8G")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def format_size(size: int) -> str:
    for unit in ("T", "G", "M", "K"):
        if size >= _UNITS[unit]:
            return f"{size / _UNITS[unit]:.1f} {unit}iB"
    return f"{size} bytes"


def physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return _FALLBACK_PHYSICAL


def memory_limit(max_memory: int | None = None) -> int:
    if max_memory is not None:
        return max_memory
    configured = os.environ.get(MEMORY_VARIABLE)
    if not configured:
        return physical_memory() // 2
    try:
        return parse_size(configured)
    except ValueError as exc:
        raise InputError(f"{MEMORY_VARIABLE}: {exc}") from exc
