"""Reports: per condition, the mean and a 95 % interval over seeds of every metric.

A condition is one agent card × mitigation arm × grid point; its replicates are
the seeds. Intervals are Student-t intervals over replicate means (seeds are the
independent units; with 3–10 seeds a bootstrap interval would be too narrow).
Beside each impact ratio the report shows its null reference (the same pipeline
with permuted adaptation labels, or names reassigned to groups) and a p-value
that treats the name as the unit, pooled over all seeds of the condition.

Writes, under the report folder: ``summary.md``, ``summary.csv`` (headline
table), ``metrics_summary.csv`` (every metric), PNG figures and ``index.html``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from uim_sim.metrics.stats import cluster_permutation_p, mean_interval
from uim_sim.report_moderation import moderation_section

PROTECTED = {
    "black": ("race", "white"),
    "white": ("race", "black"),
    "female": ("gender", "male"),
    "male": ("gender", "female"),
}


class ReportError(ValueError):
    """The folder does not hold results to report on."""


@dataclass
class Report:
    folder: Path
    headline: pd.DataFrame
    summary: pd.DataFrame
    figures: list[Path]


def _conditions(runs: pd.DataFrame) -> pd.Series:
    def label(row) -> str:
        grid = json.loads(row["grid"]) if isinstance(row["grid"], str) else {}
        extra = ",".join(f"{k.removeprefix('corpus.knobs.')}={v}" for k, v in grid.items())
        return f"{row['card']} · {row['mitigation']}" + (f" · {extra}" if extra else "")

    return runs.apply(label, axis=1)


def load_results(out: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    out = Path(out)
    missing = [f for f in ("runs.parquet", "metrics.parquet") if not (out / f).is_file()]
    if missing:
        raise ReportError(
            f"{out}: no {', '.join(missing)}: run `uim-sim run SPEC --out {out}` first"
        )
    runs = pd.read_parquet(out / "runs.parquet")
    if runs.empty:
        raise ReportError(f"{out}: runs.parquet holds no finished run")
    metrics = pd.read_parquet(out / "metrics.parquet")
    decisions_file = out / "decisions.parquet"
    decisions = pd.read_parquet(decisions_file) if decisions_file.is_file() else pd.DataFrame()
    runs = runs.assign(condition=_conditions(runs))
    runs.attrs["out"] = str(out)  # sections read checkpoint manifests under it
    return runs, metrics, decisions


def summarise(runs: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean and 95 % interval over replicates, per condition × step × metric × group."""
    frame = metrics.merge(runs[["run_id", "condition"]], on="run_id")
    rows = []
    for (condition, step, metric, group), values in frame.groupby(
        ["condition", "step", "metric", "group"], sort=False
    )["value"]:
        mean, lo, hi = mean_interval(values.to_numpy())
        rows.append(
            {
                "condition": condition,
                "step": step,
                "metric": metric,
                "group": group,
                "mean": mean,
                "ci_low": lo,
                "ci_high": hi,
                "n": int(values.notna().sum()),
            }
        )
    return pd.DataFrame(rows)


def _pooled_name_p(
    decisions: pd.DataFrame, run_ids: list[str], attr: str, group: str, reference: str
) -> float:
    """Name-level permutation p over all replicates of a condition (audit only)."""
    if decisions.empty or "first_name" not in decisions:
        return float("nan")
    frame = decisions[decisions["run_id"].isin(run_ids)]
    frame = frame[frame["step"] == frame["step"].max()]
    strata = "gender" if attr == "race" else "race"
    rng = np.random.default_rng(0)
    return cluster_permutation_p(
        frame, "decision", "first_name", attr, group, reference, 4000, rng, strata
    )


