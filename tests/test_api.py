"""The Python API (versacodec.compress / decompress / Codec) and its doctests (the docs' examples: test_docs.py)."""

import doctest
import io
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import versacodec
from conftest import declared_png, forbid_decoding, natural_image
from versacodec import api
from versacodec.codec import Codec
from versacodec.interfaces import batch


def run_doctests(target, globs: dict) -> None:
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(target, extraglobs=globs, optionflags=flags)
    assert result.attempted > 0, f"no examples found in {target}"
    assert result.failed == 0, f"{result.failed} doctest examples failed in {target}"


def test_api_docstring_examples_run(tiny_bundle, tmp_path):
    from versacodec import options, registry

    run_doctests(api, {"model_dir": tiny_bundle})
    run_doctests(options, {})
    run_doctests(registry, {})
    run_doctests(batch, {"model_dir": tiny_bundle, "photos": tmp_path / "photos", "streams": tmp_path / "streams"})


def test_import_is_light_and_names_resolve_lazily():
    code = "import sys, versacodec; assert 'torch' not in sys.modules; print(sorted(versacodec.__all__))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert "compress" in result.stdout
    assert versacodec.Codec is Codec and versacodec.compress is api.compress
    with pytest.raises(AttributeError):
        versacodec.no_such_name  # noqa: B018


def test_api_matches_the_codec_and_caches_models(tiny_bundle, tiny_codec):
    image = natural_image(80, 64)
    data = versacodec.compress(image, quality=30, model=tiny_bundle)
    assert data == tiny_codec.encode(image, quality=30).data
    decoded = versacodec.decompress(data, model=tiny_codec)
    assert np.array_equal(np.asarray(decoded), np.asarray(tiny_codec.decode(data).image))
    assert api.load_codec(tiny_bundle) is api.load_codec(str(tiny_bundle) + "/")
    with pytest.raises(versacodec.InputError, match="has no option 'no_such_option'"):
        versacodec.compress(image, model=tiny_codec, no_such_option=1)


def test_default_model_from_function_and_environment(tiny_bundle, tiny_codec, monkeypatch, tmp_path):
    from versacodec.errors import ModelError
    from versacodec.paths import default_model_dir

    monkeypatch.setenv("VERSACODEC_MODEL", str(tmp_path / "missing"))
    assert default_model_dir() == tmp_path / "missing"
    api._cached_codec.cache_clear()
    with pytest.raises(ModelError, match="missing"):
        versacodec.compress(natural_image(), quality=10)
    versacodec.set_default_model(tiny_codec)
    try:
        data = versacodec.compress(Image.new("RGB", (40, 30)), quality=10)
        assert versacodec.decompress(data).size == (40, 30)
    finally:
        versacodec.set_default_model(None)
        api._cached_codec.cache_clear()


@pytest.mark.parametrize(("options", "message"), [
    ({"quality": True}, "quality must be an integer, not True"),
    ({"quality": 50.5}, "quality must be an integer, not 50.5"),
    ({"quality": 101}, "quality must be an integer from 0 to the model's highest (100), not 101"),
    ({"quality": -1}, "quality must be an integer from 0 to the model's highest, not -1"),
    ({"quality": 20, "tags": "abc"}, "tags must be True, False or a list of ImageNet class ids"),
    ({"quality": 20, "tags": [1.5]}, "tags must be True, False or a list of ImageNet class ids"),
    ({"quality": 20, "colour": "red"}, "compress() has no option 'colour'; its options are boxes, bpp,"),
    ({"bpp": 1e305}, "target bpp must be a positive number up to 64"),
    ({"bpp": True}, "target bpp must be a number, not True"),
    ({"quality": 20, "seed": -1}, "seed must be from 0 to"),
    ({"quality": 20, "seed": 1 << 40}, "seed must be from 0 to"),
    ({"quality": 20, "layers": 2.5}, "layers must be an integer"),
])
def test_bad_settings_are_input_errors(tiny_codec, options, message):
    with pytest.raises(versacodec.InputError, match=re.escape(message)):
        versacodec.compress(natural_image(40, 30), model=tiny_codec, **options)


