"""The installed package's version, as pyproject.toml declares it (read from the package metadata,
so it is written in one place)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("versacodec")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
