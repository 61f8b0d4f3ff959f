"""Issue #37 §3 and §5: the command line's conventions, as a new user meets them."""

import json
from pathlib import Path

import pytest

from conftest import natural_image
from versacodec.interfaces.cli import EXAMPLES, build_parser, main

DATA_STREAMS = Path(__file__).parent / "data" / "streams-2.0"


def run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_every_command_has_examples_in_its_help(capsys):
    commands = build_parser()._subparsers._group_actions[0].choices
    for name, command in commands.items():
        text = command.format_help()
        assert "examples:" in text and f"versacodec {name}" in text.split("examples:", 1)[1], name
    assert set(commands) - set(EXAMPLES) == {"eval"}  # eval's description has its own


def test_the_decompress_pattern_example_names_an_image():
    help_text = build_parser()._subparsers._group_actions[0].choices["decompress"].format_help()
    assert "-small.png" in help_text and "-small.vcx" not in help_text


def test_several_inputs_into_a_folder_that_does_not_exist_create_it(tmp_path, tiny_bundle, capsys):
    """The README's own example failed when streams/ did not exist."""
    for name in ("a.png", "b.jpg"):
        natural_image(48, 40).save(tmp_path / name)
    out = tmp_path / "new" / "streams"
    code, _, err = run(capsys, "compress", tmp_path / "a.png", tmp_path / "b.jpg", "-o", f"{out}/", "--quality", "20",
                       "--model", tiny_bundle)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["a.vcx", "b.vcx"]
    code, _, err = run(capsys, "decompress", out / "a.vcx", "-o", tmp_path / "decoded" / "{stem}.png",
                       "--model", tiny_bundle, "--decoder", "direct")
    assert code == 0, err and (tmp_path / "decoded" / "a.png").is_file()


@pytest.mark.parametrize("name", ["out.png", "out.JPG", "out.webp"])
def test_a_stream_is_not_written_under_an_image_name(tmp_path, tiny_bundle, capsys, name):
    natural_image(48, 40).save(tmp_path / "a.png")
    code, _, err = run(capsys, "compress", tmp_path / "a.png", "-o", tmp_path / name, "--quality", "20",
                       "--model", tiny_bundle)
    assert code == 2 and "but compress writes a .vcx stream" in err and not (tmp_path / name).exists()


@pytest.mark.parametrize(("value", "message"), [
    ("-inf", "target bpp must be a positive number up to 64, not -inf (--bpp)"),
    ("-1", "target bpp must be a positive number up to 64, not -1"),
])
def test_a_negative_bpp_is_reported_as_a_value(tmp_path, capsys, value, message):
    natural_image(48, 40).save(tmp_path / "a.png")
    code, _, err = run(capsys, "compress", tmp_path / "a.png", "-o", tmp_path / "a.vcx", "--bpp", value)
    assert code == 2 and message in err and "expected one argument" not in err


@pytest.mark.parametrize("quality", ["-1", "101"])
def test_both_ends_of_the_quality_range_read_alike(tmp_path, capsys, quality):
    natural_image(48, 40).save(tmp_path / "a.png")
    code, _, err = run(capsys, "compress", tmp_path / "a.png", "-o", tmp_path / "a.vcx", "--quality", quality)
    assert code == 2 and err.startswith("versacodec: error: quality must be an integer from 0 to the model's highest")


def test_extracting_palette_layers_only_says_no_task_regions_were_kept(tmp_path, capsys):
    """A stream made with --task and --layers 3: its first 2 layers are palette layers, which carry
    none of the task's regions; the message said 'kept for task'."""
    from PIL import Image

    from versacodec.codec import Codec

    codec = Codec.from_pretrained(DATA_STREAMS.parent / "fixture_bundle")
    data = codec.encode(Image.open(DATA_STREAMS / "colour.png"), quality=40, tags=[3], task="boxes",
                          boxes=str(DATA_STREAMS / "boxes.json"), layers=3).data
    (tmp_path / "both.vcx").write_bytes(data)
    code, _, err = run(capsys, "extract", tmp_path / "both.vcx", "--task", "boxes", "--layers", "2",
                       "-o", tmp_path / "s.vcx")
    assert code == 0 and "palette layers that carry none of task 'boxes''s regions" in err
    code, out, _ = run(capsys, "extract", tmp_path / "both.vcx", "--task", "boxes", "--layers", "3",
                       "-o", tmp_path / "t.vcx", "--json")
    assert code == 0 and json.loads(out)["task"] == "boxes"
    code, _, err = run(capsys, "extract", tmp_path / "both.vcx", "--task", "boxes", "-o", tmp_path / "u.vcx")
    assert code == 0 and "kept: task 'boxes''s regions (" in err


def test_pillows_bomb_warning_becomes_a_note_that_quiet_silences(tmp_path, tiny_bundle, capsys, monkeypatch):
    """Inputs of 89-179 MP printed Pillow's DecompressionBombWarning with a site-packages path, even
    with -q. Pillow's sizes are lowered here so that a small image stands in for one of 100 MP."""
    import warnings

    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # warns above 1000 pixels, refuses above 2000
    natural_image(40, 30).save(tmp_path / "a.png")  # 1200 pixels: the warning band
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, _, err = run(capsys, "compress", tmp_path / "a.png", "-o", tmp_path / "a.vcx", "--quality", "20",
                           "--model", tiny_bundle, "-q")
        assert code == 0 and err == ""
        code, _, err = run(capsys, "compress", tmp_path / "a.png", "-o", tmp_path / "b.vcx", "--quality", "20",
                           "--model", tiny_bundle)
    assert code == 0 and "note: " in err and "above Pillow's decompression-bomb warning size" in err
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_eval_into_a_folder_that_cannot_be_written_is_one_line_before_any_work(tmp_path, capsys):
    """Issue #37: a traceback (exit 1) when the results were written, after the whole run."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _, err = run(capsys, "eval", "--dataset", "kodak", "--codecs", "jpeg", "--bpp", "0.5", "--limit", "1",
                       "--out", blocker / "ev")
    assert code == 2 and err.startswith("versacodec: error: cannot write to the output folder")
    assert err.count("\n") == 1


def test_long_decodes_show_a_progress_bar_on_stderr_that_quiet_silences(tmp_path, generative_bundle, capsys,
                                                                        monkeypatch):
    """decompress --steps 20 (35 s) and --steps 1000 (164 s) printed nothing while they ran. The bar
    appears after PROGRESS_DELAY_S, set to 0 here so that a short decode shows it."""
    import versacodec.interfaces.cli as cli

    monkeypatch.setattr(cli, "PROGRESS_DELAY_S", 0.0)
    natural_image(48, 40).save(tmp_path / "a.png")
    code, _, err = run(capsys, "compress", tmp_path / "a.png", "-o", tmp_path / "a.vcx", "--quality", "30",
                       "--model", generative_bundle)
    # A 25 MP encode was silent for about 40 s after its latent-space tiles, while the codec coded.
    assert code == 0 and "latent coding:" in err, err
    code, out, err = run(capsys, "decompress", tmp_path / "a.vcx", "-o", tmp_path / "a.png.png", "--steps", "3",
                         "--model", generative_bundle)
    assert code == 0 and out == "" and "denoise:" in err and "/3 [" in err
    code, _, err = run(capsys, "decompress", tmp_path / "a.vcx", "-o", tmp_path / "b.png", "--steps", "3",
                       "--model", generative_bundle, "-q")
    assert code == 0 and err == ""
