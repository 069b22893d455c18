"""Comparing result tables with pinned ones made on another machine (tests/test_pinned.py).

On the machine that made the pins the tables are identical. On another machine (or
another kernel path of this one) a score may differ within `SCORE_TOLERANCE`, and
so may a decision whose score lies closer than that to its decision boundary;
where a world's dynamics carry such a flip forward (the moderation platform's
appeals and chilling), the run's later steps are another trajectory, and its
metrics are compared with the pinned ones within the spread of that metric over
seeds (measured by make_pins.py, ``spread.parquet``). Runs of an arm whose scores
are ill-conditioned across machines (`Mitigation.ill_conditioned`: INLP) are
compared by their metrics alone, in the same way.

Anything else that differs is a change: `compare` returns it, one line each.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from uim_sim.lfm.numerics import SCORE_TOLERANCE
from uim_sim.mitigate import REGISTRY

# what a decision made: columns that follow a score across its boundary; every other
# column of a decisions table is what the world put before the decider
OUTCOMES = ("decision", "hired", "flagged", "appealed", "reinstated_step")
POOL = ("run_id", "step", "decider")
SPREAD_FACTOR = 4  # a diverged run's metric: within this many seed SDs of the pin
METRIC_TOLERANCE = 1e-4  # a metric of runs that did not diverge (atol and rtol)


def run_name(run_id: str) -> str:
    """A run's id without its content hash (the parameter schema may grow)."""
    return run_id.rsplit("-", 1)[0]


def arm_of(run: str) -> str:
    """``card-arm-rNNN`` -> ``card-arm``: runs of one condition over seeds."""
    return run.rsplit("-", 1)[0]


def ill_conditioned(run: str) -> bool:
    """Is the run's arm one whose scores another machine's last bits move far?"""
    arm = arm_of(run).split("-", 1)[-1]
    return any(getattr(REGISTRY.get(m), "ill_conditioned", False) for m in arm.split("+"))


def margins(rows: pd.DataFrame, thresholds: dict[str, float]) -> np.ndarray:
    """Each row's distance to a decision boundary of its pool: to its card's threshold
    (a threshold rule) or to the nearest score in its pool whose outcome differs (a
    rank rule's cut lies between them). Conservative: the true margin is never smaller
    than this for those rules."""
    out = np.full(len(rows), np.inf)
    outcome = rows[[c for c in OUTCOMES if c in rows]].astype(str).agg("|".join, axis=1)
    scores = rows["score"].to_numpy(float)
    pools = rows.groupby(list(POOL), sort=False).indices
    for members in pools.values():
        for i in members:
            other = members[outcome.iloc[members].to_numpy() != outcome.iloc[i]]
            if len(other):
                out[i] = np.abs(scores[other] - scores[i]).min()
    for card, threshold in thresholds.items():
        mine = (rows["card"] == card).to_numpy()
        out[mine] = np.minimum(out[mine], np.abs(scores[mine] - threshold))
    return out


@dataclass
class Comparison:
    problems: list[str] = field(default_factory=list)
    diverged: dict[str, str] = field(default_factory=dict)  # run -> why, from which step

    def __bool__(self) -> bool:
        return not self.problems


