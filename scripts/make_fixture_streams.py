"""Write the stored streams that tests/test_stored_streams.py decodes (once per container format
version; refuses to overwrite).

A tiny randomly initialised float32 bundle (autoencoder, latent codec, partial synthesis and a
generative decoder, no pixel decoders) goes to tests/data/fixture_bundle (made on the first run,
kept after), and streams made with it from two generated pictures to the format's folder
(`streams_folder`: tests/data/streams for format 1.0, streams-2.0 and so on after): plain (colour
and greyscale), at a target bpp, task-structured, extracted (partial), layered and truncated, and
both at once. expected.json records how each stream was made, its SHA-256, and the SHA-256 of its
entropy-decoded symbols (`codec.symbols`; folders recorded before 2026-12-07 also keep the SHA-256
of each decode's pixels on the machine that made them).
references.npz holds the decoded pixels themselves (and the shipped-model stream's latent and
pixels), which a decode on another CPU must match within the tolerance of docs/api.md: float
kernels differ by instruction set and thread count, the symbols never. The streams are the
contract: a change to the code must decode them to the same symbols and, within that tolerance,
the same pixels, and encoding the same pictures with the same settings must give the same symbols.

    python scripts/make_fixture_streams.py [--out tests/data]
    python scripts/make_fixture_streams.py --references   # symbol hashes and references.npz for
                                                          # folders made before they were recorded
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch
from diffusers import UNet2DConditionModel
from PIL import Image

from versacodec.bundle import BundleManifest, write_manifest
from versacodec.codec import Codec
from versacodec.codec.model import record_size_bounds
from versacodec.codec.symbols import symbols_sha256
from versacodec.container.format import FORMAT_VERSION
from versacodec.generative.decoder import GenerativeConfig, GenerativeDecoder, control_branch, default_scheduler
from versacodec.generative.tags import TagEmbedding, TagEmbeddingConfig
from versacodec.latent_codec.model import LatentCodec, LatentCodecConfig
from versacodec.latent_codec.partial_synthesis import PartialSynthesis
from versacodec.latent_space.autoencoder import Autoencoder, AutoencoderConfig

AUTOENCODER = AutoencoderConfig(latent_channels=4, encoder_widths=(8, 8, 16), encoder_blocks=(0, 0, 1),
                                decoder_widths=(16, 8, 8), decoder_blocks=(1, 0, 0), output_width=4)
LATENT_CODEC = LatentCodecConfig(latent_channels=4, width=16, blocks=1, y_channels=12, z_channels=6, hyper_width=12,
                                 groups=(2, 4, 6), context_hidden=8, rate_levels=3, quality_levels=101,
                                 initial_gain_range=(0.5, 8.0))
GENERATIVE = GenerativeConfig(start_strength=0.3, one_step_timestep=250,
                              one_step_timesteps_by_quality=((0, 300), (65, 120)), layer_start_timesteps=(200, 0),
                              partial_stream_timestep=400)
BOXES = [{"label": "disc", "box": [30, 20, 90, 70]}, {"label": "corner", "box": [100, 0, 150, 40]}]
# name → (picture, settings, stream operation); the settings are Codec.encode keywords.
STREAMS = {
    "plain": ("colour", {"quality": 60, "seed": 3, "tags": [1, 2]}, None),
    "greyscale": ("grey", {"quality": 30, "tags": False}, None),
    "target-bpp": ("colour", {"bpp": 0.3, "tags": [7]}, None),
    "task": ("colour", {"quality": 70, "tags": [5], "task": "boxes", "boxes": "boxes.json"}, None),
    "task-extracted": ("colour", {"quality": 70, "tags": [5], "task": "boxes", "boxes": "boxes.json"},
                       {"extract": "boxes"}),
    "layered": ("colour", {"quality": 50, "tags": [9], "layers": 3}, None),
    "layered-1": ("colour", {"quality": 50, "tags": [9], "layers": 3}, {"truncate": 1}),
    "layered-2": ("colour", {"quality": 50, "tags": [9], "layers": 3}, {"truncate": 2}),
    "task-layered-extracted": ("colour", {"quality": 40, "tags": [3], "task": "boxes", "boxes": "boxes.json",
                                          "layers": 3}, {"extract": "boxes", "truncate": 3}),
}
# decode label → Codec.decode keywords
DECODES = {"direct": {"decoder": "direct"}, "generative": {"decoder": "generative"},
           "generative:steps=2:cfg=2:seed=5": {"decoder": "generative", "steps": 2, "cfg": 2.0, "seed": 5}}


def picture(kind: str) -> Image.Image:
    """A smooth textured picture (160x112: padded to 192x128 by the codec) with a disc and noise."""
    rng = np.random.default_rng(11)
    height, width = 112, 160
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    red = 0.5 + 0.4 * np.sin(xs / 9.0)
    green = 0.5 + 0.4 * np.cos(ys / 7.0)
    blue = ((xs - 60) ** 2 + (ys - 45) ** 2 < 28**2).astype(np.float32)
    array = np.stack([red, green, 0.2 + 0.6 * blue], -1) + rng.normal(0, 0.03, (height, width, 3))
    image = Image.fromarray((np.clip(array, 0, 1) * 255).astype(np.uint8), "RGB")
    return image.convert("L") if kind == "grey" else image


def _perturb(module: torch.nn.Module, scale: float) -> None:
    """Random residual branches and zero-initialised projections start at zero; perturb them so every
    weight shapes the output."""
    for parameter in module.parameters():
        parameter.data.add_(torch.randn_like(parameter) * scale)


def build_bundle(root: Path) -> None:
    torch.manual_seed(28)
    autoencoder = Autoencoder(AUTOENCODER)
    _perturb(autoencoder, 0.02)
    codec = LatentCodec(LATENT_CODEC).eval()
    codec.build_tables()
    partial = PartialSynthesis.from_codec(codec)
    _perturb(partial, 0.01)
    # The smallest prior with a cross-attention block (the tags) and a control branch: 160 KB.
    channels = AUTOENCODER.latent_channels
    unet = UNet2DConditionModel(sample_size=32, in_channels=channels, out_channels=channels, layers_per_block=1,
                                block_out_channels=(8, 8), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=8,
                                attention_head_dim=4, norm_num_groups=4)
    controlnet = control_branch(unet)
    _perturb(controlnet, 0.01)
    tags = TagEmbedding(TagEmbeddingConfig(embedding_dim=8, semantic_dim=4), torch.randn(1000, 4))
    autoencoder.save_pretrained(root / "autoencoder")
    codec.save_pretrained(root / "latent_codec")
    partial.save_pretrained(root / "partial_synthesis")
    GenerativeDecoder(unet, controlnet, tags, default_scheduler(), GENERATIVE).save_pretrained(root / "generative")
    write_manifest(root, BundleManifest("fixture-tiny", {name: name for name in
                                                         ("autoencoder", "latent_codec", "generative",
                                                          "partial_synthesis")}))
    record_size_bounds(root)


def streams_folder(version: tuple[int, int] = FORMAT_VERSION) -> str:
    return "streams" if version == (1, 0) else f"streams-{version[0]}.{version[1]}"


def make_stream(codec: Codec, folder: Path, name: str) -> bytes:
    """The stream `name` of STREAMS, made by the code as it is now."""
    from versacodec.api import extract, truncate

    kind, settings, operation = STREAMS[name]
    settings = dict(settings)
    if "boxes" in settings:
        settings["boxes"] = str(folder / settings["boxes"])
    data = codec.encode(Image.open(folder / f"{kind}.png"), **settings).data
    operation = operation or {}
    if "extract" in operation:
        data = extract(data, operation["extract"])
    if "truncate" in operation:
        data = truncate(data, operation["truncate"])
    return data


def default_model_stream(folder: Path) -> dict:
    """A stream of the shipped model (its latent and pixels go to references.npz)."""
    codec = Codec.from_pretrained()
    data = codec.encode(Image.open(folder / "colour.png"), quality=40, tags=False).data
    (folder / "default-model.vcx").write_bytes(data)
    return {"picture": "colour.png", "settings": {"quality": 40, "tags": False}, "model_id": codec.model.model_id,
            "stream_sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def record_references(folder: Path, bundle: Path) -> None:
    """Add symbol hashes to expected.json and write references.npz for a folder of stored streams
    (refuses when references.npz exists: references are recorded once)."""
    target = folder / "references.npz"
    if target.exists():
        raise SystemExit(f"{target} exists: references are recorded once and never replaced")
    expected = json.loads((folder / "expected.json").read_text())
    codec, shipped = Codec.from_pretrained(bundle), Codec.from_pretrained()
    arrays = {}
    for name, record in expected.items():
        data = (folder / f"{name}.vcx").read_bytes()
        owner = shipped if name == "default-model" else codec
        record["symbols_sha256"] = symbols_sha256(owner, data)
        decodes = {"direct": {"decoder": "direct"}, "generative": {"decoder": "generative"}} \
            if name == "default-model" else DECODES
        for label, options in decodes.items():
            arrays[f"{name}/{label}"] = np.asarray(owner.decode(data, **options).image)
        if name == "default-model":
            arrays[f"{name}/latent"] = owner.decoded_latent(owner.read(data)).latent.float().numpy()
    np.savez_compressed(target, **arrays)
    (folder / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "tests" / "data"))
    parser.add_argument("--references", action="store_true",
                        help="record symbol hashes and references.npz in every folder of stored streams")
    args = parser.parse_args()
    torch.set_num_threads(1)
    bundle, streams = Path(args.out) / "fixture_bundle", Path(args.out) / streams_folder()
    if args.references:
        for version in ((1, 0), FORMAT_VERSION):
            record_references(Path(args.out) / streams_folder(version), bundle)
        return 0
    if streams.exists():
        print(f"{streams} exists: the stored streams are made once and never replaced", file=sys.stderr)
        return 2
    if not bundle.exists():
        build_bundle(bundle)
    streams.mkdir(parents=True)
    (streams / "boxes.json").write_text(json.dumps(BOXES) + "\n")
    for kind in ("colour", "grey"):
        picture(kind).save(streams / f"{kind}.png")
    codec = Codec.from_pretrained(bundle)
    expected = {}
    for name in STREAMS:
        data = make_stream(codec, streams, name)
        (streams / f"{name}.vcx").write_bytes(data)
        kind, settings, operation = STREAMS[name]
        expected[name] = {"picture": f"{kind}.png", "settings": settings, "operation": operation,
                          "stream_sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        print(f"{name}: {len(data)} bytes", file=sys.stderr)
    expected["default-model"] = default_model_stream(streams)
    (streams / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    record_references(streams, bundle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
