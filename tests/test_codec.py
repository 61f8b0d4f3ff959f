import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY_AUTOENCODER, TINY_CODEC, build_tiny_bundle, natural_image
from versacodec.codec import Codec, CodecModel
from versacodec.container.format import ColourMode, SectionKind, Stream, StreamHeader
from versacodec.errors import InputError, StreamError


def test_round_trip_keeps_size_and_reports_real_bpp(tiny_codec):
    image = natural_image(101, 67)
    encoded = tiny_codec.encode(image, quality=60)
    assert encoded.bits_per_pixel == len(encoded.data) * 8 / (101 * 67)
    assert (encoded.padded_width, encoded.padded_height) == (128, 128)
    decoded = tiny_codec.decode(encoded.data)
    assert decoded.image.size == (101, 67) and decoded.image.mode == "RGB"
    assert decoded.header.quality == 60


def test_a_codec_built_from_modules_in_memory_round_trips(tmp_path):
    """No bundle on disk: a training run or a benchmark hands the codec its modules; saved as a
    bundle, the same modules code the same bytes (given the bundle's weights hash)."""
    from versacodec.latent_codec.model import LatentCodec
    from versacodec.latent_space.autoencoder import Autoencoder

    torch.manual_seed(0)
    autoencoder, latent_codec = Autoencoder(TINY_AUTOENCODER).eval(), LatentCodec(TINY_CODEC).eval()
    latent_codec.build_tables()
    in_memory = Codec(CodecModel(autoencoder, latent_codec, model_id="in-memory"))
    image = natural_image(96, 72)
    encoded = in_memory.encode(image, bpp=0.5)
    assert len(encoded.data) <= 96 * 72 * 0.5 / 8 and encoded.tags is None  # no generative decoder, no tags
    decoded = in_memory.decode(encoded.data)
    assert decoded.image.size == (96, 72) and decoded.options.decoder == "direct"
    assert np.array_equal(np.asarray(decoded.image), np.asarray(in_memory.decode(encoded.data).image))

    autoencoder.save_pretrained(tmp_path / "autoencoder")
    latent_codec.save_pretrained(tmp_path / "latent_codec")
    from versacodec.bundle import BundleManifest, write_manifest

    write_manifest(tmp_path, BundleManifest("saved", {"autoencoder": "autoencoder", "latent_codec": "latent_codec"}))
    saved = Codec.from_pretrained(tmp_path)
    same_weights = Codec(CodecModel(autoencoder, latent_codec, weights_hash=saved.model.weights_hash))
    assert same_weights.encode(image, quality=40).data == saved.encode(image, quality=40).data
    with pytest.raises(StreamError, match="another model"):  # its own hash: other weights to a decoder
        saved.decode(encoded.data)


def test_higher_quality_costs_more_bits(tiny_codec):
    image = natural_image(128, 128)
    sizes = [len(tiny_codec.encode(image, quality=q).data) for q in (0, 50, 100)]
    assert sizes[0] < sizes[1] < sizes[2]


def test_target_bpp_is_never_exceeded(tiny_codec):
    image = natural_image(128, 96)
    top = tiny_codec.encode(image, quality=100).bits_per_pixel
    bottom = tiny_codec.encode(image, quality=0).bits_per_pixel
    for target in np.linspace(bottom * 1.05, top * 0.95, 4):
        encoded = tiny_codec.encode(image, bpp=float(target))
        assert encoded.bits_per_pixel <= target


def test_impossible_target_and_bad_settings_are_clear_errors(tiny_codec):
    image = natural_image()
    with pytest.raises(InputError, match="smallest file"):
        tiny_codec.encode(image, bpp=1e-6)
    with pytest.raises(InputError, match="quality must be"):
        tiny_codec.encode(image, quality=101)
    with pytest.raises(InputError, match="not both"):
        tiny_codec.encode(image, quality=5, bpp=0.1)
    with pytest.raises(InputError, match="positive"):
        tiny_codec.encode(image, bpp=float("nan"))


def test_greyscale_input_decodes_to_greyscale(tiny_codec):
    encoded = tiny_codec.encode(natural_image().convert("L"), quality=50)
    assert Stream.from_bytes(encoded.data).header.colour == ColourMode.GREYSCALE
    assert tiny_codec.decode(encoded.data).image.mode == "L"


def test_stream_from_other_weights_names_both_weights(tiny_codec, tmp_path):
    other = Codec.from_pretrained(build_tiny_bundle(tmp_path / "other", model_id="other-model", seed=3))
    data = other.encode(natural_image(), quality=50).data
    stream_hash = other.model.weights_hash[:4].hex()  # a 2.x stream names its model by the first 4 bytes
    with pytest.raises(StreamError, match=rf"another model \(weights {stream_hash}\).*'tiny-test'"):
        tiny_codec.decode(data)
    old_stream = Stream(StreamHeader(96, 80, "other-model", other.model.weights_hash, 50), [], (1, 0)).to_bytes()
    with pytest.raises(StreamError, match=r"model 'other-model'.*'tiny-test'"):  # 1.x streams name it
        tiny_codec.read(old_stream)


