"""A loaded model: the components one codec runs, what it offers, its identity and its limits.

    CodecModel.from_pretrained(folder)            a bundle on disk (bundle.json, one folder per component)
    CodecModel(latent_space, latent_codec, ...)   modules in memory (a training run, a test, a benchmark)

`from_pretrained` is the only way in that touches the disk. It reads the bundle's manifest, the
weights hash that streams carry, and the settings of the latent codec and the generative decoder;
every other component loads when first used (the generative decoder for a generative decode, the
tagger to tag), so a command loads only what it needs. Built from modules, a model hashes their
weights itself, unless it is given the hash of the bundle they came from.

`ModelDefaults` is what a model offers (its quality levels, its decoders and their defaults): it
fills the model's defaults into `DecodeOptions` and checks what only the model can judge.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import torch
import torch.nn.functional as F
from PIL import Image

from versacodec.bundle import (
    BUNDLE_FILE,
    DIRECT_DECODER,
    BundleManifest,
    quality_levels,
    read_manifest,
    resolve_model_dir,
    weights_hash,
    write_size_bounds,
)
from versacodec.codec.memory import LATENT_SPACE_OVERLAP, LATENT_SPACE_TILE, memory_estimate, stream_floor
from versacodec.container.format import HASH_BYTES
from versacodec.errors import InputError, ModelError, VersacodecError
from versacodec.imaging import LoadedImage, open_image
from versacodec.latent_codec.model import LatentCodec
from versacodec.latent_codec.transforms import LATENT_TO_Y_STRIDE
from versacodec.latent_space.base import LatentSpace
from versacodec.limits import MemoryEstimate, StreamFloor, check_aspect, memory_limit, pixel_limit
from versacodec.options import DecodeOptions, EncodeOptions, Rate, check_quality_level
from versacodec.tiling import tiled_map

if TYPE_CHECKING:
    from versacodec.generative.config import GenerativeConfig
    from versacodec.generative.decoder import GenerativeDecoder
    from versacodec.latent_codec.partial_synthesis import PartialSynthesis
    from versacodec.pixel_decoders import PixelDecoder

T = TypeVar("T")
PRIOR_CLASS = "GenerativeDecoder"  # a generative component of this class samples a diffusion prior
Tagger = Callable[[Image.Image], list[int]]  # an image → the ImageNet class ids to send


class Lazy(Generic[T]):
    """A component loaded when first asked for: once, also when several threads ask at once."""

    def __init__(self, load: Callable[[], T]) -> None:
        self._load = load
        self._value: T | None = None
        self._loaded = False
        self._lock = threading.Lock()

    @classmethod
    def ready(cls, value: T) -> Lazy[T]:
        lazy = cls(lambda: value)
        lazy._value, lazy._loaded = value, True
        return lazy

    @property
    def loaded(self) -> bool:
        return self._loaded

    def get(self) -> T:
        with self._lock:
            if not self._loaded:
                self._value, self._loaded = self._load(), True
            return self._value


@dataclass(frozen=True)
class ModelDefaults:
    """What one model offers, from its configs (no weights needed)."""

    quality_levels: int
    decoders: tuple[str, ...]  # the first is the default
    steps: int | None = None  # the diffusion prior's defaults (None: the model has no prior)
    cfg: float | None = None

    @classmethod
    def of(cls, quality_levels: int, generative: GenerativeConfig | None, one_pass_generative: bool = False
           ) -> ModelDefaults:
        """For a latent codec of `quality_levels` and a generative decoder with a prior of these
        settings, or (`one_pass_generative`) one that is a pixel decoder alone; neither: direct only."""
        if generative is not None:
            return cls(quality_levels, ("generative", "direct"), generative.default_steps, generative.default_cfg)
        if one_pass_generative:
            return cls(quality_levels, ("generative", "direct"))
        return cls(quality_levels, ("direct",))

    @classmethod
    def read(cls, root: Path) -> ModelDefaults:
        """A bundle's, from its configs (batch mode checks a job with it before starting workers)."""
        manifest = read_manifest(root)
        return cls.of(quality_levels(root, manifest), _generative_config(root, manifest),
                      _one_pass_generative(root, manifest))

    @property
    def has_generative(self) -> bool:
        return "generative" in self.decoders

    @property
    def has_prior(self) -> bool:
        """Whether the generative decode samples a diffusion prior (else it is one pixel-decoder pass)."""
        return self.steps is not None

    def check_quality(self, quality: int, error: type[VersacodecError] = InputError) -> None:
        """A quality against the model's range: an option (InputError) or a header (StreamError)."""
        check_quality_level(quality, self.quality_levels, error)

    def encode(self, options: EncodeOptions) -> EncodeOptions:
        """`options`, checked against this model: its quality range."""
        if options.rate.quality is not None:
            self.check_quality(options.rate.quality)
        return options

    def decode(self, options: DecodeOptions) -> DecodeOptions:
        """`options` with this model's defaults filled in: a decoder always, and for a generative
        decoder with a prior its steps and guidance scale."""
        decoder = options.decoder or self.decoders[0]
        if decoder not in self.decoders:
            raise InputError(f"this model bundle has no {decoder} decoder; decode with the "
                             f"{self.decoders[0]} one", options=("decoder",))
        if decoder == "generative" and not self.has_prior and (options.steps is not None or options.cfg is not None):
            raise InputError("this model's generative decoder is one pixel-decoder pass, with no diffusion prior: "
                             "steps and cfg do not apply", options=("steps", "cfg"))
        if decoder == "direct" or not self.has_prior:
            return DecodeOptions(decoder, seed=options.seed)
        return DecodeOptions(decoder, self.steps if options.steps is None else options.steps,
                             self.cfg if options.cfg is None else options.cfg, options.seed)


