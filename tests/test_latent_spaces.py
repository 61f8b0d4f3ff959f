"""External latent spaces (TAEF2, diffusers SD-VAE) and the spec registry."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL
from PIL import Image

from conftest import TINY_AUTOENCODER, build_taef2_bundle, shared_dir
from versacodec.errors import InputError, ModelError
from versacodec.latent_space.autoencoder import Autoencoder
from versacodec.latent_space.base import LatentSpace
from versacodec.latent_space.registry import load_latent_space, load_latent_space_folder
from versacodec.latent_space.sd_vae import StableDiffusionVAE
from versacodec.latent_space.taef2 import DECODER_FILE, ENCODER_FILE, TAEF2
from versacodec.metrics.quality import psnr
from versacodec.paths import third_party_model

# A sharp outdoor photo from the training split (never Kodak, which is the evaluation set).
TRAIN_PHOTO = ("data", "train", "sun-hays80", "img_002_SRF_8_HR.jpg")


def centre_crop(path, size: int) -> torch.Tensor:
    image = Image.open(path).convert("RGB")
    left, top = (image.width - size) // 2, (image.height - size) // 2
    array = np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.float32) / 255
    return torch.from_numpy(array).permute(2, 0, 1)[None]


# ---------------------------------------------------------------- TAEF2

@pytest.mark.shared
def test_taef2_round_trip_on_a_real_photo() -> None:
    if third_party_model(ENCODER_FILE) is None or third_party_model(DECODER_FILE) is None:
        pytest.skip(f"TAEF2 weights ({ENCODER_FILE}, {DECODER_FILE}) are not in the model directory")
    photo = shared_dir(*TRAIN_PHOTO)
    if photo is None:
        pytest.skip(f"training photo {'/'.join(TRAIN_PHOTO)} is not available")
    model = TAEF2.from_files()
    assert isinstance(model, LatentSpace)
    images = centre_crop(photo, 192)
    with torch.no_grad():
        latents = model.encode(images)
        decoded = model.decode(latents)
    assert latents.shape == (1, 32, 24, 24)
    # The stored statistics normalise real photos to roughly zero mean, unit variance.
    assert abs(latents.mean().item()) < 0.3 and 0.6 < latents.std().item() < 1.5
    assert decoded.shape == images.shape and decoded.min() >= 0 and decoded.max() <= 1
    # Measured 33.4 dB; a wrong guess at the flux_2 pool branch loses 1-5 dB or far more.
    assert psnr(decoded, images).item() > 30


def test_taef2_missing_weights_say_where_they_were_looked_for(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VERSACODEC_MODELS", str(tmp_path))
    with pytest.raises(ModelError, match=str(tmp_path / ENCODER_FILE)):
        TAEF2.from_files()
    with pytest.raises(ModelError, match="TAEF2 weights not found"):
        load_latent_space("taef2")


def test_taef2_loads_strictly(tmp_path) -> None:
    model = TAEF2()
    encoder, decoder = tmp_path / "encoder.pth", tmp_path / "decoder.pth"
    torch.save({**model.encoder.state_dict(), "15.weight": torch.zeros(1)}, encoder)
    torch.save(model.decoder.state_dict(), decoder)
    with pytest.raises(ModelError, match=r"unexpected \['15.weight'\]"):
        TAEF2.from_files(encoder, decoder)
    decoder_state = model.decoder.state_dict()
    del decoder_state["3.pool.1.weight"]
    torch.save(model.encoder.state_dict(), encoder)
    torch.save(decoder_state, decoder)
    with pytest.raises(ModelError, match=r"missing \['3.pool.1.weight'\]"):
        TAEF2.from_files(encoder, decoder)


def test_taef2_rejects_sides_not_divisible_by_8() -> None:
    with pytest.raises(InputError, match="divisible by 8"):
        TAEF2().encode(torch.rand(1, 3, 20, 16))


def test_taef2_component_folder_round_trips_and_loads_by_its_class_name(tmp_path) -> None:
    torch.manual_seed(0)
    model = TAEF2().eval()
    model.save_pretrained(tmp_path / "taef2")
    assert json.loads((tmp_path / "taef2" / "config.json").read_text())["_class_name"] == "TAEF2"
    images = torch.rand(1, 3, 32, 40)
    for loaded in (TAEF2.from_pretrained(tmp_path / "taef2"), load_latent_space_folder(tmp_path / "taef2"),
                   load_latent_space(f"versacodec:{tmp_path / 'taef2'}")):
        assert isinstance(loaded, TAEF2) and not any(p.requires_grad for p in loaded.parameters())
        with torch.no_grad():
            torch.testing.assert_close(loaded.encode(images), model.encode(images))
            torch.testing.assert_close(loaded.decode_latents_unclamped(loaded.encode(images)),
                                       model.decode_latents_unclamped(model.encode(images)))


def test_a_bundle_on_taef2_codes_and_decodes(tmp_path) -> None:
    """v5's layout: TAEF2 as the bundle's latent space, a 32-channel latent codec on it."""
    import versacodec

    build_taef2_bundle(tmp_path)
    image = Image.fromarray((np.random.default_rng(0).random((80, 96, 3)) * 255).astype(np.uint8))
    data = versacodec.compress(image, quality=50, model=tmp_path)
    decoded = versacodec.decompress(data, model=tmp_path)
    assert decoded.size == image.size and decoded.mode == "RGB"


def test_a_folder_that_holds_no_latent_space_is_refused(tmp_path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "LatentCodec"}))
    with pytest.raises(ModelError):
        load_latent_space_folder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "NoSuchClass"}))
    with pytest.raises(ModelError, match="NoSuchClass"):
        load_latent_space_folder(tmp_path)


# ---------------------------------------------------------------- SD-VAE

def tiny_vae() -> AutoencoderKL:
    torch.manual_seed(0)
    return AutoencoderKL(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                         up_block_types=("UpDecoderBlock2D",) * 2, layers_per_block=1, latent_channels=4,
                         norm_num_groups=4, scaling_factor=0.5, shift_factor=0.1)


@pytest.fixture(scope="module")
def sd_folders(tmp_path_factory):
    """A pipeline-style folder (weights in vae/) and a bare VAE folder, holding the same VAE."""
    root = tmp_path_factory.mktemp("sd")
    vae = tiny_vae()
    vae.save_pretrained(root / "pipeline" / "vae")
    vae.save_pretrained(root / "vae-only")
    return vae.eval(), root / "pipeline", root / "vae-only"


def test_sd_vae_adapter_shapes_scaling_and_determinism(sd_folders) -> None:
    reference, pipeline, vae_only = sd_folders
    images = torch.rand(2, 3, 32, 24)
    for folder in (pipeline, vae_only):
        space = StableDiffusionVAE.from_pretrained(folder)
        assert isinstance(space, LatentSpace)
        assert (space.factor, space.channels) == (2, 4)
        with torch.no_grad():
            latents = space.encode(images)
            assert torch.equal(latents, space.encode(images))  # posterior mean, no sampling
            expected = (reference.encode(images * 2 - 1).latent_dist.mean - 0.1) * 0.5
            decoded = space.decode(latents)
        assert latents.shape == (2, 4, 16, 12)
        torch.testing.assert_close(latents, expected)
        assert decoded.shape == images.shape and decoded.min() >= 0 and decoded.max() <= 1


def test_sd_vae_rejects_folders_that_hold_no_vae(tmp_path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        StableDiffusionVAE.from_pretrained(tmp_path / "absent")
    with pytest.raises(ModelError, match="is not a diffusers VAE folder"):
        StableDiffusionVAE.from_pretrained(tmp_path)
    Autoencoder(TINY_AUTOENCODER).save_pretrained(tmp_path / "ours")
    with pytest.raises(ModelError, match="describes a 'Autoencoder' model, not a diffusers AutoencoderKL"):
        StableDiffusionVAE.from_pretrained(tmp_path / "ours")
    (tmp_path / "no-weights").mkdir()
    (tmp_path / "no-weights" / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL"}))
    with pytest.raises(ModelError, match="cannot load the AutoencoderKL in"):
        StableDiffusionVAE.from_pretrained(tmp_path / "no-weights")


# ---------------------------------------------------------------- registry

def test_registry_builds_each_kind(sd_folders, tiny_bundle) -> None:
    _, pipeline, _ = sd_folders
    assert isinstance(load_latent_space(f"sd-vae:{pipeline}"), StableDiffusionVAE)
    for folder in (tiny_bundle, tiny_bundle / "autoencoder"):
        space = load_latent_space(f"versacodec:{folder}")
        assert isinstance(space, Autoencoder) and isinstance(space, LatentSpace)


@pytest.mark.parametrize("spec", ["", "flux", "taef2:somewhere", "sd-vae:", "versacodec"])
def test_registry_unknown_spec_lists_the_options(spec: str) -> None:
    with pytest.raises(InputError, match=r"options: versacodec:<folder>, taef2, sd-vae:<folder>"):
        load_latent_space(spec)


def test_registry_passes_model_errors_through(tmp_path) -> None:
    with pytest.raises(ModelError):
        load_latent_space(f"versacodec:{tmp_path}")
    with pytest.raises(ModelError):
        load_latent_space(f"sd-vae:{tmp_path}")


def test_a_generative_decoder_without_a_prior_renders_the_codecs_latent_in_one_pass(v5_bundle) -> None:
    """v5's layout: the generative component is a pixel decoder (TAEF2's decoder, fine-tuned)."""
    import versacodec
    from versacodec.codec import Codec
    from versacodec.codec.model import ModelDefaults
    from versacodec.errors import InputError

    defaults = ModelDefaults.read(v5_bundle)
    assert defaults.decoders == ("generative", "direct") and not defaults.has_prior
    image = Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8))
    data = versacodec.compress(image, quality=50, model=v5_bundle)
    codec = Codec.from_pretrained(v5_bundle)
    assert codec.read(data).tags is None  # tags guide a prior; this model has none
    generative = np.asarray(versacodec.decompress(data, model=v5_bundle), dtype=float)
    direct = np.asarray(versacodec.decompress(data, model=v5_bundle, decoder="direct"), dtype=float)
    assert generative.mean() > direct.mean() + 20  # the default decode is the generative pixel decoder's
    with pytest.raises(InputError, match="no diffusion prior"):
        versacodec.decompress(data, model=v5_bundle, steps=4)
    assert codec.model.generative is None and codec.model.generative_config is None
