"""Every example in docs/*.md (and the README's commands) runs as written, on the default model.

- `>>>` examples run as doctests in an empty folder.
- Other ```python blocks run as scripts in a folder that holds the files they name (photo.jpg);
  an example on a dataset that is not on this machine is skipped.
- Every `versacodec ...` line of a ```sh block is parsed by the real command line, so a renamed
  or removed option fails here.
"""

from __future__ import annotations

import doctest
import re
import shlex
from pathlib import Path

import pytest
from PIL import Image

import versacodec
from versacodec.interfaces.cli import build_parser
from versacodec.paths import PACKAGE_DIR

REPO = Path(__file__).resolve().parent.parent
PAGES = sorted((REPO / "docs").glob("*.md"))
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(page: Path, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(page.read_text()) if lang == language]


@pytest.fixture
def default_model_in_a_fresh_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("VERSACODEC_MODEL", raising=False)
    monkeypatch.chdir(tmp_path)  # the examples write files in the current folder
    versacodec.set_default_model(None)
    yield tmp_path
    versacodec.set_default_model(None)


@pytest.mark.parametrize("page", [p.name for p in PAGES if ">>>" in p.read_text()])
def test_doctest_examples_run_on_the_default_model(page, default_model_in_a_fresh_folder):
    result = doctest.testfile(str(REPO / "docs" / page), module_relative=False,
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0, f"{result.failed} examples failed in {page}"


@pytest.mark.parametrize(("page", "index"), [(p.name, i) for p in PAGES
                                             for i, body in enumerate(blocks(p, "python")) if ">>>" not in body])
def test_python_examples_run_as_scripts(page, index, default_model_in_a_fresh_folder):
    from versacodec.evaluation.datasets import DatasetMissing

    Image.open(PACKAGE_DIR / "samples" / "landscape.png").convert("RGB").save("photo.jpg")
    code = blocks(REPO / "docs" / page, "python")[index]
    try:
        exec(compile(code, f"{page} example {index + 1}", "exec"), {"__name__": "__example__"})
    except DatasetMissing as exc:
        pytest.skip(str(exc))


def command_lines(page: Path) -> list[str]:
    lines = []
    for body in blocks(page, "sh"):
        for line in body.replace("\\\n", " ").splitlines():
            command = line.split(" #", 1)[0].strip()
            if command.startswith("versacodec "):
                lines.append(command)
    return lines


@pytest.mark.parametrize(("page", "line"), [(p.name, line) for p in [*PAGES, REPO / "README.md"]
                                            for line in command_lines(p)])
def test_shell_examples_are_valid_commands(page, line):
    arguments = shlex.split(line)[1:]
    try:
        build_parser().parse_args(arguments)
    except SystemExit as exc:
        pytest.fail(f"{page}: `{line}` is refused by the command line (exit {exc.code})")


def test_docs_cite_only_files_in_the_repository():
    for page in [*PAGES, REPO / "README.md"]:
        for target in re.findall(r"\]\(([^)#]+)", page.read_text()):
            if not target.startswith(("http://", "https://")):
                assert (page.parent / target).exists(), f"{page.name} links to {target}, which is not in the repository"
        text = page.read_text()
        if "BASELINES.md" in text:
            assert "not part of this repository" in text, f"{page.name} cites BASELINES.md as if it were here"
