import pytest

from versacodec.container.format import (
    MAGIC,
    SECTION_CRITICAL,
    ColourMode,
    Section,
    SectionKind,
    Stream,
    StreamHeader,
)
from versacodec.errors import StreamError


def make_stream(**overrides) -> Stream:
    fields = {"width": 768, "height": 512, "model_id": "unit", "weights_hash": bytes(range(8)), "quality": 40,
              "seed": 7, "colour": ColourMode.GREYSCALE, "bit_depth": 16}
    fields.update(overrides)
    return Stream(StreamHeader(**fields), [Section(SectionKind.HYPERPRIOR, b"z" * 10),
                                           Section(SectionKind.LATENT, b"y" * 300)])


def test_round_trip_preserves_header_and_sections():
    stream = make_stream()
    parsed = Stream.from_bytes(stream.to_bytes())
    assert parsed.header == stream.header
    assert [(s.kind, s.payload) for s in parsed.sections] == [(s.kind, s.payload) for s in stream.sections]


def test_size_is_header_plus_sections():
    stream = make_stream()
    assert len(stream.to_bytes()) == len(stream.header_bytes()) + sum(s.coded_size for s in stream.sections)


@pytest.mark.parametrize(("data", "message"), [
    (b"", "wrong magic"),
    (b"GIF89a" + bytes(40), "wrong magic"),
    (MAGIC + b"\x01", "truncated"),
])
def test_garbage_is_rejected(data, message):
    with pytest.raises(StreamError, match=message):
        Stream.from_bytes(data)


def test_future_major_version_is_refused_with_upgrade_hint():
    data = bytearray(make_stream().to_bytes())
    data[4] = 9  # major version byte
    with pytest.raises(StreamError, match=r"version 9\.0 is not supported"):
        Stream.from_bytes(bytes(data))


def test_pixel_limit_is_configurable():
    data = make_stream(width=100_000, height=100_000).to_bytes()
    with pytest.raises(StreamError, match="pixel limit"):
        Stream.from_bytes(data)
    small = make_stream().to_bytes()
    with pytest.raises(StreamError, match="pixel limit"):
        Stream.from_bytes(small, max_pixels=1000)


def test_unknown_optional_section_is_skipped_and_critical_one_refused():
    stream = make_stream()
    stream.sections.append(Section(99, b"future data", flags=0))
    parsed = Stream.from_bytes(stream.to_bytes())
    assert [s.kind for s in parsed.sections] == [SectionKind.HYPERPRIOR, SectionKind.LATENT]
    stream.sections[-1] = Section(99, b"future data", flags=SECTION_CRITICAL)
    with pytest.raises(StreamError, match="required but unknown"):
        Stream.from_bytes(stream.to_bytes())


def test_every_single_byte_flip_and_truncation_is_detected():
    data = make_stream().to_bytes()
    for position in range(len(data)):
        corrupted = bytearray(data)
        corrupted[position] ^= 0x5A
        with pytest.raises(StreamError):
            Stream.from_bytes(bytes(corrupted))
    for length in range(len(data)):
        with pytest.raises(StreamError):
            Stream.from_bytes(data[:length])


def test_the_writer_refuses_what_the_reader_cannot_read_back():
    from versacodec.container.format import MAX_VARINT, get_varint, put_varint
    from versacodec.container.mutate import Mutation, mutate

    assert get_varint(put_varint(MAX_VARINT), 0, "x") == (MAX_VARINT, 5)
    with pytest.raises(ValueError, match="outside"):
        put_varint(MAX_VARINT + 1)
    header = StreamHeader(64, 48, "m", b"\0" * 8, 40, seed=3)
    data = Stream(header, [Section(SectionKind.HYPERPRIOR, b"z")]).to_bytes()
    damaged = mutate(data, Mutation("fields", fields=(("width", 1 << 40), ("seed", 1 << 36))))
    assert Stream.from_bytes(damaged, max_pixels=1 << 62).header.seed == MAX_VARINT
