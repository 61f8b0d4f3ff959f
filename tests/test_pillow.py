"""The Pillow plugin: Image.open decodes .vcx lazily, image.save encodes, extension and MIME type."""

import numpy as np
import pytest
from PIL import Image

import versacodec
import versacodec.pillow  # registers the format
from conftest import natural_image
from versacodec.errors import ModelError, StreamError


@pytest.fixture
def default_model(tiny_bundle):
    versacodec.set_default_model(tiny_bundle)
    yield tiny_bundle
    versacodec.set_default_model(None)


def test_registered_extension_and_mime():
    assert Image.registered_extensions()[".vcx"] == "VCX"
    assert Image.MIME["VCX"] == "image/x-vcx"


def test_save_with_bpp_then_open_decodes_like_the_api(default_model, tmp_path):
    path = tmp_path / "x.vcx"
    natural_image(90, 70).save(path, bpp=0.6)
    data = path.read_bytes()
    assert len(data) * 8 / (90 * 70) <= 0.6
    with Image.open(path) as image:
        assert (image.format, image.size, image.mode) == ("VCX", (90, 70), "RGB")
        assert image.get_format_mimetype() == "image/x-vcx"
        pixels = np.asarray(image)
    assert np.array_equal(pixels, np.asarray(versacodec.decompress(data)))


def test_quality_greyscale_and_explicit_model(tiny_bundle, tmp_path):
    path = tmp_path / "grey.vcx"
    natural_image().convert("L").save(path, quality=30, model=tiny_bundle)
    versacodec.set_default_model(tiny_bundle)
    try:
        with Image.open(path) as image:
            assert image.mode == "L" and image.info["quality"] == 30
            image.load()
    finally:
        versacodec.set_default_model(None)


def test_open_is_lazy_and_load_uses_the_model(tiny_bundle, tmp_path, monkeypatch):
    path = tmp_path / "lazy.vcx"
    natural_image().save(path, quality=20, model=tiny_bundle)
    versacodec.set_default_model(tmp_path / "no-model-here")
    try:
        image = Image.open(path)  # header only: no model needed yet
        assert image.size == (96, 80)
        with pytest.raises(ModelError):
            image.load()
    finally:
        versacodec.set_default_model(None)


def test_damaged_files_raise_stream_error(default_model, tmp_path):
    path = tmp_path / "x.vcx"
    natural_image().save(path, quality=20)
    data = path.read_bytes()
    path.write_bytes(data[:-5])
    with pytest.raises(StreamError, match="truncated"):
        Image.open(path)
    flipped = bytearray(data)
    flipped[-3] ^= 0x10
    path.write_bytes(bytes(flipped))
    with pytest.raises(StreamError, match="CRC"):
        Image.open(path)


def test_failed_save_leaves_no_file(default_model, tmp_path):
    path = tmp_path / "never.vcx"
    with pytest.raises(versacodec.InputError):
        natural_image().save(path, bpp=1e-6)
    assert not path.exists()


def test_failed_save_keeps_an_existing_file(default_model, tmp_path):
    path = tmp_path / "existing.vcx"
    natural_image().save(path, quality=20)
    before = path.read_bytes()
    for bad in ({"bpp": -1}, {"quality": 50.5}):
        with pytest.raises(versacodec.InputError):
            natural_image(40, 30).save(path, **bad)
        assert path.read_bytes() == before
    natural_image(40, 30).save(str(path), format="VCX", quality=10)  # a good save replaces it
    assert path.read_bytes() != before and Image.open(path).size == (40, 30)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.vcx"]
    natural_image(40, 30).save(tmp_path / "plain.png")  # other formats are Pillow's own save
    assert Image.open(tmp_path / "plain.png").format == "PNG"


def test_a_save_that_cannot_be_written_is_an_output_error(default_model, tmp_path, monkeypatch):
    """Issue #37: a bare PermissionError before. Tests run as root here, so the refusal is made by
    the write itself; a missing folder is the same path."""
    import versacodec.fileio as fileio

    def refuse(path, data, **_):
        raise PermissionError(13, "Permission denied", str(path))

    with pytest.raises(versacodec.OutputError, match=r"cannot write .*missing.*: No such file or directory"):
        natural_image(40, 30).save(tmp_path / "missing" / "x.vcx", quality=10)
    monkeypatch.setattr(fileio, "atomic_write_bytes", refuse)
    with pytest.raises(versacodec.OutputError, match=r"cannot write .*x\.vcx: Permission denied") as caught:
        natural_image(40, 30).save(tmp_path / "x.vcx", quality=10)
    assert isinstance(caught.value, OSError)
