"""The semantic training term: feature distance in the frozen EfficientNet-Lite2 (metrics.semantic)."""

import pytest
import torch

from versacodec.errors import InputError, ModelError
from versacodec.metrics import semantic
from versacodec.metrics.semantic import SemanticFeatureDistance


@pytest.fixture(scope="module")
def distance() -> SemanticFeatureDistance:
    return SemanticFeatureDistance((1.0, 1.0, 1.0, 1.0))


def test_distance_is_zero_for_the_original_and_grows_with_damage(distance):
    torch.manual_seed(0)
    original = torch.rand(2, 3, 64, 64).clamp(0, 1)
    slightly = (original + 0.03 * torch.randn_like(original)).clamp(0, 1)
    badly = (original + 0.3 * torch.randn_like(original)).clamp(0, 1)
    assert distance(original, original).abs().max() < 1e-6
    near, far = distance(slightly, original), distance(badly, original)
    assert near.shape == (2,) and (near > 0).all() and (far > near).all()


def test_gradient_reaches_the_decode_and_the_network_stays_frozen(distance):
    decoded = torch.rand(1, 3, 48, 48, requires_grad=True)
    distance.train()  # a trainer's train() must not switch batch norm to batch statistics
    assert not any(m.training for m in distance.network.modules())
    assert not any(p.requires_grad for p in distance.parameters())
    distance(decoded, torch.rand(1, 3, 48, 48)).sum().backward()
    assert decoded.grad is not None and decoded.grad.abs().sum() > 0


def test_only_the_layers_asked_for_are_run():
    shallow = SemanticFeatureDistance((1.0, 0.0, 0.0, 0.0))
    assert len(shallow.network.blocks) == semantic.STAGE_ENDS[0] + 1


@pytest.mark.parametrize("weights", [(1.0, 1.0), (0.0, 0.0, 0.0, 0.0), (1.0, -1.0, 1.0, 1.0)])
def test_bad_layer_weights_are_an_input_error(weights):
    with pytest.raises(InputError, match="semantic layer weights"):
        SemanticFeatureDistance(weights)


def test_weights_that_do_not_fit_the_network_are_a_model_error(monkeypatch):
    monkeypatch.setattr(semantic, "_lite2_state", lambda: {"unexpected": torch.zeros(1)})
    with pytest.raises(ModelError, match="EfficientNet-Lite2"):
        SemanticFeatureDistance()
