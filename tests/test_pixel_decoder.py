"""Pixel decoders (`versacodec.pixel_decoders`): models, bundling, decoding and their training stage."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from conftest import TINY_AUTOENCODER, natural_image
from test_training import read_csv, run_yaml_stage
from versacodec.codec import Codec, CodecModel
from versacodec.errors import InputError, ModelError
from versacodec.latent_space.autoencoder import Autoencoder, AutoencoderConfig
from versacodec.pixel_decoders import load_pixel_decoder
from versacodec.pixel_decoders.realesrgan.networks import SRVGGConfig
from versacodec.pixel_decoders.restoration import RestorationDecoder, RestorationDecoderConfig
from versacodec.pixel_decoders.tail import DecoderTail
from versacodec.training.bundle import assemble_bundle
from versacodec.training.discriminator import (
    DiscriminatorConfig,
    FeatureDiscriminator,
    discriminator_hinge,
    generator_hinge,
)

FIRST_LAYER = 2  # the tiny autoencoder's decoder: conv, residual block, then this upsampling conv


def perturbed_tail(autoencoder: Autoencoder, seed: int = 1) -> DecoderTail:
    torch.manual_seed(seed)
    decoder = DecoderTail.from_autoencoder(autoencoder, FIRST_LAYER)
    for parameter in decoder.parameters():
        parameter.data.add_(torch.randn_like(parameter) * 0.05)
    return decoder


def test_a_tail_copied_from_the_autoencoder_decodes_exactly_like_it(generative_bundle, tmp_path):
    autoencoder = Autoencoder.from_pretrained(generative_bundle / "autoencoder")
    latents = torch.randn(2, TINY_AUTOENCODER.latent_channels, 6, 5)
    copied = DecoderTail.from_autoencoder(autoencoder, FIRST_LAYER)
    assert torch.equal(copied.decode(autoencoder, latents), autoencoder.decode(latents))
    copied.save_pretrained(tmp_path / "tail")
    reloaded = DecoderTail.from_pretrained(tmp_path / "tail")
    assert torch.equal(reloaded.decode(autoencoder, latents), autoencoder.decode(latents))
    assert sum(p.numel() for p in reloaded.parameters()) < sum(p.numel() for p in autoencoder.decoder.parameters())


def test_first_layer_outside_the_decoder_is_a_model_error():
    with pytest.raises(ModelError, match="first_layer"):
        DecoderTail.from_autoencoder(Autoencoder(TINY_AUTOENCODER), 99)


@pytest.fixture(scope="module")
def bundle_with_pixel_decoder(generative_bundle, tmp_path_factory):
    root = tmp_path_factory.mktemp("pixel-decoder")
    perturbed_tail(Autoencoder.from_pretrained(generative_bundle / "autoencoder")).save_pretrained(root / "tail")
    return assemble_bundle(root / "bundle", "tiny-generative", generative_bundle / "autoencoder",
                           generative_bundle / "latent_codec", generative_bundle / "generative", half=False,
                           pixel_decoder=root / "tail")


def test_generative_decode_uses_the_pixel_decoder_and_direct_decode_does_not(generative_codec,
                                                                             bundle_with_pixel_decoder):
    codec = Codec.from_pretrained(bundle_with_pixel_decoder)
    assert codec.model.generative.pixel_decoder is not None
    assert codec.model.weights_hash == generative_codec.model.weights_hash  # streams are interchangeable
    data = codec.encode(natural_image(), quality=60).data
    direct = [c.decode(data, decoder="direct").pixels for c in (codec, generative_codec)]
    assert torch.equal(direct[0], direct[1])
    generated = [c.decode(data, decoder="generative").pixels for c in (codec, generative_codec)]
    assert not torch.equal(generated[0], generated[1])
    assert torch.equal(generated[0], codec.decode(data, decoder="generative").pixels)  # deterministic


def test_a_pixel_decoder_for_another_autoencoder_is_refused(bundle_with_pixel_decoder, tmp_path):
    other = AutoencoderConfig(latent_channels=4, decoder_widths=(16, 8, 8), decoder_blocks=(1, 0, 0), output_width=8)
    copy = tmp_path / "bundle"
    shutil.copytree(bundle_with_pixel_decoder, copy)
    DecoderTail.from_autoencoder(Autoencoder(other), FIRST_LAYER).save_pretrained(copy / "generative/pixel_decoder")
    with pytest.raises(ModelError, match="different autoencoder"):
        CodecModel.from_pretrained(copy).load_components()  # components load when first used, or all at once


def test_a_pixel_decoder_needs_a_generative_decoder_in_the_bundle(generative_bundle, tmp_path):
    with pytest.raises(InputError, match="generative folder too"):
        assemble_bundle(tmp_path / "out", "x", generative_bundle / "autoencoder", generative_bundle / "latent_codec",
                        pixel_decoder=generative_bundle / "autoencoder")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("loss", "logged", "adversarial"), [
    ("l1: 0.0, mse: 1.0, lpips: 0.0, dists: 0.0", {"mse"}, 0.0),  # a term weighted 0 is not even computed
    ("dists: 0.5, phase_jitter: true", {"l1", "lpips", "dists"}, 0.5),
    ("l1: 0.0, lpips: 0.0, dists: 0.0, semantic: 1.0, semantic_layers: [0.0, 1.0, 0.0, 0.0]", {"semantic"}, 0.0),
    ("l1: 0.0, lpips: 0.0, dists: 0.0, low_pass: 1.0", {"low_pass"}, 0.0),
])
def test_the_stage_trains_the_tail_alone_on_cached_generated_pairs(generative_bundle, tmp_path, loss, logged,
                                                                   adversarial):
    yaml_text = f"""stage: pixel_decoder
