"""Interventions against no mitigation: paired differences over seeds.

Every mitigation arm of a spec runs on the same seeds as the arm without one (the
runner derives a run's seed from its replicate, not its arm: common random numbers),
so an arm's effect is read as the paired difference, seed by seed, of the world's
harm (its section's `Harm`) and utility (`Utility`) against the ``none`` arm of the
same card and grid point: the mean and a 95 % Student-t interval over seeds. Pairing
removes the variation the seeds share (the applicants, posts, networks drawn), which
is most of it, so a paired interval is much narrower than the difference of two
unpaired ones.

Beside the last step (the long run) the first step after setup is compared too, so
an intervention that helps now and harms later (Liu et al. 2018, delayed impact) is
visible. An arm is *dominated* when another arm of the same card and grid point (or
no mitigation) is at least as good on harm and on utility and better on one; the
harm-versus-utility figure marks the others. Warnings name arms whose interval
spans zero (too few seeds to tell the effect from no effect) and effects smaller
than the world's null band (what chance alone moves the harm by).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from uim_sim.identity import BASELINE
from uim_sim.metrics.stats import mean_interval
from uim_sim.report.load import setting_labels
from uim_sim.worlds.section import Harm, Utility

MARKERS = "oDv^<>PXhp*d"  # one per arm in the harm-utility figure (then repeated)


@dataclass
class Comparison:
    table: pd.DataFrame  # numbers, one row per card · grid point · arm
    display: pd.DataFrame
    figure: Path | None
    warnings: list[str]
    text: str


def _per_run(metrics: pd.DataFrame, metric: str, groups: tuple[str, ...], step: str) -> pd.Series:
    """One value per run: ``metric`` averaged over ``groups`` at the run's first
    (step 1) or last step."""
    rows = metrics[(metrics["metric"] == metric) & metrics["group"].isin(groups)]
    if rows.empty:
        return pd.Series(dtype=float)
    if step == "last":
        rows = rows[rows["step"] == rows.groupby("run_id")["step"].transform("max")]
    else:
        rows = rows[rows["step"] == 1]
    return rows.groupby("run_id")["value"].mean()


def _paired(arm: pd.Series, base: pd.Series) -> tuple[float, float, float, int]:
    both = pd.concat([arm, base], axis=1, keys=["arm", "base"]).dropna()
    diff = (both["arm"] - both["base"]).to_numpy(float)
    mean, low, high = mean_interval(diff)
    return mean, low, high, len(diff)


def _better(delta: float, worse: str) -> float:
    """A change expressed as improvement: positive is better."""
    return -delta if worse == "higher" else delta


def compare(
    runs: pd.DataFrame,
    metrics: pd.DataFrame,
    harm: Harm,
    utility: Utility | None,
    folder: Path,
    outcomes: tuple[Utility, ...] = (),
) -> Comparison | None:
    """The comparison of every arm with ``none``; None where there is nothing to pair.
    ``outcomes``: more measures whose paired change is shown (e.g. false reach)."""
    arms = list(dict.fromkeys(runs["arm"]))
    if BASELINE not in arms or len(arms) < 2:
        return None
    runs = runs.assign(setting=setting_labels(runs))
    harm_last = _per_run(metrics, harm.metric, (harm.group,), "last")
    harm_first = _per_run(metrics, harm.metric, (harm.group,), "first")
    # a harm measured at the first step as well as later ones (some are final-only)
    multi_step = not harm_first.empty and int(metrics["step"].max()) > 1
    util = (
        _per_run(metrics, utility.metric, utility.groups, "last")
        if utility
        else pd.Series(dtype=float)
    )
    more = {f"outcome{i}": _per_run(metrics, o.metric, o.groups, "last")
            for i, o in enumerate(outcomes)}  # fmt: skip
    null = _null_width(runs, metrics, harm)
    rows = []
    for setting, members in runs.groupby("setting", sort=False):
        base_ids = members[members["arm"] == BASELINE].set_index("replicate")["run_id"]
        if base_ids.empty:
            continue
        for arm, arm_runs in members.groupby("arm", sort=False):
            if arm == BASELINE:
                continue
            ids = arm_runs.set_index("replicate")["run_id"]
            row = {"setting": setting, "card": arm_runs["card"].iloc[0], "arm": arm}
            measures = {"harm": harm_last, "harm_first": harm_first, "utility": util, **more}
            for key, values in measures.items():
                if values.empty or (key == "harm_first" and not multi_step):
                    continue
                arm_v = ids.map(values)
                base_v = base_ids.map(values)
                mean, low, high, n = _paired(arm_v, base_v)
                row |= {f"d_{key}": mean, f"d_{key}_low": low, f"d_{key}_high": high}
                row[f"n_{key}"] = n
            row["seeds"] = row.get("n_harm", 0)
            row["base_harm"] = float(base_ids.map(harm_last).mean())
            row["null_width"] = null.get(setting, np.nan)
            rows.append(row)
    if not rows:
        return None
    table = pd.DataFrame(rows)
    table["dominated"] = _dominated(table, harm.worse)
    warnings = _warnings(table, harm, utility)
    display = shown(table, harm, utility, outcomes)
    multi_step = multi_step and "d_harm_first" in table
    figure = _figure(table, harm, utility, folder) if utility else None
    text = (
        f"Each arm against no mitigation, seed by seed (the arms share seeds): the change "
        f"in {harm.label} (`{harm.metric}`; {harm.worse} is worse) and in "
        + (f"{utility.label} (`{utility.metric}`; {utility.better} is better)" if utility
           else "no utility measure") + ", mean and 95 % t-interval over seeds."
        + (" The first step after setup is shown beside the last: an arm that helps at "
           "first and harms later is flagged." if multi_step else "")
        + "".join(f" Also: {o.label} (`{o.metric}`; {o.better} is better)." for o in outcomes)
        + " Arms another arm beats on both harm and utility are marked dominated."
    )  # fmt: skip
    return Comparison(table, display, figure, warnings, text)


def _null_width(runs: pd.DataFrame, metrics: pd.DataFrame, harm: Harm) -> dict[str, float]:
    """Per setting: the width of the harm's null band (97.5 % − 2.5 % quantile) in the
    arm without mitigation, where the world reports one."""
    low = _per_run(metrics, f"{harm.metric}_null_q025", (harm.group,), "last")
    high = _per_run(metrics, f"{harm.metric}_null_q975", (harm.group,), "last")
    if low.empty or high.empty:
        return {}
    base = runs[runs["arm"] == BASELINE]
    width = (base["run_id"].map(high) - base["run_id"].map(low)).groupby(base["setting"]).mean()
    return width.to_dict()


def _dominated(table: pd.DataFrame, worse: str) -> pd.Series:
    """Is another arm of the setting (or no mitigation, at zero change) at least as good
    on harm and utility and better on one?"""
    out = pd.Series(False, index=table.index)
    if "d_utility" not in table:
        return out
    for _, members in table.groupby("setting", sort=False):
        h = _better(members["d_harm"].to_numpy(float), worse)
        u = members["d_utility"].to_numpy(float)
        points = np.vstack([np.column_stack([h, u]), [0.0, 0.0]])
        for i, index in enumerate(members.index):
            others = np.delete(points, i, axis=0)
            beats = (others >= points[i]).all(1) & (others > points[i]).any(1)
            out[index] = bool(beats.any())
    return out


def _warnings(table: pd.DataFrame, harm: Harm, utility: Utility | None) -> list[str]:
    out = []
    for row in table.itertuples():
        where = f"{row.setting} · {row.arm}"
        if np.isfinite(row.d_harm_low) and row.d_harm_low <= 0 <= row.d_harm_high:
            out.append(
                f"{where}: the change in {harm.label}, {row.d_harm:+.3f} "
                f"[{row.d_harm_low:+.3f}, {row.d_harm_high:+.3f}], cannot be told from no "
                f"change with {row.seeds} seeds; more seeds would narrow it"
            )
        elif np.isfinite(row.null_width) and abs(row.d_harm) < row.null_width / 2:
            out.append(
                f"{where}: the change in {harm.label} ({row.d_harm:+.3f}) is smaller than "
                f"half the null band's width ({row.null_width:.3f}): within what chance "
                "alone gives one run"
            )
        first = getattr(row, "d_harm_first", np.nan)
        if np.isfinite(first) and _later_harm(row, harm.worse):
            out.append(
                f"{where}: helps at the first step ({first:+.3f}) and harms in the long run "
                f"({row.d_harm:+.3f}): a delayed impact (Liu et al. 2018)"
            )
    return out


def _later_harm(row, worse: str) -> bool:
    now = _better(row.d_harm_first, worse), _better(row.d_harm_first_low, worse)
    later = _better(row.d_harm, worse), _better(row.d_harm_high, worse)
    helps_now = min(now) > 0  # the whole interval on the better side
    harms_later = max(later) < 0
    return bool(helps_now and harms_later)


def _cell(mean: float, low: float, high: float) -> str:
    if not np.isfinite(mean):
        return "–"
    if not np.isfinite(low):
        return f"{mean:+.3f}"
    return f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]"


def shown(table: pd.DataFrame, harm: Harm, utility: Utility | None,
          outcomes: tuple[Utility, ...] = ()) -> pd.DataFrame:  # fmt: skip
    """The comparison (`compare`'s table, or ``interventions.csv`` read back) for people:
    labels, changes as "+0.120 [+0.050, +0.190]"."""
    multi = "d_harm_first" in table and bool(table["d_harm_first"].notna().any())
    out = pd.DataFrame({"card · grid": table["setting"], "arm": table["arm"]})
    out[f"{harm.label} without"] = table["base_harm"].map(lambda v: f"{v:.3f}")
    if multi:
        out[f"Δ {harm.label}, first step"] = [
            _cell(*v) for v in table[["d_harm_first", "d_harm_first_low", "d_harm_first_high"]]
            .to_numpy()
        ]  # fmt: skip
    out[f"Δ {harm.label}, last step [95 % CI]"] = [
        _cell(*v) for v in table[["d_harm", "d_harm_low", "d_harm_high"]].to_numpy()
    ]
    if utility is not None and "d_utility" in table:
        out[f"Δ {utility.label} [95 % CI]"] = [
            _cell(*v) for v in table[["d_utility", "d_utility_low", "d_utility_high"]].to_numpy()
        ]
    for i, outcome in enumerate(outcomes):
        key = f"d_outcome{i}"
        if key in table:
            out[f"Δ {outcome.label} [95 % CI]"] = [
                _cell(*v) for v in table[[key, f"{key}_low", f"{key}_high"]].to_numpy()
            ]
    if "d_utility" in table:
        out["dominated"] = np.where(table["dominated"], "yes", "")
    out["seeds"] = table["seeds"].astype(int).astype(str)
    return out


def _figure(table: pd.DataFrame, harm: Harm, utility: Utility, folder: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if "d_utility" not in table:
        return None
    settings = list(dict.fromkeys(table["setting"]))[:9]
    cols = min(3, len(settings))
    rows = -(-len(settings) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(6.5 * cols + 2, 5.2 * rows), squeeze=False, layout="constrained"
    )
    # each arm its own marker and colour, named in one legend (labels beside the points
    # printed over one another where arms' changes were alike); hollow: dominated
    arms = list(dict.fromkeys(table["arm"]))
    style = {arm: (MARKERS[i % len(MARKERS)], f"C{i % 10}") for i, arm in enumerate(arms)}
    for ax, setting in zip(axes.flat, settings):
        members = table[table["setting"] == setting]
        x = _better(members["d_harm"].to_numpy(float), harm.worse)
        y = members["d_utility"].to_numpy(float)
        xerr = np.abs(np.vstack([x - _better(members["d_harm_low"], harm.worse),
                                 _better(members["d_harm_high"], harm.worse) - x]))  # fmt: skip
        yerr = np.abs(np.vstack([y - members["d_utility_low"], members["d_utility_high"] - y]))
        dominated = members["dominated"].to_numpy(bool)
        for i, arm in enumerate(members["arm"]):
            marker, colour = style[arm]
            ax.errorbar(x[i], y[i], xerr=np.nan_to_num(xerr[:, i : i + 1]),
                        yerr=np.nan_to_num(yerr[:, i : i + 1]), fmt=marker, capsize=3,
                        color=colour, mfc="none" if dominated[i] else colour, ms=7,
                        label=arm)  # fmt: skip
        ax.scatter([0], [0], marker="s", color="black", label="no mitigation")
        ax.axhline(0, color="#bbb", lw=0.8)
        ax.axvline(0, color="#bbb", lw=0.8)
        ax.set_title(setting, fontsize=9)
        ax.set_xlabel(f"improvement in {harm.label}")
        ax.set_ylabel(f"change in {utility.label}")
    for ax in list(axes.flat)[len(settings) :]:
        ax.axis("off")
    handles = {}
    for ax in axes.flat:
        handles.update(zip(*reversed(ax.get_legend_handles_labels())))
    fig.legend(handles.values(), handles.keys(), fontsize=7, loc="outside right upper",
               title="arm (hollow: dominated)", title_fontsize=7)  # fmt: skip
    path = Path(folder) / "interventions.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
