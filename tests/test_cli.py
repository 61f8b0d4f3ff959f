import io
import json
import subprocess
import sys

import pytest
from PIL import Image

from conftest import declared_png, forbid_decoding, natural_image
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
    size = stream_file.stat().st_size
    assert report["header_bytes"] + sum(s["bytes"] for s in report["sections"]) + report["checksum_bytes"] == size
    assert sum(report["breakdown"].values()) == size and report["format_version"] == "2.0"
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


# --------------------------------------------------------------------------- conventions of image tools
def test_dash_is_stdin_and_stdout_and_status_goes_to_stderr(tmp_path, image_file, tiny_bundle, capsysbinary,
                                                             monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(image_file.read_bytes())))
    assert main(["compress", "-", "-o", "-", "--quality", "40", "--model", str(tiny_bundle)]) == 0
    captured = capsysbinary.readouterr()
    assert captured.out.startswith(b"\x89VCX") and b"bytes," in captured.err  # the stream alone on stdout
    stream = captured.out
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stream)))
    assert main(["decompress", "-", "-o", "-", "--model", str(tiny_bundle), "--json"]) == 0
    captured = capsysbinary.readouterr()
    assert Image.open(io.BytesIO(captured.out)).size == (96, 80)
    assert json.loads(captured.err)["width"] == 96  # the record goes to stderr when stdout has the image
    assert not (tmp_path / "-").exists()


def test_version_and_quiet(tmp_path, image_file, tiny_bundle, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.startswith("versacodec 0.")
    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (40, 30), (1, 2, 3, 100)).save(rgba)
    code, out, err = run(capsys, "compress", rgba, "-o", tmp_path / "q.vcx", "-q", "--model", tiny_bundle)
    assert code == 0 and out == "" and err == "" and (tmp_path / "q.vcx").exists()
    code, out, err = run(capsys, "compress", rgba, "-o", tmp_path / "loud.vcx", "--model", tiny_bundle)
    assert out == "" and "note: " in err and "alpha channel dropped" in err


def test_several_inputs_into_a_folder_or_a_pattern(tmp_path, tiny_bundle, capsys):
    for name in ("a.png", "b.png"):
        natural_image(48, 40).save(tmp_path / name)
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = run(capsys, "compress", tmp_path / "a.png", tmp_path / "b.png", "-o", out, "--quality", "30",
                       "--model", tiny_bundle)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["a.vcx", "b.vcx"]
    code, _, err = run(capsys, "decompress", out / "a.vcx", out / "b.vcx", "-o", f"{out}/{{stem}}-decoded.png",
                       "--model", tiny_bundle)
    assert code == 0, err
    assert Image.open(out / "b-decoded.png").size == (48, 40)
    natural_image(48, 40).save(tmp_path / "a.jpg")
    (tmp_path / "two").mkdir()
    code, _, err = run(capsys, "compress", tmp_path / "a.png", tmp_path / "a.jpg", "-o", tmp_path / "two",
                       "--model", tiny_bundle)
    assert code == 2 and "would both write" in err and err.count("\n") == 1
    code, _, err = run(capsys, "compress", tmp_path / "a.png", tmp_path / "a.jpg", "-o",
                       f"{tmp_path}/two/{{name}}.vcx", "--quality", "30", "--model", tiny_bundle)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["a.jpg.vcx", "a.png.vcx"]
    (tmp_path / "bad.png").write_bytes(b"not an image")  # one failing input does not stop the others
    code, _, err = run(capsys, "compress", tmp_path / "bad.png", tmp_path / "b.png", "-o", f"{tmp_path}/three/",
                       "--quality", "30", "--model", tiny_bundle)
    assert code == 2 and err.count("versacodec: error:") == 1 and "bad.png" in err
    assert [p.name for p in (tmp_path / "three").iterdir()] == ["b.vcx"]