bundle: {generative_bundle}
first_layer: {FIRST_LAYER}
cache_dir: {tmp_path / 'cache'}
pairs: {{crops: 3, crop_size: 64, qualities: [20, 80]}}
validation_pairs: 2
schedule: {{output_dir: RUN, data_dir: DATA, steps: 2, batch_size: 2, crop_size: 48, log_every: 1,
            validate_every: 2, validation_images: 1, learning_rate: 1.0e-2, warmup_steps: 1}}
loss: {{{loss}, adversarial: {adversarial}, adversarial_start_step: 1}}
discriminator: {{layers: [0, 3], width: 8}}
"""
    final = run_yaml_stage(tmp_path, 4, yaml_text.replace("RUN", str(tmp_path / "run")), size=96)
    assert len(list((tmp_path / "cache").glob("generated-*.pt"))) == 2  # training and validation pairs
    autoencoder = Autoencoder.from_pretrained(generative_bundle / "autoencoder")
    start = DecoderTail.from_autoencoder(autoencoder, FIRST_LAYER).state_dict()
    trained = DecoderTail.from_pretrained(final).state_dict()
    assert any(not torch.equal(start[k], trained[k]) for k in start)
    validation = read_csv(tmp_path / "run/validation.csv")[0]
    assert float(validation["decoder_dists"]) > 0 and float(validation["autoencoder_psnr"]) > 0
    assert float(validation["decoder_colour_shift"]) >= 0
    # The discriminator trains and resumes with the checkpoint, but only the tail is exported.
    checkpointed = torch.load(tmp_path / "run/checkpoint.pt", weights_only=True)["model"]
    assert any(key.startswith("discriminator.heads") for key in checkpointed) == (adversarial > 0)
    logged_terms = set(read_csv(tmp_path / "run/train.csv")[0]) & {"l1", "mse", "lpips", "dists", "semantic",
                                                                   "low_pass"}
    assert logged_terms == logged
    assert ("decoder_semantic" in validation) == ("semantic" in logged)
    assert ("d_fake" in read_csv(tmp_path / "run/train.csv")[0]) == (adversarial > 0)
    assert sorted(path.name for path in final.iterdir()) == ["config.json", "model.safetensors"]


def test_the_low_pass_term_sees_a_regional_shift_and_not_texture():
    from versacodec.training.stages.pixel_decoder import PixelDecoderStage

    images = torch.rand(2, 3, 40, 40) * 0.5 + 0.25
    checker = (torch.arange(40).view(1, -1) + torch.arange(40).view(-1, 1)) % 2 * 0.2 - 0.1
    darker, textured = images - 0.02, images + checker
    terms = [PixelDecoderStage._losses(None, rendered, images, ("low_pass", "l1"))  # the measures need no state
             for rendered in (darker, textured)]
    assert torch.isclose(terms[0]["low_pass"], torch.tensor(0.02))
    assert terms[1]["low_pass"] < 1e-6 < terms[1]["l1"]


def test_loss_weights_must_train_something():
    from versacodec.training.stages.pixel_decoder import PixelDecoderLoss

    with pytest.raises(InputError, match="at least one > 0"):
        PixelDecoderLoss(l1=0.0, lpips=0.0, dists=0.0)
    with pytest.raises(InputError, match=">= 0"):
        PixelDecoderLoss(mse=-1.0)
    with pytest.raises(InputError, match="semantic layer weights"):
        PixelDecoderLoss(semantic=1.0, semantic_layers=(1.0, 1.0))


def test_the_generator_term_does_not_train_the_discriminator():
    discriminator = FeatureDiscriminator(DiscriminatorConfig(layers=(0, 1), width=8))
    images = torch.rand(2, 3, 64, 64, requires_grad=True)
    generator_hinge(discriminator.judge_without_learning(images)).backward()
    assert images.grad.abs().sum() > 0
    assert all(p.grad is None and p.requires_grad for p in discriminator.heads.parameters())
    real, fake = discriminator_hinge(discriminator(torch.rand(2, 3, 64, 64)), discriminator(images.detach()))
    (real + fake).backward()
    assert all(p.grad is not None for p in discriminator.heads.parameters())
    assert not any(p.requires_grad for p in discriminator.features.parameters())
    with pytest.raises(InputError, match="discriminator layers"):
        FeatureDiscriminator(DiscriminatorConfig(layers=(5,)))


def test_the_pairs_cache_ignores_a_pixel_decoder_already_in_the_bundle(generative_codec, bundle_with_pixel_decoder):
    from versacodec.training.generated_latents import GeneratedPairsConfig, pairs_cache_name

    files, config = [Path("a.png")], GeneratedPairsConfig(crops=2)
    with_tail = Codec.from_pretrained(bundle_with_pixel_decoder)
    name = pairs_cache_name(with_tail, files, config)
    assert name == pairs_cache_name(generative_codec, files, config)
    assert name != pairs_cache_name(with_tail, files, GeneratedPairsConfig(crops=3))


def test_a_v3_bundle_s_tail_folder_still_loads(generative_bundle, tmp_path):
    import json

    autoencoder = Autoencoder.from_pretrained(generative_bundle / "autoencoder")
    perturbed_tail(autoencoder).save_pretrained(tmp_path / "tail")
    config = json.loads((tmp_path / "tail/config.json").read_text())
    (tmp_path / "tail/config.json").write_text(json.dumps(config | {"_class_name": "PixelDecoder"}))
    assert isinstance(load_pixel_decoder(tmp_path / "tail"), DecoderTail)
    (tmp_path / "tail/config.json").write_text(json.dumps(config | {"_class_name": "Nope"}))
    with pytest.raises(ModelError, match="unknown pixel decoder class 'Nope'"):
        load_pixel_decoder(tmp_path / "tail")


TINY_RESTORATION = RestorationDecoderConfig(TINY_AUTOENCODER, head_layers=4,
                                            srvgg=SRVGGConfig(features=8, convolutions=1))


def targets_for(features: torch.Tensor) -> torch.Tensor:
    """Small pictures partly explained by the features (a least-squares fit has something to find)."""
    noise = torch.rand(features.shape[0], 3, *features.shape[-2:], generator=torch.Generator().manual_seed(0))
    return noise * 0.2 + features[:, :3].tanh() * 0.3 + 0.4


def test_a_restoration_decoder_renders_full_resolution_from_quarter_resolution_features(tmp_path):
    autoencoder = Autoencoder(TINY_AUTOENCODER)
    decoder = RestorationDecoder(TINY_RESTORATION)
    latents = torch.randn(2, TINY_AUTOENCODER.latent_channels, 5, 6)
    with torch.no_grad():
        features = decoder.head(autoencoder, latents)
        before = float((decoder.colour(features) - targets_for(features)).square().mean().sqrt())
    assert features.shape[-2:] == (10, 12)  # 1/4 of the image
    assert decoder.decode(autoencoder, latents).shape == (2, 3, 40, 48)
    # The colour projection's least-squares fit beats its random start on the same targets.
    assert decoder.fit_colour_projection(features, targets_for(features)) < before
    decoder.save_pretrained(tmp_path / "restoration")
    reloaded = load_pixel_decoder(tmp_path / "restoration")
    assert isinstance(reloaded, RestorationDecoder)
    assert torch.equal(reloaded.decode(autoencoder, latents), decoder.decode(autoencoder, latents))


def test_a_restoration_head_at_the_wrong_resolution_is_a_model_error():
    with pytest.raises(ModelError, match="1/2 resolution"):
        RestorationDecoder(RestorationDecoderConfig(TINY_AUTOENCODER, head_layers=6,
                                                    srvgg=SRVGGConfig(features=8, convolutions=1)))
    with pytest.raises(ModelError, match="network must be one of"):
        RestorationDecoderConfig(TINY_AUTOENCODER, head_layers=4, network="edsr")


def test_a_direct_decoder_in_the_bundle_serves_the_direct_path_only(generative_codec, generative_bundle, tmp_path):
    autoencoder = Autoencoder.from_pretrained(generative_bundle / "autoencoder")
    torch.manual_seed(3)
    RestorationDecoder(TINY_RESTORATION).save_pretrained(tmp_path / "direct")
    bundle = assemble_bundle(tmp_path / "bundle", "tiny-generative", generative_bundle / "autoencoder",
                             generative_bundle / "latent_codec", generative_bundle / "generative", half=False,
                             direct_decoder=tmp_path / "direct")
    codec = Codec.from_pretrained(bundle)
    assert isinstance(codec.model.pixel_decoders["direct"], RestorationDecoder)
    assert codec.model.weights_hash == generative_codec.model.weights_hash
    data = codec.encode(natural_image(), quality=60).data
    ours, plain = (c.decode(data, decoder="direct").pixels for c in (codec, generative_codec))
    assert ours.shape == plain.shape and not torch.equal(ours, plain)
    ours, plain = (c.decode(data, decoder="generative").pixels for c in (codec, generative_codec))
    assert torch.equal(ours, plain)
    del autoencoder


@pytest.mark.shared
def test_the_stage_trains_a_restoration_decoder_from_the_released_generator(generative_bundle, tmp_path):
    from versacodec.pixel_decoders.realesrgan.pretrained import pretrained_files, where_to_get

    if pretrained_files("general-x4v3") is None:
        pytest.skip(where_to_get("general-x4v3"))
    yaml_text = f"""stage: pixel_decoder