def test_a_decoder_only_update_decodes_the_older_models_streams(tiny_codec, tiny_bundle, tmp_path):
    import shutil

    from versacodec.bundle import BundleManifest, read_manifest, write_manifest

    shutil.copytree(tiny_bundle, tmp_path / "renamed")
    write_manifest(tmp_path / "renamed", BundleManifest("tiny-test-v2", read_manifest(tiny_bundle).components))
    renamed = Codec.from_pretrained(tmp_path / "renamed")
    data = tiny_codec.encode(natural_image(), quality=50).data
    assert renamed.model.model_id != tiny_codec.model.model_id
    assert torch.equal(renamed.decode(data).pixels, tiny_codec.decode(data).pixels)


def test_stream_sections(tiny_codec):
    stream = Stream.from_bytes(tiny_codec.encode(natural_image(), quality=50).data)
    assert [s.kind for s in stream.sections] == [SectionKind.HYPERPRIOR, SectionKind.LATENT]
    stream = Stream.from_bytes(tiny_codec.encode(natural_image(), quality=50, quality_map="importance").data)
    assert [s.kind for s in stream.sections] == [SectionKind.HYPERPRIOR, SectionKind.QUALITY_MAP, SectionKind.LATENT]


def test_decoding_is_bit_identical_across_thread_counts_and_processes(tiny_codec, tiny_bundle, tmp_path):
    data = tiny_codec.encode(natural_image(160, 120), quality=80).data
    stream_path = tmp_path / "s.vcx"
    stream_path.write_bytes(data)
    torch.set_num_threads(2)
    here = np.asarray(tiny_codec.decode(data).image)
    script = (
        "import sys, torch, numpy as np\n"
        "torch.set_num_threads(int(sys.argv[3]))\n"
        "from versacodec.codec import Codec\n"
        "codec = Codec.from_pretrained(sys.argv[1])\n"
        "image = codec.decode(open(sys.argv[2], 'rb').read()).image\n"
        "sys.stdout.buffer.write(np.asarray(image).tobytes())\n"
    )
    for threads in (1, 3):
        result = subprocess.run([sys.executable, "-c", script, str(tiny_bundle), str(stream_path), str(threads)],
                                capture_output=True, check=True, timeout=120)
        assert result.stdout == here.tobytes(), f"decode with {threads} threads differs"


def test_reencoding_gives_identical_bytes(tiny_codec):
    image = natural_image()
    assert tiny_codec.encode(image, quality=30).data == tiny_codec.encode(image, quality=30).data


def test_rgba_and_16_bit_inputs_are_converted_with_notes(tiny_codec):
    rgba = natural_image().convert("RGBA")
    assert any("alpha" in n for n in tiny_codec.encode(rgba, quality=10).notes)
    sixteen = Image.fromarray(np.asarray(natural_image().convert("L"), dtype=np.uint16) * 257)
    assert sixteen.mode == "I;16"
    encoded = tiny_codec.encode(sixteen, quality=10)
    assert any("16-bit" in n for n in encoded.notes)
    assert Stream.from_bytes(encoded.data).header.bit_depth == 16


def test_quality_map_policies_and_their_defaults(tiny_codec, tmp_path):
    """Issue #27 step 3: a spatially varying rate inside one task-agnostic stream."""
    from versacodec.api import extract
    from versacodec.latent_codec.quality_map import QualityMap

    image = natural_image(200, 136)
    sections = {}
    for policy in ("none", "importance", None):
        encoded = tiny_codec.encode(image, bpp=0.6, quality_map=policy)
        assert len(encoded.data) <= encoded.budget
        stream = Stream.from_bytes(encoded.data)
        sections[policy] = stream.sections_of(SectionKind.QUALITY_MAP)
        assert tiny_codec.decode(encoded.data, decoder="direct").image.size == (200, 136)
    assert not sections["none"] and not sections[None] and len(sections["importance"]) == 1
    block, delta, _ = QualityMap.read_settings(sections["importance"][0].payload)
    assert (block, delta) == (4, 20)
    # A task stream's map covers its regions; extracting the regions keeps the map they were coded with.
    boxes = tmp_path / "boxes.json"
    boxes.write_text('[{"label": "disc", "box": [40, 30, 120, 100]}]')
    task = tiny_codec.encode(image, quality=40, task="boxes", boxes=str(boxes)).data
    assert len(Stream.from_bytes(task).sections_of(SectionKind.QUALITY_MAP)) == 1  # the default with a task
    kept = extract(task, "boxes")
    assert Stream.from_bytes(kept).sections_of(SectionKind.QUALITY_MAP)
    assert tiny_codec.decode(kept, decoder="direct").image.size == (200, 136)
    with pytest.raises(InputError, match="needs a task"):
        tiny_codec.encode(image, quality=40, quality_map="regions")
    with pytest.raises(InputError, match="quality map must be one of"):
        tiny_codec.encode(image, quality=40, quality_map="everywhere")


def test_a_damaged_quality_map_is_a_stream_error(tiny_codec):
    from versacodec.container.format import Section

    stream = Stream.from_bytes(tiny_codec.encode(natural_image(200, 136), quality=40, quality_map="importance").data)
    for payload in (b"", b"\x00\x00", b"\x04\x28\x01"):
        sections = [Section(s.kind, payload) if s.kind == SectionKind.QUALITY_MAP else s for s in stream.sections]
        with pytest.raises(StreamError):
            tiny_codec.decode(Stream(stream.header, sections).to_bytes())
