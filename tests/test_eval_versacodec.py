import pytest

from conftest import natural_image
from versacodec.errors import BudgetTooSmall, InputError
from versacodec.evaluation.cache import EncodeCache
from versacodec.evaluation.catalog import make_codec, parse_spec
from versacodec.evaluation.codecs import ImageCodec


def test_spec_parsing():
    assert parse_spec("versacodec-generative:steps=4:cfg=2.5:tags=false") == (
        "versacodec-generative", {"steps": 4, "cfg": 2.5, "tags": False})
    with pytest.raises(InputError, match="unknown codec"):
        parse_spec("bpg")
    with pytest.raises(InputError, match="key=value"):
        parse_spec("versacodec:steps")
    with pytest.raises(InputError, match="takes no options"):
        make_codec("webp:quality=3")


def test_direct_mode_codes_within_budget_and_caches(tiny_bundle, tmp_path):
    codec = make_codec("versacodec-direct", model=tiny_bundle, cache=EncodeCache(tmp_path))
    assert isinstance(codec, ImageCodec) and codec.available() == (True, "")
    assert "tiny-test" in codec.version and "decoder=direct" in codec.version
    image = natural_image()
    result = codec.encode(image, 3.0)
    assert result.bpp <= 3.0 and result.shrink == 1.0 and isinstance(result.setting, int)
    assert codec.decode(result).size == image.size
    assert codec.encode(image, 3.0) == result and any(tmp_path.rglob("*.bin"))


def test_budget_below_the_smallest_stream_is_a_failure(tiny_bundle):
    codec = make_codec("versacodec-direct", model=tiny_bundle)
    with pytest.raises(BudgetTooSmall, match="smallest file"):
        codec.encode(natural_image(), 0.0001)


def test_below_the_floor_the_image_is_shrunk_like_the_baselines(tiny_bundle):
    codec = make_codec("versacodec-direct", model=tiny_bundle)
    image = natural_image()
    floor = len(codec.codec.encode(image, quality=0).data)
    result = codec.encode(image, (floor - 1) * 8 / (image.width * image.height))
    assert result.shrink < 1.0 and len(result.data) <= floor - 1
    assert codec.decode(result).size == image.size
    assert "shrink" in codec.rate_rule


def test_unavailable_modes_and_models_are_reported_not_raised(tiny_bundle, tmp_path):
    generative = make_codec("versacodec-generative", model=tiny_bundle)
    available, reason = generative.available()
    assert not available and "generative" in reason
    missing = make_codec("versacodec-direct", model=tmp_path / "no-model")
    available, reason = missing.available()
    assert not available and "no model bundle" in reason


def test_options_are_routed_by_signature(tiny_bundle):
    codec = make_codec("versacodec-direct:seed=3", model=tiny_bundle)
    assert codec.compress_options["seed"] == 3 and codec.decompress_options["decoder"] == "direct"
    with pytest.raises(InputError, match="unknown option"):
        make_codec("versacodec-direct:frobnicate=1", model=tiny_bundle)
    with pytest.raises(InputError, match="set by the harness"):
        make_codec("versacodec:bpp=0.1", model=tiny_bundle)
    with pytest.raises(InputError, match="implies decoder=direct"):
        make_codec("versacodec-direct:decoder=generative", model=tiny_bundle)


def test_layer_prefixes_are_measured_as_sent_and_share_one_encoding(tiny_bundle, tmp_path):
    cache = EncodeCache(tmp_path)
    image = natural_image(128, 96)
    full = make_codec("versacodec-direct:layers=3", model=tiny_bundle, cache=cache).encode(image, 3.0)
    base = make_codec("versacodec-direct:layers=3:keep_layers=1", model=tiny_bundle, cache=cache)
    prefix = base.encode(image, 3.0)
    assert prefix.bpp < full.bpp and len(list(tmp_path.rglob("*.bin"))) == 1
    assert base.decode(prefix).size == image.size
    with pytest.raises(InputError, match="needs layers=N"):
        make_codec("versacodec-direct:keep_layers=1", model=tiny_bundle)
    with pytest.raises(InputError, match="needs task=NAME"):
        make_codec("versacodec-direct:extract=true", model=tiny_bundle)


def test_extract_sends_only_the_task_regions(tiny_bundle, tmp_path):
    boxes = tmp_path / "boxes.json"
    boxes.write_text('[{"label": "thing", "box": [0, 0, 48, 48]}]')
    spec = f"versacodec-direct:task=boxes:boxes={boxes}"
    image = natural_image(128, 96)
    full = make_codec(spec, model=tiny_bundle).encode(image, 3.0)
    partial_codec = make_codec(spec + ":extract=true", model=tiny_bundle)
    partial = partial_codec.encode(image, 3.0)
    assert partial.bpp < full.bpp and partial_codec.decode(partial).size == image.size


