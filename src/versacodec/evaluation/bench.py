"""`versacodec bench`: speed and memory of the codec on this machine (benchmarks, not tests).

One or more models, one after another, on the same Kodak-size image (768×512): encoding at a fixed
quality and at a target bpp (with how many real codings and size estimates rate control took,
against the fixed-quality encode of the quality it chose), and decoding directly, generatively
(0, 1, 4 and 20 steps where the model has a diffusion prior; its one pass where it has none) and
with the model's default decoder and settings, on a fixed number of torch threads. Start-up: a
`versacodec compress` of the same image at that quality, in a fresh process, against
`python -c "import torch"` plus the in-process encode. Peak memory of encoding a 2048×2048 image and
of decoding it (directly and with the default decoder), each in a fresh subprocess (its VmHWM).
The printout is one table, a column per model, with issue #35's targets marked met or not.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from versacodec.paths import data_dir

GENERATIVE_STEPS = (0, 1, 4, 20)
TARGET_BPP = 0.05
LARGE_IMAGE_QUALITY = 30

# Issue #35's targets, each process on its own: a 768×512 encode (fixed quality and target bpp alike)
# within ENCODE_TARGET_S, its decode with the model's default decoder and settings within
# DEFAULT_DECODE_TARGET_S (both times meant on two quiet threads, bench's default), and a 2048×2048
# image encoded and decoded within 4 GB of peak RSS.
ENCODE_TARGET_S = 1.0
DEFAULT_DECODE_TARGET_S = 1.5
MEMORY_TARGET_MIB = 4096
MEMORY_TARGET_SIDE = 2048

MET, NOT_MET, MISSING = "✓", "✗", "–"


def _kodak_size_image(folder: Path) -> tuple[Path, str]:
    """The benchmark image's file (a Kodak image, else a synthetic one written into `folder`)."""
    root = data_dir()
    if root is not None and (root / "kodak" / "kodim01.png").is_file():
        return root / "kodak" / "kodim01.png", "kodak/kodim01.png"
    rng = np.random.default_rng(0)
    smooth = np.cumsum(np.cumsum(rng.normal(size=(512, 768, 3)), 0), 1)
    smooth = (smooth - smooth.min()) / np.ptp(smooth) * 255
    Image.fromarray(smooth.astype(np.uint8)).save(folder / "synthetic.png")
    return folder / "synthetic.png", "synthetic 768x512"


