"""Every feature on v5's layout (issue #35 step 6): TAEF2 as the latent space, a 32-channel codec,
and a generative decoder that is one pixel-decoder pass. The tiny bundle has random weights; what
is tested is that each feature runs end to end and keeps its promises, not picture quality."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import versacodec
from conftest import natural_image
from versacodec.codec import Codec
from versacodec.container.format import SectionKind, Stream
from versacodec.interfaces.batch import BatchSettings, run_batch
from versacodec.semantics.regions import Region

BOXES = [Region("sign", (8.0, 8.0, 60.0, 50.0))]


@pytest.fixture(scope="module")
def codec(v5_bundle) -> Codec:
    return Codec.from_pretrained(v5_bundle)


@pytest.fixture(scope="module")
def image() -> Image.Image:
    return natural_image(128, 96, seed=3)


def test_rate_control_holds_the_real_file_size(codec, image):
    encoded = codec.encode(image, bpp=1.0)
    assert len(encoded.data) * 8 / (128 * 96) <= 1.0
    for decoder in ("generative", "direct"):
        assert codec.decode(encoded.data, decoder=decoder).image.size == image.size


def test_task_streams_extract_and_decode(codec, image):
    encoded = codec.encode(image, quality=80, task="boxes", boxes=BOXES)
    partial = versacodec.extract(encoded.data, "boxes")
    assert len(partial) < len(encoded.data)
    assert SectionKind.REGION_MAP in [s.kind for s in Stream.from_bytes(partial).sections]
    for decoder in ("generative", "direct"):
        assert codec.decode(partial, decoder=decoder).image.size == image.size


def test_the_quality_map_moves_bits_and_decodes(codec, image):
    plain = codec.encode(image, quality=50)
    mapped = codec.encode(image, quality=50, quality_map="importance")
    assert mapped.data != plain.data
    assert codec.decode(mapped.data).image.size == image.size


def test_layers_truncate_to_every_prefix(codec, image):
    layered = codec.encode(image, quality=60, layers=3).data
    sizes = [len(versacodec.truncate(layered, k)) for k in (1, 2, 3)]
    assert sizes[0] < sizes[1] < sizes[2] == len(layered)
    for k in (1, 2, 3):
        decoded = codec.decode(versacodec.truncate(layered, k))
        assert decoded.image.size == image.size


def test_explicit_tags_are_kept(codec, image):
    assert codec.read(codec.encode(image, quality=40, tags=(3, 7)).data).tags == (3, 7)


def test_pillow_saves_and_opens(v5_bundle, image, tmp_path):
    versacodec.register_pillow()
    path = tmp_path / "x.vcx"
    image.save(path, quality=30, model=v5_bundle)
    versacodec.set_default_model(v5_bundle)
    try:
        with Image.open(path) as opened:
            pixels = np.asarray(opened)
    finally:
        versacodec.set_default_model(None)
    assert pixels.shape == (96, 128, 3)


def test_batch_codes_a_folder(v5_bundle, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(2):
        natural_image(80, 64, seed=index).save(photos / f"p{index}.png")
    report = run_batch(photos, tmp_path / "out", BatchSettings(model=str(v5_bundle), quality=20))
    assert report.complete and sorted(p.name for p in (tmp_path / "out").glob("*.vcx")) == ["p0.vcx", "p1.vcx"]
