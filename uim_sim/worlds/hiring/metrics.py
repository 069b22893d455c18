"""Harm metrics of the hiring world, computed from decision tables.

A decision table has one row per screening decision with at least the columns
``first_name``, ``subject``, ``race``, ``gender``, ``group`` (race_gender), ``score``,
``decision`` (0/1) and ``truth`` (1 = qualified / high-quality resume). Every rate is
by race, by gender and by their intersection (`uim_sim.metrics.fairness`).

- Callback rates, the quality gradient and the design follow Bertrand &
  Mullainathan (2004); impact ratios the four-fifths rule (29 CFR 1607.4(D)).
- Demographic parity and true-positive-rate gaps are fairlearn `MetricFrame`
  differences.
- Homogenisation and systemic exclusion follow Bommasani et al. (2022), "Picking on
  the Same Person"; exclusion by group and the audit per position, Bommasani et al.
  (2026), "Algorithmic monocultures in hiring".
- The order effect (`position_bias`) follows Bloomberg's (2024) audit of GPT-3.5
  ranking resumes, which picked the resume shown first 56 % of the time (1/8 by
  chance); it reads the decision table's ``position``.
"""

from __future__ import annotations

from collections.abc import Sequence

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
from uim_sim.worlds.watch import FOUR_FIFTHS

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


# systemic exclusion's measures, by group and for everyone (`exclusion_rates`)
EXCLUSION = ("systemic_exclusion", "systemic_exclusion_expected", "systemic_exclusion_excess")
# the audit per position's measures, by group (`position_audit`)
POSITION_AUDIT = ("pooled_impact_ratio", "position_impact_ratio_min", "positions_failing",
                  "positions_failing_significant", "positions_hidden", "adverse_share")  # fmt: skip


def systemic_exclusion(
    screened: pd.DataFrame, within: Sequence[str] = (), by: str | None = None
) -> pd.DataFrame:
    """Systemic exclusion (Bommasani et al. 2022, "Picking on the same person"; 2026,
    "Algorithmic monocultures in hiring"), counted: the ``applicants`` with two or more
    applications, how many of them every decider they applied to rejected
    (``rejected``), and how many independent deciders would reject everywhere at
    their own rejection rates (``expected``: per applicant, the product of its
    deciders' rejection rates, summed). An applicant is a ``subject`` within a cell of
    ``within`` (with ``step``: an applicant in a round), and a decider's rate is its
    rate in that cell (with an attribute, among that group's applications: the baseline
    then holds each group's own rates, so the excess measures shared verdicts, not the
    gap between groups). One row per value of ``by`` (``""`` without); counts of
    separate rounds add up."""
    frame = screened.reset_index(drop=True)
    cells = [frame[c] for c in within]
    accepted = frame.groupby([frame["decider"], *cells])["decision"].transform("mean")
    per = pd.DataFrame({
        "decision": frame["decision"],
        "log_reject": np.log(np.clip(1 - accepted.to_numpy(float), 1e-12, 1)),
        "by": frame[by] if by else "",
    }).groupby([frame["subject"], *cells]).agg(
        n=("decision", "size"), accepted=("decision", "sum"),
        log_reject=("log_reject", "sum"), by=("by", "first"),
    )  # fmt: skip
    multi = per[per["n"] >= 2]
    units = pd.DataFrame({
        "rejected": (multi["accepted"] == 0).astype(float),
        "expected": np.exp(multi["log_reject"]),
    }).groupby(multi["by"])  # fmt: skip
    # Series.sum, not the group-by's compensated sum: homogenisation keeps its bits
    table = units.agg(pd.Series.sum)
    table.insert(0, "applicants", units.size())
    return table


def homogenization(screened: pd.DataFrame) -> dict[str, float]:
    """Share of applicants rejected by every employer they applied to, observed vs
    expected if employers decided independently at their own rejection rates
    (Bommasani et al. 2022), and their ratio: `systemic_exclusion` of one round,
    everyone pooled."""
    table = systemic_exclusion(screened)
    if table.empty:
        return {"observed": float("nan"), "expected": float("nan"), "ratio": float("nan")}
    n = int(table["applicants"].iloc[0])
    observed, expected = table["rejected"].iloc[0] / n, table["expected"].iloc[0] / n
    ratio = observed / expected if expected > 0 else float("nan")
    return {"observed": float(observed), "expected": float(expected), "ratio": float(ratio)}


