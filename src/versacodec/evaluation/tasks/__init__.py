"""Machine-vision task evaluators, by the names `--tasks` accepts."""

from __future__ import annotations

from versacodec.errors import InputError
from versacodec.evaluation.tasks.base import Task
from versacodec.evaluation.tasks.classification import EfficientNetClassification, MobileNetClassification
from versacodec.evaluation.tasks.detection import Detection
from versacodec.evaluation.tasks.faces import Faces
from versacodec.evaluation.tasks.instance_segmentation import InstanceSegmentation
from versacodec.evaluation.tasks.semantic_segmentation import SemanticSegmentation
from versacodec.registry import Registry

TASKS: Registry[type[Task]] = Registry("task", {
    task.name: task
    for task in (Detection, InstanceSegmentation, SemanticSegmentation, EfficientNetClassification,
                 MobileNetClassification, Faces)
})
# Shorthands expanding to several tasks.
ALIASES = {"segmentation": ("instance-segmentation", "semantic-segmentation")}


def task_names(requested: list[str]) -> list[str]:
    """Expand aliases, keep order, drop repeats; unknown names are an InputError."""
    names: list[str] = []
    for name in requested:
        expanded = ALIASES.get(name, (name,))
        for one in expanded:
            if one not in TASKS:
                known = ", ".join([*TASKS, *ALIASES])
                raise InputError(f"unknown task '{one}'; choose from {known}")
            if one not in names:
                names.append(one)
    return names