bundle: {generative_bundle}
architecture: restoration
restoration: {{pretrained: general-x4v3, head_layers: 4, colour_fit_pairs: 2}}
cache_dir: {tmp_path / 'cache'}
pairs: {{crops: 3, crop_size: 64, qualities: [20, 80], decoder: direct}}
validation_pairs: 2
schedule: {{output_dir: RUN, data_dir: DATA, steps: 2, batch_size: 2, crop_size: 32, log_every: 1,
            validate_every: 2, validation_images: 1, learning_rate: 1.0e-3, warmup_steps: 1}}
loss: {{l1: 1.0, lpips: 0.0, dists: 0.0, periodic: 0.1}}
"""
    final = run_yaml_stage(tmp_path, 4, yaml_text.replace("RUN", str(tmp_path / "run")), size=96)
    trained = load_pixel_decoder(final)
    assert isinstance(trained, RestorationDecoder)
    assert set(read_csv(tmp_path / "run/train.csv")[0]) >= {"l1", "periodic"}
    validation = read_csv(tmp_path / "run/validation.csv")[0]
    assert float(validation["decoder_periodic"]) > 0 and float(validation["autoencoder_periodic"]) > 0


def test_an_anti_aliased_tail_cannot_draw_a_grid_on_a_flat_latent(generative_bundle, tmp_path):
    autoencoder = Autoencoder.from_pretrained(generative_bundle / "autoencoder")
    flat = torch.full((1, TINY_AUTOENCODER.latent_channels, 8, 8), 0.3)
    plain = DecoderTail.from_autoencoder(autoencoder, FIRST_LAYER)
    filtered = DecoderTail.from_autoencoder(autoencoder, FIRST_LAYER, anti_alias=True)
    with torch.no_grad():
        inner = (..., slice(16, -16), slice(16, -16))  # away from the borders' padding
        pattern = plain(autoencoder, flat)[inner].std((-2, -1)).max()  # the shuffles' phases differ
        left = filtered(autoencoder, flat)[inner].std((-2, -1)).max()  # only the borders' slow ramp
        assert pattern > 1e-3 and left < pattern / 50
    filtered.save_pretrained(tmp_path / "filtered")
    reloaded = load_pixel_decoder(tmp_path / "filtered")
    assert reloaded.config.anti_alias
    latents = torch.randn(1, TINY_AUTOENCODER.latent_channels, 6, 5)
    assert torch.equal(reloaded.decode(autoencoder, latents), filtered.decode(autoencoder, latents))


def test_pixel_decoder_classes_come_from_the_bundle_s_one_registry():
    from versacodec.bundle import COMPONENT_CLASSES
    from versacodec.pixel_decoders import PIXEL_DECODER_CLASS_NAMES
    from versacodec.pixel_decoders.restoration import RestorationDecoder
    from versacodec.pixel_decoders.taef2_decoder import FineTunedTAEF2Decoder

    assert {COMPONENT_CLASSES[name] for name in PIXEL_DECODER_CLASS_NAMES} == {
        DecoderTail, RestorationDecoder, FineTunedTAEF2Decoder}


def test_a_pixel_decoder_on_another_latent_space_is_a_model_error():
    """Pixel decoders run the autoencoder's own decoder layers; TAEF2 or a diffusers VAE has none."""
    autoencoder = Autoencoder(TINY_AUTOENCODER)
    tail = DecoderTail.from_autoencoder(autoencoder, FIRST_LAYER)
    tail.check_fits(autoencoder)

    class OtherLatentSpace:
        name = "taef2"

    with pytest.raises(ModelError, match="taef2"):
        tail.check_fits(OtherLatentSpace())
    with pytest.raises(ModelError, match="different autoencoder"):
        tail.check_fits(Autoencoder(AutoencoderConfig()))
    from versacodec.pixel_decoders.taef2_decoder import FineTunedTAEF2Decoder

    with pytest.raises(ModelError, match="decodes TAEF2 latents"):  # and TAEF2's decoder fits TAEF2 only
        FineTunedTAEF2Decoder().check_fits(autoencoder)


