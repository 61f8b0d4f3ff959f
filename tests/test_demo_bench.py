from versacodec.evaluation.bench import run_bench
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
    results = run_bench(str(generative_bundle), repeats=1, threads=1, memory_side=128)
    assert results["decode_direct_s"] > 0 and results["decode_generative_20_steps_s"] > 0
    assert results["large_decode"]["generative"]["peak_rss_mb"] > 0
    assert results["rate_control"]["real_codings"] >= 1 and results["target_bpp_over_fixed_quality"] > 0
    startup = results["startup"]
    # Both measured, each in a process of its own; not compared: which is longer depends on the
    # machine's load (a timing, not a property of the code).
    assert startup["cli_compress_s"] > 0 and startup["import_torch_s"] > 0
