"""Robustness: mutated and truncated streams give only the typed error (never another exception, never
a hang), limits are configurable, huge declared images are refused before allocation, large inputs
are tiled. benchmarks/fuzz.py runs the same mutations 10,000 times."""

import contextlib
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import natural_image
from versacodec.codec import Codec
from versacodec.container.format import Stream, StreamHeader
from versacodec.container.mutate import EDIT_KINDS, FIELDS, SECTION_OPS, ByteEdit, Mutation, mutate
from versacodec.errors import InputError, StreamError, VersacodecError
from versacodec.interfaces.cli import main

# Tight limits keep every decode of a damaged stream small; the checks that enforce them are under test.
MAX_PIXELS = 1 << 13
# The deadline only catches a case that runs away: a generative decode takes 7 s on two cores shared with
# training jobs, which is a slow machine, not a failure.
FUZZ = settings(deadline=60_000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

edits = st.lists(st.builds(ByteEdit, st.sampled_from(EDIT_KINDS), st.integers(0, 1 << 16), st.integers(1, 64),
                           st.integers(0, 255)), min_size=1, max_size=3).map(tuple)
field_values = st.tuples(st.sampled_from(FIELDS), st.one_of(st.integers(0, 300), st.integers(0, (1 << 35) + 1)))
mutations = st.one_of(
    st.builds(Mutation, st.sampled_from(("raw", "header", "payload")), edits, section=st.integers(0, 7)),
    st.builds(Mutation, st.just("section"), section=st.integers(0, 7), section_op=st.sampled_from(SECTION_OPS),
              kind=st.integers(0, 255), flags=st.integers(0, 255)),
    st.builds(Mutation, st.just("fields"), fields=st.lists(field_values, min_size=1, max_size=2).map(tuple)),
)


@pytest.fixture(scope="module")
def fuzz_codec(tiny_bundle):
    return Codec.from_pretrained(tiny_bundle, max_pixels=MAX_PIXELS)


@pytest.fixture(scope="module")
def streams(fuzz_codec, generative_codec):
    """Valid streams to damage: direct (RGB and greyscale) and generative with tags."""
    return {
        "direct": fuzz_codec.encode(natural_image(64, 48), quality=60).data,
        "grey": fuzz_codec.encode(natural_image(40, 72, seed=2).convert("L"), quality=20).data,
        "generative": generative_codec.encode(natural_image(48, 40), quality=50, tags=[3, 999]).data,
    }


def expect_typed_error_only(function, *args):
    """Return normally or raise a VersacodecError; anything else fails the test with the mutation shown."""
    try:
        return function(*args)
    except VersacodecError:
        return None


@FUZZ
@given(mutation=mutations, which=st.sampled_from(("direct", "grey", "generative")))
def test_parser_accepts_or_raises_stream_error(streams, mutation, which):
    data = mutate(streams[which], mutation, donor=streams["direct"])
    with contextlib.suppress(StreamError):
        Stream.from_bytes(data, max_pixels=MAX_PIXELS)


@settings(FUZZ, max_examples=150)
@given(data=st.binary(max_size=200), truncate=st.integers(0, 400))
def test_parser_on_arbitrary_bytes_and_truncations(streams, data, truncate):
    for candidate in (data, b"\x89VCX" + data, streams["direct"][:truncate], streams["generative"][:truncate]):
        expect_typed_error_only(Stream.from_bytes, candidate)


@settings(FUZZ, max_examples=60)
@given(mutation=mutations, which=st.sampled_from(("direct", "grey")))
def test_direct_decode_of_damaged_streams(fuzz_codec, streams, mutation, which):
    decoded = expect_typed_error_only(fuzz_codec.decode, mutate(streams[which], mutation, streams["direct"]))
    if decoded is not None:  # undetectable damage (entropy-coded data has no redundancy): a well-formed image
        assert decoded.image.size == (decoded.header.width, decoded.header.height)


@settings(FUZZ, max_examples=25)
@given(mutation=mutations)
def test_generative_decode_of_damaged_streams(generative_codec, streams, mutation):
    expect_typed_error_only(generative_codec.decode, mutate(streams["generative"], mutation, streams["direct"]))


@settings(FUZZ, max_examples=25)
@given(mutation=mutations)
def test_cli_decompress_exits_0_or_2(streams, tiny_bundle, tmp_path_factory, monkeypatch, capsys, mutation):
    monkeypatch.setenv("VERSACODEC_MAX_PIXELS", str(MAX_PIXELS))
    folder = tmp_path_factory.mktemp("cli")
    source, output = folder / "in.vcx", folder / "out.png"
    source.write_bytes(mutate(streams["direct"], mutation, streams["grey"]))
    code = main(["decompress", str(source), "-o", str(output), "--model", str(tiny_bundle)])
    err = capsys.readouterr().err
    assert code == 0 or (code == 2 and err.startswith("versacodec: error:") and not output.exists())


def test_limits_are_configurable(monkeypatch, fuzz_codec):
    stream = Stream.from_bytes(natural_stream := fuzz_codec.encode(natural_image(64, 48), quality=10).data)
    with pytest.raises(StreamError, match="sections exceeds the limit of 1"):
        Stream.from_bytes(natural_stream, max_sections=1)
    monkeypatch.setenv("VERSACODEC_MAX_SECTIONS", "1")
    with pytest.raises(StreamError, match="VERSACODEC_MAX_SECTIONS"):
        Stream.from_bytes(natural_stream)
    monkeypatch.setenv("VERSACODEC_MAX_PIXELS", "lots")
    with pytest.raises(InputError, match="VERSACODEC_MAX_PIXELS"):
        Stream.from_bytes(natural_stream)
    monkeypatch.delenv("VERSACODEC_MAX_SECTIONS")
    monkeypatch.setenv("VERSACODEC_MAX_PIXELS", "1000")
    monkeypatch.setenv("VERSACODEC_MAX_MEMORY", "64M")
    codec = Codec.from_pretrained(fuzz_codec.model.root)
    assert (codec.model.max_pixels, codec.model.max_memory) == (1000, 64 << 20)
    with pytest.raises(StreamError, match="pixel limit 1000"):
        codec.decode(natural_stream)
    monkeypatch.setenv("VERSACODEC_MAX_MEMORY", "a lot")
    with pytest.raises(InputError, match="VERSACODEC_MAX_MEMORY"):
        Codec.from_pretrained(fuzz_codec.model.root)
    assert stream.header.width == 64


def test_memory_guard_refuses_before_allocating(fuzz_codec):
    codec = Codec.from_pretrained(fuzz_codec.model.root, max_memory=16 << 20)
    with pytest.raises(InputError, match="memory limit"):
        codec.encode(natural_image(640, 480), quality=10)
    huge = Stream.from_bytes(codec.encode(natural_image(64, 64), quality=10).data)
    huge.header = StreamHeader(**{**huge.header.__dict__, "width": 16000, "height": 16000})
    with pytest.raises(StreamError, match="memory limit"):
        Codec.from_pretrained(fuzz_codec.model.root, max_memory=1 << 30).decode(huge.to_bytes())


# Decodes a stream declaring 16000x16000 under a 2 GiB limit (refused), then a real 768x512 image;
# prints the peak-RSS growth of each and the codec's estimate for the real one.
MEMORY_SCRIPT = """
import sys
from versacodec.codec import Codec
from versacodec.errors import StreamError
from versacodec.limits import peak_memory as peak
codec = Codec.from_pretrained(sys.argv[1], max_memory=2 << 30)
huge, real = open(sys.argv[2], 'rb').read(), open(sys.argv[3], 'rb').read()
codec.decode(open(sys.argv[4], 'rb').read())  # warm up at a small size
start = peak()
try:
    codec.decode(huge)
    raise SystemExit('huge stream decoded')
except StreamError:
    pass
refused = peak() - start
codec.decode(real)
print(refused, peak() - start, codec.model.working_memory(768, 512))
"""


def test_decode_memory_stays_bounded_and_below_the_estimate(tiny_codec, tiny_bundle, tmp_path):
    real = tiny_codec.encode(natural_image(768, 512), quality=50).data
    huge = Stream.from_bytes(real)
    huge.header = StreamHeader(**{**huge.header.__dict__, "width": 16000, "height": 16000})
    paths = [tmp_path / name for name in ("huge.vcx", "real.vcx", "small.vcx")]
    paths[0].write_bytes(huge.to_bytes())
    paths[1].write_bytes(real)
    paths[2].write_bytes(tiny_codec.encode(natural_image(32, 32), quality=5).data)
    result = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(tiny_bundle), *map(str, paths)],
                            capture_output=True, text=True, check=True, timeout=120)
    refused, decoded, estimate = map(int, result.stdout.split())
    assert refused < 16 << 20  # nothing of the declared size was allocated
    assert decoded <= estimate


def test_large_images_are_encoded_in_tiles(tiny_codec):
    # 900 pixels pad to 960: 120 latent pixels, more than one 96-pixel tile.
    image = natural_image(900, 120)
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)[None]
    padded = torch.nn.functional.pad(pixels, (0, 60, 0, 8), mode="reflect")
    with torch.inference_mode():
        tiled = tiny_codec.model.encode_pixels(padded)
        whole = tiny_codec.model.latent_space.encode(padded)
    assert tiled.shape == whole.shape == (1, 4, 16, 120)
    assert (tiled - whole).abs().mean() < 0.02 * whole.std()  # seams blend away
    encoded = tiny_codec.encode(image, quality=20)
    assert tiny_codec.decode(encoded.data).image.size == (900, 120)
