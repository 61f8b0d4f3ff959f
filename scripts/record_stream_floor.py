"""Record the smallest stream a bundle's model can write per image size in its bundle.json.

`versacodec compress --bpp` refuses a budget below that bound from the image's header, before
torch and the model load, when the bundle records it (`versacodec bundle` does for new bundles).
This script records it for bundles written before (or re-records a stale one); the bound comes
from the latent codec's integer tables, and the weights and their hash are untouched.

    python scripts/record_stream_floor.py src/versacodec/weights/default tests/data/fixture_bundle
"""

from __future__ import annotations

import argparse
from pathlib import Path

from versacodec.codec.model import record_stream_floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundles", nargs="+", type=Path, help="model bundle folders")
    for root in parser.parse_args().bundles:
        floor = record_stream_floor(root)
        print(f"{root}: {floor}")


if __name__ == "__main__":
    main()
