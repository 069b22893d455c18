"""Group fairness read off decision tables, by each protected attribute and by their
intersection, through fairlearn's `MetricFrame` (several sensitive features give the
intersectional subgroups, e.g. Black women).

A policy analyst must not read parity for an attribute while a subgroup is far from
it, so every rate here comes by attribute *and* by intersection; the four-fifths rule
(29 CFR 1607.4(D), NYC Local Law 144) compares each group's selection rate with the
highest of its attribute. One `MetricFrame` per attribute (and one for the
intersection) carries every metric of a table at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame

INTERSECTION = "group"  # the key of the intersectional subgroups (e.g. black_female)

Metric = Callable[..., float]


def rate_among(label: int) -> Metric:
    """The selection rate among rows whose true label is ``label`` (NaN if none): the
    callback rate of high-quality resumes, or the false-positive rate for label 0."""

    def rate(y_true, y_pred) -> float:
        mine = np.asarray(y_true) == label
        return float(np.mean(np.asarray(y_pred)[mine])) if mine.any() else float("nan")

    return rate


def mean_of(y_true, y_pred, values) -> float:
    """The mean of a per-row sample parameter ``values`` (e.g. scores)."""
    return float(np.mean(values))


def metric_frames(
    frame: pd.DataFrame,
    y_pred: str,
    attributes: Sequence[str],
    metrics: Mapping[str, Metric],
    y_true: str | None = None,
    sample_params: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, MetricFrame]:
    """One `MetricFrame` per attribute and, with two or more attributes, one for their
    intersection (keyed `INTERSECTION`). ``sample_params`` names columns passed to a
    metric per row, e.g. {"score": {"values": "score"}}."""
    features: dict[str, pd.Series | pd.DataFrame] = {a: frame[a] for a in attributes}
    if len(attributes) > 1:
        features[INTERSECTION] = frame[list(attributes)]
    params = {m: {k: frame[c] for k, c in p.items()} for m, p in (sample_params or {}).items()}
    return {
        name: MetricFrame(
            metrics=dict(metrics),
            y_true=frame[y_true or y_pred],
            y_pred=frame[y_pred],
            sensitive_features=sensitive,
            sample_params=params or None,
        )
        for name, sensitive in features.items()
    }


def _name(group) -> str:
    return "_".join(map(str, group)) if isinstance(group, tuple) else str(group)


def values(frames: Mapping[str, MetricFrame], metric: str) -> dict[str, dict[str, float]]:
    """{attribute: {group: value}} of one metric (intersections named ``a_b``)."""
    return {
        attr: {_name(g): float(v) for g, v in mf.by_group[metric].items()}
        for attr, mf in frames.items()
    }


def differences(frames: Mapping[str, MetricFrame], metric: str) -> dict[str, float]:
    """The largest between-group difference of one metric, per attribute and across the
    intersection (e.g. demographic parity difference, true-positive-rate gap)."""
    return {attr: float(mf.difference()[metric]) for attr, mf in frames.items()}


def by_group(
    frame: pd.DataFrame, outcome: str, attributes: Sequence[str]
) -> dict[str, dict[str, float]]:
    """The selection rate of a 0/1 ``outcome`` per value of each attribute (and their
    intersection, keyed `INTERSECTION`), as ``values(metric_frames(...))`` gives it:
    the same means, by a pandas group-by (a few ms where three MetricFrames take
    ~0.1 s: the null reference computes it once per draw)."""
    hits = pd.Series(frame[outcome].to_numpy() == 1, index=frame.index)
    rates = {a: hits.groupby(frame[a], observed=True).mean() for a in attributes}
    if len(attributes) > 1:
        rates[INTERSECTION] = hits.groupby([frame[a] for a in attributes], observed=True).mean()
    return {attr: {_name(g): float(v) for g, v in r.items()} for attr, r in rates.items()}


def flatten(by_attr: dict[str, dict[str, float]]) -> dict[str, float]:
    return {g: v for values in by_attr.values() for g, v in values.items()}


def impact_ratios(by_attr: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each group's rate over the highest rate of its attribute (four-fifths rule)."""
    out = {}
    for values_ in by_attr.values():
        best = max(values_.values(), default=0.0)
        for group, rate in values_.items():
            out[group] = rate / best if best > 0 else float("nan")
    return out


def best_groups(by_attr: dict[str, dict[str, float]]) -> dict[str, str]:
    """For every group, the group with the highest rate of its attribute (its reference;
    a group with no rate, e.g. nobody of it applied this round, is never the reference)."""
    out = {}
    for values_ in by_attr.values():
        rated = {g: v for g, v in values_.items() if np.isfinite(v)}
        if rated:
            best = max(rated, key=rated.get)
            out.update({g: best for g in values_})
    return out


def group_means(
    frame: pd.DataFrame, column: str, attributes: Sequence[str], overall: bool = False
) -> dict[str, float]:
    """The mean of a population's ``column`` (employment, skill, participation) per
    value of each attribute column, and over everyone as group "" with ``overall``."""
    out: dict[str, float] = {}
    for attr in attributes:
        out.update(frame.groupby(attr)[column].mean().astype(float).to_dict())
    if overall:
        out[""] = float(frame[column].mean()) if len(frame) else float("nan")
    return out
