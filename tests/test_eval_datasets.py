import json

import pytest

from conftest import natural_image, shared_dir
from versacodec.errors import InputError
from versacodec.evaluation.datasets import DatasetMissing, load_image, open_dataset
from versacodec.evaluation.runner import DatasetPlan, RunConfig, prepare


def test_plain_folder_sorted_with_limit(tmp_path):
    for name in ("b.png", "a.jpg", "c.webp"):
        natural_image(32, 24).save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    dataset = open_dataset(str(tmp_path))
    assert dataset.kind == "images" and [item.id for item in dataset.items] == ["a", "b", "c"]
    assert len(open_dataset(str(tmp_path), limit=2)) == 2
    assert load_image(dataset.items[0].path).mode == "RGB"


def test_folders_named_alike_get_distinct_cache_keys(tmp_path):
    for parent in ("one", "two"):
        (tmp_path / parent / "set").mkdir(parents=True)
        natural_image(32, 24).save(tmp_path / parent / "set" / "a.png")
    first, second = open_dataset(str(tmp_path / "one" / "set")), open_dataset(str(tmp_path / "two" / "set"))
    assert first.name == second.name == "set" and first.key != second.key


def test_imagenet_style_and_coco_style_folders_are_detected(tmp_path):
    imagenet = tmp_path / "inet"
    imagenet.mkdir()
    natural_image(32, 24).save(imagenet / "x.JPEG")
    (imagenet / "labels.csv").write_text("file,wnid,class_index,class_name\nx.JPEG,n0,7,cock\n")
    dataset = open_dataset(str(imagenet))
    assert dataset.kind == "imagenet" and dataset.items[0].label == 7

    coco = tmp_path / "coco"
    (coco / "images").mkdir(parents=True)
    natural_image(32, 24).save(coco / "images" / "000001.jpg")
    listing = {"images": [{"id": 1, "file_name": "000001.jpg"}, {"id": 2, "file_name": "gone.jpg"}],
               "annotations": [], "categories": []}
    (coco / "instances_val.json").write_text(json.dumps(listing))
    dataset = open_dataset(str(coco))
    assert dataset.kind == "coco" and dataset.items[0].coco_id == 1 and "absent" in dataset.notes[0]


def test_missing_named_dataset_and_bad_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("VERSACODEC_DATA", str(tmp_path))
    with pytest.raises(DatasetMissing, match=r"kodak.*not available"):
        open_dataset("kodak")
    with pytest.raises(InputError, match="neither a known name"):
        open_dataset(str(tmp_path / "nowhere"))


def test_imagenet_subset_rule():
    if shared_dir("data", "imagenet-eval") is None:
        pytest.skip("imagenet-eval is not in the data directory")
    first, again = open_dataset("imagenet"), open_dataset("imagenet")
    assert len(first) == 200 and [i.id for i in first.items] == [i.id for i in again.items]
    assert [i.path.name for i in first.items] == sorted(i.path.name for i in first.items)


def test_a_plan_keeps_its_own_image_limit_unless_the_run_sets_one(tmp_path):
    for index in range(4):
        natural_image(48, 40, seed=index).save(tmp_path / f"{index}.png")
    plan = DatasetPlan(str(tmp_path), ("psnr",), (), limit=3)

    def images(run_limit):
        config = RunConfig(plans=[plan], codecs=["jpeg"], rates=[1.0], out=tmp_path / "o",
                           cache_dir=tmp_path / "c", limit=run_limit)
        return len(prepare(config).datasets[0].dataset)

    assert images(None) == 3
    assert images(1) == 1 and images(4) == 4


def test_reports_name_datasets_by_the_data_variable_not_this_machines_path(tmp_path, monkeypatch):
    monkeypatch.setenv("VERSACODEC_DATA", str(tmp_path))
    (tmp_path / "kodak").mkdir()
    natural_image(32, 24).save(tmp_path / "kodak" / "kodim01.png")
    assert open_dataset("kodak").describe()["path"] == "$VERSACODEC_DATA/kodak"


def test_committed_results_hold_no_absolute_path():
    import re
    from pathlib import Path

    results = Path(__file__).resolve().parent.parent / "docs" / "results"
    for path in results.rglob("*"):
        if path.suffix in (".md", ".json"):
            found = re.findall(r"(?<![\w$])/(?:work|home|root|tmp|Users|mnt|opt)/[^\s\"'`)]*", path.read_text())
            assert not found, f"{path.name} records paths of the machine that made it: {found[:3]}"
