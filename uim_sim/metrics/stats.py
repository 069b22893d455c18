"""Statistics that treat the right unit as independent.

With a few dozen names, resumes that share a name are not independent draws: a
learned head carries per-name offsets (docs/statistics.md, "The name as the
unit"). `cluster_permutation_p` therefore permutes group labels over
clusters (names, applicants), never over rows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import special, stats


def fisher_p(selected_a: int, total_a: int, selected_b: int, total_b: int) -> float:
    """Two-sided Fisher exact test of equal selection rates (rows as independent draws)."""
    if total_a == 0 or total_b == 0:
        return float("nan")
    table = [[selected_a, total_a - selected_a], [selected_b, total_b - selected_b]]
    return float(stats.fisher_exact(table).pvalue)


def cluster_permutation_p(
    frame: pd.DataFrame,
    outcome: str,
    cluster: str,
    label: str,
    group: str,
    reference: str,
    n_permutations: int,
    rng: np.random.Generator,
    strata: str | None = None,
) -> float:
    """Permutation p-value for the selection-rate gap between ``group`` and ``reference``.

    Each cluster (e.g. a name) keeps all its rows; labels are shuffled across clusters
    (within ``strata`` if given, e.g. race labels within gender). Two-sided, with the
    +1 correction so p is never 0.
    """
    if n_permutations <= 0 or group == reference:
        return float("nan")
    keys = [cluster, label] + ([strata] if strata else [])
    units = frame.groupby(keys, observed=True)[outcome].agg(["sum", "count"]).reset_index()
    if units[cluster].duplicated().any():
        raise ValueError(f"each {cluster} must carry one {label}")
    units = units[units[label].isin([group, reference])].reset_index(drop=True)
    if units[label].nunique() < 2:
        return float("nan")
    successes = units["sum"].to_numpy(float)
    trials = units["count"].to_numpy(float)
    is_group = (units[label] == group).to_numpy()

    def gap(mask: np.ndarray) -> np.ndarray:  # mask: (..., n_units) bool for `group`
        rate_g = (mask * successes).sum(-1) / np.maximum((mask * trials).sum(-1), 1)
        rate_r = (~mask * successes).sum(-1) / np.maximum((~mask * trials).sum(-1), 1)
        return rate_g - rate_r

    observed = gap(is_group)
    perms = np.tile(is_group, (n_permutations, 1))
    if strata:
        for stratum in units[strata].unique():
            cols = np.flatnonzero((units[strata] == stratum).to_numpy())
            perms[:, cols] = rng.permuted(perms[:, cols], axis=1)
    else:
        perms = rng.permuted(perms, axis=1)
    null = gap(perms)
    extreme = np.sum(np.abs(null) >= np.abs(observed) - 1e-12)
    return float((1 + extreme) / (1 + n_permutations))


UNIT = (0.0, 1.0)  # rates, shares, AUCs, p-values, impact ratios (capped at 1)
POSITIVE = (0.0, np.inf)  # ratios of two rates
NULL_BAND = ("_null_q025", "_null_q975", "_null_median")  # a null band's quantiles


def metric_range(
    metric: str, declared: Mapping[str, tuple[float, float] | None] | None = None
) -> tuple[float, float] | None:
    """The range a metric's values keep, for an interval that stays inside it: what
    the world declares (`WorldInfo.ranges`; None there: unbounded), else what the name
    says: a rate, share, AUC, p-value or impact ratio lies in [0, 1], another ratio in
    [0, ∞); a null band's quantile in its metric's range. Anything else (a gap, a
    difference, FPED, a count) is None: not bounded the same way."""
    if declared and metric in declared:
        return declared[metric]
    for suffix in NULL_BAND:
        if metric.endswith(suffix):
            return metric_range(metric.removesuffix(suffix), declared)
    if re.search(r"(_rate|_share|auc|impact_ratio(_min)?|_p|_p_fisher|_p_names)$", metric):
        return UNIT
    return POSITIVE if metric.endswith("_ratio") else None


def t_interval(
    mean: np.ndarray,
    std: np.ndarray,
    n: np.ndarray,
    bounds: Sequence[tuple[float, float] | None] | None = None,
    level: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Student-t intervals over ``n`` independent replicates (seeds) of values with
    these means and standard deviations; NaN below 2. Where ``bounds`` gives a value's
    range (`metric_range`), the interval is the t-interval on the logit scale ([0, 1])
    or the log scale ([0, ∞)) by the delta method, mapped back: it holds the mean and
    stays inside the range however few the seeds (as Stata's ``proportion`` and R
    survey's ``svyciprop(method="logit")`` do for a share). At the edge of the range
    (every seed there) the interval is the mean alone. The caller passes None for a
    value whose replicates leave the range (a range that does not hold: plain t)."""
    mean, std, n = (np.asarray(a, dtype=float) for a in (mean, std, n))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        half = stats.t.ppf(0.5 + level / 2, n - 1) * std / np.sqrt(n)
        half = np.where(n >= 2, half, np.nan)
        low, high = mean - half, mean + half
        if bounds is None:
            return low, high
        kind = np.array([_scale(b) for b in bounds], dtype=object)
        unit = (kind == "logit") & (mean > 0) & (mean < 1) & (half > 0)
        spread = half / (mean * (1 - mean))
        low = np.where(unit, special.expit(special.logit(mean) - spread), low)
        high = np.where(unit, special.expit(special.logit(mean) + spread), high)
        positive = (kind == "log") & (mean > 0) & (half > 0)
        low = np.where(positive, mean * np.exp(-half / mean), low)
        high = np.where(positive, mean * np.exp(half / mean), high)
    return low, high


