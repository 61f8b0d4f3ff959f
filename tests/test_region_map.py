"""The region map section: label table + bit-packed boxes, checks on corrupt maps, and the v1 layout."""

import pytest

from conftest import natural_image
from versacodec.codec.layout import read_region_sets
from versacodec.container.format import Section, SectionKind, Stream, put_varint
from versacodec.errors import InputError, StreamError
from versacodec.interfaces.inspect import describe
from versacodec.semantics.region_map import RegionSet, pack_region_map, unpack_region_map
from versacodec.semantics.regions import Region

GRID = (27, 40)  # y's grid of a 640x427 COCO image
SETS = [RegionSet("detection", (("person", 0, 0, 40, 27), ("dog", 3, 4, 9, 12), ("person", 39, 26, 40, 27))),
        RegionSet("faces", (("face", 5, 5, 6, 6),)),
        RegionSet("empty", ())]


def _section(payload: bytes) -> Section:
    return Section(SectionKind.REGION_MAP, payload)


def unpack_region_section(section: Section, grid: tuple[int, int] | None = None) -> list[RegionSet]:
    return unpack_region_map(section.payload, grid)


def test_region_sets_round_trip_with_one_label_table_per_set():
    payload = pack_region_map(SETS, GRID)
    assert unpack_region_section(_section(payload), GRID) == SETS
    assert unpack_region_section(_section(payload)) == SETS  # names and labels need no grid
    one_cell = [RegionSet("all", (("x", 0, 0, 1, 1),))]
    assert unpack_region_section(_section(pack_region_map(one_cell, (1, 1))), (1, 1)) == one_cell


def test_a_box_costs_three_bytes_on_a_coco_grid():
    many = [RegionSet("detection", tuple(("person", i % 30, i % 20, i % 30 + 5, i % 20 + 4) for i in range(50)))]
    with_one = [RegionSet("detection", many[0].boxes[:1])]
    per_box = (len(pack_region_map(many, GRID)) - len(pack_region_map(with_one, GRID))) / 49
    assert per_box <= 3  # 22 bits of corners, no label bits in a one-label set (v1 spent 11 bytes)


@pytest.mark.parametrize("corrupt, message", [
    (lambda p: p[:-1], "cut short"),
    (lambda p: p + b"\0", "unexpected bytes"),
    (lambda p: b"\0" + p[1:], "grid is empty"),
])
def test_corrupt_region_maps_are_stream_errors(corrupt, message):
    with pytest.raises(StreamError, match=message):
        unpack_region_section(_section(corrupt(pack_region_map(SETS, GRID))))


def test_names_too_long_for_the_map_are_refused_not_cut():
    long_label = "é" * 128  # 256 bytes: cutting at 255 would split a character
    with pytest.raises(InputError, match="at most 255 bytes"):
        pack_region_map([RegionSet("detection", ((long_label, 0, 0, 1, 1),))], (4, 4))
    with pytest.raises(InputError, match="at most 255 bytes"):
        pack_region_map([RegionSet("n" * 256, (("cat", 0, 0, 1, 1),))], (4, 4))
    label = "é" * 127  # 254 bytes fit
    section = Section(SectionKind.REGION_MAP, pack_region_map([RegionSet("s", ((label, 0, 0, 1, 1),))], (4, 4)))
    assert unpack_region_section(section)[0].boxes[0][0] == label


def test_boxes_off_the_grid_or_naming_missing_labels_are_refused():
    payload = bytearray(pack_region_map([RegionSet("a", (("x", 0, 0, 40, 27),))], GRID))
    payload[1] = 60  # the stored grid's columns
    with pytest.raises(StreamError, match="60x27 latent grid, the image's is 40x27"):
        unpack_region_section(_section(bytes(payload)), GRID)
    # The fields can hold more than the map allows; equal field widths make such maps by hand.
    four = pack_region_map([RegionSet("a", tuple((label, 0, 0, 1, 1) for label in "wxyz"))], GRID)
    three_labels = four.replace(b"\x04\x01w\x01x\x01y\x01z", b"\x03\x01w\x01x\x01y")
    with pytest.raises(StreamError, match="label the set does not have"):
        unpack_region_section(_section(three_labels))
    past_the_edge = bytearray(pack_region_map([RegionSet("a", (("x", 0, 0, 64, 1),))], (27, 64)))
    past_the_edge[1] = 40  # 64 and 40 columns both take 6-bit fields
    with pytest.raises(StreamError, match="outside the latent grid"):
        unpack_region_section(_section(bytes(past_the_edge)))
    with pytest.raises(StreamError, match="more than one region map"):
        read_region_sets(Stream(None, [_section(pack_region_map(SETS, GRID))] * 2))


def _v1_payload(sets: list[RegionSet]) -> bytes:
    """The layout streams had before the label table (written here by hand, read by the package)."""
    def text(value: str) -> bytes:
        return bytes([len(value)]) + value.encode()

    parts = [put_varint(len(sets))]
    for region_set in sets:
        parts += [text(region_set.name), put_varint(len(region_set.boxes))]
        for label, *corners in region_set.boxes:
            parts += [text(label), *map(put_varint, corners)]
    return b"".join(parts)


def test_streams_with_the_v1_region_map_still_decode(tiny_codec):
    image = natural_image(192, 160, seed=4)
    encoded = tiny_codec.encode(image, quality=80, task="boxes",
                                  boxes=[Region("sign", (10.0, 12.0, 60.0, 50.0))])
    stream = Stream.from_bytes(encoded.data)
    sets = read_region_sets(stream)
    old = stream.with_sections([Section(SectionKind.REGION_MAP_V1, _v1_payload(sets))
                                if s.kind == SectionKind.REGION_MAP else s for s in stream.sections])
    assert read_region_sets(old) == sets
    assert tiny_codec.decode(old.to_bytes()).image.tobytes() == tiny_codec.decode(encoded.data).image.tobytes()
    kinds = {s["kind"]: s.get("details") for s in describe(old.to_bytes())["sections"]}
    assert kinds["region_map_v1"] == {"sets": [{"task": "boxes", "regions": 1, "labels": ["sign"]}]}
