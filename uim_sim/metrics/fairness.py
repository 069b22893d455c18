"""Group fairness read off decision tables, by each protected attribute and by their
intersection, through fairlearn's `MetricFrame` (several sensitive features give the
intersectional subgroups, e.g. Black women).

A policy analyst must not read parity for an attribute while a subgroup is far from
it, so every rate here comes by attribute *and* by intersection; the four-fifths rule
(29 CFR 1607.4(D), NYC Local Law 144) compares each group's selection rate with the
highest of its attribute.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, selection_rate

INTERSECTION = "group"  # the key of the intersectional subgroups (e.g. black_female)

Metric = Callable[[np.ndarray, np.ndarray], float]


def mean_of_prediction(y_true, y_pred) -> float:
    """The mean of ``y_pred``: a metric for continuous outcomes (e.g. scores)."""
    return float(np.mean(y_pred))


def by_group(
    frame: pd.DataFrame,
    outcome: str,
    attributes: Sequence[str],
    metric: Metric = selection_rate,
    truth: str | None = None,
) -> dict[str, dict[str, float]]:
    """``metric`` of ``outcome`` per value of each attribute and, with two or more
    attributes, per intersection (keyed `INTERSECTION`, named ``a_b``).

    ``truth`` names the column of true labels for metrics that read them.
    """
    y_true = frame[truth] if truth else frame[outcome]
    out = {}
    for attr in attributes:
        mf = MetricFrame(
            metrics=metric, y_true=y_true, y_pred=frame[outcome], sensitive_features=frame[attr]
        )
        out[attr] = {str(g): float(v) for g, v in mf.by_group.items()}
    if len(attributes) > 1:
        mf = MetricFrame(
            metrics=metric,
            y_true=y_true,
            y_pred=frame[outcome],
            sensitive_features=frame[list(attributes)],
        )
        out[INTERSECTION] = {"_".join(map(str, g)): float(v) for g, v in mf.by_group.items()}
    return out


def flatten(by_attr: dict[str, dict[str, float]]) -> dict[str, float]:
    return {g: v for values in by_attr.values() for g, v in values.items()}


def impact_ratios(by_attr: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each group's rate over the highest rate of its attribute (four-fifths rule)."""
    out = {}
    for values in by_attr.values():
        best = max(values.values(), default=0.0)
        for group, rate in values.items():
            out[group] = rate / best if best > 0 else float("nan")
    return out


def best_groups(by_attr: dict[str, dict[str, float]]) -> dict[str, str]:
    """For every group, the group with the highest rate of its attribute (its reference)."""
    out = {}
    for values in by_attr.values():
        if values:
            best = max(values, key=values.get)
            out.update({g: best for g in values})
    return out


def differences(
    frame: pd.DataFrame,
    outcome: str,
    attributes: Sequence[str],
    metric: Metric,
    truth: str | None = None,
) -> dict[str, float]:
    """The largest between-group difference of ``metric`` per attribute and across the
    intersection (e.g. demographic parity difference, true-positive-rate gap)."""
    out = {}
    y_true = frame[truth] if truth else frame[outcome]
    features = {a: frame[a] for a in attributes}
    if len(attributes) > 1:
        features[INTERSECTION] = frame[list(attributes)]
    for name, sensitive in features.items():
        mf = MetricFrame(
            metrics=metric, y_true=y_true, y_pred=frame[outcome], sensitive_features=sensitive
        )
        out[name] = float(mf.difference())
    return out
