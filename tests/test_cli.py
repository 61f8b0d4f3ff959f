import json

import pytest
from PIL import Image

from conftest import natural_image
from versacodec.interfaces.cli import main


def run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def stream_file(tmp_path, image_file, tiny_bundle, capsys):
    out = tmp_path / "out.vcx"
    code, _, err = run(capsys, "compress", image_file, "-o", out, "--quality", "40", "--model", tiny_bundle)
    assert code == 0, err
    return out


def test_compress_decompress_info(tmp_path, stream_file, tiny_bundle, capsys):
    png = tmp_path / "out.png"
    code, out, _ = run(capsys, "decompress", stream_file, "-o", png, "--model", tiny_bundle, "--json")
    assert code == 0
    record = json.loads(out)
    assert record["width"] == 96 and record["height"] == 80
    assert Image.open(png).size == (96, 80)
    code, out, _ = run(capsys, "info", stream_file, "--json")
    report = json.loads(out)
    assert report["header_bytes"] + sum(s["bytes"] for s in report["sections"]) == stream_file.stat().st_size
    assert report["header"]["quality"] == 40
    code, out, _ = run(capsys, "info", stream_file)
    assert "hyperprior" in out and "latent" in out


def test_compress_reports_bpp_from_the_file(tmp_path, image_file, tiny_bundle, capsys):
    out = tmp_path / "a.vcx"
    code, stdout, _ = run(capsys, "compress", image_file, "-o", out, "--quality", "70", "--model", tiny_bundle,
                          "--json")
    assert code == 0
    record = json.loads(stdout)
    assert record["bytes"] == out.stat().st_size
    assert record["bpp"] == pytest.approx(out.stat().st_size * 8 / (96 * 80))


def test_existing_output_is_not_overwritten(tmp_path, image_file, tiny_bundle, capsys):
    out = tmp_path / "keep.vcx"
    out.write_bytes(b"precious")
    code, _, err = run(capsys, "compress", image_file, "-o", out, "--model", tiny_bundle)
    assert code == 2 and "--overwrite" in err and out.read_bytes() == b"precious"
    code, _, _ = run(capsys, "compress", image_file, "-o", out, "--model", tiny_bundle, "--overwrite")
    assert code == 0 and out.read_bytes() != b"precious"


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_bad_image_input_is_one_line_exit_2_and_no_output(tmp_path, tiny_bundle, capsys, content):
    source = tmp_path / "bad.png"
    source.write_bytes(content)
    out = tmp_path / "never.vcx"
    code, _, err = run(capsys, "compress", source, "-o", out, "--model", tiny_bundle)
    assert code == 2 and err.startswith("versacodec: error:") and err.count("\n") == 1
    assert "Traceback" not in err and not out.exists()
    assert list(tmp_path.iterdir()) == [source]


def test_missing_input_and_usage_errors(tmp_path, tiny_bundle, capsys):
    code, _, err = run(capsys, "compress", tmp_path / "nope.png", "-o", tmp_path / "x.vcx", "--model", tiny_bundle)
    assert code == 2 and "nope.png" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["compress", "x.png"])
    assert exit_info.value.code == 2


def test_every_byte_flip_and_truncation_exits_2_without_output(tmp_path, stream_file, tiny_bundle, capsys):
    data = stream_file.read_bytes()
    bad = tmp_path / "bad.vcx"
    png = tmp_path / "bad.png"
    step = max(1, len(data) // 60)
    cases = [bytes(data[:i]) for i in range(0, len(data), step)]
    for position in range(0, len(data), step):
        flipped = bytearray(data)
        flipped[position] ^= 0xFF
        cases.append(bytes(flipped))
    for case in cases:
        bad.write_bytes(case)
        code, _, err = run(capsys, "decompress", bad, "-o", png, "--model", tiny_bundle)
        assert code == 2, f"accepted a damaged stream ({len(case)} bytes)"
        assert err.startswith("versacodec: error:") and not png.exists()
        code, _, err = run(capsys, "info", bad)
        assert code == 2 and err.startswith("versacodec: error:")


def test_exif_orientation_is_applied(tmp_path, tiny_bundle, capsys):
    image = natural_image(96, 64)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° on display
    source = tmp_path / "rotated.jpg"
    image.save(source, exif=exif.tobytes())
    out = tmp_path / "r.vcx"
    code, _, err = run(capsys, "compress", source, "-o", out, "--model", tiny_bundle)
    assert code == 0 and "EXIF orientation" in err
    code, out_text, _ = run(capsys, "info", out, "--json")
    header = json.loads(out_text)["header"]
    assert (header["width"], header["height"]) == (64, 96)
