"""The codec pipeline: image → latent → latent codec → .vcx bytes, and back.

    encode  image ─ latent space ─ latent ─ latent codec at the rate's quality ─┐
                    tags, task regions, palette layers (EncodeOptions) ─────────┴─ CompressedImage ─ layout ─ bytes
    decode  bytes ─ layout ─ CompressedImage ─ ẑ (latent codec, partial synthesis or palette)
                    ─ generative prior (DecodeOptions) ─ pixel decoder ─ image

`Codec` holds one model bundle for repeated use; the API, command line, batch mode, evaluation,
Pillow plugin and web page all call `encode` / `decode` with options they built. Components load
when first used (the generative decoder for a generative decode, the tagger to tag), so a command
loads only what it needs.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from PIL import Image

from versacodec.bundle import DIRECT_DECODER, read_manifest, resolve_model_dir, weights_hash
from versacodec.codec import layout
from versacodec.codec.memory import LATENT_SPACE_OVERLAP, LATENT_SPACE_TILE, smallest_stream_bytes, working_memory
from versacodec.container.format import STREAM_HASH_BYTES, Stream, StreamHeader
from versacodec.determinism import reproducible_inference
from versacodec.errors import InputError, ModelError, StreamError, VersacodecError
from versacodec.imaging import LoadedImage, open_image, pad_to_multiple, to_pil
from versacodec.latent_codec.model import CompressedLatent, LatentBits, LatentCodec
from versacodec.latent_codec.quality_map import QualityMap
from versacodec.latent_codec.rate_control import RateChoice, highest_quality_within
from versacodec.latent_codec.transforms import LATENT_TO_Y_STRIDE
from versacodec.layers.scalable import decode_palette, palette_layers
from versacodec.limits import MEMORY_VARIABLE, check_aspect, format_size, memory_limit, pixel_limit
from versacodec.options import DecodeOptions, EncodeOptions, ModelDefaults, Rate
from versacodec.semantics.partial import keep_sent_regions
from versacodec.semantics.region_map import RegionSet
from versacodec.tiling import tiled_map

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
    """A model bundle. `Codec.from_pretrained()` loads the shipped default model."""

    def __init__(self, root: Path, max_pixels: int | None = None, max_memory: int | None = None) -> None:
        self.root = root
        self.manifest = read_manifest(root)
        self.model_id = self.manifest.model_id
        self.weights_hash = weights_hash(root, self.manifest)
        self.defaults = ModelDefaults.read(root)
        self.autoencoder = self.manifest.load(root, "autoencoder")  # the latent space, any `LatentSpace`
        self.latent_codec: LatentCodec = self.manifest.load(root, "latent_codec")
        if self.latent_codec.config.latent_channels != self.autoencoder.channels:
            raise ModelError(f"{root}: the latent codec codes {self.latent_codec.config.latent_channels} channels, "
                             f"the latent space has {self.autoencoder.channels}")
        # Limits default to $VERSACODEC_MAX_PIXELS / $VERSACODEC_MAX_MEMORY (see limits.py).
        self.max_pixels = pixel_limit(max_pixels)
        self.max_memory = memory_limit(max_memory)
        self.block = self.autoencoder.factor * LatentCodec.block_size
        self._loaded: dict[str, Any] = {}
        self._loading = threading.Lock()

    @classmethod
    def from_pretrained(cls, model: str | Path | None = None, max_pixels: int | None = None,
                        max_memory: int | None = None) -> Codec:
        return cls(resolve_model_dir(model), max_pixels, max_memory)

    # ------------------------------------------------------------------ components, loaded when first used
    def _component(self, name: str, load) -> Any:
        with self._loading:
            if name not in self._loaded:
                self._loaded[name] = load()
            return self._loaded[name]

    @property
    def generative(self):
        """The generative decoder (None: the bundle has none)."""
        return self._component("generative", lambda: self.manifest.load(self.root, "generative"))

    @property
    def generative_config(self):
        """The generative decoder's settings (None: no generative decoder), read without loading its
        networks unless they are loaded already (then theirs, as they may have been changed)."""
        from versacodec.generative.config import GenerativeConfig

        folder = self.manifest.path(self.root, "generative")
        if folder is None:
            return None
        if "generative" in self._loaded:
            return self._loaded["generative"].config
        return self._component("generative_config", lambda: GenerativeConfig.read(folder))

    @property
    def partial_synthesis(self):
        """The synthesis for streams whose sections were extracted away (None: the codec's own)."""
        return self._component("partial_synthesis", self._load_partial_synthesis)

    def _load_partial_synthesis(self):
        module = self.manifest.load(self.root, "partial_synthesis")
        if module is not None and not module.fits(self.latent_codec):
            raise ModelError(f"{self.manifest.path(self.root, 'partial_synthesis')}: partial synthesis for "
                             f"{module.config.y_channels} y channels → {module.config.latent_channels}, but the "
                             f"latent codec has {self.latent_codec.config.y_channels} → "
                             f"{self.latent_codec.config.latent_channels}")
        return None if module is None else module.eval()

    def pixel_decoder(self, decoder: str):
        """The decode path's own pixel decoder (None: the latent space's decoder)."""
        if decoder == "direct":
            found = self._component(DIRECT_DECODER, lambda: self.manifest.load(self.root, DIRECT_DECODER))
        else:
            found = None if self.generative is None else self.generative.pixel_decoder
        if found is not None:
            found.check_fits(self.autoencoder)
        return found

    @property
    def pixel_decoders(self) -> dict[str, Any]:
        return {decoder: self.pixel_decoder(decoder) for decoder in self.defaults.decoders}

    def load_components(self) -> Codec:
        """Load (and check) every component now rather than when first used."""
        _ = self.partial_synthesis, self.pixel_decoders
        return self

    @property
    def quality_levels(self) -> int:
        return self.defaults.quality_levels

    @property
    def default_decoder(self) -> str:
        return self.defaults.decoders[0]

    def tag(self, image: Image.Image) -> list[int]:
        """The encoder-side tagger's class ids for an image (loaded on first use)."""
        from versacodec.semantics.tagger import ClassifierTagger

        return self._component("tagger", ClassifierTagger)(image)

    # ------------------------------------------------------------------ encode
    def load(self, source: str | Path | bytes | Image.Image | LoadedImage, rate: Rate | None = None) -> LoadedImage:
        """The image to encode, its size checked (`check_encodable`, against `rate` when given)
        before its pixels are decoded."""
        if isinstance(source, LoadedImage):
            return source
        return open_image(source, self.max_pixels, lambda width, height: self.check_encodable(width, height, rate))

    def check_encodable(self, width: int, height: int, rate: Rate | None = None) -> None:
        """Refuse, from its size alone, an image that cannot be encoded: too elongated, above the
        memory limit, or (with a byte budget) one whose smallest possible stream is over the budget."""
        check_aspect(width, height)
        self.check_memory(width, height, "encode", InputError)
        budget = None if rate is None else rate.budget(width, height)
        if budget is not None:
            floor = smallest_stream_bytes(width, height, self.block, self.autoencoder, self.latent_codec)
            if budget < floor:
                raise InputError(f"the budget of {budget} bytes is below the smallest stream this model can write "
                                 f"for a {width}x{height} image (at least {floor} bytes)")

    def compress(self, source, options: EncodeOptions | None = None, **values) -> EncodedImage:
        """`encode` with options given as keywords (`EncodeOptions.of`: quality, bpp, max_bytes,
        seed, tags, task, boxes, layers)."""
        if options is not None and values:
            raise TypeError("give options or keywords, not both")
        return self.encode(source, EncodeOptions.of(**values) if options is None else options)

    def encode(self, source, options: EncodeOptions | None = None) -> EncodedImage:
        """Code an image (a path, file bytes, a PIL image or a `LoadedImage`) at the options' rate:
        a fixed quality, or the highest quality whose real file is within the budget."""
        options = self.defaults.encode(options or EncodeOptions())
        loaded = self.load(source, options.rate)
        self.check_encodable(loaded.width, loaded.height, options.rate)  # a LoadedImage's own size
        tags = self._tags_for(loaded, options.tags)
        padded = pad_to_multiple(loaded.pixels, self.block)
        grid = self._y_grid(padded.shape[-2], padded.shape[-1])
        region_sets = () if options.task is None else (self._find_regions(loaded, grid, options),)
        masks = tuple(region_set.mask(grid) for region_set in region_sets)
        quality_map = self._quality_map(loaded, grid, options.quality_map_policy, masks)
        budget = options.rate.budget(loaded.width, loaded.height)
        with reproducible_inference():
            latent = self.encode_pixels(padded)
            analysed = self.latent_codec.analyse(latent)
            layers = () if options.layers is None else palette_layers(latent, options.layers,
                                                                     self.layer_start_timesteps)

            def image_at(quality: int, compressed: CompressedLatent) -> bytes:
                header = StreamHeader(width=loaded.width, height=loaded.height, model_id="",
                                      weights_hash=self.weights_hash[:STREAM_HASH_BYTES], quality=quality,
                                      seed=options.seed,
                                      colour=loaded.colour, bit_depth=loaded.bit_depth)
                return layout.to_stream(layout.CompressedImage(header, tags, layers, compressed,
                                                               region_sets)).to_bytes()

            streams: dict[int, bytes] = {}

            def stream_at(quality: int) -> bytes:
                if quality not in streams:
                    streams[quality] = image_at(quality, self.latent_codec.compress_analysed(analysed, quality, masks,
                                                                                             quality_map))
                return streams[quality]

            def estimated_size(quality: int) -> int:
                # The stream with placeholder strings of the estimated lengths: exact framing and overhead.
                bits = self.latent_codec.estimate_bits(analysed, quality, masks, quality_map)
                return len(image_at(quality, _placeholder(bits, grid, masks, quality_map)))

            search = None if budget is None else highest_quality_within(
                lambda q: len(stream_at(q)), budget, self.quality_levels, estimated_size,
                slack=ESTIMATE_SLACK_BYTES + ESTIMATE_SLACK_FRACTION * budget)
            quality = options.rate.quality if search is None else search.quality
            data = stream_at(quality)
        return EncodedImage(data, quality, loaded.width, loaded.height, padded.shape[-1], padded.shape[-2], options,
                            budget, tags, search, list(loaded.notes), list(region_sets))

    @property
    def region_cell(self) -> int:
        """Pixels per side of one cell of y's grid, on which task regions are placed."""
        return self.autoencoder.factor * LATENT_TO_Y_STRIDE

    def _y_grid(self, padded_height: int, padded_width: int) -> tuple[int, int]:
        return padded_height // self.region_cell, padded_width // self.region_cell

    @staticmethod
    def _quality_map(loaded: LoadedImage, grid: tuple[int, int], policy: str,
                     masks: tuple[torch.Tensor, ...]) -> QualityMap | None:
        """Where y is coded finer (`semantics.importance`); None where nowhere."""
        from versacodec.semantics.importance import importance_quality_map, regions_quality_map

        if policy == "importance":
            return importance_quality_map(loaded.pixels, grid)
        return regions_quality_map(masks, grid) if policy == "regions" else None

    def _find_regions(self, loaded: LoadedImage, grid: tuple[int, int], options: EncodeOptions) -> RegionSet:
        from versacodec.semantics.regions import find_regions, region_grid_boxes

        profile = options.task
        regions = find_regions(profile, to_pil(loaded.pixels), None if options.boxes is None else list(options.boxes))
        return RegionSet(profile.name, tuple(region_grid_boxes(regions, profile.margin, self.region_cell, grid)))

    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Latent-space encode, in overlapping tiles for large images (bounded memory). Tiles are
        cut in latent coordinates: the image is folded into its latent grid (pixel-unshuffle), and
        each tile unfolded again before the encoder sees it."""
        factor = self.autoencoder.factor
        return tiled_map(lambda folded: self.autoencoder.encode(F.pixel_shuffle(folded, factor)),
                         (F.pixel_unshuffle(pixels, factor),), LATENT_SPACE_TILE, LATENT_SPACE_OVERLAP,
                         stage="encode tiles")

    def working_memory(self, width: int, height: int) -> int:
        """Estimated peak bytes to code a width × height image (see `versacodec.codec.memory`)."""
        return working_memory(width, height, self.block, self.autoencoder, self.latent_codec.config)

    def check_memory(self, width: int, height: int, action: str, error: type[VersacodecError]) -> None:
        """Refuse, before allocating, an image whose estimated working memory exceeds the limit."""
        needed = self.working_memory(width, height)
        if needed > self.max_memory:
            raise error(f"a {width}x{height} image needs about {format_size(needed)} to {action}, above the "
                        f"memory limit of {format_size(self.max_memory)} (raise it with {MEMORY_VARIABLE})")

    def _tags_for(self, loaded: LoadedImage, tags: bool | tuple[int, ...]) -> tuple[int, ...] | None:
        if tags is False or (tags is True and self.manifest.path(self.root, "generative") is None):
            return None
        return tuple(self.tag(to_pil(loaded.pixels))) if tags is True else tags

    @property
    def layer_start_timesteps(self) -> tuple[int, ...]:
        """Where the generative decoder starts on each palette layer's prefix (0: as it is); a
        decoder without a calibrated table starts them where it starts a plain stream."""
        config = self.generative_config
        if config is None:
            return ()
        return config.layer_start_timesteps or (config.one_step_timestep,)

    # ------------------------------------------------------------------ decode
    def read_stream(self, data: bytes) -> Stream:
        """Parse and check that this bundle's bitstream weights made the stream. The weights hash
        decides, not the model id: a bundle with the same latent space and latent codec but newer
        pixel decoders (a decoder-only update) decodes the older model's streams."""
        stream = Stream.from_bytes(data, self.max_pixels)
        header = stream.header
        if header.weights_hash != self.weights_hash[: len(header.weights_hash)]:
            maker = f"model '{header.model_id}'" if header.model_id else "another model"
            raise StreamError(
                f"stream was made by {maker} (weights {header.weights_hash.hex()}), "
                f"but this decoder has '{self.model_id}' (weights {self.weights_hash.hex()}); "
                "decode it with the model that encoded it", options=("model",))
        if not 0 <= header.quality < self.quality_levels:
            raise StreamError(f"corrupted: quality {header.quality} out of range")
        return stream

    def read_compressed(self, stream: Stream) -> layout.CompressedImage:
        """The stream's content (see `versacodec.codec.layout`)."""
        header = stream.header
        return layout.from_stream(stream, self._y_grid(math.ceil(header.height / self.block) * self.block,
                                                       math.ceil(header.width / self.block) * self.block))

    def decode_latent(self, stream: Stream) -> torch.Tensor:
        return self.read_latent(self.read_compressed(stream)).latent

    def read_latent(self, image: layout.CompressedImage) -> DecodedLatent:
        """The decoded latent, where the generative decoder starts on it and, for a partial stream,
        which of its positions were sent (see `DecodedLatent`)."""
        header = image.header
        if image.latent is None:  # a prefix of palette layers
            factor = self.autoencoder.factor
            shape = (math.ceil(header.height / self.block) * self.block // factor,
                     math.ceil(header.width / self.block) * self.block // factor)
            return DecodedLatent(decode_palette(image.layers, self.autoencoder.channels, shape),
                                 image.layers[-1].start_timestep, None)
        sent = image.latent.sent_positions()
        if sent is None:
            return DecodedLatent(self.latent_codec.decompress(image.latent, header.quality), None, None)
        config = self.generative_config
        partial_start = None if config is None else config.partial_stream_timestep
        if self.partial_synthesis is None:
            return DecodedLatent(self.latent_codec.decompress(image.latent, header.quality), partial_start, sent)
        y_hat = self.latent_codec.decode_y(image.latent, header.quality)
        return DecodedLatent(self.partial_synthesis(y_hat.float()), partial_start, sent)

    def decompress(self, data: bytes, options: DecodeOptions | None = None, **values) -> DecodedImage:
        """`decode` with options given as keywords (`DecodeOptions`: decoder, steps, cfg, seed)."""
        if options is not None and values:
            raise TypeError("give options or keywords, not both")
        return self.decode(data, DecodeOptions(**values) if options is None else options)

    def decode(self, data: bytes, options: DecodeOptions | None = None) -> DecodedImage:
        """Decode a stream; the same stream and options give the same image (docs/api.md, "Determinism")."""
        options = self.defaults.decode(options or DecodeOptions())
        stream = self.read_stream(data)
        header = stream.header
        self.check_memory(header.width, header.height, "decode", StreamError)
        image = self.read_compressed(stream)
        with reproducible_inference():
            latent = self._output_latent(image, options)
            pixels = self.decode_pixels(latent, options.decoder)[..., : header.height, : header.width]
        return DecodedImage(to_pil(pixels, header.colour), header, options, pixels, list(image.tags or ()))

    def output_latent(self, stream: Stream, options: DecodeOptions | str) -> torch.Tensor:
        """The latent that a decoder turns into pixels: ẑ as decoded (direct), or what the prior
        generates from it (generative); `options` may be just the decoder's name."""
        options = DecodeOptions(options) if isinstance(options, str) else options
        return self._output_latent(self.read_compressed(stream), self.defaults.decode(options))

    def _output_latent(self, image: layout.CompressedImage, options: DecodeOptions) -> torch.Tensor:
        latent, start, sent = self.read_latent(image)
        if options.decoder == "direct":
            return latent
        timesteps = self.generative.schedule.num_train_timesteps
        if start is not None and start >= timesteps:
            raise StreamError(f"corrupted: start timestep {start} is past the schedule's {timesteps}")
        header = image.header
        generated = self.generative.sample(latent, list(image.tags or ()), steps=options.steps, cfg=options.cfg,
                                           seed=header.seed if options.seed is None else options.seed,
                                           start=start, quality=header.quality)
        if sent is not None and self.generative.config.partial_stream_keeps_regions:
            generated = keep_sent_regions(latent, generated, sent)
        return generated

    def decode_pixels(self, latent: torch.Tensor, decoder: str) -> torch.Tensor:
        """Latent → pixels in overlapping tiles for large images (bounded memory): the path's own
        pixel decoder when the bundle has one, else the latent space's decoder."""
        pixel_decoder = self.pixel_decoder(decoder)
        decode = self.autoencoder.decode if pixel_decoder is None else partial(pixel_decoder.decode, self.autoencoder)
        return tiled_map(decode, (latent,), LATENT_SPACE_TILE, LATENT_SPACE_OVERLAP, scale=self.autoencoder.factor,
                         stage="decode tiles")


def _placeholder(bits: LatentBits, grid: tuple[int, int], masks: tuple[torch.Tensor, ...],
                 quality_map: QualityMap | None) -> CompressedLatent:
    """Strings as long as the range coder would write for `bits` (whole 32-bit words)."""
    def string(count: float) -> bytes:
        return bytes(4 * math.ceil(count / 32))

    return CompressedLatent(string(bits.hyperprior), tuple(string(part) for part in bits.parts), grid, masks,
                            quality_map)
