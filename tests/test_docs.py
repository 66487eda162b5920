"""The documentation site and the README.

The site builds with `mkdocs build --strict`, has an API reference page per public package and loads no script or
stylesheet from another host (it works offline); every implemented catalogue entry has a page with the agreed
sections; every ```python block of every page runs. The README is a front page that works on a package index: short,
absolute links only, the set-up and install commands, and the four "Use it in your stack" snippets, which are the
examples of docs/integrations.md and each run on their own.

A block fenced ```python is executed (each page in a fresh namespace, blocks in order, in a temporary folder; the
blocks of docs/integrations.md each in a fresh namespace, since each is complete); a snippet that cannot run offline
is fenced ```py and only shown.
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
README = (ROOT / "README.md").read_text()
DOCS_SITE = "https://hf-margin.github.io/hf_margin/"
REPOSITORY = "https://github.com/hf-margin/hf_margin"
# One reference page per public package (docs/reference/<page>.md documents `hf_margin.<package>` at package level).
REFERENCE = {
    "functional": "hf_margin.functional",
    "heads": "hf_margin.heads",
    "losses": "hf_margin.losses",
    "metrics": "hf_margin.metrics",
    "embeddings": "hf_margin.embeddings",
    "tuners_petal": "hf_margin.tuners.petal",
    "models": "hf_margin.models",
    "trainers": "hf_margin.trainers",
    "callbacks": "hf_margin.callbacks",
    "diagnostics": "hf_margin.diagnostics",
    "data": "hf_margin.data",
}
# Pages whose ```python blocks are each complete (run each in a fresh namespace).
SELF_CONTAINED_PAGES = {"integrations.md"}
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

    # The API reference: a page per public package, rendered from the docstrings (an anchor per documented object).
    for page, package in REFERENCE.items():
        html = tmp_path / "reference" / page / "index.html"
        assert html.is_file(), f"no reference page for {package}"
        text = html.read_text()
        assert f'id="{package}"' in text, f"reference/{page} does not document {package}"
        assert len(re.findall(rf'id="{re.escape(package)}\.\w', text)) >= 1, f"reference/{page} documents no member"
    assert 'id="hf_margin.trainers.MADPOTrainer"' in (tmp_path / "reference" / "trainers" / "index.html").read_text()
    documented = {
        anchor.rpartition(".")[2]
        for html in (tmp_path / "reference").rglob("index.html")
        for anchor in re.findall(r'id="(hf_margin\.[\w.]+)"', html.read_text())
    }
    undocumented = [m.entry_point for m in IMPLEMENTED if m.entry_point.rpartition(".")[2] not in documented]
    assert not undocumented, f"catalogue entry points missing from the API reference: {undocumented}"
    assert 'id="hf_margin.losses.MetricLossBase"' in (tmp_path / "reference" / "losses" / "index.html").read_text()

    # Offline: no page loads a script or a stylesheet from another host; the maths engine is served by the site.
    external = []
    for html in tmp_path.rglob("*.html"):
        text = html.read_text()
        external += [
            f"{html.relative_to(tmp_path)}: {url}"
            for url in re.findall(r'<script[^>]*\ssrc="((?:https?:)?//[^"]*)"', text)
            + re.findall(r'<link[^>]*\shref="((?:https?:)?//[^"]*)"[^>]*>', text)
            if not re.search(r'rel="(?:canonical|alternate)"', url)
        ]
        external += [
            f"{html.relative_to(tmp_path)}: @import {url}"
            for url in re.findall(r"@import url\(['\"]?(https?:[^)'\"]*)", text)
        ]
    assert not external, f"pages load files from other hosts: {external[:5]}"
    arcface = (tmp_path / "methods" / "arcface" / "index.html").read_text()
    assert re.search(r'<script[^>]*src="[^"]*javascripts/vendor/mathjax/tex-svg-full\.js"', arcface)
    assert (tmp_path / "javascripts" / "vendor" / "mathjax" / "tex-svg-full.js").stat().st_size > 1_000_000
    assert (tmp_path / "javascripts" / "vendor" / "mathjax" / "LICENSE").is_file()
    # Long code lines wrap rather than being clipped.
    assert "pre-wrap" in (tmp_path / "stylesheets" / "extra.css").read_text()


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
            if page in SELF_CONTAINED_PAGES:
                namespace = {"__name__": "__docs_example__"}
            exec(compile(code, f"docs/{page}:{line}", "exec"), namespace)
    finally:
        torch.set_num_threads(threads)


MEASURED_FIGURE = re.compile(r"-?\d[\d,]*\.\d+")


def test_each_table_of_figures_has_one_source() -> None:
    """One source per figure: a table row of measured figures is written in one file of docs/ or in the generated
    benchmarks/RESULTS.md. Another page shows it by including that file's section when the site is built
    (pymdownx.snippets, as docs/benchmarks.md includes RESULTS.md and the method pages include the tables of
    docs/results.md), or links to it; it does not paste it. Rows match on their figures (three or more decimals, in
    order), so a row pasted under another label or with other bold marks is caught; rows of one file may repeat
    figures (two methods can score the same)."""
    where: dict[tuple[str, ...], set[str]] = {}
    for path in [*sorted(DOCS.rglob("*.md")), ROOT / "benchmarks" / "RESULTS.md"]:
        for line in path.read_text().splitlines():
            figures = tuple(MEASURED_FIGURE.findall(line)) if line.startswith("|") else ()
            if len(figures) >= 3:
                where.setdefault(figures, set()).add(path.relative_to(ROOT).as_posix())
    pasted = {figures: sorted(files) for figures, files in where.items() if len(files) > 1}
    assert not pasted, f"table rows written in two files (include or link one instead): {pasted}"
    # The default demo's margin-heads table is on docs/results.md; the method pages include the full comparison.
    results = (DOCS / "results.md").read_text()
    assert "[start:margin-heads-demo]" in results and "[start:margin-heads-full]" in results
    assert '--8<-- "docs/results.md:margin-heads-full"' in (DOCS / "methods" / "arcface.md").read_text()


def test_loss_selection_page_links_every_method() -> None:
    text = (DOCS / "loss_selection.md").read_text()
    unlinked = [method.name for method in IMPLEMENTED if f"methods/{method.name}.md" not in text]
    assert not unlinked, f"docs/loss_selection.md does not link: {unlinked}"


def readme_section(title: str) -> str:
    assert f"\n## {title}\n" in README, f"the README has no section {title!r}"
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_readme_integration_snippets_are_the_tested_examples() -> None:
    """The README's four snippets under "Use it in your stack" are the examples of docs/integrations.md, which
    test_python_examples_run runs, each in a fresh namespace: they are complete (imports, stand-ins built from configs)
    and set the options a CPU user needs."""
    snippets = [code for _, code in python_blocks(readme_section("Use it in your stack"))]
    examples = [code for _, code in python_blocks((DOCS / "integrations.md").read_text())]
    assert len(snippets) == 4
    assert snippets == examples
    for snippet in snippets:
        assert re.search(r"^import |^from ", snippet, re.M)
        # Offline: the only folders loaded are those the snippet saved (the model is built from a config).
        loaded = re.findall(r'from_pretrained\((?:\w+, )?"([^"]+)"\)', snippet)
        saved = re.findall(r'save_pretrained\("([^"]+)"\)', snippet)
        assert set(loaded) <= set(saved), f"a snippet loads {set(loaded) - set(saved)}, which it did not save"
        if ".train()" in snippet:
            assert '"use_cpu": True' in snippet and '"bf16": False' in snippet, snippet[:200]


def test_readme_is_a_front_page() -> None:
    lines = README.splitlines()
    assert len(lines) <= 250, f"the README has {len(lines)} lines; results, methods and benchmarks live on the site"
    assert lines[0] == "# hf_margin"
    setup = python_blocks_of(readme_section("From a clone: the demo and the tests"), "bash")
    assert any(line.startswith("bash scripts/demo.sh ") for line in setup.splitlines())
    assert any(line.startswith("bash scripts/test.sh ") for line in setup.splitlines())
    install = python_blocks_of(readme_section("Install"), "bash")
    assert 'pip install "hf-margin[trl]"' in install
    pyproject = (ROOT / "pyproject.toml").read_text()
    extras = re.findall(
        r"^([\w-]+) = \[", pyproject.split("[project.optional-dependencies]\n", 1)[1].split("\n[", 1)[0], re.M
    )
    assert extras
    table = readme_section("Install")
    missing = [extra for extra in extras if f"\n| `{extra}` |" not in table]
    assert not missing, f"the README's extras table misses {missing}"
    for section in ("CLI", "Layout", "Citation", "Licence"):
        readme_section(section)
    assert "Apache-2.0" in readme_section("Licence")
    for folder in ("hf_margin/", "recipes/", "model_cards/", "benchmarks/", "docs/", "tests/"):
        assert f"`{folder}" in readme_section("Layout"), f"the Layout section does not explain {folder}"


def python_blocks_of(text: str, language: str) -> str:
    """The fenced ```<language> blocks of a markdown text, joined."""
    return "\n".join(re.findall(rf"^```{language}\n(.*?)^```", text, re.S | re.M))


def test_readme_links_work_on_a_package_index() -> None:
    """A package index page shows the README without the repository: every link is absolute, and each link into the
    docs site names a page that the site builds."""
    targets = re.findall(r"\]\(([^)\s]+)\)", README) + re.findall(r'(?:src|href)="([^"]+)"', README)
    relative = [target for target in targets if not re.match(r"https?://", target)]
    assert not relative, f"relative links in the README: {relative}"
    for target in targets:
        if target.startswith(DOCS_SITE):
            path = target.removeprefix(DOCS_SITE).split("#")[0].strip("/")
            assert not path or (DOCS / f"{path}.md").is_file() or (DOCS / path / "index.md").is_file(), (
                f"{target}: no docs/{path}.md"
            )
        elif target.startswith(REPOSITORY + "/blob/main/"):
            name = target.removeprefix(REPOSITORY + "/blob/main/")
            assert name in {"CHANGELOG.md", "LICENSE"} or (ROOT / name).exists(), target
    assert f"{REPOSITORY}/blob/main/CHANGELOG.md" in targets
    linked = {target.removeprefix(DOCS_SITE + "methods/").strip("/") for target in targets}
    unlinked = [method.name for method in IMPLEMENTED if method.name not in linked]
    assert not unlinked, f"the README's method table does not link: {unlinked}"


def test_readme_citation_matches_citation_cff() -> None:
    bibtex = python_blocks_of(readme_section("Citation"), "bibtex")
    assert "hf_margin: margin-based training objectives for the Hugging Face stack" in bibtex
    assert "2026" in bibtex and "0.1.0.dev0" in bibtex and "hf_margin developers" in bibtex
    cff = ROOT / "CITATION.cff"
    if cff.is_file():  # the title and version are the CITATION.cff's
        text = cff.read_text()
        title = re.search(r'^title: "?(.*?)"?$', text, re.M)
        version = re.search(r'^version: "?(.*?)"?$', text, re.M)
        assert title and title.group(1) in bibtex
        assert version and version.group(1) in bibtex