def exclusion_counts(screened: pd.DataFrame) -> pd.DataFrame:
    """`systemic_exclusion` by round (an applicant in a round is the unit; each
    employer's rates are its rates in that round), for everyone (group ``""``, the
    employers' overall rates) and per race, gender and their intersection (each
    group's own rates)."""
    return pd.concat(
        [systemic_exclusion(screened, ("step",))]
        + [systemic_exclusion(screened, ("step", a), a) for a in (*ATTRIBUTES, INTERSECTION)]
    )


def exclusion_rates(counts: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per group of `exclusion_counts`: the share rejected everywhere, the independence
    baseline, and the excess (observed − baseline)."""
    observed = counts["rejected"] / counts["applicants"]
    expected = counts["expected"] / counts["applicants"]
    excess = observed - expected
    return dict(zip(EXCLUSION, (observed.to_dict(), expected.to_dict(), excess.to_dict())))


def position_counts(screened: pd.DataFrame) -> pd.DataFrame:
    """Per attribute (race, gender, their intersection), position (decider) and group:
    the applications it selected (``sum``) and received (``count``); counts of
    separate rounds add up."""
    return pd.concat(
        {a: screened.groupby(["decider", a], observed=True)["decision"].agg(["sum", "count"])
            .rename_axis(["decider", "group"]) for a in (*ATTRIBUTES, INTERSECTION)},
        names=["attribute"],
    )  # fmt: skip


def position_audit(counts: pd.DataFrame, alpha: float = 0.05) -> dict[str, dict[str, float]]:
    """Impact ratios per position (each decider: an employer of the market) beside the
    pooled one, from `position_counts` (Bommasani et al. 2026: adverse impact shows per
    position and hides in pooled figures). Per race, gender and their intersection:

    - ``pooled_impact_ratio``: the group's selection rate over the best group's, every
      position's applications pooled;
    - ``position_impact_ratio_min``: the lowest of the positions' own ratios;
    - ``positions_failing``: how many positions select the group at less than four
      fifths of their best group's rate (a position that selected nobody has no ratio);
    - ``positions_failing_significant``: those whose gap Fisher's exact test puts
      below ``alpha`` (applications as the units);
    - ``positions_hidden``: the positions failing while the pooled ratio passes (what
      the pooled audit hides; 0 where it fails too);
    - ``adverse_share``: the share of the group's applications sent to a position that
      fails it (the study's 25.87 % of Black applicants' applications)."""
    out: dict[str, dict[str, float]] = {k: {} for k in POSITION_AUDIT}
    for _, tally in counts.groupby(level="attribute", sort=False):
        tally = tally.droplevel("attribute").astype(int)  # rounds added as floats
        selected, applied = tally["sum"].unstack(), tally["count"].unstack()
        totals = tally.groupby(level="group", sort=False).sum()
        pooled = impact_ratios({"": (totals["sum"] / totals["count"]).to_dict()})
        rate = selected / applied
        best = rate.idxmax(axis=1)  # each position's best-treated group
        ratio = rate.div(rate.max(axis=1).where(lambda r: r > 0), axis=0)
        for group in ratio.columns:
            fails = ratio[group] < FOUR_FIFTHS  # NaN (no ratio) does not fail
            n_fail = float(fails.sum())
            significant = [fisher_p(*tally.loc[(e, group)], *tally.loc[(e, best[e])]) < alpha
                           for e in fails.index[fails]]  # fmt: skip
            mine = applied[group].fillna(0)
            out["pooled_impact_ratio"][group] = pooled[group]
            out["position_impact_ratio_min"][group] = float(ratio[group].min())
            out["positions_failing"][group] = n_fail
            out["positions_failing_significant"][group] = float(sum(significant))
            out["positions_hidden"][group] = n_fail if pooled[group] >= FOUR_FIFTHS else 0.0
            out["adverse_share"][group] = float(mine[fails].sum() / mine.sum())
    return out


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
