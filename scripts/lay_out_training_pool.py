"""Lay out the larger training pool: the shared 780-photo pool plus BSDS500 and Imagenette.

Only these sources are allowed for training (issue "Realistic, artifact-free decoding"):
- BSDS500 (`Sisso16/ssn_pytorch`, `BSR/BSDS500/data/images/train` and `test`, 400 photos; its
  `val` is the BSD100 already in the shared pool and is skipped);
- Imagenette (`thunderInfy/imagenette`, 224 px), every class but the ones with even ImageNet
  indices (0 tench, 482 cassette player, 566 French horn, 574 golf ball), which `imagenet-eval`
  evaluates on. `--imagenette-per-class` caps each kept class (the pool stays mostly photos of
  the original sources, and the pair cache stays small).

The sources are read from git repositories on this machine (the `fetch` tool's snapshots, or any
clone: `--bsds` and `--imagenette` name their git directories); nothing is downloaded. The output
folder (ignored by git) gets `shared/` (a copy of `<data dir>/train`), `bsds500/`, `imagenette/`
and `SOURCES.json` with each source's commit, so the model card can name them.

    .venv/bin/python scripts/lay_out_training_pool.py --bsds /work/.mirror/Sisso16+ssn_pytorch/repo \
        --imagenette /work/.mirror/thunderInfy+imagenette/repo [--out data/training-pool]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from versacodec.training.data import list_images, training_root

BSDS_FOLDERS = ("BSR/BSDS500/data/images/train", "BSR/BSDS500/data/images/test")
# Imagenette's ten classes by WordNet id → ImageNet class index; even indices are evaluation classes.
IMAGENETTE_CLASSES = {"n01440764": 0, "n02102040": 217, "n02979186": 482, "n03000684": 491, "n03028079": 497,
                      "n03394916": 566, "n03417042": 569, "n03425413": 571, "n03445777": 574, "n03888257": 701}


def git(repository: Path, *args: str) -> bytes:
    return subprocess.run(["git", f"--git-dir={repository}", *args], check=True, capture_output=True).stdout


def tree_files(repository: Path, folder: str) -> list[str]:
    names = git(repository, "ls-tree", "-r", "--name-only", "HEAD", folder).decode().splitlines()
    return sorted(name for name in names if name.lower().endswith((".jpg", ".jpeg", ".png")))


def export(repository: Path, names: list[str], target: Path, strip: int) -> int:
    for name in names:
        destination = target / Path(*Path(name).parts[strip:])
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(git(repository, "show", f"HEAD:{name}"))
    return len(names)


def resolve_git_dir(path: Path) -> Path:
    return path / ".git" if (path / ".git").is_dir() else path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bsds", type=Path, required=True, help="git directory of Sisso16/ssn_pytorch")
    parser.add_argument("--imagenette", type=Path, required=True, help="git directory of thunderInfy/imagenette")
    parser.add_argument("--imagenette-per-class", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("data/training-pool"))
    args = parser.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        sys.exit(f"error: {args.out} exists and is not empty; remove it or choose another --out")
    bsds, imagenette = resolve_git_dir(args.bsds), resolve_git_dir(args.imagenette)
    counts, sources = {}, {}

    shared = training_root(None)
    for file in list_images(shared):
        destination = args.out / "shared" / file.relative_to(shared)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, destination)
    counts["shared"] = len(list_images(args.out / "shared"))
    sources["shared"] = {"path": str(shared), "note": "../shared/data/train (see its README)"}

    names = [name for folder in BSDS_FOLDERS for name in tree_files(bsds, folder)]
    counts["bsds500"] = export(bsds, names, args.out / "bsds500", strip=4)
    sources["bsds500"] = {"repository": "Sisso16/ssn_pytorch",
                          "commit": git(bsds, "rev-parse", "HEAD").decode().strip(), "folders": list(BSDS_FOLDERS)}

    kept = sorted(wnid for wnid, index in IMAGENETTE_CLASSES.items() if index % 2 == 1)
    names = []
    for wnid in kept:
        names += tree_files(imagenette, f"train/{wnid}")[: args.imagenette_per_class]
    counts["imagenette"] = export(imagenette, names, args.out / "imagenette", strip=0)
    sources["imagenette"] = {"repository": "thunderInfy/imagenette",
                             "commit": git(imagenette, "rev-parse", "HEAD").decode().strip(),
                             "classes": {wnid: IMAGENETTE_CLASSES[wnid] for wnid in kept},
                             "per_class": args.imagenette_per_class, "split": "train"}
    (args.out / "SOURCES.json").write_text(json.dumps({"counts": counts, "sources": sources}, indent=2) + "\n")
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
