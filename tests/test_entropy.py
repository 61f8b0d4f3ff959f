import numpy as np
import pytest
import torch

from versacodec.entropy.factorized import FactorizedDensity
from versacodec.entropy.fixed_point import CodingConv2d, exact_mode, to_grid
from versacodec.entropy.gaussian import GaussianConditional
from versacodec.entropy.range_coder import SymbolReader, SymbolWriter
from versacodec.entropy.tables import PRECISION, quantize_pmf


def test_quantized_pmf_sums_to_precision_and_keeps_every_symbol():
    counts = quantize_pmf(np.array([0.9, 0.1, 1e-12, 0.0, 1e-9]))
    assert counts.sum() == 1 << PRECISION
    assert counts.min() >= 1


def test_random_latents_of_kodak_size_round_trip_exactly_near_the_estimated_size():
    """Kodak 768x512 → y of 160 x 32 x 48 at 1/16 resolution."""
    torch.manual_seed(1)
    gaussian = GaussianConditional()
    shape = (1, 160, 32, 48)
    scales = to_grid(torch.exp(torch.randn(shape) * 1.5))
    means = to_grid(torch.randn(shape) * 3)
    y = means + torch.randn(shape).double() * scales
    writer = SymbolWriter()
    y_hat = gaussian.write(writer, y, scales, means)
    data = writer.getvalue()
    decoded = gaussian.read(SymbolReader(data), scales, means)
    assert torch.equal(decoded, y_hat)
    estimated = -torch.log2(gaussian.likelihood(y_hat, scales, means)).sum().item()
    assert abs(len(data) * 8 - estimated) <= 0.01 * estimated + 64


def test_values_far_outside_the_tables_escape_and_round_trip():
    gaussian = GaussianConditional()
    means = torch.zeros(1, 1, 2, 3, dtype=torch.float64)
    scales = torch.full_like(means, 0.2)
    y = torch.tensor([[[[1e6, -3e5, 0.2], [70000.0, -1.0, 2**40]]]], dtype=torch.float64)
    writer = SymbolWriter()
    y_hat = gaussian.write(writer, y, scales, means)
    assert torch.equal(gaussian.read(SymbolReader(writer.getvalue()), scales, means), y_hat)
    assert torch.equal(y_hat, torch.round(y))


def test_masked_coding_sends_only_selected_elements():
    gaussian = GaussianConditional()
    shape = (1, 3, 4, 4)
    y, scales, means = torch.randn(shape).double() * 4, torch.full(shape, 2.0).double(), torch.zeros(shape).double()
    mask = torch.rand(shape) > 0.5
    writer = SymbolWriter()
    y_hat = gaussian.write(writer, y, scales, means, mask)
    decoded = gaussian.read(SymbolReader(writer.getvalue()), scales, means, mask)
    assert torch.equal(decoded, y_hat)
    assert torch.all(decoded[~mask] == 0)


def test_an_empty_mask_codes_nothing():
    """A task region set can miss a channel group's positions entirely (seen on COCO images)."""
    gaussian = GaussianConditional()
    shape = (1, 2, 3, 3)
    y, scales, means = torch.randn(shape).double(), torch.ones(shape).double(), torch.zeros(shape).double()
    nothing = torch.zeros(shape, dtype=torch.bool)
    writer = SymbolWriter()
    gaussian.write(writer, y, scales, means, nothing)
    decoded = gaussian.read(SymbolReader(writer.getvalue()), scales, means, nothing)
    assert torch.equal(decoded, torch.zeros(shape).double())


def test_factorized_density_codes_exactly_and_matches_its_likelihood():
    torch.manual_seed(0)
    density = FactorizedDensity(8)
    density.build_tables()
    z = torch.randn(1, 8, 12, 16) * 3
    writer = SymbolWriter()
    z_hat = density.write(writer, z)
    data = writer.getvalue()
    assert torch.equal(density.read(SymbolReader(data), tuple(z_hat.shape)), z_hat)
    estimated = -torch.log2(density.likelihood(z_hat.float())).sum().item()
    assert abs(len(data) * 8 - estimated) <= 0.01 * estimated + 64


def test_factorized_density_training_likelihood_is_differentiable():
    density = FactorizedDensity(4).train()
    z = torch.randn(2, 4, 5, 5, requires_grad=True)
    z_hat, likelihood = density(z)
    (-torch.log2(likelihood).sum() + z_hat.sum()).backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()


def test_factorized_tables_must_be_built_before_coding():
    with pytest.raises(RuntimeError, match="build_tables"):
        FactorizedDensity(2).write(SymbolWriter(), torch.zeros(1, 2, 1, 1))


def test_exact_convolution_ignores_thread_count_and_batch_size():
    torch.manual_seed(0)
    conv = CodingConv2d(16, 32, 5, padding=2)
    x = to_grid(torch.randn(4, 16, 24, 24) * 10)
    results = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        with exact_mode():
            results += [conv(x)[:1], conv(x[:1])]
    torch.set_num_threads(2)
    assert all(torch.equal(results[0], r) for r in results[1:])
    with exact_mode():
        assert torch.allclose(conv(x).float(), torch.nn.functional.conv2d(x.float(), conv.weight, conv.bias,
                                                                        padding=2), atol=0.05)
