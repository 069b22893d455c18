"""The one reader of a result folder, for the report, the comparison, attribution,
dose-response, the page and ``reproduce``: runs (one row per run, its identity as
columns: ``card``, ``arm`` and ``mitigations``, ``grid.*``; with the ``condition`` it
belongs to), the summary over seeds, the resolved spec, and decisions on demand.
Labels come from `uim_sim.identity`; an older folder's strings are parsed here only."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from uim_sim.identity import BASELINE, GRID, label, typed
from uim_sim.metrics.stats import metric_range, t_interval, within
from uim_sim.schema import UimError
from uim_sim.worlds import WORLDS, world_info


class ReportError(UimError, ValueError):
    """The folder does not hold results to report on, or the report cannot be written."""


def grid_points(runs: pd.DataFrame) -> list[dict[str, Any]]:
    """Each run's grid point (its ``grid.*`` columns, without the prefix; a key the run
    does not vary, e.g. a corpus knob of an unforged card, is left out)."""
    columns = sorted(c for c in runs.columns if c.startswith(GRID))
    values = [runs[c].tolist() for c in columns]
    return [
        {c.removeprefix(GRID): v[i] for c, v in zip(columns, values) if not pd.isna(v[i])}
        for i in range(len(runs))
    ]


def condition_labels(runs: pd.DataFrame) -> pd.Series:
    """A condition is one agent card × mitigation arm × grid point: its replicates are
    the seeds. Label: ``card · arm`` (· grid values)."""
    return pd.Series([label(c, a, g) for c, a, g in
                      zip(runs["card"], runs["arm"], grid_points(runs))],
                     index=runs.index, dtype=object)  # fmt: skip


def setting_labels(runs: pd.DataFrame) -> pd.Series:
    """A setting is one agent card × grid point: the arms compared within it share
    their seeds. Label: ``card`` (· grid values)."""
    return pd.Series([label(c, None, g) for c, g in zip(runs["card"], grid_points(runs))],
                     index=runs.index, dtype=object)  # fmt: skip


def _identity(runs: pd.DataFrame) -> pd.DataFrame:
    """A result folder's runs in today's columns: ``arm`` (its name), ``mitigations``
    (the arm as a tuple of mitigation names) and ``grid.*``. An older result folder
    kept the arm in ``mitigation`` and the grid as one JSON string: read here, once."""
    if "arm" not in runs and "mitigation" in runs:
        runs = runs.rename(columns={"mitigation": "arm"})
    if "mitigations" not in runs:
        runs = runs.assign(mitigations=[[] if a == BASELINE else a.split("+")
                                        for a in runs["arm"]])  # fmt: skip
    if "grid" in runs:
        points = [json.loads(g) if isinstance(g, str) and g else {} for g in runs["grid"]]
        columns = sorted({k for p in points for k in p})
        runs = runs.drop(columns="grid").assign(
            **{f"{GRID}{k}": typed([p.get(k) for p in points]) for k in columns}
        )
    return runs.assign(mitigations=[tuple(m) for m in runs["mitigations"]])


def load_runs(out: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """runs (with ``condition``), metrics and the resolved spec of a result folder.

    >>> import tempfile
    >>> from uim_sim.run import plan, run_plan
    >>> spec = {"name": "tiny", "world": "hiring", "cards": ["minilm_zero_shot"],
    ...         "arms": [[], ["name_redaction"]], "replicates": 1,
    ...         "params": {"mode": "audit", "n_jobs": 2, "n_history": 100},
    ...         "statistics": {"null_permutations": 0, "name_permutations": 0}}
    >>> out = Path(tempfile.mkdtemp()) / "tiny"
    >>> run_plan(plan(spec, folder=Path("scenarios")), out).failed
    {}
    >>> runs, metrics, resolved = load_runs(out)
    >>> runs[["arm", "mitigations", "condition"]].to_dict("records")
    [{'arm': 'none', 'mitigations': (), 'condition': 'minilm_zero_shot · none'},
     {'arm': 'name_redaction', 'mitigations': ('name_redaction',),
      'condition': 'minilm_zero_shot · name_redaction'}]
    >>> sorted(metrics.columns), resolved["spec"]["name"]
    (['group', 'metric', 'run_id', 'step', 'value'], 'tiny')
    """
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
    runs = _identity(runs)
    return runs.assign(condition=condition_labels(runs)), metrics, spec or {}


def load_decisions(out: Path) -> pd.DataFrame:
    path = Path(out) / "decisions.parquet"
    return pd.read_parquet(path) if path.is_file() else pd.DataFrame()


def declared_ranges(runs: pd.DataFrame) -> Mapping[str, tuple[float, float] | None]:
    """The ranges the runs' world declares for metrics whose name does not tell
    (`WorldInfo.ranges`; none for a world not registered here)."""
    world = runs["world"].iloc[0] if "world" in runs and len(runs) else None
    return world_info(world).ranges if world in WORLDS else {}


def summarise(runs: pd.DataFrame, metrics: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Mean and Student-t interval over replicates (the seeds are the independent units;
    with 3–10 of them a bootstrap interval would be too narrow), per condition × step ×
    metric × group; for a rate, share or ratio (`metric_range`) the interval on the
    logit or log scale, inside the metric's range (`t_interval`). ``n`` counts the seeds
    with a value."""
    frame = metrics.merge(runs[["run_id", "condition"]], on="run_id")
    frame = frame[np.isfinite(frame["value"])]
    keys = ["condition", "step", "metric", "group"]
    # numpy's mean (not pandas' compensated sum): the same digits as mean_interval
    agg = (
        frame.groupby(keys, sort=False)["value"]
        .agg(mean=lambda v: np.mean(v.to_numpy()), std="std", count="count", lo="min", hi="max")
        .reset_index()
    )
    declared = declared_ranges(runs)
    ranges = {m: metric_range(m, declared) for m in agg["metric"].unique()}
    bounds = [ranges[m] if within(ranges[m], lo, hi) else None
              for m, lo, hi in zip(agg["metric"], agg["lo"], agg["hi"])]  # fmt: skip
    low, high = t_interval(agg["mean"], agg["std"], agg["count"], bounds, level)
    return pd.DataFrame(
        {
            **{k: agg[k] for k in keys},
            "mean": agg["mean"],
            "ci_low": low,
            "ci_high": high,
            "n": agg["count"].astype(int),
        }
    )
