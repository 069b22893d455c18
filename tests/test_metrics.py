"""Metrics and statistics on hand-made decision tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from uim_sim.metrics.fairness import impact_ratios
from uim_sim.metrics.stats import cluster_permutation_p, fisher_p
from uim_sim.worlds.hiring.metrics import (
    exclusion_counts,
    exclusion_rates,
    homogenization,
    position_audit,
    position_counts,
    rates,
)


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


def screened(rows: list[tuple]) -> pd.DataFrame:
    """(step, decider, subject, race, decision) rows; everyone female."""
    frame = pd.DataFrame(rows, columns=["step", "decider", "subject", "race", "decision"])
    return frame.assign(gender="female", group=frame["race"] + "_female")


def test_systemic_exclusion_against_each_rounds_and_each_groups_own_rates():
    frame = screened([
        # round 1: s1 rejected by A and B; s2 taken by A; s3 by both; s4 by B; s5 applied once
        (1, "A", 1, "black", 0), (1, "B", 1, "black", 0),
        (1, "A", 2, "black", 1), (1, "B", 2, "black", 0),
        (1, "A", 3, "white", 1), (1, "B", 3, "white", 1),
        (1, "A", 4, "white", 0), (1, "B", 4, "white", 1),
        (1, "A", 5, "black", 0),
        # round 2: s1 taken by B, s3 rejected by both
        (2, "A", 1, "black", 0), (2, "B", 1, "black", 1),
        (2, "A", 3, "white", 0), (2, "B", 3, "white", 0),
    ])  # fmt: skip
    out = exclusion_rates(exclusion_counts(frame))
    observed, expected = out["systemic_exclusion"], out["systemic_exclusion_expected"]
    # everyone, each employer's rate in its round: round 1 rejects A 3/5, B 1/2 (0.3 for
    # each of s1-s4, s1 rejected everywhere); round 2 A 1, B 1/2 (s3 rejected everywhere)
    assert observed[""] == pytest.approx(2 / 6)
    assert expected[""] == pytest.approx((4 * 0.3 + 2 * 0.5) / 6)
    # Black applicants at Black applicants' rates: round 1 A rejects 2/3, B all (s1, s2:
    # 2/3 each, s1 rejected everywhere); round 2 B takes s1 (A 1 × B 0)
    assert observed["black"] == pytest.approx(1 / 3)
    assert expected["black"] == pytest.approx(4 / 9)
    assert out["systemic_exclusion_excess"]["black"] == pytest.approx(1 / 3 - 4 / 9)
    assert observed["black_female"] == observed["black"]
    # White applicants: round 1 B takes everyone (0); round 2 both reject s3 (1 × 1)
    assert observed["white"] == pytest.approx(1 / 3)
    assert expected["white"] == pytest.approx(1 / 3)
    # the pooled homogenisation of one round is the same computation
    first = homogenization(frame[frame["step"] == 1])
    assert (first["observed"], first["expected"]) == pytest.approx((0.25, 0.3))


def positions(cells: list[tuple[str, str, int, int]]) -> pd.DataFrame:
    """The applications each position received and selected, counted: one round's, per
    (position, race, selected, applied)."""
    return position_counts(screened([(1, position, f"{position}{race}{i}", race,
                                      int(i < selected))
                                     for position, race, selected, applied in cells
                                     for i in range(applied)]))  # fmt: skip


def test_a_position_failing_four_fifths_that_the_pooled_ratio_hides():
    # position A: Black 8 of 40 (0.2), White 20 of 40 (0.5): ratio 0.4, p < 0.05;
    # position B: Black 90 of 100, White 9 of 10 (both 0.9). Pooled: Black 98/140 = 0.70
    # is the best rate, White 29/50 = 0.58 (ratio 0.83 passes): A's failure is hidden
    out = position_audit(positions([("A", "black", 8, 40), ("A", "white", 20, 40),
                                    ("B", "black", 90, 100), ("B", "white", 9, 10)]))  # fmt: skip
    assert out["pooled_impact_ratio"]["black"] == 1.0
    assert out["pooled_impact_ratio"]["white"] == pytest.approx(0.58 / 0.70)
    assert out["position_impact_ratio_min"]["black"] == pytest.approx(0.4)
    assert out["positions_failing"] == {"black": 1.0, "white": 0.0, "female": 0.0,
                                        "black_female": 1.0, "white_female": 0.0}  # fmt: skip
    assert fisher_p(8, 40, 20, 40) < 0.05
    assert out["positions_failing_significant"]["black"] == 1.0
    assert out["positions_hidden"]["black"] == 1.0
    assert out["adverse_share"]["black"] == pytest.approx(40 / 140)
    assert out["adverse_share"]["white"] == 0.0
    # the same gap on 10 applications each: four fifths fails, Fisher's test does not,
    # and the pooled ratio (position A alone) fails too: nothing hidden
    assert fisher_p(2, 10, 5, 10) > 0.05
    few = position_audit(positions([("A", "black", 2, 10), ("A", "white", 5, 10)]))
    assert few["positions_failing"]["black"] == 1.0
    assert few["positions_failing_significant"]["black"] == 0.0
    assert few["positions_hidden"]["black"] == 0.0
