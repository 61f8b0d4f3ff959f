"""Each task evaluator on 1-2 real images; skipped when its model or data set is absent."""

import pytest
from PIL import Image

from versacodec.errors import InputError
from versacodec.evaluation.datasets import Dataset, load_image, open_dataset
from versacodec.evaluation.tasks import TASKS, task_names


def _task(name: str):
    task = TASKS[name]()
    available, reason = task.available()
    if not available:
        pytest.skip(reason)
    return task


def _dataset(name: str, limit: int) -> Dataset:
    from versacodec.evaluation.datasets import DatasetMissing

    try:
        return open_dataset(name, limit)
    except DatasetMissing as exc:
        pytest.skip(str(exc))


def _blurred(image: Image.Image, factor: int = 8) -> Image.Image:
    return image.resize((image.width // factor, image.height // factor)).resize(image.size, Image.Resampling.BICUBIC)


@pytest.mark.parametrize("name", ["detection", "instance-segmentation"])
def test_coco_tasks_score_real_predictions_and_failures(name):
    task, dataset = _task(name), _dataset("coco", 2)
    assert task.applies_to(dataset)
    records = {item.id: task.record(item, task.predict(load_image(item.path)), None) for item in dataset.items}
    good = task.score(dataset, records)
    assert 10 < good["map"] <= good["map50"] <= 100
    assert set(good) == {"map", "map50", "map_small", "map_medium", "map_large"}
    assert all(0 <= good[size] <= 100 for size in ("map_small", "map_medium", "map_large"))  # never −1
    assert max(good["map_small"], good["map_medium"], good["map_large"]) >= good["map"] * 0.5
    failed = task.score(dataset, {item.id: task.record(item, None, None) for item in dataset.items})
    assert failed == dict.fromkeys(good, 0.0)


@pytest.mark.parametrize("name", ["classification", "classification-mobilenet"])
def test_classifiers_get_clean_images_right_and_failures_wrong(name):
    task, dataset = _task(name), _dataset("imagenet", 2)
    records = {item.id: task.record(item, task.predict(load_image(item.path)), None) for item in dataset.items}
    assert task.score(dataset, records)["top1"] == 100.0
    assert task.score(dataset, {i.id: task.record(i, None, None) for i in dataset.items})["top1"] == 0.0


@pytest.mark.parametrize(("name", "data", "perfect"), [("semantic-segmentation", "coco", "miou"),
                                                      ("faces", "celeba", "recall")])
def test_reference_tasks_compare_with_the_original(name, data, perfect):
    task, dataset = _task(name), _dataset(data, 1)
    item = dataset.items[0]
    original = load_image(item.path)
    reference = task.predict(original)
    same = task.score(dataset, {item.id: task.record(item, task.predict(original), reference)})
    assert same[perfect] == 100.0
    blurred = task.score(dataset, {item.id: task.record(item, task.predict(_blurred(original)), reference)})
    assert 0 <= blurred[perfect] <= 100
    failed = task.score(dataset, {item.id: task.record(item, None, reference)})
    assert failed[perfect] == 0.0


def test_task_names_expand_aliases_and_reject_unknown_names():
    assert task_names(["segmentation", "detection", "semantic-segmentation"]) == [
        "instance-segmentation", "semantic-segmentation", "detection"]
    with pytest.raises(InputError, match="unknown task"):
        task_names(["ocr"])


def test_an_unavailable_task_names_the_missing_package_or_model_file(tmp_path, monkeypatch):
    monkeypatch.setenv("VERSACODEC_MODELS", str(tmp_path))
    detection = TASKS["detection"]
    missing_package = type("NeedsPackage", (detection,), {"packages": {"no_such_module_for_test": "no-such-dist"}})
    assert missing_package().available() == (
        False, "no-such-dist is not installed (pip install 'versacodec[eval]')")
    missing_model = type("NeedsModel", (detection,), {"packages": {}})
    available, reason = missing_model().available()
    assert not available
    assert reason.startswith(f"model file {detection.model_file} not found in {tmp_path} (from YOLOX-nano")
    assert reason.endswith("set VERSACODEC_MODELS to the folder (README, 'Models and data')")
