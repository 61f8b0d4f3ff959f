"""The Python API: `versacodec.compress(image) -> bytes` and `versacodec.decompress(data) -> PIL image`.

Both take a `model`: a model bundle folder, a loaded `Codec`, or None for the default model
($VERSACODEC_MODEL, else the model shipped in the package; `set_default_model` changes it).
Loaded models are cached, so repeated calls pay the loading cost once. For full control (coded
size, quality chosen by rate control, the decoded header) use a `Codec` directly, with
`versacodec.options.EncodeOptions` / `DecodeOptions`.

>>> import versacodec
>>> from PIL import Image
>>> image = Image.new("RGB", (96, 64), (200, 120, 40))
>>> data = versacodec.compress(image, bpp=0.5, model=model_dir)
>>> len(data) * 8 / (96 * 64) <= 0.5
True
>>> versacodec.decompress(data, model=model_dir).size
(96, 64)
"""

from __future__ import annotations

import os
from dataclasses import fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image

from versacodec.codec import Codec, layout
from versacodec.codec.pipeline import ImageSource
from versacodec.errors import InputError
from versacodec.imaging import LoadedImage
from versacodec.options import DecodeOptions, EncodeOptions

ModelSpec = str | os.PathLike[str] | Codec | None

_default_model: str | os.PathLike[str] | Codec | None = None
_CACHED_MODELS = 4  # bundles kept loaded at once (each holds its networks in memory)


def compress(image: ImageSource, bpp: float | None = None, quality: int | None = None, model: ModelSpec = None,
             **options: Any) -> bytes:
    """Compress an image (a path, encoded file bytes or a PIL image) to a .vcx stream.

    `bpp`: the stream is at most this many bits per pixel of the image (its real size); `quality`:
    a fixed rate setting instead (`versacodec.options.Rate`). `options` are the other
    `EncodeOptions` (`seed`, `tags`, `task`, `boxes`, `layers`). Raises `InputError` for an
    unusable image or setting.

    >>> data = compress(Image.new("L", (40, 30), 128), quality=20, model=model_dir)
    >>> data[:4]
    b'\\x89VCX'
    """
    _check_keywords("compress", options, _ENCODE_KEYWORDS)
    return load_codec(model).encode(_image_source(image), EncodeOptions.of(bpp=bpp, quality=quality,
                                                                           **options)).data


def decompress(data: bytes, model: ModelSpec = None, **options: Any) -> Image.Image:
    """Decode a .vcx stream to a PIL image ("RGB", or "L" for a greyscale original); the same stream
    gives the same image (within docs/api.md's tolerance across machines). `options` are
    `DecodeOptions` (`decoder`, `steps`, `cfg`, `seed`). Raises `StreamError` for a damaged stream or
    one made by another model.

    >>> image = decompress(compress(Image.new("L", (40, 30), 128), model=model_dir), model=model_dir)
    >>> image.mode, image.size
    ('L', (40, 30))
    """
    _check_keywords("decompress", options, _DECODE_KEYWORDS)
    return load_codec(model).decode(_stream_bytes(data), DecodeOptions(**options)).image


def extract(data: bytes, task: str, layers: int | None = None) -> bytes:
    """The partial stream of a `task=` stream that keeps only `task`'s regions (its name or the
    profile .yaml it was made with), and of a layered one also only the first `layers` layers.
    Sections are dropped, nothing is re-encoded; the result decodes with `decompress`. Raises
    `InputError` when the stream has no such task or layers."""
    partial = layout.extract(_stream_bytes(data), task)
    return partial if layers is None else truncate(partial, layers)


def truncate(data: bytes, layers: int) -> bytes:
    """The first `layers` layers of a stream compressed with `layers=K` (no re-encoding); any
    prefix decodes with `decompress`. Raises `InputError` for a stream without layers."""
    return layout.truncate(_stream_bytes(data), layers)


def load_codec(model: ModelSpec = None) -> Codec:
    """The loaded `Codec` for a model folder (cached), or the default model when `model` is None.

    >>> codec = load_codec(model_dir)
    >>> codec is load_codec(model_dir)
    True
    """
    if isinstance(model, Codec):
        return model
    if not (model is None or isinstance(model, str | os.PathLike)):
        raise InputError(f"model must be a model folder, a Codec or None, not {type(model).__name__}")
    if model is None:
        if isinstance(_default_model, Codec):
            return _default_model
        model = _default_model
    # Resolved, so that "bundle" and "./bundle/" share one cache entry; None stays None (default folder).
    return _cached_codec(None if model is None else str(Path(model).expanduser().resolve()))


def set_default_model(model: ModelSpec) -> None:
    """Use this model folder or `Codec` wherever no model is given (API, Pillow plugin); None restores
    $VERSACODEC_MODEL or the shipped model."""
    global _default_model
    _default_model = model


def _image_source(image: Any) -> ImageSource:
    """The image, or the API's own message for a value that is none (Python's would name open())."""
    if isinstance(image, bytearray | memoryview):
        return bytes(image)
    if not isinstance(image, str | os.PathLike | bytes | Image.Image | LoadedImage):
        hint = " (for an array, pass PIL.Image.fromarray(array))" if hasattr(image, "__array__") else ""
        raise InputError(f"image must be a path, the bytes of an image file or a PIL image, "
                         f"not {type(image).__name__}{hint}")
    return image


def _stream_bytes(data: Any) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    hint = " (read the file first: Path(name).read_bytes())" if isinstance(data, str | os.PathLike) else ""
    raise InputError(f"data must be the bytes of a .vcx stream, not {type(data).__name__}{hint}")


def _check_keywords(function: str, options: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(options) - known)
    if unknown:
        raise InputError(f"{function}() has no option {', '.join(map(repr, unknown))}; "
                         f"its options are {', '.join(sorted(known))}")


# Every keyword each function takes (the rate is its bpp= or quality=, not an option).
_ENCODE_KEYWORDS = {field.name for field in fields(EncodeOptions)} - {"rate"} | {"bpp", "quality", "model"}
_DECODE_KEYWORDS = {field.name for field in fields(DecodeOptions)} | {"model"}


@lru_cache(maxsize=_CACHED_MODELS)
def _cached_codec(model: str | None) -> Codec:
    return Codec.from_pretrained(model)
