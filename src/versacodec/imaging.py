"""Image input/output at the edges of the codec: decoding user files, colour conversion with
notes, padding to the codec's block size, and atomic PNG output.

torch is imported only where pixels become tensors, so that a file's declared size can be checked
(`check_declared_size`) before torch loads: the command line refuses an image from its header in a
fraction of a second rather than after the seconds of start-up."""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from versacodec.container.format import ColourMode
from versacodec.errors import InputError
from versacodec.fileio import atomic_write_bytes
from versacodec.limits import PIXELS_VARIABLE

if TYPE_CHECKING:
    import torch

# Checks an image's declared width and height before its pixels are decoded (the codec's memory limit).
SizeCheck = Callable[[int, int], None]


@dataclass
class LoadedImage:
    pixels: torch.Tensor  # (1, 3, H, W) float in [0, 1]
    colour: ColourMode
    bit_depth: int
    notes: list[str] = field(default_factory=list)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[-2])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[-1])


def open_image(source: str | Path | bytes | Image.Image, max_pixels: int,
               check_size: SizeCheck | None = None, name: str | None = None) -> LoadedImage:
    """Decode a PNG/JPEG/WebP/... file (or take a PIL image): EXIF orientation applied,
    RGBA/greyscale/palette/16-bit/CMYK converted to 8-bit RGB with a note for every conversion
    that loses information. The declared size is checked (Pillow's decompression-bomb guard,
    `max_pixels`, then `check_size`) before any pixel is decoded. `name`: what messages call the
    image (default: its path, "input" for bytes)."""
    if isinstance(source, Image.Image):  # perhaps opened lazily: its pixels may still be in a file
        return _decode(source, name or "the image", max_pixels, check_size)
    with _opened(source, name) as (image, name):
        return _decode(image, name, max_pixels, check_size)


def check_declared_size(path: str | Path, max_pixels: int, check_size: SizeCheck | None = None) -> None:
    """The checks `open_image` makes before decoding (Pillow's decompression-bomb guard,
    `max_pixels`, `check_size`), from the file's header alone, with open_image's errors."""
    with _opened(path, None) as (image, _):
        _check_size(image, max_pixels, check_size)


@contextlib.contextmanager
def _opened(source: str | Path | bytes, name: str | None) -> Iterator[tuple[Image.Image, str]]:
    """The file opened by Pillow (header read, nothing decoded) and the name messages call it."""
    try:
        handle = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
    except OSError as exc:
        raise InputError(f"cannot open {source}: {exc.strerror}") from exc
    name = name or ("input" if isinstance(source, bytes) else str(source))
    with handle, _bomb_warning_as_note():
        try:
            image = Image.open(handle)
        except Image.DecompressionBombError as exc:
            raise InputError(f"{name} is refused by Pillow's decompression-bomb guard: {exc}") from exc
        except UnidentifiedImageError as exc:
            raise InputError(f"{name} is not an image file Pillow can read") from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise InputError(f"{name} is damaged or truncated: {exc}") from exc
        yield image, name


