"""Issue #37: what cannot be encoded is refused from the image's header, at once, at every entry
point, and bad arguments get a specific message instead of a traceback."""

import io

import pytest
from PIL import Image

from conftest import declared_png, forbid_decoding, natural_image
from versacodec.bundle import read_manifest
from versacodec.codec import Codec
from versacodec.codec.model import CodecModel
from versacodec.container.format import Stream, StreamHeader
from versacodec.errors import InputError
from versacodec.limits import ASPECT_VARIABLE


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(("width", "height"), [(96, 80), (64, 64), (300, 40), (17, 200)])
def test_the_smallest_stream_bound_is_below_every_real_stream(tiny_codec, width, height):
    """A lower bound: a flat picture (the cheapest content) at quality 0 still codes to more."""
    model = tiny_codec.model
    floor = model.stream_floor.bytes(width, height)
    for picture in (Image.new("RGB", (width, height), (128, 128, 128)), natural_image(width, height)):
        assert floor <= len(tiny_codec.encode(picture, quality=0, tags=False).data)


def test_the_shipped_model_refuses_a_strip_under_its_smallest_stream_before_decoding(monkeypatch):
    """The issue's 100000x1 PNG at 0.05 bpp: 15 s and 1.3 GB before its refusal; now from the
    header, before a pixel is decoded."""
    codec = Codec.from_pretrained()
    strip = _png(Image.new("RGB", (100000, 1), (100, 120, 130)))
    forbid_decoding(monkeypatch)
    with pytest.raises(InputError, match="sides differ more than 100 to 1"):
        codec.encode(strip, bpp=0.05)
    monkeypatch.setenv(ASPECT_VARIABLE, "1000000")
    with pytest.raises(InputError, match=r"budget of 625 bytes is below the smallest stream .* \(at least \d+ bytes"):
        codec.encode(strip, bpp=0.05)


@pytest.mark.parametrize(("picture", "message"), [
    ("strip", "aspect limit"), ("bomb", "decompression-bomb guard"), ("pixels", "above the pixel limit"),
    ("damaged", "is not an image file")])
