"""Human-perception metrics of one decoded image against its original, at full resolution.

Per-image metrics (PSNR, MS-SSIM, LPIPS, DISTS) are computed here; FID/KID need a whole set, so
per image only the Inception features of its 256×256 patches are extracted (and cached), and
`distribution_metrics` combines them per codec and rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np
import torch
from PIL import Image

from versacodec.imaging import open_image
from versacodec.limits import DEFAULT_MAX_PIXELS

# Metric names as users type them; "lpips" is LPIPS-alex, the variant codec papers report.
# "periodic" is the periodic-artifact ratio (metrics.periodic): the decoded image's spectral peaks
# at the frequencies of an 8-px grid over its original's; 1 means no more periodic than the original.
# "colour-shift" is the chroma difference of 16-px means in 8-bit levels (metrics.quality): a cast.
PER_IMAGE_METRICS = ("psnr", "ms-ssim", "lpips", "lpips-vgg", "dists", "periodic", "colour-shift")
DISTRIBUTION_METRICS = ("fid", "kid")
ALL_METRICS = PER_IMAGE_METRICS + DISTRIBUTION_METRICS
LOWER_IS_BETTER = {"lpips", "lpips-vgg", "dists", "fid", "kid", "periodic", "colour-shift"}
NOT_RATE_QUALITY = {"periodic"}  # a defect count, not a quality that rises with rate: no BD-rate


def image_tensor(image: Image.Image) -> torch.Tensor:
    """8-bit RGB PIL image → (1, 3, H, W) float in [0, 1]."""
    return open_image(image, DEFAULT_MAX_PIXELS).pixels


@cache
def _network(name: str) -> torch.nn.Module:
    # One instance per process: workers load each network once.
    if name == "dists":
        from versacodec.metrics.dists import DISTS

        return DISTS()
    from versacodec.metrics.lpips import LPIPS

    return LPIPS("vgg" if name == "lpips-vgg" else "alex")


@torch.no_grad()
def per_image_metrics(original: Image.Image, decoded: Image.Image, names: Sequence[str]) -> dict[str, float]:
    from versacodec.metrics.quality import colour_shift, ms_ssim, psnr

    x, y = image_tensor(original), image_tensor(decoded)
    values: dict[str, float] = {}
    for name in names:
        if name == "psnr":
            values[name] = float(psnr(x, y))
        elif name == "ms-ssim":
            values[name] = float(ms_ssim(x, y))
        elif name == "colour-shift":
            values[name] = float(colour_shift(x, y))
        elif name == "periodic":
            from versacodec.metrics.periodic import periodic_ratio

            values[name] = periodic_ratio(x, y)
        elif name in ("lpips", "lpips-vgg", "dists"):
            values[name] = float(_network(name)(x, y))
        else:
            raise ValueError(f"unknown per-image metric {name!r}")
    return values


def patch_features(image: Image.Image) -> np.ndarray:
    """(P, 2048) Inception features of the image's FID/256 patches."""
    from versacodec.metrics.fid import fid_patches, inception_features

    return inception_features()(fid_patches(image_tensor(image))).numpy()


def distribution_metrics(reference: Sequence[np.ndarray], test: Sequence[np.ndarray],
                         names: Sequence[str]) -> dict[str, float]:
    """FID/KID between the patch features of the originals and of the decoded images."""
    from versacodec.metrics.fid import frechet_distance, kernel_inception_distance

    ref, out = np.concatenate(list(reference)), np.concatenate(list(test))
    values: dict[str, float] = {}
    if "fid" in names:
        values["fid"] = frechet_distance(ref, out)
    if "kid" in names:
        values["kid"] = kernel_inception_distance(ref, out)
    return values