def headline(runs: pd.DataFrame, summary: pd.DataFrame, decisions: pd.DataFrame) -> pd.DataFrame:
    """One row per condition: the disadvantaged group's impact ratio and its context."""
    disadvantaged = runs["param.disadvantaged"].iloc[0]
    attr, reference = PROTECTED[disadvantaged]
    mode = runs["param.mode"].iloc[0]
    last = summary[summary["step"] == summary.groupby("condition")["step"].transform("max")]
    rate = "callback_rate" if mode == "audit" else "hire_rate"

    def pick(condition: str, metric: str, group: str) -> pd.Series | None:
        hit = last[(last.condition == condition) & (last.metric == metric) & (last.group == group)]
        return hit.iloc[0] if len(hit) else None

    rows = []
    for condition, members in runs.groupby("condition", sort=False):
        row = {"condition": condition, "runs": len(members)}
        ir = pick(condition, "impact_ratio", disadvantaged)
        if ir is not None:
            row.update(impact_ratio=ir["mean"], ir_low=ir["ci_low"], ir_high=ir["ci_high"])
        for key, metric in (
            ("null_low", "impact_ratio_null_q025"),
            ("null_high", "impact_ratio_null_q975"),
        ):
            hit = pick(condition, metric, disadvantaged)
            row[key] = hit["mean"] if hit is not None else np.nan
        for who in (disadvantaged, reference):
            hit = pick(condition, rate, who)
            row[f"{rate}_{who}"] = hit["mean"] if hit is not None else np.nan
        if mode == "audit":
            msr = pick(condition, "mean_score_ratio", disadvantaged)
            row["mean_score_ratio"] = msr["mean"] if msr is not None else np.nan
            row["p_names_pooled"] = _pooled_name_p(
                decisions, members["run_id"].tolist(), attr, disadvantaged, reference
            )
        else:
            for metric in ("employment_rate", "skill_mean"):
                for who in (disadvantaged, reference):
                    hit = pick(condition, metric, who)
                    row[f"{metric}_{who}"] = hit["mean"] if hit is not None else np.nan
            hom = pick(condition, "homogenization_ratio", "")
            row["homogenization_ratio"] = hom["mean"] if hom is not None else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _markdown(table: pd.DataFrame) -> str:
    def cell(v) -> str:
        if isinstance(v, float):
            return "" if np.isnan(v) else (f"{v:.2g}" if abs(v) < 0.01 and v != 0 else f"{v:.3f}")
        return str(v)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += [
        "| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)
    ]
    return "\n".join(lines)