def test_the_command_line_refuses_from_the_header_before_loading_torch(tmp_path, monkeypatch, picture, message):
    """What needs only the file's header (the aspect limit, Pillow's bomb guard, the pixel limit, an
    unreadable file) is refused by `compress` before the seconds that importing torch and loading
    the model take, with the codec's own message."""
    import subprocess
    import sys

    path = tmp_path / f"{picture}.png"
    if picture == "strip":
        Image.new("RGB", (100000, 1)).save(path)
    elif picture == "damaged":
        path.write_bytes(b"not a picture")
    else:
        path.write_bytes(declared_png(30000, 30000) if picture == "bomb" else declared_png(300, 300))
        monkeypatch.setenv("VERSACODEC_MAX_PIXELS", "10000")
    probe = ("import sys; from versacodec.interfaces.cli import main; "
             f"code = main(['compress', {str(path)!r}, '--bpp', '0.05', '-o', "
             f"{str(tmp_path / 'out.vcx')!r}]); print(code, 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["2", "False"], result.stderr
    assert message in result.stderr and not (tmp_path / "out.vcx").exists()


@pytest.mark.parametrize("bundle", ["shipped", "fixture"])
def test_the_recorded_size_bounds_are_the_models(bundle, tmp_path):
    """The command line refuses a budget by the floor, and an image by the memory estimate,
    recorded in bundle.json, before torch: each must be the loaded model's to the byte, for both
    bundle.json layouts (the shipped float16 bundle's class names; the float32 fixture's older
    components map, recorded here on a copy, as scripts/record_size_bounds.py records a bundle
    written before the records existed)."""
    import json
    import shutil
    from pathlib import Path

    from versacodec.bundle import weights_hash
    from versacodec.codec.model import record_size_bounds
    from versacodec.paths import default_model_dir

    if bundle == "shipped":
        root = default_model_dir()
    else:
        original = Path(__file__).parent / "data" / "fixture_bundle"
        assert read_manifest(original).stream_floor is None and read_manifest(original).memory_estimate is None
        root = Path(shutil.copytree(original, tmp_path / "fixture"))
        before = weights_hash(root, read_manifest(root))
        record_size_bounds(root)
        assert "components" in json.loads((root / "bundle.json").read_text())  # the layout kept
        assert weights_hash(root, read_manifest(root)) == before
    recorded = read_manifest(root).stream_floor
    model = CodecModel.from_pretrained(root)
    sizes = [(1, 1), (64, 64), (65, 63), (768, 512), (100000, 1), (5000, 5000), (16384, 16384)]
    assert [recorded.bytes(*size) for size in sizes] == [model.stream_floor.bytes(*size) for size in sizes]
    assert recorded == model.stream_floor
    assert recorded.bytes(5000, 5000) > recorded.bytes(768, 512) > 0
    estimate = read_manifest(root).memory_estimate
    assert [estimate.bytes(*size) for size in sizes] == [model.working_memory(*size) for size in sizes]


def test_stale_recorded_bounds_are_refused_when_the_bundle_loads(tiny_bundle, tmp_path):
    """A recorded floor or memory estimate that disagrees with the model would refuse what fits
    (or pass what cannot); loading the bundle says so and how to record them again."""
    import dataclasses
    import shutil
    from pathlib import Path

    from versacodec.bundle import write_size_bounds
    from versacodec.codec.model import record_size_bounds
    from versacodec.errors import ModelError

    root = Path(shutil.copytree(tiny_bundle, tmp_path / "bundle"))
    floor, estimate = record_size_bounds(root)
    for stale in ((dataclasses.replace(floor, z_position_bits=floor.z_position_bits * 2), estimate),
                  (floor, dataclasses.replace(estimate, image_bytes=estimate.image_bytes + 1))):
        write_size_bounds(root, *stale)
        with pytest.raises(ModelError, match="record it again"):
            CodecModel.from_pretrained(root)
    assert record_size_bounds(root) == (floor, estimate)
    assert CodecModel.from_pretrained(root).stream_floor == floor


def test_the_command_line_refuses_a_budget_below_the_smallest_stream_before_loading_torch(tmp_path, monkeypatch):
    """The issue's strip with the aspect limit lifted: the budget refusal comes from the header and
    bundle.json, without torch, with the loaded model's wording and number."""
    import subprocess
    import sys

    monkeypatch.setenv(ASPECT_VARIABLE, "1000000")
    Image.new("RGB", (100000, 1)).save(tmp_path / "strip.png")
    probe = ("import sys; from versacodec.interfaces.cli import main; "
             f"code = main(['compress', {str(tmp_path / 'strip.png')!r}, '--bpp', '0.05', '-o', "
             f"{str(tmp_path / 'strip.vcx')!r}]); print(code, 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["2", "False"], result.stderr
    floor = CodecModel.from_pretrained().stream_floor.bytes(100000, 1)
    assert f"budget of 625 bytes is below the smallest stream this model can write for a 100000x1 image " \
           f"(at least {floor} bytes)" in result.stderr
    assert not (tmp_path / "strip.vcx").exists()


@pytest.mark.parametrize(("command", "message"), [
    (["compress", "IMAGE", "--bpp", "0.05", "-o", "OUT/new.vcx"], "above the memory limit of 1.0 M"),
    (["compress", "IMAGE", "--quality", "101", "-o", "OUT/new.vcx"], "from 0 to the model's highest (100), not 101"),
    (["batch", "FOLDER", "OUT/x.vcx/sub", "--quality", "10"], "cannot write to the output folder"),
    (["batch", "FOLDER", "OUT/b", "--quality", "101"], "not 101"),
    (["eval", "--dataset", "kodak", "--codecs", "jpeg", "--bpp", "0.1", "--out", "OUT/x.vcx/ev"],
     "cannot write to the output folder"),
    (["decompress", "STREAM", "-o", "OUT/d.png"], "to decode, above the memory limit of 1.0 M"),
])
def test_the_command_line_refuses_before_loading_torch(command, message, tmp_path, monkeypatch):
    """Issue #37: every refusal in under 2 s; importing torch alone takes 1.4-2 s on these machines."""
    import subprocess
    import sys

    monkeypatch.setenv("VERSACODEC_MAX_MEMORY", "1M")
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (64, 48)).save(tmp_path / "photos" / "a.png")
    (tmp_path / "x.vcx").write_bytes(b"not a folder")
    stream = tmp_path / "declared.vcx"  # a header declaring 4000x3000 pixels
    stream.write_bytes(Stream(StreamHeader(4000, 3000, "", b"\0" * 4, 10)).to_bytes())
    words = [w.replace("IMAGE", str(tmp_path / "photos" / "a.png")).replace("FOLDER", str(tmp_path / "photos"))
             .replace("STREAM", str(stream)).replace("OUT", str(tmp_path)) for w in command]
    probe = ("import sys; from versacodec.interfaces.cli import main; "
             f"code = main({words!r}); print(code, 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["2", "False"], result.stderr
    assert message in result.stderr


def test_an_elongated_image_is_refused_from_its_declared_size(tiny_codec, monkeypatch):
    forbid_decoding(monkeypatch)
    with pytest.raises(InputError, match="aspect limit"):
        tiny_codec.encode(declared_png(30000, 100), quality=10)
    monkeypatch.setenv(ASPECT_VARIABLE, "2")
    with pytest.raises(InputError, match="sides differ more than 2 to 1"):
        tiny_codec.encode(Image.new("RGB", (7, 3)), quality=10)


def test_loading_a_bundle_draws_no_random_initial_weights(tiny_bundle, monkeypatch):
    """Start-up (issue #37 §4): the shipped model spent 0.15 of its 0.35 s of loading on random
    initial weights that loading replaces; and torch.nn.init is restored afterwards."""
    import torch

    drawn = []
    original = torch.nn.init.kaiming_uniform_
    monkeypatch.setattr(torch.nn.init, "kaiming_uniform_", lambda tensor, *a, **k: drawn.append(1) or tensor)
    codec = Codec.from_pretrained(tiny_bundle)
    assert drawn == [] and codec.model.latent_space is not None
    torch.nn.Conv2d(2, 2, 3)
    assert drawn == [1]
    monkeypatch.setattr(torch.nn.init, "kaiming_uniform_", original)
