"""The codec (`pipeline`: `Codec`), the loaded model it codes with (`model`: `CodecModel`,
`ModelDefaults`), the stream layout (`layout`) and the memory estimate (`memory`); see
docs/architecture.md."""

from versacodec.codec.model import CodecModel, ModelDefaults
from versacodec.codec.pipeline import Codec, DecodedImage, EncodedImage

__all__ = ["Codec", "CodecModel", "DecodedImage", "EncodedImage", "ModelDefaults"]
