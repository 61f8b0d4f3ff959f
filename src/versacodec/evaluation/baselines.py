"""Classical baseline codecs through Pillow and its plugins, all 4:2:0 where the format has it.

| name     | library                                            | knob (bisected)                   |
|----------|----------------------------------------------------|-----------------------------------|
| jpeg     | Pillow / libjpeg-turbo, optimised Huffman          | quality 1-100                     |
| webp     | Pillow / libwebp, method 6                         | quality 0-100                     |
| avif     | Pillow / libavif + aom, speed 6, tune=psnr         | quality 0-100                     |
| avif-svt | pillow-avif-plugin / SVT-AV1, speed 6              | quality 0-100                     |
| heif     | pillow-heif / x265 (HEVC intra)                    | quality 0-100                     |
| jp2      | Pillow / OpenJPEG, 9/7 wavelet, MCT, raw codestream | requested bpp, 1% steps          |
| jxl      | pillow-jxl-plugin / libjxl, effort 7               | quality 0-99                      |

Plugins are imported only when their codec is used. `pillow-avif-plugin` registers itself as
Pillow's "AVIF" format, so on import its writer is re-registered under a name of its own and
Pillow's built-in AVIF (aom) stays the "AVIF" format.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import os
from collections.abc import Iterator
from functools import cache, cached_property

import numpy as np
from PIL import Image, features

from versacodec.evaluation.rate_search import SettingCodec
from versacodec.registry import Registry

_QUALITY_0_100 = tuple(range(101))
_SVT_FORMAT = "AVIF-SVT"
AVIF_SPEED = 6


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _save(image: Image.Image, format_name: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format_name, **options)
    return buffer.getvalue()


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


class JPEG(SettingCodec):
    settings = tuple(range(1, 101))

    @cached_property
    def version(self) -> str:
        return f"Pillow {Image.__version__}, libjpeg-turbo {features.version('libjpeg_turbo')}, 4:2:0, optimize"

    def available(self) -> tuple[bool, str]:
        return (True, "") if features.check("jpg") else (False, "Pillow was built without JPEG support")

    def encode_setting(self, image: Image.Image, setting: int | float) -> bytes:
        return _save(image, "JPEG", quality=int(setting), subsampling="4:2:0", optimize=True)

    def decode_bytes(self, data: bytes) -> Image.Image:
        return _open(data)


class WebP(SettingCodec):
    settings = _QUALITY_0_100

    @cached_property
    def version(self) -> str:
        return f"Pillow {Image.__version__}, libwebp {features.version('webp')}, method 6"

    def available(self) -> tuple[bool, str]:
        return (True, "") if features.check("webp") else (False, "Pillow was built without WebP support")

    def encode_setting(self, image: Image.Image, setting: int | float) -> bytes:
        return _save(image, "WEBP", quality=int(setting), method=6)

    def decode_bytes(self, data: bytes) -> Image.Image:
        return _open(data)


class AVIF(SettingCodec):
    """Pillow's own AVIF writer with aom; tune=psnr reaches lower rates than aom's default."""

    settings = _QUALITY_0_100

    @cached_property
    def version(self) -> str:
        from PIL import _avif

        return (f"Pillow {Image.__version__}, libavif {features.version('avif')} ({_avif.codec_versions()}), "
                f"aom, speed {AVIF_SPEED}, tune=psnr, 4:2:0")

    def available(self) -> tuple[bool, str]:
        if not features.check("avif"):
            return False, "Pillow was built without AVIF support"
        from PIL import _avif

        return (True, "") if _avif.encoder_codec_available("aom") else (False, "Pillow's libavif lacks aom")

    def encode_setting(self, image: Image.Image, setting: int | float) -> bytes:
        return _save(image, "AVIF", quality=int(setting), speed=AVIF_SPEED, subsampling="4:2:0", codec="aom",
                     advanced=[("tune", "psnr")])

    def decode_bytes(self, data: bytes) -> Image.Image:
        return _open(data)


@contextlib.contextmanager
def _scheduling_kept() -> Iterator[None]:
    """Undo SVT-AV1's scheduling change: run as root, it makes the calling thread real-time
    (SCHED_FIFO, priority 99), and so every thread started after it, which let evaluation
    workers starve the rest of the machine."""
    if not hasattr(os, "sched_getscheduler"):
        yield
        return
    policy, parameters = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        yield
    finally:
        if (os.sched_getscheduler(0), os.sched_getparam(0)) != (policy, parameters):
            os.sched_setscheduler(0, policy, parameters)


@cache
def _register_svt_writer() -> str:
    """Import pillow-avif-plugin, keep its writer under AVIF-SVT, and restore Pillow's own AVIF."""
    # SVT-AV1 prints a banner per encoder to stderr unless told to report errors only.
    os.environ.setdefault("SVT_LOG", "1")
    from PIL import AvifImagePlugin as pillow_avif_builtin
    from pillow_avif import AvifImagePlugin as plugin

    Image.register_save(_SVT_FORMAT, plugin._save)
    Image.register_open(pillow_avif_builtin.AvifImageFile.format, pillow_avif_builtin.AvifImageFile,
                        pillow_avif_builtin._accept)
    Image.register_save(pillow_avif_builtin.AvifImageFile.format, pillow_avif_builtin._save)
    return _SVT_FORMAT


