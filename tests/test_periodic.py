"""The periodic-artifact measure and its training penalty (`metrics.periodic`)."""

from __future__ import annotations

import pytest
import torch

from conftest import natural_image
from versacodec.imaging import open_image
from versacodec.metrics.periodic import periodic_excess, periodic_peak, periodic_ratio


def photo(size: tuple[int, int] = (192, 160)) -> torch.Tensor:
    return open_image(natural_image(*size), 10**8).pixels


def with_grid(image: torch.Tensor, period: int, amplitude: float = 0.06) -> torch.Tensor:
    """A pattern repeating every `period` pixels, as a pixel shuffle leaves it."""
    pattern = torch.zeros(period, period)
    pattern[0, 0], pattern[period // 2, period // 2] = amplitude, -amplitude
    height, width = image.shape[-2:]
    tiled = pattern.repeat(height // period + 1, width // period + 1)[:height, :width]
    return (image + tiled).clamp(0, 1)


@pytest.mark.parametrize("period", [2, 4, 8])
def test_a_grid_pattern_of_any_upsampling_stride_raises_the_peak(period):
    image = photo()
    assert periodic_peak(image) < 30
    assert periodic_ratio(image, with_grid(image, period)) > 10
    assert periodic_ratio(image, image) == pytest.approx(1.0)


def test_a_colour_dither_counts_and_the_originals_own_traces_do_not_hide_it():
    image = photo()
    dither = torch.zeros_like(image)
    dither[..., 0, ::2, ::2], dither[..., 2, ::2, ::2] = 0.04, -0.04  # chroma at period 2, luma barely
    dithered = (image + dither).clamp(0, 1)
    assert periodic_ratio(image, dithered) > 10
    # An original whose chroma already has period-2 peaks still shows a period-4 pattern of a decode.
    assert periodic_ratio(dithered, with_grid(dithered, 4)) > 10


def test_the_notch_removes_a_grid_pattern_and_keeps_a_photo():
    from versacodec.metrics.quality import psnr
    from versacodec.pixel_decoders.grid_notch import GridNotch

    image = photo((192, 160))
    notch = GridNotch(8)
    assert periodic_ratio(image, notch(with_grid(image, 2)).clamp(0, 1)) < 2
    assert psnr(notch(image).clamp(0, 1), image) > 30


def test_blur_and_noise_are_not_periodic():
    image = photo()
    blurred = torch.nn.functional.avg_pool2d(image, 3, 1, 1)
    noisy = (image + torch.randn(image.shape, generator=torch.Generator().manual_seed(0)) * 0.03).clamp(0, 1)
    assert periodic_ratio(image, blurred) < 3
    assert periodic_ratio(image, noisy) < 3


def test_too_small_an_image_is_refused():
    with pytest.raises(ValueError, match="too small"):
        periodic_peak(torch.rand(3, 20, 40))


def test_the_penalty_is_zero_for_the_targets_and_pulls_a_pattern_down():
    targets = torch.cat([photo((128, 128)), photo((128, 128)).flip(-1)])
    assert periodic_excess(targets, targets) == 0
    rendered = torch.stack([with_grid(t, 2) for t in targets]).requires_grad_(True)
    penalty = periodic_excess(rendered, targets)
    assert penalty > 1.0
    penalty.backward()
    with torch.no_grad():
        stepped = rendered - 1e-5 * rendered.grad / rendered.grad.abs().mean()
    assert periodic_excess(stepped, targets) < penalty
    with pytest.raises(ValueError, match="multiples of 8"):
        periodic_excess(targets[..., :100], targets[..., :100])


def test_the_evaluation_reports_the_ratio_per_image_and_no_bd_rate_for_it():
    from PIL import Image

    from versacodec.evaluation.aggregate import bd_table
    from versacodec.evaluation.quality import per_image_metrics

    original = photo()
    gridded = with_grid(original, 4)
    as_pil = [Image.fromarray(t[0].permute(1, 2, 0).mul(255).round().byte().numpy()) for t in (original, gridded)]
    values = per_image_metrics(as_pil[0], as_pil[1], ["periodic", "psnr"])
    assert values["periodic"] > 10 and values["psnr"] > 20
    codecs = {name: {"results": {"bpp": [0.05, 0.1], "psnr": [25.0 + shift, 27.0 + shift], "periodic": [3.0, 2.0]}}
              for name, shift in (("anchor", 0.0), ("test", 1.0))}
    table = bd_table(codecs, "anchor", {"psnr": True, "periodic": False})
    assert set(table["metrics"]) == {"psnr"}
