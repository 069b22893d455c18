"""Metrics and statistics on hand-made decision tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from uim_sim.metrics.fairness import impact_ratios
from uim_sim.metrics.stats import cluster_permutation_p, fisher_p
from uim_sim.worlds.hiring.metrics import homogenization, rates


def table(rate_black: float, rate_white: float, names: int = 12, per_name: int = 20, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for race, rate in (("black", rate_black), ("white", rate_white)):
        for n in range(names):
            gender = "female" if n % 2 else "male"
            for _ in range(per_name):
                rows.append(
                    {
                        "first_name": f"{race}{n}",
                        "race": race,
                        "gender": gender,
                        "group": f"{race}_{gender}",
                        "decision": int(rng.random() < rate),
                        "score": rng.random(),
                        "truth": 1.0,
                    }
                )
    return pd.DataFrame(rows)


def test_impact_ratio_is_rate_over_best_group():
    frame = table(0.2, 0.5)
    ratios = impact_ratios(rates(frame))
    by_race = rates(frame)["race"]
    assert np.isclose(ratios["black"], by_race["black"] / by_race["white"])
    assert ratios["white"] == 1.0


def test_name_level_permutation_separates_signal_from_noise():
    rng = np.random.default_rng(1)
    args = ("decision", "first_name", "race", "black", "white", 999, rng, "gender")
    assert cluster_permutation_p(table(0.2, 0.6), *args) < 0.01
    assert cluster_permutation_p(table(0.4, 0.4), *args) > 0.05


def test_name_level_p_is_more_cautious_than_row_level_with_name_offsets():
    """With strong per-name offsets, rows are not independent: the name-level test
    must not call a gap significant that a per-row test does."""
    rng = np.random.default_rng(3)
    rows = []
    for race in ("black", "white"):
        for n in range(4):
            offset = rng.choice([0.1, 0.9])
            rows += [
                {"first_name": f"{race}{n}", "race": race, "decision": int(rng.random() < offset)}
                for _ in range(100)
            ]
    frame = pd.DataFrame(rows)
    counts = frame.groupby("race")["decision"].agg(["sum", "count"])
    row_p = fisher_p(*counts.loc["black"], *counts.loc["white"])
    name_p = cluster_permutation_p(
        frame, "decision", "first_name", "race", "black", "white", 999, np.random.default_rng(0)
    )
    assert name_p > row_p


def test_homogenization_matches_independence_when_decisions_are_independent():
    rng = np.random.default_rng(0)
    n, employers = 4000, 3
    rows = [
        {"subject": s, "decider": e, "decision": int(rng.random() < 0.5)}
        for s in range(n)
        for e in range(employers)
    ]
    result = homogenization(pd.DataFrame(rows))
    assert abs(result["observed"] - 0.125) < 0.02
    assert abs(result["ratio"] - 1) < 0.15
    shared = pd.DataFrame(
        [{"subject": s, "decider": e, "decision": s % 2} for s in range(n) for e in range(3)]
    )  # one shared verdict per applicant: everyone rejected by one is rejected by all
    assert homogenization(shared)["ratio"] > 3.5
