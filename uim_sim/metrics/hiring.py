"""Harm metrics of the hiring world, computed from decision tables.

A decision table has one row per screening decision with at least the columns
``name``, ``subject``, ``race``, ``gender``, ``group`` (race_gender), ``score``,
``decision`` (0/1) and ``truth`` (1 = qualified / high-quality resume).

- Callback rates, the quality gradient and the design follow Bertrand &
  Mullainathan (2004); impact ratios the four-fifths rule (29 CFR 1607.4(D)).
- Demographic parity and true-positive-rate gaps use fairlearn.
- Homogenisation follows Bommasani et al. (2022), "Picking on the Same Person".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, demographic_parity_difference, true_positive_rate

from uim_sim.metrics.stats import cluster_permutation_p, fisher_p

ATTRIBUTES = ("race", "gender", "group")


def rates(frame: pd.DataFrame, outcome: str = "decision") -> dict[str, dict[str, float]]:
    """Mean of ``outcome`` per group value, for each attribute."""
    return {
        attr: frame.groupby(attr, observed=True)[outcome].mean().astype(float).to_dict()
        for attr in ATTRIBUTES
    }


def impact_ratios(by_attr: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each group's rate over the highest rate of its attribute (four-fifths rule)."""
    out = {}
    for values in by_attr.values():
        best = max(values.values(), default=0.0)
        for group, rate in values.items():
            out[group] = rate / best if best > 0 else float("nan")
    return out


def flatten(by_attr: dict[str, dict[str, float]]) -> dict[str, float]:
    return {g: v for values in by_attr.values() for g, v in values.items()}


def best_groups(by_attr: dict[str, dict[str, float]]) -> dict[str, str]:
    """For every group, the group with the highest rate of its attribute (its reference)."""
    out = {}
    for values in by_attr.values():
        if values:
            best = max(values, key=values.get)
            out.update({g: best for g in values})
    return out


def audit_metrics(
    decisions: pd.DataFrame, name_permutations: int, rng: np.random.Generator
) -> dict[str, dict[str, float] | float]:
    """Metrics of one audit round: callbacks per group and how much of the gap is real."""
    callback = rates(decisions)
    reference = best_groups(callback)
    counts = decisions.groupby(list(ATTRIBUTES), observed=True)["decision"].agg(["sum", "count"])
    out: dict[str, dict[str, float] | float] = {
        "callback_rate": flatten(callback),
        "impact_ratio": impact_ratios(callback),
        "mean_score_ratio": impact_ratios(rates(decisions, "score")),
    }
    fisher, by_name = {}, {}
    for attr in ATTRIBUTES:
        totals = counts.groupby(level=attr).sum()
        strata = "gender" if attr == "race" else "race" if attr == "gender" else None
        for group in totals.index:
            ref = reference[group]
            fisher[group] = fisher_p(*totals.loc[group], *totals.loc[ref]) if group != ref else 1.0
            by_name[group] = (
                cluster_permutation_p(
                    decisions,
                    "decision",
                    "first_name",
                    attr,
                    group,
                    ref,
                    name_permutations,
                    rng,
                    strata,
                )
                if group != ref
                else 1.0
            )
    out["impact_ratio_p_fisher"] = fisher
    out["impact_ratio_p_names"] = by_name
    high = rates(decisions[decisions["truth"] == 1])
    low = rates(decisions[decisions["truth"] == 0])
    out["quality_gradient"] = {
        g: (h / flatten(low)[g]) if flatten(low).get(g) else float("nan")
        for g, h in flatten(high).items()
    }
    out["demographic_parity_difference"] = {
        attr: float(
            demographic_parity_difference(
                decisions["truth"], decisions["decision"], sensitive_features=decisions[attr]
            )
        )
        for attr in ("race", "gender")
    }
    return out


def tpr_gaps(applications: pd.DataFrame) -> dict[str, float]:
    """Largest between-group gap in P(hired | qualified), per attribute (fairlearn)."""
    out = {}
    for attr in ATTRIBUTES:
        frame = MetricFrame(
            metrics=true_positive_rate,
            y_true=applications["truth"].astype(int),
            y_pred=applications["hired"].astype(int),
            sensitive_features=applications[attr],
        )
        out[attr] = float(frame.difference())
    return out


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
    hired = rates(applicants, "hired")
    reference = best_groups(hired)
    counts = applicants.groupby(list(ATTRIBUTES), observed=True)["hired"].agg(["sum", "count"])
    fisher = {}
    for attr in ATTRIBUTES:
        totals = counts.groupby(level=attr).sum()
        for group in totals.index:
            ref = reference[group]
            fisher[group] = fisher_p(*totals.loc[group], *totals.loc[ref]) if group != ref else 1.0
    return {
        "hire_rate": flatten(hired),
        "impact_ratio": impact_ratios(hired),
        "impact_ratio_p_fisher": fisher,
        "tpr_gap": tpr_gaps(applicants),
    }
