"""A model bundle: the folder holding every component one codec needs, and its identity.

    bundle.json        which class each component is, as diffusers' model_index.json does:
                       {"model_id": "...", "autoencoder": ["versacodec", "Autoencoder"], ...,
                        "direct_decoder": [null, null],   ← an optional component this bundle lacks
                        "_stream_floor": {...},            ← the smallest stream per image size (limits.StreamFloor)
                        "_memory_estimate": {...}}         ← the peak memory per image size (limits.MemoryEstimate)
    autoencoder/       save_pretrained folders, one per component, named after it
    latent_codec/
    generative/        optional (the generative decoder)
    direct_decoder/    optional (the direct path's pixel decoder; else the latent space's decoder)
    partial_synthesis/ optional (decodes streams whose sections were extracted away)

Bundles written before class names had {"model_id": ..., "components": {name: subfolder}}; they
load as they are, each component's class taken from its config.json (`_class_name`), else the
one that component always had. The weights hash written into every stream covers the components
that define the bitstream (latent space and latent codec); a stream made by other weights is
refused with both ids named. Reading a bundle.json imports no torch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from versacodec.container.format import HASH_BYTES
from versacodec.errors import ModelError
from versacodec.fileio import CONFIG_NAME, WEIGHTS_NAME, atomic_write_bytes, file_sha256
from versacodec.limits import MemoryEstimate, StreamFloor
from versacodec.paths import default_model_dir
from versacodec.registry import Registry

BUNDLE_FILE = "bundle.json"
# bundle.json's records of the model's `StreamFloor` and `MemoryEstimate`; a leading underscore,
# as "_class_name", so readers that predate them skip them as they skip every such key.
STREAM_FLOOR_KEY = "_stream_floor"
MEMORY_ESTIMATE_KEY = "_memory_estimate"
LIBRARY = "versacodec"  # the only library whose classes a bundle.json may name
BITSTREAM_COMPONENTS = ("autoencoder", "latent_codec")
DIRECT_DECODER = "direct_decoder"  # the direct path's own pixel decoder (versacodec.pixel_decoders)
OPTIONAL_COMPONENTS = ("generative", "partial_synthesis", DIRECT_DECODER)
# The classes a component may be, each loaded with `from_pretrained(folder)`.
COMPONENT_CLASSES: Registry[Any] = Registry("model component class", {
    "Autoencoder": "versacodec.latent_space.autoencoder:Autoencoder",
    "TAEF2": "versacodec.latent_space.taef2:TAEF2",
    "StableDiffusionVAE": "versacodec.latent_space.sd_vae:StableDiffusionVAE",
    "LatentCodec": "versacodec.latent_codec.model:LatentCodec",
    "PartialSynthesis": "versacodec.latent_codec.partial_synthesis:PartialSynthesis",
    "GenerativeDecoder": "versacodec.generative.decoder:GenerativeDecoder",
    "DecoderTail": "versacodec.pixel_decoders.tail:DecoderTail",
    "PixelDecoder": "versacodec.pixel_decoders.tail:DecoderTail",  # the tail's name in v1–v3 bundles
    "RestorationDecoder": "versacodec.pixel_decoders.restoration:RestorationDecoder",
    "FineTunedTAEF2Decoder": "versacodec.pixel_decoders.taef2_decoder:FineTunedTAEF2Decoder",
}, error=ModelError)
# The package's default models so far, by the bitstream weights hash their streams carry (hex), with
# the git commit whose `src/versacodec/weights/default` holds each bundle: a stream one of them made,
# given to another model, is refused with that model's name and where to find it.
PAST_DEFAULT_MODELS = {
    "5e506fdeec30da20": ("versacodec-default-v1", "46db8f8"),
    "c8a1e60180e44fae": ("versacodec-default-v2", "3e7c126"),
    "044008e69edec5fe": ("versacodec-default-v4", "397a76d"),  # v3 shares these weights; v4 decodes its streams
}


def past_default_model(stream_hash: bytes) -> tuple[str, str] | None:
    """(model id, commit) of the past default model whose weights hash starts with `stream_hash`
    (a stream holds a prefix of it), or None."""
    known = [model for full, model in PAST_DEFAULT_MODELS.items() if stream_hash and full.startswith(stream_hash.hex())]
    return known[0] if len(known) == 1 else None


# Components of bundles from before class names whose folder's config does not name its class.
_LEGACY_CLASSES = {"generative": "GenerativeDecoder"}


@dataclass(frozen=True)
class BundleManifest:
    model_id: str
    components: dict[str, str] = field(default_factory=dict)  # component → subfolder
    classes: dict[str, str] = field(default_factory=dict)  # component → class name (else read from its folder)
    stream_floor: StreamFloor | None = None  # recorded with the bundle (None: bundles written before it)
    memory_estimate: MemoryEstimate | None = None  # likewise

    def path(self, root: Path, component: str) -> Path | None:
        sub = self.components.get(component)
        return None if sub is None else root / sub

    def class_name(self, root: Path, component: str) -> str:
        if component in self.classes:
            return self.classes[component]
        folder = self.path(root, component)
        try:
            return json.loads((folder / CONFIG_NAME).read_text())["_class_name"]
        except (OSError, ValueError, KeyError, TypeError):
            if component in _LEGACY_CLASSES:
                return _LEGACY_CLASSES[component]
            raise ModelError(f"{folder}: its config does not name the component's class") from None

    def load(self, root: Path, component: str) -> Any:
        """The component loaded from its folder, or None when the bundle has none."""
        folder = self.path(root, component)
        if folder is None:
            return None
        return COMPONENT_CLASSES[self.class_name(root, component)].from_pretrained(folder)


def read_manifest(root: Path) -> BundleManifest:
    path = root / BUNDLE_FILE
    if not path.is_file():
        raise ModelError(f"{root} is not a versacodec model folder ({BUNDLE_FILE} missing)")
    try:
        values = json.loads(path.read_text())
        manifest = _manifest(values)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path} is unreadable: {exc}") from exc
    missing = [c for c in BITSTREAM_COMPONENTS if c not in manifest.components]
    if missing:
        raise ModelError(f"{path} lacks components {missing}")
    return manifest


def _manifest(values: dict) -> BundleManifest:
    floor = None if STREAM_FLOOR_KEY not in values else StreamFloor.from_json(values[STREAM_FLOOR_KEY])
    estimate = None if MEMORY_ESTIMATE_KEY not in values else MemoryEstimate.from_json(values[MEMORY_ESTIMATE_KEY])
    if "components" in values:  # written before class names
        return BundleManifest(values["model_id"], dict(values["components"]), stream_floor=floor,
                              memory_estimate=estimate)
    components, classes = {}, {}
    for name, entry in values.items():
        if name.startswith("_") or name == "model_id":
            continue
        library, class_name = entry
        if library is None:  # an optional component declared absent
            continue
        if library != LIBRARY:
            raise ValueError(f"component {name} is a {library}.{class_name}; a bundle holds {LIBRARY} classes")
        components[name], classes[name] = name, class_name
    return BundleManifest(values["model_id"], components, classes, floor, estimate)


def write_manifest(root: Path, manifest: BundleManifest) -> None:
    """bundle.json naming every component's class; optional components it lacks are declared absent."""
    root.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {"_class_name": "Codec", "model_id": manifest.model_id}
    for name, folder in manifest.components.items():
        if folder != name:
            raise ValueError(f"component {name} must be in the folder {name}/, not {folder}/")
        payload[name] = [LIBRARY, manifest.class_name(root, name)]
    payload |= {name: [None, None] for name in OPTIONAL_COMPONENTS if name not in manifest.components}
    (root / BUNDLE_FILE).write_text(json.dumps(payload, indent=2) + "\n")


