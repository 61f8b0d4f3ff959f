"""Record the smallest stream a bundle's model can write, and the memory it needs, per image size
in its bundle.json.

`versacodec compress` refuses a budget below the one, or an image above the memory limit by the
other, from the image's header, before torch and the model load, when the bundle records them
(`versacodec bundle` does for new bundles). This script records them for bundles written before
(or re-records stale ones); the weights and their hash are untouched.

    python scripts/record_size_bounds.py src/versacodec/weights/default tests/data/fixture_bundle
"""

from __future__ import annotations

import argparse
from pathlib import Path

from versacodec.codec.model import record_size_bounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundles", nargs="+", type=Path, help="model bundle folders")
    for root in parser.parse_args().bundles:
        floor, estimate = record_size_bounds(root)
        print(f"{root}: {floor}, {estimate}")


if __name__ == "__main__":
    main()
