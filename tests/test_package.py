"""`import hf_margin` is cheap, its public names load on first use, and the integrations register themselves with
transformers and peft whichever is imported first. Each check runs in a fresh interpreter: the test session has
imported everything already."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources

import pytest

import hf_margin


def fresh(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def test_import_hf_margin_imports_neither_torch_nor_transformers() -> None:
    loaded = fresh(
        "import sys, hf_margin; print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))"
    )
    assert loaded == "[]"


def test_public_names_are_the_lazy_ones_and_resolve() -> None:
    assert set(hf_margin.__all__) - {"__version__"} == set(hf_margin._MODULE_OF)
    assert dir(hf_margin) == hf_margin.__all__
    for name in hf_margin._MODULE_OF:
        assert getattr(hf_margin, name).__name__ == name
    with pytest.raises(AttributeError, match="no attribute 'ArcFace'"):
        _ = hf_margin.ArcFace  # type: ignore[attr-defined]


@pytest.mark.parametrize("hf_margin_first", [True, False], ids=["hf_margin-first", "host-first"])
def test_models_and_petal_register_with_their_hosts_in_either_import_order(hf_margin_first: bool) -> None:
    imports = ["import hf_margin", "import peft, transformers"]
    code = "\n".join(
        [
            *(imports if hf_margin_first else imports[::-1]),
            "from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING",
            "from transformers import AutoConfig",
            "names = [type(AutoConfig.for_model(kind)).__name__ for kind in ('transicd', 'margin_head')]",
            "print(*names)",
            "print(PEFT_TYPE_TO_CONFIG_MAPPING['PETAL'].__name__)",
        ]
    )
    assert fresh(code).splitlines() == ["TransICDConfig MarginHeadConfig", "PetalConfig"]


def test_a_broken_integration_warns_instead_of_breaking_the_hosts_import() -> None:
    code = (
        "import sys, warnings\n"
        "sys.modules['hf_margin.tuners.petal'] = None  # what an incompatible peft looks like to the import\n"
        "import hf_margin\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import peft\n"
        "print([str(w.message) for w in caught if 'hf_margin could not register' in str(w.message)])\n"
    )
    assert "could not register hf_margin.tuners.petal with peft" in fresh(code)


@pytest.mark.parametrize("package", ["hf_margin.model_card_templates", "hf_margin.recipes"])
def test_package_data_is_found_through_importlib_resources(package: str) -> None:
    root = resources.files(package)
    names = [entry.name for entry in root.iterdir()]
    assert ("margin_head_classifier.md" in names) if package.endswith("templates") else ("accelerate" in names)
