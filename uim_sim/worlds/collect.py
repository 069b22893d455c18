"""Scalar DataCollector columns, one per metric and group, and the tidy metric table.

Mesa's plot components and `batch_run` read one number per column, so a world
declares its measures as columns ``metric`` (population level) or
``metric[group]`` (e.g. ``impact_ratio[black]``), computes them once per step as a
bundle, and `tidy` turns the collected columns back into rows of
(step, metric, group, value). A value that is not defined at a step (NaN, e.g. a
rate of a group nobody belongs to yet) has no row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

Bundle = Mapping[str, "float | Mapping[str, float]"]


def column(metric: str, group: str = "") -> str:
    """The DataCollector column of a metric for a group (``metric`` when population-level)."""
    return f"{metric}[{group}]" if group else metric


def split_column(name: str) -> tuple[str, str]:
    """``impact_ratio[black]`` -> (``impact_ratio``, ``black``); ``fped`` -> (``fped``, "")."""
    if name.endswith("]") and "[" in name:
        metric, _, group = name[:-1].partition("[")
        return metric, group
    return name, ""


def columns(declared: Mapping[str, Iterable[str] | None]) -> list[str]:
    """Every column of declared measures: {metric: groups, or None for population-level}."""
    out = []
    for metric, groups in declared.items():
        out += [column(metric)] if groups is None else [column(metric, g) for g in groups]
    return out


def flat(bundle: Bundle) -> dict[str, float]:
    """{metric: value or {group: value}} -> {column: value}."""
    out = {}
    for metric, value in bundle.items():
        if isinstance(value, Mapping):
            out.update({column(metric, g): float(v) for g, v in value.items()})
        else:
            out[column(metric)] = float(value)
    return out


def reporters(names: Iterable[str], measured: Callable) -> dict[str, Callable]:
    """Model reporters reading each column from ``measured(model)`` (a dict of columns,
    computed once per step); a column missing from it is NaN."""
    return {
        "step": lambda m: m.round,
        **{name: (lambda m, name=name: measured(m).get(name, np.nan)) for name in names},
    }


def tidy(model_vars: dict[str, list]) -> pd.DataFrame:
    """The DataCollector's model variables as rows: step, metric, group, value."""
    steps = model_vars["step"]
    rows = []
    for name, values in model_vars.items():
        if name == "step":
            continue
        metric, group = split_column(name)
        rows += [
            {"step": step, "metric": metric, "group": group, "value": float(v)}
            for step, v in zip(steps, values)
            if v is not None and np.isfinite(v)
        ]
    frame = pd.DataFrame(rows, columns=["step", "metric", "group", "value"])
    return frame.sort_values(["step"], kind="stable").reset_index(drop=True)
