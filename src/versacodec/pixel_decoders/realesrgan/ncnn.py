"""Reader of ncnn model files (`.param` text graph + `.bin` weights), without the ncnn runtime.

Real-ESRGAN's released weights reach us in ncnn's format only. This module parses the graph and
the weights into numpy arrays (`read_ncnn`), evaluates the graph with torch for reference
(`NcnnGraph.run`, used to check the plain modules in `networks.py`), and copies the weights of
its convolutions and PReLUs, in graph order, into a torch module (`load_into`).

Format (ncnn's `ParamDict` / `ModelBin`): the `.param` file is a magic line `7767517`, a line
with the layer and blob counts, then one line per layer: type, name, input count, output count,
input blob names, output blob names, then `key=value` options (a negative key -23300-k holds an
array `count,v1,v2,...` for option k). The `.bin` file holds, per layer in order, what that layer
type loads: a Convolution its weights (a 4-byte tag: 0x01306B47 float16, 0 float32; float16 data
padded to 4 bytes), then float32 bias when option 5 is set; a PReLU its float32 slopes. The file
must be consumed exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from versacodec.errors import ModelError

MAGIC = "7767517"
FLOAT16_TAG = 0x01306B47
FLOAT32_TAG = 0
ARRAY_KEY_BASE = -23300
# Layer types this reader evaluates; a graph with any other type is refused by name.
SUPPORTED = frozenset({"Input", "Split", "Convolution", "PReLU", "ReLU", "PixelShuffle", "Interp",
                       "BinaryOp", "Eltwise", "Concat"})
# Convolution option 9 (fused activation) → function of (x, option 10's parameters).
ACTIVATIONS = {0: lambda x, p: x, 1: lambda x, p: F.relu(x),
               2: lambda x, p: F.leaky_relu(x, p[0] if p else 0.0)}


@dataclass
class NcnnLayer:
    kind: str
    name: str
    inputs: list[str]
    outputs: list[str]
    options: dict[int, float | int | list[float]]
    weights: dict[str, np.ndarray] = field(default_factory=dict)

    def option(self, key: int, default=0):
        return self.options.get(key, default)


@dataclass
class NcnnGraph:
    layers: list[NcnnLayer]

    def of_kind(self, *kinds: str) -> list[NcnnLayer]:
        return [layer for layer in self.layers if layer.kind in kinds]

    @property
    def parameter_count(self) -> int:
        return sum(w.size for layer in self.layers for w in layer.weights.values())

    @torch.no_grad()
    def run(self, image: torch.Tensor) -> torch.Tensor:
        """Evaluate the graph on (N, 3, H, W) input; returns its last layer's output."""
        blobs: dict[str, torch.Tensor] = {}
        for layer in self.layers:
            inputs = [blobs[name] for name in layer.inputs]
            outputs = _evaluate(layer, inputs, image)
            blobs.update(zip(layer.outputs, outputs, strict=True))
        return blobs[self.layers[-1].outputs[0]]


def _parse_value(text: str) -> float | int:
    return float(text) if any(c in text for c in ".eE") else int(text)


def _parse_options(tokens: list[str], where: str) -> dict[int, float | int | list[float]]:
    options: dict[int, float | int | list[float]] = {}
    for token in tokens:
        key_text, sep, value_text = token.partition("=")
        try:
            key = int(key_text)
            if not sep:
                raise ValueError(token)
            if key <= ARRAY_KEY_BASE:
                count, *values = value_text.split(",")
                if int(count) != len(values):
                    raise ValueError(token)
                options[ARRAY_KEY_BASE - key] = [float(v) for v in values]
            else:
                options[key] = _parse_value(value_text)
        except ValueError as exc:
            raise ModelError(f"{where}: unreadable option '{token}'") from exc
    return options


