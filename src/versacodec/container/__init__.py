"""The .vcx container: versioned header plus typed, length-prefixed, CRC-checked sections."""

from versacodec.container.format import (
    FORMAT_VERSION,
    MAGIC,
    ColourMode,
    Section,
    SectionKind,
    Stream,
    StreamHeader,
)

__all__ = ["FORMAT_VERSION", "MAGIC", "ColourMode", "Section", "SectionKind", "Stream", "StreamHeader"]
