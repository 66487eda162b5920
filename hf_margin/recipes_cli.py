"""`hf-margin train RECIPE`: run a recipe of recipes/ directly or through `accelerate launch`.

A recipe is a folder recipes/<RECIPE>/ holding one script (driven by `hf_margin.demo.recipe_main`) and its YAML
configs (``config.yaml`` by default); a group's recipes are named ``<group>/<name>`` (``evidence/margin_heads_icd``
runs recipes/evidence/margin_heads_icd/). Without ``--accelerate-config`` the command is ``python <script> <config>``;
with one it is ``accelerate launch --config_file <cfg> <script> <config>``, where the accelerate config is a name
from recipes/accelerate/ (``cpu``, ``cpu_ddp``, ``cpu_fsdp``, ``single_gpu``, ``multi_gpu``, ``fsdp``,
``deepspeed_zero2``, ``deepspeed_zero3``) or a path. accelerate runs FSDP only on accelerators: with an FSDP config
on a machine without a GPU, the processes train as DDP (accelerate sets ``MULTI_CPU`` and drops the FSDP plugin),
which the command says before it runs. Overrides (``--field value ...`` after ``--``) follow the config
(``script config.yaml --field value ...``; `hf_margin.demo.recipe_main` reads the config, then the overrides over
it). Before anything runs (with ``--dry-run`` too), the config and overrides are read against the recipe's setup
dataclass (found from the script's ``recipe_main(Setup, ...)`` call): a value of the wrong type, a choice not
offered or an unknown field is an error naming it, and an output folder that cannot be written is an error.

recipes/ ships inside the wheel as the package data `hf_margin.recipes` (found with `importlib.resources`), or is
read from ``$HF_MARGIN_RECIPES``. Relative paths inside a config (``data_dir``, ``out_dir``) resolve against the
current directory, as when the script is run by hand: ``out_dir`` lands there, and ``data_dir`` (the ORL faces) is
given with ``-- --data_dir DIR`` when the current directory is not a clone's root.

Example::

    hf-margin train margin_heads --dry-run -- --epochs 1 --seeds 1
    hf-margin train madpo --accelerate-config multi_gpu
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

RECIPES_ENV = "HF_MARGIN_RECIPES"
_SCRIPT_IN_COMMENT = re.compile(r"^#.*\bpython\s+recipes/([\w.-]+/[\w.-]+\.py)\b")


def recipes_root() -> Path:
    """The recipes: ``$HF_MARGIN_RECIPES``, else the package data `hf_margin.recipes` (the repository's recipes/,
    shipped in the wheel)."""
    configured = os.environ.get(RECIPES_ENV)
    root = Path(configured) if configured else Path(str(resources.files("hf_margin.recipes")))
    if not root.is_dir():
        source = f"${RECIPES_ENV}" if configured else "the installed package"
        raise FileNotFoundError(f"recipes folder not found at {root} (from {source})")
    return root


def known_recipes(root: Path) -> list[str]:
    """Names of the folders under `root` holding at least one YAML config (recipes/accelerate/ excluded), and of a
    group's recipes as ``group/name`` (a folder without configs whose subfolders have them, as recipes/evidence/)."""
    names = []
    for folder in root.iterdir():
        if not folder.is_dir() or folder.name == "accelerate":
            continue
        if any(folder.glob("*.yaml")):
            names.append(folder.name)
        else:
            names += [
                f"{folder.name}/{sub.name}" for sub in folder.iterdir() if sub.is_dir() and any(sub.glob("*.yaml"))
            ]
    return sorted(names)


def resolve_config(recipe_dir: Path, config: str | None) -> Path:
    """The recipe's config: `config` as a path or a file name in `recipe_dir`, else ``config.yaml`` there."""
    available = ", ".join(sorted(path.name for path in recipe_dir.glob("*.yaml")))
    if config is None:
        default = recipe_dir / "config.yaml"
        if not default.is_file():
            raise FileNotFoundError(f"recipe {recipe_dir.name} has no config.yaml; pass --config, one of: {available}")
        return default
    for candidate in (Path(config), recipe_dir / config):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"--config {config} is neither a file nor a config of recipe {recipe_dir.name}: {available}"
    )


def find_script(recipe_dir: Path, config: Path) -> Path:
    """The script a ``python recipes/<x>/<y>.py`` comment of the config names, else the one .py file in `recipe_dir`.

    A recipe with several scripts (or with its script in another recipe's folder) names it in each config.
    """
    for line in config.read_text(encoding="utf-8").splitlines():
        match = _SCRIPT_IN_COMMENT.match(line)
        if match:
            return recipe_dir.parent / match.group(1)
    scripts = sorted(recipe_dir.glob("*.py"))
    if len(scripts) == 1:
        return scripts[0]
    raise FileNotFoundError(
        f"recipe {recipe_dir.name} needs exactly one .py script in {recipe_dir} (found {len(scripts)}), or a "
        f"'# python recipes/<recipe>/<script>.py' comment in {config.name}"
    )


def resolve_accelerate_config(name_or_path: str, root: Path) -> Path:
    """An accelerate config: a name from recipes/accelerate/ (without .yaml) or a path to a YAML/JSON file."""
    for candidate in (Path(name_or_path), root / "accelerate" / f"{name_or_path}.yaml"):
        if candidate.is_file():
            return candidate
    names = ", ".join(sorted(path.stem for path in (root / "accelerate").glob("*.yaml")))
    raise FileNotFoundError(f"--accelerate-config {name_or_path} is neither a file nor one of: {names}")


