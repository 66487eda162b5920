"""A griffe extension for the API reference: names a package exports lazily (listed in ``__all__``, imported by a
module-level ``__getattr__`` on first use, so that ``import hf_margin`` needs no optional extra) are aliased to where
they are defined, so that ``::: hf_margin.trainers`` documents ``MADPOTrainer`` like the eagerly imported names.

The defining module is found by searching the package's submodules, so the reference pages name packages only and
survive modules moving inside a package.

It also fixes one shadowing case: ``from hf_margin.metrics.opis import opis`` makes the package attribute ``opis`` the
function at run time, while a static reading sees the submodule of that name.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import griffe


def _modules(module: griffe.Module) -> Iterator[griffe.Module]:
    yield module
    for submodule in module.modules.values():
        if not submodule.is_alias:
            yield from _modules(submodule)


def _defined_in(package: griffe.Module, name: str) -> griffe.Object | None:
    for module in _modules(package):
        member = module.members.get(name)
        if member is not None and not member.is_alias and not member.is_module:
            return member
    return None


class LazyExports(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for module in _modules(pkg):
            for exported in module.exports or ():
                name = exported if isinstance(exported, str) else getattr(exported, "name", str(exported))
                member = module.members.get(name)
                if member is not None and not (member.is_module and name in member.members):
                    continue
                if member is not None:  # the submodule is shadowed by its same-named export
                    shadowing = member.members[name]
                    module.del_member(name)
                    module.set_member(name, griffe.Alias(name, shadowing, parent=module))
                    continue
                target = _defined_in(module, name)
                if target is not None:
                    module.set_member(name, griffe.Alias(name, target, parent=module))
