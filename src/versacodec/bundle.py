"""A model bundle: the folder holding every component one codec needs, and its identity.

    bundle.json        {"model_id": ..., "components": {"autoencoder": "autoencoder", ...}}
    autoencoder/       save_pretrained folders, one per component
    latent_codec/
    generative/        optional (the generative decoder)
    direct_decoder/    optional (the direct path's pixel decoder; else the autoencoder's decoder)
    partial_synthesis/ optional (decodes streams whose sections were extracted away)

The weights hash written into every stream covers the components that define the bitstream
(autoencoder and latent codec); a stream made by other weights is refused with both ids named.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from versacodec.container.format import HASH_BYTES
from versacodec.errors import ModelError
from versacodec.modeling import WEIGHTS_NAME, file_sha256
from versacodec.paths import default_model_dir

BUNDLE_FILE = "bundle.json"
BITSTREAM_COMPONENTS = ("autoencoder", "latent_codec")
DIRECT_DECODER = "direct_decoder"  # optional: the direct path's own pixel decoder (versacodec.pixel_decoders)


@dataclass(frozen=True)
class BundleManifest:
    model_id: str
    components: dict[str, str] = field(default_factory=dict)  # component → subfolder

    def path(self, root: Path, component: str) -> Path | None:
        sub = self.components.get(component)
        return None if sub is None else root / sub


def read_manifest(root: Path) -> BundleManifest:
    path = root / BUNDLE_FILE
    if not path.is_file():
        raise ModelError(f"{root} is not a versacodec model folder ({BUNDLE_FILE} missing)")
    try:
        values = json.loads(path.read_text())
        manifest = BundleManifest(values["model_id"], dict(values["components"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path} is unreadable: {exc}") from exc
    missing = [c for c in BITSTREAM_COMPONENTS if c not in manifest.components]
    if missing:
        raise ModelError(f"{path} lacks components {missing}")
    return manifest


def write_manifest(root: Path, manifest: BundleManifest) -> None:
    root.mkdir(parents=True, exist_ok=True)
    payload = {"model_id": manifest.model_id, "components": manifest.components}
    (root / BUNDLE_FILE).write_text(json.dumps(payload, indent=2) + "\n")


def weights_hash(root: Path, manifest: BundleManifest) -> bytes:
    digest = hashlib.sha256()
    for component in BITSTREAM_COMPONENTS:
        digest.update(bytes.fromhex(file_sha256(manifest.path(root, component) / WEIGHTS_NAME)))
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
