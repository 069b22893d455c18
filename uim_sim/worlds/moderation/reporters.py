"""What the moderation world reports each step (declared Mesa DataCollector reporters).

Participation is the expected number of posts per user and step (the posting
probability, 0 once a user has left): the state that chilling and exposure move.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from uim_sim.metrics.moderation import silencing
from uim_sim.worlds.moderation.templates import GROUPS

if TYPE_CHECKING:
    from uim_sim.worlds.moderation.model import ModerationWorld


def _group_means(frame: pd.DataFrame, column: str) -> dict[str, float]:
    out = frame.groupby("group")[column].mean().astype(float).to_dict()
    out[""] = float(frame[column].mean()) if len(frame) else float("nan")
    return out


def _posts_per_user(m: ModerationWorld) -> dict[str, float]:
    """Posts this step per user of each group (users who left count as silent)."""
    posts = m.step_decisions()
    sizes = m.population()["group"].value_counts()
    counts = posts["group"].value_counts() if len(posts) else pd.Series(dtype=float)
    out = {g: float(counts.get(g, 0)) / n for g, n in sizes.items()}
    out[""] = len(posts) / max(1, int(sizes.sum()))
    return out


def _participation_ratio(m: ModerationWorld) -> float:
    """Mean participation of the history's target groups over that of the others."""
    rates = _group_means(m.population(), "participation")
    targets = [g for g in GROUPS if g in m.params.history_targets]
    others = [g for g in GROUPS if g not in m.params.history_targets]
    mine = np.mean([rates.get(g, np.nan) for g in targets]) if targets else np.nan
    rest = np.mean([rates.get(g, np.nan) for g in others])
    return float(mine / rest) if rest > 0 else float("nan")


def _toxic_left_up(m: ModerationWorld) -> float:
    toxic = m.step_decisions().query("truth == 1")
    return float(1 - toxic["decision"].mean()) if len(toxic) else float("nan")


WORLD_REPORTERS = {
    "step": lambda m: m.round,
    "participation": lambda m: _group_means(m.population(), "participation"),
    "participation_ratio": _participation_ratio,
    "posts_per_user": _posts_per_user,
    "active_share": lambda m: _group_means(m.population(), "active"),
    "silencing": lambda m: silencing(m.step_decisions()),
    "toxic_left_up": _toxic_left_up,
    "toxicity_exposure": lambda m: _group_means(m.population().query("active"), "toxic_seen"),
    "*appeals": lambda m: dict(m.appeal_counts),
    "*bias": lambda m: m.bias() if m.finished else {},
}
REFERENCE_REPORTERS = {"step": lambda m: m.round, "*bias": lambda m: m.bias()}
