"""A bias-audit table in the form New York City's Local Law 144 asks of automated
employment decision tools: per category of sex, of race/ethnicity and of their
intersections, the number of applicants, the number selected, the selection rate and
the impact ratio (the category's selection rate over the highest rate among the
categories of the same kind), with categories under 2 % of the applicants marked as
excludable (the rule lets an auditor leave them out of the impact-ratio calculation).

Beside the law's columns, the sandbox's own: a metric's mean and 95 % t-interval over
seeds, the null band (what the same pipeline gives by chance) and a permutation p,
where the world computes them. One table per condition (agent card · mitigation arm ·
grid point); the law's numbers pool the condition's seeds, as an audit pools its
data.

A world offers the table by declaring it in its report section (`Section.audit`, an
`Audit`): the kinds of category and where they are, what a category counts, and its
rates (`AuditRate`), each from the decision table or from the runs' metrics, with
its ratio to the best, the lowest or the overall rate. Hiring: selection rates by
sex, race/ethnicity and intersection; moderation: error rates by the identity a text
names; spread: exposure to true and false news by community.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from uim_sim.metrics.stats import mean_interval
from uim_sim.report import context
from uim_sim.report.load import ReportError, load_decisions
from uim_sim.report.page import inline
from uim_sim.worlds.section import Audit, AuditRate

EXCLUDABLE = 0.02  # categories under 2 % of the applicants (LL144's rule)


def _audit(out: Path) -> tuple[Audit, pd.DataFrame, pd.DataFrame]:
    """The world's declared table, the runs (with ``condition``) and the last step's
    metrics (with ``condition``)."""
    ctx, section, metrics = context(out)
    runs, world = ctx.runs, ctx.runs["world"].iloc[0]
    if section.audit is None:
        raise ReportError(
            f"{out}: the {world} world offers no bias-audit table for these runs "
            f"({section.title}); hiring, moderation and the spread platform do"
        )
    last = metrics[metrics["step"] == metrics.groupby("run_id")["step"].transform("max")]
    return section.audit, runs, last.merge(runs[["run_id", "condition"]], on="run_id")


def audit_table(out: Path) -> pd.DataFrame:
    """The audit table of a result folder, one row per condition × category."""
    return _build(out)[1]


def _build(out: Path) -> tuple[Audit, pd.DataFrame]:
    audit, runs, last = _audit(out)
    if audit.source == "metrics":
        return audit, pd.DataFrame(_metric_rows(out, audit, runs, last))
    decisions = load_decisions(out)
    if decisions.empty:
        raise ReportError(f"{out}: no decisions.parquet: the table counts decisions")
    decisions = decisions.merge(runs[["run_id", "condition"]], on="run_id")
    rows = []
    for condition, frame in decisions.groupby("condition", sort=False):
        mine = last[last["condition"] == condition]
        for kind, column in audit.kinds.items():
            rows += _decision_rows(audit, condition, kind, frame, column, mine)
    return audit, pd.DataFrame(rows)


def _decision_rows(
    audit: Audit, condition: str, kind: str, frame: pd.DataFrame, column: str, last
) -> list[dict]:
    """One kind's rows of one condition, counted from its decisions (seeds pooled)."""
    units = frame.groupby(column).size()
    kept = units / len(frame) >= EXCLUDABLE
    columns: dict[str, pd.Series] = {audit.unit[0]: units}
    if audit.tally:
        key, _, summed = audit.tally
        columns[key] = frame.groupby(column)[summed].sum().reindex(units.index)
    rates = {}
    for rate in audit.rates:
        rows = frame.query(rate.among) if rate.among else frame
        values = rows[rate.value] if rate.value in rows else rows.eval(rate.value)
        counts = values.groupby(rows[column]).agg(["count", "sum"]).reindex(units.index)
        counts = counts.fillna(0)
        overall = float(values.mean()) if len(values) else np.nan
        rates[rate.key] = (rate, counts, overall)
    out = []
    for category in units.index:
        row = {"condition": condition, "kind": kind, "category": category}
        row.update({k: int(v[category]) for k, v in columns.items()})
        for rate, counts, overall in rates.values():
            row.update(_rate(rate, counts, kept, category, overall))
        row["excludable"] = bool(not kept[category])
        row.update(_extras(audit, last, str(category)))
        out.append(row)
    return out


def _rate(rate: AuditRate, counts: pd.DataFrame, kept: pd.Series, category, overall) -> dict:
    """A category's rate and its ratio; ``counts`` has the pooled count and sum of
    every category of the kind."""
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = counts["sum"] / counts["count"]
    if rate.ratio == "overall":
        reference = overall
    elif not kept.any():
        reference = np.nan
    else:
        reference = rates[kept].max() if rate.ratio == "best" else rates[kept].min()
    row = {}
    if rate.count:
        row[rate.count[0]] = int(counts.loc[category, "count"])
    if rate.hits:
        hits = counts.loc[category, "sum"]
        row[rate.hits[0]] = int(round(hits)) if np.isfinite(hits) else np.nan
    row[rate.key] = float(rates[category])
    row[rate.ratio_key] = float(rates[category] / reference) if reference else np.nan
    return row


