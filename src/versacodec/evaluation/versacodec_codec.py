"""versacodec itself behind the harness's codec interface.

Mode options (decoder, and later steps, cfg, task, layers, ...) are routed by name to whichever of
`Codec.compress` / `Codec.decompress` accepts them, so new modes plug in without touching the
harness: `versacodec-generative:steps=4:cfg=2.5` passes steps and cfg to the decoder.

Two options act on the coded stream instead, as a sender would before transmitting it:
`extract=true` (with `task=NAME`) keeps only the task's sections (`versacodec extract`), and
`keep_layers=K` (with `layers=N`) keeps the first K layers (`versacodec truncate`). Rate control
then applies to the full stream and the measured bpp is that of what is actually sent.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from versacodec.bundle import DIRECT_DECODER
from versacodec.container.format import SectionKind
from versacodec.errors import InputError, VersacodecError
from versacodec.evaluation.cache import EncodeCache, image_hash
from versacodec.evaluation.codecs import BudgetTooSmall, EncodedResult
from versacodec.evaluation.rate_search import SHRINK_FACTORS, byte_budget, resize, shrunk_size

if TYPE_CHECKING:
    from versacodec.semantics.profiles import TaskProfile

# Set by the harness (rate) or by the codec name (decoder): not user options.
_RESERVED = {"source", "data", "bpp", "quality"}


def _parameters(function) -> set[str]:
    return {name for name, p in inspect.signature(function).parameters.items()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and name != "self"}


class VersacodecCodec:
    def __init__(self, name: str, *, model: str | Path | None = None, cache: EncodeCache | None = None,
                 **options: Any) -> None:
        from versacodec.codec import Codec

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
        bad = sorted(_RESERVED & options.keys())
        if bad:
            raise InputError(f"{name}: option(s) {', '.join(bad)} are set by the harness, not by the codec spec")
        compress_names, decompress_names = _parameters(Codec.compress), _parameters(Codec.decompress)
        unknown = sorted(set(options) - compress_names - decompress_names)
        if unknown:
            raise InputError(f"{name}: unknown option(s) {', '.join(unknown)}; Codec.compress accepts "
                             f"{sorted(compress_names - _RESERVED)}, Codec.decompress {sorted(decompress_names)}")
        self.compress_options = {k: v for k, v in options.items() if k in compress_names}
        self.decompress_options = {k: v for k, v in options.items() if k in decompress_names}
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
        decoder = self.options.get("decoder", self.codec.default_decoder)
        if decoder == "generative":
            version += f", generative decoder {self._generative_digest}"
        direct = component_hash(self.codec.root, self.codec.manifest, DIRECT_DECODER)
        if decoder == "direct" and direct is not None:  # older bundles decode with the autoencoder's
            version += f", direct decoder {direct.hex()[:12]}"
        partial = component_hash(self.codec.root, self.codec.manifest, "partial_synthesis")
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

        weights = component_hash(self.codec.root, self.codec.manifest, "generative", frozenset({CONFIG_NAME}))
        settings = self.codec.generative.config.settings_read_by_decoding(partial_streams=self.extract)
        digest = hashlib.sha256(weights + json.dumps(settings, sort_keys=True).encode())
        return digest.hexdigest()[:12]

    @cached_property
    def _encoder_version(self) -> str:
        from versacodec import __version__

        codec = self.codec
        version = f"versacodec {__version__}, model {codec.model_id} (weights {codec.weights_hash.hex()[:12]})"
        if self.task_profile is not None:  # a changed profile or region layout makes other streams
            version += (f", task profile {self.task_profile.name} {self.task_profile.digest}, "
                        f"region map kind {int(SectionKind.REGION_MAP)}")
        if "layers" in self.compress_options:  # layered streams carry the calibrated start timesteps
            version += ", layer starts " + "/".join(map(str, codec.layer_start_timesteps))
        return version

    @cached_property
    def task_profile(self) -> TaskProfile | None:
        from versacodec.semantics.profiles import load_profile

        task = self.compress_options.get("task")
        return None if task is None else load_profile(str(task))

    @property
    def rate_rule(self) -> str:
        return ("versacodec rate control: highest quality whose stream fits the budget; below the floor "
                "shrink 1/1.5-1/8, the largest factor that fits")

    def available(self) -> tuple[bool, str]:
        """Loads the model and round-trips a tiny image in this mode, so a missing model or an
        unsupported mode skips the codec once instead of failing every image."""
        try:
            probe = Image.new("RGB", (64, 64), (120, 130, 140))
            data = self.codec.compress(probe, quality=0, **self.compress_options).data
            self.codec.decompress(data, **self.decompress_options)
        except VersacodecError as exc:
            return False, f"{self.name}: {exc}"
        return True, ""

    def encode(self, image: Image.Image, target_bpp: float) -> EncodedResult:
        """Rate control on the full image; below the model's smallest file, the same rule as the
        baselines' (`rate_search`): the image shrunk by 1/1.5 .. 1/8 and upsampled back on decode,
        here at the largest factor that fits (a decode per factor to compare PSNRs would cost a
        generative decode each)."""
        budget = byte_budget(image, target_bpp)
        key = image_hash(image)
        full_size_error = None
        for factor in (1.0, *SHRINK_FACTORS):
            coded = resize(image, shrunk_size(image.width, image.height, factor))
            # At full size the knob is the target itself (the label older caches hold); shrunk, the
            # same byte budget spread over fewer pixels.
            bpp = target_bpp if factor == 1.0 else budget * 8 / (coded.width * coded.height)
            label = f"bpp={target_bpp:g}" if factor == 1.0 else f"bpp={target_bpp:g}@{factor:.4f}"
            try:
                data = self._encode_within(coded, bpp, label, key)
            except InputError as exc:  # below the model's smallest file (or size) for this image
                full_size_error = full_size_error or exc
                continue
            data = self._as_sent(data)
            quality = self.codec.read_stream(data).header.quality
            return EncodedResult.measure(data, quality, factor, image.width, image.height)
        raise BudgetTooSmall(f"{self.name}: even at 1/{1 / SHRINK_FACTORS[-1]:g} size the smallest file exceeds "
                             f"the budget of {budget} bytes (full size: {full_size_error})")

    def _encode_within(self, image: Image.Image, bpp: float, label: str, key: str) -> bytes:
        data = None if self.cache is None else self.cache.get(self.cache_name, self._encoder_version, key, label)
        if data is None:
            data = self.codec.compress(image, bpp=bpp, **self.compress_options).data
            if self.cache is not None:
                self.cache.put(self.cache_name, self._encoder_version, key, label, data)
        return data

    def _as_sent(self, data: bytes) -> bytes:
        if self.extract:
            from versacodec.semantics.partial import extract_task

            data = extract_task(data, self.options["task"])
        if self.keep_layers is not None:
            from versacodec.layers.scalable import truncate_layers

            data = truncate_layers(data, int(self.keep_layers))
        return data

    def decode(self, encoded: EncodedResult) -> Image.Image:
        decoded = self.codec.decompress(encoded.data, **self.decompress_options).image.convert("RGB")
        return resize(decoded, (encoded.width, encoded.height))
