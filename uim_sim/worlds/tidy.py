"""Tidy metric tables from a Mesa DataCollector, shared by every world."""

from __future__ import annotations

import pandas as pd


def tidy(model_vars: dict[str, list]) -> pd.DataFrame:
    """Flatten reporter values (a number, {group: number}, or a ``*`` bundle of them)."""
    rows = []
    for i, step in enumerate(model_vars["step"]):
        for name, values in model_vars.items():
            if name == "step":
                continue
            value = values[i]
            bundle = value if name.startswith("*") else {name: value}
            for metric, v in bundle.items():
                items = v.items() if isinstance(v, dict) else [("", v)]
                rows.extend(
                    {"step": step, "metric": metric, "group": g, "value": float(x)}
                    for g, x in items
                )
    return pd.DataFrame(rows, columns=["step", "metric", "group", "value"])
