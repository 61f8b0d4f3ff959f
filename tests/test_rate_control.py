import pytest

from conftest import natural_image
from versacodec.errors import InputError
from versacodec.latent_codec.rate_control import highest_quality_within

SIZES = [100 + 37 * q + (q * q) // 3 for q in range(101)]


def test_bisection_finds_the_highest_setting_within_budget():
    for budget in (100, 150, 999, 2500, 10_000, 100_000):
        choice = highest_quality_within(lambda q: SIZES[q], budget, 101)
        expected = max(q for q in range(101) if SIZES[q] <= budget)
        assert choice.quality == expected and choice.size <= budget
        assert choice.trials <= 9


def test_budget_below_the_smallest_file_is_a_clear_error():
    with pytest.raises(InputError, match="below this model's smallest file"):
        highest_quality_within(lambda q: 500 + q, 100, 101)
    with pytest.raises(InputError, match="below this model's smallest file"):
        highest_quality_within(lambda q: 500 + q, 100, 101, estimate_at=lambda q: 500 + q)


@pytest.mark.parametrize("bias", [0.0, -3.0, 2.0])  # estimates exact, a little low, a little high
def test_with_estimates_one_real_coding_confirms_the_same_choice(bias):
    for budget in (150, 999, 2500, 10_000):
        coded = []

        def size_at(q, coded=coded):
            coded.append(q)
            return SIZES[q]

        choice = highest_quality_within(size_at, budget, 101, lambda q: SIZES[q] + bias, slack=4)
        assert choice.quality == max(q for q in range(101) if SIZES[q] <= budget)
        assert choice.trials == len(set(coded)) <= 2 and choice.estimates <= 8


def test_misleading_estimates_fall_back_to_real_sizes_and_still_fit():
    for budget in (999, 2500, 10_000):
        low_by_far = highest_quality_within(lambda q: SIZES[q], budget, 101, lambda q: SIZES[q] * 0.7)
        assert low_by_far.size <= budget
        assert low_by_far.quality == max(q for q in range(101) if SIZES[q] <= budget)


def test_a_target_bpp_encode_codes_for_real_once_or_twice(tiny_codec, monkeypatch):
    """The estimate from the entropy model decides; real coding confirms it (the size is never over)."""
    codec = tiny_codec.model.latent_codec
    image = natural_image(128, 96)
    sizes = [len(tiny_codec.encode(image, quality=q).data) for q in range(0, 101, 10)]
    original, calls = codec.compress_analysed, []

    def counted(*args, **kwargs):
        calls.append(args[1])
        return original(*args, **kwargs)

    monkeypatch.setattr(codec, "compress_analysed", counted)
    for size in sizes[2:-1]:
        calls.clear()
        target = size * 8 / (128 * 96)
        encoded = tiny_codec.encode(image, bpp=target)
        assert len(encoded.data) <= encoded.budget == size and len(set(calls)) <= 2


def test_estimates_are_close_to_the_real_strings(tiny_codec):
    from versacodec.imaging import pad_to_multiple

    pixels = pad_to_multiple(tiny_codec.model.load_image(natural_image(160, 128)).pixels, tiny_codec.model.block)
    analysed = tiny_codec.model.latent_codec.analyse(tiny_codec.model.encode_pixels(pixels))
    for quality in (30, 60, 90):
        real = tiny_codec.model.latent_codec.compress_analysed(analysed, quality)
        estimate = tiny_codec.model.latent_codec.estimate_bits(analysed, quality)
        assert estimate.hyperprior / 8 == pytest.approx(len(real.hyperprior), abs=4)
        assert estimate.parts[0] / 8 == pytest.approx(len(real.parts[0]), rel=0.03, abs=8)  # whole words


def test_a_quality_map_spends_bits_where_it_is_high_and_decodes_with_the_map(tiny_codec):
    """Spatially varying rate (issue #27 step 3): y's quality per block of y's grid."""
    import torch

    from versacodec.imaging import pad_to_multiple
    from versacodec.latent_codec.quality_map import QualityMap

    codec = tiny_codec.model.latent_codec
    pixels = pad_to_multiple(tiny_codec.model.load_image(natural_image(160, 128)).pixels, tiny_codec.model.block)
    analysed = codec.analyse(tiny_codec.model.encode_pixels(pixels))
    grid = tuple(analysed[0].shape[-2:])
    half = grid[1] // 2
    nowhere = QualityMap.from_mask(torch.zeros(grid, dtype=torch.bool), 1, 50)
    assert (codec.compress_analysed(analysed, 40, quality_map=nowhere).parts
            == codec.compress_analysed(analysed, 40).parts)
    left_mask = torch.zeros(grid, dtype=torch.bool)
    left_mask[:, :half] = True
    left = QualityMap.from_mask(left_mask, 1, 50)  # the left half at 90, the right half at 40
    mapped = codec.compress_analysed(analysed, 40, quality_map=left)
    plain_low, plain_high = codec.compress_analysed(analysed, 40), codec.compress_analysed(analysed, 90)
    assert len(plain_low.parts[0]) < len(mapped.parts[0]) < len(plain_high.parts[0])
    assert mapped.hyperprior == plain_low.hyperprior  # z stays at the base quality
    estimate = codec.estimate_bits(analysed, 40, quality_map=left)
    assert estimate.parts[0] / 8 == pytest.approx(len(mapped.parts[0]), rel=0.03, abs=8)
    y_mapped = codec.decode_y(mapped, 40)
    y_low, y_high = codec.decode_y(plain_low, 40), codec.decode_y(plain_high, 90)
    error = {name: float((y[..., :half] - analysed[0][..., :half]).abs().mean()) for name, y in
             (("mapped", y_mapped), ("low", y_low), ("high", y_high))}
    assert error["mapped"] == pytest.approx(error["high"], rel=0.05) and error["mapped"] < 0.8 * error["low"]
    assert not torch.equal(codec.decode_y(mapped._replace(quality_map=None), 40), y_mapped)  # the map is needed
    clamped = QualityMap.from_mask(left_mask, 1, 200).qualities(40, grid, 101)
    assert int(clamped.max()) == 100 and int(clamped.min()) == 40


def test_a_quality_map_packs_into_a_few_bytes_and_back():
    import torch

    from versacodec.errors import StreamError
    from versacodec.latent_codec.quality_map import QualityMap

    grid = (30, 40)  # y of a 640×480 image
    mask = torch.zeros(grid, dtype=torch.bool)
    mask[5:17, 8:30] = True
    mask[20:26, 2:9] = True
    quality_map = QualityMap.from_mask(mask, 4, -7)
    assert quality_map.blocks.shape == (8, 10)
    payload = quality_map.pack()
    assert len(payload) <= 16
    back = QualityMap.unpack(payload, grid)
    assert back.block == 4 and back.delta == -7 and torch.equal(back.blocks, quality_map.blocks)
    for damaged in (b"", bytes([0]) + payload[1:], payload[:-1]):
        with pytest.raises(StreamError):
            QualityMap.unpack(damaged, grid)