def recipe_setup(script: Path) -> tuple[type, str]:
    """The setup dataclass and default ``out_dir`` of a recipe script, read from its
    ``recipe_main(Setup, run, "out_dir")`` call and its ``from <module> import Setup`` (the script is parsed, not
    run; only the module defining the setup is imported)."""
    import ast
    import importlib

    tree = ast.parse(script.read_text(encoding="utf-8"), filename=str(script))
    modules = {
        alias.asname or alias.name: node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
        for alias in node.names
    }
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and _called_name(node.func) == "recipe_main" and len(node.args) >= 3):
            continue
        setup, out_dir = node.args[0], node.args[2]
        if isinstance(setup, ast.Name) and setup.id in modules and isinstance(out_dir, ast.Constant):
            return getattr(importlib.import_module(modules[setup.id]), setup.id), str(out_dir.value)
    raise ValueError(
        f'{script} should call recipe_main(Setup, run, "out_dir") with a Setup imported by `from <module> import '
        "Setup`, so that its overrides can be checked"
    )


def _called_name(function: Any) -> str | None:
    import ast

    if isinstance(function, ast.Name):
        return function.id
    return function.attr if isinstance(function, ast.Attribute) else None


def _accelerate_launch() -> list[str]:
    executable = Path(sys.executable).with_name("accelerate")
    if executable.is_file():
        return [str(executable), "launch"]
    return [sys.executable, "-m", "accelerate.commands.launch"]


def fsdp_on_cpu_note(accelerate_config: Path) -> str | None:
    """A note when `accelerate_config` asks for FSDP and no GPU is visible: accelerate (1.x) then trains the
    processes as plain DDP on CPU, without sharding (its FSDP plugin is enabled for accelerator back-ends only)."""
    import torch
    import yaml

    settings = yaml.safe_load(accelerate_config.read_text(encoding="utf-8")) or {}
    if settings.get("distributed_type") != "FSDP" or torch.cuda.is_available():
        return None
    return (
        f"note: {accelerate_config.name} asks for FSDP, but no GPU is visible: accelerate runs FSDP on accelerators "
        f"only, so the {settings.get('num_processes', '?')} CPU processes train as DDP: nothing is sharded and "
        "each process holds the whole model (see recipes/README.md, Multi-process)"
    )


def build_command(
    recipe: str, *, config: str | None = None, accelerate_config: str | None = None, overrides: list[str] | None = None
) -> list[str]:
    """The command that runs `recipe`: ``python`` or ``accelerate launch``, its script, the config, the overrides.

    The config and the overrides are first read as the script will read them (`hf_margin.demo.parse_recipe_arguments`:
    types, choices, unknown fields) and the output folder is checked, so that mistakes fail before any work.
    """
    root = recipes_root()
    known = known_recipes(root)
    if recipe not in known:
        raise ValueError(f"unknown recipe {recipe}; known: {', '.join(known)}")
    recipe_dir = root / recipe
    config_file = resolve_config(recipe_dir, config)
    script = find_script(recipe_dir, config_file)
    arguments = [str(config_file), *(overrides or [])]
    # the settings the script will read, read the same way here, so that a bad value or folder fails now
    from hf_margin.demo import check_output_folder, parse_recipe_arguments

    setup_type, default_out_dir = recipe_setup(script)
    _, paths = parse_recipe_arguments(setup_type, default_out_dir, arguments)
    check_output_folder(Path(paths.out_dir))
    if accelerate_config is None:
        return [sys.executable, str(script), *arguments]
    launcher = [*_accelerate_launch(), "--config_file", str(resolve_accelerate_config(accelerate_config, root))]
    return [*launcher, str(script), *arguments]


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--accelerate-config",
        metavar="NAME_OR_PATH",
        help="run through `accelerate launch` with this config: a "
        "name in recipes/accelerate/ (cpu, cpu_ddp, cpu_fsdp, single_gpu, multi_gpu, fsdp, deepspeed_zero2, "
        "deepspeed_zero3) or a file",
    )
    parser.add_argument("--config", metavar="FILE", help="the recipe's YAML config (default: its config.yaml)")
    parser.add_argument("--dry-run", action="store_true", help="print the command without running it")


def _train(args: argparse.Namespace) -> None:
    # argparse cannot parse options after a positional followed by free arguments (and drops a leading `--`), so
    # the words after RECIPE are split here: this command's options before `--`, everything else an override.
    rest: list[str] = args.rest
    split = rest.index("--") if "--" in rest else len(rest)
    options = argparse.ArgumentParser(prog=f"hf-margin train {args.recipe}", allow_abbrev=False)
    _add_options(options)
    _, unknown = options.parse_known_args(rest[:split], namespace=args)
    overrides = [*unknown, *rest[split + 1 :]]
    command = build_command(
        args.recipe, config=args.config, accelerate_config=args.accelerate_config, overrides=overrides
    )
    print(shlex.join(command), flush=True)
    if args.accelerate_config is not None:
        note = fsdp_on_cpu_note(resolve_accelerate_config(args.accelerate_config, recipes_root()))
        if note:
            print(note, file=sys.stderr, flush=True)
    if args.dry_run:
        return
    status = subprocess.run(command, check=False).returncode
    if status != 0:
        raise RuntimeError(f"recipe {args.recipe} exited with status {status}")


def add_train_parser(commands: Any) -> None:
    """Register ``hf-margin train`` on the `hf-margin` parser's subcommands (`commands` from add_subparsers)."""
    train = commands.add_parser(
        "train",
        help="run a recipe of recipes/ (with `accelerate launch` given --accelerate-config)",
        usage="hf-margin train [options] RECIPE [options] [-- overrides ...]",
    )
    train.add_argument("recipe", metavar="RECIPE", help="a folder of recipes/ (an unknown name lists them)")
    _add_options(train)
    train.add_argument("rest", nargs=argparse.REMAINDER, help="options, then `--` and the recipe's --field value pairs")
    train.set_defaults(handler=_train)
