import pytest

from versacodec.container.format import (
    FORMAT_VERSION,
    MAGIC,
    SECTION_CRITICAL,
    ColourMode,
    Section,
    SectionKind,
    Stream,
    StreamHeader,
)
from versacodec.errors import StreamError

VERSIONS = [(1, 0), FORMAT_VERSION]


def make_stream(version=FORMAT_VERSION, **overrides) -> Stream:
    # 1.x headers carry the model's name and 8 bytes of its hash, 2.x 4 bytes and no name.
    identity = {"model_id": "unit", "weights_hash": bytes(range(8))} if version[0] == 1 else {
        "model_id": "", "weights_hash": bytes(range(4))}
    fields = {"width": 768, "height": 512, **identity, "quality": 40, "seed": 7, "colour": ColourMode.GREYSCALE,
              "bit_depth": 16}
    fields.update(overrides)
    return Stream(StreamHeader(**fields), [Section(SectionKind.HYPERPRIOR, b"z" * 10),
                                           Section(SectionKind.LATENT, b"y" * 300)], version)


@pytest.mark.parametrize("version", VERSIONS)
def test_round_trip_preserves_header_sections_and_version(version):
    stream = make_stream(version)
    data = stream.to_bytes()
    parsed = Stream.from_bytes(data)
    assert parsed.header == stream.header and parsed.version == version
    assert [(s.kind, s.payload) for s in parsed.sections] == [(s.kind, s.payload) for s in stream.sections]
    assert parsed.to_bytes() == data  # a stream is written back in the version it was read in


@pytest.mark.parametrize("version", VERSIONS)
def test_size_is_header_plus_sections_plus_checksum(version):
    stream = make_stream(version)
    sizes = stream.byte_breakdown()
    assert len(stream.to_bytes()) == (len(stream.header_bytes()) + stream.checksum_bytes()
                                      + sum(s.coded_size(version[0]) for s in stream.sections))
    assert sum(sizes.values()) == len(stream.to_bytes())
    assert sizes["hyperprior"] == 10 and sizes["latent"] == 300


def test_format_2_costs_under_half_the_bytes_of_format_1_around_the_payloads():
    """Issue #27's lower floor: at 0.025 bpp a 640×480 image has 960 bytes in all."""
    def overhead(version):
        named = {"model_id": "versacodec-default-v4"} if version[0] == 1 else {}  # as v4 wrote them
        stream = make_stream(version, width=640, height=480, seed=0, colour=ColourMode.RGB, bit_depth=8, **named)
        stream.sections.insert(0, Section(SectionKind.TAGS, b"\x12\x34", flags=0))
        sizes = stream.byte_breakdown()
        return sizes["header"] + sizes["framing"]

    assert overhead(FORMAT_VERSION) <= 30 < 70 <= overhead((1, 0))


def test_the_format_2_writer_refuses_a_model_name_or_a_long_hash():
    with pytest.raises(ValueError, match="model id"):
        make_stream(model_id="unit").to_bytes()
    with pytest.raises(ValueError, match="4 bytes"):
        make_stream(weights_hash=bytes(8)).to_bytes()
    with pytest.raises(ValueError, match=r"1\.\.127"):
        Stream(make_stream().header, [Section(200, b"x")]).to_bytes()


@pytest.mark.parametrize(("data", "message"), [
    (b"", "wrong magic"),
    (b"GIF89a" + bytes(40), "wrong magic"),
    (MAGIC + b"\x01", "truncated"),
])
def test_garbage_is_rejected(data, message):
    with pytest.raises(StreamError, match=message):
        Stream.from_bytes(data)


@pytest.mark.parametrize("version", VERSIONS)
def test_future_major_version_is_refused_with_upgrade_hint(version):
    data = bytearray(make_stream(version).to_bytes())
    data[4] = 9  # major version byte
    with pytest.raises(StreamError, match=r"version 9\.0 is not supported"):
        Stream.from_bytes(bytes(data))


@pytest.mark.parametrize("version", VERSIONS)
def test_pixel_limit_is_configurable(version):
    data = make_stream(version, width=100_000, height=100_000).to_bytes()
    with pytest.raises(StreamError, match="pixel limit"):
        Stream.from_bytes(data)
    small = make_stream(version).to_bytes()
    with pytest.raises(StreamError, match="pixel limit"):
        Stream.from_bytes(small, max_pixels=1000)


@pytest.mark.parametrize("version", VERSIONS)
def test_unknown_optional_section_is_skipped_and_critical_one_refused(version):
    stream = make_stream(version)
    stream.sections.append(Section(99, b"future data", flags=0))
    parsed = Stream.from_bytes(stream.to_bytes())
    assert [s.kind for s in parsed.sections] == [SectionKind.HYPERPRIOR, SectionKind.LATENT]
    stream.sections[-1] = Section(99, b"future data", flags=SECTION_CRITICAL)
    with pytest.raises(StreamError, match="required but unknown"):
        Stream.from_bytes(stream.to_bytes())


@pytest.mark.parametrize("version", VERSIONS)
def test_every_single_byte_flip_and_truncation_is_detected(version):
    data = make_stream(version).to_bytes()
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
    header = StreamHeader(64, 48, "", b"\0" * 4, 40, seed=3)
    data = Stream(header, [Section(SectionKind.HYPERPRIOR, b"z")]).to_bytes()
    damaged = mutate(data, Mutation("fields", fields=(("width", 1 << 40), ("seed", 1 << 36))))
    assert Stream.from_bytes(damaged, max_pixels=1 << 62).header.seed == MAX_VARINT
