import pytest
import torch
from safetensors.torch import load_file

from conftest import natural_image
from versacodec.codec import Codec, CodecModel
from versacodec.errors import InputError, ModelError
from versacodec.interfaces.cli import main
from versacodec.training.bundle import assemble_bundle, bundle_size


def test_assembled_half_precision_bundle_loads_and_codes(generative_bundle, tmp_path):
    output = assemble_bundle(tmp_path / "half", "half-test", generative_bundle / "autoencoder",
                             generative_bundle / "latent_codec", generative_bundle / "generative")
    assert bundle_size(output) < bundle_size(generative_bundle)
    codec_weights = load_file(str(output / "latent_codec" / "model.safetensors"))
    assert codec_weights["analysis.1.weight"].dtype == torch.float16
    assert codec_weights["gains.quality_gain"].dtype == torch.float64  # exact coding tables stay as they are
    assert codec_weights["gaussian.pmf"].dtype == torch.int32
    codec = Codec.from_pretrained(output)
    assert codec.model.model_id == "half-test" and codec.model.generative is not None
    data = codec.encode(natural_image(), quality=50).data
    assert codec.decode(data, steps=1).image.size == (96, 80)


def test_bundle_refuses_a_non_empty_folder_and_missing_parts(tiny_bundle, tmp_path, capsys):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        assemble_bundle(tmp_path / "busy", "x", tiny_bundle / "autoencoder", tiny_bundle / "latent_codec")
    with pytest.raises(InputError, match="not a trained component"):
        assemble_bundle(tmp_path / "new", "x", tmp_path / "nothing", tiny_bundle / "latent_codec")
    with pytest.raises(InputError, match="not a trained component"):
        assemble_bundle(tmp_path / "new", "x", tiny_bundle / "autoencoder", tmp_path / "nothing")
    assert not (tmp_path / "new").exists()  # nothing half-made is left behind
    code = main(["bundle", "--autoencoder", str(tiny_bundle / "autoencoder"), "--latent-codec",
                 str(tiny_bundle / "latent_codec"), "--model-id", "cli-test", "-o", str(tmp_path / "cli")])
    assert code == 0 and "cli-test" in capsys.readouterr().out
    with pytest.raises(ModelError):
        Codec.from_pretrained(tmp_path / "busy")


def test_bundle_json_names_each_component_s_class_and_the_absent_optional_ones(tiny_bundle, tmp_path):
    import json

    assemble_bundle(tmp_path / "b", "classes", tiny_bundle / "autoencoder", tiny_bundle / "latent_codec", half=False)
    written = json.loads((tmp_path / "b" / "bundle.json").read_text())
    # What the command line refuses budgets and image sizes by before torch loads:
    floor, estimate = written.pop("_stream_floor"), written.pop("_memory_estimate")
    assert written == {"_class_name": "Codec", "model_id": "classes", "autoencoder": ["versacodec", "Autoencoder"],
                       "latent_codec": ["versacodec", "LatentCodec"], "generative": [None, None],
                       "partial_synthesis": [None, None], "direct_decoder": [None, None]}
    reassembled = CodecModel.from_pretrained(tmp_path / "b")
    assert floor == reassembled.stream_floor.to_json()
    assert estimate == reassembled.memory_estimate.to_json()
    assert reassembled.weights_hash == CodecModel.from_pretrained(tiny_bundle).weights_hash
    for entry, message in ((["versacodec", "Nope"], "unknown model component class 'Nope'"),
                           (["diffusers", "AutoencoderKL"], "a bundle holds versacodec classes")):
        (tmp_path / "b" / "bundle.json").write_text(json.dumps(written | {"autoencoder": entry}))
        with pytest.raises(ModelError, match=message):
            Codec.from_pretrained(tmp_path / "b")


def test_bundles_from_before_class_names_load_as_they_are():
    import json
    from pathlib import Path

    from versacodec.bundle import read_manifest
    from versacodec.paths import default_model_dir

    old = Path(__file__).parent / "data" / "fixture_bundle"  # written by v3's code, kept as it was
    assert "components" in json.loads((old / "bundle.json").read_text())
    manifest = read_manifest(old)
    assert manifest.class_name(old, "autoencoder") == "Autoencoder"
    assert manifest.class_name(old, "generative") == "GenerativeDecoder"
    shipped = default_model_dir()  # v4 onwards: every component's class named in bundle.json
    assert json.loads((shipped / "bundle.json").read_text())["direct_decoder"] == ["versacodec", "DecoderTail"]
    assert read_manifest(shipped).class_name(shipped, "generative") == "GenerativeDecoder"


def test_any_latent_space_serves_the_codec(tmp_path):
    """A bundle whose latent space is a diffusers VAE codes and decodes like one with versacodec's
    own autoencoder (components are loaded by the class bundle.json names)."""
    from diffusers import AutoencoderKL

    from conftest import TINY_CODEC
    from versacodec.bundle import BundleManifest, write_manifest
    from versacodec.latent_codec.model import LatentCodec
    from versacodec.latent_space.sd_vae import StableDiffusionVAE

    torch.manual_seed(0)
    AutoencoderKL(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                  up_block_types=("UpDecoderBlock2D",) * 2, layers_per_block=1, latent_channels=4,
                  norm_num_groups=4, scaling_factor=0.5).save_pretrained(tmp_path / "vae" / "autoencoder")
    codec = LatentCodec(TINY_CODEC).eval()
    codec.build_tables()
    codec.save_pretrained(tmp_path / "vae" / "latent_codec")
    write_manifest(tmp_path / "vae", BundleManifest("sd-vae-test", {"autoencoder": "autoencoder",
                                                                    "latent_codec": "latent_codec"},
                                                    {"autoencoder": "StableDiffusionVAE"}))
    loaded = Codec.from_pretrained(tmp_path / "vae")
    assert isinstance(loaded.model.latent_space, StableDiffusionVAE) and loaded.model.block == 16
    image = natural_image(40, 28)
    encoded = loaded.encode(image, bpp=2.0)
    assert len(encoded.data) <= encoded.budget
    decoded = loaded.decode(encoded.data)
    assert decoded.image.size == (40, 28) and decoded.decoder == "direct"