def test_taef2_decoder_with_the_grid_notch_renders_no_8px_pattern(tmp_path):
    """v5's generative decoder drew a fine grid locked to the 8-px latent grid; with `grid_notch`
    its output goes through the fixed notch, which leaves nothing of such a pattern but its mean,
    and the flag survives saving."""
    from versacodec.latent_space.taef2 import TAEF2
    from versacodec.pixel_decoders.taef2_decoder import FineTunedTAEF2Decoder

    torch.manual_seed(0)
    taef2 = TAEF2()
    plain = FineTunedTAEF2Decoder.from_latent_space(taef2)
    notched = FineTunedTAEF2Decoder.from_latent_space(taef2, grid_notch=True)
    latents = torch.randn(1, 32, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(notched(taef2, latents), notched.notch(plain(taef2, latents)))
        cell = torch.rand(1, 3, 8, 8)
        grid = cell.repeat(1, 1, 12, 12)  # any pattern that repeats with the 8-px cell
        inside = notched.notch(grid)[..., 24:72, 24:72]  # away from the replicated borders
        torch.testing.assert_close(inside, cell.mean((2, 3), keepdim=True).expand_as(inside), atol=1e-5, rtol=0)
    notched.save_pretrained(tmp_path / "notched")
    assert load_pixel_decoder(tmp_path / "notched").config.grid_notch