def _generative_config(root: Path, manifest: BundleManifest) -> GenerativeConfig | None:
    """The settings of the bundle's diffusion prior (None: it has none)."""
    from versacodec.generative.config import GenerativeConfig

    folder = manifest.path(root, "generative")
    if folder is None or _one_pass_generative(root, manifest):
        return None
    return GenerativeConfig.read(folder)


def _one_pass_generative(root: Path, manifest: BundleManifest) -> bool:
    """Whether the bundle's generative decoder is a pixel decoder alone, run once on ẑ (v5: TAEF2's
    decoder fine-tuned adversarially), rather than a diffusion prior (`GenerativeDecoder`)."""
    return manifest.path(root, "generative") is not None and manifest.class_name(root, "generative") != PRIOR_CLASS


class CodecModel:
    """The components of one codec, loaded or to load, with its defaults, identity and limits."""

    def __init__(self, latent_space: LatentSpace, latent_codec: LatentCodec, *,
                 generative: GenerativeDecoder | PixelDecoder | Lazy[GenerativeDecoder | PixelDecoder] | None = None,
                 generative_config: GenerativeConfig | None = None,
                 partial_synthesis: PartialSynthesis | Lazy[PartialSynthesis | None] | None = None,
                 direct_decoder: PixelDecoder | Lazy[PixelDecoder | None] | None = None,
                 tagger: Tagger | None = None, model_id: str = "in-memory", weights_hash: bytes | None = None,
                 max_pixels: int | None = None, max_memory: int | None = None,
                 root: Path | None = None, manifest: BundleManifest | None = None) -> None:
        """`generative`: a GenerativeDecoder (a diffusion prior and its pixel decoder), or a
        PixelDecoder alone that renders ẑ in one pass. `generative_config`: the settings of a
        prior still to load (a loaded one brings its own; a lazy decoder without them is a pixel
        decoder). `root` and `manifest`: the bundle it was read from (None in memory)."""
        if latent_codec.config.latent_channels != latent_space.channels:
            raise ModelError(f"{root or model_id}: the latent codec codes {latent_codec.config.latent_channels} "
                             f"channels, the latent space has {latent_space.channels}")
        self.latent_space = latent_space
        self.latent_codec = latent_codec
        self.model_id = model_id
        self.weights_hash = weights_hash or _modules_hash(latent_space, latent_codec)
        self.root, self.manifest = root, manifest
        # Limits default to $VERSACODEC_MAX_PIXELS / $VERSACODEC_MAX_MEMORY (see limits.py).
        self.max_pixels = pixel_limit(max_pixels)
        self.max_memory = memory_limit(max_memory)
        from versacodec.pixel_decoders.base import PixelDecoder

        self._generative = _lazy(generative)
        if generative is not None and not isinstance(generative, Lazy | PixelDecoder):
            generative_config = generative.config
        self.defaults = ModelDefaults.of(latent_codec.config.quality_levels,
                                         None if generative is None else generative_config,
                                         one_pass_generative=generative is not None and generative_config is None)
        self._generative_config = generative_config
        self._partial_synthesis = _lazy(partial_synthesis)
        self._direct_decoder = _lazy(direct_decoder)
        self._tagger: Lazy[Tagger] = Lazy(_default_tagger) if tagger is None else Lazy.ready(tagger)

    @classmethod
    def from_pretrained(cls, model: str | Path | None = None, max_pixels: int | None = None,
                        max_memory: int | None = None) -> CodecModel:
        """The bundle in folder `model` (None: $VERSACODEC_MODEL, else the shipped default model)."""
        root = resolve_model_dir(model)
        manifest = read_manifest(root)

        def component(name: str) -> Lazy[Any]:
            return Lazy(partial(manifest.load, root, name))

        model = cls(manifest.load(root, "autoencoder"), manifest.load(root, "latent_codec"),
                    generative=None if manifest.path(root, "generative") is None else component("generative"),
                    generative_config=_generative_config(root, manifest),
                    partial_synthesis=component("partial_synthesis"), direct_decoder=component(DIRECT_DECODER),
                    model_id=manifest.model_id, weights_hash=weights_hash(root, manifest),
                    max_pixels=max_pixels, max_memory=max_memory, root=root, manifest=manifest)
        # The command line refuses budgets and sizes by the recorded bounds before it loads the model;
        # a record that disagrees with the model would refuse what fits, or let through what cannot.
        for name, recorded, actual in (("smallest stream", manifest.stream_floor, model.stream_floor),
                                       ("memory estimate", manifest.memory_estimate, model.memory_estimate)):
            if recorded is not None and recorded != actual:
                raise ModelError(f"{root / BUNDLE_FILE}: its recorded {name} {recorded} is not its model's {actual}; "
                                 f"record it again (scripts/record_size_bounds.py {root})")
        return model

    # ------------------------------------------------------------------ components
    @property
    def generative(self) -> GenerativeDecoder | None:
        """The generative decoder's diffusion prior (None: the model has none, or its generative
        decode is one pixel-decoder pass)."""
        if not self.defaults.has_prior:
            return None
        found = self._generative.get()
        if not isinstance(found, _prior_class()):
            raise ModelError(f"{self.root or self.model_id}: the generative component is a {type(found).__name__}, "
                             f"where its settings describe a diffusion prior")
        return found

    @property
    def generative_config(self) -> GenerativeConfig | None:
        """The diffusion prior's settings (None: no prior): the loaded decoder's, as they may have
        been changed since, else as read with the bundle."""
        if not self.defaults.has_prior:
            return None
        if not self._generative.loaded:
            return self._generative_config
        return self.generative.config

    @property
    def partial_synthesis(self) -> PartialSynthesis | None:
        """The synthesis for streams whose sections were extracted away (None: the codec's own)."""
        module = self._partial_synthesis.get()
        if module is not None and not module.fits(self.latent_codec):
            raise ModelError(f"{self.root or self.model_id}: partial synthesis for {module.config.y_channels} y "
                             f"channels → {module.config.latent_channels}, but the latent codec has "
                             f"{self.latent_codec.config.y_channels} → {self.latent_codec.config.latent_channels}")
        return None if module is None else module.eval()

    def pixel_decoder(self, decoder: str) -> PixelDecoder | None:
        """The decode path's own pixel decoder (None: the latent space's decoder)."""
        if decoder == "direct":
            found = self._direct_decoder.get()
        elif self.defaults.has_prior:
            found = self.generative.pixel_decoder
        else:
            found = self._generative.get()
        if found is not None:
            found.check_fits(self.latent_space)
        return found

    @property
    def pixel_decoders(self) -> dict[str, PixelDecoder | None]:
        return {decoder: self.pixel_decoder(decoder) for decoder in self.defaults.decoders}

    def load_components(self) -> CodecModel:
        """Load (and check) every component now rather than when first used."""
        _ = self.partial_synthesis, self.pixel_decoders
        return self

    def tag(self, image: Image.Image) -> list[int]:
        """The encoder-side tagger's class ids for an image."""
        return self._tagger.get()(image)

    @property
    def layer_start_timesteps(self) -> tuple[int, ...]:
        """Where the generative decoder starts on each palette layer's prefix (0: as it is); a
        decoder without a calibrated table starts them where it starts a plain stream."""
        config = self.generative_config
        if config is None:
            return ()
        return config.layer_start_timesteps or (config.one_step_timestep,)

    # ------------------------------------------------------------------ geometry and limits
    @property
    def block(self) -> int:
        """Image sides are padded to multiples of this many pixels."""
        return self.latent_space.factor * LatentCodec.block_size

    @property
    def region_cell(self) -> int:
        """Pixels per side of one cell of y's grid, on which task regions are placed."""
        return self.latent_space.factor * LATENT_TO_Y_STRIDE

    def padded(self, height: int, width: int) -> tuple[int, int]:
        return -(-height // self.block) * self.block, -(-width // self.block) * self.block

    def y_grid(self, height: int, width: int) -> tuple[int, int]:
        """y's grid for an image of this size."""
        padded_height, padded_width = self.padded(height, width)
        return padded_height // self.region_cell, padded_width // self.region_cell

    @property
    def memory_estimate(self) -> MemoryEstimate:
        """The peak-memory bound of coding one image, per image size (see `versacodec.codec.memory`)."""
        return memory_estimate(self.block, self.latent_space, self.latent_codec.config)

    def working_memory(self, width: int, height: int) -> int:
        """Estimated peak bytes to code a width × height image."""
        return self.memory_estimate.bytes(width, height)

    @property
    def stream_floor(self) -> StreamFloor:
        """The smallest stream this model can write, per image size (see `limits.StreamFloor`)."""
        return stream_floor(self.block, self.latent_space, self.latent_codec)

    def check_memory(self, width: int, height: int, action: str, error: type[VersacodecError]) -> None:
        """Refuse, before allocating, an image whose estimated working memory exceeds the limit."""
        self.memory_estimate.check(width, height, action, error, self.max_memory)

    def load_image(self, source: str | Path | bytes | Image.Image | LoadedImage, name: str | None = None,
                   rate: Rate | None = None) -> LoadedImage:
        """An image to encode, its size checked (`check_encodable`, against `rate` when given) before
        its pixels are decoded; `name`: what messages call it (default: its path, or "input" for bytes)."""
        if isinstance(source, LoadedImage):
            self.check_encodable(source.width, source.height, rate)
            return source
        return open_image(source, self.max_pixels, lambda width, height: self.check_encodable(width, height, rate),
                          name)

    def check_encodable(self, width: int, height: int, rate: Rate | None = None) -> None:
        """Refuse, from its size alone, an image that cannot be encoded: too elongated, above the
        memory limit, or (with a byte budget) one whose smallest possible stream is over the budget."""
        check_aspect(width, height)
        self.check_memory(width, height, "encode", InputError)
        budget = None if rate is None else rate.budget(width, height)
        if budget is not None:
            self.stream_floor.check(budget, width, height)

    # ------------------------------------------------------------------ latent space, tiled
    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Latent-space encode, in overlapping tiles for large images (bounded memory). Tiles are
        cut in latent coordinates: the image is folded into its latent grid (pixel-unshuffle), and
        each tile unfolded again before the encoder sees it."""
        factor = self.latent_space.factor
        return tiled_map(lambda folded: self.latent_space.encode(F.pixel_shuffle(folded, factor)),
                         (F.pixel_unshuffle(pixels, factor),), LATENT_SPACE_TILE, LATENT_SPACE_OVERLAP,
                         stage="encode tiles")

    def decode_pixels(self, latent: torch.Tensor, decoder: str) -> torch.Tensor:
        """Latent → pixels in overlapping tiles for large images (bounded memory): the path's own
        pixel decoder when the model has one, else the latent space's decoder."""
        pixel_decoder = self.pixel_decoder(decoder)
        decode = (self.latent_space.decode if pixel_decoder is None
                  else partial(pixel_decoder.decode, self.latent_space))
        return tiled_map(decode, (latent,), LATENT_SPACE_TILE, LATENT_SPACE_OVERLAP, scale=self.latent_space.factor,
                         stage="decode tiles")


def record_size_bounds(root: Path) -> tuple[StreamFloor, MemoryEstimate]:
    """Compute a bundle's smallest stream (from its tables) and memory estimate per image size and
    record them in its bundle.json (`bundle.write_size_bounds`), for a bundle just written or one
    written before the records existed (or whose records are stale); the weights are untouched."""
    manifest = read_manifest(root)
    model = CodecModel(manifest.load(root, "autoencoder"), manifest.load(root, "latent_codec"),
                       weights_hash=weights_hash(root, manifest))
    write_size_bounds(root, model.stream_floor, model.memory_estimate)
    return model.stream_floor, model.memory_estimate


def _prior_class() -> type:
    from versacodec.generative.decoder import GenerativeDecoder

    return GenerativeDecoder


def _lazy(component: T | Lazy[T] | None) -> Lazy[T | None]:
    return component if isinstance(component, Lazy) else Lazy.ready(component)


def _default_tagger() -> Tagger:
    from versacodec.semantics.tagger import ClassifierTagger

    return ClassifierTagger()


def _modules_hash(*modules: torch.nn.Module) -> bytes:
    """A weights hash for modules built in memory: their tensors, in state-dict order."""
    digest = hashlib.sha256()
    for module in modules:
        for name, tensor in module.state_dict().items():
            data = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
            digest.update(name.encode() + b"\0" + data)
    return digest.digest()[:HASH_BYTES]
