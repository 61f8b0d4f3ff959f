import pytest
from PIL import Image

from conftest import natural_image
from versacodec.errors import StreamError
from versacodec.semantics.tag_stream import pack_tags, unpack_tags
from versacodec.semantics.tagger import ClassifierTagger, TaggerConfig, class_names


@pytest.mark.parametrize("tags", [[], [0], [999, 1, 500], [1, 2, 3, 4, 5, 6, 7]])
def test_tags_pack_losslessly_in_about_ten_bits_each(tags):
    payload = pack_tags(tags)
    assert unpack_tags(payload) == tags
    assert len(payload) * 8 < 3 + 10 * len(tags) + 8


def test_damaged_tag_sections_are_stream_errors():
    with pytest.raises(StreamError):
        unpack_tags(b"")
    with pytest.raises(StreamError):
        unpack_tags(pack_tags([1, 2]) + b"\x00")
    with pytest.raises(StreamError, match="not an ImageNet-1k class"):
        unpack_tags(bytes([0b00111111, 0b11110000]))  # one tag, id 1023


def test_tagger_returns_confident_imagenet_classes():
    tagger = ClassifierTagger(TaggerConfig(top_k=3, threshold=0.0))
    tags = tagger(natural_image(160, 120))
    assert len(tags) == 3 and all(0 <= t < 1000 for t in tags)
    assert ClassifierTagger(TaggerConfig(threshold=1.01))(Image.new("RGB", (64, 64))) == []
    assert class_names()[88] == "macaw"
