import json

import pytest

from versacodec.evaluation import bench as bench_module
from versacodec.evaluation.bench import MISSING, bench_json, print_bench, run_bench
from versacodec.interfaces.cli import main


def test_demo_writes_real_streams_and_reports_quality(tmp_path, tiny_bundle, capsys, monkeypatch):
    monkeypatch.setenv("VERSACODEC_DATA", str(tmp_path / "no-data"))  # package samples only
    assert main(["demo", "--model", str(tiny_bundle), "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    streams = sorted((tmp_path / "out").glob("*.vcx"))
    assert len(streams) == 6  # 3 samples x 2 rates
    for stream in streams:
        assert stream.with_name(stream.stem + "-direct.png").is_file()
    assert "dB" in out and "landscape.png" in out


def test_bench_measures_every_decoder(generative_bundle, monkeypatch, tmp_path):
    monkeypatch.setenv("VERSACODEC_DATA", str(tmp_path / "no-data"))
    bench = run_bench([str(generative_bundle)], repeats=1, threads=1, memory_side=128)
    [results] = bench["results"]
    decodes = {(entry["decoder"], entry["steps"]): entry["seconds"] for entry in results["decodes"]}
    assert decodes[("direct", None)] > 0 and decodes[("generative", 20)] > 0
    # The default decode is the prior's default step count (1), named and timed like the others.
    assert results["default_decode"] == {"decoder": "generative", "steps": 1, "seconds": decodes[("generative", 1)]}
    large = results["large_image"]
    assert large["encode"]["peak_rss_mib"] > 0 and large["decode"]["generative"]["peak_rss_mib"] > 0
    assert results["rate_control"]["real_codings"] >= 1 and results["target_bpp_over_fixed_quality"] > 0
    startup = results["startup"]
    # Both measured, each in a process of its own; not compared: which is longer depends on the
    # machine's load (a timing, not a property of the code).
    assert startup["cli_compress_s"] > 0 and startup["import_torch_s"] > 0


@pytest.fixture(scope="module")
def two_models(tiny_bundle, v5_bundle, tmp_path_factory) -> dict:
    """One bench of a direct-only model and a v5 one (one-pass generative decoder, no prior)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VERSACODEC_DATA", str(tmp_path_factory.mktemp("no-data")))
        return run_bench([str(tiny_bundle), str(v5_bundle)], repeats=1, threads=1, memory_side=128)


def test_bench_prints_a_column_per_model(two_models, capsys):
    print_bench(two_models)
    lines = capsys.readouterr().out.splitlines()
    header = lines[1].split()
    assert header == ["tiny-test", "v5-test"]
    rows = {line.split("  ")[0]: line for line in lines[2:] if not line.startswith(" ")}  # not the sub-rows
    one_pass = rows["decode, generative, one pass"].split()
    assert one_pass[-3] == MISSING and one_pass[-1] == "s"  # the direct-only model has no generative decoder
    assert rows["default decoder"].split()[-4:] == ["direct", "generative,", "one", "pass"]
    assert rows["default decode (≤ 1.5 s)"].count("s ✓") + rows["default decode (≤ 1.5 s)"].count("s ✗") == 2
    assert "128x128 encode, peak RSS" in rows  # memory of the whole round trip, not decode alone
    assert "not marked at --memory-side 128" in lines[-1]  # issue #35's 4 GB is for 2048x2048


def test_bench_json_lists_each_model_once_with_shared_settings(two_models):
    bench = json.loads(bench_json(two_models))
    assert {"image", "threads", "repeats", "machine", "targets"} <= set(bench)
    assert bench["targets"] == {"encode_s": 1.0, "default_decode_s": 1.5, "peak_rss_mib": 4096, "peak_rss_side": 2048}
    direct_only, v5 = bench["results"]
    assert (direct_only["model"], v5["model"]) == ("tiny-test", "v5-test")
    assert direct_only["default_decode"]["decoder"] == "direct"
    assert v5["default_decode"]["decoder"] == "generative" and v5["default_decode"]["steps"] is None
    assert set(v5["large_image"]["decode"]) == {"direct", "generative"}
    assert v5["large_image"]["encode"]["peak_rss_mib"] > 0
    assert v5["meets_targets"]["memory"] is None  # measured at 128, not the target's 2048


def test_bench_model_option_is_repeatable(two_models, monkeypatch, capsys):
    calls = []

    def fake_run_bench(models, repeats, threads, memory_side):
        calls.append(models)
        return two_models

    monkeypatch.setattr(bench_module, "run_bench", fake_run_bench)
    assert main(["bench", "--model", "a", "--model", "b", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["results"]) == 2
    assert main(["bench"]) == 0
    assert calls == [["a", "b"], [None]]  # no --model: the shipped model
