import numpy as np
import pytest
import scipy.linalg
import torch

from versacodec.metrics.dists import DISTS, L2Pooling
from versacodec.metrics.fid import (
    FEATURE_DIM,
    fid_patches,
    frechet_distance,
    inception_features,
    kernel_inception_distance,
)


def _scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = np.real(scipy.linalg.sqrtm(sa @ sb))
    return float(np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(sa + sb - 2 * root))


@pytest.mark.parametrize(("rows", "dims"), [(12, 40), (80, 16)])  # fewer rows than dims, and more
def test_frechet_distance_matches_the_matrix_square_root_formula(rows, dims):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(rows, dims)), rng.normal(0.3, 1.2, size=(rows + 5, dims))
    assert frechet_distance(a, b) == pytest.approx(_scipy_fid(a, b), rel=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_kid_separates_shifted_sets():
    rng = np.random.default_rng(1)
    a, b, shifted = rng.normal(size=(60, 32)), rng.normal(size=(60, 32)), rng.normal(0.5, 1, size=(60, 32))
    same, different = kernel_inception_distance(a, b, subsets=20), kernel_inception_distance(a, shifted, subsets=20)
    assert abs(same) < 0.05 < different


def test_fid_patches_cover_the_aligned_and_the_shifted_grid():
    assert fid_patches(torch.zeros(1, 3, 512, 768)).shape == (6 + 2, 3, 256, 256)
    assert fid_patches(torch.zeros(1, 3, 640, 640)).shape == (4 + 4, 3, 256, 256)
    assert fid_patches(torch.zeros(1, 3, 100, 300)).shape == (1, 3, 100, 300)  # smaller than a patch: whole


def test_inception_gives_2048_pool_features():
    features = inception_features()(torch.rand(2, 3, 64, 80))
    assert features.shape == (2, FEATURE_DIM) and torch.isfinite(features).all() and (features >= 0).all()


def test_l2_pooling_is_an_antialiased_halving():
    flat = L2Pooling(3)(torch.full((1, 3, 8, 8), 2.0))
    assert flat.shape == (1, 3, 4, 4)
    assert torch.allclose(flat[..., 1:, 1:], torch.full_like(flat[..., 1:, 1:], 2.0), atol=1e-5)


def test_dists_is_zero_for_identical_images_and_grows_with_distortion():
    torch.manual_seed(0)
    metric = DISTS()
    image = torch.rand(1, 3, 64, 64).clamp(0, 1)
    slightly, heavily = (image + 0.02 * torch.randn_like(image)).clamp(0, 1), torch.rand(1, 3, 64, 64)
    scores = metric(torch.cat([image, image, image]), torch.cat([image, slightly, heavily]))
    assert scores[0].abs() < 1e-5 and 0 < scores[1] < scores[2] < 1


def test_colour_shift_sees_a_cast_and_not_texture():
    from versacodec.metrics.quality import colour_shift

    torch.manual_seed(0)
    image = torch.rand(1, 3, 40, 56) * 0.6 + 0.2  # sides that 16 does not divide: edge blocks count
    brighter = image + 0.02
    luma_noise = image + 0.1 * torch.randn(1, 1, 40, 56)  # the same in R, G and B: no chroma
    redder = image + torch.tensor([0.04, 0.0, 0.0]).view(1, 3, 1, 1)  # 10.2 levels more red
    checker = ((torch.arange(56).view(1, -1) + torch.arange(40).view(-1, 1)) % 2 * 0.2 - 0.1)
    dithered = image + torch.stack([checker, -checker, checker]).unsqueeze(0)  # chroma texture
    shifts = colour_shift(torch.cat([image] * 5), torch.cat([image, brighter, luma_noise, redder, dithered]))
    assert shifts[:3].abs().max() < 1e-3
    # red's share of Cb and Cr (BT.601) is -0.1687 and 0.5: their rms over 10.2 levels
    assert abs(shifts[3] - 10.2 * ((0.168736**2 + 0.5**2) / 2) ** 0.5) < 0.01
    assert shifts[4] < 0.01 * shifts[3]  # texture that averages out within the blocks does not count
