"""Exception types that the command line turns into one-line messages and exit status 2."""


class VersacodecError(Exception):
    """Base class for every error versacodec reports to a user (never a bug)."""


class StreamError(VersacodecError):
    """A .vcx stream cannot be read: truncated, corrupted, wrong magic, unsupported version,
    absurd dimensions, or made by other weights. The message says which."""


class InputError(VersacodecError):
    """An input image, option or configuration file is unusable."""


class ModelError(VersacodecError):
    """A model folder or weight file is missing, incomplete or does not match its config."""
