"""What a world tells the world-agnostic report (`uim_sim.report`): the columns of its
headline table, the figures worth drawing, the harm a dose-response curve follows,
and a few sentences of explanation. Worlds declare; the report computes intervals,
draws, warns and writes. (Worlds never import the report; the report imports this.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Column:
    """A headline column: the last step's ``metric`` for ``group``, mean over seeds.

    ``kind``: ``interval`` (mean [95 % CI]), ``value`` (mean), ``p`` (a p-value),
    ``band`` (``metric`` and ``upper`` give the low and high end of a band, e.g. the
    null reference's 2.5 % and 97.5 % quantiles).
    """

    key: str
    label: str
    metric: str
    group: str = ""
    kind: Literal["interval", "value", "p", "band"] = "value"
    upper: str | None = None  # the band's high end (kind "band")


@dataclass(frozen=True)
class Harm:
    """The harm a section leads with: ``metric`` for ``group`` (e.g. the impact ratio
    of the disadvantaged group), the line that matters (e.g. four fifths) and which
    direction is worse."""

    metric: str
    group: str
    label: str
    line: float | None = None
    worse: Literal["lower", "higher"] = "lower"
    # (metric, favoured group, harmed group): a gap the dose-response also tabulates
    gap: tuple[str, str, str] | None = None
    # the post-forge probe (manifest verification key) the dose-response relates it to
    probe: str = "mlm_gap_nats"
    probe_label: str = "MLM fill-in gap (nats)"


@dataclass(frozen=True)
class Utility:
    """What a decision is for, beside the harm it may do: ``metric`` at the last step,
    averaged over ``groups`` (hiring: how closely callbacks follow resume quality;
    moderation: AUC; spread: reach of true items). The report's comparison of
    interventions reads the change of both."""

    metric: str
    label: str
    groups: tuple[str, ...] = ("",)
    better: Literal["higher", "lower"] = "higher"


@dataclass(frozen=True)
class FigureSpec:
    """A figure: its file name (``NAME.png``), title, caption, and the metric drawn."""

    name: str
    title: str
    caption: str
    metric: str


@dataclass(frozen=True)
class Forest(FigureSpec):
    """Per condition: the last step's mean and 95 % CI of ``metric`` for ``group``,
    with an optional null band (``null_low``/``null_high`` metrics) and a line."""

    group: str
    xlabel: str
    line: float | None = None
    line_label: str = ""
    null_low: str | None = None
    null_high: str | None = None


@dataclass(frozen=True)
class GroupBars(FigureSpec):
    """Per condition, bars of ``metric`` at the last step for each of ``groups``."""

    groups: Sequence[str]
    ylabel: str


@dataclass(frozen=True)
class OverTime(FigureSpec):
    """``metric`` per step (mean and 95 % band over seeds) for each of ``groups``.
    ``panels``: ``none`` (one panel, a line per condition and group), ``card`` (a panel
    per agent card, a line per mitigation arm and group) or ``condition`` (a panel per
    condition, a line per group); ``arm`` keeps only the conditions of one mitigation
    arm (e.g. ``none``: the baseline)."""

    groups: Sequence[str]
    ylabel: str
    xlabel: str = "step"
    panels: Literal["none", "card", "condition"] = "none"
    arm: str | None = None
    line: float | None = None


@dataclass(frozen=True)
class Heatmap(FigureSpec):
    """Conditions × groups: ``metric`` at the last step."""

    groups: Sequence[str]
    label: str


Figure = Forest | GroupBars | OverTime | Heatmap


@dataclass
class Context:
    """What a section reads: one row per run (with ``condition``), the summary (mean
    and interval per condition × step × metric × group), the resolved spec, the
    decisions (loaded on first use: they can be large) and, where given, the runs'
    metrics (for statistics the summary's means cannot give: `per_run`)."""

    runs: pd.DataFrame
    summary: pd.DataFrame
    spec: dict[str, Any]
    load_decisions: Callable[[], pd.DataFrame]
    metrics: pd.DataFrame | None = None
    _decisions: pd.DataFrame | None = field(default=None, repr=False)
    _last: pd.DataFrame | None = field(default=None, repr=False)
    _index: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def decisions(self) -> pd.DataFrame:
        if self._decisions is None:
            self._decisions = self.load_decisions()
        return self._decisions

    @property
    def conditions(self) -> list[str]:
        return list(dict.fromkeys(self.runs["condition"]))

    def param(self, name: str) -> Any:
        return self.runs[f"param.{name}"].iloc[0]

    def reports(self, metric: str) -> bool:
        """Did the runs report ``metric`` (e.g. one declared only where agents adapt)?"""
        return bool((self.summary["metric"] == metric).any())

    def groups(self, metric: str) -> list[str]:
        """The groups the runs reported ``metric`` for."""
        return list(dict.fromkeys(self.summary.loc[self.summary["metric"] == metric, "group"]))

    def cards(self) -> dict[str, dict[str, Any]]:
        return self.spec.get("cards", {})

    def last(self) -> pd.DataFrame:
        """The summary at each condition's last step."""
        if self._last is None:
            s = self.summary
            self._last = s[s["step"] == s.groupby("condition")["step"].transform("max")]
        return self._last

    def per_run(self, condition: str, metric: str, group: str = "") -> pd.Series:
        """A metric's value at each run's last step, by run, for the condition's runs
        (empty without the runs' metrics or where absent)."""
        if self.metrics is None:
            return pd.Series(dtype=float)
        mine = self.runs.loc[self.runs["condition"] == condition, "run_id"]
        m = self.metrics
        rows = m[m["run_id"].isin(mine) & (m["metric"] == metric) & (m["group"] == group)]
        rows = rows[rows["step"] == rows.groupby("run_id")["step"].transform("max")]
        return rows.set_index("run_id")["value"].astype(float)

    def value(self, condition: str, metric: str, group: str = "") -> tuple[float, float, float]:
        """(mean, ci_low, ci_high) of a metric at the condition's last step (NaN if absent)."""
        if self._index is None:
            self._index = self.last().set_index(["condition", "metric", "group"]).sort_index()
        key = (condition, metric, group)
        if key not in self._index.index:
            return (np.nan, np.nan, np.nan)
        row = self._index.loc[key]
        row = row.iloc[0] if isinstance(row, pd.DataFrame) else row
        return float(row["mean"]), float(row["ci_low"]), float(row["ci_high"])


# the small-category rules of a bias-audit table: LL144's for a hiring audit (a
# category under 2 % of the applicants may be left out of the impact ratios, 6 RCNY
# § 5-300) and, for other worlds, a minimum count of units a run (30: the smallest
# denominator the NCHS data presentation standards for proportions report a rate of)
LL144_SHARE = 0.02
MIN_COUNT = 30


@dataclass(frozen=True)
class AuditRate:
    """A rate of a bias-audit table (`uim-sim audit-table`), per category.

    From the decision table (`Audit.source` ``decisions``): the mean of ``value`` (a
    column or an expression of the table's columns, e.g. ``decision`` or ``1 -
    decision``) over the category's rows where ``among`` holds (a pandas query;
    empty: every row), the condition's seeds pooled. From the metrics (``metrics``):
    the sum over seeds of metric ``value`` for group ``group`` (``{category}`` is
    replaced) over the sum of the audit's unit metric.

    ``ratio``: the rate over the highest rate among the categories of the same kind
    that are not excludable (``best``: LL144's impact ratio), over the lowest
    (``lowest``: for a harm, how many times the least harmed category's rate), or
    over the rate of every row of the condition (``overall``). ``count`` and
    ``hits`` show the rate's denominator and numerator as (key, label). ``seeds``
    names a run metric (per category, last step) whose mean and 95 % interval over
    seeds the table adds, as (metric, label); ``null`` the stem of a null band
    (``{null}_q025``, ``{null}_q975``). ``p`` (key, label) is the p of a category's
    gap to the best category of its kind by ``test(rows, column, category, best)``,
    on the rows the rate counts, the condition's seeds pooled: the world's own test,
    the one its report runs (decision source, ratio ``best``). ``four_fifths``: the
    ratio is LL144's impact ratio (ratio ``best``): the table adds its bounds over the
    rows of unknown category and the four-fifths verdict. ``prefix`` starts the keys
    of those added columns."""

    key: str
    label: str
    ratio_key: str
    ratio_label: str
    value: str = "decision"
    among: str = ""
    group: str = "{category}"
    ratio: Literal["best", "lowest", "overall"] = "best"
    count: tuple[str, str] | None = None
    hits: tuple[str, str] | None = None
    seeds: tuple[str, str] | None = None
    null: str | None = None
    p: tuple[str, str] | None = None  # (key, label) of test's p
    test: Callable[[pd.DataFrame, str, str, str], float] | None = None
    four_fifths: bool = False
    prefix: str = ""


@dataclass(frozen=True)
class Audit:
    """A world's bias-audit table (`uim-sim audit-table`), in the shape of New York
    City's Local Law 144: per condition and per category of each ``kinds`` (kind of
    category: the decision-table column holding it, or with ``source`` ``metrics``
    the unit metric whose groups are the categories), the number of ``unit`` (key,
    label) pooled over seeds, an optional ``tally`` (key, label, decision-table
    column summed), and each of ``rates`` with its ratio; a category under the
    small-category rule (`excludable`: ``min_share`` of the units, LL144's 2 % in a
    hiring audit, or ``min_count`` units a run) is marked excludable and left out of
    the best rate. ``unknown``: a
    decision-table column, 1 on the rows whose categories the auditor does not know
    (where the table has it): they form each kind's ``unknown`` row, are left out
    of the categories' rates, and bound their ratios. ``title`` and ``intro`` head
    the written table."""

    kinds: dict[str, str]
    unit: tuple[str, str]
    rates: tuple[AuditRate, ...]
    intro: str
    title: str = "Bias audit"
    tally: tuple[str, str, str] | None = None
    source: Literal["decisions", "metrics"] = "decisions"
    unknown: str | None = None
    # per kind whose categories are not the runs' metric groups themselves: the group
    # of a category, a format of {category} (a file's column: "functionality={category}")
    groups: dict[str, str] = field(default_factory=dict)

    # the small-category rule: under min_share of the units (LL144's 2 %: a hiring
    # audit's), else under min_count units a run (`MIN_COUNT`; `uim-sim audit-table
    # --min-count`)
    min_share: float | None = None
    min_count: int | None = None

    def group(self, kind: str, category: Any) -> str:
        """The runs' metric group of a ``kind``'s category (`AuditRate.group` formats it)."""
        return self.groups.get(kind, "{category}").format(category=category)

    def excludable(self, units: pd.Series, total: float, runs: int) -> pd.Series:
        """The categories the small-category rule marks excludable: under ``min_share``
        of ``total`` units, or under ``min_count`` units a run (``units`` counted over
        ``runs`` runs: more seeds of the same few texts are no larger a category)."""
        if self.min_share is not None:
            return units / total < self.min_share
        if self.min_count is not None:
            return units / max(runs, 1) < self.min_count
        return pd.Series(False, index=units.index)

    def small_rule(self) -> str:
        """The rule in words, as the tables mark a category: ``under 2 %`` of the
        units, or ``under 30 texts a run``."""
        if self.min_share is not None:
            return f"under {self.min_share * 100:g} %"
        return f"under {self.min_count} {self.unit[1]} a run" if self.min_count else ""

    def small_groups(self, ctx: Context, condition: str) -> dict[str, float]:
        """The runs' groups of a condition under the small-category rule, with their
        units a run: every category of every kind, counted as the world counted them
        (whether or not the auditor knows them), from the decisions or, with ``source``
        ``metrics``, from the unit metric's mean over seeds."""
        small: dict[str, float] = {}
        runs = ctx.runs.loc[ctx.runs["condition"] == condition, "run_id"]
        if self.source == "metrics":
            last = ctx.last()
            mine = last[(last["condition"] == condition) & (last["group"] != "")]
            for kind, metric in self.kinds.items():
                units = mine[mine["metric"] == metric].set_index("group")["mean"]
                for group in units.index[self.excludable(units, units.sum(), 1)]:
                    small[self.group(kind, group)] = float(units[group])
            return small
        decisions = ctx.decisions
        if decisions.empty or "run_id" not in decisions:
            return small
        frame = decisions[decisions["run_id"].isin(runs)]
        for kind, column in self.kinds.items():
            if column not in frame:
                continue
            units = frame.groupby(column).size()
            for category in units.index[self.excludable(units, len(frame), len(runs))]:
                small[self.group(kind, category)] = units[category] / max(len(runs), 1)
        return small


@dataclass(frozen=True)
class GroupTable:
    """A table of the report after the headline: per condition and per group of
    ``groups`` ({the runs' metric group: the name shown}, under ``group_label``), each
    of ``metrics`` ((metric, label)) at the last step, mean and 95 % interval over
    seeds as the headline shows them; a group with none of them is left out."""

    title: str
    text: str
    group_label: str
    groups: dict[str, str]
    metrics: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Section:
    """A world's part of the report. ``extra(ctx)`` adds computed headline columns
    ({condition: {key: value}}, with ``extra_labels``: key → (label, kind), kind
    ``p``, ``interval`` (its values ``key``, ``key_low`` and ``key_high``) or anything
    else for a value); ``text`` is Markdown."""

    title: str
    columns: Sequence[Column]
    figures: Sequence[Figure]
    text: str
    harm: Harm | None = None
    utility: Utility | None = None
    # more outcomes the comparison of interventions reports (e.g. the reach of false news)
    outcomes: tuple[Utility, ...] = ()
    # a bias-audit table (uim-sim audit-table), where the world offers one
    audit: Audit | None = None
    tables: tuple[GroupTable, ...] = ()  # more tables of the report, by group
    extra: Callable[[Context], dict[str, dict[str, float]]] | None = None
    extra_labels: dict[str, tuple[str, str]] = field(default_factory=dict)  # key: (label, kind)
