"""A bias-audit table in the form New York City's Local Law 144 asks of automated
employment decision tools: per category of sex, of race/ethnicity and of their
intersections, the number of applicants, the number selected, the selection rate and
the impact ratio (the category's selection rate over the highest rate among the
categories of the same kind), with categories under 2 % of the applicants marked as
excludable (the rule lets an auditor leave them out of the impact-ratio calculation).
The 2 % rule is the hiring audit's (`Audit.min_share`); other worlds' tables mark a
category with fewer than a minimum count of units a run (`Audit.min_count`, 30 by
default, ``--min-count``): 2 % would empty a moderation audit of fifty identities,
each under 2 % of the texts.

Where the auditor does not know some units' category (`Audit.unknown`), they form an
``unknown`` row (counts and rate, no ratio), as published LL144 audits show them, and
each impact ratio is bounded over every way of giving them categories: the
four-fifths verdict says ``cannot tell`` where a pass could be a fail. Published
audits carry large unknown shares that can hide a failure (Gerchick et al., FAccT
2025, on every public LL144 audit).

Beside the law's columns, the sandbox's own: a metric's mean and 95 % t-interval over
seeds, the null band (what the same pipeline gives by chance) and a p-value from the
world's own test of a category's gap to the best, the condition's seeds pooled (the
same test as the report's, never a mean of per-seed p-values). One table per
condition (agent card · mitigation arm · grid point); the law's numbers pool the
condition's seeds, as an audit pools its data. `uim_sim.report.audit_file` writes it
for people and offices (CSV, Markdown, JSON with its schema, a print-ready page).

A world offers the table by declaring it in its report section (`Section.audit`, an
`Audit`): the kinds of category and where they are, what a category counts, and its
rates (`AuditRate`), each from the decision table or from the runs' metrics, with
its ratio to the best, the lowest or the overall rate. Hiring: selection rates by
sex, race/ethnicity and intersection; moderation: error rates by the identity a text
names; spread: exposure to true and false news by community.
"""

from __future__ import annotations

import heapq
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from uim_sim.metrics.stats import mean_interval, metric_range
from uim_sim.report import context
from uim_sim.report.headline import fmt_p
from uim_sim.report.load import ReportError, declared_ranges, load_decisions
from uim_sim.worlds.section import Audit, AuditRate, Context

FOUR_FIFTHS = 0.8  # 29 CFR 1607.4(D)
UNKNOWN = "unknown"  # the row of the units whose category the auditor does not know


def _audit(out: Path) -> tuple[Audit, Context, pd.DataFrame]:
    """The world's declared table, the report's context (runs with ``condition``,
    the spec) and the last step's metrics (with ``condition``)."""
    ctx, section, metrics = context(out)
    runs, world = ctx.runs, ctx.runs["world"].iloc[0]
    if section.audit is None:
        raise ReportError(
            f"{out}: the {world} world offers no bias-audit table for these runs "
            f"({section.title}); hiring, moderation and the spread platform do"
        )
    last = metrics[metrics["step"] == metrics.groupby("run_id")["step"].transform("max")]
    return section.audit, ctx, last.merge(runs[["run_id", "condition", "world"]], on="run_id")


def audit_table(out: Path, min_count: int | None = None) -> pd.DataFrame:
    """The audit table of a result folder, one row per condition × category."""
    return build(out, min_count)[1]


def small_rule(audit: Audit, min_count: int | None = None) -> Audit:
    """The world's table with its small-category rule said in its intro, and
    ``min_count`` (`uim-sim audit-table --min-count`) for the world's minimum count: a
    hiring audit keeps LL144's 2 % rule."""
    if min_count is not None:
        if audit.min_share is not None:
            raise ReportError(
                f"--min-count: this audit marks categories {audit.small_rule()} of the "
                f"{audit.unit[1]} (LL144's rule, a hiring audit's); drop --min-count"
            )
        if min_count < 1:
            raise ReportError(f"--min-count: {min_count} is not a whole number of 1 or more")
        audit = replace(audit, min_count=min_count)
    unit = audit.unit[1]
    if audit.min_share is not None:
        rule = (
            f"Categories {audit.small_rule()} of the {unit} are marked excludable (LL144's "
            "rule: an auditor may leave them out of the impact ratios)."
        )
    elif audit.min_count is not None:
        rule = (
            f"Categories with fewer than {audit.min_count} {unit} a run (the condition's "
            f"{unit} over its runs) are marked excludable: too few for a rate to report "
            "(the minimum count; `uim-sim audit-table --min-count N`)."
        )
    else:
        return audit
    return replace(audit, intro=f"{audit.intro} {rule}")