def read_param(path: Path) -> list[NcnnLayer]:
    try:
        lines = path.read_text().split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: unreadable ncnn graph ({exc})") from exc
    lines = [line for line in lines if line.strip()]
    if not lines or lines[0].strip() != MAGIC:
        raise ModelError(f"{path}: not an ncnn .param file (magic {MAGIC} missing)")
    try:
        layer_count, _blob_count = (int(v) for v in lines[1].split())
    except (IndexError, ValueError) as exc:
        raise ModelError(f"{path}: the layer and blob counts are unreadable") from exc
    if len(lines) - 2 != layer_count:
        raise ModelError(f"{path}: declares {layer_count} layers but holds {len(lines) - 2}")
    layers = []
    for number, line in enumerate(lines[2:], start=3):
        tokens = line.split()
        where = f"{path}:{number}"
        try:
            kind, name, n_in, n_out = tokens[0], tokens[1], int(tokens[2]), int(tokens[3])
        except (IndexError, ValueError) as exc:
            raise ModelError(f"{where}: unreadable layer line") from exc
        if kind not in SUPPORTED:
            raise ModelError(f"{where}: layer type {kind} is not supported by this reader")
        blobs = tokens[4: 4 + n_in + n_out]
        if len(blobs) != n_in + n_out:
            raise ModelError(f"{where}: layer {name} lists fewer blobs than it declares")
        layers.append(NcnnLayer(kind, name, blobs[:n_in], blobs[n_in:],
                                _parse_options(tokens[4 + n_in + n_out:], where)))
    return layers


class _WeightReader:
    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.offset, self.path = data, 0, path

    def take(self, count: int) -> bytes:
        if self.offset + count > len(self.data):
            raise ModelError(f"{self.path}: ends early (needs {self.offset + count} bytes, has {len(self.data)})")
        chunk = self.data[self.offset: self.offset + count]
        self.offset += count
        return chunk

    def raw_float32(self, count: int) -> np.ndarray:
        return np.frombuffer(self.take(4 * count), dtype="<f4").copy()

    def tagged(self, count: int, layer: str) -> np.ndarray:
        tag = int.from_bytes(self.take(4), "little")
        if tag == FLOAT16_TAG:
            values = np.frombuffer(self.take(2 * count), dtype="<f2").astype(np.float32)
            self.take((-2 * count) % 4)  # float16 arrays are padded to 4 bytes
            return values
        if tag == FLOAT32_TAG:
            return self.raw_float32(count)
        raise ModelError(f"{self.path}: layer {layer} has weight storage tag {tag:#x}, which this reader does not read")


def read_ncnn(param_path: str | Path, bin_path: str | Path) -> NcnnGraph:
    """Parse an ncnn model; every weight array is float32, convolutions as OIHW."""
    param_path, bin_path = Path(param_path), Path(bin_path)
    layers = read_param(param_path)
    try:
        reader = _WeightReader(bin_path.read_bytes(), bin_path)
    except OSError as exc:
        raise ModelError(f"{bin_path}: unreadable ncnn weights ({exc})") from exc
    for layer in layers:
        if layer.kind == "Convolution":
            out_channels, kernel, count = (int(layer.option(k)) for k in (0, 1, 6))
            in_channels, rest = divmod(count, max(out_channels * kernel * kernel, 1))
            if out_channels <= 0 or kernel <= 0 or rest or in_channels <= 0:
                raise ModelError(f"{param_path}: convolution {layer.name} has an impossible shape "
                                 f"({count} weights for {out_channels} outputs of {kernel}x{kernel})")
            weight = reader.tagged(count, layer.name).reshape(out_channels, in_channels, kernel, kernel)
            layer.weights["weight"] = weight
            if layer.option(5):
                layer.weights["bias"] = reader.raw_float32(out_channels)
        elif layer.kind == "PReLU":
            layer.weights["slope"] = reader.raw_float32(int(layer.option(0)))
    if reader.offset != len(reader.data):
        raise ModelError(f"{bin_path}: {len(reader.data) - reader.offset} bytes left after the last layer "
                         f"(the .bin does not match {param_path.name})")
    return NcnnGraph(layers)


