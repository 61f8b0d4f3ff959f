"""Assemble trained stage outputs into a model bundle (see `versacodec.bundle`).

Weights are stored in float16 unless asked otherwise: it halves the package (the shipped bundle
stays around 40 MB: v4 is 40.5 MB) and loading casts them back to float32, so every result is measured on
exactly the weights that ship. Tensors that are not float32 (the float64 quality gains, the
integer entropy tables) are kept bit for bit: the entropy coder depends on them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from versacodec.bundle import DIRECT_DECODER, BundleManifest, write_manifest
from versacodec.codec.model import record_size_bounds
from versacodec.errors import InputError
from versacodec.generative.decoder import PIXEL_DECODER

WEIGHT_SUFFIX = ".safetensors"


def _copy_component(source: Path, target: Path, half: bool) -> None:
    for path in sorted(source.rglob("*")):
        if path.is_dir():
            continue
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        if half and path.suffix == WEIGHT_SUFFIX:
            tensors = {k: v.half() if v.dtype == torch.float32 else v for k, v in load_file(str(path)).items()}
            save_file(tensors, str(destination))
        else:
            shutil.copy2(path, destination)


def assemble_bundle(output: Path, model_id: str, autoencoder: Path, latent_codec: Path,
                    generative: Path | None = None, half: bool = True,
                    partial_synthesis: Path | None = None, pixel_decoder: Path | None = None,
                    direct_decoder: Path | None = None) -> Path:
    """`pixel_decoder` (a `pixel_decoder` training run's final/) goes into the generative folder,
    replacing any the generative folder brings; `direct_decoder` (another such run's, trained on
    ẑ) becomes the direct path's pixel decoder."""
    if output.exists() and any(output.iterdir()):
        raise InputError(f"{output} exists and is not empty; choose a new folder")
    if pixel_decoder is not None and generative is None:
        raise InputError("a pixel decoder belongs to the generative decoder: give the generative folder too")
    components = {"autoencoder": autoencoder, "latent_codec": latent_codec}
    optional = {"generative": generative, "partial_synthesis": partial_synthesis, DIRECT_DECODER: direct_decoder}
    components |= {name: folder for name, folder in optional.items() if folder is not None}
    for source in (*components.values(), *([pixel_decoder] if pixel_decoder else [])):
        if not Path(source).is_dir():  # before writing anything: no half-made bundle on a bad path
            raise InputError(f"{source} is not a trained component folder")
    created = not output.exists()
    try:
        for name, source in components.items():
            _copy_component(Path(source), output / name, half)
        if pixel_decoder is not None:
            target = output / "generative" / PIXEL_DECODER
            if target.exists():
                shutil.rmtree(target)
            _copy_component(Path(pixel_decoder), target, half)
        write_manifest(output, BundleManifest(model_id, {name: name for name in components}))
        record_size_bounds(output)
    except BaseException:
        for child in output.iterdir() if output.exists() else ():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
        if created:
            output.rmdir()
        raise
    return output


def bundle_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
