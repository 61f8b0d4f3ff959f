"""The .vcx format in Pillow: `Image.open("x.vcx")` decodes, `image.save("x.vcx", bpp=0.05)` encodes.

Registered by `import versacodec.pillow` or `versacodec.register_pillow()`. `image.save` takes
every `versacodec.options.EncodeOptions` keyword and `model=`. Opening parses and
checks the stream (size, mode) without loading a model; the pixels are decoded by the model
on `load()` (any pixel access). The model is the API's default (`versacodec.set_default_model`,
$VERSACODEC_MODEL, or the shipped one) unless `model=` is passed to `save`.
A damaged stream raises `versacodec.StreamError` (a `VersacodecError`), at open or at load; a .vcx
path that cannot be written raises `versacodec.errors.OutputError` (also an OSError).
Saving to a .vcx path encodes first and then replaces the file in one step, so a failed save
leaves an existing file as it was (Pillow itself empties the file before a format's handler runs).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import IO, Any

from PIL import Image, ImageFile

from versacodec.container.format import MAGIC, ColourMode, Stream
from versacodec.options import ENCODE_KEYWORDS

FORMAT = "VCX"
EXTENSION = ".vcx"
MIME_TYPE = "image/x-vcx"


def _accept(prefix: bytes) -> bool:
    return prefix[: len(MAGIC)] == MAGIC


class VcxImageFile(ImageFile.ImageFile):
    format = FORMAT
    format_description = "versacodec learned image stream"

    def _open(self) -> None:
        # Streams are small (a few hundred bytes to kilobytes): read and check the whole stream now,
        # so a damaged file fails at open; decoding waits for load().
        data = self.fp.read()
        header = Stream.from_bytes(data).header
        self._size = (header.width, header.height)
        self._mode = "L" if header.colour == ColourMode.GREYSCALE else "RGB"
        self.info["model_id"] = header.model_id
        self.info["quality"] = header.quality
        self.tile = [(FORMAT, (0, 0, *self._size), 0, None)]  # one tile: the whole image from offset 0


class VcxDecoder(ImageFile.PyDecoder):
    _pulls_fd = True  # the model decodes the whole stream at once

    def decode(self, buffer: bytes | Image.SupportsArrayInterface) -> tuple[int, int]:
        from versacodec.api import decompress

        assert self.fd is not None
        image = decompress(self.fd.read())
        self.set_as_raw(image.tobytes())
        return -1, 0


def _encode(image: Image.Image, info: dict[str, Any]) -> bytes:
    from versacodec.api import load_codec
    from versacodec.options import EncodeOptions

    # Pillow merges the keywords of an image's earlier saves into `info`: take only the encoder's.
    options = EncodeOptions.of(**{key: info[key] for key in ENCODE_KEYWORDS if key in info})
    return load_codec(info.get("model")).encode(image, options).data


def _save(image: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    # Encode fully before writing, so a failed encode writes nothing into the file object.
    fp.write(_encode(image, image.encoderinfo))


def _names_vcx(fp: object, format: str | None) -> bool:
    if not isinstance(fp, str | bytes | os.PathLike):
        return False
    if format is not None:
        return format.upper() == FORMAT
    return os.path.splitext(os.fsdecode(fp))[1].lower() == EXTENSION


def _save_keeping_existing_files(pillow_save: Callable[..., None]) -> Callable[..., None]:
    """Image.save opens (truncates) a named file before any format's handler runs, so a failed
    encode would leave an existing .vcx empty. For .vcx paths, encode first, then replace the file
    in one step; every other save is Pillow's own."""

    @functools.wraps(pillow_save)
    def save(self: Image.Image, fp: Any, format: str | None = None, **params: Any) -> None:
        if not _names_vcx(fp, format) or params.get("append") or params.get("save_all"):
            return pillow_save(self, fp, format, **params)
        from versacodec.errors import OutputError
        from versacodec.fileio import atomic_write_bytes

        data = _encode(self, params)
        try:
            atomic_write_bytes(os.fsdecode(fp), data)
        except OSError as exc:
            raise OutputError(f"cannot write {os.fsdecode(fp)}: {exc.strerror or exc}") from exc

    save.keeps_existing_vcx = True  # type: ignore[attr-defined]
    return save


def register_pillow() -> None:
    """Register the VCX format (open, save, extension .vcx, MIME type image/x-vcx). Idempotent."""
    Image.register_open(FORMAT, VcxImageFile, _accept)
    Image.register_decoder(FORMAT, VcxDecoder)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, EXTENSION)
    Image.register_mime(FORMAT, MIME_TYPE)
    if not getattr(Image.Image.save, "keeps_existing_vcx", False):
        Image.Image.save = _save_keeping_existing_files(Image.Image.save)  # type: ignore[method-assign]
