"""Streams written by an earlier versacodec decode bit-identically now, and encoding the same
pictures with the same settings still writes the same bytes.

tests/data/streams holds streams made once by scripts/make_fixture_streams.py with the tiny bundle
in tests/data/fixture_bundle (plain, greyscale, target bpp, task-structured, extracted, layered,
truncated), the SHA-256 of the pixels of each decode, and one stream of the shipped model with
the hash of its decoded latent.
"""

import hashlib
import json
from pathlib import Path

import pytest
from PIL import Image

from versacodec.api import extract, truncate
from versacodec.codec import Codec

DATA = Path(__file__).parent / "data"
STREAMS = DATA / "streams"
EXPECTED = json.loads((STREAMS / "expected.json").read_text())
SHIPPED = EXPECTED.pop("default-model")
DECODES = {"direct": {"decoder": "direct"}, "generative": {"decoder": "generative"},
           "generative:steps=2:cfg=2:seed=5": {"decoder": "generative", "steps": 2, "cfg": 2.0, "seed": 5}}


@pytest.fixture(scope="module")
def fixture_codec() -> Codec:
    return Codec.from_pretrained(DATA / "fixture_bundle")


def pixels_sha256(image: Image.Image) -> str:
    return hashlib.sha256(f"{image.mode} {image.width}x{image.height}\n".encode() + image.tobytes()).hexdigest()


@pytest.mark.parametrize("name", list(EXPECTED))
def test_stored_streams_decode_to_the_recorded_pixels(fixture_codec, name):
    data = (STREAMS / f"{name}.vcx").read_bytes()
    expected = EXPECTED[name]
    assert hashlib.sha256(data).hexdigest() == expected["stream_sha256"]
    decoded = {label: pixels_sha256(fixture_codec.decompress(data, **options).image)
               for label, options in DECODES.items()}
    assert decoded == expected["decodes"]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_the_pictures_still_encode_to_the_stored_bytes(fixture_codec, name):
    recorded = EXPECTED[name]
    settings = dict(recorded["settings"])
    if "boxes" in settings:
        settings["boxes"] = str(STREAMS / settings["boxes"])
    data = fixture_codec.compress(Image.open(STREAMS / recorded["picture"]), **settings).data
    operation = recorded["operation"] or {}
    if "extract" in operation:
        data = extract(data, operation["extract"])
    if "truncate" in operation:
        data = truncate(data, operation["truncate"])
    assert hashlib.sha256(data).hexdigest() == recorded["stream_sha256"]


def test_the_shipped_model_decodes_its_stored_stream_to_the_recorded_latent():
    codec = Codec.from_pretrained()
    data = (STREAMS / "default-model.vcx").read_bytes()
    stream = codec.read_stream(data)
    latent = codec.decode_latent(stream)
    assert hashlib.sha256(latent.float().contiguous().numpy().tobytes()).hexdigest() == SHIPPED["latent_sha256"]