def test_info_into_a_closed_pipe_exits_quietly(stream_file):
    process = subprocess.Popen([sys.executable, "-m", "versacodec", "info", str(stream_file)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # like `| head -1` that has already exited
    error = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141 and error == ""


# --------------------------------------------------------------------------- one line and exit 2, never a traceback
def _cannot_create(*_, **__):
    raise PermissionError(13, "Permission denied")


@pytest.mark.parametrize("command", ["compress", "decompress", "truncate"])
def test_unwritable_output_folder_is_one_line(tmp_path, image_file, stream_file, tiny_bundle, capsys, monkeypatch,
                                              command):
    import tempfile

    layered = tmp_path / "layered.vcx"
    assert run(capsys, "compress", image_file, "-o", layered, "--quality", "40", "--layers", "2",
               "--model", tiny_bundle)[0] == 0
    arguments = {"compress": [image_file, "--quality", "40", "--model", tiny_bundle],
                 "decompress": [stream_file, "--model", tiny_bundle],
                 "truncate": [layered, "--layers", "1"]}[command]
    monkeypatch.setattr(tempfile, "mkstemp", _cannot_create)  # what a user without write permission gets
    output = tmp_path / ("written.png" if command == "decompress" else "written.vcx")
    code, _, err = run(capsys, command, *arguments, "-o", output)
    assert code == 2 and err == f"versacodec: error: cannot write {output}: Permission denied\n"


@pytest.mark.parametrize(("options", "message"), [
    (["--bpp", "1e305"], "target bpp must be a positive number up to 64"),
    (["--seed", "-1"], "seed must be from 0 to"),
    (["--seed", "1099511627776"], "seed must be from 0 to"),
])
def test_values_the_stream_cannot_hold_are_refused(tmp_path, image_file, tiny_bundle, capsys, options, message):
    code, _, err = run(capsys, "compress", image_file, "-o", tmp_path / "x.vcx", *options, "--model", tiny_bundle)
    assert code == 2 and message in err and err.count("\n") == 1 and not (tmp_path / "x.vcx").exists()


def test_output_that_is_a_folder_is_one_line_even_with_overwrite(tmp_path, image_file, tiny_bundle, capsys):
    (tmp_path / "folder.vcx").mkdir()
    code, _, err = run(capsys, "compress", image_file, "-o", tmp_path / "folder.vcx", "--overwrite",
                       "--model", tiny_bundle)
    assert code == 2 and "is a folder" in err and err.count("\n") == 1


def test_a_file_that_appears_while_compressing_is_kept(tmp_path, image_file, tiny_bundle, capsys, monkeypatch):
    from versacodec.codec import Codec

    output = tmp_path / "race.vcx"
    original = Codec.encode

    def encode_while_another_run_writes(self, *args, **kwargs):
        output.write_bytes(b"the other run's file")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Codec, "encode", encode_while_another_run_writes)
    code, _, err = run(capsys, "compress", image_file, "-o", output, "--quality", "40", "--model", tiny_bundle)
    assert code == 2 and "kept it" in err and output.read_bytes() == b"the other run's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input.png", "race.vcx"]


def test_an_image_declaring_a_huge_size_is_refused_before_decoding(tmp_path, tiny_bundle, capsys, monkeypatch):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(declared_png(9000, 9000))
    monkeypatch.setenv("VERSACODEC_MAX_MEMORY", "1G")
    forbid_decoding(monkeypatch)
    code, _, err = run(capsys, "compress", bomb, "-o", tmp_path / "b.vcx", "--bpp", "0.05", "--model", tiny_bundle)
    assert code == 2 and "memory limit" in err


@pytest.mark.parametrize(("task", "model"), [("detection", "YOLOX-nano"), ("faces.yaml", "YuNet")])
def test_a_missing_task_model_says_where_it_comes_from(tmp_path, image_file, tiny_bundle, capsys, monkeypatch,
                                                       task, model):
    monkeypatch.setenv("VERSACODEC_MODELS", str(tmp_path))
    if task.endswith(".yaml"):
        task = tmp_path / task
        task.write_text("name: faces\nfinders:\n  - type: faces\n")
    code, _, err = run(capsys, "compress", image_file, "-o", tmp_path / "t.vcx", "--task", task,
                       "--model", tiny_bundle)
    assert code == 2 and err.count("\n") == 1
    assert model in err and "set VERSACODEC_MODELS to the folder" in err