def _plot_impact(head: pd.DataFrame, disadvantaged: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.5 * len(head) + 1.6))
    y = np.arange(len(head))[::-1]
    for yi, (_, r) in zip(y, head.iterrows()):
        if np.isfinite(r.get("null_low", np.nan)):
            ax.plot(
                [r["null_low"], r["null_high"]],
                [yi, yi],
                color="0.75",
                lw=8,
                solid_capstyle="butt",
                label="null reference (95 %)" if yi == y[0] else None,
            )
    err = np.vstack([head["impact_ratio"] - head["ir_low"], head["ir_high"] - head["impact_ratio"]])
    ax.errorbar(
        head["impact_ratio"],
        y,
        xerr=np.nan_to_num(err),
        fmt="o",
        color="C3",
        capsize=3,
        label="observed (mean, 95 % CI over seeds)",
    )
    ax.axvline(0.8, color="C0", ls="--", lw=1, label="four-fifths rule")
    ax.axvline(1.0, color="k", lw=0.6)
    ax.set_yticks(y, head["condition"])
    ax.set_xlabel(f"impact ratio of {disadvantaged} applicants (selection rate / best group)")
    ax.legend(loc="lower left", fontsize=8, bbox_to_anchor=(0, 1.01), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _plot_rates(summary: pd.DataFrame, metric: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    last = summary[summary["step"] == summary.groupby("condition")["step"].transform("max")]
    data = last[(last.metric == metric) & last.group.str.contains("_")]
    table = data.pivot(index="condition", columns="group", values="mean")
    lo = data.pivot(index="condition", columns="group", values="ci_low")
    hi = data.pivot(index="condition", columns="group", values="ci_high")
    order = list(dict.fromkeys(data["condition"]))
    table, lo, hi = table.loc[order], lo.loc[order], hi.loc[order]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(table)), 4))
    width = 0.8 / max(1, len(table.columns))
    x = np.arange(len(table))
    for i, group in enumerate(table.columns):
        err = np.nan_to_num(np.vstack([table[group] - lo[group], hi[group] - table[group]]))
        ax.bar(x + i * width, table[group], width, yerr=err, capsize=2, label=group)
    ax.set_xticks(
        x + width * (len(table.columns) - 1) / 2, table.index, rotation=20, ha="right", fontsize=8
    )
    ax.set_ylabel(metric.replace("_", " "))
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _plot_over_time(summary: pd.DataFrame, metric: str, groups: tuple[str, str], path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = summary[(summary.metric == metric) & summary.group.isin(groups)]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, (condition, frame) in enumerate(data.groupby("condition", sort=False)):
        for group, style in zip(groups, ("-", "--")):
            g = frame[frame.group == group].sort_values("step")
            ax.plot(g["step"], g["mean"], style, color=f"C{i}", label=f"{condition}: {group}")
            ax.fill_between(g["step"], g["ci_low"], g["ci_high"], color=f"C{i}", alpha=0.12)
    ax.set_xlabel("round")
    ax.set_ylabel(metric.replace("_", " "))
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def rank_correlation(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Spearman's rho with a two-sided p-value; exact (every permutation) for up to 8
    points, where the t approximation fails (it gives p ~ 1e-24 for rho = 1 at n = 5)."""
    from itertools import permutations

    from scipy.stats import rankdata, spearmanr

    if len(x) < 3 or len(np.unique(x)) < 2 or len(np.unique(y)) < 2:
        return np.nan, np.nan
    if len(x) > 8:
        rho, p = spearmanr(x, y)
        return float(rho), float(p)
    rx, ry = rankdata(x), rankdata(y)
    rho = float(np.corrcoef(rx, ry)[0, 1])
    null = np.array([np.corrcoef(rx, np.array(perm))[0, 1] for perm in permutations(ry)])
    return rho, float(np.mean(np.abs(null) >= abs(rho) - 1e-12))


def dose_response(
    out: Path, runs: pd.DataFrame, disadvantaged: str, folder: Path
) -> tuple[pd.DataFrame, list[Path], str] | None:
    """Harm and probe against a corpus knob that varies across forged checkpoints
    (Understand: the dose-response curve of inheritance), one curve per agent card
    (screening head) that carries the forged checkpoints.

    Where a dose was forged with several seeds (grid key ``corpus.seed``), the unit
    is the forged checkpoint: its runs are averaged, and the interval is over
    checkpoints, so it covers training variation; with one checkpoint per dose the
    interval is over audit seeds only.
    """
    knobs = [c for c in runs.columns if c.startswith("corpus.knobs.") and runs[c].nunique() > 1]
    if not knobs:
        return None
    knob = knobs[0]
    reference = PROTECTED[disadvantaged][1]
    forged = runs[runs[knob].notna()][["run_id", "card", knob, "checkpoint"]].copy()
    probes = {  # the probe belongs to the checkpoint: read its manifest (no model)
        c: json.loads((Path(out) / c / "manifest.json").read_text())["verification"]
        for c in forged["checkpoint"].unique()
    }
    for key in ("effect_size", "mlm_gap_nats"):
        forged[f"probe.{key}"] = forged["checkpoint"].map(
            lambda c, key=key: probes[c].get(key, np.nan)
        )
    metrics = pd.read_parquet(
        Path(out) / "metrics.parquet", filters=[("run_id", "in", list(forged["run_id"]))]
    )
    last = metrics[metrics["step"] == metrics.groupby("run_id")["step"].transform("max")]
    value = last.pivot_table(index="run_id", columns=["metric", "group"], values="value")
    forged["impact_ratio"] = forged["run_id"].map(value[("impact_ratio", disadvantaged)])
    if ("callback_rate", reference) in value and ("callback_rate", disadvantaged) in value:
        gap = value[("callback_rate", reference)] - value[("callback_rate", disadvantaged)]
        forged["callback_gap"] = forged["run_id"].map(gap)
    # one row per (card, checkpoint): the unit of the rank correlation
    units = forged.groupby(["card", "checkpoint"]).mean(numeric_only=True).reset_index()
    rows = []
    for (card, dose), members in forged.groupby(["card", knob], sort=True):
        per_checkpoint = members.groupby("checkpoint").mean(numeric_only=True)
        unit = per_checkpoint if len(per_checkpoint) > 1 else members
        mean, low, high = mean_interval(unit["impact_ratio"].to_numpy())
        rows.append(
            {
                "card": card,
                knob: dose,
                "checkpoints": len(per_checkpoint),
                "runs": len(members),
                "interval_over": "checkpoints" if len(per_checkpoint) > 1 else "audit seeds",
                "probe.effect_size": per_checkpoint["probe.effect_size"].mean(),
                "probe.mlm_gap_nats": per_checkpoint["probe.mlm_gap_nats"].mean(),
                "impact_ratio": mean,
                "ir_low": low,
                "ir_high": high,
                **(
                    {"callback_gap": members["callback_gap"].mean()}
                    if "callback_gap" in members
                    else {}
                ),
            }
        )
    table = pd.DataFrame(rows)
    probe = (
        "probe.mlm_gap_nats" if table["probe.mlm_gap_nats"].notna().all() else "probe.effect_size"
    )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    sentences = []
    for i, (card, rows) in enumerate(table.groupby("card", sort=True)):
        mine = units[units["card"] == card]
        rho, p = rank_correlation(mine[probe].to_numpy(), mine["impact_ratio"].to_numpy())
        monotone = bool(np.all(np.diff(rows["impact_ratio"].to_numpy()) <= 0))
        sentences.append(
            f"`{card}`: the impact ratio "
            f"{'falls monotonically' if monotone else 'does not fall monotonically'} with "
            f"the dose (means over {rows['interval_over'].iloc[0]}); Spearman rank "
            f"correlation between `{probe}` and the impact ratio across {len(mine)} "
            f"forged checkpoints: {rho:.2f} (p = {p:.3g}{', exact' if len(mine) <= 8 else ''})."
        )
        if rows["checkpoints"].max() > 1:  # each checkpoint's own mean, behind the curve
            left.plot(
                mine[knob] + 0.008 * i, mine["impact_ratio"], ".", alpha=0.4, color=f"C{3 + i}"
            )
        x = rows[knob].to_numpy(float)
        err = np.vstack(
            [rows["impact_ratio"] - rows["ir_low"], rows["ir_high"] - rows["impact_ratio"]]
        )
        left.errorbar(
            x + 0.008 * i, rows["impact_ratio"], yerr=np.nan_to_num(err), fmt="o-", capsize=3,
            color=f"C{3 + i}", label=f"{card} (Spearman {rho:.2f})",
        )  # fmt: skip
    left.axhline(0.8, color="C0", ls="--", lw=1, label="four-fifths rule")
    left.axhline(1.0, color="k", lw=0.6)
    left.set_xlabel(knob.removeprefix("corpus.knobs.") + " of the pre-training corpus")
    left.set_ylabel(f"impact ratio of {disadvantaged} applicants")
    left.legend(fontsize=7)
    checkpoints = forged.drop_duplicates("checkpoint")
    right.plot(checkpoints[knob], checkpoints["probe.mlm_gap_nats"], "s", color="C2",
               label="MLM fill-in gap (nats)")  # fmt: skip
    right.plot(checkpoints[knob], checkpoints["probe.effect_size"], "^", color="C4",
               label="SEAT effect size d")  # fmt: skip
    right.axhline(0, color="k", lw=0.6)
    right.set_xlabel(knob.removeprefix("corpus.knobs.") + " (one point per forged checkpoint)")
    right.set_ylabel("probe (names, planted direction)")
    right.legend(fontsize=8)
    fig.suptitle("dose-response of inheritance: harm per screening head, probe per checkpoint")
    fig.tight_layout()
    path = folder / "dose_response.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    table.to_csv(folder / "dose_response.csv", index=False)
    text = f"Dose-response over `{knob}`, per screening card. " + " ".join(sentences)
    return table, [path], text


def hiring_section(
    runs: pd.DataFrame, summary: pd.DataFrame, decisions: pd.DataFrame, folder: Path
) -> tuple[pd.DataFrame, list[Path], str]:
    """The hiring world's headline table, figures and explanation."""
    head = headline(runs, summary, decisions)
    disadvantaged = runs["param.disadvantaged"].iloc[0]
    figures = [_plot_impact(head, disadvantaged, folder / "impact_ratio.png")]
    if runs["param.mode"].iloc[0] == "audit":
        figures.append(_plot_rates(summary, "callback_rate", folder / "callback_rate.png"))
    else:
        reference = PROTECTED[disadvantaged][1]
        for metric in ("employment_rate", "skill_mean"):
            figures.append(
                _plot_over_time(
                    summary, metric, (disadvantaged, reference), folder / f"{metric}.png"
                )
            )
        figures.append(_plot_rates(summary, "hire_rate", folder / "hire_rate.png"))
    dose = dose_response(Path(runs.attrs["out"]), runs, disadvantaged, folder)
    if dose is not None:
        figures += dose[1]
    text = (
        f"World `hiring` ({runs['param.mode'].iloc[0]}), disadvantaged group in the "
        f"history: `{disadvantaged}`. Impact ratio: mean over seeds with a 95 % "
        "t-interval; `null_low`–`null_high`: the 95 % band of the same pipeline under "
        "permuted labels (or names reassigned to groups); `p_names_pooled`: permutation "
        "test with the name as the unit, pooled over seeds."
    ) + (f" {dose[2]}" if dose is not None else "")
    return head, figures, text


# world name -> (runs, summary, decisions, folder) -> (headline, figures, text)
SECTIONS = {"hiring": hiring_section, "moderation": moderation_section}


def build_report(out: Path, folder: Path | None = None) -> Report:
    """Write the report of a result folder and return its tables."""
    runs, metrics, decisions = load_results(out)
    folder = Path(folder) if folder else Path(out) / "report"
    folder.mkdir(parents=True, exist_ok=True)
    summary = summarise(runs, metrics)
    head, figures, explanation = SECTIONS[runs["world"].iloc[0]](runs, summary, decisions, folder)
    summary.to_csv(folder / "metrics_summary.csv", index=False)
    head.to_csv(folder / "summary.csv", index=False)
    text = (
        f"# uim-sim report: {Path(out).resolve().name}\n\n"
        f"{len(runs)} runs, {runs['condition'].nunique()} conditions. {explanation}\n\n"
        + _markdown(head)
        + "\n\n"
        + "\n".join(f"![{f.stem}]({f.name})" for f in figures)
        + "\n"
    )
    (folder / "summary.md").write_text(text)
    html_table = head.to_html(index=False, float_format=lambda v: f"{v:.3f}")
    images = "".join(f'<p><img src="{f.name}" style="max-width:100%"></p>' for f in figures)
    (folder / "index.html").write_text(
        f"<html><head><meta charset='utf-8'><title>uim-sim report</title></head><body>"
        f"<h1>uim-sim report</h1><p>{explanation}</p>{html_table}{images}</body></html>"
    )
    return Report(folder, head, summary, figures)
