"""Task-structured streams: region finders, profiles, partial streams (DISCOVER)."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import natural_image, shared_dir
from versacodec.api import extract as extract_task
from versacodec.codec import Codec, CodecModel
from versacodec.codec.layout import latent_part_index
from versacodec.container.format import SectionKind, Stream
from versacodec.errors import InputError, StreamError
from versacodec.imaging import pad_to_multiple
from versacodec.interfaces.cli import main
from versacodec.semantics.profiles import FINDERS, available_profiles, load_profile
from versacodec.semantics.regions import Region, region_grid_boxes

BOXES = [Region("sign", (10.0, 12.0, 60.0, 50.0)), Region("door", (100.0, 70.0, 150.0, 120.0))]


@pytest.fixture(scope="module")
def image():
    return natural_image(192, 160, seed=4)


def test_task_stream_has_a_region_section_that_decodes_alone(tiny_codec, image):
    encoded = tiny_codec.encode(image, quality=80, task="boxes", boxes=BOXES)
    stream = Stream.from_bytes(encoded.data)
    kinds = [s.kind for s in stream.sections]
    assert kinds.count(SectionKind.LATENT) == 2 and SectionKind.REGION_MAP in kinds
    partial = extract_task(encoded.data, "boxes")
    assert len(partial) < len(encoded.data)
    assert [latent_part_index(s) for s in Stream.from_bytes(partial).sections_of(SectionKind.LATENT)] == [0]
    full_y = tiny_codec.model.latent_codec.decode_y(tiny_codec.read(encoded.data).latent, 80)
    part_y = tiny_codec.model.latent_codec.decode_y(tiny_codec.read(partial).latent, 80)
    region = tiny_codec.read(encoded.data).latent.regions[0]
    assert region.any() and not region.all()
    assert torch.equal(full_y[..., region], part_y[..., region])
    assert not torch.equal(full_y[..., ~region], part_y[..., ~region])
    decoded = tiny_codec.decode(partial)
    assert decoded.image.size == image.size


def test_full_task_stream_decodes_like_a_plain_one(tiny_codec, image):
    plain = np.asarray(tiny_codec.decode(tiny_codec.encode(image, quality=80).data).image, dtype=float)
    task = np.asarray(tiny_codec.decode(tiny_codec.encode(image, quality=80, task="boxes",
                                                                  boxes=BOXES).data).image, dtype=float)
    assert np.abs(plain - task).mean() < 2.0


def test_grid_boxes_grow_by_the_margin_and_clip():
    boxes = region_grid_boxes([Region("a", (0.0, 0.0, 17.0, 15.0)), Region("b", (500.0, 500.0, 600.0, 600.0))],
                              margin=16, cell=16, grid=(8, 10))
    assert boxes == [("a", 0, 0, 3, 2)]


def test_each_finder_type_names_its_own_class():
    assert {name: FINDERS[name].type for name in FINDERS} == {name: name for name in FINDERS}


def test_profiles_ship_and_bad_ones_are_clear_errors(tmp_path, monkeypatch):
    assert {"detection", "people", "vehicles", "text", "salient", "boxes"} <= set(available_profiles())
    assert load_profile("people").finders[1].type == "faces"
    with pytest.raises(InputError, match=r"unknown task 'cats'.*known tasks"):
        load_profile("cats")
    bad = tmp_path / "bad.yaml"
    for text, message in [("name: x\nfinders: [{type: radar}]\n", "needs a type"),
                          ("name: x\nfinders: [{type: faces, labels: [cat]}]\n", "does not know labels"),
                          ("name: x\nfinders: []\n", "non-empty"),
                          ("name: [1]\nfinders: [{type: faces}]\n", "identifier"),
                          ("name: x\nfinders: [{type: faces}]\ncolour: red\n", "unknown keys"),
                          ("name: x\nfinders: [{type: faces, min_score: 3}]\n", "min_score"),
                          ("{{{", "cannot read")]:
        bad.write_text(text)
        with pytest.raises(InputError, match=message):
            load_profile(str(bad))
    custom = tmp_path / "mine"
    custom.mkdir()
    (custom / "signs.yaml").write_text("name: signs\nfinders: [{type: boxes, labels: [sign]}]\n")
    monkeypatch.setenv("VERSACODEC_PROFILES", str(custom))
    assert "signs" in available_profiles()


def test_bad_boxes_and_stream_misuse_are_clear_errors(tiny_codec, image):
    with pytest.raises(InputError, match="outside the 192x160 image"):
        tiny_codec.encode(image, task="boxes", boxes=[Region("x", (500.0, 500.0, 600.0, 600.0))])
    with pytest.raises(InputError, match="empty or inverted"):
        tiny_codec.encode(image, task="boxes", boxes=[Region("x", (50.0, 50.0, 10.0, 60.0))])
    with pytest.raises(InputError, match="user boxes"):
        tiny_codec.encode(image, task="boxes")
    plain = tiny_codec.encode(image, quality=10).data
    with pytest.raises(InputError, match="no task regions"):
        extract_task(plain, "boxes")
    task = tiny_codec.encode(image, quality=10, task="boxes", boxes=BOXES).data
    with pytest.raises(InputError, match="not 'people'"):
        extract_task(task, "people")


def test_background_without_its_region_section_is_refused(tiny_codec, image):
    stream = Stream.from_bytes(tiny_codec.encode(image, quality=50, task="boxes", boxes=BOXES).data)
    no_region = [s for s in stream.sections if not (s.kind == SectionKind.LATENT and latent_part_index(s) == 0)]
    with pytest.raises(StreamError, match="needs every region section"):
        tiny_codec.decode(stream.with_sections(no_region).to_bytes())


def test_salient_task_needs_no_external_model(tiny_codec):
    image = natural_image(256, 192, seed=1)
    encoded = tiny_codec.encode(image, quality=50, task="salient")
    assert encoded.regions[0].name == "salient"
    assert tiny_codec.decode(extract_task(encoded.data, "salient")).image.size == (256, 192)


def test_cli_task_extract_and_info(tmp_path, tiny_bundle, capsys):
    source = tmp_path / "in.png"
    natural_image(192, 160).save(source)
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([{"label": "sign", "box": [10, 12, 60, 50]}]))
    full, partial, png = tmp_path / "full.vcx", tmp_path / "part.vcx", tmp_path / "part.png"
    assert main(["compress", str(source), "-o", str(full), "--model", str(tiny_bundle), "--task", "boxes",
                 "--boxes", str(boxes), "--quality", "60"]) == 0
    assert main(["extract", str(full), "--task", "boxes", "-o", str(partial), "--json"]) == 0
    capsys.readouterr()
    assert main(["decompress", str(partial), "-o", str(png), "--model", str(tiny_bundle)]) == 0
    assert Image.open(png).size == (192, 160)
    capsys.readouterr()
    assert main(["info", str(full), "--json"]) == 0
    sections = json.loads(capsys.readouterr().out)["sections"]
    region_map = next(s for s in sections if s["kind"] == "region_map")
    assert region_map["details"]["sets"] == [{"task": "boxes", "regions": 1, "labels": ["sign"]}]
    assert [s["details"]["part"] for s in sections if s["kind"] == "latent"] == ["boxes", "background"]
    code = main(["extract", str(full), "--task", "cats", "-o", str(tmp_path / "x.vcx")])
    assert code == 2 and not (tmp_path / "x.vcx").exists()


def test_a_profile_file_names_the_task_for_compress_and_extract(tmp_path, tiny_bundle, capsys):
    source, boxes, profile = tmp_path / "in.png", tmp_path / "boxes.json", tmp_path / "signs.yaml"
    natural_image(192, 160).save(source)
    boxes.write_text(json.dumps([{"label": "sign", "box": [10, 12, 60, 50]}]))
    profile.write_text("name: signs\nmargin: 8\nfinders:\n  - type: boxes\n")
    full, partial = tmp_path / "full.vcx", tmp_path / "part.vcx"
    assert main(["compress", str(source), "-o", str(full), "--model", str(tiny_bundle), "--task", str(profile),
                 "--boxes", str(boxes), "--quality", "60"]) == 0
    assert main(["extract", str(full), "--task", str(profile), "-o", str(partial)]) == 0
    assert main(["extract", str(full), "--task", "signs", "-o", str(tmp_path / "by-name.vcx")]) == 0
    assert partial.read_bytes() == (tmp_path / "by-name.vcx").read_bytes()
    assert partial.stat().st_size < full.stat().st_size


@pytest.mark.skipif(shared_dir("models", "detection", "yolox_nano.onnx") is None, reason="YOLOX-nano model absent")
@pytest.mark.skipif(shared_dir("data", "coco-val-mini", "images") is None, reason="coco-val-mini absent")
def test_detection_task_finds_coco_objects(tiny_codec):
    image = Image.open(shared_dir("data", "coco-val-mini", "images") / "000000000139.jpg")
    encoded = tiny_codec.encode(image, quality=30, task="detection")
    labels = {box[0] for box in encoded.regions[0].boxes}
    assert "person" in labels


def test_extract_can_also_truncate_a_layered_task_stream(tmp_path, tiny_bundle, tiny_codec, capsys):
    import versacodec

    layered = tiny_codec.encode(natural_image(256, 192, seed=1), quality=50, task="salient", layers=3).data
    source, output = tmp_path / "layered.vcx", tmp_path / "partial.vcx"
    source.write_bytes(layered)
    assert main(["extract", str(source), "--task", "salient", "--layers", "3", "-o", str(output), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    kept = Stream.from_bytes(output.read_bytes())
    assert record["layers"] == 3 and len(kept.sections_of(SectionKind.LAYER)) == 2
    assert [latent_part_index(s) for s in kept.sections_of(SectionKind.LATENT)] == [0]  # the task's part only
    assert output.read_bytes() == versacodec.extract(layered, "salient", layers=3)
    assert tiny_codec.decode(output.read_bytes()).image.size == (256, 192)
    base = versacodec.extract(layered, "salient", layers=1)
    assert base == versacodec.truncate(layered, 1) and len(base) < len(output.read_bytes())
    assert tiny_codec.decode(base).image.size == (256, 192)
    assert main(["extract", str(source), "--task", "salient", "--layers", "4", "-o", str(tmp_path / "x.vcx")]) == 2
    assert "keep between 1 and 3" in capsys.readouterr().err


def test_a_partial_synthesis_decodes_only_streams_with_dropped_sections(tmp_path, tiny_bundle, tiny_codec, image,
                                                                         capsys):
    from versacodec.latent_codec.partial_synthesis import PartialSynthesis

    partial_synthesis = PartialSynthesis.from_codec(tiny_codec.model.latent_codec)
    for parameter in partial_synthesis.parameters():  # a different synthesis, as mask training makes
        parameter.data.add_(torch.randn_like(parameter) * 0.05)
    partial_synthesis.save_pretrained(tmp_path / "partial")
    code = main(["bundle", "--autoencoder", str(tiny_bundle / "autoencoder"), "--latent-codec",
                 str(tiny_bundle / "latent_codec"), "--partial-synthesis", str(tmp_path / "partial"),
                 "--model-id", tiny_codec.model.model_id, "--fp32", "-o", str(tmp_path / "bundle")])
    assert code == 0 and "partial streams with their own synthesis" in capsys.readouterr().out
    with_partial = Codec.from_pretrained(tmp_path / "bundle")
    assert with_partial.model.weights_hash == tiny_codec.model.weights_hash  # no stream changes
    full = tiny_codec.encode(image, quality=60, task="boxes", boxes=BOXES).data
    partial = extract_task(full, "boxes")
    same = [np.asarray(codec.decode(full).image) for codec in (tiny_codec, with_partial)]
    assert np.array_equal(*same)
    plain, composed = (codec.decoded_latent(codec.read(partial)).latent for codec in (tiny_codec, with_partial))
    assert not torch.equal(plain, composed)
    y_hat = tiny_codec.model.latent_codec.decode_y(tiny_codec.read(partial).latent, 60)
    assert torch.equal(composed, partial_synthesis(y_hat.float()))


def test_a_partial_synthesis_for_another_codec_is_refused(tmp_path, tiny_bundle):
    from versacodec.bundle import BundleManifest, read_manifest, write_manifest
    from versacodec.errors import ModelError
    from versacodec.latent_codec.partial_synthesis import PartialSynthesis, PartialSynthesisConfig

    shutil.copytree(tiny_bundle, tmp_path / "bundle")
    PartialSynthesis(PartialSynthesisConfig(y_channels=7, width=8, latent_channels=4, blocks=1)).save_pretrained(
        tmp_path / "bundle" / "partial_synthesis")
    manifest = read_manifest(tmp_path / "bundle")
    components = manifest.components | {"partial_synthesis": "partial_synthesis"}
    write_manifest(tmp_path / "bundle", BundleManifest(manifest.model_id, components))
    with pytest.raises(ModelError, match="partial synthesis for 7 y channels"):
        CodecModel.from_pretrained(tmp_path / "bundle").load_components()


def test_overlapping_region_sets_decode_as_they_were_coded(tiny_codec, image):
    """Earlier sets claim shared positions when coding; decoding must split them the same way."""
    codec = tiny_codec.model.latent_codec
    model = tiny_codec.model
    latent = model.encode_pixels(pad_to_multiple(model.load_image(image).pixels, model.block))
    grid = latent.shape[-2] // 2, latent.shape[-1] // 2
    first, second = torch.zeros(grid, dtype=torch.bool), torch.zeros(grid, dtype=torch.bool)
    first[:3, :4], second[1:5, 2:6] = True, True
    coded = codec.compress_analysed(codec.analyse(latent), 60, (first, second))
    as_read = coded._replace(regions=(first, second))  # the region map gives each set its whole boxes
    assert torch.equal(codec.decode_y(as_read, 60), codec.decode_y(coded, 60))  # coded: disjoint masks
    without_second = as_read._replace(parts=(coded.parts[0], None, None))
    assert torch.equal(without_second.sent_positions(), first)
    assert as_read.sent_positions() is None
