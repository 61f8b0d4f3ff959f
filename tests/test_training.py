"""The training loop and configs: resumable checkpoints, logs, parameter groups, a real stage on tiny data."""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import build_taef2_bundle, natural_image
from versacodec.errors import InputError
from versacodec.training.config import ScheduleConfig, load_yaml_config
from versacodec.training.registry import STAGES
from versacodec.training.trainer import TrainingDiverged, parameter_groups, run_stage


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


class Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(4, 1)
        self.density = nn.Parameter(torch.zeros(3))


@dataclass
class ToyStage:
    schedule: ScheduleConfig
    model: Toy = field(default_factory=Toy)

    def trainable(self) -> nn.Module:
        return self.model

    def prepare(self, accelerator) -> None:
        pass

    def training_step(self, model, step, rank, device):
        x = torch.randn(8, 4, generator=torch.Generator().manual_seed(step))
        loss = (model.body(x) - x.sum(1, keepdim=True)).pow(2).mean() + model.density.pow(2).sum()
        return loss, {"loss": loss.item()}

    def validate(self, device):
        return {"weight_sum": float(self.model.body.weight.sum())}

    def export(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(self.model.state_dict(), directory / "toy.pt")


def test_a_log_that_gains_a_column_on_resume_keeps_one_header(tmp_path):
    from versacodec.training.trainer import MetricLog

    MetricLog(tmp_path, "train", True).write(1, {"loss": 1.0, "l1": 0.5})
    MetricLog(tmp_path, "train", True).write(2, {"loss": 0.9, "periodic": 3.0, "l1": 0.4})
    rows = read_csv(tmp_path / "train.csv")
    assert [(r["step"], r["l1"], r["periodic"]) for r in rows] == [("1", "0.5", ""), ("2", "0.4", "3.0")]


def test_parameter_groups_take_the_scale_of_a_matching_name():
    groups = parameter_groups(Toy(), {"density": 25.0})
    assert [(g["lr_scale"], len(g["params"])) for g in groups] == [(1.0, 2), (25.0, 1)]


def test_a_stage_resumes_from_its_checkpoint_and_logs(tmp_path):
    def schedule(steps):
        return ScheduleConfig(output_dir=str(tmp_path / "run"), steps=steps, warmup_steps=1, log_every=2,
                              checkpoint_every=2, validate_every=4, learning_rate=1e-2)

    run_stage(ToyStage(schedule(4)), progress=False)
    first = torch.load(tmp_path / "run/checkpoint.pt", weights_only=True)
    assert first["step"] == 4 and (tmp_path / "run/final/toy.pt").is_file()
    resumed = ToyStage(schedule(6))
    run_stage(resumed, progress=False)
    rows = read_csv(tmp_path / "run/train.csv")
    assert [int(r["step"]) for r in rows] == [2, 4, 6]  # steps 1-4 were not repeated
    assert torch.load(tmp_path / "run/checkpoint.pt", weights_only=True)["step"] == 6
    validation = read_csv(tmp_path / "run/validation.csv")
    assert [int(r["step"]) for r in validation] == [4, 6]
    # resuming restored the trained weights rather than starting from a fresh initialisation
    assert not torch.equal(first["model"]["body.weight"], Toy().body.weight)
    snapshot = run_stage(ToyStage(schedule(6)), progress=False, export_only=True)
    assert snapshot.name == "snapshot-6" and (snapshot / "toy.pt").is_file()


@dataclass
class BlowingUpToyStage(ToyStage):
    """The loss is multiplied by 1000 on the steps in `bad_steps` (counted over all calls)."""

    bad_steps: tuple[int, ...] = ()
    calls: int = 0

    def training_step(self, model, step, rank, device):
        loss, _ = super().training_step(model, step, rank, device)
        self.calls += 1
        if self.calls in self.bad_steps:
            loss = loss * 1000
        return loss, {"loss": loss.item()}


def test_a_diverging_loss_rolls_back_to_the_checkpoint_at_half_the_learning_rate(tmp_path):
    schedule = ScheduleConfig(output_dir=str(tmp_path / "run"), steps=8, warmup_steps=1, log_every=2,
                              checkpoint_every=2, validate_every=100, learning_rate=1e-3)
    stage = BlowingUpToyStage(schedule, bad_steps=(5, 6))  # steps 5-6 of the first pass blow up
    run_stage(stage, progress=False)
    assert stage.calls == 10  # steps 5 and 6 ran again after going back to the step-4 checkpoint
    steps = [int(r["step"]) for r in read_csv(tmp_path / "run/train.csv")]
    assert steps == [2, 4, 6, 6, 8]
    last = torch.load(tmp_path / "run/checkpoint.pt", weights_only=True)
    assert last["step"] == 8 and last["lr_factor"] == 0.5
    assert float(read_csv(tmp_path / "run/train.csv")[-1]["lr"]) < 1e-3 * 0.5 + 1e-12


def test_divergence_with_no_checkpoint_or_rollback_left_stops_with_a_clear_error(tmp_path):
    schedule = ScheduleConfig(output_dir=str(tmp_path / "run"), steps=8, warmup_steps=1, log_every=2,
                              checkpoint_every=4, validate_every=100, max_rollbacks=0)
    with pytest.raises(TrainingDiverged, match=r"diverged at step 6 .*no rollback is left"):
        run_stage(BlowingUpToyStage(schedule, bad_steps=(5, 6)), progress=False)
    first_window = ScheduleConfig(output_dir=str(tmp_path / "fresh"), steps=8, warmup_steps=1, log_every=2,
                                  checkpoint_every=4, validate_every=100)
    stage = BlowingUpToyStage(first_window, bad_steps=(3, 4))
    with pytest.raises(TrainingDiverged, match="no checkpoint yet"):
        run_stage(stage, progress=False)


@dataclass
class SlowToyStage(ToyStage):
    """10 ms steps, then `late_seconds` from step 40 (a machine that other jobs start to share)."""

    late_seconds: float = 0.01

    def training_step(self, model, step, rank, device):
        time.sleep(0.01 if step < 40 else self.late_seconds)
        return super().training_step(model, step, rank, device)


def budgeted_schedule(tmp_path, seconds: float) -> ScheduleConfig:
    return ScheduleConfig(output_dir=str(tmp_path / "run"), steps=100_000, time_budget_s=seconds, warmup_steps=1,
                          log_every=10, checkpoint_every=10, validate_every=100_000)


def test_a_time_budget_fixes_the_run_length_and_a_resume_keeps_it(tmp_path):
    schedule = budgeted_schedule(tmp_path, 1.0)
    started = time.time()
    run_stage(SlowToyStage(schedule), progress=False)
    state = torch.load(tmp_path / "run/checkpoint.pt", weights_only=True)
    # ~0.9 s of 10 ms steps: far fewer than the upper bound, and training stopped within the budget
    assert 25 <= state["step"] <= 100 and state["steps"] == state["step"]
    assert time.time() - started < 5
    assert (tmp_path / "run/final/toy.pt").is_file()
    # a resumed run with the same config finishes the chosen schedule instead of re-budgeting
    run_stage(SlowToyStage(schedule), progress=False)
    assert torch.load(tmp_path / "run/checkpoint.pt", weights_only=True)["step"] == state["step"]
    # resumed from an earlier point, it trains to the same length and keeps it in its checkpoints
    torch.save(state | {"step": state["step"] - 5}, tmp_path / "run/checkpoint.pt")
    run_stage(SlowToyStage(schedule), progress=False)
    resumed = torch.load(tmp_path / "run/checkpoint.pt", weights_only=True)
    assert resumed["step"] == state["step"] and resumed["steps"] == state["steps"]


def test_a_time_budget_refits_the_length_when_the_machine_slows_down(tmp_path):
    schedule = budgeted_schedule(tmp_path, 2.0)
    started = time.time()
    run_stage(SlowToyStage(schedule, late_seconds=0.1), progress=False)
    state = torch.load(tmp_path / "run/checkpoint.pt", weights_only=True)
    # a length fixed from the first steps (~180 of 10 ms) would take ~14 s; refitted every 20 steps
    # (the shortest spacing) it overruns the 2 s by at most the steps between two fits
    assert time.time() - started < 4
    assert 40 < state["step"] < 100 and state["steps"] == state["step"]


@pytest.mark.parametrize(("text", "message"), [
    ("schedule: {steps: 3}\n", "needs a top-level 'stage' key"),
    ("stage: nonsense\n", "unknown stage 'nonsense'"),
    ("stage: latent_codec\nschedule: {stepz: 3}\n", "stepz"),
    ("stage: latent_codec\n: [\n", "cannot read config"),
])
def test_bad_configs_are_input_errors(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        load_yaml_config(path, STAGES)


def test_set_overrides_nested_values_on_top_of_the_file():
    config_file = Path(__file__).parents[1] / "configs" / "accelerator" / "latent_codec_decoded.yaml"
    _, plain = load_yaml_config(config_file, STAGES)
    _, changed = load_yaml_config(config_file, STAGES, [
        "autoencoder=runs/new_autoencoder", "schedule.time_budget_s=480", "loss.lambdas=[0.007, 0.03, 12.0]"])
    assert changed.autoencoder == "runs/new_autoencoder" and changed.schedule.time_budget_s == 480
    assert tuple(changed.loss.lambdas) == (0.007, 0.03, 12.0)
    assert changed.schedule.batch_size == plain.schedule.batch_size and changed.model == plain.model


@pytest.mark.parametrize(("override", "message"), [
    ("schedule.steps", "expected KEY=VALUE"),
    ("schedule..steps=3", "expected KEY=VALUE"),
    ("stage=prior", "cannot change the stage"),
    ("autoencoder.width=3", "is a value, not a section"),
    ("schedule.stepz=3", "stepz"),
    ("loss.lambdas=[0.1", "not valid YAML"),
])
def test_bad_overrides_are_input_errors(override, message):
    config_file = Path(__file__).parents[1] / "configs" / "accelerator" / "latent_codec_decoded.yaml"
    with pytest.raises(InputError, match=message):
        load_yaml_config(config_file, STAGES, [override])


@pytest.mark.parametrize(("name", "stage"), [
    ("autoencoder", "autoencoder"), ("autoencoder_decoder", "autoencoder"), ("latent_codec", "latent_codec"),
    ("prior", "prior"), ("control_stage1", "control"), ("control_stage2", "control"), ("control_stage3", "control"),
    ("partial_synthesis", "control"), ("pixel_decoder", "pixel_decoder"),
    ("pixel_decoder_adversarial", "pixel_decoder"), ("pixel_decoder_adversarial_b", "pixel_decoder"),
    ("pixel_decoder_codec_adapt", "pixel_decoder"),
    ("latent_codec_decoder_weighted", "latent_codec"), ("ablation/latent_codec_control", "latent_codec"),
    ("ablation/direct_decoder", "pixel_decoder"), ("ablation/latent_codec_new_autoencoder", "latent_codec"),
    ("pixel_decoder_restoration", "pixel_decoder"), ("direct_decoder", "pixel_decoder"),
    ("direct_decoder_perceptual", "pixel_decoder"), ("direct_decoder_notch", "pixel_decoder"),
    ("ablation/direct_decoder_fidelity", "pixel_decoder"),
    ("pixel_decoder_restoration_notch", "pixel_decoder"), ("v5/latent_codec", "latent_codec"),
    ("v5/latent_codec_decoded", "latent_codec"), ("v5/latent_codec_wide", "latent_codec"),
    ("v5/latent_codec_linear", "latent_codec"), ("v5/latent_codec_linear_b", "latent_codec"),
    ("v5/latent_codec_linear_decoded", "latent_codec"), ("v5/latent_codec_linear_lowpass", "latent_codec"),
    ("v5/latent_codec_linear_lowpass_192", "latent_codec"),
    ("v5/latent_codec_continued", "latent_codec"),
    ("v5/generative_decoder", "pixel_decoder"), ("v5/generative_decoder_b", "pixel_decoder"),
    ("v5/generative_decoder_notch", "pixel_decoder"), ("v5/generative_decoder_linear", "pixel_decoder"),
])
def test_shipped_configs_load(name, stage):
    loaded, config = load_yaml_config(Path(__file__).parents[1] / "configs" / f"{name}.yaml", STAGES)
    assert loaded == stage and config.schedule.steps > 0


@pytest.mark.parametrize(("name", "stage"), [
    ("latent_codec", "latent_codec"), ("prior", "prior"), ("control_stage1", "control"),
    ("control_stage2", "control"), ("control_stage3", "control"), ("latent_codec_decoded", "latent_codec"),
    ("latent_codec_decoder_weighted", "latent_codec"), ("autoencoder_decoder_tail", "autoencoder"),
    ("autoencoder_finetune", "autoencoder"),
])
def test_accelerator_configs_load_with_a_time_budget(name, stage):
    loaded, config = load_yaml_config(Path(__file__).parents[1] / "configs" / "accelerator" / f"{name}.yaml", STAGES)
    assert loaded == stage and config.schedule.time_budget_s > 0


def run_yaml_stage(tmp_path: Path, images: int, yaml_text: str, size: int = 64) -> Path:
    """Write a small training pool (tmp_path/pool) and the config, run the stage, return its final/."""
    data = tmp_path / "pool"
    data.mkdir()
    for index in range(images):
        natural_image(size, size, seed=index).save(data / f"image{index}.png")
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml_text.replace("DATA", str(data)))
    stage_name, config = load_yaml_config(config_file, STAGES)
    return run_stage(STAGES[stage_name](config), progress=False)


@pytest.mark.parametrize("distortion", ["latent", "decoder_weighted", "decoded"])
def test_latent_codec_stage_trains_on_cached_latents(tmp_path, tiny_bundle, distortion):
    final = run_yaml_stage(tmp_path, 6, f"""stage: latent_codec
autoencoder: {tiny_bundle / 'autoencoder'}
cache_dir: {tmp_path / 'cache'}
latent_crop: 8
schedule: {{output_dir: {tmp_path / 'run'}, data_dir: DATA, steps: 2, batch_size: 2, log_every: 1,
            checkpoint_every: 1, validate_every: 2, validation_images: 2, lr_scales: {{hyper_density: 10.0}}}}
model: {{latent_channels: 4, width: 16, blocks: 1, hyper_width: 16, context_hidden: 16, rate_levels: 2}}
loss: {{lambdas: [0.1, 1.0], distortion: {distortion}}}
""")
    assert (final / "config.json").is_file()
    assert len(list((tmp_path / "cache").glob("latents-*/*.pt"))) == 6  # each image's latents, cached
    validation = read_csv(tmp_path / "run/validation.csv")[0]
    assert float(validation["bpp_0"]) > 0
    same = float(validation["distortion_0"]) == pytest.approx(float(validation["mse_0"]), rel=1e-4)
    assert same == (distortion == "latent")  # equal weights leave the plain MSE


def test_latent_codec_stage_trains_on_taef2_latents_of_image_windows(tmp_path, monkeypatch):
    import json

    from versacodec.latent_space.taef2 import TAEF2
    from versacodec.training.latent_cache import CacheVariants
    from versacodec.training.stages import latent_codec

    torch.manual_seed(0)
    TAEF2().save_pretrained(tmp_path / "taef2")
    final = run_yaml_stage(tmp_path, 5, f"""stage: latent_codec
autoencoder: {tmp_path / 'taef2'}
cache_dir: {tmp_path / 'cache'}
latent_crop: 8
cache_variants: {{crop: 64, flips: false, seed: 3}}
schedule: {{output_dir: {tmp_path / 'run'}, data_dir: DATA, steps: 1, batch_size: 2, log_every: 1,
            checkpoint_every: 1, validate_every: 1, validation_images: 2}}
model: {{latent_channels: 32, width: 16, blocks: 1, y_channels: 16, groups: [8, 8], hyper_width: 16,
         context_hidden: 16, rate_levels: 2}}
loss: {{lambdas: [0.1, 1.0], distortion: decoder_weighted}}
""", size=96)
    assert (final / "config.json").is_file()
    [folder] = (tmp_path / "cache").glob("latents-*")
    assert folder.name.endswith(CacheVariants(64, False, 3).tag())
    entries = sorted(folder.glob("*.pt"))
    assert len(entries) == 5
    for entry in entries:  # one 64-px window per image, no mirror images
        [latent] = torch.load(entry, weights_only=True)
        assert latent.shape == (32, 8, 8)
    # The channel weights were measured once and kept with the run; a resumed stage reads them.
    stored = json.loads((tmp_path / "run" / latent_codec.CALIBRATION_FILE).read_text())["channel_weights"]
    assert len(stored) == 32 and sum(stored) == pytest.approx(32)
    monkeypatch.setattr(latent_codec, "decoder_channel_weights", lambda *args: pytest.fail("measured again"))
    stage_name, config = load_yaml_config(tmp_path / "config.yaml", STAGES)
    assert STAGES[stage_name](config).channel_weights.tolist() == pytest.approx(stored)


def test_taef2_decoder_trains_on_the_codecs_latents_of_cached_windows(tmp_path):
    """v5's generative decoder: TAEF2's decoder fine-tuned on pairs from the latent cache."""
    from versacodec.codec import Codec
    from versacodec.latent_space.taef2 import TAEF2
    from versacodec.pixel_decoders import load_pixel_decoder
    from versacodec.pixel_decoders.taef2_decoder import FineTunedTAEF2Decoder
    from versacodec.training.coded_latent_pairs import CodedLatentPairs
    from versacodec.training.data import list_images
    from versacodec.training.latent_cache import CacheVariants

    bundle = build_taef2_bundle(tmp_path / "bundle")
    final = run_yaml_stage(tmp_path, 4, f"""stage: pixel_decoder
bundle: {bundle}
architecture: taef2_decoder
pairs_from: latent_cache
cache_variants: {{crop: 64, flips: false}}
cache_dir: {tmp_path / 'cache'}
validation_pairs: 2
schedule: {{output_dir: {tmp_path / 'run'}, data_dir: DATA, steps: 2, batch_size: 2, crop_size: 64, log_every: 1,
            checkpoint_every: 1, validate_every: 2, validation_images: 1, learning_rate: 1.0e-3}}
loss: {{l1: 1.0, lpips: 0.0, dists: 0.0}}
""", size=80)
    decoder = load_pixel_decoder(final)
    assert isinstance(decoder, FineTunedTAEF2Decoder)
    taef2 = TAEF2.from_pretrained(bundle / "autoencoder")
    latents = torch.randn(1, 32, 4, 4)
    assert not torch.allclose(decoder.decode(taef2, latents), taef2.decode(latents))  # it trained
    untrained = FineTunedTAEF2Decoder.from_latent_space(taef2)
    torch.testing.assert_close(untrained.decode(taef2, latents), taef2.decode(latents))
    validation = read_csv(tmp_path / "run/validation.csv")[0]
    assert float(validation["decoder_l1"]) > 0 and float(validation["autoencoder_l1"]) > 0
    # A pair's pixels are the window whose latent the cache holds: TAEF2 encodes them to that latent.
    model = Codec.from_pretrained(bundle).model
    pairs = CodedLatentPairs(model.latent_codec, 8, bundle / "autoencoder", list_images(tmp_path / "pool"),
                             tmp_path / "cache", CacheVariants(64, False), 64)
    source, variant, latent = pairs.entries[0]
    window = pairs._window(source, variant)
    torch.testing.assert_close(taef2.encode(window[None].float().div(255))[0], latent.float(), atol=2e-2, rtol=0)
    images, coded = pairs.batch(0, step=3, rank=0, size=2)
    assert images.shape == (2, 3, 64, 64) and coded.shape == (2, 32, 8, 8)
    again = pairs.batch(0, step=3, rank=0, size=2)
    assert torch.equal(images, again[0]) and torch.equal(coded, again[1])  # reproducible per step


def test_the_latent_cache_encodes_only_images_it_has_not_seen(tmp_path, tiny_bundle, monkeypatch):
    from versacodec.training import latent_cache

    files = []
    for index in range(3):
        files.append(tmp_path / f"image{index}.png")
        natural_image(64, 64, seed=index).save(files[-1])
    autoencoder = tiny_bundle / "autoencoder"
    first = latent_cache.build_latent_cache(autoencoder, files[:2], tmp_path / "cache", progress=False)
    encoded = []
    real_load = latent_cache.load_latent_space_folder

    def counting_load(folder):
        space = real_load(folder)
        original = space.encode
        space.encode = lambda pixels: encoded.append(1) or original(pixels)
        return space

    monkeypatch.setattr(latent_cache, "load_latent_space_folder", counting_load)
    grown = latent_cache.build_latent_cache(autoencoder, files, tmp_path / "cache", progress=False)
    assert len(encoded) == 2  # the new image and its mirror image; the first two came from disk
    assert grown.sources == [0, 0, 1, 1, 2, 2]
    assert all(torch.equal(a, b) for a, b in zip(first.latents, grown.latents[:4], strict=True))


def _decoded_stage_config(tmp_path, tiny_bundle, loss: str):
    data = tmp_path / "pool"
    data.mkdir()
    for index in range(4):
        natural_image(64, 64, seed=index).save(data / f"image{index}.png")
    config = tmp_path / "config.yaml"
    config.write_text(f"""stage: latent_codec
autoencoder: {tiny_bundle / 'autoencoder'}
cache_dir: {tmp_path / 'cache'}
latent_crop: 8
schedule: {{output_dir: {tmp_path / 'run'}, data_dir: {data}, validation_images: 2}}
model: {{latent_channels: 4, width: 16, blocks: 1, hyper_width: 16, context_hidden: 16, rate_levels: 2}}
loss: {{lambdas: [0.1, 1.0], distortion: decoded, {loss}}}
""")
    return load_yaml_config(config, STAGES)[1]


def test_perceptual_low_pass_and_latent_terms_add_to_the_decoded_distortion(tmp_path, tiny_bundle):
    stage = STAGES["latent_codec"](_decoded_stage_config(
        tmp_path, tiny_bundle, "perceptual: 2.0, latent_weight: 0.5, low_pass: 3.0, low_pass_size: 16"))
    latents = stage.data.validation_latents[:2]
    noisy = latents + 0.3 * torch.randn(latents.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        target, decoded = (stage.decoder.decode_latents_unclamped(x) for x in (latents, noisy))
        # the local means by hand: 16 × 16 blocks of the error
        blocks = (decoded - target).unflatten(2, (-1, 16)).unflatten(4, (-1, 16)).mean((3, 5))
        expected = ((decoded - target).pow(2).flatten(1).mean(1) * stage.decoded_scale
                    + 3.0 * blocks.pow(2).flatten(1).mean(1) * stage.decoded_scale
                    + 2.0 * stage.lpips(decoded.clamp(0, 1), target.clamp(0, 1))
                    + 0.5 * (noisy - latents).pow(2).flatten(1).mean(1))
        torch.testing.assert_close(stage._distortion(noisy, latents), expected)
    assert (2.0 * stage.lpips(decoded.clamp(0, 1), target.clamp(0, 1)) > 0).all()
    assert (blocks.abs().sum((1, 2, 3)) > 0).all()
    validation = stage.validate("cpu")
    assert {"pixel_0", "low_pass_0", "pixel_1", "low_pass_1"} <= validation.keys()
    assert validation["low_pass_0"] <= validation["pixel_0"]  # a mean's square is at most the mean square


def test_the_local_means_tile_the_crop(tmp_path, tiny_bundle):
    with pytest.raises(InputError, match="low_pass_size"):  # 64-pixel crops
        STAGES["latent_codec"](_decoded_stage_config(tmp_path, tiny_bundle, "low_pass: 1.0, low_pass_size: 24"))


@pytest.mark.parametrize("term", ["perceptual", "latent_weight", "low_pass"])
@pytest.mark.parametrize("loss", ["{{distortion: latent, {term}: 1.0}}", "{{distortion: decoded, {term}: -1}}"])
def test_the_added_terms_need_the_decoded_distortion(tmp_path, loss, term):
    config = tmp_path / "config.yaml"
    config.write_text(f"stage: latent_codec\nloss: {loss.format(term=term)}\n")
    with pytest.raises(InputError, match=rf"loss\.{term}"):
        load_yaml_config(config, STAGES)


def test_cache_windows_are_drawn_per_image_and_reproducibly():
    from versacodec.training.latent_cache import CacheVariants

    image = torch.randint(0, 256, (3, 600, 700), dtype=torch.uint8)
    variants = CacheVariants(crop=128, flips=False, seed=1)
    windows = variants.of(image, key=4)
    assert [tuple(w.shape[-2:]) for w in windows] == [(128, 128), (128, 128)]  # own scale and half scale
    assert all(torch.equal(a, b) for a, b in zip(windows, variants.of(image, key=4), strict=True))
    assert not torch.equal(windows[0], variants.of(image, key=5)[0])
    assert len(CacheVariants().of(image, 0)) == 3 and CacheVariants().tag() == ""  # the v1-v4 policy
    assert CacheVariants(crop=128, flips=False, seed=1).tag() != CacheVariants(crop=128, seed=1).tag()


def test_decoder_weights_follow_what_the_decoder_shows():
    from conftest import TINY_AUTOENCODER
    from versacodec.latent_space.autoencoder import Autoencoder
    from versacodec.training.stages.latent_codec import decoder_channel_weights

    autoencoder = Autoencoder(TINY_AUTOENCODER).eval()
    with torch.no_grad():
        autoencoder.decoder[0].weight[:, 0] = 0  # the decoder never looks at channel 0
        autoencoder.decoder[0].weight[:, 1] *= 4  # and is most sensitive to channel 1
    weights = decoder_channel_weights(autoencoder, torch.randn(2, 4, 8, 8), noise=0.5)
    assert weights[0] == 0 and weights.argmax() == 1
    assert weights.mean().item() == pytest.approx(1.0)


def test_decoded_error_scale_puts_pixel_error_on_the_latent_scale():
    from conftest import TINY_AUTOENCODER
    from versacodec.latent_space.autoencoder import Autoencoder
    from versacodec.training.stages.latent_codec import decoded_error_scale

    autoencoder = Autoencoder(TINY_AUTOENCODER).eval()
    latents = torch.randn(2, 4, 8, 8)
    scale = decoded_error_scale(autoencoder, latents, noise=0.5)
    with torch.no_grad():
        autoencoder.decoder[-1].weight *= 2  # pixels move twice as far: a quarter of the factor
    assert decoded_error_scale(autoencoder, latents, noise=0.5) == pytest.approx(scale / 4, rel=1e-4)


def test_an_unknown_distortion_is_refused():
    from versacodec.training.stages.latent_codec import LatentCodecLoss

    with pytest.raises(InputError, match=r"loss\.distortion"):
        LatentCodecLoss(distortion="pixels")


def test_prior_stage_continues_from_a_bundle_generative_folder(tmp_path, generative_bundle):
    from diffusers import UNet2DConditionModel

    final = run_yaml_stage(tmp_path, 5, f"""stage: prior
autoencoder: {generative_bundle / 'autoencoder'}
init_from: {generative_bundle / 'generative'}
cache_dir: {tmp_path / 'cache'}
latent_crop: 8
schedule: {{output_dir: {tmp_path / 'run'}, data_dir: DATA, steps: 1, batch_size: 2, validation_images: 2,
            learning_rate: 1.0e-2, warmup_steps: 1}}
""")
    start = UNet2DConditionModel.from_pretrained(generative_bundle / "generative/unet", local_files_only=True)
    trained = UNet2DConditionModel.from_pretrained(final / "unet", local_files_only=True)
    assert trained.config.block_out_channels == start.config.block_out_channels
    changed = [not torch.equal(a, b) for a, b in zip(start.parameters(), trained.parameters(), strict=True)]
    assert any(changed)  # it trained from the bundle's weights, with the bundle's architecture


def test_decoder_only_fine_tuning_keeps_every_latent(tmp_path, tiny_bundle):
    from versacodec.latent_space.autoencoder import Autoencoder

    final = run_yaml_stage(tmp_path, 3, f"""stage: autoencoder
init_from: {tiny_bundle / 'autoencoder'}
train_encoder: false
schedule: {{output_dir: {tmp_path / 'run'}, data_dir: DATA, steps: 2, batch_size: 2, crop_size: 32,
            learning_rate: 1.0e-2, warmup_steps: 1, validation_images: 1}}
loss: {{lpips: 0.0}}
""", size=256)  # the stage validates on 256-pixel crops
    start, tuned = Autoencoder.from_pretrained(tiny_bundle / "autoencoder"), Autoencoder.from_pretrained(final)
    start_state, tuned_state = start.state_dict(), tuned.state_dict()
    decoder = [name for name in start_state if name.startswith("decoder.")]
    # encoder and normalisation bit for bit: the latents every other model was trained on
    assert all(torch.equal(start_state[k], tuned_state[k]) for k in start_state if k not in decoder)
    assert any(not torch.equal(start_state[k], tuned_state[k]) for k in decoder)


def test_decoder_tail_fine_tuning_keeps_the_frozen_layers(tmp_path, tiny_bundle):
    from versacodec.latent_space.autoencoder import Autoencoder

    final = run_yaml_stage(tmp_path, 3, f"""stage: autoencoder
init_from: {tiny_bundle / 'autoencoder'}
train_encoder: false
frozen_decoder_layers: 6
schedule: {{output_dir: {tmp_path / 'run'}, data_dir: DATA, steps: 2, batch_size: 2, crop_size: 32,
            learning_rate: 1.0e-2, warmup_steps: 1, validation_images: 1}}
loss: {{lpips: 0.0}}
""", size=256)
    start, tuned = Autoencoder.from_pretrained(tiny_bundle / "autoencoder"), Autoencoder.from_pretrained(final)
    start_state, tuned_state = start.state_dict(), tuned.state_dict()
    tail = [k for k in start_state if k.startswith("decoder.") and int(k.split(".")[1]) >= 6]
    # the head the generative pixel decoder shares stays bit for bit; the tail learns
    assert all(torch.equal(start_state[k], tuned_state[k]) for k in start_state if k not in tail)
    assert any(not torch.equal(start_state[k], tuned_state[k]) for k in tail)


@pytest.mark.parametrize(("settings", "message"), [
    ("train_encoder: false\n", "set init_from"),
    ("frozen_decoder_layers: 3\n", "set train_encoder: false"),
])
def test_autoencoder_stage_refuses_inconsistent_settings(tmp_path, settings, message):
    config = tmp_path / "config.yaml"
    config.write_text("stage: autoencoder\n" + settings)
    stage_name, parsed = load_yaml_config(config, STAGES)
    with pytest.raises(InputError, match=message):
        STAGES[stage_name](parsed)


def test_frozen_decoder_layers_must_exist(tmp_path, tiny_bundle):
    config = tmp_path / "config.yaml"
    config.write_text(f"stage: autoencoder\ninit_from: {tiny_bundle / 'autoencoder'}\n"
                      "train_encoder: false\nfrozen_decoder_layers: 99\n")
    stage_name, parsed = load_yaml_config(config, STAGES)
    with pytest.raises(InputError, match="frozen_decoder_layers must be in"):
        STAGES[stage_name](parsed)


def test_partial_synthesis_training_leaves_the_control_branch_and_exports_the_component(tmp_path, generative_bundle):
    from diffusers import ControlNetModel

    from versacodec.latent_codec.model import LatentCodec
    from versacodec.latent_codec.partial_synthesis import PartialSynthesis

    final = run_yaml_stage(tmp_path, 5, f"""stage: control
autoencoder: {generative_bundle / 'autoencoder'}
prior: {generative_bundle / 'generative'}
init_from: {generative_bundle}
cache_dir: {tmp_path / 'cache'}
latent_crop: 8
train_codec: decoder
train_control: false
drop_fraction: [0.2, 0.6]
loss: {{semantic: 0.0}}
schedule: {{output_dir: {tmp_path / 'run'}, data_dir: DATA, steps: 2, batch_size: 2, validation_images: 2,
            learning_rate: 1.0e-2, warmup_steps: 1}}
""")
    start, trained = (LatentCodec.from_pretrained(root / "latent_codec").state_dict()
                      for root in (generative_bundle, final))
    assert all(torch.equal(start[k], trained[k]) for k in start if not k.startswith("synthesis."))
    partial = PartialSynthesis.from_pretrained(final / "partial_synthesis").synthesis.state_dict()
    assert all(torch.equal(partial[k], trained["synthesis." + k]) for k in partial)
    assert any(not torch.equal(partial[k], start["synthesis." + k]) for k in partial)
    control = [ControlNetModel.from_pretrained(root / "generative/controlnet", local_files_only=True)
               for root in (generative_bundle, final)]
    assert all(torch.equal(a, b) for a, b in zip(control[0].parameters(), control[1].parameters(), strict=True))
