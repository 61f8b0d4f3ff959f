"""The generative decoder inside the codec pipeline and the command line."""

import json

import numpy as np
import pytest
import torch

from conftest import generative_settings, natural_image
from versacodec.container.format import SectionKind, Stream
from versacodec.errors import InputError, ModelError
from versacodec.interfaces.cli import main


def test_streams_carry_tags_and_decode_generatively_by_default(generative_codec):
    encoded = generative_codec.encode(natural_image(128, 96), quality=60)
    stream = Stream.from_bytes(encoded.data)
    tags_section = stream.section(SectionKind.TAGS)
    assert len(tags_section.payload) <= 8
    decoded = generative_codec.decode(encoded.data)
    assert decoded.decoder == "generative" and decoded.image.size == (128, 96)
    assert decoded.tags == generative_codec.model.tag(natural_image(128, 96))


def test_generative_decoding_is_repeatable_and_seeded(generative_codec):
    data = generative_codec.encode(natural_image(), quality=40, seed=3).data
    first = np.asarray(generative_codec.decode(data, steps=2).image)
    assert np.array_equal(first, np.asarray(generative_codec.decode(data, steps=2).image))
    other_seed = np.asarray(generative_codec.decode(data, steps=2, seed=4).image)
    direct = np.asarray(generative_codec.decode(data, decoder="direct").image)
    assert not np.array_equal(first, other_seed) and not np.array_equal(first, direct)


def test_explicit_and_absent_tags(generative_codec):
    data = generative_codec.encode(natural_image(), quality=40, tags=[1, 2]).data
    assert generative_codec.read(data).tags == (1, 2)
    bare = generative_codec.encode(natural_image(), quality=40, tags=False).data
    assert not Stream.from_bytes(bare).sections_of(SectionKind.TAGS)
    assert generative_codec.decode(bare).image.size == (96, 80)
    with pytest.raises(InputError, match="invalid tags"):
        generative_codec.encode(natural_image(), tags=[1000])


def test_generative_options_are_checked(generative_codec, tiny_codec):
    data = generative_codec.encode(natural_image(), quality=20).data
    with pytest.raises(InputError, match="generative decoder only"):
        generative_codec.decode(data, decoder="direct", steps=4)
    plain = tiny_codec.encode(natural_image(), quality=20).data
    with pytest.raises(InputError, match="no generative decoder"):
        tiny_codec.decode(plain, decoder="generative")


def test_cli_generative_flags_and_info_tag_names(tmp_path, generative_bundle, image_file, capsys):
    stream = tmp_path / "g.vcx"
    assert main(["compress", str(image_file), "-o", str(stream), "--model", str(generative_bundle)]) == 0
    capsys.readouterr()
    assert main(["info", str(stream), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    tags = next(s for s in report["sections"] if s["kind"] == "tags")
    details = tags["details"]
    assert len(details["tags"]) == len(details["tag_ids"]) and all(isinstance(n, str) for n in details["tags"])
    out = tmp_path / "g.png"
    code = main(["decompress", str(stream), "-o", str(out), "--model", str(generative_bundle), "--steps", "2",
                 "--cfg", "3", "--seed", "9", "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["decoder"] == "generative"


def test_one_step_start_follows_the_stream_quality():
    from versacodec.generative.decoder import GenerativeConfig
    from versacodec.modeling import config_from_dict

    config = config_from_dict(GenerativeConfig, {"one_step_timestep": 100,
                                                 "one_step_timesteps_by_quality": [[0, 200], [40, 50], [60, 0]]})
    assert [config.one_step_start(q) for q in (None, 10, 40, 59, 60, 100)] == [100, 200, 50, 50, 0, 0]
    for bad in ([[40, 50], [10, 0]], [[0, 1000]], [[0, 5, 6]]):
        with pytest.raises(ModelError, match="one_step_timesteps_by_quality"):
            GenerativeConfig(one_step_timesteps_by_quality=bad)


def test_streams_fine_enough_for_the_table_decode_without_diffusion(generative_codec):
    image = natural_image(96, 80, seed=3)
    coarse, fine = (generative_codec.encode(image, quality=q).data for q in (20, 80))
    with generative_settings(generative_codec, one_step_timesteps_by_quality=((50, 0),)):
        def same(data: bytes) -> bool:
            decoded = (np.asarray(generative_codec.decode(data, decoder=d).image) for d in ("generative", "direct"))
            return np.array_equal(*decoded)

        assert same(fine) and not same(coarse)


def test_sent_regions_are_kept_and_faded_into_the_generated_rest():
    from versacodec.semantics.partial import keep_sent_regions

    sent = torch.zeros(4, 6, dtype=torch.bool)
    sent[1:3, 1:4] = True
    decoded, generated = torch.ones(1, 2, 8, 12), torch.zeros(1, 2, 8, 12)
    kept = keep_sent_regions(decoded, generated, sent)
    assert torch.equal(kept[..., 3:5, 3:7], decoded[..., 3:5, 3:7])  # the sent cells, one latent cell in
    assert torch.equal(kept[..., :1, :], generated[..., :1, :]) and torch.equal(kept[..., :, 9:], generated[..., :, 9:])
    assert 0 < kept[0, 0, 2, 2] < 1  # the edge is a cross-fade


def test_partial_streams_take_their_own_start(generative_codec):
    from versacodec.api import extract as extract_task
    from versacodec.semantics.regions import Region

    image = natural_image(160, 128, seed=5)
    full = generative_codec.encode(image, quality=80, task="boxes",
                                     boxes=[Region("thing", (8.0, 8.0, 70.0, 60.0))]).data
    partial = extract_task(full, "boxes")

    def same(data: bytes) -> bool:
        decoded = (np.asarray(generative_codec.decode(data, decoder=d).image) for d in ("generative", "direct"))
        return np.array_equal(*decoded)

    with generative_settings(generative_codec, one_step_timesteps_by_quality=((50, 0),), partial_stream_timestep=300):
        assert same(full) and not same(partial)
    with generative_settings(generative_codec, one_step_timesteps_by_quality=((0, 300),), partial_stream_timestep=0):
        assert same(partial) and not same(full)
    with generative_settings(generative_codec, partial_stream_timestep=300):
        generated = np.asarray(generative_codec.decode(partial).image, dtype=float)
    with generative_settings(generative_codec, partial_stream_timestep=300, partial_stream_keeps_regions=False):
        all_generated = np.asarray(generative_codec.decode(partial).image, dtype=float)
    direct = np.asarray(generative_codec.decode(partial, decoder="direct").image, dtype=float)
    inside, outside = np.s_[16:48, 16:64], np.s_[96:, 96:]  # deep in the sent region / in the dropped background
    assert np.abs(generated - direct)[inside].mean() < 0.25 * np.abs(all_generated - direct)[inside].mean()
    assert np.array_equal(generated[outside], all_generated[outside])
    from versacodec.generative.decoder import GenerativeConfig

    with pytest.raises(ModelError, match="partial_stream_timestep"):
        GenerativeConfig(partial_stream_timestep=1000)
