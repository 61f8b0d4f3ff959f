"""The promise of docs/api.md, "Determinism": a stream decodes to the same symbols everywhere, to the
identical image on every run in one process and in batch mode, and within the stated tolerance in
another process or on another thread count (float kernels may round differently there)."""

import hashlib
import io
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import natural_image
from test_stored_streams import assert_pixels_close
from versacodec.codec.symbols import symbols_sha256
from versacodec.determinism import reproducible_inference
from versacodec.interfaces.batch import BatchSettings, run_batch

# Decodes one stream with 1 and then 3 torch threads in a fresh process; prints the symbols' hash
# and saves both images' pixels.
DECODE_SCRIPT = """
import sys, numpy as np, torch
from versacodec.codec import Codec
from versacodec.codec.symbols import symbols_sha256
codec = Codec.from_pretrained(sys.argv[1])
data = open(sys.argv[2], 'rb').read()
print(symbols_sha256(codec, data))
for threads in (1, 3):
    torch.set_num_threads(threads)
    np.save(f"{sys.argv[4]}-{threads}.npy", np.asarray(codec.decode(data, steps=int(sys.argv[3])).image))
"""


def png_digest(image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def test_generative_decoding_keeps_the_promise_across_runs_processes_and_threads(generative_codec,
                                                                                  generative_bundle, tmp_path):
    # Two DDIM steps: several denoising passes with guidance, on a tiny prior.
    data = generative_codec.encode(natural_image(64, 48), quality=70, seed=5, tags=[207, 1]).data
    stream = tmp_path / "g.vcx"
    stream.write_bytes(data)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        here = generative_codec.decode(data, steps=2).image
        assert png_digest(generative_codec.decode(data, steps=2).image) == png_digest(here)  # run to run
    finally:
        torch.set_num_threads(threads)
    result = subprocess.run([sys.executable, "-c", DECODE_SCRIPT, str(generative_bundle), str(stream), "2",
                             str(tmp_path / "decoded")], capture_output=True, text=True, check=True, timeout=180)
    assert result.stdout.split() == [symbols_sha256(generative_codec, data)]
    for count in (1, 3):
        assert_pixels_close(here, np.load(tmp_path / f"decoded-{count}.npy"), f"another process, {count} threads")


def test_batch_decode_equals_single_decode(tiny_codec, tiny_bundle, tmp_path):
    streams = tmp_path / "streams"
    streams.mkdir()
    for index in range(3):
        (streams / f"s{index}.vcx").write_bytes(tiny_codec.encode(natural_image(72, 56, seed=index),
                                                                    quality=30 + 20 * index).data)
    report = run_batch(streams, tmp_path / "decoded", BatchSettings(model=str(tiny_bundle), decode=True))
    assert report.count("ok") == 3
    for stream in streams.glob("*.vcx"):
        single = tiny_codec.decode(stream.read_bytes()).image
        batch = tmp_path / "decoded" / stream.with_suffix(".png").name
        assert png_digest(single) == hashlib.sha256(batch.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", ["silu", "sigmoid", "gelu", "small product", "1x1 convolution",
                                  "3x3 convolution"])
def test_thread_sensitive_kernels_give_one_result(name):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(100003, generator=generator) * 3  # per-thread chunks end off the vector width
    left, right = torch.randn(2, 5, 32, generator=generator), torch.randn(32, 32, generator=generator)
    # Shapes of the generative decoder's convolutions whose oneDNN results depended on the thread count.
    feature = torch.randn(2, 128, 16, 24, generator=generator)
    kernels = {size: torch.randn(128, 128, size, size, generator=generator) / (128 * size) for size in (1, 3)}

    def convolution(size):
        return (lambda _: F.conv2d(feature, kernels[size], padding=size // 2),
                lambda _: F.conv2d(feature.double(), kernels[size].double(), padding=size // 2))

    product = (lambda _: F.linear(left, right), lambda _: left.double() @ right.double().T)
    op, reference = {"silu": (F.silu, F.silu), "sigmoid": (torch.sigmoid, torch.sigmoid), "gelu": (F.gelu, F.gelu),
                     "small product": product, "1x1 convolution": convolution(1),
                     "3x3 convolution": convolution(3)}[name]
    threads = torch.get_num_threads()
    results = []
    try:
        with reproducible_inference():
            for count in (1, 2, 3):
                torch.set_num_threads(count)
                results.append(op(x))
    finally:
        torch.set_num_threads(threads)
    # The rerouted kernels are thread-invariant by construction; oneDNN's 3x3 convolutions were one result
    # on every thread count where measured, which is oneDNN's behaviour on that CPU, not a promise.
    if name == "3x3 convolution":
        assert all(torch.allclose(results[0], other, atol=1e-6, rtol=1e-5) for other in results[1:])
    else:
        assert all(torch.equal(results[0], other) for other in results[1:])
    assert torch.allclose(results[0].double(), reference(x.double()), atol=1e-6, rtol=1e-5)  # float64 reference
    assert torch.get_num_threads() == threads