def build(out: Path, min_count: int | None = None) -> tuple[Audit, pd.DataFrame, Context]:
    """The world's declared table (its small-category rule said, ``min_count`` for a
    minimum count: `small_rule`), the table, and the context it was read from."""
    audit, ctx, last = _audit(out)
    audit = small_rule(audit, min_count)
    runs = ctx.runs
    if audit.source == "metrics":
        return audit, pd.DataFrame(_metric_rows(out, audit, runs, last)), ctx
    decisions = load_decisions(out)
    if decisions.empty:
        raise ReportError(f"{out}: no decisions.parquet: the table counts decisions")
    decisions = decisions.merge(runs[["run_id", "condition"]], on="run_id")
    rows = []
    for condition, frame in decisions.groupby("condition", sort=False):
        mine = last[last["condition"] == condition]
        for kind, column in audit.kinds.items():
            rows += _decision_rows(audit, condition, kind, frame, column, mine)
    return audit, pd.DataFrame(rows), ctx


def _decision_rows(
    audit: Audit, condition: str, kind: str, frame: pd.DataFrame, column: str, last
) -> list[dict]:
    """One kind's rows of one condition, counted from its decisions (seeds pooled);
    rows whose category the auditor does not know (`Audit.unknown`) are counted
    apart, in an ``unknown`` row, and bound the ratios."""
    # where the world recorded whose category the auditor misses (missing: known)
    told = audit.unknown in frame and frame[audit.unknown].notna().any()
    hidden = frame[audit.unknown].fillna(0).astype(bool) if told else pd.Series(False, frame.index)
    known = frame[~hidden]
    units = known.groupby(column).size()
    kept = ~audit.excludable(units, len(frame), frame["run_id"].nunique())
    columns: dict[str, pd.Series] = {audit.unit[0]: units}
    if audit.tally:
        key, _, summed = audit.tally
        columns[key] = known.groupby(column)[summed].sum().reindex(units.index)
    rates = {}
    for rate in audit.rates:
        rows = frame.query(rate.among) if rate.among else frame
        values = rows[rate.value] if rate.value in rows else rows.eval(rate.value)
        seen = ~hidden.loc[rows.index]
        counts = values[seen].groupby(rows.loc[seen, column]).agg(["count", "sum"])
        counts = counts.reindex(units.index).fillna(0)
        overall = float(values[seen].mean()) if seen.any() else np.nan
        unseen = values[~seen]
        judged = _judged(rate, counts, kept, len(unseen), float(unseen.sum()))
        if rate.test and rate.p and kept.any():
            judged = _tested(rate, judged, rows[seen], column, counts, kept)
        rates[rate.key] = (rate, counts, overall, judged, unseen)
    share = float(hidden.mean())
    out = []
    for category in units.index:
        row = {"condition": condition, "kind": kind, "category": category}
        row.update({k: int(v[category]) for k, v in columns.items()})
        for rate, counts, overall, judged, _ in rates.values():
            row.update(_rate(rate, counts, kept, category, overall))
            row.update(judged[category])
        row["excludable"] = bool(not kept[category])
        row["unknown_share"] = share
        row.update(_extras(audit, last, audit.group(kind, category)))
        out.append(row)
    if told:
        out.append(_unknown_row(audit, condition, kind, frame[hidden], rates, share, last))
    return out


