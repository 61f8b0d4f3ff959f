"""One comparison on the page: versacodec at a target bpp, decoded each requested way, and the
classical codecs at the bpp versacodec actually reached, each with its real file, PSNR and the
machine-task overlays.

The baselines get versacodec's real file size as their budget (not the requested bpp), so every
picture on the page costs at most the same number of bytes. They use the evaluation harness's
rate rule: the largest file within budget, shrinking the image below a codec's floor.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from PIL import Image

from versacodec.codec import Codec
from versacodec.codec.model import ModelDefaults
from versacodec.errors import BudgetTooSmall, InputError, ModelError
from versacodec.evaluation.catalog import make_codec
from versacodec.evaluation.quality import per_image_metrics
from versacodec.imaging import LoadedImage, to_pil
from versacodec.interfaces.web.overlays import Overlays
from versacodec.options import DecodeOptions, EncodeOptions
from versacodec.registry import Registry
from versacodec.semantics.profiles import available_profiles
from versacodec.semantics.tagger import class_names


class WebBaseline(NamedTuple):
    label: str
    mime: str
    extension: str


# Baselines offered on the page, by their name in the evaluation catalog.
BASELINES: Registry[WebBaseline] = Registry("baseline", {
    "avif": WebBaseline("AVIF", "image/avif", "avif"), "heif": WebBaseline("HEIF", "image/heic", "heic"),
    "webp": WebBaseline("WebP", "image/webp", "webp"), "jpeg": WebBaseline("JPEG", "image/jpeg", "jpg")})
# Shown for every reconstruction: PSNR, and the perceptual distances the evaluation reports.
METRICS = ("psnr", "lpips", "dists")
VCX_MIME = "application/x-versacodec"
Report = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Capabilities:
    """What the loaded codec offers; the page shows only these controls."""

    defaults: ModelDefaults
    task_profiles: tuple[str, ...]  # empty: this codec has no task profiles

    @classmethod
    def of(cls, codec: Codec) -> Capabilities:
        return cls(codec.model.defaults, task_profiles=tuple(available_profiles()))


@dataclass(frozen=True)
class Settings:
    encode: EncodeOptions
    decodes: tuple[DecodeOptions, ...]  # one per decoder asked for, the model's defaults filled in
    baselines: tuple[str, ...] = ()
    overlays: bool = True

    @classmethod
    def from_json(cls, payload: dict[str, Any], capabilities: Capabilities) -> Settings:
        """The page's request as options; every problem is an InputError naming the field."""
        bpp = _number(payload, "bpp", float)
        if bpp is None:
            raise InputError("target bpp must be a positive number")
        task = payload.get("task") or None
        # Only the profiles offered: a file path would read the server's files.
        if task is not None and (not isinstance(task, str) or task not in capabilities.task_profiles):
            raise InputError(f"task profile {task!r} is not available" + (
                f"; choose from {', '.join(capabilities.task_profiles)}" if capabilities.task_profiles else ""))
        layers = _number(payload, "layers", int)
        encode = EncodeOptions.of(bpp=bpp, seed=_number(payload, "seed", int) or 0, task=task, layers=layers)
        decoders = _names(payload, "decoders")
        if not decoders:
            raise InputError("choose at least one decoder")
        steps, cfg = _number(payload, "steps", int), _number(payload, "cfg", float)
        # The page's steps and guidance scale are the generative decoder's.
        decodes = tuple(capabilities.defaults.decode(
            DecodeOptions(decoder, *((steps, cfg) if decoder == "generative" else (None, None))))
            for decoder in decoders)
        baselines = _names(payload, "baselines")
        for name in baselines:
            BASELINES[name]
        overlays = payload.get("overlays", True)
        if not isinstance(overlays, bool):  # "yes", 1 or "false" would be taken for true
            raise InputError(f"overlays must be true or false, not {overlays!r}")
        return cls(encode, decodes, baselines, overlays)


def _names(payload: dict[str, Any], key: str) -> tuple[str, ...]:
    value = payload.get(key) or []
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise InputError(f"{key} must be a list of names, not {value!r}")
    return tuple(value)


