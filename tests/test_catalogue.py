"""Walk the catalogue: every entry is well-formed; every implemented one imports, is tested, and is demoed or
benchmarked; the docs site's table is the generated one."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest

from hf_margin.catalogue import CATALOGUE, Kind, Method, Status, by_name, markdown_table
from hf_margin.demo import DEMOS

ROOT = Path(__file__).resolve().parents[1]
IMPLEMENTED = [m for m in CATALOGUE if m.status == "implemented"]

# The source papers named by the foundation issue, by arXiv id.
SOURCE_PAPERS = {
    "2412.07771",
    "2305.09062",
    "2206.02187",
    "2012.03173",
    "2104.10652",
    "2412.15832",
    "1904.06627",
    "2109.09416",
    "2405.14745",
    "2307.04047",
    "2304.07288",
    "1604.08859",
    "2010.02666",
    "2511.08322",
    "2112.14869",
    "2308.09878",
    "2310.00027",
    "2410.20320",
    "2302.02334",
    "2012.09740",
    "2202.12040",
    "2401.11081",
    "2511.19566",
    "2111.07047",
    "2102.03243",
    "2203.11593",
    "2410.13828",
    "2411.15210",
    "2506.20923",
    "2510.05342",
    "2506.07438",
    "2411.08937",
    "2202.02916",
    "1912.02178",
    "2503.04242",
    "2208.08661",
    "1801.07698",
    "1801.09414",
    "2204.00964",
}


def test_names_are_unique_and_findable() -> None:
    names = [m.name for m in CATALOGUE]
    assert len(names) == len(set(names))
    assert by_name("arcface").method == "ArcFace"
    with pytest.raises(KeyError, match="no catalogue entry named 'nope'"):
        by_name("nope")


def test_every_source_paper_has_an_entry() -> None:
    assert {m.arxiv for m in CATALOGUE} >= SOURCE_PAPERS


@pytest.mark.parametrize("method", CATALOGUE, ids=lambda m: m.name)
def test_entry_is_well_formed(method: Method) -> None:
    assert method.kind in get_args(Kind) and method.status in get_args(Status)
    assert method.arxiv is None or re.fullmatch(r"\d{4}\.\d{4,5}", method.arxiv)
    assert method.entry_point.startswith("hf_margin.") and method.title and method.issue
    if method.status == "out of scope":
        assert method.reason, "an out-of-scope entry must say why"


@pytest.mark.parametrize("method", IMPLEMENTED, ids=lambda m: m.name)
def test_implemented_entry_imports_is_tested_and_is_demoed_or_benchmarked(method: Method) -> None:
    method.load()
    attribute = method.entry_point.rpartition(".")[2]
    assert method.tests, "an implemented entry names its tests"
    for test_file in method.tests:
        assert (ROOT / test_file).is_file(), f"{test_file} does not exist"
    # The other files may test the functional twin (the same math under its function name).
    assert any(attribute in (ROOT / test_file).read_text() for test_file in method.tests), (
        f"none of {method.tests} mentions {attribute}"
    )
    assert method.demo or method.benchmark, "an implemented entry needs a demo or benchmark entry"
    if method.demo:
        assert method.demo in DEMOS
    if method.benchmark:
        assert (ROOT / method.benchmark).is_file()


def test_the_docs_method_table_is_generated_from_the_catalogue() -> None:
    """The one full catalogue table is the docs site's home page; the README links to it (tests/test_docs.py)."""
    text = (ROOT / "docs" / "index.md").read_text()
    match = re.search(r"<!-- catalogue:start -->\n(.*?)\n<!-- catalogue:end -->", text, re.S)
    assert match, "docs/index.md needs the catalogue markers"
    assert match.group(1) == markdown_table("methods/"), (
        "regenerate with `hf_margin.catalogue.markdown_table('methods/')`"
    )