def test_every_seed_the_encoder_accepts_is_read_back(tiny_codec):
    from versacodec.options import MAX_SEED

    data = versacodec.compress(natural_image(40, 30), quality=20, seed=MAX_SEED, model=tiny_codec)
    assert tiny_codec.decode(data).header.seed == MAX_SEED
    with pytest.raises(versacodec.InputError, match="seed"):
        tiny_codec.decode(data, seed=-1)


def test_empty_image_is_an_input_error(tiny_codec):
    with pytest.raises(versacodec.InputError, match="0x0"):
        versacodec.compress(Image.new("RGB", (0, 0)), quality=20, model=tiny_codec)


def test_declared_size_is_checked_before_decoding(tiny_bundle, monkeypatch):
    forbid_decoding(monkeypatch)
    small_memory = Codec.from_pretrained(tiny_bundle, max_memory=1 << 30)
    with pytest.raises(versacodec.InputError, match="memory limit"):  # before Pillow decodes 81 MP
        small_memory.encode(declared_png(9000, 9000), quality=20)
    with pytest.raises(versacodec.InputError, match="decompression-bomb"):
        small_memory.encode(declared_png(16384, 16384), quality=20)


def test_conversions_that_lose_information_say_so(tiny_codec, tmp_path):
    from PIL import ImageCms

    frames = [natural_image(32, 32, seed=i) for i in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert "only the first of 3 frames coded" in tiny_codec.model.load_image(tmp_path / "anim.gif").notes
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    natural_image(32, 32).save(tmp_path / "profiled.png", icc_profile=lab)
    notes = tiny_codec.model.load_image(tmp_path / "profiled.png").notes
    assert "ICC colour profile ignored (pixels coded as sRGB)" in notes
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    natural_image(32, 32).save(tmp_path / "srgb.png", icc_profile=srgb)
    assert tiny_codec.model.load_image(tmp_path / "srgb.png").notes == []
    wide = np.full((4, 4, 3), 40000, dtype=">u2")
    loaded = tiny_codec.model.load_image(_png16_rgb(wide))
    assert loaded.notes == ["16-bit colour reduced to 8 bits"] and loaded.bit_depth == 16


def _png16_rgb(array: np.ndarray) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    height, width = array.shape[:2]
    rows = b"".join(b"\0" + array[y].astype(">u2").tobytes() for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_a_lazily_opened_damaged_image_is_an_input_error(tiny_codec, tmp_path):
    path = tmp_path / "cut.png"
    natural_image(300, 200).save(path)
    path.write_bytes(path.read_bytes()[:-2000])  # its pixel data cut short
    with Image.open(path) as image, pytest.raises(versacodec.InputError, match="damaged or truncated"):
        versacodec.compress(image, quality=20, model=tiny_codec)


@pytest.mark.parametrize(("call", "message"), [
    (lambda codec: versacodec.compress(np.zeros((30, 40, 3), np.uint8), model=codec),
     "image must be a path, the bytes of an image file or a PIL image, not ndarray (for an array, pass "
     "PIL.Image.fromarray(array))"),
    (lambda codec: versacodec.compress(None, model=codec), "image must be a path, the bytes of an image file"),
    (lambda codec: versacodec.decompress(None, model=codec), "data must be the bytes of a .vcx stream, not NoneType"),
    (lambda codec: versacodec.decompress("photo.vcx", model=codec), "not str (read the file first"),
    (lambda codec: versacodec.decompress(b"", model=codec, colour=1), "decompress() has no option 'colour'"),
    (lambda codec: versacodec.extract(None, "detection"), "data must be the bytes of a .vcx stream"),
    (lambda codec: versacodec.compress(natural_image(40, 30), model=3),
     "model must be a model folder, a Codec or None"),
])
def test_arguments_of_the_wrong_kind_are_input_errors_not_type_errors(tiny_codec, call, message):
    """Issue #37: these raised Python's TypeError or ValueError, naming open() or a dataclass."""
    with pytest.raises(versacodec.InputError, match=re.escape(message)):
        call(tiny_codec)


def test_a_bytearray_image_is_coded_like_bytes(tiny_codec):
    buffer = io.BytesIO()
    natural_image(40, 30).save(buffer, format="PNG")
    assert versacodec.compress(bytearray(buffer.getvalue()), quality=20, model=tiny_codec) == versacodec.compress(
        buffer.getvalue(), quality=20, model=tiny_codec)
