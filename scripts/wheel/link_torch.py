"""Make torch (and what it needs at run time) of this interpreter importable in another virtual environment.

    python link_torch.py LINK_DIR TARGET_VENV

Links torch's distribution and its requirements, recursively, into LINK_DIR and adds LINK_DIR to TARGET_VENV's
path with a .pth file: the new environment uses the torch already installed (a multi-GB CUDA build, or the
CPU build from disk) instead of downloading one, and pip there sees torch as installed.
"""

from __future__ import annotations

import importlib.metadata as metadata
import re
import sys
import sysconfig
from pathlib import Path

NAME = re.compile(r"^[A-Za-z0-9._-]+")


def requirement_closure(root: str) -> list[metadata.Distribution]:
    seen: dict[str, metadata.Distribution] = {}
    pending = [root]
    while pending:
        name = metadata.Distribution.from_name(pending.pop()).metadata["Name"]
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        seen[key] = metadata.distribution(name)
        for requirement in seen[key].requires or []:
            if "extra ==" in requirement:
                continue
            match = NAME.match(requirement)
            if match:
                try:
                    metadata.distribution(match.group(0))
                except metadata.PackageNotFoundError:  # an optional or platform-only requirement
                    continue
                pending.append(match.group(0))
    return list(seen.values())


def top_level_entries(distribution: metadata.Distribution) -> set[str]:
    """The first path components of the distribution's files (packages, modules, its .dist-info)."""
    return {Path(str(file)).parts[0] for file in distribution.files or [] if not str(file).startswith("..")}


def main(link_dir: Path, venv: Path) -> None:
    link_dir.mkdir(parents=True, exist_ok=True)
    for distribution in requirement_closure("torch"):
        base = Path(str(distribution.locate_file("")))
        for entry in top_level_entries(distribution):
            if entry.endswith(".pth") or entry == "__pycache__" or not (base / entry).exists():
                continue
            target = link_dir / entry
            if not target.exists():
                target.symlink_to(base / entry)
    purelib = sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)})
    (Path(purelib) / "hf_margin_reused_torch.pth").write_text(f"{link_dir}\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
