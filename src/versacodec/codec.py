"""The codec pipeline: image → latent → latent codec → .vcx bytes, and back.

`Codec` holds one loaded model bundle for repeated use (the API, CLI, batch mode, evaluation
and the web page all go through it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from PIL import Image

from versacodec.bundle import DIRECT_DECODER, read_manifest, resolve_model_dir, weights_hash
from versacodec.container.format import (
    Section,
    SectionKind,
    Stream,
    StreamHeader,
    latent_part,
    pixel_limit,
    put_varint,
)
from versacodec.determinism import reproducible_inference
from versacodec.errors import InputError, ModelError, StreamError, VersacodecError
from versacodec.imaging import LoadedImage, open_image, pad_to_multiple, to_pil
from versacodec.latent_codec.model import CompressedLatent, LatentCodec
from versacodec.latent_codec.partial_synthesis import COMPONENT as PARTIAL_SYNTHESIS
from versacodec.latent_codec.partial_synthesis import PartialSynthesis
from versacodec.latent_codec.rate_control import highest_quality_within
from versacodec.latent_codec.transforms import LATENT_TO_Y_STRIDE
from versacodec.latent_space.autoencoder import Autoencoder
from versacodec.layers.scalable import decode_palette, palette_sections, read_layers
from versacodec.limits import MEMORY_VARIABLE, format_size, memory_limit
from versacodec.options import check_integer, check_rate, check_seed
from versacodec.pixel_decoders import PixelDecoder, load_pixel_decoder
from versacodec.semantics.partial import keep_sent_regions
from versacodec.semantics.region_map import RegionSet, pack_region_map, read_region_sets
from versacodec.semantics.tag_stream import pack_tags, unpack_tags
from versacodec.tiling import tiled_map

DECODERS = ("direct", "generative")
AUTOENCODER_TILE = 96  # latent pixels (768 image pixels) per tile when coding large images
AUTOENCODER_OVERLAP = 8
# Working-memory estimate (see Codec.working_memory), per pixel of the padded image: float32 RGB
# copies (input, padding, tile-blend accumulator and weights, output) and 8-bit copies, of which
# the image itself (input and its padded copy) lives through the latent codec's phase.
FULL_RESOLUTION_BYTES = 64
IMAGE_BYTES = 32
LIVE_ACTIVATIONS = 4  # activations a residual stack holds at once (input, hidden, output, skip)


@dataclass
class EncodedImage:
    data: bytes
    quality: int
    width: int
    height: int
    padded_width: int
    padded_height: int
    notes: list[str] = field(default_factory=list)
    regions: list[RegionSet] = field(default_factory=list)

    @property
    def bits_per_pixel(self) -> float:
        return len(self.data) * 8 / (self.width * self.height)


@dataclass
class DecodedImage:
    image: Image.Image
    header: StreamHeader
    decoder: str
    pixels: torch.Tensor  # (1, 3, H, W) in [0, 1] before 8-bit rounding
    tags: list[int] = field(default_factory=list)


class DecodedLatent(NamedTuple):
    latent: torch.Tensor  # (1, C, h, w): the latent codec's ẑ, or a palette prefix's latent
    start: int | None  # the generative decoder's start timestep for it (None: its default)
    sent: torch.Tensor | None  # partial streams: (h, w) bool on y's grid, the positions still carried


class Codec:
    """A loaded model bundle. `Codec.from_pretrained()` loads the shipped default model."""

    def __init__(self, root: Path, max_pixels: int | None = None, max_memory: int | None = None) -> None:
        self.root = root
        self.manifest = read_manifest(root)
        self.model_id = self.manifest.model_id
        self.weights_hash = weights_hash(root, self.manifest)
        self.autoencoder = Autoencoder.from_pretrained(self.manifest.path(root, "autoencoder"))
        self.latent_codec = LatentCodec.from_pretrained(self.manifest.path(root, "latent_codec"))
        # Limits default to $VERSACODEC_MAX_PIXELS / $VERSACODEC_MAX_MEMORY (see limits.py).
        self.max_pixels = pixel_limit(max_pixels)
        self.max_memory = memory_limit(max_memory)
        self.block = self.autoencoder.factor * LatentCodec.block_size
        self.partial_synthesis = self._load_partial_synthesis()
        direct = self.manifest.path(root, DIRECT_DECODER)
        self.direct_decoder = None if direct is None else load_pixel_decoder(direct)
        generative = self.manifest.path(root, "generative")
        self.generative = None
        if generative is not None:
            from versacodec.generative.decoder import GenerativeDecoder

            self.generative = GenerativeDecoder.from_pretrained(generative)
        for pixel_decoder in self.pixel_decoders.values():
            if pixel_decoder is not None:
                pixel_decoder.check_fits(self.autoencoder)
        self._tagger = None

    @property
    def pixel_decoders(self) -> dict[str, PixelDecoder | None]:
        """Each decode path's own pixel decoder (None: the autoencoder's decoder)."""
        return {"direct": self.direct_decoder,
                "generative": None if self.generative is None else self.generative.pixel_decoder}

    def _load_partial_synthesis(self) -> PartialSynthesis | None:
        folder = self.manifest.path(self.root, PARTIAL_SYNTHESIS)
        if folder is None:
            return None
        module = PartialSynthesis.from_pretrained(folder)
        if not module.fits(self.latent_codec):
            raise ModelError(f"{folder}: partial synthesis for {module.config.y_channels} y channels → "
                             f"{module.config.latent_channels}, but the latent codec has "
                             f"{self.latent_codec.config.y_channels} → {self.latent_codec.config.latent_channels}")
        return module.eval()

    @classmethod
    def from_pretrained(cls, model: str | Path | None = None, max_pixels: int | None = None,
                        max_memory: int | None = None) -> Codec:
        return cls(resolve_model_dir(model), max_pixels, max_memory)

    @property
    def quality_levels(self) -> int:
        return self.latent_codec.config.quality_levels

    @property
    def default_decoder(self) -> str:
        return "generative" if self.generative is not None else "direct"

    def tag(self, image: Image.Image) -> list[int]:
        """The encoder-side tagger's class ids for an image (loaded on first use)."""
        if self._tagger is None:
            from versacodec.semantics.tagger import ClassifierTagger

            self._tagger = ClassifierTagger()
        return self._tagger(image)

    # ------------------------------------------------------------------ encode
    def load(self, source: str | Path | bytes | Image.Image | LoadedImage) -> LoadedImage:
        if isinstance(source, LoadedImage):
            return source
        return open_image(source, self.max_pixels,
                          lambda width, height: self.check_memory(width, height, "encode", InputError))

    def compress(self, source, *, quality: int | None = None, bpp: float | None = None, seed: int = 0,
                 tags: bool | list[int] = True, task: str | None = None, boxes=None,
                 layers: int | None = None) -> EncodedImage:
        """Code an image at a quality (0..100) or at most `bpp` bits per pixel (real file size).

        `tags`: True sends the tagger's class ids (when the bundle has a generative decoder), False
        sends none, a list sends those ids. `task`: a task profile name or file; the stream then
        carries the task's regions in their own section (see `extract`). `boxes`: user regions
        (a JSON file path or `semantics.regions.Region`s) for profiles with a 'boxes' finder.
        `layers`: K ≥ 2 writes K−1 palette layers before the full stream; `truncate` keeps any prefix."""
        bpp, quality = check_rate(bpp, quality, self.quality_levels)
        seed = check_seed(seed)
        layers = None if layers is None else check_integer(layers, "layers")
        loaded = self.load(source)
        self.check_memory(loaded.width, loaded.height, "encode", InputError)  # a LoadedImage's own size
        tag_ids = self._tags_for(loaded, tags)
        padded = pad_to_multiple(loaded.pixels, self.block)
        region_sets = [] if task is None else [self._find_regions(loaded, padded, task, boxes)]
        grid = self._y_grid(padded.shape[-2], padded.shape[-1])
        masks = tuple(region_set.mask(grid) for region_set in region_sets)
        with reproducible_inference():
            latent = self.encode_pixels(padded)
            analysed = self.latent_codec.analyse(latent)
            layer_sections = [] if layers is None else palette_sections(latent, layers, self.layer_start_timesteps)

            def stream_at(q: int) -> bytes:
                compressed = self.latent_codec.compress_analysed(analysed, q, masks)
                stream = self._stream(loaded, q, seed, compressed, tag_ids, region_sets, layer_sections)
                return stream.to_bytes()

            if bpp is None:
                chosen = 75 if quality is None else quality
            else:
                budget = int(bpp * loaded.width * loaded.height // 8)
                chosen = highest_quality_within(lambda q: len(stream_at(q)), budget, self.quality_levels).quality
            data = stream_at(chosen)
        return EncodedImage(data, chosen, loaded.width, loaded.height, padded.shape[-1], padded.shape[-2],
                            list(loaded.notes), region_sets)

    @property
    def region_cell(self) -> int:
        """Pixels per side of one cell of y's grid, on which task regions are placed."""
        return self.autoencoder.factor * LATENT_TO_Y_STRIDE

    def _y_grid(self, padded_height: int, padded_width: int) -> tuple[int, int]:
        return padded_height // self.region_cell, padded_width // self.region_cell

    def _find_regions(self, loaded: LoadedImage, padded: torch.Tensor, task: str, boxes) -> RegionSet:
        from versacodec.semantics.profiles import load_profile
        from versacodec.semantics.regions import find_regions, load_boxes, region_grid_boxes

        profile = load_profile(task)
        if isinstance(boxes, str | Path):
            boxes = load_boxes(boxes)
        regions = find_regions(profile, to_pil(loaded.pixels), boxes)
        grid = self._y_grid(padded.shape[-2], padded.shape[-1])
        return RegionSet(profile.name, tuple(region_grid_boxes(regions, profile.margin, self.region_cell, grid)))

    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Autoencoder encode, in overlapping tiles for large images (bounded memory). Tiles are cut
        in latent coordinates: the image is folded into its latent grid (pixel-unshuffle), and each
        tile unfolded again before the encoder sees it."""
        factor = self.autoencoder.factor
        return tiled_map(lambda folded: self.autoencoder.encode(F.pixel_shuffle(folded, factor)),
                         (F.pixel_unshuffle(pixels, factor),), AUTOENCODER_TILE, AUTOENCODER_OVERLAP)

    def working_memory(self, width: int, height: int) -> int:
        """Estimated peak bytes to code a width × height image (an upper bound, not a measurement).

        Assumes every convolution unfolds its input (in_channels × k² values per output position), as
        torch's native kernels do; oneDNN, which the float32 networks use for k > 1, needs less. Full-
        resolution buffers and the latent codec's whole-image tensors grow with the pixel count; the
        autoencoder runs in tiles, whose unfolded activations are the largest fixed cost. The two
        phases do not overlap."""
        padded = math.ceil(width / self.block) * math.ceil(height / self.block) * self.block**2
        factor = self.autoencoder.factor
        c, ae = self.latent_codec.config, self.autoencoder.config
        y_pixels = padded / self.region_cell**2
        # float64 coding networks (the 5×5 spatial context is the widest unfold), float32 synthesis
        coding = 8 * (max(c.groups) * 25 + LIVE_ACTIVATIONS * (c.y_channels + 2 * c.context_hidden))
        synthesis = 4 * c.width * (9 + LIVE_ACTIVATIONS)
        tile_pixels = min(padded, ((AUTOENCODER_TILE + 2 * AUTOENCODER_OVERLAP) * factor) ** 2)
        widest = max(ae.output_width, ae.decoder_widths[2] / 4, ae.encoder_widths[0] / 4)  # channels per pixel
        tile = tile_pixels * 4 * widest * (9 + LIVE_ACTIVATIONS)
        return int(max(padded * IMAGE_BYTES + y_pixels * (coding + synthesis), padded * FULL_RESOLUTION_BYTES + tile))

    def check_memory(self, width: int, height: int, action: str, error: type[VersacodecError]) -> None:
        """Refuse, before allocating, an image whose estimated working memory exceeds the limit."""
        needed = self.working_memory(width, height)
        if needed > self.max_memory:
            raise error(f"a {width}x{height} image needs about {format_size(needed)} to {action}, above the "
                        f"memory limit of {format_size(self.max_memory)} (raise it with {MEMORY_VARIABLE})")

    def _tags_for(self, loaded: LoadedImage, tags: bool | list[int]) -> list[int] | None:
        if tags is False or (tags is True and self.generative is None):
            return None
        if tags is True:
            return self.tag(to_pil(loaded.pixels))
        try:
            pack_tags(list(tags))
        except ValueError as exc:
            raise InputError(f"invalid tags: {exc}") from exc
        return list(tags)

    def _stream(self, loaded: LoadedImage, quality: int, seed: int, compressed: CompressedLatent,
                tags: list[int] | None, region_sets: list[RegionSet], layer_sections: list[Section]) -> Stream:
        header = StreamHeader(width=loaded.width, height=loaded.height, model_id=self.model_id,
                              weights_hash=self.weights_hash, quality=quality, seed=seed,
                              colour=loaded.colour, bit_depth=loaded.bit_depth)
        # Tags first and palette layers next, so that every prefix of layers carries the tags.
        sections = [] if tags is None else [Section(SectionKind.TAGS, pack_tags(tags), flags=0)]
        sections += [*layer_sections, Section(SectionKind.HYPERPRIOR, compressed.hyperprior)]
        if region_sets:
            sections.append(Section(SectionKind.REGION_MAP, pack_region_map(region_sets, compressed.y_shape)))
        sections += [Section(SectionKind.LATENT, put_varint(index) + part)
                     for index, part in enumerate(compressed.parts)]
        return Stream(header, sections)

    @property
    def layer_start_timesteps(self) -> tuple[int, ...]:
        """Where the generative decoder starts on each palette layer's prefix (0: as it is); a
        decoder without a calibrated table starts them where it starts a plain stream."""
        if self.generative is None:
            return ()
        config = self.generative.config
        return config.layer_start_timesteps or (config.one_step_timestep,)

    # ------------------------------------------------------------------ decode
    def read_stream(self, data: bytes) -> Stream:
        """Parse and check that this bundle's bitstream weights made the stream. The weights hash
        decides, not the model id: a bundle with the same autoencoder and latent codec but newer
        pixel decoders (a decoder-only update) decodes the older model's streams."""
        stream = Stream.from_bytes(data, self.max_pixels)
        header = stream.header
        if header.weights_hash != self.weights_hash:
            raise StreamError(
                f"stream was made by model '{header.model_id}' (weights {header.weights_hash.hex()[:12]}), "
                f"but this decoder has '{self.model_id}' (weights {self.weights_hash.hex()[:12]}); "
                "decode it with the model that encoded it (--model)")
        if not 0 <= header.quality < self.quality_levels:
            raise StreamError(f"corrupted: quality {header.quality} out of range")
        return stream

    def compressed_latent(self, stream: Stream) -> CompressedLatent:
        """The latent codec's view of a stream: hyperprior, the parts present, region masks."""
        header = stream.header
        grid = self._y_grid(math.ceil(header.height / self.block) * self.block,
                            math.ceil(header.width / self.block) * self.block)
        region_sets = read_region_sets(stream, grid)
        parts: list[bytes | None] = [None] * (len(region_sets) + 1)
        for section in stream.sections_of(SectionKind.LATENT):
            index, payload = latent_part(section)
            if index >= len(parts) or parts[index] is not None:
                raise StreamError(f"corrupted: unexpected latent part {index}")
            parts[index] = payload
        if all(part is None for part in parts) and not region_sets:
            raise StreamError("stream has no latent section")
        return CompressedLatent(stream.section(SectionKind.HYPERPRIOR).payload, tuple(parts), grid,
                                tuple(region_set.mask(grid) for region_set in region_sets))

    def decode_latent(self, stream: Stream) -> torch.Tensor:
        return self.read_latent(stream).latent

    def read_latent(self, stream: Stream) -> DecodedLatent:
        """The decoded latent, where the generative decoder starts on it and, for a partial stream,
        which of its positions were sent (see `DecodedLatent`)."""
        if stream.sections_of(SectionKind.HYPERPRIOR) or not stream.sections_of(SectionKind.LAYER):
            compressed = self.compressed_latent(stream)
            sent = compressed.sent_positions()
            if sent is None:
                return DecodedLatent(self.latent_codec.decompress(compressed, stream.header.quality), None, None)
            partial_start = None if self.generative is None else self.generative.config.partial_stream_timestep
            if self.partial_synthesis is None:
                return DecodedLatent(self.latent_codec.decompress(compressed, stream.header.quality), partial_start,
                                     sent)
            y_hat = self.latent_codec.decode_y(compressed, stream.header.quality)
            return DecodedLatent(self.partial_synthesis(y_hat.float()), partial_start, sent)
        layers = read_layers(stream)
        header = stream.header
        factor = self.autoencoder.factor
        shape = (math.ceil(header.height / self.block) * self.block // factor,
                 math.ceil(header.width / self.block) * self.block // factor)
        return DecodedLatent(decode_palette(layers, self.autoencoder.channels, shape), layers[-1].start_timestep,
                             None)

    def decompress(self, data: bytes, *, decoder: str | None = None, steps: int | None = None,
                   cfg: float | None = None, seed: int | None = None) -> DecodedImage:
        """Decode a stream. `decoder`: "direct" (synthesis → autoencoder decoder) or "generative"
        (diffusion prior; `steps` 1 is the fast one-step mode, `cfg` the guidance scale, `seed`
        overrides the one in the header). Default: generative when the bundle has it."""
        decoder = self.default_decoder if decoder is None else decoder
        if decoder not in DECODERS:
            raise InputError(f"decoder must be one of {', '.join(DECODERS)}")
        if decoder == "generative" and self.generative is None:
            raise InputError("this model bundle has no generative decoder; use --decoder direct")
        if decoder == "direct" and (steps is not None or cfg is not None):
            raise InputError("--steps and --cfg apply to the generative decoder only")
        steps = None if steps is None else check_integer(steps, "steps")
        seed = None if seed is None else check_seed(seed)
        stream = self.read_stream(data)
        header = stream.header
        self.check_memory(header.width, header.height, "decode", StreamError)
        with reproducible_inference():
            latent = self.output_latent(stream, decoder, steps=steps, cfg=cfg, seed=seed)
            pixels = self.decode_pixels(latent, decoder)[..., : header.height, : header.width]
        return DecodedImage(to_pil(pixels, header.colour), header, decoder, pixels, self.read_tags(stream))

    def output_latent(self, stream: Stream, decoder: str, *, steps: int | None = None, cfg: float | None = None,
                      seed: int | None = None) -> torch.Tensor:
        """The latent that `decoder` turns into pixels: ẑ as decoded (direct), or what the prior
        generates from it (generative; see `decompress` for the settings)."""
        latent, start, sent = self.read_latent(stream)
        if decoder == "direct":
            return latent
        timesteps = self.generative.schedule.num_train_timesteps
        if start is not None and start >= timesteps:
            raise StreamError(f"corrupted: start timestep {start} is past the schedule's {timesteps}")
        strength = None if start is None else start / (timesteps - 1)
        header = stream.header
        generated = self.generative.sample(latent, self.read_tags(stream), steps=steps, cfg=cfg, strength=strength,
                                           seed=header.seed if seed is None else seed, quality=header.quality)
        if sent is not None and self.generative.config.partial_stream_keeps_regions:
            generated = keep_sent_regions(latent, generated, sent)
        return generated

    @staticmethod
    def read_tags(stream: Stream) -> list[int]:
        sections = stream.sections_of(SectionKind.TAGS)
        return unpack_tags(sections[0].payload) if sections else []

    def decode_pixels(self, latent: torch.Tensor, decoder: str) -> torch.Tensor:
        """Latent → pixels in overlapping tiles for large images (bounded memory): the path's own
        pixel decoder when the bundle has one, else the autoencoder decoder."""
        pixel_decoder = self.pixel_decoders[decoder]
        decode = self.autoencoder.decode if pixel_decoder is None else partial(pixel_decoder.decode, self.autoencoder)
        return tiled_map(decode, (latent,), AUTOENCODER_TILE, AUTOENCODER_OVERLAP, scale=self.autoencoder.factor)