def test_decoders_share_the_encoding(generative_bundle, tmp_path):
    cache = EncodeCache(tmp_path)
    image = natural_image(64, 64)
    direct = make_codec("versacodec-direct", model=generative_bundle, cache=cache).encode(image, 3.0)
    generative = make_codec("versacodec-generative:steps=1", model=generative_bundle, cache=cache).encode(image, 3.0)
    assert direct == generative and len(list(tmp_path.rglob("*.bin"))) == 1


def test_generative_results_are_versioned_by_the_generative_decoder(generative_bundle, tmp_path):
    """Two bundles whose bitstream weights agree but whose generative decoders differ (here only
    its settings) must not share cached generative results; direct results may."""
    import json
    import shutil

    changed = tmp_path / "changed"
    shutil.copytree(generative_bundle, changed)
    settings = changed / "generative" / "generative.json"
    values = json.loads(settings.read_text())
    values["one_step_timestep"] = values["one_step_timestep"] // 2 + 1
    settings.write_text(json.dumps(values))
    versions = {(decoder, str(model)): make_codec(f"versacodec-{decoder}", model=model).version
                for decoder in ("direct", "generative") for model in (generative_bundle, changed)}
    assert versions[("direct", str(generative_bundle))] == versions[("direct", str(changed))]
    assert versions[("generative", str(generative_bundle))] != versions[("generative", str(changed))]


def test_generative_records_are_versioned_by_the_settings_their_streams_read(generative_bundle, tmp_path):
    """The partial-stream start is read only by streams with dropped sections: retuning it must
    renew their records and keep every full stream's."""
    import json
    import shutil

    changed = tmp_path / "changed"
    shutil.copytree(generative_bundle, changed)
    settings = changed / "generative" / "generative.json"
    values = json.loads(settings.read_text())
    values["partial_stream_timestep"] = 123 if values.get("partial_stream_timestep") != 123 else 321
    settings.write_text(json.dumps(values))
    for spec in ("versacodec-generative:task=salient", "versacodec-generative:task=salient:extract=true"):
        before, after = (make_codec(spec, model=model).version for model in (generative_bundle, changed))
        assert (before == after) == (spec == "versacodec-generative:task=salient")


def test_layered_streams_are_versioned_by_the_layer_start_table(generative_bundle, tmp_path):
    """The encoder writes the generative decoder's calibrated layer starts into layered streams,
    so cached layered streams must not outlive a new calibration; plain streams may."""
    import json
    import shutil

    changed = tmp_path / "changed"
    shutil.copytree(generative_bundle, changed)
    settings = changed / "generative" / "generative.json"
    values = json.loads(settings.read_text())
    values["layer_start_timesteps"] = [7, 3]
    settings.write_text(json.dumps(values))
    for spec in ("versacodec-direct", "versacodec-direct:layers=3"):
        before, after = (make_codec(spec, model=model).version for model in (generative_bundle, changed))
        assert (before == after) == (spec == "versacodec-direct")


def test_task_profiles_by_path_extract_and_version_the_streams(tiny_bundle, tmp_path):
    """A profile file works as task=PATH (extract keeps its regions by the profile's name), and
    editing what it selects must not reuse streams cached under the old profile."""
    boxes = tmp_path / "boxes.json"
    boxes.write_text('[{"label": "thing", "box": [0, 0, 48, 48]}]')
    profile = tmp_path / "mine.yaml"

    def spec_with_margin(margin):
        profile.write_text(f"name: mine\nmargin: {margin}\nfinders:\n  - type: boxes\n")
        return f"versacodec-direct:task={profile}:boxes={boxes}"

    image = natural_image(128, 96)
    wide = make_codec(spec_with_margin(16), model=tiny_bundle)
    partial_codec = make_codec(spec_with_margin(16) + ":extract=true", model=tiny_bundle)
    assert partial_codec.encode(image, 3.0).bpp < wide.encode(image, 3.0).bpp
    wide_version = wide.version
    assert wide_version != make_codec(spec_with_margin(0), model=tiny_bundle).version


def test_extracted_streams_are_versioned_by_the_partial_synthesis(tiny_bundle, tiny_codec, tmp_path):
    """Only streams with dropped sections decode through the partial synthesis: their records
    must not outlive a new one, and full-stream records must not be thrown away for it."""
    from versacodec.interfaces.cli import main
    from versacodec.latent_codec.partial_synthesis import PartialSynthesis

    PartialSynthesis.from_codec(tiny_codec.model.latent_codec).save_pretrained(tmp_path / "partial")
    assert main(["bundle", "--autoencoder", str(tiny_bundle / "autoencoder"), "--latent-codec",
                 str(tiny_bundle / "latent_codec"), "--partial-synthesis", str(tmp_path / "partial"),
                 "--model-id", tiny_codec.model.model_id, "--fp32", "-o", str(tmp_path / "with-partial")]) == 0
    for spec in ("versacodec-direct:task=salient", "versacodec-direct:task=salient:extract=true"):
        before, after = (make_codec(spec, model=model).version for model in (tiny_bundle, tmp_path / "with-partial"))
        assert (before == after) == (spec == "versacodec-direct:task=salient")
