"""Which torch build would `pip install torch==VERSION` pick: `cpu` or `cuda`?

    python scripts/torch_build.py REPORT.json      # REPORT: pip install --dry-run --no-deps --report

A CUDA build declares the nvidia-* (and triton) packages it pulls in; the CPU builds (a local
`+cpu` wheel, PyTorch's CPU index, the macOS and Windows wheels on PyPI) declare none. Prints the
build and the file pip chose, for scripts/setup-venv.sh to report what it does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

CUDA_REQUIREMENTS = ("nvidia-", "triton")


def torch_build(report: dict) -> tuple[str, str]:
    """(build, what pip would install) from a pip installation report."""
    [item] = [item for item in report["install"] if item["metadata"]["name"].lower() == "torch"]
    requirements = item["metadata"].get("requires_dist") or []
    cuda = any(requirement.lower().startswith(CUDA_REQUIREMENTS) for requirement in requirements)
    return ("cuda" if cuda else "cpu"), f"torch {item['metadata']['version']} from {item['download_info']['url']}"


def main() -> int:
    build, chosen = torch_build(json.loads(Path(sys.argv[1]).read_text()))
    print(f"{build} {chosen}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
