"""Streams written by an earlier versacodec decode bit-identically now, and encoding the same
pictures with the same settings still writes the same bytes.

tests/data holds, per container format, streams made once by scripts/make_fixture_streams.py
with the tiny bundle in tests/data/fixture_bundle (plain, greyscale, target bpp, task-structured,
extracted, layered, truncated), the SHA-256 of the pixels of each decode, and one stream of the
shipped model with the hash of its decoded latent: `streams/` in format 1.0 (v1–v4), `streams-2.0/`
in format 2.0 (v5 on). Every format's streams still decode; the current format's must also be
what the encoder writes today.
"""

import hashlib
import json
from pathlib import Path

import pytest
from PIL import Image

from versacodec.api import extract, truncate
from versacodec.codec import Codec
from versacodec.container.format import FORMAT_VERSION, Stream

DATA = Path(__file__).parent / "data"
FOLDERS = {(1, 0): DATA / "streams", (2, 0): DATA / "streams-2.0"}
STREAMS = FOLDERS[FORMAT_VERSION]  # what today's encoder writes


def expected_streams(folder: Path) -> dict:
    expected = json.loads((folder / "expected.json").read_text())
    expected.pop("default-model")
    return expected


EXPECTED = expected_streams(STREAMS)
STORED = [(version, name) for version, folder in FOLDERS.items() for name in expected_streams(folder)]
DECODES = {"direct": {"decoder": "direct"}, "generative": {"decoder": "generative"},
           "generative:steps=2:cfg=2:seed=5": {"decoder": "generative", "steps": 2, "cfg": 2.0, "seed": 5}}


@pytest.fixture(scope="module")
def fixture_codec() -> Codec:
    return Codec.from_pretrained(DATA / "fixture_bundle")


def pixels_sha256(image: Image.Image) -> str:
    return hashlib.sha256(f"{image.mode} {image.width}x{image.height}\n".encode() + image.tobytes()).hexdigest()


@pytest.mark.parametrize(("version", "name"), STORED)
def test_stored_streams_decode_to_the_recorded_pixels(fixture_codec, version, name):
    folder = FOLDERS[version]
    data = (folder / f"{name}.vcx").read_bytes()
    expected = expected_streams(folder)[name]
    assert hashlib.sha256(data).hexdigest() == expected["stream_sha256"]
    assert Stream.from_bytes(data).version == version
    decoded = {label: pixels_sha256(fixture_codec.decode(data, **options).image)
               for label, options in DECODES.items()}
    assert decoded == expected["decodes"]


def test_each_format_carries_the_same_pictures_and_the_newest_costs_fewer_bytes():
    """Format 2.0 changed only the container; since then task streams also carry a quality map
    over their regions by default (finer there, so more bytes), so they are left out."""
    old, new = expected_streams(FOLDERS[(1, 0)]), expected_streams(FOLDERS[(2, 0)])
    assert old.keys() == new.keys()
    for name in (name for name in old if "task" not in old[name]["settings"]):
        assert new[name]["decodes"] == old[name]["decodes"], name
        assert new[name]["bytes"] <= old[name]["bytes"] - 28, name


@pytest.mark.parametrize("name", list(EXPECTED))
def test_the_pictures_still_encode_to_the_stored_bytes(fixture_codec, name):
    recorded = EXPECTED[name]
    settings = dict(recorded["settings"])
    if "boxes" in settings:
        settings["boxes"] = str(STREAMS / settings["boxes"])
    data = fixture_codec.encode(Image.open(STREAMS / recorded["picture"]), **settings).data
    operation = recorded["operation"] or {}
    if "extract" in operation:
        data = extract(data, operation["extract"])
    if "truncate" in operation:
        data = truncate(data, operation["truncate"])
    assert hashlib.sha256(data).hexdigest() == recorded["stream_sha256"]


@pytest.mark.parametrize("version", list(FOLDERS))
def test_the_shipped_model_decodes_its_stored_stream_to_the_recorded_latent(version):
    codec = Codec.from_pretrained()
    folder = FOLDERS[version]
    shipped = json.loads((folder / "expected.json").read_text())["default-model"]
    latent = codec.decoded_latent(codec.read((folder / "default-model.vcx").read_bytes())).latent
    assert hashlib.sha256(latent.float().contiguous().numpy().tobytes()).hexdigest() == shipped["latent_sha256"]
