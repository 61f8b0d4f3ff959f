"""Stage `pixel_decoder`: train a decode path's pixel decoder (`versacodec.pixel_decoders`).

Pairs of training crops and the latents a bundle's decode makes from them teach a pixel decoder
to render them. `pairs_from: streams`: real streams of crops, cached once
(`training.generated_latents`; `pairs.decoder`: the generative decode's latent, or the codec's ẑ
for the direct path). `pairs_from: latent_cache`: the codec's ẑ of cached latents of the pool's
windows, coded afresh per batch (`training.coded_latent_pairs`), for latent spaces whose encoder
is too slow to run per crop (TAEF2). `architecture: tail` fine-tunes the autoencoder decoder's
upsampling tail (`DecoderTail`), `architecture: restoration` puts a pretrained Real-ESRGAN
generator on the autoencoder decoder's 1/4-resolution features (`RestorationDecoder`),
`architecture: taef2_decoder` fine-tunes a copy of TAEF2's whole decoder (`FineTunedTAEF2Decoder`).
Loss = l1·|x − x̂| + mse·(x − x̂)² + lpips·LPIPS-alex + dists·DISTS +
periodic·(excess grid-frequency peaks, `metrics.periodic`) + semantic·(feature distance in the
frozen EfficientNet-Lite2, `metrics.semantic`) (+ adversarial·hinge of a feature discriminator,
`training.discriminator`, trained in the same step); a term weighted 0 is not computed. The
autoencoder, codec and prior stay frozen, so streams are unchanged.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from torch import nn

from versacodec.codec import Codec
from versacodec.errors import InputError
from versacodec.latent_space.autoencoder import Autoencoder
from versacodec.metrics.dists import DISTS
from versacodec.metrics.lpips import LPIPS
from versacodec.metrics.periodic import periodic_excess, periodic_ratio
from versacodec.metrics.quality import COLOUR_BLOCK, block_means, colour_shift, psnr
from versacodec.metrics.semantic import SemanticFeatureDistance, check_layer_weights
from versacodec.modeling import freeze
from versacodec.pixel_decoders import PixelDecoder, load_pixel_decoder
from versacodec.pixel_decoders.realesrgan.pretrained import load_pretrained
from versacodec.pixel_decoders.restoration import RestorationDecoder, RestorationDecoderConfig
from versacodec.pixel_decoders.taef2_decoder import FineTunedTAEF2Decoder
from versacodec.pixel_decoders.tail import DecoderTail
from versacodec.training.coded_latent_pairs import CodedLatentPairs
from versacodec.training.config import ScheduleConfig
from versacodec.training.data import list_images, split_train_validation, training_root
from versacodec.training.discriminator import (
    DiscriminatorConfig,
    FeatureDiscriminator,
    discriminator_hinge,
    generator_hinge,
)
from versacodec.training.generated_latents import GeneratedPairs, GeneratedPairsConfig, build_generated_pairs
from versacodec.training.latent_cache import CacheVariants


@dataclass(frozen=True)
class PixelDecoderLoss:
    l1: float = 1.0
    mse: float = 0.0  # fidelity in PSNR's own terms (the direct path's decoder)
    lpips: float = 1.0
    dists: float = 1.0
    periodic: float = 0.0  # excess peaks at the 8-px grid's frequencies (checkerboard), metrics.periodic
    # L1 of the error's 16-px block means: brightness and colour over regions, which the perceptual and
    # adversarial terms let drift (v5's generative decode darkened kodim23 by 4 levels at 0.05 bpp).
    low_pass: float = 0.0
    # What the content is, for machines that read the decode: feature distance in a frozen ImageNet
    # network that is not one of the judges (metrics.semantic), per stage end at strides 4, 8, 16, 32.
    semantic: float = 0.0
    semantic_layers: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)
    adversarial: float = 0.0  # > 0 trains a discriminator beside the decoder (FID: realistic texture)
    adversarial_start_step: int = 0  # the discriminator alone learns before this step
    # The terms see both crops cut at a random offset within the latent cell, per step. Crops are
    # latent-aligned, so without it a pattern locked to the 8-px grid meets LPIPS-alex's and the
    # discriminator's stride-4 AlexNet at the same phase in every sample, where they can be taught to
    # take it for texture.
    phase_jitter: bool = False

    def __post_init__(self) -> None:
        weights = self.reconstruction_weights() | {"adversarial": self.adversarial}
        if any(w < 0 for w in weights.values()) or not any(w > 0 for w in weights.values()):
            raise InputError(f"loss weights must be >= 0 with at least one > 0, not {weights}")
        check_layer_weights(self.semantic_layers)

    def reconstruction_weights(self) -> dict[str, float]:
        return {"l1": self.l1, "mse": self.mse, "lpips": self.lpips, "dists": self.dists, "periodic": self.periodic,
                "low_pass": self.low_pass, "semantic": self.semantic}


ARCHITECTURES = ("tail", "restoration", "taef2_decoder")
PAIR_SOURCES = ("streams", "latent_cache")
PRETRAINED_NETWORKS = {"general-x4v3": "srvgg", "x4plus": "rrdb"}


@dataclass(frozen=True)
class RestorationStart:
    """How a `restoration` pixel decoder starts: which Real-ESRGAN release, how deep the head."""

    pretrained: str = "general-x4v3"  # or "x4plus"
    head_layers: int = 10  # autoencoder decoder layers before the generator (to 1/4 resolution)
    colour_fit_pairs: int = 64  # training pairs the colour projection's least-squares fit uses

    def __post_init__(self) -> None:
        if self.pretrained not in PRETRAINED_NETWORKS:
            raise InputError(f"restoration.pretrained must be one of {', '.join(PRETRAINED_NETWORKS)}, "
                             f"not {self.pretrained!r}")


@dataclass(frozen=True)
class PixelDecoderStageConfig:
    bundle: str | None = None  # the model whose streams and generative decode make the pairs (default: shipped)
    init_from: str | None = None  # a previous run's pixel decoder folder; default: a new one (below)
    architecture: str = "tail"  # "tail" (DecoderTail) or "restoration" (RestorationDecoder)
    first_layer: int = 6  # tail: where it begins in the autoencoder decoder (see DecoderTailConfig)
    anti_alias: bool = False  # tail: a fixed binomial filter after each pixel shuffle (DecoderTailConfig)
    grid_notch: bool = False  # either: the decoder's fixed notch at the grid frequencies (grid_notch.py)
    restoration: RestorationStart = field(default_factory=RestorationStart)
    cache_dir: str = "cache"
    pairs_from: str = "streams"  # or "latent_cache" (see the module docstring)
    pairs: GeneratedPairsConfig = field(default_factory=GeneratedPairsConfig)  # pairs_from: streams
    cache_variants: CacheVariants = field(default_factory=CacheVariants)  # pairs_from: latent_cache
    validation_pairs: int = 48  # from the held-out files, never an evaluation set
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loss: PixelDecoderLoss = field(default_factory=PixelDecoderLoss)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)  # used when adversarial > 0

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise InputError(f"architecture must be one of {', '.join(ARCHITECTURES)}, not {self.architecture!r}")
        if self.pairs_from not in PAIR_SOURCES:
            raise InputError(f"pairs_from must be one of {', '.join(PAIR_SOURCES)}, not {self.pairs_from!r}")
        if self.architecture == "restoration" and self.pairs_from != "streams":
            raise InputError("restoration fits its colour projection on stream pairs: use pairs_from: streams")
        if self.architecture == "taef2_decoder" and self.anti_alias:
            raise InputError("anti_alias filters the autoencoder decoder's pixel shuffles; taef2_decoder has none")


class _Rendered(NamedTuple):
    images: torch.Tensor
    real_logits: list[torch.Tensor]  # discriminator on the targets (empty without one)
    fake_logits: list[torch.Tensor]  # on the detached renders: trains the discriminator only
    generator_logits: list[torch.Tensor]  # on the renders through a frozen discriminator: trains the tail only


class _Render(nn.Module):
    """Frozen autoencoder + trainable pixel decoder (+ discriminator): one forward for DDP."""

    def __init__(self, autoencoder: Autoencoder, pixel_decoder: PixelDecoder,
                 discriminator: FeatureDiscriminator | None) -> None:
        super().__init__()
        self.autoencoder, self.pixel_decoder = freeze(autoencoder), pixel_decoder
        self.discriminator = discriminator

    def forward(self, latents: torch.Tensor, targets: torch.Tensor, window: tuple[slice, slice]) -> _Rendered:
        """`targets` are already cut to `window`, the part of the render the losses see."""
        rendered = self.pixel_decoder(self.autoencoder, latents)[..., window[0], window[1]]
        if self.discriminator is None:
            return _Rendered(rendered, [], [], [])
        real_and_fake = self.discriminator(torch.cat([targets, rendered.detach()]))
        real = [logits[: len(targets)] for logits in real_and_fake]
        fake = [logits[len(targets):] for logits in real_and_fake]
        return _Rendered(rendered, real, fake, self.discriminator.judge_without_learning(rendered))


class PixelDecoderStage:
    config_class = PixelDecoderStageConfig

    def __init__(self, config: PixelDecoderStageConfig) -> None:
        self.config, self.schedule = config, config.schedule
        codec = Codec.from_pretrained(config.bundle)
        factor = codec.model.latent_space.factor
        streams = config.pairs_from == "streams"
        if self.schedule.crop_size % factor or (streams and self.schedule.crop_size > config.pairs.crop_size):
            raise InputError(f"crop_size must be a multiple of {factor} and at most pairs.crop_size")
        if not streams and self.schedule.crop_size % codec.model.block:
            raise InputError(f"with pairs_from: latent_cache the codec codes each crop: crop_size must be a "
                             f"multiple of its block, {codec.model.block} pixels")
        files = list_images(training_root(self.schedule.data_dir))
        train_files, validation_files = split_train_validation(files, self.schedule.validation_images)
        cache = Path(config.cache_dir)
        self.pairs: GeneratedPairs | CodedLatentPairs
        if streams:
            self.pairs = build_generated_pairs(codec, train_files, config.pairs, cache)
            self.validation = build_generated_pairs(
                codec, validation_files,
                GeneratedPairsConfig(config.validation_pairs, config.pairs.crop_size, config.pairs.qualities,
                                     config.pairs.decoder, seed=12345), cache)
        else:
            self.pairs, self.validation = self._coded_pairs(codec, train_files, validation_files, cache)
        self.factor = factor
        pixel_decoder = (self._continued(load_pixel_decoder(Path(config.init_from))) if config.init_from
                         else self._new_pixel_decoder(codec.model.latent_space))
        pixel_decoder.check_fits(codec.model.latent_space)
        discriminator = FeatureDiscriminator(config.discriminator) if config.loss.adversarial > 0 else None
        self.render = _Render(codec.model.latent_space, pixel_decoder, discriminator)
        self.lpips, self.dists = LPIPS("alex"), DISTS()
        self.semantic = SemanticFeatureDistance(config.loss.semantic_layers) if config.loss.semantic > 0 else None
        self._baseline: dict[str, float] | None = None

    def _coded_pairs(self, codec: Codec, train_files: list[Path], validation_files: list[Path],
                     cache: Path) -> tuple[CodedLatentPairs, GeneratedPairs]:
        model, variants = codec.model, self.config.cache_variants
        latent_space_dir = model.manifest.path(model.root, "autoencoder")

        def pairs(files: list[Path]) -> CodedLatentPairs:
            return CodedLatentPairs(model.latent_codec, model.latent_space.factor, latent_space_dir, files, cache,
                                    variants, self.schedule.crop_size)

        return pairs(train_files), pairs(validation_files).fixed(self.config.validation_pairs, seed=12345)

    def _continued(self, decoder: PixelDecoder) -> PixelDecoder:
        """A previous run's decoder, with the fixed (weightless) grid notch as this config asks."""
        wanted = self.config.grid_notch
        if getattr(decoder.config, "grid_notch", False) == wanted:
            return decoder
        continued = type(decoder)(dataclasses.replace(decoder.config, grid_notch=wanted))
        continued.load_state_dict(decoder.state_dict())
        return continued

    def _new_pixel_decoder(self, autoencoder: Autoencoder) -> PixelDecoder:
        if self.config.architecture == "taef2_decoder":
            return FineTunedTAEF2Decoder.from_latent_space(autoencoder, self.config.grid_notch)
        if self.config.architecture == "tail":
            return DecoderTail.from_autoencoder(autoencoder, self.config.first_layer, self.config.anti_alias,
                                                self.config.grid_notch)
        start = self.config.restoration
        decoder = RestorationDecoder(RestorationDecoderConfig(autoencoder.config, start.head_layers,
                                                              PRETRAINED_NETWORKS[start.pretrained],
                                                              grid_notch=self.config.grid_notch))
        decoder.generator.load_state_dict(load_pretrained(start.pretrained).state_dict())
        count = min(start.colour_fit_pairs, len(self.pairs.images))
        images = self.pairs.images[:count].float().div(255)
        with torch.no_grad():
            features = decoder.head(autoencoder, self.pairs.latents[:count].float())
            small = F.interpolate(images, size=features.shape[-2:], mode="area")
        error = decoder.fit_colour_projection(features, small)
        print(f"colour projection fitted on {count} pairs: RMS error {error:.4f} at 1/{decoder.config.scale} "
              "resolution")
        return decoder

    def trainable(self) -> nn.Module:
        return self.render

    def prepare(self, accelerator: Accelerator) -> None:
        for metric in (self.lpips, self.dists, self.semantic):
            if metric is not None:
                metric.to(accelerator.device)

    def _window(self, step: int, rank: int) -> tuple[slice, slice]:
        """The part of each rendered crop the losses see: all of it, or (phase_jitter) one latent
        cell less, at a random offset within the cell."""
        crop, f = self.schedule.crop_size, self.factor
        if not self.config.loss.phase_jitter:
            return slice(0, crop), slice(0, crop)
        top, left = (int(v) for v in np.random.default_rng([self.schedule.seed, step, rank, 1]).integers(f, size=2))
        return slice(top, top + crop - f), slice(left, left + crop - f)

    def _batch(self, step: int, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Random pairs, each cropped at a random latent-aligned window of crop_size pixels."""
        if isinstance(self.pairs, CodedLatentPairs):
            return self.pairs.batch(self.schedule.seed, step, rank, self.schedule.batch_size)
        rng = np.random.default_rng([self.schedule.seed, step, rank])
        crop, f = self.schedule.crop_size, self.factor
        cells = (self.pairs.images.shape[-1] - crop) // f + 1
        images, latents = [], []
        for index in rng.integers(len(self.pairs.images), size=self.schedule.batch_size):
            top, left = (int(v) for v in rng.integers(cells, size=2))
            images.append(self.pairs.images[index, :, top * f: top * f + crop, left * f: left * f + crop])
            latents.append(self.pairs.latents[index, :, top: top + crop // f, left: left + crop // f])
        return torch.stack(images).float().div(255), torch.stack(latents).float()

    def _losses(self, rendered: torch.Tensor, images: torch.Tensor,
                terms: tuple[str, ...] = ("l1", "mse", "lpips", "dists", "periodic")) -> dict[str, torch.Tensor]:
        """The named terms only: a term weighted 0 in training costs no forward or backward pass."""
        measures = {"l1": lambda: (rendered - images).abs().mean(),
                    "mse": lambda: (rendered - images).square().mean(),
                    "periodic": lambda: periodic_excess(rendered, images),
                    "low_pass": lambda: block_means(rendered - images, COLOUR_BLOCK).abs().mean(),
                    "lpips": lambda: self.lpips(rendered, images).mean(),
                    "dists": lambda: self.dists(rendered.clamp(0, 1), images).mean(),
                    "semantic": lambda: self.semantic(rendered, images).mean()}
        return {name: measures[name]() for name in terms}

    def training_step(self, model, step, rank, device):
        images, latents = (t.to(device) for t in self._batch(step, rank))
        window = self._window(step, rank)
        images = images[..., window[0], window[1]]
        rendered = model(latents, images, window)
        weights = self.config.loss
        weighted = {name: w for name, w in weights.reconstruction_weights().items() if w > 0}
        terms = self._losses(rendered.images, images, tuple(weighted))
        loss = sum(weighted[name] * value for name, value in terms.items())
        if rendered.real_logits:
            # One backward serves both players: the discriminator's terms see detached renders,
            # the tail's term a discriminator that does not learn from it.
            terms["d_real"], terms["d_fake"] = discriminator_hinge(rendered.real_logits, rendered.fake_logits)
            terms["adversarial"] = generator_hinge(rendered.generator_logits)
            generator_weight = weights.adversarial if step >= weights.adversarial_start_step else 0.0
            loss = loss + generator_weight * terms["adversarial"] + terms["d_real"] + terms["d_fake"]
        return loss, {"loss": loss.item(), **{name: value.item() for name, value in terms.items()}}

    @torch.no_grad()
    def _scores(self, decode, device) -> dict[str, float]:
        """Mean L1, LPIPS, DISTS, PSNR, periodic-artifact ratio (`metrics.periodic`, of the 8-bit
        crop against its original) and colour shift (`metrics.quality`) of `decode(latents)` over the
        held-out pairs."""
        images, latents = self.validation.images.float().div(255), self.validation.latents.float()
        measured = ("l1", "mse", "lpips", "dists") + (("semantic",) if self.semantic is not None else ())
        scores = dict.fromkeys((*measured, "periodic", "psnr", "colour_shift"), 0.0)
        for start in range(0, len(images), 8):
            target = images[start: start + 8].to(device)
            rendered = decode(latents[start: start + 8].to(device))
            quantised = rendered.mul(255).round().div(255).cpu()
            ratio = sum(periodic_ratio(t, r) for t, r in zip(target.cpu(), quantised, strict=True)) / len(target)
            terms = self._losses(rendered, target, measured) | {
                "psnr": psnr(rendered, target).mean(), "periodic": torch.tensor(ratio),
                "colour_shift": colour_shift(target.cpu(), quantised).mean()}
            for key, value in terms.items():
                scores[key] += value.item() * len(target) / len(images)
        return scores

    def validate(self, device):
        """The tail's scores on held-out pairs, next to the autoencoder decoder's on the same latents
        (which never change, so they are measured once)."""
        autoencoder = self.render.autoencoder
        if self._baseline is None:
            self._baseline = self._scores(autoencoder.decode, device)
        trained = self._scores(partial(self.render.pixel_decoder.decode, autoencoder), device)
        return {f"decoder_{key}": value for key, value in trained.items()} | {
            f"autoencoder_{key}": value for key, value in self._baseline.items()}

    def export(self, directory: Path) -> None:
        self.render.pixel_decoder.cpu().eval().save_pretrained(directory)
