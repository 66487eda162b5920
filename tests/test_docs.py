"""The documentation site: it builds with `mkdocs build --strict`, every implemented catalogue entry has a page with
the agreed sections, every ```python block of every page runs, and the README's integration snippets are taken
from the tested examples.

A block fenced ```python is executed (each page in a fresh namespace, blocks in order, in a temporary folder); a
snippet that cannot run offline is fenced ```py and only shown.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hf_margin.catalogue import CATALOGUE, Method

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SECTIONS = ("## Formula", "## When to use it", "## Example", "## What the tests guarantee", "## Results and benchmarks")
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
IMPLEMENTED = [method for method in CATALOGUE if method.status == "implemented"]
PAGES_WITH_CODE = sorted(
    path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md") if PYTHON_BLOCK.search(path.read_text())
)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, code) of each ```python block of a markdown text."""
    return [(text.count("\n", 0, match.start(1)) + 1, match.group(1)) for match in PYTHON_BLOCK.finditer(text)]


def test_site_builds_in_strict_mode(tmp_path: Path) -> None:
    """Broken links, pages missing from the navigation and navigation entries without a page all fail the build."""
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=os.environ | {"NO_MKDOCS_2_WARNING": "1"},
    )
    assert build.returncode == 0, build.stderr[-4000:]
    assert (tmp_path / "methods" / "arcface" / "index.html").is_file()
    assert "arithmatex" in (tmp_path / "methods" / "arcface" / "index.html").read_text()


@pytest.mark.parametrize("method", IMPLEMENTED, ids=lambda method: method.name)
def test_every_implemented_method_has_a_page_with_the_agreed_sections(method: Method) -> None:
    page = DOCS / "methods" / f"{method.name}.md"
    assert page.is_file(), f"docs/methods/{method.name}.md is missing"
    text = page.read_text()
    assert text.startswith("# ")
    positions = [text.find(f"\n{section}\n") for section in SECTIONS]
    assert all(position > 0 for position in positions), f"{page.name} misses one of {SECTIONS}"
    assert positions == sorted(positions), f"{page.name}: the sections must come in the order {SECTIONS}"
    example = text[positions[2] : positions[3]]
    assert PYTHON_BLOCK.search(example), f"{page.name}: its Example section needs a runnable ```python block"
    if method.arxiv:
        assert method.arxiv in text, f"{page.name} does not cite arXiv {method.arxiv}"
    assert method.entry_point.rpartition(".")[2] in text, f"{page.name} does not name {method.entry_point}"
    guarantees = text[positions[3] : positions[4]]
    named_tests = re.findall(r"tests/[\w/]+\.py", guarantees)
    assert named_tests, f"{page.name}: each guarantee names the test file that checks it"
    missing = [name for name in named_tests if not (ROOT / name).is_file()]
    assert not missing, f"{page.name} names test files that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES_WITH_CODE)
def test_python_examples_run(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # examples may write output folders
    namespace: dict[str, object] = {"__name__": "__docs_example__"}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny examples: more threads only contend on a loaded machine
    try:
        for line, code in python_blocks((DOCS / page).read_text()):
            exec(compile(code, f"docs/{page}:{line}", "exec"), namespace)
    finally:
        torch.set_num_threads(threads)


def test_loss_selection_page_links_every_method() -> None:
    text = (DOCS / "loss_selection.md").read_text()
    unlinked = [method.name for method in IMPLEMENTED if f"methods/{method.name}.md" not in text]
    assert not unlinked, f"docs/loss_selection.md does not link: {unlinked}"


def test_readme_integration_snippets_are_the_tested_examples() -> None:
    """The README's snippets under "Use it in your stack" are the second block of each docs/integrations.md example
    (the first builds tiny stand-ins), which the test above runs."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Use it in your stack\n", 1)[1].split("\n## ", 1)[0]
    snippets = [code for _, code in python_blocks(section)]
    examples = [code for _, code in python_blocks((DOCS / "integrations.md").read_text())]
    assert len(snippets) == 4
    assert snippets == examples[1::2]
    assert all(len(snippet.splitlines()) <= 10 for snippet in snippets)
