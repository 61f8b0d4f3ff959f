"""versacodec itself behind the harness's codec interface.

A spec's options are the fields of `versacodec.options.EncodeOptions` and `DecodeOptions` (a
`seed` goes to both), built once when the spec is read, so new modes plug in without touching the
harness: `versacodec-generative:steps=4:cfg=2.5` decodes with 4 steps and guidance 2.5. The
harness sets the rate.

Two options act on the coded stream instead, as a sender would before transmitting it:
`extract=true` (with `task=NAME`) keeps only the task's sections (`versacodec extract`), and
`keep_layers=K` (with `layers=N`) keeps the first K layers (`versacodec truncate`). Rate control
then applies to the full stream and the measured bpp is that of what is actually sent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from versacodec.bundle import DIRECT_DECODER
from versacodec.container.format import FORMAT_VERSION, SectionKind, Stream
from versacodec.errors import BudgetTooSmall, InputError, VersacodecError
from versacodec.evaluation.cache import EncodeCache, image_hash
from versacodec.evaluation.codecs import EncodedResult
from versacodec.evaluation.rate_search import SHRINK_FACTORS, resize, shrunk_size
from versacodec.options import DECODE_KEYWORDS, ENCODE_KEYWORDS, RATE_KEYWORDS, DecodeOptions, EncodeOptions, Rate
from versacodec.semantics.importance import quality_map_settings
from versacodec.version import __version__

if TYPE_CHECKING:
    from versacodec.semantics.profiles import TaskProfile

# The decoder each catalog name implies.
IMPLIED_DECODERS = {"versacodec": None, "versacodec-direct": "direct", "versacodec-generative": "generative"}


class VersacodecCodec:
    @classmethod
    def from_spec(cls, spec: str, options: dict[str, Any], *, cache: EncodeCache | None = None,
                  always_shrink: bool = False, model: str | Path | None = None) -> VersacodecCodec:
        name = spec.strip().split(":")[0]
        decoder = IMPLIED_DECODERS[name]
        if decoder is not None:
            if options.get("decoder", decoder) != decoder:
                raise InputError(f"'{name}' implies decoder={decoder}; use 'versacodec:decoder=...' to choose another")
            options["decoder"] = decoder
        return cls(spec, model=options.pop("model", model), cache=cache, **options)

    def __init__(self, name: str, *, model: str | Path | None = None, cache: EncodeCache | None = None,
                 **options: Any) -> None:
        self.name = name
        self.model = model
        self.cache = cache
        options = dict(options)
        self.extract = bool(options.pop("extract", False))
        self.keep_layers = options.pop("keep_layers", None)
        self.options = options
        if self.extract and "task" not in options:
            raise InputError(f"{name}: extract=true needs task=NAME")
        if self.keep_layers is not None and "layers" not in options:
            raise InputError(f"{name}: keep_layers=K needs layers=N")
        bad = sorted(set(RATE_KEYWORDS) & options.keys())
        if bad:
            raise InputError(f"{name}: option(s) {', '.join(bad)} are set by the harness, not by the codec spec")
        encode_names = [key for key in ENCODE_KEYWORDS if key not in RATE_KEYWORDS]
        unknown = sorted(set(options) - set(encode_names) - set(DECODE_KEYWORDS))
        if unknown:
            raise InputError(f"{name}: unknown option(s) {', '.join(unknown)}; the encoder takes "
                             f"{', '.join(encode_names)}, the decoder {', '.join(DECODE_KEYWORDS)}")
        # As written in the spec: they name the cached streams.
        self.compress_options = {k: v for k, v in options.items() if k in encode_names}
        self.decompress_options = {k: v for k, v in options.items() if k in DECODE_KEYWORDS}
        self.encode_options = EncodeOptions.of(**self.compress_options)
        self.decode_options = DecodeOptions(**self.decompress_options)
        # Streams depend on the encoder options only: every decoder, extract and keep_layers variant
        # of one encoding shares its cached files.
        self.cache_name = "versacodec:" + ":".join(f"{k}={v}" for k, v in sorted(self.compress_options.items()))
        self._codec = None

    @property
    def codec(self):
        """The loaded model bundle (loaded on first use; one per process)."""
        if self._codec is None:
            from versacodec.codec import Codec

            self._codec = Codec.from_pretrained(self.model)
        return self._codec

    @cached_property
    def version(self) -> str:
        from versacodec.bundle import component_hash

        options = ", ".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        version = f"{self._encoder_version}, {options}"
        decoder = self.options.get("decoder", self.codec.model.defaults.decoders[0])
        if decoder == "generative":
            version += f", generative decoder {self._generative_digest}"
        model = self.codec.model
        direct = component_hash(model.root, model.manifest, DIRECT_DECODER)
        if decoder == "direct" and direct is not None:  # older bundles decode with the autoencoder's
            version += f", direct decoder {direct.hex()[:12]}"
        partial = component_hash(model.root, model.manifest, "partial_synthesis")
        if self.extract and partial is not None:  # only streams with dropped sections use it
            version += f", partial synthesis {partial.hex()[:12]}"
        return version

    @property
    def _generative_digest(self) -> str:
        """The generative decoder's weights and the settings this spec's streams read, so that
        retuning a setting other streams never read (a partial-stream start, say) keeps their
        records."""
        from versacodec.bundle import component_hash
        from versacodec.generative.decoder import CONFIG_NAME

        model = self.codec.model
        weights = component_hash(model.root, model.manifest, "generative", frozenset({CONFIG_NAME}))
        config = model.generative_config  # None: one pixel-decoder pass, no settings
        settings = {} if config is None else config.settings_read_by_decoding(partial_streams=self.extract)
        digest = hashlib.sha256(weights + json.dumps(settings, sort_keys=True).encode())
        return digest.hexdigest()[:12]

    @cached_property
    def _encoder_version(self) -> str:
        model = self.codec.model
        version = f"versacodec {__version__}, model {model.model_id} (weights {model.weights_hash.hex()[:12]})"
        if FORMAT_VERSION != (1, 0):  # streams of another container format are other bytes
            version += f", format {FORMAT_VERSION[0]}.{FORMAT_VERSION[1]}"
        policy = self.encode_options.quality_map_policy
        if policy != "none":  # where the bits go is the encoder's choice, its default included
            version += f", quality map {policy} ({quality_map_settings()})"
        if self.task_profile is not None:  # a changed profile or region layout makes other streams
            version += (f", task profile {self.task_profile.name} {self.task_profile.digest}, "
                        f"region map kind {int(SectionKind.REGION_MAP)}")
        if "layers" in self.compress_options:  # layered streams carry the calibrated start timesteps
            version += ", layer starts " + "/".join(map(str, model.layer_start_timesteps))
        return version

    @property
    def task_profile(self) -> TaskProfile | None:
        return self.encode_options.task

    @property
    def rate_rule(self) -> str:
        return ("versacodec rate control: highest quality whose stream fits the budget; below the floor "
                "shrink 1/1.5-1/8, the largest factor that fits")

    def available(self) -> tuple[bool, str]:
        """Loads the model and round-trips a tiny image in this mode, so a missing model or an
        unsupported mode skips the codec once instead of failing every image."""
        try:
            probe = Image.new("RGB", (64, 64), (120, 130, 140))
            data = self.codec.encode(probe, replace(self.encode_options, rate=Rate(quality=0))).data
            self.codec.decode(data, self.decode_options)
        except VersacodecError as exc:
            return False, f"{self.name}: {exc}"
        return True, ""

    def encode(self, image: Image.Image, target_bpp: float) -> EncodedResult:
        """Rate control on the full image; below the model's smallest file, the same rule as the
        baselines' (`rate_search`): the image shrunk by 1/1.5 .. 1/8 and upsampled back on decode,
        here at the largest factor that fits (a decode per factor to compare PSNRs would cost a
        generative decode each)."""
        full_size = Rate(bpp=target_bpp)
        budget = full_size.budget(image.width, image.height)
        key = image_hash(image)
        full_size_error = None
        for factor in (1.0, *SHRINK_FACTORS):
            coded = resize(image, shrunk_size(image.width, image.height, factor))
            # At full size the knob is the target itself (the label older caches hold); shrunk, the
            # same byte budget for fewer pixels.
            rate = full_size if factor == 1.0 else Rate(max_bytes=budget)
            label = f"bpp={target_bpp:g}" if factor == 1.0 else f"bytes={budget}@{factor:.4f}"
            try:
                data, quality = self._encode_within(coded, rate, label, key)
            except BudgetTooSmall as exc:  # below the model's smallest file for this image at this size
                full_size_error = full_size_error or exc
                continue
            return EncodedResult.measure(self._as_sent(data), quality, factor, image.width, image.height)
        raise BudgetTooSmall(f"{self.name}: even at 1/{1 / SHRINK_FACTORS[-1]:g} size the smallest file exceeds "
                             f"the budget of {budget} bytes (full size: {full_size_error})")

    def _encode_within(self, image: Image.Image, rate: Rate, label: str, key: str) -> tuple[bytes, int]:
        """The stream (cached) and its quality: as chosen, or for a cached stream as its header says."""
        data = None if self.cache is None else self.cache.get(self.cache_name, self._encoder_version, key, label)
        if data is not None:
            return data, Stream.from_bytes(data).header.quality
        encoded = self.codec.encode(image, replace(self.encode_options, rate=rate))
        if self.cache is not None:
            self.cache.put(self.cache_name, self._encoder_version, key, label, encoded.data)
        return encoded.data, encoded.quality

    def _as_sent(self, data: bytes) -> bytes:
        from versacodec.codec import layout

        if self.extract:
            data = layout.extract(data, self.options["task"])
        if self.keep_layers is not None:
            data = layout.truncate(data, int(self.keep_layers))
        return data

    def decode(self, encoded: EncodedResult) -> Image.Image:
        decoded = self.codec.decode(encoded.data, self.decode_options).image.convert("RGB")
        return resize(decoded, (encoded.width, encoded.height))
