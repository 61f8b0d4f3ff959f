"""The codec interface the harness drives: baselines and versacodec alike.

Every rate is measured from the real file a codec wrote, over the ORIGINAL image's pixels,
also when the codec coded a shrunk copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from PIL import Image


@dataclass(frozen=True)
class EncodedResult:
    data: bytes
    bpp: float  # len(data) × 8 / (original width × original height)
    setting: int | float | str  # the codec's own knob at the chosen point (quality, ratio, ...)
    shrink: float  # linear scale applied before coding (1.0: full size; 0.5: half width and height)
    width: int  # the original image's size, restored on decode
    height: int

    @classmethod
    def measure(cls, data: bytes, setting: int | float | str, shrink: float, width: int,
                height: int) -> EncodedResult:
        return cls(data, len(data) * 8 / (width * height), setting, shrink, width, height)


@runtime_checkable
class ImageCodec(Protocol):
    name: str  # the spec the user wrote, e.g. "webp" or "versacodec-generative:steps=4"

    @property
    def version(self) -> str:
        """Library versions and options: everything that changes the bytes (part of cache keys)."""
        ...

    @property
    def rate_rule(self) -> str:
        """How a target bpp is met, in words (recorded with every result)."""
        ...

    def available(self) -> tuple[bool, str]:
        """(True, "") or (False, why), e.g. a plugin or model that is not installed."""
        ...

    def encode(self, image: Image.Image, target_bpp: float) -> EncodedResult:
        """Largest file within target_bpp × pixels / 8 bytes; raises `errors.BudgetTooSmall` when even
        the smallest file (of the image shrunk to its smallest factor) exceeds it. The harness then
        records the image as a failure at that rate: wrong for task metrics, left out of the quality
        means, and counted."""
        ...

    def decode(self, encoded: EncodedResult) -> Image.Image:
        """RGB image at the original size."""
        ...
