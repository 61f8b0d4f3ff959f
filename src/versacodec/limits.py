"""Every size limit on coding one image, in one place.

A stream of a few bytes can declare a very large image, and an image file a very large size, so
sizes are checked before anything of that size is allocated:

- pixels (width × height) of an image or of what a stream declares: `max_pixels`, else
  $VERSACODEC_MAX_PIXELS, else 2²⁸;
- sections per stream: `max_sections`, else $VERSACODEC_MAX_SECTIONS, else 4096;
- aspect ratio (an encoded image's long side over its short side): $VERSACODEC_MAX_ASPECT, else
  100. The codec pads both sides to its 64-pixel block, so a 100000×1 strip costs as much as
  100000×64 and can fit no ordinary budget;
- working memory: the estimate of the peak memory an image needs (`CodecModel.working_memory`)
  against `max_memory`, else $VERSACODEC_MAX_MEMORY (bytes, or with a K/M/G/T suffix: "512M",
  "8G"), else half of the machine's physical memory.
"""

from __future__ import annotations

import os
import re

from versacodec.errors import InputError

PIXELS_VARIABLE = "VERSACODEC_MAX_PIXELS"
SECTIONS_VARIABLE = "VERSACODEC_MAX_SECTIONS"
MEMORY_VARIABLE = "VERSACODEC_MAX_MEMORY"
ASPECT_VARIABLE = "VERSACODEC_MAX_ASPECT"
DEFAULT_MAX_PIXELS = 1 << 28  # 268 megapixels
DEFAULT_MAX_SECTIONS = 4096
DEFAULT_MAX_ASPECT = 100  # wider than any panorama a camera makes (about 10:1)
_FALLBACK_PHYSICAL = 16 << 30  # when the platform cannot report its memory
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?)I?B?", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def pixel_limit(max_pixels: int | None = None) -> int:
    """The largest image (width × height) to code or to accept from a stream."""
    return _whole_number(max_pixels, PIXELS_VARIABLE, DEFAULT_MAX_PIXELS)


def section_limit(max_sections: int | None = None) -> int:
    return _whole_number(max_sections, SECTIONS_VARIABLE, DEFAULT_MAX_SECTIONS)


def check_aspect(width: int, height: int) -> None:
    """Refuse an image to encode whose long side is more than the limit times its short side."""
    limit = _whole_number(None, ASPECT_VARIABLE, DEFAULT_MAX_ASPECT)
    if max(width, height) > limit * min(width, height):
        raise InputError(f"image is {width}x{height}: its sides differ more than {limit} to 1, the aspect limit "
                         f"(raise it with {ASPECT_VARIABLE} if this is intended)")


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


def _whole_number(value: int | None, variable: str, default: int) -> int:
    if value is not None:
        return value
    configured = os.environ.get(variable)
    if not configured:
        return default
    if not configured.isdigit():
        raise InputError(f"{variable}={configured!r} is not a whole number")
    return int(configured)


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
