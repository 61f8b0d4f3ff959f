"""Coding settings as typed values, checked once where they are made.

The API, the command line, batch mode, the web page, the Pillow plugin and the evaluation harness
all build these objects from what their users wrote; the pipeline takes them as they are. Every
value the encoder accepts gives a stream that decodes, and a bad value is an InputError naming it.

- `Rate`: how many bits an encode may spend: a fixed quality, a target bpp or a byte budget.
  `Rate.budget` is the one place a target becomes bytes.
- `EncodeOptions` and `DecodeOptions`: everything else; None means "the model's default".

They are plain values: nothing here knows a model. What only a model can judge (its highest
quality, its decoders and their defaults) is `versacodec.codec.model.ModelDefaults`.

>>> options = EncodeOptions.of(bpp=0.05, layers=3)
>>> options.rate.budget(768, 512), options.layers
(2457, 3)
>>> EncodeOptions().rate.quality  # neither a quality nor a target: the default quality
75
>>> DecodeOptions(decoder="direct", steps=4)
Traceback (most recent call last):
...
versacodec.errors.InputError: steps and cfg apply to the generative decoder only
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields
from numbers import Integral, Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

from versacodec.container.format import MAX_VARINT
from versacodec.errors import InputError, VersacodecError
from versacodec.layers import MAX_LAYERS
from versacodec.semantics.profiles import TaskProfile, load_profile
from versacodec.semantics.tag_stream import pack_tags

if TYPE_CHECKING:
    from versacodec.semantics.regions import Region

DEFAULT_QUALITY = 75  # the rate when neither a quality nor a target is given
MAX_SEED = MAX_VARINT  # the header stores the seed as a varint
# Far above any useful rate (uncompressed 16-bit RGB is 48 bpp); larger targets only overflow budgets.
MAX_BPP = 64.0
DECODERS = ("direct", "generative")
# Where y is coded finer than the header's quality (a spatially varying rate, `semantics.importance`):
# nowhere, the encoder's importance map, or a task stream's regions. Default: regions for a task
# stream (COCO mAP 13.5 → 16.7 at 0.05 bpp), else none: the importance map gains machines 0.9 mAP
# there but costs people 0.018 LPIPS on Kodak, so it is the user's choice.
QUALITY_MAPS = ("none", "importance", "regions")
MAX_STEPS = 1000  # the diffusion schedule's length
MAX_CFG = 50.0


def _integer(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InputError(f"{name} must be an integer, not {value!r}", options=(name,))
    return int(value)


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InputError(f"{name} must be a number, not {value!r}", options=(name,))
    return float(value)


def _seed(value: object) -> int:
    seed = _integer(value, "seed")
    if not 0 <= seed <= MAX_SEED:
        raise InputError(f"seed must be from 0 to {MAX_SEED}, not {seed}", options=("seed",))
    return seed


def _set(instance: object, name: str, value: object) -> None:
    object.__setattr__(instance, name, value)  # frozen dataclasses store their checked values so


def check_quality_level(quality: int, levels: int, error: type[VersacodecError] = InputError) -> None:
    """The one place a quality meets a model's range of `levels` settings: an option (InputError)
    or a stream header (StreamError)."""
    if not 0 <= quality < levels:
        raise error(f"quality must be an integer from 0 to the model's highest ({levels - 1}), not {quality}",
                    options=("quality",))


@dataclass(frozen=True)
class Rate:
    """At most one of: a fixed `quality`, a target `bpp` (bits per pixel of the original image,
    real file size) or `max_bytes`; none given is the default quality."""

    quality: int | None = None
    bpp: float | None = None
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        given = [name for name in ("quality", "bpp", "max_bytes") if getattr(self, name) is not None]
        if len(given) > 1:
            raise InputError("give either a quality or a target bpp, not both", options=tuple(given))
        if self.quality is not None:
            quality = _integer(self.quality, "quality")
            if quality < 0:  # the model's own highest is checked by `ModelDefaults.check_quality`
                raise InputError(f"quality must be an integer from 0 to the model's highest, not {quality}",
                                 options=("quality",))
            _set(self, "quality", quality)
        elif self.bpp is not None:
            bpp = _number(self.bpp, "target bpp")
            if not (math.isfinite(bpp) and 0 < bpp <= MAX_BPP):
                raise InputError(f"target bpp must be a positive number up to {MAX_BPP:g}, not {bpp:g}",
                                 options=("bpp",))
            _set(self, "bpp", bpp)
        elif self.max_bytes is not None:
            max_bytes = _integer(self.max_bytes, "max_bytes")
            if max_bytes < 0:
                raise InputError(f"max_bytes must not be negative, not {max_bytes}", options=("max_bytes",))
            _set(self, "max_bytes", max_bytes)
        else:
            _set(self, "quality", DEFAULT_QUALITY)

    def budget(self, width: int, height: int) -> int | None:
        """The most bytes a stream of a width × height image may have; None for a fixed quality."""
        if self.bpp is not None:
            return math.floor(self.bpp * width * height / 8)
        return self.max_bytes


@dataclass(frozen=True)
class EncodeOptions:
    """How to encode: the rate, the seed stored for generative decoding, the tags (True: the
    tagger's classes when the model has a generative decoder, False: none, or ImageNet class ids),
    a task profile (a name or a .yaml file: a task-structured stream) with the user's `boxes`
    (Regions, or a JSON file of them) for its 'boxes' finder, and `layers` (K: a scalable stream
    of K layers). `quality_map`: one of QUALITY_MAPS (None: regions for a task stream, else
    none)."""

    rate: Rate = Rate()
    seed: int = 0
    tags: bool | tuple[int, ...] = True
    task: TaskProfile | None = None
    boxes: tuple[Region, ...] | None = None
    layers: int | None = None
    quality_map: str | None = None

    @classmethod
    def of(cls, **values: Any) -> EncodeOptions:
        """From flat keywords, as the API and the command line spell them: `quality`, `bpp` or
        `max_bytes`, and the fields above. An unknown keyword is a TypeError."""
        rate = Rate(**{name: values.pop(name) for name in RATE_KEYWORDS if name in values})
        return cls(rate, **values)

    def __post_init__(self) -> None:
        if not isinstance(self.rate, Rate):
            raise TypeError(f"rate must be a Rate, not {self.rate!r}")
        _set(self, "seed", _seed(self.seed))
        if not isinstance(self.tags, bool):
            _set(self, "tags", _tag_ids(self.tags))
        if self.task is not None and not isinstance(self.task, TaskProfile):
            _set(self, "task", load_profile(str(self.task)))
        if self.boxes is not None:
            from versacodec.semantics.regions import load_boxes

            _set(self, "boxes", tuple(load_boxes(self.boxes) if isinstance(self.boxes, str | Path) else self.boxes))
        if self.layers is not None:
            layers = _integer(self.layers, "layers")
            if not 2 <= layers <= MAX_LAYERS:
                raise InputError(f"layers must be between 2 and {MAX_LAYERS}, not {layers}", options=("layers",))
            _set(self, "layers", layers)
        if self.quality_map is not None and self.quality_map not in QUALITY_MAPS:
            raise InputError(f"quality map must be one of {', '.join(QUALITY_MAPS)}, not {self.quality_map!r}",
                             options=("quality_map",))
        if self.quality_map == "regions" and self.task is None:
            raise InputError("a regions quality map needs a task (the regions are the task's)",
                             options=("quality_map", "task"))

    @property
    def quality_map_policy(self) -> str:
        """The quality map this encode uses, its default resolved."""
        if self.quality_map is not None:
            return self.quality_map
        return "regions" if self.task is not None else "none"


def _tag_ids(tags: Any) -> tuple[int, ...]:
    """ImageNet class ids from a collection of integers (a string is iterable too: "abc" is not three tags)."""
    ids = tuple(tags) if isinstance(tags, Iterable) and not isinstance(tags, str | bytes) else None
    if ids is None or not all(isinstance(tag, Integral) and not isinstance(tag, bool) for tag in ids):
        raise InputError(f"tags must be True, False or a list of ImageNet class ids (integers 0-999), not {tags!r}",
                         options=("tags",))
    ids = tuple(int(tag) for tag in ids)
    try:
        pack_tags(list(ids))
    except ValueError as exc:
        raise InputError(f"invalid tags: {exc}", options=("tags",)) from exc
    return ids


@dataclass(frozen=True)
class DecodeOptions:
    """How to decode: `decoder` "direct" (synthesis → pixel decoder) or "generative" (the
    diffusion prior: `steps` 1 is the one-step mode, 0 no diffusion; `cfg` the guidance scale on
    the tags; `seed` instead of the stream's). None: the model's default."""

    decoder: str | None = None
    steps: int | None = None
    cfg: float | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.decoder is not None and self.decoder not in DECODERS:
            raise InputError(f"decoder must be one of {', '.join(DECODERS)}", options=("decoder",))
        if self.decoder == "direct" and (self.steps is not None or self.cfg is not None):
            raise InputError("steps and cfg apply to the generative decoder only", options=("steps", "cfg"))
        if self.steps is not None:
            steps = _integer(self.steps, "steps")
            if not 0 <= steps <= MAX_STEPS:
                raise InputError(f"steps must be between 0 and {MAX_STEPS}", options=("steps",))
            _set(self, "steps", steps)
        if self.cfg is not None:
            cfg = _number(self.cfg, "cfg")
            if not 0.0 <= cfg <= MAX_CFG:
                raise InputError(f"cfg must be between 0 and {MAX_CFG:g}", options=("cfg",))
            _set(self, "cfg", cfg)
        if self.seed is not None:
            _set(self, "seed", _seed(self.seed))


RATE_KEYWORDS = tuple(field.name for field in fields(Rate))
# The flat keywords of `EncodeOptions.of` and of `DecodeOptions` (a `seed` goes to both).
ENCODE_KEYWORDS = (*RATE_KEYWORDS, *(field.name for field in fields(EncodeOptions) if field.name != "rate"))
DECODE_KEYWORDS = tuple(field.name for field in fields(DecodeOptions))
