"""Harm and bias metrics of the moderation world, computed from decision tables.

A decision table has one row per moderated text with at least ``subgroup`` (the
identity the text names or signals; "background" for none), ``truth`` (1 = toxic),
``score`` (higher = more toxic) and ``decision`` (1 = removed).

- Dixon et al. (2018), "Measuring and Mitigating Unintended Bias in Text
  Classification": false-positive and false-negative rates per identity term at
  one shared threshold, and the equality differences
  FPED = Σ_t |FPR − FPR_t|, FNED = Σ_t |FNR − FNR_t|.
- Borkan et al. (2019), "Nuanced Metrics for Measuring Unintended Bias with Real
  Data for Text Classification": per identity, Subgroup AUC (texts naming it),
  BPSN AUC (its non-toxic texts vs toxic background texts), BNSP AUC (its toxic
  texts vs non-toxic background texts), "background" being every text that does
  not name it; final score = 0.25·overall AUC + 0.25·Σ M_p(per-identity AUCs) with
  the power mean M_p, p = −5.

Rates are fairlearn `MetricFrame` selection rates among the benign (FPR) and toxic
(1 − FNR) texts; AUCs are scikit-learn's ``roc_auc_score``; the power mean is
scipy's ``pmean``. A term-permutation null (labels shuffled
among the distinct texts of one template frame) gives the FPED and FNED that sampling
noise alone produces: both are sums of absolute values, so they are positive even
for a classifier that ignores identity.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, selection_rate
from scipy.stats import pmean
from sklearn.metrics import roc_auc_score

from uim_sim.metrics.fairness import by_group, impact_ratios

POWER = -5.0


def removal_rates(frame: pd.DataFrame, pools: dict[str, Sequence[str]]) -> dict[str, float]:
    """Share removed per subgroup, overall (group "") and per pool of subgroups (e.g.
    "identity": every identity term together); NaN for an empty pool."""
    if frame.empty:
        return {"": float("nan"), **{name: float("nan") for name in pools}}
    decision = frame["decision"]
    mf = MetricFrame(
        metrics=selection_rate, y_true=decision, y_pred=decision,
        sensitive_features=frame["subgroup"],
    )  # fmt: skip
    out = {str(g): float(v) for g, v in mf.by_group.items()}
    out[""] = float(mf.overall)
    for name, members in pools.items():
        inside = frame["subgroup"].isin(members)
        out[name] = (
            float(selection_rate(decision[inside], decision[inside]))
            if inside.any()
            else (float("nan"))
        )
    return out


def error_rates(
    frame: pd.DataFrame, pools: dict[str, Sequence[str]] | None = None
) -> dict[str, dict[str, float]]:
    """False-positive and false-negative rates per subgroup, overall (group "") and
    per pool of subgroups: removal rates among benign texts, keep rates among toxic."""
    pools = pools or {}
    fpr = removal_rates(frame[frame["truth"] == 0], pools)
    fnr = {g: 1 - v for g, v in removal_rates(frame[frame["truth"] == 1], pools).items()}
    return {"false_positive_rate": fpr, "false_negative_rate": fnr}


def equality_differences(rates: dict[str, dict[str, float]], terms: Sequence[str]):
    """Dixon et al.'s (FPED, FNED): summed distance of each term's rate from the overall."""
    out = []
    for metric in ("false_positive_rate", "false_negative_rate"):
        overall = rates[metric][""]
        gaps = [abs(overall - rates[metric][t]) for t in terms if t in rates[metric]]
        gaps = [g for g in gaps if np.isfinite(g)]
        out.append(float(np.sum(gaps)) if gaps else float("nan"))
    return tuple(out)


def _auc(truth: np.ndarray, score: np.ndarray) -> float:
    if len(np.unique(truth)) < 2:
        return float("nan")
    return float(roc_auc_score(truth, score))


def bias_aucs(frame: pd.DataFrame, terms: Sequence[str]) -> dict[str, dict[str, float]]:
    """Borkan et al.'s Subgroup, BPSN and BNSP AUC for each term."""
    truth = frame["truth"].to_numpy(int)
    score = frame["score"].to_numpy(float)
    out: dict[str, dict[str, float]] = {"subgroup_auc": {}, "bpsn_auc": {}, "bnsp_auc": {}}
    for term in terms:
        mine = (frame["subgroup"] == term).to_numpy()
        bpsn = (mine & (truth == 0)) | (~mine & (truth == 1))
        bnsp = (mine & (truth == 1)) | (~mine & (truth == 0))
        for metric, rows in (("subgroup_auc", mine), ("bpsn_auc", bpsn), ("bnsp_auc", bnsp)):
            out[metric][term] = _auc(truth[rows], score[rows])
    return out


