"""Worlds: one folder per world, each complete in itself (Mesa style).

The registry is one line per world: the name a scenario's ``world:`` uses and the
package that holds it. A world package exposes ``WORLD``, a `WorldInfo` naming its
Mesa model class(es), their parameters and its report section; nothing outside
the package imports it, so adding a world is adding a folder and one line here.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from uim_sim.worlds.base import WorldInfo

WORLDS = {
    "hiring": "uim_sim.worlds.hiring",
    "moderation": "uim_sim.worlds.moderation",
    "spread": "uim_sim.worlds.spread",
}


def world_info(name: str) -> WorldInfo:
    """The `WorldInfo` of a registered world (imports its package on first use)."""
    return import_module(WORLDS[name]).WORLD
