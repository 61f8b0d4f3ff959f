"""The one training loop every stage runs in.

A stage supplies its trainable modules, a `training_step` and an `export`; the loop owns the
optimiser, learning-rate schedule, accelerate (CPU, one GPU, or many via `accelerate launch`),
resumable checkpoints (modules + optimiser + step), a tqdm bar, CSV + TensorBoard logs, and a
guard that rolls a diverging run back to its last checkpoint at half the learning rate.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

import torch
from accelerate import Accelerator
from accelerate.utils import broadcast
from torch import nn
from tqdm.auto import tqdm

from versacodec.errors import VersacodecError
from versacodec.training.config import ScheduleConfig

CHECKPOINT_NAME = "checkpoint.pt"


class Stage(Protocol):
    schedule: ScheduleConfig

    def trainable(self) -> nn.Module:
        """One module (possibly a container) whose parameters the optimiser updates."""

    def prepare(self, accelerator: Accelerator) -> None:
        """Move frozen helpers (loss networks, teachers) to the device."""

    def training_step(self, model: nn.Module, step: int, rank: int,
                      device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss and scalars for batch number `step`; `model` is `trainable()` as wrapped by
        accelerate (call it, rather than the stage's own reference, so DDP syncs gradients)."""

    def validate(self, device: torch.device) -> dict[str, float]:
        """Scalars measured on held-out images (uses the stage's own, unwrapped modules)."""

    def export(self, directory: Path) -> None:
        """Write the trained model(s) with save_pretrained."""


