"""The headline table: one row per condition, the section's columns with intervals,
the worst subgroup beside the targeted one, and warnings a policy analyst must see.

Two views: numbers (``summary.csv``, column keys) and display strings (the terminal,
``summary.md`` and ``index.html``, human labels)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from uim_sim.metrics.stats import mean_interval
from uim_sim.worlds.section import Column, Context, Section

FOUR_FIFTHS = 0.8
FEW_SEEDS = 5  # below this many seeds a condition's report says its intervals rest on few


def fmt(value: float, digits: int = 2) -> str:
    """A number for people: "–" for missing, 2 significant digits below 0.01."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.2g}" if 0 < abs(value) < 0.01 else f"{value:.{digits}f}"


def fmt_p(p: float) -> str:
    """A p-value: never printed as 0.000 (the smallest values are shown as such)."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "–"
    return f"{p:.1e}" if p < 0.001 else f"{p:.3f}"


def interval(mean: float, lo: float, hi: float) -> str:
    """A mean and its interval for people: "0.58 [0.51, 0.65]" (the mean alone where
    there is no interval)."""
    return f"{fmt(mean)} [{fmt(lo)}, {fmt(hi)}]" if not math.isnan(lo) else fmt(mean)


def _impact_ratios(ctx: Context, condition: str) -> pd.DataFrame:
    last = ctx.last()
    rows = last[(last["condition"] == condition) & (last["metric"] == "impact_ratio")]
    return rows[rows["group"] != ""]


def worst_subgroup(
    ctx: Context, condition: str, small: Mapping[str, float] | None = None
) -> tuple[str, float, float, float] | None:
    """The group with the lowest mean impact ratio at the last step (any attribute or
    intersection), with its interval, among the groups the audit's small-category rule
    does not mark (``small``: `small_groups`), or of every group where it marks them
    all; None where the world reports no impact ratio."""
    rows = _impact_ratios(ctx, condition)
    if rows.empty:
        return None
    reportable = rows[~rows["group"].isin(list(small or {}))]
    rows = reportable if len(reportable) else rows
    row = rows.loc[rows["mean"].idxmin()]
    return str(row["group"]), float(row["mean"]), float(row["ci_low"]), float(row["ci_high"])


def small_groups(ctx: Context, section: Section) -> dict[str, dict[str, float]]:
    """Per condition, the groups under the small-category rule of the world's audit
    table (`Audit.small_groups`: too few to name the worst) with their units a run;
    none where the world declares no audit table."""
    if section.audit is None:
        return {}
    return {c: section.audit.small_groups(ctx, c) for c in ctx.conditions}


def _small(group: str, units: float, section: Section) -> str:
    """A group under the small-category rule, said so: ``dialect (4 texts a run:
    excludable)``."""
    return f"{group} ({units:.3g} {section.audit.unit[1]} a run: excludable)"


def rate_ratio(ctx: Context, condition: str, gap: tuple[str, str, str]) -> tuple[float, ...]:
    """The uncapped, signed companion of an impact ratio: the harmed group's rate over
    the favoured group's (``gap``: metric, favoured, harmed), per run at its last step;
    the geometric mean over runs with its 95 % t-interval (on the log scale, then back),
    so that a gap whose sign changes between seeds centres near 1 instead of below it
    (the four-fifths ratio is capped at 1 per seed). Runs where a rate is zero are left
    out (their log ratio is infinite). NaN without the runs' metrics."""
    metric, favoured, harmed = gap
    ratio = ctx.per_run(condition, metric, harmed) / ctx.per_run(condition, metric, favoured)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(ratio.to_numpy(float))
    mean, lo, hi = mean_interval(logs[np.isfinite(logs)])
    return float(np.exp(mean)), float(np.exp(lo)), float(np.exp(hi))


