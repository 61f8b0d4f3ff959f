"""The codec pipeline (`pipeline`: `Codec`), the stream layout (`layout`) and the memory estimate
(`memory`); see docs/architecture.md."""

from versacodec.codec.pipeline import Codec, DecodedImage, EncodedImage

__all__ = ["Codec", "DecodedImage", "EncodedImage"]
