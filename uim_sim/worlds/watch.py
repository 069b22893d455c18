"""What a world shows to someone watching it run (`uim-sim page`): the metrics worth
plotting as they are collected, and a view of the world itself at the current step.
Worlds declare plain data; the page draws it (worlds never import the page)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd


@dataclass(frozen=True)
class Plot:
    """``metric`` per step for ``groups`` (None: every group the world collects), with
    an optional reference ``line`` (e.g. the four-fifths rule at 0.8)."""

    metric: str
    title: str
    groups: tuple[str, ...] | None = None
    line: float | None = None
    line_label: str = ""


@dataclass(frozen=True)
class View:
    """The world at this step. ``bars``: ``frame`` has columns group, state, count (a
    stacked bar per group). ``network``: ``frame`` has one row per drawn node (x, y,
    state, group) and ``edges`` one row per drawn edge (x, y, x2, y2)."""

    title: str
    kind: Literal["bars", "network"]
    frame: pd.DataFrame
    edges: pd.DataFrame | None = None
    note: str = ""


def counts(groups, states, title: str, note: str = "") -> View:
    """A bars view from one group and one state label per member."""
    frame = pd.DataFrame({"group": list(groups), "state": list(states)})
    table = frame.value_counts(["group", "state"]).rename("count").reset_index()
    return View(title, "bars", table.sort_values(["group", "state"], ignore_index=True), note=note)


FOUR_FIFTHS = 0.8
