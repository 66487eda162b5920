"""Every recipe's configs parse with its script's setup (as `hf-margin train` would run them), every demo entry has a
recipe, and recipes/README.md lists every recipe."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Literal

import pytest

from hf_margin.demo import DEMOS, check_output_folder, parse_recipe_arguments, recipe_main
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


@dataclasses.dataclass
class _Setup:
    steps: int = 3
    learning_rate: float = 1e-2
    fast: bool = False
    methods: tuple[str, ...] = ("CE",)
    size: tuple[int, int] = (2, 3)
    mode: Literal["text", "images"] = "text"
    limit: int | None = None
    runs: tuple[tuple[int, float], ...] = ((1, 0.5),)


def test_words_are_read_as_the_fields_types() -> None:
    argv = ["--learning_rate", "1e-3", "--steps", "5", "--fast", "--methods", "CE", "yes", "--size", "4", "5"]
    argv += ["--mode", "images", "--limit", "null", "--runs", "[2, 0.1]", "[3, 1e-2]", "--out_dir", "010"]
    setup, paths = parse_recipe_arguments(_Setup, "out", argv)
    assert setup == _Setup(5, 1e-3, True, ("CE", "yes"), (4, 5), "images", None, ((2, 0.1), (3, 0.01)))
    assert isinstance(setup.learning_rate, float) and paths.out_dir == "010" and paths.data_dir is None
    assert parse_recipe_arguments(_Setup, "out", ["--fast", "false", "--limit", "7"])[0] == _Setup(fast=False, limit=7)


def test_config_values_are_read_as_the_fields_types_and_overridden(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    # YAML 1.1 reads 1e-3 as a string; the field is a float
    config.write_text("learning_rate: 1e-3\nmethods: [CE, focal]\nsize: [4, 5]\nsteps: 2\nout_dir: 7\n")
    setup, paths = parse_recipe_arguments(_Setup, "out", [str(config), "--steps", "9"])
    assert setup == _Setup(steps=9, learning_rate=1e-3, methods=("CE", "focal"), size=(4, 5))
    assert paths.out_dir == "7"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--steps"], "--steps needs a value (int)"),
        (["--steps", "two"], "steps must be an int, got 'two'"),
        (["--steps", "1", "2"], "--steps takes one value, got 2"),
        (["--learning_rate", "fast"], "learning_rate must be a finite float, got 'fast'"),
        (["--learning_rate", "nan"], "learning_rate must be a finite float, got 'nan'"),
        (["--fast", "maybe"], "fast must be a bool (true/false), got 'maybe'"),
        (["--size", "1"], "size must have 2 values, got 1"),
        (["--mode", "audio"], "mode must be one of 'text', 'images'; got 'audio'"),
        (["--max_steps", "5", "--not_a_field", "3"], "unknown field(s) of _Setup: --max_steps (did you mean --steps?)"),
        (["--not_a_field", "3"], "--not_a_field;"),
        (["--steps", "1", "--steps", "2"], "--steps given twice"),
        (["steps", "1"], "overrides must start with --field, got 'steps'"),
    ],
)
def test_bad_words_are_errors_naming_the_field(argv: list[str], message: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_recipe_arguments(_Setup, "out", argv)
    assert message in str(error.value)


def test_bad_config_values_are_errors_naming_the_file_and_field(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("steps: 2.5\n")
    with pytest.raises(ValueError, match=r"config.yaml: steps must be an int, got 2.5"):
        parse_recipe_arguments(_Setup, "out", [str(config)])
    config.write_text("max_steps: 2\n")
    with pytest.raises(ValueError, match=r"config.yaml: unknown field\(s\) of _Setup: max_steps \(did you mean steps"):
        parse_recipe_arguments(_Setup, "out", [str(config)])
    config.write_text("- 1\n")
    with pytest.raises(ValueError, match=r"config.yaml must be a mapping of field: value"):
        parse_recipe_arguments(_Setup, "out", [str(config)])


def test_output_folder_is_checked_before_any_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    calls: list[object] = []
    monkeypatch.setattr(sys, "argv", ["script.py", "--out_dir", str(blocker / "out")])
    with pytest.raises(SystemExit, match=r"out_dir .*a_file/out cannot be created: .*a_file is not a folder"):
        recipe_main(_Setup, lambda context, setup: calls.append(setup) or [], "out")
    assert calls == []
    with pytest.raises(ValueError, match=r"a_file is not a folder"):
        check_output_folder(blocker / "deeper" / "out")
    check_output_folder(tmp_path / "new" / "out")  # creatable
    assert not (tmp_path / "new").exists()  # and not created by the check


def test_recipe_help_lists_fields_types_and_defaults(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["script.py", "--help"])
    recipe_main(_Setup, lambda context, setup: [], "somewhere")
    out = capsys.readouterr().out
    assert "--steps (int, default 3)" in out and "--out_dir (str, default 'somewhere')" in out
    assert "--mode (Literal['text', 'images'], default 'text')" in out
