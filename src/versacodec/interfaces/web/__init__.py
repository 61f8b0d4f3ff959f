"""`versacodec serve`: a local comparison page for versacodec, its decoders and classical codecs."""
