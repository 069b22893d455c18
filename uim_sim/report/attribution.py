"""Attribution: how much of the harm each stage carries (a Shapley split).

A spec's ``attribution`` block names, per stage, the overrides that make it clean (the
pre-training corpus at knob 0, fair adaptation labels, no world feedback); the runner
runs every combination of stages clean or not on the same seeds. Here, per seed,
``v(S)`` is the harm with the stages in ``S`` as specified and the others clean,
measured from the all-clean run (for a harm where lower is worse, such as an impact
ratio: the all-clean value minus this one), the harm averaged over the steps of the
run where it is measured (one step in an audit; every round of a market, whose
single rounds are noisy). A stage's Shapley value is its marginal
contribution ``v(S ∪ {i}) − v(S)`` averaged over the orders in which stages can be
added (Shapley 1953); the values sum to ``v(all stages)``, the total harm, in every
seed, and their mean and 95 % t-interval are taken over seeds. Interactions (two
stages that harm only together) are split equally between them.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from uim_sim.identity import label
from uim_sim.metrics.stats import mean_interval
from uim_sim.report.load import grid_points
from uim_sim.spec import STAGE_PREFIX
from uim_sim.worlds.section import Harm


@dataclass
class Attribution:
    table: pd.DataFrame  # one row per condition × stage (and the total)
    display: pd.DataFrame
    figure: Path | None
    text: str


def shapley(values: dict[frozenset, float], stages: list[str]) -> dict[str, float]:
    """Shapley values of ``stages`` for the game ``values`` (subset → worth; the empty
    set is worth 0)."""
    n = len(stages)
    out = {}
    for stage in stages:
        others = [s for s in stages if s != stage]
        total = 0.0
        for size in range(n):
            weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for subset in itertools.combinations(others, size):
                s = frozenset(subset)
                total += weight * (values[s | {stage}] - values[s])
        out[stage] = total
    return out


def attribute(
    runs: pd.DataFrame, metrics: pd.DataFrame, harm: Harm, folder: Path, spec: dict
) -> Attribution | None:
    """The Shapley split of ``harm`` over the attribution's stages (``spec``: the
    resolved spec of the result folder); None without an attribution."""
    grids = grid_points(runs)
    stages = sorted({k.removeprefix(STAGE_PREFIX) for g in grids for k in g
                     if k.startswith(STAGE_PREFIX)})  # fmt: skip
    if not stages:
        return None
    rows = metrics[(metrics["metric"] == harm.metric) & (metrics["group"] == harm.group)]
    value = rows[rows["step"] >= 1].groupby("run_id")["value"].mean()  # over the run
    varied = {k for g in grids for k in g if k.startswith(STAGE_PREFIX)}
    block = (spec.get("spec") or {}).get("attribution") or {}
    overridden = {k for o in (block.get("stages") or {}).values() for k in o}

    frame = pd.DataFrame({
        # the condition, less the grid keys the attribution varies or overrides
        "condition": [label(card, arm, {k: v for k, v in g.items()
                                        if k not in varied and k not in overridden})
                      for card, arm, g in zip(runs["card"], runs["arm"], grids)],
        "replicate": runs["replicate"].to_numpy(),
        "biased": [frozenset(s for s in stages if not g.get(f"{STAGE_PREFIX}{s}", False))
                   for g in grids],
        "harm": runs["run_id"].map(value).to_numpy(float),
    })  # fmt: skip
    sign = 1.0 if harm.worse == "higher" else -1.0
    rows = []
    for name, members in frame.groupby("condition", sort=False):
        per_seed = []
        for _, seed in members.groupby("replicate"):
            h = dict(zip(seed["biased"], seed["harm"]))
            if len(h) < 2 ** len(stages) or frozenset() not in h:
                continue  # an unfinished combination: leave this seed out
            worth = {s: sign * (h[s] - h[frozenset()]) for s in h}
            per_seed.append({**shapley(worth, stages), "total": worth[frozenset(stages)]})
        if not per_seed:
            continue
        shares = pd.DataFrame(per_seed)
        total = mean_interval(shares["total"].to_numpy())
        for stage in [*stages, "total"]:
            mean, low, high = mean_interval(shares[stage].to_numpy())
            rows.append({
                "condition": name, "stage": stage, "share": mean, "ci_low": low, "ci_high": high,
                "fraction": mean / total[0] if total[0] else np.nan, "seeds": len(shares),
            })  # fmt: skip
    if not rows:
        return None
    table = pd.DataFrame(rows)
    display = pd.DataFrame({
        "card · arm": table["condition"],
        "stage": table["stage"],
        f"harm carried ({harm.label}) [95 % CI]": [
            f"{m:+.3f} [{lo:+.3f}, {hi:+.3f}]" if np.isfinite(lo) else f"{m:+.3f}"
            for m, lo, hi in table[["share", "ci_low", "ci_high"]].to_numpy()
        ],
        "of the total": [f"{f:.0%}" if np.isfinite(f) else "–" for f in table["fraction"]],
        "seeds": table["seeds"].astype(str),
    })  # fmt: skip
    text = (
        f"Where the harm comes from: every combination of the stages "
        f"{', '.join(f'`{s}`' for s in stages)} clean or as specified, on the same seeds. "
        f"The total is how much worse {harm.label} (averaged over the run's steps) is with "
        f"every stage as specified than with every stage clean; each stage's part is its "
        f"Shapley value (its marginal effect averaged over the orders of adding stages), "
        f"per seed, so the parts sum to the total in every seed; mean and 95 % t-interval "
        f"over seeds."
    )
    return Attribution(table, display, _figure(table, harm, folder), text)


def _figure(table: pd.DataFrame, harm: Harm, folder: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conditions = list(dict.fromkeys(table["condition"]))[:6]
    fig, axes = plt.subplots(len(conditions), 1, figsize=(7, 1.2 + 1.1 * len(conditions) * 1.6),
                             squeeze=False)  # fmt: skip
    for ax, condition in zip(axes[:, 0], conditions):
        rows = table[table["condition"] == condition]
        y = np.arange(len(rows))[::-1]
        err = np.nan_to_num(np.abs(np.vstack([rows["share"] - rows["ci_low"],
                                              rows["ci_high"] - rows["share"]])))  # fmt: skip
        colours = ["#555" if s == "total" else "#c62828" for s in rows["stage"]]
        ax.barh(y, rows["share"], xerr=err, color=colours, capsize=3)
        ax.set_yticks(y, rows["stage"])
        ax.axvline(0, color="#999", lw=0.8)
        ax.set_title(condition, fontsize=9)
        ax.set_xlabel(f"harm carried: {harm.label}, as specified vs clean")
    fig.tight_layout()
    path = Path(folder) / "attribution.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
