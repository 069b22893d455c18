"""Reading a result folder for the report: runs (one row per run, with the condition
it belongs to), the summary over seeds, the resolved spec, and decisions on demand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import stats

from uim_sim.schema import UimError


class ReportError(UimError, ValueError):
    """The folder does not hold results to report on, or the report cannot be written."""


def condition_labels(runs: pd.DataFrame) -> pd.Series:
    """A condition is one agent card × mitigation arm × grid point: its replicates are
    the seeds. Label: ``card · arm`` (· grid values)."""

    def label(row) -> str:
        grid = json.loads(row["grid"]) if isinstance(row["grid"], str) else {}
        extra = ",".join(f"{k.removeprefix('corpus.knobs.')}={v}" for k, v in grid.items())
        return f"{row['card']} · {row['mitigation']}" + (f" · {extra}" if extra else "")

    return runs.apply(label, axis=1)


def load_runs(out: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """runs (with ``condition``), metrics and the resolved spec of a result folder."""
    out = Path(out)
    if not out.is_dir():
        raise ReportError(f"{out}: no such folder: run `uim-sim run SPEC --out {out}` first")
    missing = [f for f in ("runs.parquet", "metrics.parquet") if not (out / f).is_file()]
    if missing:
        raise ReportError(
            f"{out}: no {', '.join(missing)}: run `uim-sim run SPEC --out {out}` first"
        )
    runs = pd.read_parquet(out / "runs.parquet")
    if runs.empty:
        raise ReportError(f"{out}: runs.parquet holds no finished run")
    metrics = pd.read_parquet(out / "metrics.parquet")
    spec_file = out / "spec.yaml"
    spec = yaml.safe_load(spec_file.read_text()) if spec_file.is_file() else {}
    return runs.assign(condition=condition_labels(runs)), metrics, spec or {}


def load_decisions(out: Path) -> pd.DataFrame:
    path = Path(out) / "decisions.parquet"
    return pd.read_parquet(path) if path.is_file() else pd.DataFrame()


def summarise(runs: pd.DataFrame, metrics: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Mean and Student-t interval over replicates (the seeds are the independent units;
    with 3–10 of them a bootstrap interval would be too narrow), per condition × step ×
    metric × group. ``n`` counts the seeds with a value."""
    frame = metrics.merge(runs[["run_id", "condition"]], on="run_id")
    frame = frame[np.isfinite(frame["value"])]
    keys = ["condition", "step", "metric", "group"]
    # numpy's mean (not pandas' compensated sum): the same digits as mean_interval
    agg = (
        frame.groupby(keys, sort=False)["value"]
        .agg(mean=lambda v: np.mean(v.to_numpy()), std="std", count="count")
        .reset_index()
    )
    n = agg["count"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = stats.t.ppf(0.5 + level / 2, n - 1) * agg["std"].to_numpy() / np.sqrt(n)
    half = np.where(n >= 2, half, np.nan)
    return pd.DataFrame(
        {
            **{k: agg[k] for k in keys},
            "mean": agg["mean"],
            "ci_low": agg["mean"] - half,
            "ci_high": agg["mean"] + half,
            "n": agg["count"].astype(int),
        }
    )
