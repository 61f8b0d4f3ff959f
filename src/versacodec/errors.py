"""Exception types that the command line turns into one-line messages and exit status 2.

Messages speak of values and of option names as the Python API spells them (`layers`, `task`);
`options` names the settings an error concerns, so that the command line can point at its own
flags (`--layers`) without the core knowing them.
"""


class VersacodecError(Exception):
    """Base class for every error versacodec reports to a user (never a bug)."""

    def __init__(self, message: str, *, options: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.options = options  # the API names of the settings to change, e.g. ("model",)


class StreamError(VersacodecError):
    """A .vcx stream cannot be read: truncated, corrupted, wrong magic, unsupported version,
    absurd dimensions, or made by other weights. The message says which."""


class InputError(VersacodecError):
    """An input image, option or configuration file is unusable."""


class BudgetTooSmall(InputError):
    """A byte budget is below the smallest file a codec can write for this image. Rate control
    raises it; the evaluation harness, which may then code the image shrunk, catches only this."""


class ModelError(VersacodecError):
    """A model folder or weight file is missing, incomplete or does not match its config."""


class OutputError(VersacodecError, OSError):
    """An output cannot be written (a folder that is missing or read-only, a full disk). Also an
    OSError, so code that handles failed writes as OSError keeps doing so."""