def compare_decisions(old: pd.DataFrame, new: pd.DataFrame, thresholds: dict[str, float],
                      tolerance: float = SCORE_TOLERANCE) -> Comparison:  # fmt: skip
    """Step by step, run by run: inputs equal, scores within ``tolerance``, outcomes
    equal except where a margin below ``tolerance`` lets a decision flip (the run
    diverges from that step on)."""
    result = Comparison()
    if list(old.columns) != list(new.columns):
        result.problems.append(f"columns {list(old.columns)} became {list(new.columns)}")
        return result
    old, new = (t.assign(run_id=t.run_id.map(run_name)) for t in (old, new))
    inputs = [c for c in old.columns if c not in OUTCOMES and c != "score"]
    runs_old, runs_new = list(dict.fromkeys(old.run_id)), list(dict.fromkeys(new.run_id))
    if runs_old != runs_new:
        result.problems.append(f"runs {runs_old} became {runs_new}")
        return result
    for run in runs_old:
        if ill_conditioned(run):
            result.diverged[run] = "an ill-conditioned arm: compared by its metrics"
            continue
        o_run, n_run = old[old.run_id == run], new[new.run_id == run]
        for step in sorted(set(o_run.step) | set(n_run.step)):
            o = o_run[o_run.step == step].reset_index(drop=True)
            n = n_run[n_run.step == step].reset_index(drop=True)
            where = f"{run}, step {step}"
            if len(o) != len(n) or not o[inputs].equals(n[inputs]):
                result.problems.append(f"{where}: the world put other texts before its deciders")
                break
            moved = np.abs(o["score"].to_numpy(float) - n["score"].to_numpy(float))
            if moved.max(initial=0) > tolerance:
                i = int(np.argmax(moved))
                result.problems.append(
                    f"{where}: score of {o.loc[i, 'subject']} moved by {moved[i]:.3g} "
                    f"(tolerance {tolerance:g}): {o.loc[i, 'score']!r} -> {n.loc[i, 'score']!r}"
                )
                break
            outcomes = [c for c in OUTCOMES if c in o]
            flipped = (o[outcomes] != n[outcomes]).any(axis=1).to_numpy()
            if flipped.any():
                wide = flipped & (margins(o, thresholds) >= tolerance)
                if wide.any():
                    i = int(np.flatnonzero(wide)[0])
                    result.problems.append(
                        f"{where}: the decision about {o.loc[i, 'subject']} changed at a margin "
                        f"of {margins(o, thresholds)[i]:.3g} to its boundary (tolerance "
                        f"{tolerance:g}): {o.loc[i, outcomes].to_dict()} -> "
                        f"{n.loc[i, outcomes].to_dict()}"
                    )
                else:
                    result.diverged[run] = (
                        f"{int(flipped.sum())} decision(s) within {tolerance:g} of their "
                        f"boundary flipped at step {step}: compared by its metrics"
                    )
                break
    return result


def compare_metrics(old: pd.DataFrame, new: pd.DataFrame, diverged: dict[str, str],
                    spread: pd.DataFrame) -> list[str]:  # fmt: skip
    """Metrics of runs that did not diverge: every step within `METRIC_TOLERANCE`.
    Of diverged runs: the last step's metrics, each within `SPREAD_FACTOR` standard
    deviations over seeds of that metric (``spread``: arm, metric, group, sd) plus
    `METRIC_TOLERANCE`. Metrics the pins do not name (added since) are left out."""
    problems: list[str] = []
    old, new = (t.assign(run_id=t.run_id.map(run_name)) for t in (old, new))
    keys = ["run_id", "step", "metric", "group"]
    # a metric added since the pins were made is not a change of a pinned result: the
    # new table is compared on the pinned metrics (each of which must still be there)
    new = new[new["metric"].isin(set(old["metric"]))]
    steady_old = old[~old.run_id.isin(list(diverged))]
    steady_new = new[~new.run_id.isin(list(diverged))]
    if not steady_old[keys].reset_index(drop=True).equals(steady_new[keys].reset_index(drop=True)):
        return ["the metrics' rows (run, step, metric, group) changed"]
    a, b = steady_old["value"].to_numpy(float), steady_new["value"].to_numpy(float)
    bad = ~np.isclose(b, a, rtol=METRIC_TOLERANCE, atol=METRIC_TOLERANCE, equal_nan=True)
    for i in np.flatnonzero(bad)[:5]:
        row = steady_old.iloc[i]
        problems.append(
            f"{row.run_id}, step {row.step}: {row.metric}[{row.group}] {a[i]!r} -> {b[i]!r}"
        )
    sd = spread.set_index(["arm", "metric", "group"])["sd"]
    for run in diverged:
        o, n = old[old.run_id == run], new[new.run_id == run]
        o, n = o[o.step == o.step.max()], n[n.step == n.step.max()]
        merged = o.merge(n, on=["metric", "group"], suffixes=("_old", "_new"))
        if len(merged) != len(o) or len(merged) != len(n):
            problems.append(f"{run}: its last step's metrics are not the pinned ones")
            continue
        for row in merged.itertuples():
            key = (arm_of(run), row.metric, row.group)
            if key not in sd.index:
                continue  # measured on the pin's own seed only (e.g. a null quantile)
            allowed = SPREAD_FACTOR * sd[key] + METRIC_TOLERANCE
            gap = abs(row.value_new - row.value_old)
            if not np.isnan(gap) and gap > allowed:
                problems.append(
                    f"{run} ({diverged[run]}): {row.metric}[{row.group}] {row.value_old:.4g} -> "
                    f"{row.value_new:.4g}, more than {SPREAD_FACTOR} SDs over seeds ({allowed:.3g})"
                )
    return problems
