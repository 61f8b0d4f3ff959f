"""`versacodec bench`: speed and memory of the codec on this machine (benchmarks, not tests).

Times, per Kodak-size image (768×512), encoding at a fixed quality and at a target bpp (with how
many real codings and size estimates rate control took, against the fixed-quality encode of the
quality it chose), and decoding directly and generatively with 0, 1, 4 and 20 steps, on a fixed
number of torch threads. Start-up: a `versacodec compress` of the same image at that quality, in a
fresh process, against `python -c "import torch"` plus the in-process encode. Peak memory of
decoding a 2048×2048 image is measured in a fresh subprocess (ru_maxrss).
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
from pathlib import Path

import numpy as np
from PIL import Image

from versacodec.paths import data_dir

GENERATIVE_STEPS = (0, 1, 4, 20)
TARGET_BPP = 0.05


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


def _seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


_MEMORY_PROBE = """
import resource, sys, time
import numpy as np
from PIL import Image
from versacodec.codec import Codec
codec = Codec.from_pretrained(sys.argv[1] or None)
data = open(sys.argv[2], 'rb').read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
codec.decode(data, decoder=sys.argv[3])
print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter() - started)
"""


def run_bench(model: str | None, repeats: int, threads: int, memory_side: int) -> dict:
    import torch

    from versacodec.codec import Codec

    torch.set_num_threads(threads)
    codec = Codec.from_pretrained(model)
    with tempfile.TemporaryDirectory() as folder:
        path, source = _kodak_size_image(Path(folder))
        loaded = codec.model.load_image(path)
        encoded = codec.encode(loaded, bpp=TARGET_BPP)
        results: dict = {"model": codec.model.model_id, "image": source, "threads": threads, "repeats": repeats,
                         "machine": platform.processor() or platform.machine(), "bpp": encoded.bits_per_pixel,
                         "quality": encoded.quality, "rate_control": {"real_codings": encoded.rate_search.trials,
                                                                      "estimates": encoded.rate_search.estimates}}
        results["encode_quality_s"] = _seconds(lambda: codec.encode(loaded, quality=encoded.quality), repeats)
        results["encode_target_bpp_s"] = _seconds(lambda: codec.encode(loaded, bpp=TARGET_BPP), repeats)
        results["target_bpp_over_fixed_quality"] = results["encode_target_bpp_s"] / results["encode_quality_s"]
        results["startup"] = _startup(model, path, encoded.quality, threads, repeats, results["encode_quality_s"])
    results["decode_direct_s"] = _seconds(lambda: codec.decode(encoded.data, decoder="direct"), repeats)
    if codec.model.defaults.has_generative and not codec.model.defaults.has_prior:
        results["decode_generative_s"] = _seconds(lambda: codec.decode(encoded.data, decoder="generative"), repeats)
    elif codec.model.defaults.has_generative:
        for steps in GENERATIVE_STEPS:
            results[f"decode_generative_{steps}_steps_s"] = _seconds(
                lambda s=steps: codec.decode(encoded.data, decoder="generative", steps=s),
                1 if steps > 4 else repeats)
    results["large_decode"] = _large_decode_memory(codec, model, memory_side)
    return results


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


def _large_decode_memory(codec, model: str | None, side: int) -> dict:
    rng = np.random.default_rng(1)
    base = rng.integers(0, 255, (side // 64, side // 64, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize((side, side), Image.Resampling.BICUBIC)
    data = codec.encode(image, quality=30).data
    report = {"side": side, "bytes": len(data)}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "large.vcx"
        path.write_bytes(data)
        for decoder in ("direct", codec.model.defaults.decoders[0]):
            result = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, model or "", str(path), decoder],
                                    capture_output=True, text=True, check=True)
            before_kb, after_kb, seconds = result.stdout.split()
            report[decoder] = {"peak_rss_mb": int(after_kb) / 1024, "rss_before_decode_mb": int(before_kb) / 1024,
                               "seconds": float(seconds)}
    return report


def print_bench(results: dict) -> None:
    print(f"model {results['model']} on {results['machine']}, {results['threads']} torch threads, "
          f"{results['image']} at {results['bpp']:.4f} bpp, quality {results['quality']} "
          f"(median of {results['repeats']})")
    for key, value in results.items():
        if key.endswith("_s"):
            print(f"  {key[:-2].replace('_', ' '):<32}{value:8.2f} s")
    rate = results["rate_control"]
    print(f"  target bpp / fixed quality        {results['target_bpp_over_fixed_quality']:8.2f}   "
          f"({rate['real_codings']} real coding(s), {rate['estimates']} estimates)")
    startup = results["startup"]
    print(f"  cli compress (fresh process)      {startup['cli_compress_s']:8.2f} s   = "
          f"{startup['cli_over_torch_and_encode']:.2f} x (import torch {startup['import_torch_s']:.2f} s "
          f"+ encode {startup['encode_in_process_s']:.2f} s)")
    large = results["large_decode"]
    for decoder in ("direct", "generative"):
        if decoder in large:
            entry = large[decoder]
            print(f"  decode {large['side']}x{large['side']} {decoder:<12} peak RSS {entry['peak_rss_mb']:7.0f} MB, "
                  f"{entry['seconds']:.1f} s")


def bench_json(results: dict) -> str:
    return json.dumps(results, indent=2)
