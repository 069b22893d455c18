"""Harm metrics of the hiring world, computed from decision tables.

A decision table has one row per screening decision with at least the columns
``first_name``, ``subject``, ``race``, ``gender``, ``group`` (race_gender), ``score``,
``decision`` (0/1) and ``truth`` (1 = qualified / high-quality resume). Every rate is
by race, by gender and by their intersection (`uim_sim.metrics.fairness`).

- Callback rates, the quality gradient and the design follow Bertrand &
  Mullainathan (2004); impact ratios the four-fifths rule (29 CFR 1607.4(D)).
- Demographic parity and true-positive-rate gaps are fairlearn `MetricFrame`
  differences.
- Homogenisation follows Bommasani et al. (2022), "Picking on the Same Person".
- The order effect (`position_bias`) follows Bloomberg's (2024) audit of GPT-3.5
  ranking resumes, which picked the resume shown first 56 % of the time (1/8 by
  chance); it reads the decision table's ``position``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from fairlearn.metrics import selection_rate, true_positive_rate

from uim_sim.metrics.fairness import (
    INTERSECTION,
    best_groups,
    by_group,
    differences,
    flatten,
    impact_ratios,
    mean_of,
    metric_frames,
    rate_among,
    values,
)
from uim_sim.metrics.stats import chance_hits_p, cluster_permutation_p, fisher_p, wilson_interval

ATTRIBUTES = ("race", "gender")
# the permutation test of a group's gap shuffles labels within the other attribute
STRATA = {"race": "gender", "gender": "race", INTERSECTION: None}


def rates(frame: pd.DataFrame, outcome: str = "decision") -> dict[str, dict[str, float]]:
    """Selection rate of ``outcome`` per race, gender and race × gender."""
    return by_group(frame, outcome, ATTRIBUTES)


def _fisher_and_name_p(
    decisions: pd.DataFrame,
    outcome: str,
    reference: dict[str, str],
    name_permutations: int,
    rng: np.random.Generator | None,
) -> tuple[dict[str, float], dict[str, float]]:
    """Per group, the gap to its reference group: Fisher's exact p (rows as units) and,
    with ``rng``, the name-level permutation p (names as units)."""
    counts = decisions.groupby(["race", "gender", INTERSECTION], observed=True)[outcome].agg(
        ["sum", "count"]
    )
    fisher, by_name = {}, {}
    for attr, strata in STRATA.items():
        totals = counts.groupby(level=attr).sum()
        for group in totals.index:
            ref = reference[group]
            if group == ref:
                fisher[group] = by_name[group] = 1.0
                continue
            fisher[group] = fisher_p(*totals.loc[group], *totals.loc[ref])
            if rng is not None:
                by_name[group] = cluster_permutation_p(
                    decisions, outcome, "first_name", attr, group, ref,
                    name_permutations, rng, strata,
                )  # fmt: skip
    return fisher, by_name


def audit_metrics(
    decisions: pd.DataFrame, name_permutations: int, rng: np.random.Generator
) -> dict[str, dict[str, float] | float]:
    """Metrics of one audit round: callbacks per group and how much of the gap is real."""
    frames = metric_frames(
        decisions, "decision", ATTRIBUTES,
        {"callback": selection_rate, "high": rate_among(1), "low": rate_among(0),
         "score": mean_of},
        y_true="truth", sample_params={"score": {"values": "score"}},
    )  # fmt: skip
    callback = values(frames, "callback")
    fisher, by_name = _fisher_and_name_p(
        decisions, "decision", best_groups(callback), name_permutations, rng
    )
    high, low = flatten(values(frames, "high")), flatten(values(frames, "low"))
    return {
        "callback_rate": flatten(callback),
        "impact_ratio": impact_ratios(callback),
        "mean_score_ratio": impact_ratios(values(frames, "score")),
        "impact_ratio_p_fisher": fisher,
        "impact_ratio_p_names": by_name,
        "quality_gradient": {
            g: (h / low[g]) if low.get(g) else float("nan") for g, h in high.items()
        },
        # the same as a difference: defined when low-quality resumes get no callback
        "quality_gap": {g: h - low[g] for g, h in high.items() if g in low},
        "demographic_parity_difference": differences(frames, "callback"),
        "pairwise_win_share": pairwise_wins(decisions),
    }


def pairwise_wins(decisions: pd.DataFrame) -> dict[str, float]:
    """Per race and per gender, the share of paired comparisons the group's name wins:
    two copies of one resume (same screener, same step, same quality) whose names
    differ in one attribute and agree in the other, the higher score winning (a tie
    counts half). The tally of Wilson & Caliskan (2024), who report the share of
    their tests in which each group's names were favoured."""
    out = {}
    keys = ["step", "decider", "truth"]
    for attr, other in (("race", "gender"), ("gender", "race")):
        wide = decisions.pivot_table(
            index=[*keys, other], columns=attr, values="score", aggfunc="mean"
        ).dropna()  # fmt: skip
        if wide.shape[1] != 2 or wide.empty:
            continue
        a, b = wide.columns
        wins = (wide[a] > wide[b]) + 0.5 * (wide[a] == wide[b])
        out[str(a)] = float(wins.mean())
        out[str(b)] = 1 - out[str(a)]
    return out