@contextlib.contextmanager
def _bomb_warning_as_note() -> Iterator[None]:
    """Pillow warns of images between its two bomb sizes (89-179 MP) with a Python warning that
    names a site-packages line and ignores -q; the size limits here decide, and `_file_notes` says so."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def _decode(image: Image.Image, name: str, max_pixels: int, check_size: SizeCheck | None) -> LoadedImage:
    _check_size(image, max_pixels, check_size)
    notes = _file_notes(image)
    try:
        with _bomb_warning_as_note():
            image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{name} is damaged or truncated: {exc}") from exc
    return _from_pil(image, notes)


def _check_size(image: Image.Image, max_pixels: int, check_size: SizeCheck | None) -> None:
    if image.width == 0 or image.height == 0:
        raise InputError(f"image is {image.width}x{image.height} pixels: nothing to code")
    if image.width * image.height > max_pixels:
        raise InputError(f"image is {image.width}x{image.height}, above the pixel limit {max_pixels} "
                         f"(raise it with {PIXELS_VARIABLE} if this is intended)")
    if check_size is not None:
        check_size(image.width, image.height)


def _file_notes(image: Image.Image) -> list[str]:
    """What a file holds beyond the 8-bit pixels of its first frame, read before decoding."""
    notes = []
    bomb_warning = Image.MAX_IMAGE_PIXELS
    if bomb_warning is not None and image.width * image.height > bomb_warning:
        notes.append(f"{image.width}x{image.height} is above Pillow's decompression-bomb warning size "
                     f"({bomb_warning / 1e6:.0f} MP); coded, as it is within the limits")
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        notes.append(f"only the first of {frames} frames coded")
    profile = image.info.get("icc_profile")
    if profile and not _is_srgb(profile):
        notes.append("ICC colour profile ignored (pixels coded as sRGB)")
    tiles = getattr(image, "tile", None)  # a file's pixels still to decode; none for an image made in memory
    rawmode = tiles[0].args if tiles else ""
    rawmode = rawmode if isinstance(rawmode, str) else next((a for a in rawmode or () if isinstance(a, str)), "")
    if image.mode in ("RGB", "RGBA") and ";16" in rawmode:  # Pillow decodes 16-bit colour to 8 bits
        notes.append("16-bit colour reduced to 8 bits")
    return notes


def _is_srgb(profile: bytes) -> bool:
    try:
        from PIL import ImageCms
    except ImportError:  # Pillow built without littlecms cannot tell
        return False
    try:
        return "srgb" in ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(profile))).lower()
    except (OSError, ImageCms.PyCMSError):
        return False  # an unreadable profile is not known to be sRGB


def _from_pil(image: Image.Image, notes: list[str]) -> LoadedImage:
    if _orientation(image) not in (None, 1):
        image = ImageOps.exif_transpose(image)
        notes.append("EXIF orientation applied")
    mode, colour = image.mode, ColourMode.RGB
    bit_depth = 16 if "16-bit colour reduced to 8 bits" in notes else 8
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if array.max(initial=0) > 255 or mode.startswith("I;16") else 255.0
        if array.min(initial=0) < 0 or array.max(initial=0) > 65535:
            notes.append(f"{mode} values outside 0..65535 clipped")
        image = Image.fromarray(np.clip(np.round(array / peak * 255), 0, 255).astype(np.uint8), "L")
        notes.append(f"{mode} 16-bit greyscale reduced to 8 bits")
        bit_depth, mode = 16, "L"
    if mode in ("L", "LA", "1"):
        colour = ColourMode.GREYSCALE
        if mode == "LA":
            notes.append("alpha channel dropped")
        image = image.convert("L").convert("RGB")
    elif mode in ("RGBA", "PA") or (mode == "P" and "transparency" in image.info):
        notes.append("alpha channel dropped (composited on white)")
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba).convert("RGB")
    elif mode in ("RGB;16", "RGBA;16", "I;16N") or mode.endswith(";16"):
        notes.append("16-bit colour reduced to 8 bits")
        bit_depth = 16
        image = image.convert("RGB")
    elif mode != "RGB":
        notes.append(f"{mode} converted to RGB")
        image = image.convert("RGB")
    import torch

    array = np.asarray(image, dtype=np.uint8)
    pixels = torch.from_numpy(array.copy()).permute(2, 0, 1).unsqueeze(0).float() / 255.0
    return LoadedImage(pixels, colour, bit_depth, notes)


def _orientation(image: Image.Image) -> int | None:
    try:
        return image.getexif().get(0x0112)
    except Exception:  # malformed EXIF is not worth failing over
        return None


def pad_to_multiple(pixels: torch.Tensor, multiple: int) -> torch.Tensor:
    """Reflect-pad (replicate where the image is too small to reflect) to a multiple of `multiple`."""
    import torch.nn.functional as F

    height, width = pixels.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if pad_h == 0 and pad_w == 0:
        return pixels
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(pixels, (0, pad_w, 0, pad_h), mode=mode)


def to_pil(pixels: torch.Tensor, colour: ColourMode = ColourMode.RGB) -> Image.Image:
    """(1, 3, H, W) in [0, 1] → 8-bit PIL image (round half to even, deterministic)."""
    import torch

    array = torch.round(pixels[0].clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    image = Image.fromarray(array, "RGB")
    return image.convert("L") if colour == ColourMode.GREYSCALE else image


def encode_image(image: Image.Image, extension: str) -> bytes:
    """The image as a file in the format `extension` names (".png": PNG)."""
    extension = extension.lower()
    image_format = Image.registered_extensions().get(extension)
    if image_format is None:
        raise InputError(f"cannot tell an image format from the extension {extension!r}; use .png")
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=image_format)
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"cannot write {image_format} files: {exc}") from exc
    return buffer.getvalue()


def save_image(image: Image.Image, path: str | Path) -> None:
    """Write atomically in the format the extension names (PNG for .png)."""
    path = Path(path)
    atomic_write_bytes(path, encode_image(image, path.suffix))
