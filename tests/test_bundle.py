import pytest
import torch
from safetensors.torch import load_file

from conftest import natural_image
from versacodec.codec import Codec
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
    assert codec.model_id == "half-test" and codec.generative is not None
    data = codec.compress(natural_image(), quality=50).data
    assert codec.decompress(data, steps=1).image.size == (96, 80)


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
