"""The .vcx format in Pillow: `Image.open("x.vcx")` decodes, `image.save("x.vcx", bpp=0.05)` encodes.

Registered by `import versacodec.pillow` or `versacodec.register_pillow()`. Opening parses and
checks the stream (size, mode) without loading a model; the pixels are decoded by the model
on `load()` (any pixel access). The model is the API's default (`versacodec.set_default_model`,
$VERSACODEC_MODEL, or the shipped one) unless `model=` is passed to `save`.
A damaged stream raises `versacodec.StreamError` (a `VersacodecError`), at open or at load.
"""

from __future__ import annotations

from typing import IO, Any

from PIL import Image, ImageFile

from versacodec.container.format import MAGIC, ColourMode, Stream

FORMAT = "VCX"
EXTENSION = ".vcx"
MIME_TYPE = "image/x-vcx"
SAVE_OPTIONS = ("bpp", "quality", "seed", "tags")  # image.save keywords passed to Codec.compress


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


def _save(image: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    from versacodec.api import compress

    info: dict[str, Any] = image.encoderinfo
    options = {key: info[key] for key in SAVE_OPTIONS if key in info}
    # Encode fully before writing, so a failed encode writes nothing (Pillow then removes the file).
    fp.write(compress(image, model=info.get("model"), **options))


def register_pillow() -> None:
    """Register the VCX format (open, save, extension .vcx, MIME type image/x-vcx). Idempotent."""
    Image.register_open(FORMAT, VcxImageFile, _accept)
    Image.register_decoder(FORMAT, VcxDecoder)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, EXTENSION)
    Image.register_mime(FORMAT, MIME_TYPE)
