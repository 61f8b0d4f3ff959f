"""versacodec: one image codec for people and machines."""

__version__ = "0.1.0"
