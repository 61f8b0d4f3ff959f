import pytest
import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

from versacodec.errors import InputError, ModelError
from versacodec.generative.decoder import GenerativeDecoder, PriorArchitecture, control_branch, default_scheduler
from versacodec.generative.losses import SemanticLossConfig, semantic_consistency_loss
from versacodec.generative.schedule import NoiseSchedule
from versacodec.generative.tags import TagEmbedding, TagEmbeddingConfig
from versacodec.tiling import tiled_map

TINY_PRIOR = PriorArchitecture(latent_channels=4, block_out_channels=(32, 32), cross_attention_dim=32,
                               attention_head_dim=8)


@pytest.fixture(scope="module")
def decoder() -> GenerativeDecoder:
    torch.manual_seed(0)
    unet = TINY_PRIOR.build()
    controlnet = control_branch(unet)
    for parameter in controlnet.parameters():  # zero-initialised outputs would hide the control path
        parameter.data.add_(torch.randn_like(parameter) * 0.01)
    tags = TagEmbedding(TagEmbeddingConfig(embedding_dim=32), torch.randn(1000, 64))
    return GenerativeDecoder(unet.eval(), controlnet.eval(), tags,
                             default_scheduler())


def test_sampling_is_deterministic_given_the_seed(decoder):
    latent = torch.randn(1, 4, 12, 16)
    first = decoder.sample(latent, [1, 2], steps=3, cfg=3.0, seed=5)
    assert torch.equal(first, decoder.sample(latent, [1, 2], steps=3, cfg=3.0, seed=5))
    assert not torch.equal(first, decoder.sample(latent, [1, 2], steps=3, cfg=3.0, seed=6))
    assert first.shape == latent.shape


def test_guidance_scale_and_tags_change_the_result(decoder):
    latent = torch.randn(1, 4, 8, 8)
    plain = decoder.sample(latent, [7], steps=1, cfg=1.0, seed=0)
    assert not torch.equal(plain, decoder.sample(latent, [7], steps=1, cfg=5.0, seed=0))
    assert not torch.equal(plain, decoder.sample(latent, [8], steps=1, cfg=1.0, seed=0))


def test_one_step_and_multi_step_start_from_the_compressed_latent(decoder):
    latent = torch.randn(1, 4, 8, 8)
    one = decoder.sample(latent, [], steps=1, cfg=5.0, seed=0)
    four = decoder.sample(latent, [], steps=4, cfg=5.0, seed=0)
    assert one.shape == four.shape and not torch.equal(one, four)
    assert torch.equal(decoder.sample(latent, [], steps=0, cfg=5.0, seed=0), latent)  # no diffusion at all


def test_bad_sampling_settings_are_clear_errors():
    from versacodec.options import DecodeOptions

    with pytest.raises(InputError, match="steps must be between 0 and 1000"):
        DecodeOptions(steps=-1)
    with pytest.raises(InputError, match="cfg must be between 0 and 50"):
        DecodeOptions(cfg=-1)


def test_tiles_cover_the_image_and_blend_exactly_for_pointwise_functions():
    x = torch.randn(1, 3, 37, 53)
    out = tiled_map(lambda t: t * 2 + 1, (x,), tile=16, overlap=4)
    assert torch.allclose(out, x * 2 + 1, atol=1e-5)
    upsampled = tiled_map(lambda t: t.repeat_interleave(2, -1).repeat_interleave(2, -2), (x,), 16, 4, scale=2)
    assert torch.allclose(upsampled, x.repeat_interleave(2, -1).repeat_interleave(2, -2), atol=1e-5)


def test_large_latents_are_denoised_in_tiles(decoder):
    decoder_config = decoder.config
    try:
        decoder.config = type(decoder_config)(tile_size=16, tile_overlap=4)
        out = decoder.sample(torch.randn(1, 4, 24, 40), [3], steps=2, cfg=5.0, seed=1)
        assert out.shape == (1, 4, 24, 40) and torch.isfinite(out).all()
    finally:
        decoder.config = decoder_config


def test_save_and_load_round_trip(decoder, tmp_path):
    decoder.save_pretrained(tmp_path / "gen")
    loaded = GenerativeDecoder.from_pretrained(tmp_path / "gen")
    latent = torch.randn(1, 4, 8, 8)
    settings = {"steps": 2, "cfg": 5.0, "seed": 2}
    assert torch.equal(loaded.sample(latent, [4], **settings), decoder.sample(latent, [4], **settings))
    with pytest.raises(ModelError, match="lacks"):
        GenerativeDecoder.from_pretrained(tmp_path)


def test_stable_diffusion_folder_is_accepted(tmp_path):
    folder = tmp_path / "sd"
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(32, 32), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=24,
                                attention_head_dim=8)
    unet.save_pretrained(folder / "unet")
    AutoencoderKL(block_out_channels=(32,), latent_channels=4, norm_num_groups=8).save_pretrained(folder / "vae")
    DDIMScheduler(prediction_type="epsilon").save_pretrained(folder / "scheduler")
    decoder = GenerativeDecoder.from_stable_diffusion(folder)
    assert decoder.tags.config.embedding_dim == 24
    out = decoder.sample(torch.randn(1, 4, 8, 8), [1], steps=2, cfg=2.0, seed=0)
    assert out.shape == (1, 4, 8, 8)
    with pytest.raises(ModelError, match="not a diffusers Stable Diffusion folder"):
        GenerativeDecoder.from_stable_diffusion(tmp_path)


def test_semantic_consistency_loss_reaches_the_decoded_latent(decoder):
    latent = torch.randn(2, 4, 8, 8)
    latent_hat = (latent + 0.3 * torch.randn_like(latent)).requires_grad_(True)
    tokens = decoder.tags(decoder.tags.pad([[1], []]))
    for config in (SemanticLossConfig(), SemanticLossConfig(location="down.0", metric="mse", timestep=10)):
        loss = semantic_consistency_loss(decoder.unet, latent, latent_hat, tokens, config)
        assert loss.shape == (2,)
        loss.sum().backward()
        assert latent_hat.grad.abs().sum() > 0
        latent_hat.grad = None
    same = semantic_consistency_loss(decoder.unet, latent, latent, tokens, SemanticLossConfig())
    assert torch.allclose(same, torch.full((2,), -1.0), atol=1e-5)


def test_noise_schedule_recovers_the_clean_latent_from_the_true_target():
    schedule = NoiseSchedule(default_scheduler())
    clean, noise = torch.randn(3, 4, 5, 5), torch.randn(3, 4, 5, 5)
    timesteps = torch.tensor([0, 400, 999])
    noisy = schedule.add_noise(clean, noise, timesteps)
    estimate, noise_estimate = schedule.split(noisy, schedule.target(clean, noise, timesteps), timesteps)
    assert torch.allclose(estimate, clean, atol=1e-4) and torch.allclose(noise_estimate, noise, atol=1e-4)
    assert schedule.trajectory(4, 600) == [600, 450, 300, 150]


def test_tag_embedding_pads_and_marks_empty_slots():
    embedding = TagEmbedding(TagEmbeddingConfig(embedding_dim=16, max_tags=3))
    ids = embedding.pad([[5, 6, 7, 8], []])
    assert ids.tolist() == [[5, 6, 7], [-1, -1, -1]]
    tokens = embedding(ids)
    assert tokens.shape == (2, 3, 16)
    assert torch.allclose(tokens[1] - embedding.position, embedding.null.expand(3, 16))
