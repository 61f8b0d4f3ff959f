"""Issue #37 §2: the latent codec codes large images in tiles, as the latent space does, so an
encode's memory is bounded by the tile rather than the image; tiles are read with halos that
cover each network's receptive field, so the exact context model writes the same symbols."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import natural_image
from versacodec.codec import Codec
from versacodec.codec.symbols import symbols_sha256
from versacodec.imaging import pad_to_multiple
from versacodec.tiling import tiled_exact


def _stack() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 5, stride=2, padding=2)).double()


def test_tiles_with_a_halo_over_the_receptive_field_give_the_whole_result():
    """A 3x3 then a 5x5 of stride 2 reach 3 input values, so 2 units of 2 values cover them; with a
    halo of none, the seams show."""
    net, x = _stack(), torch.randn(1, 3, 40, 28, dtype=torch.float64)
    whole = net(x)
    tiled = tiled_exact(net, (x,), tile=4, halo=2, scales=(2,), output_scale=1)
    assert tiled.shape == whole.shape and torch.allclose(tiled, whole, rtol=0, atol=1e-12)
    seams = tiled_exact(net, (x,), tile=4, halo=0, scales=(2,), output_scale=1)
    assert (seams - whole).abs().max() > 1e-3
    assert tiled_exact(net, (x,), tile=100, halo=0, scales=(2,), output_scale=1).shape == whole.shape


def _conv_sides(monkeypatch) -> list[int]:
    """The longest side of every convolution's input from now on."""
    sides: list[int] = []
    for name in ("conv2d", "conv_transpose2d"):
        original = getattr(F, name)

        def record(x, *args, original=original, **kwargs):
            sides.append(max(x.shape[-2:]))
            return original(x, *args, **kwargs)

        monkeypatch.setattr(F, name, record)
    return sides


def test_the_latent_codec_runs_its_networks_in_tiles(tiny_codec, monkeypatch):
    """Untiled, a 1024x768 image's y is 64x48 (its latent 128x96) at every coding network; in tiles
    of 8 y positions no network sees more than a tile and its halos (8 + 2 x 8 y positions, twice
    that at the latent's resolution)."""
    model = tiny_codec.model
    codec = model.latent_codec
    latent = model.encode_pixels(pad_to_multiple(model.load_image(natural_image(1024, 768)).pixels, model.block))
    monkeypatch.setattr(codec, "coding_tile", 8)
    sides = _conv_sides(monkeypatch)
    analysed = codec.analyse(latent)
    compressed = codec.compress_analysed(analysed, 50)
    codec.estimate_bits(analysed, 50)
    codec.decompress(compressed, 50)
    assert analysed[0].shape[-2:] == (48, 64) and sides and max(sides) <= 2 * (8 + 2 * 8) < 64


@pytest.fixture(scope="module")
def shipped() -> Codec:
    return Codec.from_pretrained()


def test_a_tiled_encode_codes_the_symbols_of_the_whole_one(shipped, monkeypatch):
    """The shipped model on a 320x256 picture (y: 20x16) in tiles of 8 y positions against whole:
    the analysis within float rounding, the same strings from the same analysis (the context model
    is exact), streams that decode to the same symbols here, and the same picture within a level."""
    codec = shipped.model.latent_codec
    picture = natural_image(320, 256, seed=3)
    whole = shipped.encode(picture, quality=40, tags=False)
    latent = shipped.model.encode_pixels(pad_to_multiple(shipped.model.load_image(picture).pixels, 64))
    analysed = codec.analyse(latent)
    strings = codec.compress_analysed(analysed, 40)
    monkeypatch.setattr(codec, "coding_tile", 8)
    tiled_analysis = codec.analyse(latent)
    for tiled_part, whole_part in zip(tiled_analysis, analysed, strict=True):
        assert torch.allclose(tiled_part, whole_part, rtol=0, atol=1e-4 * float(whole_part.abs().max()))
    assert codec.compress_analysed(analysed, 40) == strings
    tiled = shipped.encode(picture, quality=40, tags=False)
    assert symbols_sha256(shipped, tiled.data) == symbols_sha256(shipped, whole.data)
    decoded = [np.asarray(shipped.decode(data, decoder="direct").image, dtype=np.int16)
               for data in (tiled.data, whole.data)]
    assert np.abs(decoded[0] - decoded[1]).max() <= 1

