"""A bias-audit table in the form New York City's Local Law 144 asks of automated
employment decision tools: per category of sex, of race/ethnicity and of their
intersections, the number of applicants, the number selected, the selection rate and
the impact ratio (the category's selection rate over the highest rate among the
categories of the same kind), with categories under 2 % of the applicants marked as
excludable (the rule lets an auditor leave them out of the impact-ratio calculation).

Beside the law's columns, the sandbox's own: the impact ratio's mean and 95 %
t-interval over seeds, the null band (what the same pipeline gives by chance) and the
name-level permutation p, where the world computes them. One table per condition
(agent card · mitigation arm · grid point); the law's numbers pool the condition's
seeds, as an audit pools its data. A world offers the table by naming, in its report
section, the decision-table columns that hold each kind of category
(`Section.audit`); the hiring world does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from uim_sim.metrics.stats import mean_interval
from uim_sim.report.load import ReportError, load_decisions, load_runs, summarise
from uim_sim.report.page import inline
from uim_sim.worlds import world_info
from uim_sim.worlds.section import Context

EXCLUDABLE = 0.02  # categories under 2 % of the applicants (LL144's rule)


def audit_table(out: Path) -> pd.DataFrame:
    """The audit table of a result folder, one row per condition × category."""
    runs, metrics, spec = load_runs(out)
    world = runs["world"].iloc[0]
    summary = summarise(runs, metrics)
    section = world_info(world).section(Context(runs, summary, spec, lambda: load_decisions(out)))
    if not section.audit:
        raise ReportError(
            f"{out}: the {world} world has no bias-audit table yet (the hiring world has)"
        )
    decisions = load_decisions(out)
    if decisions.empty:
        raise ReportError(f"{out}: no decisions.parquet: the table counts decisions")
    decisions = decisions.merge(runs[["run_id", "condition"]], on="run_id")
    last = metrics[metrics["step"] == metrics.groupby("run_id")["step"].transform("max")]
    last = last.merge(runs[["run_id", "condition"]], on="run_id")
    rows = []
    for condition, frame in decisions.groupby("condition", sort=False):
        total = len(frame)
        for kind, column in section.audit.items():
            counts = frame.groupby(column)["decision"].agg(["count", "sum"])
            rates = counts["sum"] / counts["count"]
            kept = counts["count"] / total >= EXCLUDABLE
            best = rates[kept].max() if kept.any() else np.nan
            for category, (applicants, selected) in counts.iterrows():
                rows.append({
                    "condition": condition, "kind": kind, "category": category,
                    "applicants": int(applicants), "selected": int(selected),
                    "selection_rate": float(rates[category]),
                    "impact_ratio": float(rates[category] / best) if best else np.nan,
                    "excludable": bool(not kept[category]),
                    **_extras(last[last["condition"] == condition], str(category)),
                })  # fmt: skip
    return pd.DataFrame(rows)


def _extras(last: pd.DataFrame, category: str) -> dict[str, float]:
    """The sandbox's columns for one category: impact ratio over seeds, null band,
    name-level p (NaN where the world does not compute one)."""

    def values(metric: str) -> np.ndarray:
        rows = last[(last["metric"] == metric) & (last["group"] == category)]
        return rows["value"].to_numpy(float)

    mean, low, high = mean_interval(values("impact_ratio"))
    return {
        "impact_ratio_seeds_mean": mean, "impact_ratio_ci_low": low, "impact_ratio_ci_high": high,
        "null_q025": _mean(values("impact_ratio_null_q025")),
        "null_q975": _mean(values("impact_ratio_null_q975")),
        "p_names": _mean(values("impact_ratio_p_names")),
        "seeds": len(values("impact_ratio")),
    }  # fmt: skip


def _mean(v: np.ndarray) -> float:
    return float(v.mean()) if len(v) else float("nan")


def display(table: pd.DataFrame) -> pd.DataFrame:
    """The table for people: the law's columns first, then the sandbox's."""

    def num(v: float, digits: int = 3) -> str:
        return "–" if not np.isfinite(v) else f"{v:.{digits}f}"

    return pd.DataFrame({
        "condition": table["condition"],
        "category": table["kind"] + ": " + table["category"].astype(str),
        "applicants": table["applicants"].astype(str),
        "selected": table["selected"].astype(str),
        "selection rate": table["selection_rate"].map(num),
        "impact ratio": table["impact_ratio"].map(num)
        + np.where(table["excludable"], " (under 2 %: excludable)", ""),
        "impact ratio over seeds [95 % CI]": [
            f"{num(m, 2)} [{num(lo, 2)}, {num(hi, 2)}]" if np.isfinite(lo) else num(m, 2)
            for m, lo, hi in table[["impact_ratio_seeds_mean", "impact_ratio_ci_low",
                                    "impact_ratio_ci_high"]].to_numpy()
        ],
        "null 95 %": [f"{num(a, 2)}–{num(b, 2)}" if np.isfinite(a) else "–"
                      for a, b in table[["null_q025", "null_q975"]].to_numpy()],
        "p (names)": table["p_names"].map(lambda p: num(p, 4)),
    })  # fmt: skip


def write_audit_table(out: Path, folder: Path | None = None) -> tuple[pd.DataFrame, Path]:
    """Write ``audit_table.csv``, ``audit_table.md`` and ``audit_table.html`` into
    ``folder`` (default OUT/report); returns the table and the folder."""
    import html

    table = audit_table(out)
    folder = Path(folder) if folder else Path(out) / "report"
    if folder.exists() and not folder.is_dir():
        raise ReportError(f"--to: {folder} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    shown = display(table)
    table.to_csv(folder / "audit_table.csv", index=False)
    intro = (
        "Bias audit in the form of New York City Local Law 144: per category of sex, "
        "race/ethnicity and their intersection, applicants, selected, selection rate and "
        "impact ratio (over the highest selection rate of the same kind of category), the "
        "condition's seeds pooled; categories under 2 % of the applicants are marked "
        "excludable. Beside them, the sandbox's: the impact ratio's mean and 95 % "
        "t-interval over seeds, the null band, and the name-level permutation p."
    )
    (folder / "audit_table.md").write_text(
        f"# Bias audit: {Path(out).resolve().name}\n\n{intro}\n\n"
        + shown.to_markdown(index=False, disable_numparse=True)
        + "\n"
    )
    (folder / "audit_table.html").write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>Bias audit</title></head>"
        f"<body><h1>Bias audit: {html.escape(Path(out).resolve().name)}</h1>"
        f"<p>{inline(intro)}</p>{shown.to_html(index=False, border=1)}</body></html>"
    )
    return table, folder