def _evaluate(layer: NcnnLayer, inputs: list[torch.Tensor], image: torch.Tensor) -> list[torch.Tensor]:
    kind, option = layer.kind, layer.option
    if kind == "Input":
        return [image]
    if kind == "Split":
        return [inputs[0]] * len(layer.outputs)
    if kind == "Convolution":
        weight = torch.from_numpy(layer.weights["weight"])
        bias = torch.from_numpy(layer.weights["bias"]) if "bias" in layer.weights else None
        out = F.conv2d(inputs[0], weight, bias, stride=int(option(3, 1)), padding=int(option(4, 0)),
                       dilation=int(option(2, 1)))
        activation = int(option(9, 0))
        if activation not in ACTIVATIONS:
            raise ModelError(f"convolution {layer.name}: fused activation {activation} is not supported")
        return [ACTIVATIONS[activation](out, option(10, []))]
    if kind == "PReLU":
        return [F.prelu(inputs[0], torch.from_numpy(layer.weights["slope"]))]
    if kind == "ReLU":
        return [F.leaky_relu(inputs[0], float(option(0, 0.0)))]
    if kind == "PixelShuffle":
        if int(option(1, 0)) != 0:
            raise ModelError(f"pixel shuffle {layer.name}: only ncnn's mode 0 (torch's order) is supported")
        return [F.pixel_shuffle(inputs[0], int(option(0, 1)))]
    if kind == "Interp":
        if int(option(0, 0)) != 1:
            raise ModelError(f"interp {layer.name}: only nearest resizing (type 1) is supported")
        return [F.interpolate(inputs[0], scale_factor=(float(option(1, 1.0)), float(option(2, 1.0))),
                              mode="nearest")]
    if kind == "Concat":
        return [torch.cat(inputs, dim=1)]
    if kind == "Eltwise":
        if int(option(0, 1)) != 1:
            raise ModelError(f"eltwise {layer.name}: only sums (operation 1) are supported")
        coefficients = option(1, [1.0] * len(inputs))
        return [sum(c * x for c, x in zip(coefficients, inputs, strict=True))]
    # BinaryOp: only the plain two-input addition Real-ESRGAN uses
    if int(option(0, 0)) != 0 or int(option(1, 0)) != 0 or len(inputs) != 2:
        raise ModelError(f"binary op {layer.name}: only the two-input addition is supported")
    return [inputs[0] + inputs[1]]


def load_into(graph: NcnnGraph, module: nn.Module) -> None:
    """Copy the graph's convolution and PReLU weights, in graph order, into the module's Conv2d and
    PReLU layers in registration order; every count and shape must match."""
    sources = graph.of_kind("Convolution", "PReLU")
    targets = [m for m in module.modules() if isinstance(m, nn.Conv2d | nn.PReLU)]
    if len(sources) != len(targets):
        raise ModelError(f"the ncnn graph has {len(sources)} convolutions and PReLUs, "
                         f"{type(module).__name__} has {len(targets)}")
    with torch.no_grad():
        for source, target in zip(sources, targets, strict=True):
            pairs = ([("weight", "weight"), ("bias", "bias")] if isinstance(target, nn.Conv2d)
                     else [("slope", "weight")])
            if (source.kind == "Convolution") != isinstance(target, nn.Conv2d):
                raise ModelError(f"ncnn layer {source.name} ({source.kind}) meets a {type(target).__name__}")
            for key, attribute in pairs:
                parameter = getattr(target, attribute)
                if (key in source.weights) != (parameter is not None):
                    raise ModelError(f"ncnn layer {source.name}: bias presence differs from the module's")
                if parameter is None:
                    continue
                values = torch.from_numpy(source.weights[key])
                if values.shape != parameter.shape:
                    raise ModelError(f"ncnn layer {source.name}: {key} of shape {tuple(values.shape)}, "
                                     f"the module expects {tuple(parameter.shape)}")
                parameter.copy_(values)