def _scale(bounds: tuple[float, float] | None) -> str:
    """The scale a range's interval is computed on."""
    if bounds == UNIT:
        return "logit"
    return "log" if bounds == POSITIVE else ""


def within(bounds: tuple[float, float] | None, low: float, high: float) -> bool:
    """Do replicates from ``low`` to ``high`` keep the range ``bounds``?"""
    return bounds is not None and bounds[0] <= low and high <= bounds[1]


def mean_interval(
    values: np.ndarray, level: float = 0.95, bounds: tuple[float, float] | None = None
) -> tuple[float, float, float]:
    """Mean and Student-t interval over independent replicates (seeds); with the
    values' range (``bounds``, `metric_range`) one that stays inside it
    (`t_interval`)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return (float("nan"),) * 3
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    kept = bounds if within(bounds, values.min(), values.max()) else None
    low, high = t_interval([mean], [values.std(ddof=1)], [len(values)], [kept], level)
    return mean, float(low[0]), float(high[0])


def wilson_interval(successes: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval of a share ``successes / n`` (``successes`` may be
    fractional: ties credited in part)."""
    if n <= 0:
        return float("nan"), float("nan")
    z = stats.norm.ppf(0.5 + level / 2)
    share = successes / n
    centre = (share + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(share * (1 - share) / n + z**2 / (4 * n**2))
    low = 0.0 if successes <= 0 else max(centre - half, 0.0)  # exact at the ends
    high = 1.0 if successes >= n else min(centre + half, 1.0)
    return float(low), float(high)


def chance_hits_p(hits: float, chances: np.ndarray) -> float:
    """Two-sided exact p of ``hits`` successes in independent trials that succeed with
    probabilities ``chances`` (a Poisson-binomial count; trials of one probability are
    one binomial, and the test is then scipy's `binomtest`): the probability of every
    count no more likely than the one observed. A fractional count (ties credited in
    part) takes the larger p of its two neighbours."""
    chances = np.asarray(chances, dtype=float)
    if len(chances) == 0:
        return float("nan")
    pmf = np.ones(1)
    values, counts = np.unique(chances, return_counts=True)
    for p, n in zip(values, counts):
        pmf = np.convolve(pmf, stats.binom.pmf(np.arange(n + 1), n, p))
    near = {int(np.floor(hits + 1e-9)), int(np.ceil(hits - 1e-9))}
    # scipy's tolerance for counts as likely as the observed one
    return float(max(min(1.0, pmf[pmf <= pmf[x] * (1 + 1e-7)].sum()) for x in near))
