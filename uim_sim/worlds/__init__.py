"""Worlds: one folder per world, each complete in itself (Mesa style).

The registry is one line per world: the name a scenario's ``world:`` uses and the
package that holds it. A world package exposes ``WORLD``, a `WorldInfo` naming its
Mesa model class(es), their parameters and its report section; nothing outside
the package imports it, so adding a world is adding a folder and one line here.

A world from another package (a researcher's lending or triage world) needs no line
here: its package declares it under the entry point group ``uim_sim.worlds``
(``lending = "my_worlds.lending"``, or ``"my_worlds:LENDING"`` for another attribute
than ``WORLD``), and `check_world` checks it keeps the rules the runner, the report
and the page rely on (docs/design.md, "A world from another package").
"""

from __future__ import annotations

import warnings
from importlib import import_module
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from uim_sim.worlds.base import WorldInfo

ENTRY_POINTS = "uim_sim.worlds"

BUILT_IN = {
    "hiring": "uim_sim.worlds.hiring",
    "moderation": "uim_sim.worlds.moderation",
    "spread": "uim_sim.worlds.spread",
}


def _declared() -> dict[str, str]:
    """Worlds other installed packages declare (``uim_sim.worlds`` entry points)."""
    found = {}
    for point in sorted(entry_points(group=ENTRY_POINTS), key=lambda p: p.name):
        if point.name in BUILT_IN or point.name in found:
            warnings.warn(f"world {point.name!r} of {point.value} is ignored: the name is "
                          "taken", stacklevel=2)  # fmt: skip
            continue
        found[point.name] = point.value
    return found


WORLDS = {**BUILT_IN, **_declared()}


def world_info(name: str) -> WorldInfo:
    """The `WorldInfo` of a registered world (imports its package on first use)."""
    module, _, attribute = WORLDS[name].partition(":")
    found: Any = import_module(module)
    for part in (attribute or "WORLD").split("."):
        found = getattr(found, part)
    return found


def __getattr__(name: str) -> Any:  # check_world without importing the worlds' base here
    if name in ("check_world", "world_problems", "WorldCheckError"):
        from uim_sim.worlds import check

        return getattr(check, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
