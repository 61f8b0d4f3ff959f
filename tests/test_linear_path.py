"""The latent codec's linear paths (`LatentCodecConfig.linear_path`, v5): the transforms start as
an orthonormal projection and its transpose, so the pair starts as the identity; the option is
saved with the weights, old configs load without it, and tiled coding still matches whole coding."""

import dataclasses

import pytest
import torch

from conftest import TINY_CODEC
from versacodec.latent_codec.model import LatentCodec
from versacodec.latent_codec.transforms import LinearPath

# 4 latent channels x 2² = 16 values per y position: a linear path needs at least 16 y channels.
LINEAR = dataclasses.replace(TINY_CODEC, y_channels=16, groups=(4, 4, 8), linear_path=True)


def test_a_codec_with_linear_paths_starts_as_the_identity():
    torch.manual_seed(0)
    codec = LatentCodec(LINEAR)
    assert isinstance(codec.analysis, LinearPath) and isinstance(codec.synthesis, LinearPath)
    latent = torch.randn(2, 4, 16, 24)
    torch.testing.assert_close(codec.synthesis(codec.analysis(latent)), latent, atol=1e-5, rtol=0)
    # the transforms themselves are trainable from there: only their last layer starts at zero
    assert codec.analysis.transform[-1].weight.abs().sum() == 0 and codec.analysis.transform[1].weight.abs().sum() > 0


def test_linear_paths_are_saved_with_the_weights_and_old_configs_load_without_them(tmp_path):
    torch.manual_seed(0)
    codec = LatentCodec(LINEAR).eval()
    codec.build_tables()
    codec.save_pretrained(tmp_path / "linear")
    loaded = LatentCodec.from_pretrained(tmp_path / "linear")
    assert loaded.config.linear_path and isinstance(loaded.analysis, LinearPath)
    latent = torch.randn(1, 4, 16, 16)
    torch.testing.assert_close(loaded.analysis(latent), codec.analysis(latent))
    plain = LatentCodec(TINY_CODEC)
    plain.save_pretrained(tmp_path / "plain")
    config = (tmp_path / "plain" / "config.json").read_text()
    assert "linear_path" not in config or '"linear_path": false' in config
    assert not isinstance(LatentCodec.from_pretrained(tmp_path / "plain").analysis, LinearPath)


def test_a_linear_path_needs_enough_y_channels():
    with pytest.raises(ValueError, match="y_channels >= 16"):
        LatentCodec(dataclasses.replace(TINY_CODEC, linear_path=True))


def test_tiled_coding_with_linear_paths_writes_the_bytes_of_whole_coding(monkeypatch):
    torch.manual_seed(0)
    codec = LatentCodec(LINEAR).eval()
    with torch.no_grad():  # move off the identity, so the transforms' receptive fields matter
        for parameter in codec.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    codec.build_tables()
    latent = torch.randn(1, 4, 64, 48)
    whole = codec.compress(latent, 60)
    monkeypatch.setattr(codec, "coding_tile", 8)
    tiled = codec.compress(latent, 60)
    assert (tiled.hyperprior, tiled.parts) == (whole.hyperprior, whole.parts)