def build(ctx: Context, section: Section) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(numbers, display) of the headline."""
    extra = section.extra(ctx) if section.extra else {}
    harm = section.harm
    numbers, display = [], []
    smalls = small_groups(ctx, section)
    for condition, members in ctx.runs.groupby("condition", sort=False):
        row: dict = {"condition": condition, "runs": len(members)}
        shown: dict = {"condition (card · arm)": condition}
        for col in section.columns:
            _column(ctx, condition, col, row, shown)
            if harm and harm.gap and (col.metric, col.group) == (harm.metric, harm.group):
                metric, favoured, harmed = harm.gap
                mean, lo, hi = rate_ratio(ctx, condition, harm.gap)
                row.update(rate_ratio=mean, rate_ratio_low=lo, rate_ratio_high=hi)
                label = f"{metric.replace('_', ' ')} ratio {harmed}/{favoured}, uncapped"
                shown[label] = interval(mean, lo, hi)
        for key, (label, kind) in section.extra_labels.items():
            values = extra.get(condition, {})
            value = values.get(key, np.nan)
            row[key] = value
            if kind == "interval":
                lo, hi = values.get(f"{key}_low", np.nan), values.get(f"{key}_high", np.nan)
                row[f"{key}_low"], row[f"{key}_high"] = lo, hi
                shown[label] = interval(value, lo, hi)
            else:
                shown[label] = fmt_p(value) if kind == "p" else fmt(value, 3)
        small = smalls.get(condition, {})
        worst = worst_subgroup(ctx, condition, small)
        if worst is not None:
            group, mean, lo, hi = worst
            row.update(worst_group=group, worst_impact_ratio=mean, worst_low=lo, worst_high=hi,
                       worst_excludable=group in small)  # fmt: skip
            # beside the headline's harm and its null band (the first band column): what
            # a reader compares it with comes before the details
            bands = [c.label for c in section.columns if c.kind == "band"]
            items = list(shown.items())
            cut = list(shown).index(bands[0]) + 1 if bands else len(items)
            named = _small(group, small[group], section) if group in small else group
            worst_shown = [
                ("worst subgroup", named),
                ("its impact ratio [95 % CI]", interval(mean, lo, hi)),
            ]
            shown = dict(items[:cut] + worst_shown + items[cut:])
        numbers.append(row)
        display.append(shown)
    return pd.DataFrame(numbers), pd.DataFrame(display)


def _column(ctx: Context, condition: str, col: Column, row: dict, shown: dict) -> None:
    mean, lo, hi = ctx.value(condition, col.metric, col.group)
    if col.kind == "band":
        upper = ctx.value(condition, col.upper, col.group)[0]
        row[f"{col.key}_low"], row[f"{col.key}_high"] = mean, upper
        shown[col.label] = "–" if math.isnan(mean) else f"{fmt(mean)}–{fmt(upper)}"
        return
    row[col.key] = mean
    if col.kind == "interval":
        row[f"{col.key}_low"], row[f"{col.key}_high"] = lo, hi
        shown[col.label] = interval(mean, lo, hi)
    elif col.kind == "p":
        shown[col.label] = fmt_p(mean)
    else:
        shown[col.label] = fmt(mean, 3)


def warnings(ctx: Context, section: Section, numbers: pd.DataFrame) -> list[str]:
    """Conditions where a subgroup is below four fifths beyond chance while the headline
    is not (or, for worlds whose headline is not an impact ratio, any subgroup below it
    beyond chance): its 95 % interval under 0.8, or its mean under the null band (what
    the same pipeline gives by chance). A shortfall inside both is draw noise and not
    warned of. A condition whose scores are identical across groups by construction
    (every ``mean_score_ratio`` exactly 1, e.g. names redacted) is said to be at parity
    instead (`parity`), not warned of: its impact ratios differ by the decision rule's
    draws alone."""
    harm = section.harm
    targeted = harm is not None and harm.metric == "impact_ratio"
    last = ctx.last()
    at_parity = set(parity(ctx, numbers))
    smalls = small_groups(ctx, section)
    out = []
    for condition in numbers["condition"]:
        if condition in at_parity:
            continue
        mine = last[(last["condition"] == condition) & (last["group"] != "")]
        rows = mine[mine["metric"] == "impact_ratio"]
        if targeted:
            target = rows.loc[rows["group"] == harm.group, "mean"]
            if target.empty or target.iloc[0] < FOUR_FIFTHS:
                continue  # the headline itself already shows the failure
            rows = rows[rows["group"] != harm.group]
        null = mine[mine["metric"] == "impact_ratio_null_q025"].set_index("group")["mean"]
        beyond = (rows["ci_high"] < FOUR_FIFTHS) | (rows["mean"] < rows["group"].map(null))
        below = rows[(rows["mean"] < FOUR_FIFTHS) & beyond].sort_values("mean")
        if below.empty:
            continue
        small = smalls.get(condition, {})
        listed = ", ".join(
            f"{_small(r.group, small[r.group], section) if r.group in small else r.group} "
            f"{fmt(r.mean)} [{fmt(r.ci_low)}, {fmt(r.ci_high)}]"
            for r in below.itertuples()
        )
        lead = f"`{harm.group}` is at {fmt(target.iloc[0])}, but " if targeted else ""
        out.append(f"{condition}: {lead}below four fifths beyond chance: {listed}.")
    return out


def parity(ctx: Context, numbers: pd.DataFrame) -> list[str]:
    """The conditions whose scores are identical across groups by construction: every
    group's ``mean_score_ratio`` exactly 1 (e.g. names redacted from resume pairs that
    differ only by the name)."""
    last = ctx.last()
    rows = last[(last["metric"] == "mean_score_ratio") & (last["group"] != "")]
    return [
        c for c in numbers["condition"]
        if (mine := rows.loc[rows["condition"] == c, "mean"]).size
        and np.allclose(mine, 1.0, rtol=0, atol=1e-12)
    ]  # fmt: skip


def small_note(ctx: Context, section: Section) -> list[str]:
    """The report's note on groups lower than the worst subgroup named but under the
    audit's small-category rule: too few to name the worst (none where there are
    none)."""
    out = []
    for condition, small in small_groups(ctx, section).items():
        worst = worst_subgroup(ctx, condition, small)
        rows = _impact_ratios(ctx, condition)
        if worst is None or worst[0] in small:
            continue
        lower = rows[rows["group"].isin(list(small)) & (rows["mean"] < worst[1])]
        if len(lower):
            listed = ", ".join(
                f"{_small(r.group, small[r.group], section)} {fmt(r.mean)} "
                f"[{fmt(r.ci_low)}, {fmt(r.ci_high)}]"
                for r in lower.sort_values("mean").itertuples()
            )
            out.append(
                f"{condition}: lower than the worst subgroup named ({worst[0]}), but under "
                f"the audit's small-category rule ({section.audit.small_rule()}), too few "
                f"to name: {listed}."
            )
    return out


def few_seeds_note(runs: pd.DataFrame) -> list[str]:
    """The report's note where a condition has fewer than `FEW_SEEDS` seeds: its
    intervals rest on few replicates (none where every condition has enough)."""
    counts = runs.groupby("condition")["run_id"].nunique()
    seeds = int(counts.min())
    if seeds >= FEW_SEEDS:
        return []
    where = "per condition" if counts.nunique() == 1 else "in some conditions"
    if seeds < 2:
        return [f"One seed {where}: no interval over seeds can be computed; run "
                f"{FEW_SEEDS} or more seeds before reading a difference."]  # fmt: skip
    freedom = "1 degree" if seeds == 2 else f"{seeds - 1} degrees"
    return [
        f"Only {seeds} seeds {where}: intervals over seeds rest on few replicates "
        f"(Student-t with {freedom} of freedom) and are wide; those of rates, shares and "
        "ratios are computed on the logit or log scale, so that they stay inside their "
        f"range (docs/statistics.md). Run {FEW_SEEDS} or more seeds before reading a "
        "difference."
    ]


def parity_note(conditions: list[str]) -> list[str]:
    """The report's note on `parity` conditions (none where there are none)."""
    if not conditions:
        return []
    return [
        f"At parity by construction (mean score ratio 1.000 for every group): "
        f"{', '.join(conditions)}. Their impact ratios differ by the decision rule's draws "
        "alone, so no four-fifths warning is given for them."
    ]
