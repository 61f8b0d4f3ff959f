"""The Python API (versacodec.compress / decompress / Codec), its doctests and the docs' examples."""

import doctest
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import versacodec
from conftest import natural_image
from versacodec import api
from versacodec.codec import Codec
from versacodec.interfaces import batch

DOCS = Path(__file__).resolve().parent.parent / "docs"


def run_doctests(target, globs: dict) -> None:
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    if isinstance(target, Path):
        result = doctest.testfile(str(target), module_relative=False, globs=globs, optionflags=flags)
    else:
        result = doctest.testmod(target, extraglobs=globs, optionflags=flags)
    assert result.attempted > 0, f"no examples found in {target}"
    assert result.failed == 0, f"{result.failed} doctest examples failed in {target}"


def test_api_docstring_examples_run(tiny_bundle, tmp_path):
    run_doctests(api, {"model_dir": tiny_bundle})
    run_doctests(batch, {"model_dir": tiny_bundle, "photos": tmp_path / "photos", "streams": tmp_path / "streams"})


@pytest.mark.parametrize("page", ["api.md", "pillow.md", "batch.md"])
def test_docs_examples_run(page, tiny_bundle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples write files in the current folder
    try:
        run_doctests(DOCS / page, {"model_dir": str(tiny_bundle)})
    finally:
        versacodec.set_default_model(None)


def test_import_is_light_and_names_resolve_lazily():
    code = "import sys, versacodec; assert 'torch' not in sys.modules; print(sorted(versacodec.__all__))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert "compress" in result.stdout
    assert versacodec.Codec is Codec and versacodec.compress is api.compress
    with pytest.raises(AttributeError):
        versacodec.no_such_name  # noqa: B018


def test_api_matches_the_codec_and_caches_models(tiny_bundle, tiny_codec):
    image = natural_image(80, 64)
    data = versacodec.compress(image, quality=30, model=tiny_bundle)
    assert data == tiny_codec.compress(image, quality=30).data
    decoded = versacodec.decompress(data, model=tiny_codec)
    assert np.array_equal(np.asarray(decoded), np.asarray(tiny_codec.decompress(data).image))
    assert api.load_codec(tiny_bundle) is api.load_codec(str(tiny_bundle) + "/")
    with pytest.raises(TypeError):
        versacodec.compress(image, model=tiny_codec, no_such_option=1)


def test_default_model_from_function_and_environment(tiny_bundle, tiny_codec, monkeypatch, tmp_path):
    from versacodec.errors import ModelError
    from versacodec.paths import default_model_dir

    monkeypatch.setenv("VERSACODEC_MODEL", str(tmp_path / "missing"))
    assert default_model_dir() == tmp_path / "missing"
    api._cached_codec.cache_clear()
    with pytest.raises(ModelError, match="missing"):
        versacodec.compress(natural_image(), quality=10)
    versacodec.set_default_model(tiny_codec)
    try:
        data = versacodec.compress(Image.new("RGB", (40, 30)), quality=10)
        assert versacodec.decompress(data).size == (40, 30)
    finally:
        versacodec.set_default_model(None)
        api._cached_codec.cache_clear()
