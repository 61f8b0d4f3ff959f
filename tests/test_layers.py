"""Scalable layers: palette tree, layered streams, truncation, prefix decoding."""

import itertools
import json

import numpy as np
import pytest
import torch

from conftest import generative_settings, natural_image
from versacodec.api import truncate as truncate_layers
from versacodec.container.format import Section, SectionKind, Stream, get_varint, put_varint
from versacodec.entropy.range_coder import SymbolReader, SymbolWriter
from versacodec.errors import InputError, ModelError, StreamError
from versacodec.interfaces.cli import main
from versacodec.interfaces.inspect import layer_summary
from versacodec.layers.palette import build_palette, read_level, reconstruct, write_level
from versacodec.layers.scalable import layer_start_timestep


def test_palette_levels_refine_and_round_trip():
    torch.manual_seed(0)
    latent = torch.nn.functional.avg_pool2d(torch.randn(1, 6, 20, 24), 5, 1, 2)[0].double().numpy() * 3
    levels = build_palette(latent, 4)
    errors = [((reconstruct(level) - latent) ** 2).mean() for level in levels]
    assert all(later < earlier for earlier, later in itertools.pairwise(errors))
    assert [len(level.centroids) for level in levels] == [1, 2, 4, 8, 16]
    writer = SymbolWriter()
    for number in range(1, 5):
        write_level(writer, levels[number - 1], levels[number], first=number == 1)
    reader = SymbolReader(writer.getvalue())
    level = None
    for number in range(1, 5):
        _, level = read_level(reader, level, 6, (20, 24))
        assert np.array_equal(level.assignment, levels[number].assignment)
        assert np.array_equal(level.centroids, levels[number].centroids)


def test_layer_start_table_extends_its_last_entry():
    from versacodec.generative.decoder import GenerativeConfig

    assert [layer_start_timestep((150, 40), number) for number in (1, 2, 3, 8)] == [150, 40, 40, 40]
    assert layer_start_timestep((), 3) == 0
    with pytest.raises(ModelError, match="layer_start_timesteps"):
        GenerativeConfig(layer_start_timesteps=(100, 1000))


def test_every_prefix_decodes_and_costs_more_with_more_layers(tiny_codec):
    image = natural_image(160, 128, seed=2)
    encoded = tiny_codec.encode(image, quality=90, layers=4)
    stream = Stream.from_bytes(encoded.data)
    assert len(stream.sections_of(SectionKind.LAYER)) == 3
    sizes = []
    for keep in (1, 2, 3, 4):
        prefix = truncate_layers(encoded.data, keep)
        sizes.append(len(prefix))
        assert tiny_codec.decode(prefix).image.size == (160, 128)
    assert sizes == sorted(sizes) and sizes[-1] == len(encoded.data)
    full = np.asarray(tiny_codec.decode(encoded.data).image)
    plain = np.asarray(tiny_codec.decode(tiny_codec.encode(image, quality=90).data).image)
    assert np.array_equal(full, plain)
    summary = layer_summary(stream, 160 * 128)
    assert [row["prefix_bytes"] for row in summary] == sizes


def test_layered_generative_prefix_uses_the_calibrated_start(generative_codec):
    encoded = generative_codec.encode(natural_image(128, 96), quality=50, layers=3)
    prefix = truncate_layers(encoded.data, 1)
    first = generative_codec.decode(prefix, steps=2)
    assert first.image.size == (128, 96)
    assert tuple(first.tags) == generative_codec.read(prefix).tags
    assert np.array_equal(np.asarray(first.image), np.asarray(generative_codec.decode(prefix, steps=2).image))


def test_layer_starts_come_from_the_calibrated_table(generative_codec):
    image = natural_image(128, 96)
    with generative_settings(generative_codec, layer_start_timesteps=(120, 0)):
        data = generative_codec.encode(image, quality=50, layers=4).data
    layers = generative_codec.read(data).layers
    assert [layer.start_timestep for layer in layers] == [120, 0, 0]
    with generative_settings(generative_codec, layer_start_timesteps=()):
        plain_start = generative_codec.read(generative_codec.encode(image, quality=50, layers=2).data).layers
    one_step = generative_codec.model.generative.config.one_step_timestep
    assert [layer.start_timestep for layer in plain_start] == [one_step]

    def decoded(prefix: bytes, decoder: str) -> np.ndarray:
        return np.asarray(generative_codec.decode(prefix, decoder=decoder).image)

    second, first = truncate_layers(data, 2), truncate_layers(data, 1)
    assert np.array_equal(decoded(second, "generative"), decoded(second, "direct"))  # t = 0: no diffusion
    assert not np.array_equal(decoded(first, "generative"), decoded(first, "direct"))


def test_a_start_timestep_past_the_schedule_is_a_stream_error(generative_codec):
    layered = generative_codec.encode(natural_image(), quality=50, layers=2).data
    stream = Stream.from_bytes(truncate_layers(layered, 1))
    sections = []
    for section in stream.sections:
        if section.kind == SectionKind.LAYER:
            number, offset = get_varint(section.payload, 0, "number")
            _, offset = get_varint(section.payload, offset, "start")
            section = Section(SectionKind.LAYER, put_varint(number) + put_varint(5000) + section.payload[offset:])
        sections.append(section)
    with pytest.raises(StreamError, match="start timestep 5000"):
        generative_codec.decode(stream.with_sections(sections).to_bytes())


def test_layer_errors_are_clear(tiny_codec):
    image = natural_image()
    with pytest.raises(InputError, match="between 2 and 9"):
        tiny_codec.encode(image, layers=12)
    plain = tiny_codec.encode(image, quality=10).data
    with pytest.raises(InputError, match="no layers"):
        truncate_layers(plain, 1)
    layered = tiny_codec.encode(image, quality=10, layers=3).data
    with pytest.raises(InputError, match="has 3 layers"):
        truncate_layers(layered, 4)


def test_cli_layers_truncate_and_info(tmp_path, tiny_bundle, image_file, capsys):
    full, part = tmp_path / "l.vcx", tmp_path / "p.vcx"
    assert main(["compress", str(image_file), "-o", str(full), "--layers", "3", "--model", str(tiny_bundle)]) == 0
    assert main(["truncate", str(full), "--layers", "2", "-o", str(part)]) == 0
    capsys.readouterr()
    assert main(["info", str(full), "--json"]) == 0
    layers = json.loads(capsys.readouterr().out)["layers"]
    assert [row["kind"] for row in layers] == ["palette", "palette", "latent codec"]
    assert layers[1]["prefix_bytes"] == part.stat().st_size
    assert main(["decompress", str(part), "-o", str(tmp_path / "p.png"), "--model", str(tiny_bundle)]) == 0
