"""Typed training configuration, read from YAML files in `configs/`.

Every stage shares `ScheduleConfig` (steps, batch, optimiser, logging, checkpointing); each stage
adds its own model and loss dataclasses. Unknown keys are errors, not silently ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from versacodec.errors import InputError, ModelError
from versacodec.modeling import config_from_dict
from versacodec.registry import Registry


@dataclass(frozen=True)
class ScheduleConfig:
    output_dir: str = "runs/stage"
    data_dir: str | None = None  # defaults to <data dir>/train
    steps: int = 10000
    batch_size: int = 16
    crop_size: int = 128
    learning_rate: float = 2e-4
    warmup_steps: int = 200
    final_lr_fraction: float = 0.05  # cosine decay to this fraction of the peak rate
    weight_decay: float = 0.0
    # Learning-rate multipliers for parameters whose name contains a key. Entropy models and gain
    # vectors move a long way from their initial values with tiny gradients: at the base rate
    # Adam would need tens of thousands of steps to shape them (CompressAI trains them with a
    # separate, faster optimiser for the same reason).
    lr_scales: dict[str, float] = field(default_factory=dict)
    grad_clip: float = 1.0
    # A logged loss (the mean over `log_every` steps) that is not finite or exceeds this multiple
    # of the lowest one of this process rolls training back to the last checkpoint at half the
    # learning rate, without writing a checkpoint; 0 turns the guard off. v5's first stage-1 run
    # went from 0.9 to 4.6e4 in 100 steps and its next checkpoint kept only the wreck.
    divergence_factor: float = 3.0
    max_rollbacks: int = 3
    log_every: int = 50
    checkpoint_every: int = 500
    validate_every: int = 1000
    validation_images: int = 16  # held out from the training pool, never Kodak or other eval sets
    seed: int = 0
    mixed_precision: str = "no"  # "bf16"/"fp16" on accelerators through accelerate
    # Wall-clock budget for the training loop, counted from when the trainer starts (after the
    # stage has loaded its data), for lent machines with a fixed time: `steps` becomes an upper
    # bound, and the run's length (and so its learning-rate schedule) is fitted to what is left
    # of the budget, first after a few timed steps, then again as the speed changes. The length
    # is logged and kept in every checkpoint, so a resumed run finishes the same schedule.
    time_budget_s: float | None = None


def load_yaml_config(path: str | Path, stages: Registry[type],
                     overrides: Sequence[str] = ()) -> tuple[str, object]:
    """Read a YAML training config; `stage` names the stage of `stages` whose `config_class` it
    fills. `overrides` are
    `dotted.key=value` strings (value in YAML syntax) applied on top of the file, so one recipe
    can train on another autoencoder or for another time budget without a copy of the file."""
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read config {path}: {exc}") from exc
    if not isinstance(values, dict) or "stage" not in values:
        raise InputError(f"{path}: a training config needs a top-level 'stage' key")
    stage = values.pop("stage")
    if stage not in stages:
        raise InputError(f"{path}: unknown stage {stage!r}; known: {', '.join(sorted(stages))}")
    for override in overrides:
        _apply_override(values, override)
    try:
        return stage, config_from_dict(stages[stage].config_class, values)
    except (ModelError, TypeError) as exc:
        raise InputError(f"{path}: {exc}") from exc


def _apply_override(values: dict, override: str) -> None:
    key, separator, text = override.partition("=")
    names = key.strip().split(".")
    if not separator or not all(names):
        raise InputError(f"override {override!r}: expected KEY=VALUE, e.g. schedule.steps=500", options=("set",))
    if names == ["stage"]:
        raise InputError("an override cannot change the stage: pick another config file", options=("set",))
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"override {override!r}: the value is not valid YAML: {exc}", options=("set",)) from exc
    section = values
    for name in names[:-1]:
        section = section.setdefault(name, {})
        if not isinstance(section, dict):
            raise InputError(f"override {override!r}: {name!r} is a value, not a section", options=("set",))
    section[names[-1]] = value