def _number(payload: dict[str, Any], key: str, kind: type[int] | type[float]) -> Any:
    value = payload.get(key)
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool | list | dict):
            raise TypeError
        number = kind(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{key} must be {'an integer' if kind is int else 'a number'}, not {value!r}") from None
    if kind is int and number != float(value):
        raise InputError(f"{key} must be an integer, not {value!r}")
    return number


@dataclass
class Rendition:
    """One reconstruction of the image and the file it was decoded from."""

    key: str
    label: str
    file_name: str  # its coded file among the comparison's files
    file_bytes: int
    bpp: float  # real file size × 8 / original pixels
    setting: str
    seconds: float
    quality: dict[str, float | None]  # each of METRICS; None where its network is not installed
    overlays: dict[str, list[dict]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "image": f"{self.key}.png", "file": self.file_name,
                "bytes": self.file_bytes, "bpp": self.bpp, "setting": self.setting, "seconds": round(self.seconds, 3),
                **{name: None if value is None else round(value, 4) for name, value in self.quality.items()},
                "overlays": self.overlays}


@dataclass
class Comparison:
    width: int
    height: int
    target_bpp: float
    notes: list[str]
    tags: list[int]
    renditions: list[Rendition] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)  # what was skipped and why
    original_overlays: dict[str, list[dict]] = field(default_factory=dict)
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # name → (content, MIME type)

    def summary(self) -> dict[str, Any]:
        names = class_names()
        return {"width": self.width, "height": self.height, "target_bpp": self.target_bpp, "notes": self.notes,
                "tags": [{"id": tag, "name": names[tag]} for tag in self.tags], "messages": self.messages,
                "original": {"image": "original.png", "overlays": self.original_overlays},
                "renditions": [rendition.summary() for rendition in self.renditions]}


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _quality(original: Image.Image, decoded: Image.Image, messages: list[str]) -> dict[str, float | None]:
    """METRICS of one reconstruction; a metric whose network is missing is None, said once in `messages`."""
    values: dict[str, float | None] = {}
    for name in METRICS:
        try:
            values[name] = per_image_metrics(original, decoded, [name])[name]
        except ModelError as exc:
            values[name] = None
            skipped = f"{name.upper()} skipped: {exc}"
            if skipped not in messages:
                messages.append(skipped)
    return values


def run_comparison(codec: Codec, overlays: Overlays, loaded: LoadedImage, settings: Settings,
                   report: Report) -> Comparison:
    original = to_pil(loaded.pixels)
    draw_overlays = settings.overlays and overlays.any_available
    total = 1 + len(settings.decodes) + len(settings.baselines) + (
        1 + len(settings.decodes) + len(settings.baselines) if draw_overlays else 0)
    done = 0

    def step(stage: str) -> None:
        nonlocal done
        report(stage, done, total)
        done += 1

    target_bpp = settings.encode.rate.bpp
    step(f"encoding with versacodec at {target_bpp:g} bpp")
    started = time.perf_counter()
    encoded = codec.encode(loaded, settings.encode)
    encode_seconds = time.perf_counter() - started
    comparison = Comparison(encoded.width, encoded.height, target_bpp, list(encoded.notes), [])
    comparison.files["original.png"] = (png_bytes(original), "image/png")
    comparison.files["versacodec.vcx"] = (encoded.data, VCX_MIME)
    task, layers = settings.encode.task, settings.encode.layers
    setting = ", ".join([f"quality {encoded.quality}", *([f"task {task.name}"] if task else []),
                         *([f"layers {layers}"] if layers else [])])
    images: dict[str, Image.Image] = {}

    for options in settings.decodes:
        decoder = options.decoder
        step(f"decoding with the {decoder} decoder")
        started = time.perf_counter()
        decoded = codec.decode(encoded.data, options)
        seconds = time.perf_counter() - started
        comparison.tags = decoded.tags
        label = f"versacodec, {decoder}"
        if decoder == "generative" and options.steps is not None:  # None: one pass, no prior
            label += f", {options.steps} step{'s' if options.steps != 1 else ''}, CFG {options.cfg:g}"
        key = f"versacodec-{decoder}"
        images[key] = decoded.image
        comparison.files[f"{key}.png"] = (png_bytes(decoded.image), "image/png")
        comparison.renditions.append(Rendition(key, label, "versacodec.vcx", len(encoded.data),
                                               encoded.bits_per_pixel, setting, encode_seconds + seconds,
                                               _quality(original, decoded.image, comparison.messages)))

    for name in settings.baselines:
        label, mime, extension = BASELINES[name]
        step(f"coding with {label} at {encoded.bits_per_pixel:.4f} bpp")
        baseline = make_codec(name)
        available, why = baseline.available()
        if not available:
            comparison.messages.append(f"{label} skipped: {why}")
            continue
        started = time.perf_counter()
        try:
            result = baseline.encode(original, encoded.bits_per_pixel)
        except BudgetTooSmall as exc:
            comparison.messages.append(f"{label} skipped: {exc}")
            continue
        images[name] = baseline.decode(result)
        seconds = time.perf_counter() - started
        shrink = "" if result.shrink == 1.0 else f", coded at {result.shrink:.3g}× size and upscaled"
        comparison.files[f"{name}.{extension}"] = (result.data, mime)
        comparison.files[f"{name}.png"] = (png_bytes(images[name]), "image/png")
        comparison.renditions.append(Rendition(name, label, f"{name}.{extension}", len(result.data), result.bpp,
                                               f"quality {result.setting}{shrink}", seconds,
                                               _quality(original, images[name], comparison.messages)))

    if settings.overlays and not overlays.any_available:
        comparison.messages.append("overlays skipped: " + "; ".join(s.reason for s in overlays.status))
    elif draw_overlays:
        comparison.messages += [f"{s.name} overlay skipped: {s.reason}" for s in overlays.status if not s.available]
        step("running the detectors on the original")
        comparison.original_overlays = overlays.annotate(original)
        for rendition in comparison.renditions:
            step(f"running the detectors on {rendition.label}")
            rendition.overlays = overlays.annotate(images[rendition.key])
    return comparison
