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
  "8G"), else half of the machine's physical memory;
- a byte budget against the smallest stream a model can write for the image's size
  (`StreamFloor`, computed from the model's integer tables by `versacodec.codec.memory` and kept
  in its bundle.json, so that the command line refuses such a budget before torch loads).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass
from typing import Any, Self

from versacodec.errors import BudgetTooSmall, InputError

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


# The range coder ends each string on a whole 32-bit word and may finish a word early; a stream
# holds at least the hyperprior's string and one of y's, so this much is taken off the bound.
CODER_SLACK_BYTES = 16


class BundleRecord:
    """A dataclass of numbers kept in bundle.json: `to_json` and `from_json`, which refuses a dict
    whose values `valid` rejects."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> Self:
        """From `to_json`'s dict; a ValueError, KeyError or TypeError when it is not one."""
        record = cls(**values)
        if not record.valid():
            raise ValueError(f"not a {cls.__name__}: {values}")
        return record

    def valid(self) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class StreamFloor(BundleRecord):
    """A lower bound on the bytes of any stream a model writes for a width × height image, whatever
    the quality, tags, layers or content: every y and z symbol costs at least −log₂ of the largest
    probability in its integer tables. Known from the size alone, so a budget below it is refused
    before the pixels are decoded."""

    block: int  # image sides are padded to multiples of this many pixels
    y_cell: int  # pixels per side of one position of y's grid
    z_cell: int  # and of z's
    y_channels: int
    y_symbol_bits: float  # the least information any y symbol carries (the best of the Gaussian tables)
    z_position_bits: float  # the least the z symbols of one position carry (every channel's table)

    def bytes(self, width: int, height: int) -> int:
        padded_width = math.ceil(width / self.block) * self.block
        padded_height = math.ceil(height / self.block) * self.block
        y_symbols = self.y_channels * (padded_width // self.y_cell) * (padded_height // self.y_cell)
        z_positions = (padded_width // self.z_cell) * (padded_height // self.z_cell)
        bits = y_symbols * self.y_symbol_bits + z_positions * self.z_position_bits
        return max(0, math.floor(bits / 8) - CODER_SLACK_BYTES)

    def check(self, budget: int, width: int, height: int) -> None:
        """Refuse a byte budget below the smallest stream of a width × height image."""
        floor = self.bytes(width, height)
        if budget < floor:
            raise BudgetTooSmall(f"the budget of {budget} bytes is below the smallest stream this model can "
                                 f"write for a {width}x{height} image (at least {floor} bytes)")

    def valid(self) -> bool:
        return all(isinstance(getattr(self, name), int) and getattr(self, name) > 0
                   for name in ("block", "y_cell", "z_cell", "y_channels")) \
            and all(isinstance(getattr(self, name), float) and getattr(self, name) >= 0
                    for name in ("y_symbol_bits", "z_position_bits"))


@dataclass(frozen=True)
class MemoryEstimate(BundleRecord):
    """An upper bound on the peak bytes of coding a width × height image with one model, from its
    size alone (`versacodec.codec.memory` explains the terms and computes the numbers from the
    model). Kept in the bundle's bundle.json beside the stream floor, so that the command line
    refuses an image above the memory limit before torch loads."""

    block: int  # image sides are padded to multiples of this many pixels
    y_cell: int  # pixels per side of one position of y's grid
    full_resolution_bytes: int  # per padded pixel while the latent space runs
    image_bytes: int  # per padded pixel while the latent codec runs
    y_position_bytes: int  # per position of y's grid while the latent codec runs
    coding_tile_positions: int  # y positions of one tile of the coding networks, halo included
    coding_tile_position_bytes: int  # per position of that tile
    latent_tile_pixels: int  # pixels of one latent-space tile, overlap included
    latent_tile_pixel_bytes: float  # per pixel of that tile

    def bytes(self, width: int, height: int) -> int:
        padded = math.ceil(width / self.block) * math.ceil(height / self.block) * self.block**2
        y_positions = padded / self.y_cell**2
        coding_tile = min(y_positions, self.coding_tile_positions) * self.coding_tile_position_bytes
        coding = padded * self.image_bytes + y_positions * self.y_position_bytes + coding_tile
        latent_tile = min(padded, self.latent_tile_pixels) * self.latent_tile_pixel_bytes
        return int(max(coding, padded * self.full_resolution_bytes + latent_tile))

    def check(self, width: int, height: int, action: str, error: type[Exception], limit: int | None = None) -> None:
        """Refuse an image whose estimate is above the memory limit (`memory_limit(limit)`)."""
        needed, allowed = self.bytes(width, height), memory_limit(limit)
        if needed > allowed:
            raise error(f"a {width}x{height} image needs about {format_size(needed)} to {action}, above the "
                        f"memory limit of {format_size(allowed)} (raise it with {MEMORY_VARIABLE})")

    def valid(self) -> bool:
        return all(isinstance(value, int | float) and value > 0 for value in asdict(self).values())


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


def peak_memory() -> int:
    """This process's own peak resident memory in bytes: /proc/self/status's VmHWM, counted from
    exec. `ru_maxrss` would not do: Linux carries the parent's peak across fork and exec, so a
    child of a large process reads its parent's number."""
    with open("/proc/self/status") as status:
        return int(next(line.split()[1] for line in status if line.startswith("VmHWM:"))) * 1024


def physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return _FALLBACK_PHYSICAL
