"""`import versacodec.pillow` registers the .vcx format with Pillow (see docs/pillow.md)."""

from versacodec.interfaces.pillow_plugin import register_pillow

register_pillow()
