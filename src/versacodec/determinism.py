"""Decoding that depends as little as it can on the thread count.

On the CPUs measured this makes a decode bit-exact on any thread count; it cannot make the float
networks agree across instruction sets (AVX-512, AVX2, SSE round differently), so docs/api.md
("Determinism") promises the entropy-decoded symbols exactly and the pixels within a tolerance.

Three kinds of CPU kernels give float32 results that depend on how many threads share the work:
- oneDNN's 1×1 convolutions (measured: the 3×3 ones give one result on 1, 2 and 3 threads, the
  1×1 ones do not). Those run on torch's native kernel; every other convolution keeps oneDNN,
  which is about three times faster than the native kernels here.
- sigmoid, SiLU and GELU: torch's vectorised and scalar (tail) loops round differently, and where
  one thread's chunk ends decides which elements take the tail. They are recomputed from exp, erfc,
  tanh and arithmetic, whose vectorised and scalar loops agree.
- MKL's matrix products with few rows (5-11 measured) pick kernels by thread count. Products with
  fewer than SMALL_PRODUCT_ROWS rows run on one thread: they are too small to gain from more.
The rerouting is a torch function mode, so it applies to every network run inside the context
(our own and diffusers'), on this thread only. The entropy model does not rely on any of this: it
computes in exact fixed point (`entropy.fixed_point`), so encoder and decoder agree on any machine.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

SMALL_PRODUCT_ROWS = 64


def _sigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.reciprocal(torch.exp(torch.neg(x)) + 1)


def _silu(x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    result = x / (torch.exp(torch.neg(x)) + 1)
    return x.copy_(result) if inplace else result


def _gelu(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    if approximate == "tanh":
        inner = (x + 0.044715 * x * x * x) * math.sqrt(2 / math.pi)
        return 0.5 * x * (torch.tanh(inner) + 1)
    return 0.5 * x * torch.erfc(x * -math.sqrt(0.5))  # = 1 + erf(x/√2), without cancellation for x < 0


_ACTIVATIONS: dict[Callable, Callable] = {
    torch.sigmoid: _sigmoid, torch.Tensor.sigmoid: _sigmoid, F.silu: _silu, F.gelu: _gelu,
}
_PRODUCTS = {F.linear, torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.mm, torch.bmm,
             torch.addmm, torch.baddbmm}


def _pointwise_convolution(args: tuple, kwargs: dict) -> bool:
    weight = args[1] if len(args) > 1 else kwargs.get("weight")
    return isinstance(weight, torch.Tensor) and weight.dim() == 4 and weight.shape[-2:] == (1, 1)


def _rows(function: Callable, args: tuple) -> int:
    # The left operand's rows: everything but its last dimension for linear, its second-last otherwise.
    first = args[1] if function in (torch.addmm, torch.baddbmm) else args[0]
    if not isinstance(first, torch.Tensor) or first.dim() == 0:
        return SMALL_PRODUCT_ROWS
    if function is F.linear:
        return first.numel() // max(1, first.shape[-1])
    return first.shape[-2] if first.dim() >= 2 else 1


class _ThreadInvariantOps(TorchFunctionMode):
    def __torch_function__(self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        replacement = _ACTIVATIONS.get(func)
        if replacement is not None and not kwargs.get("out"):
            return replacement(*args, **kwargs)
        if func is F.conv2d and _pointwise_convolution(args, kwargs):
            with _onednn(False):
                return func(*args, **kwargs)
        if func in _PRODUCTS and _rows(func, args) < SMALL_PRODUCT_ROWS:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                return func(*args, **kwargs)
            finally:
                torch.set_num_threads(threads)
        return func(*args, **kwargs)


@contextlib.contextmanager
def _onednn(enabled: bool) -> Iterator[None]:
    previous = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = enabled
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = previous


@contextlib.contextmanager
def reproducible_inference() -> Iterator[None]:
    with _onednn(True), torch.inference_mode(), _ThreadInvariantOps():
        yield
