import math
import os

import pytest
from PIL import Image

from conftest import natural_image
from versacodec.errors import BudgetTooSmall
from versacodec.evaluation.baselines import BASELINES, JPEG, WebP
from versacodec.evaluation.cache import EncodeCache
from versacodec.evaluation.quality import image_tensor
from versacodec.evaluation.rate_search import SHRINK_FACTORS
from versacodec.metrics.quality import psnr


def _codec(name: str, **options):
    codec = BASELINES[name](name, **options)
    available, reason = codec.available()
    if not available:
        pytest.skip(reason)
    return codec


@pytest.mark.parametrize("name", list(BASELINES))
def test_bisection_gives_the_largest_file_within_the_target(name):
    image = natural_image(96, 80)
    codec = _codec(name)
    target = 2.0
    budget = math.floor(target * image.width * image.height / 8)
    result = codec.encode(image, target)
    assert result.shrink == 1.0
    assert len(result.data) <= budget and result.bpp == pytest.approx(len(result.data) * 8 / (96 * 80))
    index = list(codec.settings).index(result.setting)
    if index + 1 < len(codec.settings):  # the next setting up would overshoot
        assert len(codec.encode_setting(image, codec.settings[index + 1])) > budget
    decoded = codec.decode(result)
    assert decoded.size == image.size and decoded.mode == "RGB"
    assert float(psnr(image_tensor(image), image_tensor(decoded))) > 18


@pytest.mark.skipif(not hasattr(os, "sched_getscheduler"), reason="no POSIX scheduling API")
@pytest.mark.parametrize("name", list(BASELINES))
def test_encoding_leaves_the_thread_scheduling_alone(name):
    """SVT-AV1, run as root, made the encoding thread real-time (SCHED_FIFO 99)."""
    before = os.sched_getscheduler(0), os.sched_getparam(0)
    _codec(name).encode_setting(natural_image(64, 48), _codec(name).settings[-1])
    assert (os.sched_getscheduler(0), os.sched_getparam(0)) == before


def test_below_the_floor_the_image_is_shrunk_and_upsampled_back():
    image = natural_image(384, 320, seed=3)
    codec = _codec("jpeg")
    floor = len(codec.encode_setting(image, codec.settings[0]))
    target = 0.6 * floor * 8 / (image.width * image.height)
    result = codec.encode(image, target)
    assert result.shrink in SHRINK_FACTORS
    assert result.bpp <= target and result.width == 384 and result.height == 320
    assert codec.decode(result).size == image.size
    with pytest.raises(BudgetTooSmall, match="1/8"):
        codec.encode(image, 0.0005)


def test_always_shrink_lets_smaller_images_compete_with_full_size():
    image = natural_image(384, 320, seed=4)
    target = 0.25
    default, competing = JPEG("jpeg"), JPEG("jpeg", always_shrink=True)
    plain, best = default.encode(image, target), competing.encode(image, target)
    assert plain.shrink == 1.0 and best.bpp <= target

    def quality(codec, result):
        return float(psnr(image_tensor(image), image_tensor(codec.decode(result))))

    assert quality(competing, best) >= quality(default, plain)
    assert "shrink" in competing.rate_rule and competing.rate_rule != default.rate_rule


def test_encodes_are_cached_on_disk(tmp_path, monkeypatch):
    image = natural_image(96, 80, seed=5)
    first = WebP("webp", cache=EncodeCache(tmp_path)).encode(image, 1.0)
    assert any(tmp_path.rglob("*.bin"))

    def refuse(*_):
        raise AssertionError("encoded again despite the cache")

    monkeypatch.setattr(WebP, "encode_setting", refuse)
    again = WebP("webp", cache=EncodeCache(tmp_path)).encode(image, 1.0)
    assert again == first


def test_avif_plugins_do_not_replace_each_other():
    image = natural_image(64, 64)
    svt, aom = _codec("avif-svt"), _codec("avif")
    svt.encode_setting(image, 30)  # imports pillow-avif-plugin
    aom.encode_setting(image, 30)
    assert Image.SAVE["AVIF"].__module__ == "PIL.AvifImagePlugin"
    assert "svt" in svt.version and "aom" in aom.version
