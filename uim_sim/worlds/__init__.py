"""Worlds: one sub-package per world, Mesa style (agents.py + model.py).

Every world is a ``mesa.Model`` constructed as
``World(params, cards, stages, seed, null_draw, statistics)`` with ``run_for()``,
``decision_table()`` and ``metrics()`` (tidy: step, metric, group, value), and
names in ``null_metrics`` the metrics its null reference summarises.
"""

from __future__ import annotations

from importlib import import_module

WORLDS = {
    "hiring": "uim_sim.worlds.hiring:HiringWorld",
    "moderation": "uim_sim.worlds.moderation:ModerationWorld",
}


def world_class(name: str) -> type:
    module, _, cls = WORLDS[name].partition(":")
    return getattr(import_module(module), cls)
