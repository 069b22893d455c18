"""Intervals that respect their range (issue 27): with few seeds a rate's, share's or
ratio's interval stays inside its range (a t-interval on the logit or log scale), the
report says when seeds are few, and the headline never names as the worst subgroup a
group too small to name without saying so."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from uim_sim.metrics.stats import POSITIVE, UNIT, mean_interval, metric_range
from uim_sim.report import headline
from uim_sim.report.load import summarise
from uim_sim.worlds import world_info
from uim_sim.worlds.section import Audit, Context, Harm, Section


@pytest.mark.parametrize(
    ("metric", "expected"),
    [("impact_ratio", UNIT), ("false_positive_rate", UNIT), ("users_reached_share", UNIT),
     ("overall_auc", UNIT), ("impact_ratio_null_q025", UNIT), ("impact_ratio_p_names", UNIT),
     ("position_impact_ratio_min", UNIT), ("participation_ratio", POSITIVE),
     ("callback_gap", None), ("fpr_gap", None), ("users", None), ("quality_gap", None)],
)  # fmt: skip
def test_the_name_says_which_metrics_are_bounded(metric, expected):
    assert metric_range(metric) == expected


def test_a_world_declares_the_range_of_a_name_that_does_not_say_it():
    moderation = world_info("moderation").ranges
    assert metric_range("silencing") is None and metric_range("silencing", moderation) == UNIT
    assert metric_range("fped", moderation) == POSITIVE  # a sum of absolute gaps
    assert metric_range("fped_null_q975", moderation) == POSITIVE
    assert metric_range("exposure_gini", world_info("spread").ranges) == UNIT


@pytest.mark.parametrize("values", [[0.30, 0.44], [0.05, 0.95], [0.9, 1.0], [0.0, 0.2, 0.05]])
def test_a_rates_interval_holds_the_mean_and_stays_in_0_1(values):
    mean, low, high = mean_interval(np.array(values), bounds=UNIT)
    plain = mean_interval(np.array(values))
    assert mean == plain[0] and 0 <= low <= mean <= high <= 1
    assert plain[1] < 0 or plain[2] > 1  # the plain t-interval leaves the range here
    # the logit-scale interval is the t-interval of the delta method, mapped back
    half = plain[2] - mean
    spread = half / (mean * (1 - mean))
    assert high == pytest.approx(1 / (1 + np.exp(-(np.log(mean / (1 - mean)) + spread))))


def test_a_ratio_stays_above_zero_and_many_seeds_agree_with_the_plain_interval():
    values = np.array([0.1, 0.9, 0.2])
    mean, low, high = mean_interval(values, bounds=POSITIVE)
    assert mean_interval(values)[1] < 0 < low < mean < high
    many = np.random.default_rng(0).normal(0.5, 0.05, 400)
    for bounds in (UNIT, POSITIVE):
        bounded = mean_interval(many, bounds=bounds)
        assert bounded == pytest.approx(mean_interval(many), abs=2e-4)


def test_every_seed_at_the_edge_gives_the_edge_and_values_outside_a_plain_interval():
    assert mean_interval(np.array([1.0, 1.0, 1.0]), bounds=UNIT) == (1.0, 1.0, 1.0)
    assert mean_interval(np.array([0.0, 0.0]), bounds=UNIT) == (0.0, 0.0, 0.0)
    # a world's metric named like a rate that leaves [0, 1]: the range does not hold
    outside = np.array([0.5, 1.4])
    assert mean_interval(outside, bounds=UNIT) == mean_interval(outside)


def _context(rows, decisions=None, n=2):
    """A context of one condition, runs a…, from (run, metric, group, value) rows."""
    runs = pd.DataFrame({"run_id": list("abcd")[:n], "condition": ["card · arm"] * n,
                         "world": "moderation"})  # fmt: skip
    metrics = pd.DataFrame(
        [{"run_id": r, "step": 1, "metric": m, "group": g, "value": v} for r, m, g, v in rows]
    )
    frame = decisions if decisions is not None else pd.DataFrame()
    return Context(runs, summarise(runs, metrics), {}, lambda: frame, metrics)


def test_the_summary_keeps_rates_inside_and_gaps_as_they_are():
    rows = [("a", "false_positive_rate", "gay", 0.05), ("b", "false_positive_rate", "gay", 0.6),
            ("a", "fpr_gap", "", -0.2), ("b", "fpr_gap", "", 0.3)]  # fmt: skip
    summary = _context(rows).summary.set_index("metric")
    rate, gap = summary.loc["false_positive_rate"], summary.loc["fpr_gap"]
    assert 0 <= rate["ci_low"] < rate["mean"] < rate["ci_high"] <= 1
    half = stats.t.ppf(0.975, 1) * np.std([-0.2, 0.3], ddof=1) / np.sqrt(2)
    assert (gap["ci_low"], gap["ci_high"]) == pytest.approx((0.05 - half, 0.05 + half))


# a moderation-like audit: texts by the group they name, 30 a run at least
AUDIT = Audit(kinds={"group": "subgroup"}, unit=("texts", "texts"), rates=(), intro="",
              min_count=30)  # fmt: skip
SECTION = Section("t", [], [], "", harm=Harm("fped", "", "FPED"), audit=AUDIT)


def _texts(sizes: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame([{"run_id": r, "subgroup": g} for r in "ab"
                         for g, n in sizes.items() for _ in range(n)])  # fmt: skip


def test_a_group_too_small_to_name_is_not_named_the_worst_without_saying_so():
    ratios = {"dialect": 0.0, "muslim": 0.7, "background": 1.0}
    rows = [(r, "impact_ratio", g, v) for r in "ab" for g, v in ratios.items()]
    ctx = _context(rows, _texts({"dialect": 4, "muslim": 40, "background": 80}))
    numbers, display = headline.build(ctx, SECTION)
    # dialect (4 texts a run) is lower, but under the minimum count: muslim is named
    assert numbers.loc[0, "worst_group"] == "muslim" and not numbers.loc[0, "worst_excludable"]
    (note,) = headline.small_note(ctx, SECTION)
    assert "dialect (4 texts a run: excludable) 0.00" in note and "(muslim)" in note
    (warning,) = headline.warnings(ctx, SECTION, numbers)
    assert "dialect (4 texts a run: excludable) 0.00" in warning
    # every group small: the lowest is named, and said to be small
    ctx = _context(rows, _texts({"dialect": 4, "muslim": 10, "background": 12}))
    numbers, display = headline.build(ctx, SECTION)
    assert numbers.loc[0, "worst_group"] == "dialect" and numbers.loc[0, "worst_excludable"]
    assert display.loc[0, "worst subgroup"] == "dialect (4 texts a run: excludable)"
    # the same groups without a rule for small ones (no audit table): the lowest
    plain = headline.build(ctx, Section("t", [], [], "", harm=SECTION.harm))[0]
    assert plain.loc[0, "worst_group"] == "dialect" and not plain.loc[0, "worst_excludable"]


def test_the_report_notes_few_seeds():
    runs = pd.DataFrame({"run_id": list("abcdefg"), "condition": list("xxyyyyy")})
    (note,) = headline.few_seeds_note(runs)
    assert "Only 2 seeds in some conditions" in note and "logit" in note
    assert headline.few_seeds_note(runs[runs["condition"] == "y"]) == []
    (one,) = headline.few_seeds_note(runs.iloc[:1])
    assert one.startswith("One seed per condition: no interval")


def _coverage(n_seeds: int, reps: int = 2000) -> dict[str, float]:
    """How often the 95 % interval over ``n_seeds`` seeds holds the true mean of a
    capped impact ratio near 1 (two groups of 200 selected at rates 0.50 and 0.49 in
    every seed), plain t (clipped to [0, 1]: the same coverage) against logit scale."""
    rng = np.random.default_rng(27)

    def seeds(n: int) -> np.ndarray:
        best, other = rng.binomial(200, 0.50, n) / 200, rng.binomial(200, 0.49, n) / 200
        return np.minimum(other / best, 1.0)

    truth = seeds(400_000).mean()
    held = {"plain": 0, "logit": 0}
    for _ in range(reps):
        values = seeds(n_seeds)
        for name, bounds in (("plain", None), ("logit", UNIT)):
            _, low, high = mean_interval(values, bounds=bounds)
            held[name] += low <= truth <= high
    return {name: count / reps for name, count in held.items()}


def test_near_the_cap_the_logit_interval_covers_what_the_plain_one_misses():
    """The capped ratio piles up at 1: the plain t-interval covers its mean less often
    than it says with few seeds; on the logit scale the interval is nearer 95 %."""
    for n_seeds in (4, 5):
        found = _coverage(n_seeds)
        assert found["plain"] < 0.91 and found["logit"] > 0.92, (n_seeds, found)