def _seconds(function: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


# Fresh-process probes: each prints its peak memory in bytes before and after the work, and the
# work's seconds. `limits.peak_memory` is the process's own peak since exec (see there why not
# ru_maxrss: every probe would read this benchmark's peak).
_ENCODE_PROBE = """
import sys, time
from versacodec.codec import Codec
from versacodec.limits import peak_memory
codec = Codec.from_pretrained(sys.argv[1] or None)
before = peak_memory()
started = time.perf_counter()
data = codec.encode(sys.argv[2], quality=int(sys.argv[4])).data
seconds = time.perf_counter() - started
open(sys.argv[3], 'wb').write(data)
print(before, peak_memory(), seconds)
"""

_DECODE_PROBE = """
import sys, time
from versacodec.codec import Codec
from versacodec.limits import peak_memory
codec = Codec.from_pretrained(sys.argv[1] or None)
data = open(sys.argv[2], 'rb').read()
before = peak_memory()
started = time.perf_counter()
codec.decode(data, decoder=sys.argv[3])
print(before, peak_memory(), time.perf_counter() - started)
"""


def run_bench(models: Sequence[str | None], repeats: int, threads: int, memory_side: int) -> dict:
    """Every model's measurements (None: the shipped model), one model after another, on the same image."""
    import torch

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as folder:
        path, source = _kodak_size_image(Path(folder))
        results = [_bench_model(model, path, repeats, threads, memory_side) for model in models]
    return {"image": source, "threads": threads, "repeats": repeats,
            "machine": platform.processor() or platform.machine(),
            "targets": {"encode_s": ENCODE_TARGET_S, "default_decode_s": DEFAULT_DECODE_TARGET_S,
                        "peak_rss_mib": MEMORY_TARGET_MIB, "peak_rss_side": MEMORY_TARGET_SIDE},
            "results": results}


def _bench_model(model: str | None, image: Path, repeats: int, threads: int, memory_side: int) -> dict:
    from versacodec.codec import Codec

    codec = Codec.from_pretrained(model)
    defaults = codec.model.defaults
    loaded = codec.model.load_image(image)
    encoded = codec.encode(loaded, bpp=TARGET_BPP)
    results: dict = {"model": codec.model.model_id, "bundle": model, "bpp": encoded.bits_per_pixel,
                     "quality": encoded.quality, "rate_control": {"real_codings": encoded.rate_search.trials,
                                                                  "estimates": encoded.rate_search.estimates}}
    results["encode_quality_s"] = _seconds(lambda: codec.encode(loaded, quality=encoded.quality), repeats)
    results["encode_target_bpp_s"] = _seconds(lambda: codec.encode(loaded, bpp=TARGET_BPP), repeats)
    results["target_bpp_over_fixed_quality"] = results["encode_target_bpp_s"] / results["encode_quality_s"]
    results["startup"] = _startup(model, image, encoded.quality, threads, repeats, results["encode_quality_s"])
    results["decodes"] = _decode_times(codec, encoded.data, repeats)
    # The default decode (no options, as a user's) is one of the decodes measured: the same
    # decoder, and for a prior the default steps, with the default cfg that every decode above gets.
    default_decoder = defaults.decoders[0]
    results["default_decode"] = _find_decode(results["decodes"], default_decoder,
                                             defaults.steps if default_decoder == "generative" else None)
    results["large_image"] = _large_image_memory(model, memory_side, default_decoder, threads)
    results["meets_targets"] = _meets_targets(results)
    return results


def _decode_times(codec, data: bytes, repeats: int) -> list[dict]:
    """Median seconds of each decode the model offers: direct, and generative with a prior's
    GENERATIVE_STEPS (and its default steps) or in one pass (`steps` None)."""
    defaults = codec.model.defaults
    settings: list[tuple[str, int | None]] = [("direct", None)]
    if defaults.has_prior:
        settings += [("generative", steps) for steps in sorted({*GENERATIVE_STEPS, defaults.steps})]
    elif defaults.has_generative:
        settings.append(("generative", None))
    return [{"decoder": decoder, "steps": steps,
             "seconds": _seconds(lambda d=decoder, s=steps: codec.decode(data, decoder=d, steps=s),
                                 1 if steps is not None and steps > 4 else repeats)}  # long ones once
            for decoder, steps in settings]


def _find_decode(decodes: list[dict], decoder: str, steps: int | None) -> dict | None:
    return next((entry for entry in decodes if (entry["decoder"], entry["steps"]) == (decoder, steps)), None)


def _startup(model: str | None, image: Path, quality: int, threads: int, repeats: int, encode_s: float) -> dict:
    """A command-line compress in a fresh process against importing torch plus the encode itself:
    what a process spends beyond the work is loading what the command needs."""
    environment = os.environ | {"OMP_NUM_THREADS": str(threads)}

    def run(*arguments: str) -> None:
        subprocess.run([sys.executable, *arguments], check=True, capture_output=True, env=environment)

    with tempfile.TemporaryDirectory() as folder:
        command = ["-m", "versacodec", "compress", str(image), "-o", str(Path(folder) / "x.vcx"), "--overwrite",
                   "--quality", str(quality), *(["--model", model] if model else [])]
        import_torch = _seconds(lambda: run("-c", "import torch"), repeats)
        cli = _seconds(lambda: run(*command), repeats)
    return {"import_torch_s": import_torch, "cli_compress_s": cli, "encode_in_process_s": encode_s,
            "cli_over_torch_and_encode": cli / (import_torch + encode_s)}


def _large_image_memory(model: str | None, side: int, default_decoder: str, threads: int) -> dict:
    """Peak RSS and seconds of encoding a side×side image, then of decoding its stream directly
    and with the default decoder, each in a fresh process."""
    rng = np.random.default_rng(1)
    base = rng.integers(0, 255, (side // 64, side // 64, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize((side, side), Image.Resampling.BICUBIC)
    with tempfile.TemporaryDirectory() as folder:
        image_path, stream_path = Path(folder) / "large.png", Path(folder) / "large.vcx"
        image.save(image_path)
        report = {"side": side, "encode": _probe(_ENCODE_PROBE, threads, model or "", image_path, stream_path,
                                                  LARGE_IMAGE_QUALITY)}
        report["bytes"] = stream_path.stat().st_size
        report["decode"] = {decoder: _probe(_DECODE_PROBE, threads, model or "", stream_path, decoder)
                            for decoder in dict.fromkeys(("direct", default_decoder))}
    return report


def _probe(script: str, threads: int, *arguments: object) -> dict:
    result = subprocess.run([sys.executable, "-c", script, *map(str, arguments)], capture_output=True, text=True,
                            check=True, env=os.environ | {"OMP_NUM_THREADS": str(threads)})
    before, after, seconds = result.stdout.split()
    return {"peak_rss_mib": int(after) / 2**20, "rss_before_mib": int(before) / 2**20,
            "seconds": float(seconds)}


def _meets_targets(results: dict) -> dict[str, bool | None]:
    """Issue #35's targets for this model; memory None where the large image was not 2048×2048."""
    large = results["large_image"]
    peaks = [large["encode"]["peak_rss_mib"], *(entry["peak_rss_mib"] for entry in large["decode"].values())]
    return {"encode": max(results["encode_quality_s"], results["encode_target_bpp_s"]) <= ENCODE_TARGET_S,
            "default_decode": results["default_decode"]["seconds"] <= DEFAULT_DECODE_TARGET_S,
            "memory": max(peaks) <= MEMORY_TARGET_MIB if large["side"] == MEMORY_TARGET_SIDE else None}


def _decoder_name(entry: dict) -> str:
    if entry["steps"] is not None:
        return f"{entry['decoder']}, {entry['steps']} step{'' if entry['steps'] == 1 else 's'}"
    return "generative, one pass" if entry["decoder"] == "generative" else entry["decoder"]


def _timed(seconds: float, target: float) -> str:
    return f"{seconds:.2f} s {MET if seconds <= target else NOT_MET}"


def _memory(entry: dict, side: int) -> str:
    mark = "" if side != MEMORY_TARGET_SIDE else f" {MET if entry['peak_rss_mib'] <= MEMORY_TARGET_MIB else NOT_MET}"
    return f"{entry['peak_rss_mib']:.0f} MiB{mark}, {entry['seconds']:.1f} s"


def _rows(bench: dict) -> list[tuple[str, Callable[[dict], str | None]]]:
    """The table's rows: a label and each model's cell (None: the model has no such measurement)."""
    side = bench["results"][0]["large_image"]["side"]
    memory_target = f" (≤ {MEMORY_TARGET_MIB} MiB)" if side == MEMORY_TARGET_SIDE else ""
    # Every decode any of the models offers, direct first, then one pass, then by steps.
    decodes = sorted({(entry["decoder"], entry["steps"]) for result in bench["results"] for entry in result["decodes"]},
                     key=lambda decode: (decode[0] != "direct", decode[1] is not None, decode[1] or 0))

    def decode_cell(decoder: str, steps: int | None) -> Callable[[dict], str | None]:
        def cell(result: dict) -> str | None:
            entry = _find_decode(result["decodes"], decoder, steps)
            return None if entry is None else f"{entry['seconds']:.2f} s"
        return cell

    def rate_control(result: dict) -> str:
        rate = result["rate_control"]
        return (f"{result['target_bpp_over_fixed_quality']:.2f}x ({rate['real_codings']} coding(s), "
                f"{rate['estimates']} estimates)")

    def startup(result: dict) -> str:
        startup = result["startup"]
        return (f"{startup['cli_over_torch_and_encode']:.2f}x ({startup['import_torch_s']:.2f} + "
                f"{startup['encode_in_process_s']:.2f} s)")

    def default_decode_memory(result: dict) -> str:
        return _memory(result["large_image"]["decode"][result["default_decode"]["decoder"]], side)

    return [
        ("bundle", lambda result: result["bundle"] or "(shipped)"),
        (f"bpp at target {TARGET_BPP}", lambda result: f"{result['bpp']:.4f}"),
        ("quality chosen", lambda result: str(result["quality"])),
        (f"encode, that quality (≤ {ENCODE_TARGET_S} s)",
         lambda result: _timed(result["encode_quality_s"], ENCODE_TARGET_S)),
        (f"encode, to {TARGET_BPP} bpp (≤ {ENCODE_TARGET_S} s)",
         lambda result: _timed(result["encode_target_bpp_s"], ENCODE_TARGET_S)),
        ("  target bpp / fixed quality", rate_control),
        *((f"decode, {_decoder_name({'decoder': decoder, 'steps': steps})}", decode_cell(decoder, steps))
          for decoder, steps in decodes),
        ("default decoder", lambda result: _decoder_name(result["default_decode"])),
        (f"default decode (≤ {DEFAULT_DECODE_TARGET_S} s)",
         lambda result: _timed(result["default_decode"]["seconds"], DEFAULT_DECODE_TARGET_S)),
        ("cli compress, fresh process", lambda result: f"{result['startup']['cli_compress_s']:.2f} s"),
        ("  / (import torch + encode)", startup),
        (f"{side}x{side} encode, peak RSS{memory_target}",
         lambda result: _memory(result["large_image"]["encode"], side)),
        (f"{side}x{side} decode, direct, peak RSS{memory_target}",
         lambda result: _memory(result["large_image"]["decode"]["direct"], side)),
        (f"{side}x{side} default decode, peak RSS{memory_target}", default_decode_memory),
    ]


def print_bench(bench: dict) -> None:
    """One table: a row per measurement, a column per model."""
    print(f"versacodec bench on {bench['machine']}, {bench['threads']} torch thread(s), {bench['image']}, "
          f"median of {bench['repeats']} run(s) (decodes of more than 4 steps: 1 run)")
    table = [["", *(result["model"] for result in bench["results"])]]
    for label, cell in _rows(bench):
        table.append([label, *((cell(result) or MISSING) for result in bench["results"])])
    widths = [max(len(row[column]) for row in table) for column in range(len(table[0]))]
    for row in table:
        print("  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True)).rstrip())
    side = bench["results"][0]["large_image"]["side"]
    print(f"{MET} / {NOT_MET}: issue #35's targets met or not ({MEMORY_TARGET_SIDE}x{MEMORY_TARGET_SIDE} peak RSS "
          f"{'marked' if side == MEMORY_TARGET_SIDE else f'not marked at --memory-side {side}'}); "
          f"{MISSING}: the model has no such decoder")


def bench_json(bench: dict) -> str:
    return json.dumps(bench, indent=2)