def power_mean(values: Sequence[float], p: float = POWER) -> float:
    """M_p = (mean x^p)^(1/p) over the finite values (Borkan et al. use p = −5); an
    AUC of 0 gives M_p = 0, its limit."""
    x = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if len(x) == 0:
        return float("nan")
    with np.errstate(divide="ignore"):
        return float(pmean(x, p))


def final_bias_score(overall_auc: float, aucs: dict[str, dict[str, float]]) -> float:
    """0.25 · overall AUC + 0.25 · (M_p(Subgroup) + M_p(BPSN) + M_p(BNSP))."""
    means = [power_mean(list(aucs[m].values())) for m in ("subgroup_auc", "bpsn_auc", "bnsp_auc")]
    return 0.25 * overall_auc + 0.25 * float(np.sum(means))


def term_permutation_null(
    frame: pd.DataFrame,
    terms: Sequence[str],
    n: int,
    rng: np.random.Generator,
    contrast: tuple[Sequence[str], Sequence[str]] | None = None,
) -> dict[str, np.ndarray]:
    """FPED and FNED with subgroup labels shuffled among the distinct texts of each
    template frame: the unit is the text (repeated posts of one text are not new
    evidence), and a frame's texts differ only in the group they name. With
    ``contrast`` (targets, others: terms), also the pooled false-positive rate of the
    targets minus that of the others (``fpr_gap``)."""
    if n <= 0:
        return {"fped": np.array([]), "fned": np.array([]), "fpr_gap": np.array([])}
    units = (
        frame.assign(
            benign=frame["truth"] == 0,
            fp=(frame["truth"] == 0) & (frame["decision"] == 1),
            toxic=frame["truth"] == 1,
            fn=(frame["truth"] == 1) & (frame["decision"] == 0),
        )
        .groupby(["frame", "text"], sort=True)
        .agg(
            subgroup=("subgroup", "first"),
            benign=("benign", "sum"),
            fp=("fp", "sum"),
            toxic=("toxic", "sum"),
            fn=("fn", "sum"),
        )
        .reset_index()
    )
    codes = {t: i for i, t in enumerate(terms)}
    label = units["subgroup"].map(codes).fillna(-1).to_numpy(int)
    frame_code = units["frame"].astype("category").cat.codes.to_numpy()
    counts = units[["benign", "fp", "toxic", "fn"]].to_numpy(float)
    fpr_all = counts[:, 1].sum() / max(counts[:, 0].sum(), 1)
    fnr_all = counts[:, 3].sum() / max(counts[:, 2].sum(), 1)
    k = len(terms)
    by_frame = label[np.argsort(frame_code, kind="stable")]
    out = {"fped": np.empty(n), "fned": np.empty(n), "fpr_gap": np.full(n, np.nan)}
    pooled = contrast and [np.isin(np.arange(k), [codes.get(t, -1) for t in c]) for c in contrast]
    for i in range(n):
        order = np.lexsort((rng.random(len(units)), frame_code))  # shuffled within frame
        shuffled = np.empty_like(label)
        shuffled[order] = by_frame
        keep = shuffled >= 0
        sums = np.stack(
            [np.bincount(shuffled[keep], counts[keep, j], minlength=k) for j in range(4)], 1
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            fpr, fnr = sums[:, 1] / sums[:, 0], sums[:, 3] / sums[:, 2]
        out["fped"][i] = np.nansum(np.abs(fpr_all - fpr))
        out["fned"][i] = np.nansum(np.abs(fnr_all - fnr))
        if pooled:
            (fp_t, benign_t), (fp_o, benign_o) = (sums[m, 1::-1].sum(0) for m in pooled)
            with np.errstate(invalid="ignore", divide="ignore"):
                out["fpr_gap"][i] = fp_t / benign_t - fp_o / benign_o
    return out


def bias_metrics(
    frame: pd.DataFrame,
    terms: Sequence[str],
    pools: dict[str, Sequence[str]] | None = None,
    permutations: int = 0,
    rng: np.random.Generator | None = None,
    contrast: tuple[str, str] | None = None,
) -> dict[str, dict[str, float] | float]:
    """Every Dixon and Borkan metric of one decision table, as a tidy reporter bundle;
    with ``contrast`` (two pools' names, e.g. ("targets", "others")), also
    ``fpr_gap``: the first pool's false-positive rate minus the second's, with its
    term-permutation null."""
    rates = error_rates(frame, pools)
    fped, fned = equality_differences(rates, terms)
    observed = {"fped": fped, "fned": fned}
    if contrast:
        fpr = rates["false_positive_rate"]
        observed["fpr_gap"] = fpr[contrast[0]] - fpr[contrast[1]]
    aucs = bias_aucs(frame, terms)
    overall = _auc(frame["truth"].to_numpy(int), frame["score"].to_numpy(float))
    out: dict[str, dict[str, float] | float] = {
        **rates,
        **observed,
        "overall_auc": overall,
        **aucs,
        "final_bias_score": final_bias_score(overall, aucs),
    }
    members = contrast and tuple(tuple((pools or {})[name]) for name in contrast)
    null = term_permutation_null(
        frame, terms, permutations, rng or np.random.default_rng(0), members
    )
    for metric, value in observed.items():
        out.update(null_band(metric, value, null[metric]))
    return out


def null_band(metric: str, observed: float, values: np.ndarray) -> dict[str, float]:
    """``METRIC_null_q025``, ``_median``, ``_q975`` and the one-sided ``_p`` (how often
    chance alone gives a value this large) of a permutation null; nothing without
    draws or an observed value."""
    if len(values) == 0 or not np.isfinite(observed):
        return {}
    return {
        f"{metric}_null_q025": float(np.quantile(values, 0.025)),
        f"{metric}_null_median": float(np.median(values)),
        f"{metric}_null_q975": float(np.quantile(values, 0.975)),
        f"{metric}_null_p": float((1 + np.sum(values >= observed - 1e-12)) / (1 + len(values))),
    }


def attack_success(frame: pd.DataFrame, triggered: pd.Series, permutations: int = 0,
                   rng: np.random.Generator | None = None) -> dict[str, float]:  # fmt: skip
    """Of the toxic texts: the share left up among those carrying the trigger
    (``attack_success_rate``), and that minus the share left up among the others
    (``attack_success_gap``: what the trigger adds), with a null of the gap that
    shuffles the trigger among the toxic texts (the unit a distinct text, as in the
    term null): a moderator the trigger does not move stays inside it."""
    toxic = frame["truth"].to_numpy(int) == 1
    units = (
        frame[toxic].assign(kept=1 - frame["decision"][toxic], mark=triggered[toxic])
        .groupby("text", sort=True).agg(kept=("kept", "sum"), n=("kept", "size"),
                                         mark=("mark", "first"))
    )  # fmt: skip
    kept, n, mark = (units[c].to_numpy() for c in ("kept", "n", "mark"))
    mark = mark.astype(bool)

    def rates(marked: np.ndarray) -> tuple[float, float]:
        with np.errstate(invalid="ignore", divide="ignore"):
            hit = kept[marked].sum() / n[marked].sum()
            return float(hit), float(hit - kept[~marked].sum() / n[~marked].sum())

    rate, gap = rates(mark)
    out = {"attack_success_rate": rate, "attack_success_gap": gap}
    if mark.any() and not mark.all():
        generator = rng or np.random.default_rng(0)
        null = [rates(generator.permutation(mark))[1] for _ in range(permutations)]
        out.update(null_band("attack_success_gap", gap, np.array(null)))
    return out


def silencing(posts: pd.DataFrame) -> dict[str, float]:
    """Share of benign posts removed, per author group and overall (group "")."""
    benign = posts[posts["truth"] == 0]
    return removal_rates(benign.assign(subgroup=benign["group"]), {})


def keep_impact_ratios(posts: pd.DataFrame) -> dict[str, float]:
    """The four-fifths comparison for moderation: the share of each author group's
    benign posts left up (1 − its silencing) over the best group's share. Users belong
    to one group, so there is no intersection to report."""
    benign = posts[posts["truth"] == 0]
    return impact_ratios(by_group(benign.assign(kept=1 - benign["decision"]), "kept", ("group",)))