class AVIFSvt(SettingCodec):
    """SVT-AV1 through pillow-avif-plugin: the lowest AVIF floor."""

    settings = _QUALITY_0_100

    @cached_property
    def version(self) -> str:
        from pillow_avif import _avif

        return (f"pillow-avif-plugin {_package_version('pillow-avif-plugin')} ({_avif.codec_versions()}), "
                f"svt, speed {AVIF_SPEED}, 4:2:0")

    def available(self) -> tuple[bool, str]:
        try:
            from pillow_avif import _avif
        except ImportError:
            return False, "pillow-avif-plugin is not installed (pip install 'versacodec[eval]')"
        return (True, "") if _avif.encoder_codec_available("svt") else (False, "pillow-avif-plugin lacks SVT-AV1")

    def encode_setting(self, image: Image.Image, setting: int | float) -> bytes:
        with _scheduling_kept():
            return _save(image, _register_svt_writer(), quality=int(setting), speed=AVIF_SPEED,
                         subsampling="4:2:0", codec="svt")

    def decode_bytes(self, data: bytes) -> Image.Image:
        return _open(data)


@cache
def _register_heif() -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()


class HEIF(SettingCodec):
    """HEVC intra (x265) in a HEIF file: the BPG stand-in."""

    settings = _QUALITY_0_100

    @cached_property
    def version(self) -> str:
        import pillow_heif

        info = pillow_heif.libheif_info()
        return f"pillow-heif {pillow_heif.__version__}, libheif {info['libheif']}, {info['HEIF']}, 4:2:0"

    def available(self) -> tuple[bool, str]:
        try:
            import pillow_heif
        except ImportError:
            return False, "pillow-heif is not installed (pip install 'versacodec[eval]')"
        return (True, "") if pillow_heif.libheif_info().get("HEIF") else (False, "pillow-heif has no HEVC encoder")

    def encode_setting(self, image: Image.Image, setting: int | float) -> bytes:
        _register_heif()
        return _save(image, "HEIF", quality=int(setting), chroma="420")

    def decode_bytes(self, data: bytes) -> Image.Image:
        _register_heif()
        return _open(data)


class JPEG2000(SettingCodec):
    """OpenJPEG with its own rate control: the knob is the requested bpp of the coded image, on a
    1%-step geometric grid from 0.001 to 8 bpp; bisection then enforces the budget on the real file."""

    settings = tuple(float(f"{0.001 * 1.01**step:.6g}") for step in range(int(np.log(8000) / np.log(1.01)) + 1))

    @cached_property
    def version(self) -> str:
        return f"Pillow {Image.__version__}, OpenJPEG {features.version('jpg_2000')}, 9/7, MCT, j2k codestream"

    def available(self) -> tuple[bool, str]:
        return (True, "") if features.check("jpg_2000") else (False, "Pillow was built without OpenJPEG")

    def encode_setting(self, image: Image.Image, setting: int | float) -> bytes:
        # OpenJPEG's rates are compression ratios against 24-bit RGB.
        return _save(image, "JPEG2000", quality_mode="rates", quality_layers=[24.0 / float(setting)],
                     irreversible=True, mct=1, no_jp2=True)

    def decode_bytes(self, data: bytes) -> Image.Image:
        return _open(data)


class JPEGXL(SettingCodec):
    settings = tuple(range(100))  # libjxl accepts quality 100 (distance 0) only in lossless mode

    @cached_property
    def version(self) -> str:
        return f"pillow-jxl-plugin {_package_version('pillow-jxl-plugin')}, effort 7"

    def available(self) -> tuple[bool, str]:
        try:
            import pillow_jxl  # noqa: F401  (registers the JXL format)
        except ImportError:
            return False, "pillow-jxl-plugin is not installed (pip install 'versacodec[eval]')"
        return True, ""

    def encode_setting(self, image: Image.Image, setting: int | float) -> bytes:
        import pillow_jxl  # noqa: F401

        # lossless_jpeg=False: never repack a JPEG source losslessly, always code the pixels.
        return _save(image, "JXL", quality=int(setting), effort=7, lossless_jpeg=False)

    def decode_bytes(self, data: bytes) -> Image.Image:
        import pillow_jxl  # noqa: F401

        return _open(data)


BASELINES: Registry[type[SettingCodec]] = Registry("baseline codec", {
    "jpeg": JPEG, "webp": WebP, "avif": AVIF, "avif-svt": AVIFSvt, "heif": HEIF, "jp2": JPEG2000, "jxl": JPEGXL,
})