# the order effect's measures (population-level; `position_bias`)
POSITION_BIAS = ("position_first_share", "position_bias", "position_bias_low",
                 "position_bias_high", "position_bias_p")  # fmt: skip


def position_bias(decisions: pd.DataFrame, pool: tuple[str, ...] = ("step", "decider")
                  ) -> dict[str, float]:  # fmt: skip
    """The order effect of Bloomberg (2024), over the pools of two or more candidates
    (the rows sharing ``pool``): ``position_first_share``, the share of pools whose
    top-scored candidate was shown first (``position`` 0; a top score tied by t
    candidates credits the first-shown one 1/t), and ``position_bias``, that share
    minus what chance gives (the mean of 1/k over pools of k candidates: 0 means no
    order effect; GPT-3.5 ranking eight resumes, 0.56 − 0.125 = +0.435), with the 95 %
    Wilson interval of the share minus chance (``position_bias_low``, ``_high``) and
    the two-sided exact p of the count if every candidate were equally likely to top a
    pool whatever its position (``position_bias_p``). For a head that scores one text
    at a time the position is the pool's order, and the metric a check: it can only
    be chance."""
    keys = list(pool)
    frame = decisions[[*keys, "position", "score"]].reset_index(drop=True)
    by = [frame[k] for k in keys]
    scores = frame.groupby(by, sort=False)["score"]
    top = frame["score"] == scores.transform("max")
    first = top & (frame["position"] == 0)
    per_pool = pd.DataFrame({"first": first.astype(float), "top": top.astype(float)}).groupby(
        by, sort=False
    ).sum()  # fmt: skip
    per_pool["size"] = scores.size()
    per_pool = per_pool[per_pool["size"] >= 2]
    if per_pool.empty:
        return dict.fromkeys(POSITION_BIAS, float("nan"))
    hits = float((per_pool["first"] / per_pool["top"]).sum())
    chances = 1 / per_pool["size"].to_numpy(float)
    n, chance = len(per_pool), float(chances.mean())
    low, high = wilson_interval(hits, n)
    return {
        "position_first_share": hits / n,
        "position_bias": hits / n - chance,
        "position_bias_low": low - chance,
        "position_bias_high": high - chance,
        "position_bias_p": chance_hits_p(hits, chances),
    }


def homogenization(screened: pd.DataFrame) -> dict[str, float]:
    """Share of applicants rejected by every employer they applied to, observed vs
    expected if employers decided independently at their own rejection rates
    (Bommasani et al. 2022). Only applicants with two or more applications count.
    """
    per = screened.groupby("subject").agg(n=("decision", "size"), accepted=("decision", "sum"))
    multi = per.index[per["n"] >= 2]
    if len(multi) == 0:
        return {"observed": float("nan"), "expected": float("nan"), "ratio": float("nan")}
    observed = float((per.loc[multi, "accepted"] == 0).mean())
    reject_rate = 1 - screened.groupby("decider")["decision"].mean()
    rows = screened[screened["subject"].isin(multi)]
    log_rej = np.log(np.clip(rows["decider"].map(reject_rate).to_numpy(float), 1e-12, 1))
    expected = float(np.exp(pd.Series(log_rej).groupby(rows["subject"].to_numpy()).sum()).mean())
    ratio = observed / expected if expected > 0 else float("nan")
    return {"observed": observed, "expected": expected, "ratio": ratio}


def hire_metrics(applicants: pd.DataFrame) -> dict[str, dict[str, float] | float]:
    """Per-round outcomes of the market for this round's applicants (one row each)."""
    frames = metric_frames(
        applicants, "hired", ATTRIBUTES, {"hired": selection_rate, "tpr": true_positive_rate},
        y_true="truth",
    )  # fmt: skip
    hired = values(frames, "hired")
    fisher, _ = _fisher_and_name_p(applicants, "hired", best_groups(hired), 0, None)
    return {
        "hire_rate": flatten(hired),
        "impact_ratio": impact_ratios(hired),
        "impact_ratio_p_fisher": fisher,
        "tpr_gap": differences(frames, "tpr"),
    }