def quality_levels(root: Path, manifest: BundleManifest) -> int:
    """How many quality settings the bundle's latent codec has, from its config (no weights)."""
    config_path = manifest.path(root, "latent_codec") / CONFIG_NAME
    try:
        return int(json.loads(config_path.read_text())["quality_levels"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{config_path}: the latent codec's config is unreadable ({exc})") from exc


def write_size_bounds(root: Path, floor: StreamFloor, estimate: MemoryEstimate) -> None:
    """Write the smallest-stream bound and the memory estimate of a bundle's model into its
    bundle.json, leaving the rest as it is (either layout): the command line then refuses a budget
    below the one, or an image above the memory limit by the other, before torch loads. The
    weights, and so the weights hash, are untouched."""
    path = root / BUNDLE_FILE
    values = json.loads(path.read_text())
    values[STREAM_FLOOR_KEY] = floor.to_json()
    values[MEMORY_ESTIMATE_KEY] = estimate.to_json()
    atomic_write_bytes(path, (json.dumps(values, indent=2) + "\n").encode(), replace=True)


def weights_hash(root: Path, manifest: BundleManifest) -> bytes:
    digest = hashlib.sha256()
    for component in BITSTREAM_COMPONENTS:
        folder = manifest.path(root, component)
        weights = folder / WEIGHTS_NAME
        # A versacodec module's single weights file (what every stream so far was hashed by), else
        # every file of the component (a latent space with weights of its own layout).
        digest.update(bytes.fromhex(file_sha256(weights)) if weights.is_file()
                      else component_hash(root, manifest, component))
    return digest.digest()[:HASH_BYTES]


def component_hash(root: Path, manifest: BundleManifest, component: str,
                   exclude: frozenset[str] = frozenset()) -> bytes | None:
    """A digest of every file of one component (weights and settings) but those named in
    `exclude` (paths relative to the component), or None when the bundle has no such component.
    Results of a decoder that does not shape the bitstream (the generative one) are told apart by
    this, since the bitstream's weights hash does not cover it."""
    folder = manifest.path(root, component)
    if folder is None:
        return None
    digest = hashlib.sha256()
    files = (p for p in folder.rglob("*") if p.is_file() and p.relative_to(folder).as_posix() not in exclude)
    for path in sorted(files):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + bytes.fromhex(file_sha256(path)))
    return digest.digest()[:HASH_BYTES]


def resolve_model_dir(model: str | Path | None) -> Path:
    root = default_model_dir() if model is None else Path(model)
    if not (root / BUNDLE_FILE).is_file():
        hint = " (the package ships no trained default model yet)" if model is None else ""
        raise ModelError(f"no model bundle at {root}{hint}")
    return root
