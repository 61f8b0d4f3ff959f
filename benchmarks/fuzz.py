"""The fuzz campaign: thousands of damaged streams through the parser and the decode entry points.

    nice -n 19 .venv/bin/python benchmarks/fuzz.py --cases 10000 --out runs/fuzz.json

Mutations come from versacodec.container.mutate (the shapes tests/test_fuzz.py draws with
hypothesis): byte edits on the whole file, edits re-sealed with fresh CRCs inside the header or a
section payload, replaced header fields and re-tagged, dropped or duplicated sections. The valid
streams they start from are made by the tiny random bundles of the test suite (a direct one and a
generative one). Each case runs in a worker process under a per-case time limit through
`Stream.from_bytes`, `Codec.decode` and, every --cli-every'th case, `versacodec decompress`.

Outcomes: rejected (a VersacodecError: the expected failure), decoded (damage no check can see,
e.g. in entropy-coded data: a well-formed image), unexpected (any other exception: a bug) and hang
(past --timeout; the worker is restarted). The report (JSON, printed and written to --out) has the
counts per entry point and per mutation target, the most common rejection messages, the time and
the worker's peak memory.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import os
import random
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MAX_PIXELS = 1 << 16  # the campaign's limits: damaged headers may claim any size up to these
MEMORY_LIMIT_SIDE = 160  # the memory limit is the estimate for a 160x160 image, below the pixel limit


def _classify(function) -> tuple[str, str]:
    from versacodec.errors import VersacodecError

    try:
        function()
    except VersacodecError as exc:
        return "rejected", str(exc)
    except Exception as exc:  # the campaign counts these: each one is a bug
        return "unexpected", f"{type(exc).__name__}: {exc}"
    return "accepted", ""


def _cli(arguments: list[str]) -> tuple[str, str]:
    from versacodec.interfaces.cli import main

    errors = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(errors):
            code = main(arguments)
    except BaseException as exc:  # the CLI must turn every failure into an exit status
        return "unexpected", f"{type(exc).__name__}: {exc}"
    if code == 0:
        return "accepted", ""
    if code == 2 and errors.getvalue().startswith("versacodec: error:") and errors.getvalue().count("\n") == 1:
        return "rejected", errors.getvalue().strip()
    return "unexpected", f"exit {code}: {errors.getvalue().strip()}"


def _worker(connection, bundles: dict[str, str], environment: dict[str, str]) -> None:
    os.environ.update(environment)  # the CLI reads the limits from the environment
    import torch

    from versacodec.codec import Codec
    from versacodec.container.format import Stream
    from versacodec.limits import peak_memory

    torch.set_num_threads(1)
    codecs = {name: Codec.from_pretrained(path) for name, path in bundles.items()}
    folder = Path(tempfile.mkdtemp(prefix="vcx-fuzz-"))
    connection.send("ready")
    while (job := connection.recv()) is not None:
        name, data, with_cli = job
        result = {"parser": _classify(lambda d=data: Stream.from_bytes(d)),
                  "decode": _classify(lambda n=name, d=data: codecs[n].decode(d))}
        if with_cli:
            (folder / "in.vcx").write_bytes(data)
            result["cli"] = _cli(["decompress", str(folder / "in.vcx"), "-o", str(folder / "out.png"),
                                  "--model", bundles[name], "--overwrite"])
        result["peak_rss"] = peak_memory()
        connection.send(result)


class Worker:
    """A worker process that can be killed and replaced when a case hangs."""

    def __init__(self, bundles: dict[str, str], environment: dict[str, str]) -> None:
        self.args = (bundles, environment)
        self.start()

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_worker, args=(child, *self.args), daemon=True)
        self.process.start()
        if not self.connection.poll(300) or self.connection.recv() != "ready":
            raise RuntimeError("fuzz worker did not start")

    def run(self, job: tuple, timeout: float) -> dict | None:
        self.connection.send(job)
        if self.connection.poll(timeout):
            return self.connection.recv()
        self.process.kill()
        self.process.join()
        self.start()
        return None

    def close(self) -> None:
        self.connection.send(None)
        self.process.join(30)


def _base_streams(bundles: dict[str, str]) -> list[tuple[str, bytes]]:
    from conftest import natural_image
    from versacodec.codec import Codec

    direct, generative = Codec.from_pretrained(bundles["direct"]), Codec.from_pretrained(bundles["generative"])
    return [
        ("direct", direct.encode(natural_image(64, 48), quality=60).data),
        ("direct", direct.encode(natural_image(40, 72, seed=1).convert("L"), quality=10).data),
        ("direct", direct.encode(natural_image(130, 66, seed=2), quality=95).data),
        ("generative", generative.encode(natural_image(48, 40, seed=3), quality=50, tags=[3, 999]).data),
        ("generative", generative.encode(natural_image(72, 64, seed=4), quality=20, tags=[]).data),
    ]


def campaign(cases: int, seed: int, timeout: float, cli_every: int, folder: Path) -> dict:
    from conftest import build_tiny_bundle
    from versacodec.codec import CodecModel
    from versacodec.container.mutate import mutate, random_mutation

    bundles = {"direct": str(build_tiny_bundle(folder / "direct", model_id="fuzz-direct")),
               "generative": str(build_tiny_bundle(folder / "generative", model_id="fuzz-generative",
                                                   generative=True))}
    memory_limit = CodecModel.from_pretrained(bundles["direct"]).working_memory(MEMORY_LIMIT_SIDE, MEMORY_LIMIT_SIDE)
    environment = {"VERSACODEC_MAX_PIXELS": str(MAX_PIXELS), "VERSACODEC_MAX_MEMORY": str(memory_limit)}
    bases = _base_streams(bundles)
    rng = random.Random(seed)
    counts = {entry: Counter() for entry in ("parser", "decode", "cli")}
    by_target: dict[str, Counter] = {}
    messages: Counter = Counter()
    problems: list[dict] = []
    hangs, peak_rss = 0, 0
    worker = Worker(bundles, environment)
    started = time.perf_counter()
    for index in range(cases):
        name, base = rng.choice(bases)
        mutation = random_mutation(rng)
        data = mutate(base, mutation, donor=rng.choice(bases)[1])
        result = worker.run((name, data, cli_every > 0 and index % cli_every == 0), timeout)
        target = by_target.setdefault(mutation.target, Counter())
        if result is None:
            hangs += 1
            target["hang"] += 1
            problems.append({"case": index, "outcome": "hang", "mutation": repr(mutation), "stream": data.hex()})
            continue
        peak_rss = max(peak_rss, result.pop("peak_rss"))
        for entry, (outcome, message) in result.items():
            counts[entry][outcome] += 1
            if outcome == "rejected":
                messages[f"{entry}: " + re.sub(r"\d+", "N", message.removeprefix("versacodec: error: "))[:80]] += 1
            elif outcome == "unexpected":
                problems.append({"case": index, "entry": entry, "message": message, "mutation": repr(mutation),
                                 "stream": data.hex()})
        target["unexpected" if any(o == "unexpected" for o, _ in result.values()) else result["decode"][0]] += 1
    seconds = time.perf_counter() - started
    worker.close()
    unexpected = sum(c["unexpected"] for c in counts.values())
    return {
        "cases": cases, "seed": seed, "timeout_s": timeout,
        "limits": {"max_pixels": MAX_PIXELS, "max_memory_bytes": memory_limit},
        "parser": dict(counts["parser"]), "decode": dict(counts["decode"]), "cli": dict(counts["cli"]),
        "by_target": {name: dict(counter) for name, counter in sorted(by_target.items())},
        "unexpected_exceptions": unexpected, "hangs": hangs,
        "seconds": round(seconds, 1), "cases_per_second": round(cases / seconds, 1),
        "worker_peak_rss_mib": round(peak_rss / 2**20, 1),
        "top_rejections": dict(messages.most_common(40)),
        "problems": problems[:20],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per case before it counts as a hang")
    parser.add_argument("--cli-every", type=int, default=50, help="also run the CLI on every Nth case (0: never)")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "fuzz.json")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "tests"))  # the test suite's tiny bundles and images
    with tempfile.TemporaryDirectory(prefix="vcx-fuzz-bundles-") as folder:
        report = campaign(args.cases, args.seed, args.timeout, args.cli_every, Path(folder))
    text = json.dumps(report, indent=2)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    return 1 if report["unexpected_exceptions"] or report["hangs"] else 0


if __name__ == "__main__":
    sys.exit(main())
