"""Every recipe's configs parse with its script's setup (as `hf-margin train` would run them), every demo entry has a
recipe, and recipes/README.md lists every recipe."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from hf_margin.demo import DEMOS, parse_recipe_arguments
from hf_margin.recipes_cli import find_script, known_recipes, recipes_root

ROOT = recipes_root()
CONFIGS = [(name, config) for name in known_recipes(ROOT) for config in sorted((ROOT / name).glob("*.yaml"))]


def load_script(path: Path) -> ModuleType:
    """The recipe script as a module (its `if __name__ == "__main__"` block does not run)."""
    spec = importlib.util.spec_from_file_location(f"recipe_{path.parent.name}_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("recipe", "config"), CONFIGS, ids=[f"{n}/{c.name}" for n, c in CONFIGS])
def test_config_parses_with_the_script_setup(recipe: str, config: Path) -> None:
    script = load_script(find_script(ROOT / recipe, config))
    setups = [
        value for name, value in vars(script).items() if name.endswith("Setup") and dataclasses.is_dataclass(value)
    ]
    assert len(setups) == 1, f"{script.__file__} should import exactly one *Setup dataclass"
    setup, paths = parse_recipe_arguments(setups[0], "unused", [str(config)])
    assert isinstance(setup, setups[0])
    assert paths.out_dir.startswith("hf_margin_out/")


def test_every_demo_entry_has_a_recipe() -> None:
    missing = sorted(set(DEMOS) - set(known_recipes(ROOT)))
    assert not missing, f"demo entries without a recipes/<entry>/ folder: {missing}"


def test_recipes_readme_lists_every_recipe() -> None:
    readme = (ROOT / "README.md").read_text()
    unlisted = [name for name in known_recipes(ROOT) if f"\n| {name} |" not in readme]
    assert not unlisted, f"recipes/README.md does not list: {unlisted}"
