"""Bit-exact decoding: oneDNN convolutions give thread-count-dependent float32 results, the
native kernels do not, so decoding paths run with oneDNN switched off."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def reproducible_inference() -> Iterator[None]:
    previous = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        with torch.inference_mode():
            yield
    finally:
        torch.backends.mkldnn.enabled = previous
