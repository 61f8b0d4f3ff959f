"""versacodec: one image codec for people and machines.

    data = versacodec.compress("photo.jpg", bpp=0.05)   # bytes of a .vcx stream
    image = versacodec.decompress(data)                 # PIL.Image.Image

The API names load on first use, so `import versacodec` stays fast (no torch until needed).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from versacodec.version import __version__

_LAZY = {
    "compress": "versacodec.api",
    "decompress": "versacodec.api",
    "extract": "versacodec.api",
    "truncate": "versacodec.api",
    "load_codec": "versacodec.api",
    "set_default_model": "versacodec.api",
    "Codec": "versacodec.codec",
    "register_pillow": "versacodec.interfaces.pillow_plugin",
    "VersacodecError": "versacodec.errors",
    "StreamError": "versacodec.errors",
    "InputError": "versacodec.errors",
    "ModelError": "versacodec.errors",
    "OutputError": "versacodec.errors",
}
__all__ = [
    "Codec",
    "InputError",
    "ModelError",
    "OutputError",
    "StreamError",
    "VersacodecError",
    "__version__",
    "compress",
    "decompress",
    "extract",
    "load_codec",
    "register_pillow",
    "set_default_model",
    "truncate",
]

if TYPE_CHECKING:
    from versacodec.api import compress, decompress, extract, load_codec, set_default_model, truncate
    from versacodec.codec import Codec
    from versacodec.errors import InputError, ModelError, OutputError, StreamError, VersacodecError
    from versacodec.interfaces.pillow_plugin import register_pillow


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'versacodec' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