def learning_rate_factor(step: int, schedule: ScheduleConfig) -> float:
    if step < schedule.warmup_steps:
        return (step + 1) / schedule.warmup_steps
    progress = (step - schedule.warmup_steps) / max(1, schedule.steps - schedule.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return schedule.final_lr_fraction + (1 - schedule.final_lr_fraction) * cosine


class MetricLog:
    """Appends one row per logged step to NAME.csv (and TensorBoard when installed)."""

    def __init__(self, directory: Path, name: str, enabled: bool) -> None:
        self.path = directory / f"{name}.csv"
        self.enabled = enabled
        self.fields: list[str] | None = None  # the file's header, once known
        self.writer = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(directory / "tensorboard" / name))
            except ImportError:
                self.writer = None

    def write(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        row = {"step": step, "time": round(time.time(), 1), **{k: round(v, 6) for k, v in values.items()}}
        if self.fields is None:  # the header of a file from an earlier run, read once
            self.fields = self._read_header()
        new = [name for name in row if name not in self.fields]
        if new:  # a first row, or a resumed run that logs another set of terms: one header for all
            self.fields += new
            self._rewrite()
        with open(self.path, "a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=self.fields).writerow(row)
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key, value, step)

    def _read_header(self) -> list[str]:
        if not self.path.exists():
            return []
        with open(self.path, newline="") as handle:
            return list(csv.DictReader(handle).fieldnames or [])

    def _rewrite(self) -> None:
        """The file again under the current header (rows keep their values, new columns empty)."""
        rows = []
        if self.path.exists():
            with open(self.path, newline="") as handle:
                rows = list(csv.DictReader(handle))
        with open(self.path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.fields)
            writer.writeheader()
            writer.writerows(rows)


class TrainingDiverged(VersacodecError):
    """The loss kept diverging after `max_rollbacks` rollbacks, or before any checkpoint."""


class DivergenceGuard:
    """Watches the logged loss means: `diverged(mean)` is true when one is not finite or exceeds
    `divergence_factor` times the lowest seen so far (the lowest is per process, so a resumed
    run with another loss weighting starts its own reference)."""

    def __init__(self, schedule: ScheduleConfig) -> None:
        self.factor = schedule.divergence_factor
        self.rollbacks_left = schedule.max_rollbacks
        self.lowest = math.inf

    def diverged(self, mean_loss: float) -> bool:
        if self.factor <= 0:
            return False
        if not math.isfinite(mean_loss) or mean_loss > self.factor * self.lowest:
            return True
        self.lowest = min(self.lowest, mean_loss)
        return False


def _save_checkpoint(path: Path, module: nn.Module, optimizer: torch.optim.Optimizer, step: int,
                     elapsed: float, budgeted_steps: int | None, lr_factor: float) -> None:
    tmp = path.with_suffix(".tmp")
    state = {"model": module.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
             "elapsed_seconds": elapsed, "lr_factor": lr_factor}
    if budgeted_steps is not None:
        state["steps"] = budgeted_steps
    torch.save(state, tmp)
    tmp.replace(path)


class BudgetedLength:
    """Fits a time-budgeted run's length to what is left of its budget (see
    `ScheduleConfig.time_budget_s`). The first WARM_STEPS are not timed (kernel compilation,
    allocator growth); the length is first fitted after TIMING_STEPS more, then re-fitted about
    REFITS times over the run from the speed since the last fit: on a shared machine the speed
    changes as other jobs start and end, and a length fixed once overran a lent GPU's time limit.
    Fits fall on steps every process agrees on, and `agree` makes them share the main process's
    length, so distributed runs stop together."""

    WARM_STEPS = 5
    TIMING_STEPS = 20
    REFITS = 20
    # Validation, checkpoints and the export also take time: keep this share of the budget for them.
    RESERVE = 0.1

    def __init__(self, schedule: ScheduleConfig, start_step: int, stage_started: float,
                 agree: Callable[[int], int]) -> None:
        self.active = schedule.time_budget_s is not None
        self.budget = schedule.time_budget_s or 0.0
        self.longest = schedule.steps
        self.start_step, self.stage_started, self.agree = start_step, stage_started, agree
        self.window: tuple[int, float] | None = None  # (step, time) the speed is measured from
        self.next_fit = start_step + self.WARM_STEPS + self.TIMING_STEPS

    def update(self, done: int, schedule: ScheduleConfig) -> ScheduleConfig:
        """Call after each optimiser step; returns the schedule with the length that fits now
        (never past the configured `steps`, never before `done`: then the run ends here)."""
        if done == self.start_step + self.WARM_STEPS:
            self.window = (done, time.time())
        if self.window is None or done < self.next_fit:
            return schedule
        now = time.time()
        window_step, window_time = self.window
        seconds_per_step = (now - window_time) / (done - window_step)
        remaining = self.budget * (1 - self.RESERVE) - (now - self.stage_started)
        steps = self.agree(max(done, min(self.longest, done + int(remaining / seconds_per_step))))
        self.window = (done, now)
        self.next_fit = done + max(self.TIMING_STEPS, (steps - self.start_step) // self.REFITS)
        return dataclasses.replace(schedule, steps=steps)


def _main_process_value(accelerator: Accelerator) -> Callable[[int], int]:
    if accelerator.num_processes == 1:
        return lambda value: value
    return lambda value: int(broadcast(torch.tensor([value], device=accelerator.device)).item())


def run_stage(stage: Stage, progress: bool = True, export_only: bool = False) -> Path:
    """Train `stage` to `schedule.steps`, resuming from output_dir/checkpoint.pt when present.

    `export_only` writes the checkpoint's current weights to output_dir/snapshot-STEP without training."""
    stage_started = time.time()
    schedule = stage.schedule
    budgeted = schedule.time_budget_s is not None  # its chosen length goes into every checkpoint
    output = Path(schedule.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    accelerator = Accelerator(mixed_precision=schedule.mixed_precision)
    torch.manual_seed(schedule.seed + accelerator.process_index)
    module = stage.trainable()
    optimizer = torch.optim.AdamW(parameter_groups(module, schedule.lr_scales), lr=schedule.learning_rate,
                                  weight_decay=schedule.weight_decay)
    start_step, elapsed, lr_factor = 0, 0.0, 1.0
    checkpoint_path = output / CHECKPOINT_NAME
    if checkpoint_path.exists():
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        module.load_state_dict(state["model"])
        try:
            optimizer.load_state_dict(state["optimizer"])
        except ValueError:  # lr_scales changed the parameter groups: moments restart, weights do not
            accelerator.print("optimizer state does not match the parameter groups: starting it afresh")
        start_step, elapsed = int(state["step"]), float(state.get("elapsed_seconds", 0.0))
        lr_factor = float(state.get("lr_factor", 1.0))
        if "steps" in state:  # a budgeted run keeps the length it chose
            schedule = dataclasses.replace(schedule, steps=int(state["steps"]), time_budget_s=None)
        accelerator.print(f"resuming {output} at step {start_step}")
    if export_only:
        snapshot = output / f"snapshot-{start_step}"
        stage.export(snapshot)
        return snapshot
    module, optimizer = accelerator.prepare(module, optimizer)
    stage.prepare(accelerator)
    log = MetricLog(output, "train", accelerator.is_main_process)
    validation_log = MetricLog(output, "validation", accelerator.is_main_process)
    bar = tqdm(total=schedule.steps, initial=start_step, disable=not (progress and accelerator.is_main_process),
               desc=output.name, dynamic_ncols=True)
    running: dict[str, float] = {}
    started = time.time() - elapsed
    budget = BudgetedLength(schedule, start_step, stage_started, _main_process_value(accelerator))
    guard = DivergenceGuard(schedule)
    step = start_step
    while step < schedule.steps:
        for group in optimizer.param_groups:
            group["lr"] = (schedule.learning_rate * group["lr_scale"] * learning_rate_factor(step, schedule)
                           * lr_factor)
        module.train()
        with accelerator.autocast():
            loss, scalars = stage.training_step(module, step, accelerator.process_index, accelerator.device)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        if schedule.grad_clip > 0:
            accelerator.clip_grad_norm_(_trainable_parameters(module), schedule.grad_clip)
        optimizer.step()
        if budget.active:
            fitted = budget.update(step + 1, schedule)
            if fitted.steps != schedule.steps:
                accelerator.print(f"time budget {schedule.time_budget_s:.0f} s: training {fitted.steps} steps")
                schedule = fitted
                bar.total = schedule.steps
        for key, value in scalars.items():
            running[key] = running.get(key, 0.0) + value
        done = step + 1
        bar.update(1)
        if done % schedule.log_every == 0:
            means = {k: v / schedule.log_every for k, v in running.items()}
            means["lr"] = optimizer.param_groups[0]["lr"]
            bar.set_postfix({k: f"{v:.4g}" for k, v in means.items() if k != "lr"})
            log.write(done, means)
            running = {}
            if guard.diverged(means["loss"]):
                step, lr_factor = _roll_back(checkpoint_path, accelerator, module, optimizer, guard,
                                             done, means["loss"], lr_factor)
                bar.reset(total=schedule.steps)
                bar.update(step)
                continue
        if done % schedule.validate_every == 0 or done == schedule.steps:
            module.eval()
            with torch.no_grad():
                validation_log.write(done, stage.validate(accelerator.device))
        if accelerator.is_main_process and (done % schedule.checkpoint_every == 0 or done == schedule.steps):
            _save_checkpoint(checkpoint_path, accelerator.unwrap_model(module), optimizer, done,
                             time.time() - started, schedule.steps if budgeted else None, lr_factor)
        step = done
    bar.close()
    accelerator.wait_for_everyone()
    final = output / "final"
    if accelerator.is_main_process:
        stage.export(final)
        (output / "wall_time_seconds.txt").write_text(f"{time.time() - started:.0f}\n")
    return final


def _roll_back(checkpoint_path: Path, accelerator: Accelerator, module: nn.Module,
               optimizer: torch.optim.Optimizer, guard: DivergenceGuard, step: int, loss: float,
               lr_factor: float) -> tuple[int, float]:
    """Reload the last checkpoint into `module` and `optimizer`; returns its step and the halved
    learning-rate factor. Raises TrainingDiverged when no rollback is left or none is possible."""
    if guard.rollbacks_left <= 0 or not checkpoint_path.exists():
        reason = "no rollback is left" if checkpoint_path.exists() else "there is no checkpoint yet"
        raise TrainingDiverged(f"training diverged at step {step} (logged loss {loss:.4g}, lowest "
                               f"{guard.lowest:.4g}) and {reason}: lower learning_rate or lr_scales")
    guard.rollbacks_left -= 1
    state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    accelerator.unwrap_model(module).load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    lr_factor = float(state.get("lr_factor", 1.0)) / 2
    accelerator.print(f"loss diverged at step {step} ({loss:.4g}, lowest {guard.lowest:.4g}): back to the "
                      f"checkpoint at step {state['step']} with learning-rate factor {lr_factor:g}")
    return int(state["step"]), lr_factor


def _trainable_parameters(module: nn.Module) -> Iterable[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


def parameter_groups(module: nn.Module, lr_scales: dict[str, float]) -> list[dict]:
    """Optimiser groups: a parameter takes the scale of the first key its name contains, else 1."""
    groups: dict[float, list[nn.Parameter]] = {}
    for name, parameter in module.named_parameters():
        if parameter.requires_grad:
            scale = next((value for key, value in lr_scales.items() if key in name), 1.0)
            groups.setdefault(scale, []).append(parameter)
    return [{"params": params, "lr_scale": scale} for scale, params in sorted(groups.items())]
