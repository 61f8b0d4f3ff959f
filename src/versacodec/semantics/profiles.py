"""Task profiles: which objects a machine task needs, and how to find them.

A profile is a YAML file (DISCOVER's per-task label list, curated here once per task):

    name: vehicles
    description: road users for traffic analytics
    margin: 16                 # pixels added around every region before it is mapped to the latent grid
    finders:
      - type: objects          # YOLOX-nano COCO detector from the model directory
        labels: [car, bus, truck, motorcycle, bicycle]
        min_score: 0.3

Built-in profiles ship in `semantics/profiles/`; users add their own by passing a file path to
`--task`, or by putting `NAME.yaml` files in a folder named by $VERSACODEC_PROFILES.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from versacodec.errors import InputError
from versacodec.registry import Registry

BUILTIN_DIR = Path(__file__).resolve().parent / "profiles"
# The finder types a profile may name, declared by path so that reading a profile imports no
# finder until one is asked for its labels; the classes live in `regions`, which imports this
# module (so nothing here imports `regions`).
FINDERS: Registry[Any] = Registry("region finder", {
    finder_type: f"versacodec.semantics.regions:{class_name}" for finder_type, class_name in (
        ("objects", "ObjectFinder"), ("faces", "FaceFinder"), ("text", "TextFinder"),
        ("salient", "SalientFinder"), ("boxes", "BoxesFinder"))})


@dataclass(frozen=True)
class FinderSpec:
    type: str
    labels: tuple[str, ...] = ()  # empty: every label the finder knows
    min_score: float = 0.3


@dataclass(frozen=True)
class TaskProfile:
    name: str
    finders: tuple[FinderSpec, ...]
    description: str = ""
    margin: int = 16
    source: str = field(default="", compare=False)

    @property
    def digest(self) -> str:
        """Identifies what the profile selects (name, finders, margin), not how it is described."""
        return hashlib.sha256(repr((self.name, self.finders, self.margin)).encode()).hexdigest()[:12]


def profile_dirs() -> list[Path]:
    configured = os.environ.get("VERSACODEC_PROFILES")
    dirs = [Path(p) for p in configured.split(os.pathsep) if p] if configured else []
    return [*dirs, BUILTIN_DIR]


def available_profiles() -> dict[str, Path]:
    """Profile name → file; user folders shadow the built-in ones."""
    found: dict[str, Path] = {}
    for directory in reversed(profile_dirs()):
        if directory.is_dir():
            found.update({path.stem: path for path in sorted(directory.glob("*.yaml"))})
    return dict(sorted(found.items()))


def load_profile(name_or_path: str) -> TaskProfile:
    """A built-in or user profile by name, or a profile file by path."""
    path = Path(name_or_path)
    if not (name_or_path.endswith((".yaml", ".yml")) and path.is_file()):
        profiles = available_profiles()
        if name_or_path not in profiles:
            raise InputError(f"unknown task {name_or_path!r}; known tasks: {', '.join(profiles)} "
                             "(or pass a profile .yaml file)")
        path = profiles[name_or_path]
    return parse_profile(path)


def parse_profile(path: Path) -> TaskProfile:
    try:
        values = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read task profile {path}: {exc}") from exc
    where = f"task profile {path}"
    if not isinstance(values, dict):
        raise InputError(f"{where}: expected a mapping with name and finders")
    unknown = set(values) - {"name", "description", "margin", "finders"}
    if unknown:
        raise InputError(f"{where}: unknown keys {sorted(unknown)}")
    name, finders = values.get("name"), values.get("finders")
    if not isinstance(name, str) or not name.isidentifier():
        raise InputError(f"{where}: 'name' must be a simple identifier")
    if not isinstance(finders, list) or not finders:
        raise InputError(f"{where}: 'finders' must be a non-empty list")
    margin = values.get("margin", 16)
    if not isinstance(margin, int) or not 0 <= margin <= 256:
        raise InputError(f"{where}: 'margin' must be an integer number of pixels from 0 to 256")
    specs = []
    for index, entry in enumerate(finders):
        if not isinstance(entry, dict) or entry.get("type") not in FINDERS:
            raise InputError(f"{where}: finder {index + 1} needs a type among {', '.join(sorted(FINDERS))}")
        extra = set(entry) - {"type", "labels", "min_score"}
        if extra:
            raise InputError(f"{where}: finder {index + 1} has unknown keys {sorted(extra)}")
        labels = entry.get("labels", [])
        if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            raise InputError(f"{where}: finder {index + 1} 'labels' must be a list of names")
        vocabulary = FINDERS[entry["type"]].vocabulary()
        if vocabulary is not None:
            wrong = [label for label in labels if label not in vocabulary]
            if wrong:
                raise InputError(f"{where}: finder {index + 1} ({entry['type']}) does not know labels {wrong}")
        score = entry.get("min_score", 0.3)
        if not isinstance(score, int | float) or not 0 <= score <= 1:
            raise InputError(f"{where}: finder {index + 1} 'min_score' must be between 0 and 1")
        specs.append(FinderSpec(entry["type"], tuple(labels), float(score)))
    return TaskProfile(name, tuple(specs), str(values.get("description", "")), margin, str(path))
