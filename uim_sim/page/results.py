"""The page's Compare tab without the page: the result folders under a root, and one
folder's report read back for interactive drawing, filtered by agent card, mitigation
arm and group. A folder whose report is missing or older than its runs gets its report
written first (what `uim-sim report` writes), so the page and the report agree."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from uim_sim.report import build_report, context, group_table, suite_members
from uim_sim.report.audit_table import audit_table, display
from uim_sim.report.headline import build as build_headline
from uim_sim.report.load import ReportError
from uim_sim.worlds.section import Context, Section

MAX_DEPTH = 3  # how deep under the root result folders are looked for


def result_folders(root: Path) -> list[Path]:
    """Every folder at or under ``root`` (three levels deep at most) holding runs."""
    root = Path(root)
    found = []
    if (root / "runs.parquet").is_file():
        found.append(root)
    for depth in range(1, MAX_DEPTH + 1):
        found += [p.parent for p in root.glob("/".join(["*"] * depth) + "/runs.parquet")]
    return sorted(dict.fromkeys(found), key=lambda p: str(p))


def _stale(folder: Path) -> bool:
    report = folder / "report" / "summary.csv"
    return (
        not report.is_file() or report.stat().st_mtime < (folder / "runs.parquet").stat().st_mtime
    )


@dataclass
class Results:
    """One result folder as the Compare tab shows it."""

    folder: Path
    ctx: Context
    section: Section

    @classmethod
    def load(cls, folder: Path) -> Results:
        """Read a result folder (writing its report first where it is missing or stale);
        raises `ReportError` (one line) for a folder that holds no runs."""
        folder = Path(folder)
        if suite_members(folder):
            raise ReportError(f"{folder}: a suite; open one of its members")
        if (folder / "runs.parquet").is_file() and _stale(folder):
            build_report(folder)
        ctx, section, _ = context(folder)
        return cls(folder, ctx, section)

    @property
    def world(self) -> str:
        return str(self.ctx.runs["world"].iloc[0])

    @property
    def cards(self) -> list[str]:
        return list(dict.fromkeys(self.ctx.runs["card"]))

    @property
    def arms(self) -> list[str]:
        return list(dict.fromkeys(self.ctx.runs["arm"]))

    @property
    def groups(self) -> list[str]:
        """Groups the section's figures draw (the filter's choices)."""
        declared = [g for f in self.section.figures
                    for g in (getattr(f, "groups", None) or [getattr(f, "group", "")])]  # fmt: skip
        return [g for g in dict.fromkeys(declared) if g]

    def filtered(self, cards=None, arms=None, groups=None) -> Context:
        """The context restricted to some cards, arms and groups (None: all)."""
        runs = self.ctx.runs
        if cards is not None:
            runs = runs[runs["card"].isin(cards)]
        if arms is not None:
            runs = runs[runs["arm"].isin(arms)]
        summary = self.ctx.summary[self.ctx.summary["condition"].isin(set(runs["condition"]))]
        if groups is not None:
            keep = set(groups) | {""} | (set(summary["group"]) - set(self.groups))
            summary = summary[summary["group"].isin(keep)]
        return Context(runs, summary, self.ctx.spec, self.ctx.load_decisions, self.ctx.metrics)

    def _csv(self, name: str) -> pd.DataFrame:
        path = self.folder / "report" / name
        return pd.read_csv(path) if path.is_file() and path.stat().st_size > 1 else pd.DataFrame()

    def headline(self) -> pd.DataFrame:
        """The headline's numbers (``summary.csv``)."""
        return self._csv("summary.csv")

    def headline_shown(self, ctx: Context | None = None) -> pd.DataFrame:
        """The headline for people (labels, rounded, intervals as in the report) of
        ``ctx`` (a `filtered` context; None: every condition)."""
        return build_headline(ctx or self.ctx, self.section)[1]

    def tables(self, ctx: Context | None = None) -> list[tuple[str, str, pd.DataFrame]]:
        """The section's tables by group (title, text, table as the report shows it) of
        ``ctx`` (a `filtered` context; None: every condition)."""
        return [(t.title, t.text, group_table(ctx or self.ctx, t)) for t in self.section.tables]

    def interventions(self, cards=None, arms=None) -> pd.DataFrame:
        """The comparison of interventions (``interventions.csv``), some cards and arms."""
        table = self._csv("interventions.csv")
        if table.empty:
            return table
        if arms is not None:
            table = table[table["arm"].isin(arms)]
        if cards is not None and "card" in table:  # (an older report's has no card)
            table = table[table["card"].isin(cards)]
        return table.reset_index(drop=True)

    def attribution(self) -> pd.DataFrame:
        # an older report's attribution.csv named the condition ``setting``
        return self._csv("attribution.csv").rename(columns={"setting": "condition"})

    def audit(self) -> pd.DataFrame:
        """The bias-audit table (raises `ReportError` where the world offers none)."""
        return audit_table(self.folder)

    def audit_shown(self) -> pd.DataFrame:
        """The bias-audit table for people, as `uim-sim audit-table` prints it."""
        return display(self.audit(), self.section.audit)

    def spec_text(self) -> str:
        path = self.folder / "spec.yaml"
        return path.read_text() if path.is_file() else "(no spec.yaml in this folder)"

    def images(self) -> list[Path]:
        """Report figures drawn only as pictures (the dose-response)."""
        return sorted((self.folder / "report").glob("dose_response*.png"))
