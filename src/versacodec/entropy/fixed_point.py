"""Exact fixed-point inference for the networks whose outputs choose probability tables.

Training runs these layers as ordinary float convolutions. For coding, `exact_mode()` makes
them compute on integers carried in float64: weights are rounded to multiples of 2**-WEIGHT_BITS,
activations to 2**-ACTIVATION_BITS, and every product and partial sum is an integer below 2**53,
which float64 represents exactly whatever the summation order. The result is therefore the same
on every machine, thread count and batch size, so the decoder always selects the encoder's
tables. Only ReLU appears between such layers: it maps grid values to grid values exactly.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

WEIGHT_BITS = 14
ACTIVATION_BITS = 8
# |activation| ≤ 2**12 and |weight| ≤ 2**4 bound each integer product by 2**(20+18); sums over at
# most MAX_TAPS = 2**14 products stay below 2**53, the limit of exact float64 integers.
ACTIVATION_LIMIT = float(2**12)
WEIGHT_LIMIT = float(2**4)
MAX_TAPS = 2**14

_state = threading.local()


def is_exact() -> bool:
    return getattr(_state, "exact", False)


@contextlib.contextmanager
def exact_mode() -> Iterator[None]:
    previous = is_exact()
    _state.exact = True
    try:
        with torch.no_grad():
            yield
    finally:
        _state.exact = previous


def to_grid(x: torch.Tensor, bits: int = ACTIVATION_BITS) -> torch.Tensor:
    """Float64 values rounded to multiples of 2**-bits and clamped to the safe range."""
    scale = float(2**bits)
    return torch.round(x.double().clamp(-ACTIVATION_LIMIT, ACTIVATION_LIMIT) * scale) / scale


def _integer_weights(layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Weights and bias as exact integers, cached until the parameters change."""
    key = (layer.weight._version, layer.weight.data_ptr(),
           None if layer.bias is None else (layer.bias._version, layer.bias.data_ptr()))
    cached = getattr(layer, "_integer_cache", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    taps = layer.weight[0].numel() if isinstance(layer, nn.Conv2d) else layer.weight[:, 0].numel()
    if taps > MAX_TAPS:
        raise ValueError(f"{type(layer).__name__} sums {taps} products; exact mode allows {MAX_TAPS}")
    scale = float(2**WEIGHT_BITS)
    weight = torch.round(layer.weight.detach().double().clamp(-WEIGHT_LIMIT, WEIGHT_LIMIT) * scale)
    bias = None
    if layer.bias is not None:
        bias = torch.round(layer.bias.detach().double() * float(2 ** (WEIGHT_BITS + ACTIVATION_BITS)))
    layer._integer_cache = (key, (weight, bias))
    return weight, bias


def _rescale(accumulator: torch.Tensor) -> torch.Tensor:
    return to_grid(accumulator * float(2 ** -(WEIGHT_BITS + ACTIVATION_BITS)))


class CodingConv2d(nn.Conv2d):
    """Conv2d that runs exactly under `exact_mode()`; inputs must already be on the grid."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not is_exact():
            return super().forward(x)
        weight, bias = _integer_weights(self)
        accumulator = F.conv2d(torch.round(x * float(2**ACTIVATION_BITS)), weight, bias, self.stride,
                               self.padding, self.dilation, self.groups)
        return _rescale(accumulator)


class CodingConvTranspose2d(nn.ConvTranspose2d):
    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        if not is_exact():
            return super().forward(x, output_size)
        weight, bias = _integer_weights(self)
        accumulator = F.conv_transpose2d(torch.round(x * float(2**ACTIVATION_BITS)), weight, bias,
                                         self.stride, self.padding, self.output_padding, self.groups,
                                         self.dilation)
        return _rescale(accumulator)
