"""Matching a target bpp with a codec that has one ordered knob (quality, ratio, ...).

The rule (docs/baselines.md): the highest setting whose real file is at most the budget, found by
bisection on the coded size. Below the codec's floor the image is shrunk (factors 1/1.5 .. 1/8),
coded, and upsampled back with Lanczos; among the factors that fit, the best PSNR wins and the
factor is recorded. With `always_shrink`, full size competes with the shrunk versions even when
it fits — coarse knobs (JPEG at 0.1 bpp) otherwise pick a starved full-size file over a
better-looking smaller one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

from PIL import Image

from versacodec.errors import BudgetTooSmall, InputError
from versacodec.evaluation.cache import EncodeCache, image_hash
from versacodec.evaluation.codecs import EncodedResult
from versacodec.latent_codec.rate_control import highest_quality_within
from versacodec.options import Rate

SHRINK_FACTORS = (1 / 1.5, 1 / 2, 1 / 3, 1 / 4, 1 / 6, 1 / 8)


def resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    return image if image.size == size else image.resize(size, Image.Resampling.LANCZOS)


def shrunk_size(width: int, height: int, factor: float) -> tuple[int, int]:
    return max(1, round(width * factor)), max(1, round(height * factor))


class SettingCodec(ABC):
    """A baseline codec: subclasses say how to code at one setting; the rate search is shared."""

    #: ordered so that a later setting never gives a (much) smaller file; index 0 is the floor
    settings: Sequence[int | float]

    def __init__(self, name: str, *, always_shrink: bool = False, cache: EncodeCache | None = None) -> None:
        self.name = name
        self.always_shrink = always_shrink
        self.cache = cache

    @classmethod
    def from_spec(cls, spec: str, options: dict[str, Any], *, cache: EncodeCache | None = None,
                  always_shrink: bool = False, model: str | Path | None = None) -> Self:
        if options:
            raise InputError(f"baseline codec '{spec.split(':')[0]}' takes no options (got {', '.join(options)})")
        return cls(spec, always_shrink=always_shrink, cache=cache)

    @property
    @abstractmethod
    def version(self) -> str: ...

    @abstractmethod
    def available(self) -> tuple[bool, str]: ...

    @abstractmethod
    def encode_setting(self, image: Image.Image, setting: int | float) -> bytes: ...

    @abstractmethod
    def decode_bytes(self, data: bytes) -> Image.Image: ...

    # ------------------------------------------------------------------ shared machinery
    @property
    def rate_rule(self) -> str:
        if self.always_shrink:
            return "best PSNR over full size and shrink factors 1/1.5-1/8, each at its largest file within budget"
        return "largest file within budget; below the floor shrink 1/1.5-1/8 and keep the best PSNR"

    def decode(self, encoded: EncodedResult) -> Image.Image:
        return resize(self.decode_bytes(encoded.data).convert("RGB"), (encoded.width, encoded.height))

    def encode(self, image: Image.Image, target_bpp: float) -> EncodedResult:
        budget = Rate(bpp=target_bpp).budget(image.width, image.height)
        key = image_hash(image)
        full = self.fit(image, budget, 1.0, key)
        if full is not None and not self.always_shrink:
            return full
        candidates = [] if full is None else [full]
        candidates += [fit for f in SHRINK_FACTORS if (fit := self.fit(image, budget, f, key)) is not None]
        if not candidates:
            raise BudgetTooSmall(f"{self.name}: even at 1/{1 / SHRINK_FACTORS[-1]:g} size the smallest file "
                                 f"exceeds the budget of {budget} bytes")
        if len(candidates) == 1:
            return candidates[0]
        return max(candidates, key=lambda result: self._psnr(image, result))

    def _psnr(self, original: Image.Image, result: EncodedResult) -> float:
        from versacodec.evaluation.quality import image_tensor
        from versacodec.metrics.quality import psnr

        return float(psnr(image_tensor(original), image_tensor(self.decode(result))))

    def fit(self, image: Image.Image, budget: int, factor: float, key: str) -> EncodedResult | None:
        """The highest setting within `budget` bytes at this shrink factor, or None below the floor."""
        coded_image = resize(image, shrunk_size(image.width, image.height, factor)) if factor != 1.0 else image
        files: dict[int, bytes] = {}

        def coded_at(index: int) -> bytes:
            if index not in files:
                files[index] = self._cached_encode(coded_image, self.settings[index], factor, key)
            return files[index]

        if len(coded_at(0)) > budget:
            return None
        choice = highest_quality_within(lambda index: len(coded_at(index)), budget, len(self.settings))
        return EncodedResult.measure(coded_at(choice.quality), self.settings[choice.quality], factor,
                                     image.width, image.height)

    def _cached_encode(self, image: Image.Image, setting: int | float, factor: float, key: str) -> bytes:
        label = f"{setting}@{factor:.4f}"
        if self.cache is not None and (data := self.cache.get(self.name, self.version, key, label)) is not None:
            return data
        data = self.encode_setting(image, setting)
        if self.cache is not None:
            self.cache.put(self.name, self.version, key, label, data)
        return data
