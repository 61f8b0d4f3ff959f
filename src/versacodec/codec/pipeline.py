"""The codec: image → latent → latent codec → .vcx bytes, and back, with one loaded model.

    encode  image ─ latent space ─ latent ─ latent codec at the rate's quality ─┐
                    tags, task regions, palette layers (EncodeOptions) ─────────┴─ CompressedImage ─ layout ─ bytes
    decode  bytes ─ layout ─ CompressedImage ─ ẑ (latent codec, partial synthesis or palette)
                    ─ generative prior (DecodeOptions) ─ pixel decoder ─ image

`Codec` encodes and decodes with a `CodecModel` (`codec/model.py`: the components, defaults and
limits); the API, command line, batch mode, evaluation, Pillow plugin and web page all call
`encode` / `decode` with options they built (or as keywords). Decoding's steps are there for
tools that stop half-way: `read` (the stream's content, checked against the model),
`decoded_latent` (ẑ) and `output_latent` (what the pixel decoder receives).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import torch
from PIL import Image

from versacodec.bundle import past_default_model
from versacodec.codec import layout
from versacodec.codec.model import CodecModel
from versacodec.container.format import STREAM_HASH_BYTES, Stream, StreamHeader
from versacodec.determinism import reproducible_inference
from versacodec.errors import StreamError
from versacodec.imaging import LoadedImage, pad_to_multiple, to_pil
from versacodec.latent_codec.model import CompressedLatent, LatentBits, LatentCodec
from versacodec.latent_codec.quality_map import QualityMap
from versacodec.latent_codec.rate_control import RateChoice, highest_quality_within
from versacodec.layers.scalable import decode_palette, palette_layers
from versacodec.options import DecodeOptions, EncodeOptions
from versacodec.semantics.partial import keep_sent_regions
from versacodec.semantics.region_map import RegionSet

ImageSource = str | os.PathLike[str] | bytes | Image.Image | LoadedImage
Options = TypeVar("Options", EncodeOptions, DecodeOptions)

# How far an estimated stream size may lie above the real one (a byte per 1000, and the range
# coder's last word), so that the rate search codes the next quality up only when it might fit.
ESTIMATE_SLACK_BYTES = 4
ESTIMATE_SLACK_FRACTION = 1e-3


@dataclass(frozen=True)
class EncodedImage:
    data: bytes
    quality: int  # chosen by the rate
    width: int
    height: int
    padded_width: int
    padded_height: int
    options: EncodeOptions
    budget: int | None = None  # the most bytes the rate allowed; None: a fixed quality
    tags: tuple[int, ...] | None = None  # sent (None: no tags section)
    rate_search: RateChoice | None = None  # how the quality was found (None: a fixed quality)
    notes: list[str] = field(default_factory=list)
    regions: list[RegionSet] = field(default_factory=list)

    @property
    def bits_per_pixel(self) -> float:
        return len(self.data) * 8 / (self.width * self.height)


@dataclass(frozen=True)
class DecodedImage:
    image: Image.Image
    header: StreamHeader
    options: DecodeOptions  # as decoded: the model's defaults filled in
    pixels: torch.Tensor  # (1, 3, H, W) in [0, 1] before 8-bit rounding
    tags: list[int] = field(default_factory=list)

    @property
    def decoder(self) -> str:
        return self.options.decoder


class DecodedLatent(NamedTuple):
    latent: torch.Tensor  # (1, C, h, w): the latent codec's ẑ, or a palette prefix's latent
    start: int | None  # the generative decoder's start timestep for it (None: its default)
    sent: torch.Tensor | None  # partial streams: (h, w) bool on y's grid, the positions still carried


class Codec:
    """Encodes and decodes with one loaded model. `Codec.from_pretrained()`: the shipped default model."""

    def __init__(self, model: CodecModel) -> None:
        self.model = model

    @classmethod
    def from_pretrained(cls, model: str | Path | None = None, max_pixels: int | None = None,
                        max_memory: int | None = None) -> Codec:
        """A codec with the bundle in folder `model` (see `CodecModel.from_pretrained`)."""
        return cls(CodecModel.from_pretrained(model, max_pixels, max_memory))

    def encode(self, source: ImageSource, options: EncodeOptions | None = None, **values) -> EncodedImage:
        """Code an image (a path, file bytes, a PIL image or a `LoadedImage`) at the options' rate:
        a fixed quality, or the highest quality whose real file is within the budget. Options come
        as `EncodeOptions` or as its keywords (`EncodeOptions.of`: quality, bpp, max_bytes, seed,
        tags, task, boxes, layers, quality_map)."""
        model = self.model
        options = model.defaults.encode(_options(options, values, EncodeOptions.of))
        loaded = model.load_image(source, rate=options.rate)
        tags = self._tags_for(loaded, options.tags)
        padded = pad_to_multiple(loaded.pixels, model.block)
        grid = model.y_grid(loaded.height, loaded.width)
        region_sets = () if options.task is None else (self._find_regions(loaded, grid, options),)
        masks = tuple(region_set.mask(grid) for region_set in region_sets)
        quality_map = _quality_map(loaded, grid, options.quality_map_policy, masks)
        budget = options.rate.budget(loaded.width, loaded.height)
        with reproducible_inference():
            latent = model.encode_pixels(padded)
            analysed = model.latent_codec.analyse(latent)
            layers = () if options.layers is None else palette_layers(latent, options.layers,
                                                                     model.layer_start_timesteps)
            header = StreamHeader(width=loaded.width, height=loaded.height, model_id="",
                                  weights_hash=model.weights_hash[:STREAM_HASH_BYTES], quality=0,
                                  seed=options.seed, colour=loaded.colour, bit_depth=loaded.bit_depth)
            streams = _Streams(model.latent_codec, analysed,
                               layout.CompressedImage(header, tags, layers, None, region_sets), masks, quality_map)
            search = None if budget is None else highest_quality_within(
                streams.size, budget, model.defaults.quality_levels, streams.estimated_size,
                slack=ESTIMATE_SLACK_BYTES + ESTIMATE_SLACK_FRACTION * budget)
            quality = options.rate.quality if search is None else search.quality
            data = streams.at(quality)
        return EncodedImage(data, quality, loaded.width, loaded.height, padded.shape[-1], padded.shape[-2], options,
                            budget, tags, search, list(loaded.notes), list(region_sets))

    def _tags_for(self, loaded: LoadedImage, tags: bool | tuple[int, ...]) -> tuple[int, ...] | None:
        if tags is False or (tags is True and not self.model.defaults.has_prior):
            return None  # tags guide the diffusion prior only
        return tuple(self.model.tag(to_pil(loaded.pixels))) if tags is True else tags

    def _find_regions(self, loaded: LoadedImage, grid: tuple[int, int], options: EncodeOptions) -> RegionSet:
        from versacodec.semantics.regions import find_regions, region_grid_boxes

        profile = options.task
        regions = find_regions(profile, to_pil(loaded.pixels), None if options.boxes is None else list(options.boxes))
        return RegionSet(profile.name, tuple(region_grid_boxes(regions, profile.margin, self.model.region_cell, grid)))

    def decode(self, data: bytes, options: DecodeOptions | None = None, **values) -> DecodedImage:
        """Decode a stream; the same stream and options always give the identical image. Options
        come as `DecodeOptions` or as its keywords (decoder, steps, cfg, seed)."""
        options = self.model.defaults.decode(_options(options, values, DecodeOptions))
        image = self.read(data)
        header = image.header
        with reproducible_inference():
            latent = self.output_latent(image, options)
            pixels = self.model.decode_pixels(latent, options.decoder)[..., : header.height, : header.width]
        return DecodedImage(to_pil(pixels, header.colour), header, options, pixels, list(image.tags or ()))

    def read(self, data: bytes) -> layout.CompressedImage:
        """The stream's content (see `versacodec.codec.layout`), once its header shows that this
        model's bitstream weights made it and its size is within the limits. The weights hash
        decides, not the model id: a bundle with the same latent space and latent codec but newer
        pixel decoders (a decoder-only update) decodes the older model's streams."""
        model = self.model
        stream = Stream.from_bytes(data, model.max_pixels)
        header = stream.header
        if header.weights_hash != model.weights_hash[: len(header.weights_hash)]:
            raise StreamError(_made_by_another_model(header, model), options=("model",))
        model.defaults.check_quality(header.quality, StreamError)
        model.check_memory(header.width, header.height, "decode", StreamError)
        return layout.from_stream(stream, model.y_grid(header.height, header.width))

    def decoded_latent(self, image: layout.CompressedImage) -> DecodedLatent:
        """The decoded latent, where the generative decoder starts on it and, for a partial stream,
        which of its positions were sent (see `DecodedLatent`)."""
        model, header = self.model, image.header
        if image.latent is None:  # a prefix of palette layers
            height, width = model.padded(header.height, header.width)
            shape = (height // model.latent_space.factor, width // model.latent_space.factor)
            return DecodedLatent(decode_palette(image.layers, model.latent_space.channels, shape),
                                 image.layers[-1].start_timestep, None)
        sent = image.latent.sent_positions()
        if sent is None:
            return DecodedLatent(model.latent_codec.decompress(image.latent, header.quality), None, None)
        config = model.generative_config
        partial_start = None if config is None else config.partial_stream_timestep
        if model.partial_synthesis is None:
            return DecodedLatent(model.latent_codec.decompress(image.latent, header.quality), partial_start, sent)
        y_hat = model.latent_codec.decode_y(image.latent, header.quality)
        return DecodedLatent(model.partial_synthesis(y_hat.float()), partial_start, sent)

    def output_latent(self, image: layout.CompressedImage, options: DecodeOptions) -> torch.Tensor:
        """The latent that the pixel decoder turns into pixels: ẑ as decoded (direct, or a generative
        decoder without a prior), or what the prior generates from it."""
        options = self.model.defaults.decode(options)
        latent, start, sent = self.decoded_latent(image)
        if options.decoder == "direct" or not self.model.defaults.has_prior:
            return latent
        generative = self.model.generative
        timesteps = generative.schedule.num_train_timesteps
        if start is not None and start >= timesteps:
            raise StreamError(f"corrupted: start timestep {start} is past the schedule's {timesteps}")
        header = image.header
        generated = generative.sample(latent, list(image.tags or ()), steps=options.steps, cfg=options.cfg,
                                      seed=header.seed if options.seed is None else options.seed,
                                      start=start, quality=header.quality)
        if sent is not None and generative.config.partial_stream_keeps_regions:
            generated = keep_sent_regions(latent, generated, sent)
        return generated


def _options(options: Options | None, values: dict[str, Any], build: Callable[..., Options]) -> Options:
    """`options` as given, or built from keywords (not both)."""
    if options is not None and values:
        raise TypeError("give options or keywords, not both")
    return build(**values) if options is None else options


@dataclass
class _Streams:
    """One image's streams at any quality, each coded once, and their estimated sizes (what rate
    control searches on)."""

    latent_codec: LatentCodec
    analysed: tuple[torch.Tensor, torch.Tensor]  # the latent codec's quality-independent part
    image: layout.CompressedImage  # all but the latent (header quality to be set)
    masks: tuple[torch.Tensor, ...]
    quality_map: QualityMap | None
    coded: dict[int, bytes] = field(default_factory=dict)

    def at(self, quality: int) -> bytes:
        if quality not in self.coded:
            latent = self.latent_codec.compress_analysed(self.analysed, quality, self.masks, self.quality_map)
            self.coded[quality] = self._bytes(quality, latent)
        return self.coded[quality]

    def size(self, quality: int) -> int:
        return len(self.at(quality))

    def estimated_size(self, quality: int) -> int:
        """The stream with placeholder strings of the estimated lengths: exact framing and overhead."""
        bits = self.latent_codec.estimate_bits(self.analysed, quality, self.masks, self.quality_map)
        return len(self._bytes(quality, _placeholder(bits, tuple(self.analysed[0].shape[-2:]), self.masks,
                                                     self.quality_map)))

    def _bytes(self, quality: int, latent: CompressedLatent) -> bytes:
        image = replace(self.image, header=replace(self.image.header, quality=quality), latent=latent)
        return layout.to_stream(image).to_bytes()


def _quality_map(loaded: LoadedImage, grid: tuple[int, int], policy: str,
                 masks: tuple[torch.Tensor, ...]) -> QualityMap | None:
    """Where y is coded finer (`semantics.importance`); None where nowhere."""
    from versacodec.semantics.importance import importance_quality_map, regions_quality_map

    if policy == "importance":
        return importance_quality_map(loaded.pixels, grid)
    return regions_quality_map(masks, grid) if policy == "regions" else None


def _placeholder(bits: LatentBits, grid: tuple[int, int], masks: tuple[torch.Tensor, ...],
                 quality_map: QualityMap | None) -> CompressedLatent:
    """Strings as long as the range coder would write for `bits` (whole 32-bit words)."""
    def string(count: float) -> bytes:
        return bytes(4 * math.ceil(count / 32))

    return CompressedLatent(string(bits.hyperprior), tuple(string(part) for part in bits.parts), grid, masks,
                            quality_map)


def _made_by_another_model(header: StreamHeader, model: CodecModel) -> str:
    """One line: which model made the stream, and how to decode it with that one."""
    past = past_default_model(header.weights_hash)
    if past is not None:
        model_id, commit = past
        return (f"stream was made by '{model_id}' (weights {header.weights_hash.hex()}), not by this "
                f"decoder's '{model.model_id}'; decode it with --model DIR (or VERSACODEC_MODEL=DIR), DIR being "
                f"that model's bundle: src/versacodec/weights/default of versacodec at git commit {commit}")
    maker = f"model '{header.model_id}'" if header.model_id else "another model"
    return (f"stream was made by {maker} (weights {header.weights_hash.hex()}), "
            f"but this decoder has '{model.model_id}' (weights {model.weights_hash.hex()}); "
            "decode it with the model that encoded it (--model DIR)")