def _unknown_row(audit: Audit, condition, kind, hidden: pd.DataFrame, rates, share, last) -> dict:
    """The rows of unknown category as LL144 audits show them: counts and rates, no
    ratio (it is no category to compare)."""
    row = {"condition": condition, "kind": kind, "category": UNKNOWN, audit.unit[0]: len(hidden)}
    if audit.tally:
        row[audit.tally[0]] = int(hidden[audit.tally[2]].sum())
    for rate, *_, unseen in rates.values():
        if rate.count:
            row[rate.count[0]] = len(unseen)
        if rate.hits:
            row[rate.hits[0]] = int(round(unseen.sum()))
        row[rate.key] = float(unseen.mean()) if len(unseen) else np.nan
        row[rate.ratio_key] = np.nan
        if rate.four_fifths:
            row.update({f"{rate.ratio_key}_bound_low": np.nan,
                        f"{rate.ratio_key}_bound_high": np.nan,
                        f"{rate.ratio_key}_four_fifths": ""})  # fmt: skip
        if rate.test and rate.p:
            row[f"{rate.prefix}{rate.p[0]}"] = np.nan
    row["excludable"] = False
    row["unknown_share"] = share
    row.update(_extras(audit, last.iloc[:0], UNKNOWN))
    row["seeds"] = last["run_id"].nunique()
    return row


def _judged(rate: AuditRate, counts: pd.DataFrame, kept: pd.Series, n: int, hits: float) -> dict:
    """Per category, for a four-fifths ratio (`AuditRate.four_fifths`): its lowest and
    highest value over the assignments of the ``n`` rows of unknown category (``hits``
    of them selected) and the verdict (empty dicts for other rates)."""
    if not rate.four_fifths:
        return {category: {} for category in counts.index}
    key = rate.ratio_key
    low, high = ratio_bounds(counts, kept, n, hits)
    return {
        category: {f"{key}_bound_low": low[category], f"{key}_bound_high": high[category],
                   f"{key}_four_fifths": verdict(low[category], high[category],
                                                 bool(kept[category]))}
        for category in counts.index
    }  # fmt: skip


def _tested(rate: AuditRate, judged: dict, rows: pd.DataFrame, column: str, counts, kept) -> dict:
    """Adds each category's p of its gap to the best category of its kind (the
    world's `AuditRate.test`, on the rows of the two categories, seeds pooled); the
    best category itself has none."""
    with np.errstate(invalid="ignore", divide="ignore"):
        best = (counts["sum"] / counts["count"])[kept].idxmax()
    for category in counts.index:
        pair = rows[rows[column].isin([category, best])]
        p = np.nan if category == best else rate.test(pair, column, category, best)
        judged[category] = {**judged[category], f"{rate.prefix}{rate.p[0]}": p}
    return judged


