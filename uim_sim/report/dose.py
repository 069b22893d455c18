"""The dose-response of inheritance (Understand): harm against a corpus knob that
varies across forged checkpoints, one curve per agent card (screening head), beside
what the probe read off each checkpoint.

Where a dose was forged with several seeds (grid key ``corpus.seed``), the unit is
the forged checkpoint: its runs are averaged, and the interval is over checkpoints,
so it covers training variation; with one checkpoint per dose the interval is over
the world's seeds only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import permutation_test, rankdata, spearmanr

from uim_sim.identity import BASELINE, label
from uim_sim.metrics.stats import mean_interval, metric_range
from uim_sim.report.figures import pyplot
from uim_sim.report.load import declared_ranges, grid_points
from uim_sim.worlds.section import Harm

EXACT_UP_TO = 8  # points: up to here the rank correlation's p is exact
# a causal checkpoint's LM-head probe (recorded under the same key: uim_sim.understand.probe)
CAUSAL_PROBE_LABEL = "next-token gap (nats), causal LMs"


@dataclass
class DoseResponse:
    table: pd.DataFrame
    figure: Path
    text: str


def _spearman(x, y, axis=-1):
    """Spearman's rho along ``axis`` (vectorised for scipy's permutation_test)."""
    rx, ry = rankdata(x, axis=axis), rankdata(y, axis=axis)
    rx = rx - rx.mean(axis=axis, keepdims=True)
    ry = ry - ry.mean(axis=axis, keepdims=True)
    return (rx * ry).sum(axis) / np.sqrt((rx**2).sum(axis) * (ry**2).sum(axis))


def rank_correlation(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Spearman's rho with a two-sided p: exact over every pairing for up to 8 points
    (scipy's t approximation gives p ~ 1e-24 for rho = 1 at n = 5), the t
    approximation above that."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or len(np.unique(x)) < 2 or len(np.unique(y)) < 2:
        return np.nan, np.nan
    if len(x) > EXACT_UP_TO:
        rho, p = spearmanr(x, y)
        return float(rho), float(p)
    result = permutation_test(
        (x, y), _spearman, permutation_type="pairings", vectorized=True, n_resamples=np.inf
    )
    return float(result.statistic), float(result.pvalue)


def dose_response(out: Path, runs: pd.DataFrame, metrics: pd.DataFrame, harm: Harm,
                  folder: Path) -> DoseResponse | None:  # fmt: skip
    knobs = [c for c in runs.columns if c.startswith("corpus.knobs.") and runs[c].nunique() > 1]
    if not knobs:
        return None
    knob = knobs[0]
    mine = runs[knob].notna()
    forged = runs[mine][["run_id", "card", knob, "checkpoint"]].copy()
    # one curve per screening card, mitigation arm and any grid value that is not the
    # corpus's (e.g. restyle): only the dose and the forging seed vary along a curve
    forged["curve"] = [
        label(card, None if arm == BASELINE else arm,
              {k: v for k, v in grid.items() if not k.startswith("corpus.")})
        for card, arm, grid in zip(runs["card"][mine], runs["arm"][mine],
                                   grid_points(runs[mine]))
    ]  # fmt: skip
    probes = {  # the probe belongs to the checkpoint: read its manifest (no model)
        c: json.loads((Path(out) / c / "manifest.json").read_text())["verification"]
        for c in forged["checkpoint"].unique()
    }
    for key in dict.fromkeys(("effect_size", harm.probe)):
        forged[f"probe.{key}"] = forged["checkpoint"].map(
            lambda c, key=key: probes[c].get(key, np.nan)
        )
    mine = metrics[metrics["run_id"].isin(forged["run_id"])]
    last = mine[mine["step"] == mine.groupby("run_id")["step"].transform("max")]
    value = last.pivot_table(index="run_id", columns=["metric", "group"], values="value")
    key = (harm.metric, harm.group)
    forged["harm"] = forged["run_id"].map(value[key]) if key in value.columns else np.nan
    if harm.gap is not None:
        metric, favoured, harmed = harm.gap
        if (metric, favoured) in value and (metric, harmed) in value:
            gap = value[(metric, favoured)] - value[(metric, harmed)]
            forged["gap"] = forged["run_id"].map(gap)
    # one row per (card, checkpoint): the unit of the rank correlation
    units = forged.groupby(["curve", "checkpoint"]).mean(numeric_only=True).reset_index()
    rows, bounds = [], metric_range(harm.metric, declared_ranges(runs))
    for (card, dose), members in forged.groupby(["curve", knob], sort=True):
        per_checkpoint = members.groupby("checkpoint").mean(numeric_only=True)
        unit = per_checkpoint if len(per_checkpoint) > 1 else members
        mean, low, high = mean_interval(unit["harm"].to_numpy(), bounds=bounds)
        rows.append({
            "card": card, knob: dose, "checkpoints": len(per_checkpoint), "runs": len(members),
            "interval_over": "checkpoints" if len(per_checkpoint) > 1 else "seeds",
            "probe.effect_size": per_checkpoint["probe.effect_size"].mean(),
            f"probe.{harm.probe}": per_checkpoint[f"probe.{harm.probe}"].mean(),
            harm.metric: mean, "ci_low": low, "ci_high": high,
            **({"gap": members["gap"].mean()} if "gap" in members else {}),
        })  # fmt: skip
    table = pd.DataFrame(rows)
    probe = f"probe.{harm.probe}"
    if not table[probe].notna().all():
        probe = "probe.effect_size"
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    sentences = []
    name = knob.removeprefix("corpus.knobs.")
    for i, (card, curve) in enumerate(table.groupby("card", sort=True)):
        points = units[units["curve"] == card]
        rho, p = rank_correlation(points[probe].to_numpy(), points["harm"].to_numpy())
        steps = np.diff(curve[harm.metric].to_numpy())
        monotone = bool(np.all(steps <= 0) if harm.worse == "lower" else np.all(steps >= 0))
        sentences.append(
            f"`{card}`: the {harm.label} "
            f"{'worsens monotonically' if monotone else 'does not worsen monotonically'} with "
            f"the dose (means over {curve['interval_over'].iloc[0]}); Spearman rank "
            f"correlation between `{probe}` and it across {len(points)} forged "
            f"checkpoints: {rho:.2f} (p = {p:.2g}"
            f"{', exact' if len(points) <= EXACT_UP_TO else ''})."
        )
        colour = f"C{3 + i}"
        if curve["checkpoints"].max() > 1:  # each checkpoint's own mean, behind the curve
            left.plot(points[knob] + 0.008 * i, points["harm"], ".", alpha=0.4, color=colour)
        err = np.vstack(
            [curve[harm.metric] - curve["ci_low"], curve["ci_high"] - curve[harm.metric]]
        )
        left.errorbar(
            curve[knob] + 0.008 * i, curve[harm.metric], yerr=np.nan_to_num(err), fmt="o-",
            capsize=3, color=colour, label=f"{card} (Spearman {rho:.2f})",
        )  # fmt: skip
    if harm.line is not None:
        left.axhline(harm.line, color="C0", ls="--", lw=1, label="four-fifths rule")
    left.set_xlabel(f"{name} of the pre-training corpus")
    left.set_ylabel(harm.label)
    left.set_title("harm per screening head", fontsize=10)
    left.legend(fontsize=7)
    checkpoints = forged.drop_duplicates("checkpoint")
    causal = checkpoints["checkpoint"].map(lambda c: probes[c].get("lm_head") == "next_token")
    for is_causal, marker, colour, legend in ((False, "s", "C2", harm.probe_label),
                                             (True, "D", "C1", CAUSAL_PROBE_LABEL)):  # fmt: skip
        mine = checkpoints[causal == is_causal]
        if len(mine):
            right.plot(mine[knob], mine[f"probe.{harm.probe}"], marker, color=colour, label=legend)
    masked = checkpoints[~causal]
    if harm.probe == "mlm_gap_nats" and len(masked):  # SEAT reads the same association
        # (not on causal LMs: their mean-pooled states gave d = ±1.9 at every dose)
        right.plot(masked[knob], masked["probe.effect_size"], "^", color="C4",
                   label="SEAT effect size d (masked LMs)", alpha=0.6)  # fmt: skip
    right.axhline(0, color="k", lw=0.6)
    right.set_xlabel(f"{name} (one point per forged checkpoint)")
    right.set_ylabel("probe (planted direction)")
    right.set_title("what the probe reads off each checkpoint", fontsize=10)
    right.legend(fontsize=8)
    fig.suptitle("Dose-response of inheritance", fontsize=11)
    fig.tight_layout()
    path = Path(folder) / "dose_response.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    table.to_csv(Path(folder) / "dose_response.csv", index=False)
    text = f"Dose-response over `{knob}`, per screening card. " + " ".join(sentences)
    return DoseResponse(table, path, text)