def _metric_rows(out: Path, audit: Audit, runs: pd.DataFrame, last: pd.DataFrame) -> list[dict]:
    """Rows counted from the runs' metrics at their last step (sums over seeds)."""
    rows = []
    for condition in dict.fromkeys(runs["condition"]):
        mine = last[last["condition"] == condition]
        for kind, unit_metric in audit.kinds.items():
            units = _metric_sums(mine, unit_metric)
            if units.empty:
                raise ReportError(
                    f"{out}: no {unit_metric!r} metric: these runs predate the audit table "
                    "of their world; run them again into a new folder"
                )
            kept = units / units.sum() >= EXCLUDABLE
            rates = {}
            for rate in audit.rates:
                sums = _metric_sums(mine, rate.value)
                hits = pd.Series(
                    [sums.get(rate.group.format(category=c), np.nan) for c in units.index],
                    index=units.index,
                )
                counts = pd.DataFrame({"count": units, "sum": hits})
                overall = float(hits.sum() / units.sum()) if units.sum() else np.nan
                rates[rate.key] = (rate, counts, overall)
            for category in units.index:
                row = {"condition": condition, "kind": kind, "category": category,
                       audit.unit[0]: int(units[category])}  # fmt: skip
                for rate, counts, overall in rates.values():
                    row.update(_rate(rate, counts, kept, category, overall))
                row["excludable"] = bool(not kept[category])
                row.update(_extras(audit, mine, str(category)))
                rows.append(row)
    return rows


def _metric_sums(last: pd.DataFrame, metric: str) -> pd.Series:
    """A metric's sum over the condition's runs, per group (groups in first order)."""
    rows = last[last["metric"] == metric]
    rows = rows[np.isfinite(rows["value"])]
    return rows.groupby("group", sort=False)["value"].sum()


def _extras(audit: Audit, last: pd.DataFrame, category: str) -> dict[str, float]:
    """The sandbox's columns for one category: each rate's metric over seeds (mean and
    95 % interval), null band and p (NaN where the world does not compute one), and
    the number of seeds with a value."""

    def values(metric: str, rate: AuditRate) -> np.ndarray:
        group = rate.group.format(category=category)
        rows = last[(last["metric"] == metric) & (last["group"] == group)]
        return rows["value"].to_numpy(float)

    row: dict[str, float] = {}
    seeds = None
    for rate in audit.rates:
        pre = rate.prefix
        if rate.seeds:
            metric = rate.seeds[0]
            found = values(metric, rate)
            mean, low, high = mean_interval(found)
            row.update({f"{pre}{metric}_seeds_mean": mean, f"{pre}{metric}_ci_low": low,
                        f"{pre}{metric}_ci_high": high})  # fmt: skip
            if seeds is None:
                seeds = int(np.isfinite(found).sum())
        if rate.null:
            row[f"{pre}null_q025"] = _mean(values(f"{rate.null}_q025", rate))
            row[f"{pre}null_q975"] = _mean(values(f"{rate.null}_q975", rate))
        if rate.p:
            row[f"{pre}{rate.p[1]}"] = _mean(values(rate.p[0], rate))
    row["seeds"] = seeds if seeds is not None else last["run_id"].nunique()
    return row


def _mean(v: np.ndarray) -> float:
    return float(v.mean()) if len(v) else float("nan")


def display(table: pd.DataFrame, audit: Audit) -> pd.DataFrame:
    """The table for people: the law's columns first, then the sandbox's, rate by rate."""

    def num(v: float, digits: int = 3) -> str:
        return "–" if not np.isfinite(v) else f"{v:.{digits}f}"

    marked = np.where(table["excludable"], " (under 2 %: excludable)", "")
    shown = {
        "condition": table["condition"],
        "category": table["kind"] + ": " + table["category"].astype(str),
        audit.unit[1]: table[audit.unit[0]].astype(str),
    }
    if audit.tally:
        shown[audit.tally[1]] = table[audit.tally[0]].astype(str)
    several = len(audit.rates) > 1
    for rate in audit.rates:
        pre = rate.prefix
        for pair in (rate.count, rate.hits):
            if pair:
                shown[pair[1]] = table[pair[0]].astype(str)
        shown[rate.label] = table[rate.key].map(num)
        shown[rate.ratio_label] = table[rate.ratio_key].map(num) + marked
        if rate.seeds:
            metric, label = rate.seeds
            shown[f"{label} over seeds [95 % CI]"] = [
                f"{num(m, 2)} [{num(lo, 2)}, {num(hi, 2)}]" if np.isfinite(lo) else num(m, 2)
                for m, lo, hi in table[[f"{pre}{metric}_seeds_mean", f"{pre}{metric}_ci_low",
                                        f"{pre}{metric}_ci_high"]].to_numpy()
            ]  # fmt: skip
        if rate.null:
            label = f"{rate.label}: null 95 %" if several else "null 95 %"
            shown[label] = [
                f"{num(a, 2)}–{num(b, 2)}" if np.isfinite(a) else "–"
                for a, b in table[[f"{pre}null_q025", f"{pre}null_q975"]].to_numpy()
            ]
        if rate.p:
            shown[rate.p[2]] = table[f"{pre}{rate.p[1]}"].map(lambda p: num(p, 4))
    return pd.DataFrame(shown)


def write_audit_table(
    out: Path, folder: Path | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, Path]:
    """Write ``audit_table.csv``, ``audit_table.md`` and ``audit_table.html`` into
    ``folder`` (default OUT/report); returns the table, its display and the folder."""
    import html

    audit, table = _build(out)
    folder = Path(folder) if folder else Path(out) / "report"
    if folder.exists() and not folder.is_dir():
        raise ReportError(f"--to: {folder} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    shown = display(table, audit)
    table.to_csv(folder / "audit_table.csv", index=False)
    name = Path(out).resolve().name
    (folder / "audit_table.md").write_text(
        f"# {audit.title}: {name}\n\n{audit.intro}\n\n"
        + shown.to_markdown(index=False, disable_numparse=True)
        + "\n"
    )
    (folder / "audit_table.html").write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(audit.title)}"
        f"</title></head><body><h1>{html.escape(audit.title)}: {html.escape(name)}</h1>"
        f"<p>{inline(audit.intro)}</p>{shown.to_html(index=False, border=1)}</body></html>"
    )
    return table, shown, folder