def ratio_bounds(
    counts: pd.DataFrame, kept: pd.Series, n: int, hits: float
) -> tuple[pd.Series, pd.Series]:
    """The lowest and the highest impact ratio of each category over every way of
    giving ``n`` rows of unknown category, ``hits`` of them selected, to the
    categories (each row on its own), from ``counts`` (each category's ``count`` and
    ``sum`` of selected). The lowest: the category takes every unknown row not
    selected, the other category with the highest rate once it takes every selected
    one takes them all. The highest: the category takes every selected one, and each
    unknown row not selected goes to whichever other category has the highest rate
    then (which brings that rate as low as it can go). The best rate is over the
    categories that are not excludable, the category's own included where it is one
    of them (a ratio up to 1); with no unknown rows both are the ratio."""
    s, c = counts["sum"].to_numpy(float), counts["count"].to_numpy(float)
    misses, mask = n - hits, kept.to_numpy(bool)
    if not n:
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = s / c / (s / c)[mask].max() if mask.any() else np.full(len(s), np.nan)
        return pd.Series(ratio, index=counts.index), pd.Series(ratio, index=counts.index)
    low, high = np.full(len(s), np.nan), np.full(len(s), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        for i in range(len(s)):
            others = mask & (np.arange(len(s)) != i)
            if not others.any():
                low[i] = high[i] = 1.0 if mask[i] else np.nan
                continue
            highest = float(np.max((s[others] + hits) / (c[others] + hits)))
            lowest = _lowest_highest_rate(s[others], c[others], misses)
            low[i] = s[i] / (c[i] + misses) / highest
            high[i] = (s[i] + hits) / (c[i] + hits) / lowest if lowest > 0 else np.inf
            if mask[i]:  # the category is among those the best rate is over
                low[i], high[i] = min(low[i], 1.0), min(high[i], 1.0)
    return pd.Series(low, index=counts.index), pd.Series(high, index=counts.index)


def _lowest_highest_rate(hits: np.ndarray, counts: np.ndarray, misses: float) -> float:
    """The lowest that the highest of the rates ``hits / counts`` can be brought by
    adding ``misses`` rows not selected: one at a time, each to the category with the
    highest rate then (greedy, which is optimal for a min-max of decreasing rates)."""
    heap = [(-h / k, h, k) for h, k in zip(hits, counts)]
    heapq.heapify(heap)
    for _ in range(int(round(misses))):
        _, h, k = heapq.heappop(heap)
        heapq.heappush(heap, (-h / (k + 1), h, k + 1))
    return -heap[0][0]


def verdict(low: float, high: float, kept: bool) -> str:
    """The four-fifths rule (29 CFR 1607.4(D)) on an impact ratio known to lie in
    [low, high]: ``pass``, ``fail``, or ``cannot tell`` where an assignment of the
    unknown categories could make a pass a fail; ``excludable`` for a category under
    2 %; empty where there is no ratio."""
    if not kept:
        return "excludable"
    if not (np.isfinite(low) and np.isfinite(high)):
        return ""
    if low >= FOUR_FIFTHS - 1e-12:
        return "pass"
    return "fail" if high < FOUR_FIFTHS - 1e-12 else "cannot tell"


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
            kept = ~audit.excludable(units, units.sum(), mine["run_id"].nunique())
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
                    row.update(_judged(rate, counts, kept, 0, 0.0)[category])
                row["excludable"] = bool(not kept[category])
                row["unknown_share"] = 0.0
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
    95 % interval) and null band (NaN where the world does not compute one), and
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
            bounds = metric_range(metric, declared_ranges(last))  # inside a rate's range
            mean, low, high = mean_interval(found, bounds=bounds)
            row.update({f"{pre}{metric}_seeds_mean": mean, f"{pre}{metric}_ci_low": low,
                        f"{pre}{metric}_ci_high": high})  # fmt: skip
            if seeds is None:
                seeds = int(np.isfinite(found).sum())
        if rate.null:  # each run's band, averaged over the runs
            row[f"{pre}null_q025"] = _mean(values(f"{rate.null}_q025", rate))
            row[f"{pre}null_q975"] = _mean(values(f"{rate.null}_q975", rate))
    row["seeds"] = seeds if seeds is not None else last["run_id"].nunique()
    return row


def _mean(v: np.ndarray) -> float:
    return float(v.mean()) if len(v) else float("nan")


def display(table: pd.DataFrame, audit: Audit) -> pd.DataFrame:
    """The table for people: the law's columns first, then the sandbox's, rate by rate;
    rates and ratios to 3 decimals, intervals and bands to 2, p as the report prints
    it, "–" where there is no number."""

    def num(v: float, digits: int = 3) -> str:
        return "–" if not np.isfinite(v) else f"{v:.{digits}f}"

    marked = np.where(table["excludable"], f" ({audit.small_rule()}: excludable)", "")
    unknowns = bool(table["unknown_share"].gt(0).any())
    shown = {
        "condition": table["condition"],
        "category": table["kind"] + ": " + table["category"].astype(str),
        audit.unit[1]: table[audit.unit[0]].astype(str),
    }
    if audit.tally:
        shown[audit.tally[1]] = table[audit.tally[0]].astype(str)
    several = len(audit.rates) > 1
    for rate in audit.rates:
        pre, ratio = rate.prefix, rate.ratio_key
        for pair in (rate.count, rate.hits):
            if pair:
                shown[pair[1]] = table[pair[0]].astype(str)
        shown[rate.label] = table[rate.key].map(num)
        shown[rate.ratio_label] = table[ratio].map(num) + marked
        if rate.four_fifths and unknowns:  # (a condition without unknowns: "–")
            shown[f"{rate.ratio_label}: bounds over the unknowns"] = [
                f"{num(a, 2)}–{num(b, 2)}" if np.isfinite(a) and share else "–"
                for a, b, share in table[[f"{ratio}_bound_low", f"{ratio}_bound_high",
                                          "unknown_share"]].to_numpy()
            ]  # fmt: skip
        if rate.four_fifths:
            shown["four fifths"] = table[f"{ratio}_four_fifths"].replace("", "–")
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
        if rate.p:  # printed as the report prints its p
            shown[rate.p[1]] = table[f"{pre}{rate.p[0]}"].map(fmt_p)
    return pd.DataFrame(shown)
