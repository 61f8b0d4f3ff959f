"""Shared fixtures: tiny randomly initialised model bundles and generated test images."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from versacodec.bundle import BundleManifest, write_manifest
from versacodec.latent_codec.model import LatentCodec, LatentCodecConfig
from versacodec.latent_space.autoencoder import Autoencoder, AutoencoderConfig

TINY_AUTOENCODER = AutoencoderConfig(latent_channels=4, encoder_widths=(8, 8, 16), encoder_blocks=(0, 0, 1),
                                     decoder_widths=(16, 8, 8), decoder_blocks=(1, 0, 0), output_width=4)
TINY_CODEC = LatentCodecConfig(latent_channels=4, width=16, blocks=1, y_channels=12, z_channels=6,
                               hyper_width=12, groups=(2, 4, 6), context_hidden=8, rate_levels=3,
                               quality_levels=101, initial_gain_range=(0.5, 8.0))


def build_tiny_generative(root: Path) -> None:
    from versacodec.generative.decoder import GenerativeDecoder, PriorArchitecture, control_branch, default_scheduler
    from versacodec.generative.tags import TagEmbedding, TagEmbeddingConfig

    unet = PriorArchitecture(latent_channels=TINY_AUTOENCODER.latent_channels, block_out_channels=(32, 32),
                             cross_attention_dim=32, attention_head_dim=8).build()
    controlnet = control_branch(unet)
    for parameter in controlnet.parameters():  # make the control path matter in tests
        parameter.data.add_(torch.randn_like(parameter) * 0.01)
    tags = TagEmbedding(TagEmbeddingConfig(embedding_dim=32), torch.randn(1000, 64))
    GenerativeDecoder(unet, controlnet, tags, default_scheduler()).save_pretrained(root)


def build_tiny_bundle(root: Path, model_id: str = "tiny-test", seed: int = 0, generative: bool = False) -> Path:
    torch.manual_seed(seed)
    autoencoder = Autoencoder(TINY_AUTOENCODER)
    # Random residual branches start at zero; perturb them so decoding depends on every weight.
    for parameter in autoencoder.parameters():
        parameter.data.add_(torch.randn_like(parameter) * 0.02)
    codec = LatentCodec(TINY_CODEC).eval()
    codec.build_tables()
    autoencoder.save_pretrained(root / "autoencoder")
    codec.save_pretrained(root / "latent_codec")
    components = {"autoencoder": "autoencoder", "latent_codec": "latent_codec"}
    if generative:
        build_tiny_generative(root / "generative")
        components["generative"] = "generative"
    write_manifest(root, BundleManifest(model_id, components))
    return root


def build_taef2_bundle(root: Path) -> Path:
    """v5's layout at test size: TAEF2 (random weights) as the latent space, a tiny 32-channel codec."""
    from versacodec.latent_space.taef2 import TAEF2

    torch.manual_seed(0)
    TAEF2().save_pretrained(root / "autoencoder")
    codec = LatentCodec(LatentCodecConfig(latent_channels=32, width=16, blocks=1, y_channels=16, groups=(8, 8),
                                          z_channels=8, hyper_width=8, context_hidden=8, rate_levels=2)).eval()
    codec.build_tables()
    codec.save_pretrained(root / "latent_codec")
    write_manifest(root, BundleManifest("taef2-test", {"autoencoder": "autoencoder", "latent_codec": "latent_codec"}))
    return root


def build_v5_bundle(root: Path) -> Path:
    """`build_taef2_bundle` with v5's generative decode: a FineTunedTAEF2Decoder, no prior."""
    from versacodec.latent_space.taef2 import TAEF2
    from versacodec.pixel_decoders.taef2_decoder import FineTunedTAEF2Decoder

    build_taef2_bundle(root)
    decoder = FineTunedTAEF2Decoder.from_latent_space(TAEF2.from_pretrained(root / "autoencoder"))
    with torch.no_grad():  # "fine-tuned": its pictures differ from TAEF2's own decoder's
        decoder.decoder[-1].bias.add_(0.25)
    decoder.save_pretrained(root / "generative")
    write_manifest(root, BundleManifest("v5-test", {"autoencoder": "autoencoder", "latent_codec": "latent_codec",
                                                    "generative": "generative"}))
    return root


@pytest.fixture(scope="session")
def v5_bundle(tmp_path_factory) -> Path:
    return build_v5_bundle(tmp_path_factory.mktemp("v5-bundle"))


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    return build_tiny_bundle(tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="session")
def tiny_codec(tiny_bundle):
    from versacodec.codec import Codec

    return Codec.from_pretrained(tiny_bundle)


@pytest.fixture(scope="session")
def generative_bundle(tmp_path_factory) -> Path:
    return build_tiny_bundle(tmp_path_factory.mktemp("generative-bundle"), model_id="tiny-generative",
                             generative=True)


@pytest.fixture(scope="session")
def generative_codec(generative_bundle):
    from versacodec.codec import Codec

    return Codec.from_pretrained(generative_bundle)


@contextlib.contextmanager
def generative_settings(codec, **changes) -> Iterator[None]:
    """Run with some GenerativeConfig fields of a (session-shared) codec changed, then restore them."""
    original = codec.model.generative.config
    codec.model.generative.config = dataclasses.replace(original, **changes)
    try:
        yield
    finally:
        codec.model.generative.config = original


def natural_image(width: int = 96, height: int = 80, seed: int = 0) -> Image.Image:
    """A smooth, textured RGB test picture (gradients, a disc and noise)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    red = 0.5 + 0.4 * np.sin(xs / 9.0)
    green = 0.5 + 0.4 * np.cos(ys / 7.0)
    blue = ((xs - width / 2) ** 2 + (ys - height / 2) ** 2 < (min(width, height) / 3) ** 2).astype(np.float32)
    array = np.stack([red, green, 0.2 + 0.6 * blue], -1) + rng.normal(0, 0.03, (height, width, 3))
    return Image.fromarray((np.clip(array, 0, 1) * 255).astype(np.uint8), "RGB")


@pytest.fixture
def image_file(tmp_path) -> Path:
    path = tmp_path / "input.png"
    natural_image().save(path)
    return path


def shared_dir(*parts: str) -> Path | None:
    from versacodec.paths import data_dir, models_dir

    root = data_dir() if parts and parts[0] == "data" else models_dir()
    if root is None:
        return None
    path = root.joinpath(*parts[1:])
    return path if path.exists() else None


def declared_png(width: int, height: int) -> bytes:
    """A small, valid-looking greyscale PNG that declares width × height (its pixel data is cut
    short): decoding it would allocate the full image, so only a check of the header refuses it cheaply."""
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    rows = zlib.compress(b"\0" * (width + 1) * 4)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def forbid_decoding(monkeypatch) -> None:
    """Make any decode of a file's pixels fail the test: what is refused must be refused from its header."""
    from PIL import ImageFile

    def decode(self):
        raise AssertionError(f"decoded the pixels of a {self.size[0]}x{self.size[1]} image")

    monkeypatch.setattr(ImageFile.ImageFile, "load", decode)
