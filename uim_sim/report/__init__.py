"""The report of a result folder, world-agnostic: per condition (agent card ×
mitigation arm × grid point), the mean and a 95 % Student-t interval over seeds of
every metric; the headline table, figures and explanation that the world's section
declares (`uim_sim.worlds.section`, found through the world registry); the worst
subgroup beside the targeted one and a warning where a mitigation fixes one
attribute and leaves another below four fifths; notes on mitigations whose effect
holds by construction; the dose-response where forged checkpoints vary a corpus
knob; and the provenance of it all.

Where a spec has mitigation arms beside ``none``, each is compared with it seed by seed
(`uim_sim.report.compare`: paired differences of harm and utility, the first and the
last step, a harm-versus-utility figure).

Writes, under the report folder: ``summary.md``, ``index.html`` (self-contained,
figures embedded), ``summary.csv`` (headline numbers), ``metrics_summary.csv`` (every
metric), ``interventions.csv`` (the comparison), ``attribution.csv`` (where a spec has
an ``attribution`` block: the Shapley split of the harm over stages), PNG figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

import uim_sim
from uim_sim.lfm import fidelity
from uim_sim.lfm.numerics import SCORE_TOLERANCE, describe, from_columns
from uim_sim.mitigate import REGISTRY
from uim_sim.report import headline
from uim_sim.report.attribution import attribute
from uim_sim.report.compare import compare
from uim_sim.report.dose import dose_response
from uim_sim.report.figures import draw
from uim_sim.report.load import ReportError, load_decisions, load_runs, summarise
from uim_sim.report.page import Page, markdown, to_html
from uim_sim.worlds import WORLDS, world_info
from uim_sim.worlds.section import Context, GroupTable, Section

__all__ = ["Report", "ReportError", "build_report"]

ATTRIBUTION_CAPTION = (
    "Shapley value of each stage (red) and the total harm (grey): how much worse the "
    "harm is with the stage as specified rather than clean, averaged over the orders of "
    "adding stages; mean and 95 % t-interval over seeds. The parts sum to the total."
)
INTERVENTIONS_CAPTION = (
    "Paired changes against no mitigation (the black square), mean and 95 % t-interval "
    "over seeds; right is less harm, up is more utility. Red: arms no other arm beats on "
    "both; grey: dominated."
)


@dataclass
class Report:
    folder: Path
    headline: pd.DataFrame  # numbers
    display: pd.DataFrame  # the same, formatted for people
    summary: pd.DataFrame
    figures: list[Path]
    warnings: list[str]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # more tables, by heading


def _folder(out: Path, folder: Path | None) -> Path:
    folder = Path(folder) if folder else Path(out) / "report"
    if folder.exists() and not folder.is_dir():
        raise ReportError(f"--to: {folder} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"--to: cannot create {folder} ({exc.strerror})") from None
    return folder


def provenance(runs: pd.DataFrame, spec: dict) -> list[str]:
    the_spec = spec.get("spec", {})
    seeds = sorted(runs["seed"].unique().tolist())
    stats = the_spec.get("statistics", {})
    return [
        f"uim-sim {uim_sim.__version__}; spec `{the_spec.get('name', '?')}` "
        f"(`{spec.get('source', '?')}`), world `{runs['world'].iloc[0]}`",
        f"{len(runs)} runs in {runs['condition'].nunique()} conditions; "
        f"{len(seeds)} seed(s) per condition: {', '.join(map(str, seeds))}",
        f"null reference: {stats.get('null_permutations', '?')} draw(s) per run; "
        f"permutations per p-value: {stats.get('name_permutations', '?')}",
        "checkpoints: " + ", ".join(f"`{c}`" for c in runs["checkpoint"].unique()),
        "intervals: Student-t over seeds (95 %; rates, shares and ratios on the logit or "
        "log scale, inside their range); the null band is what the same pipeline gives by "
        "chance",
    ]


def numerics(out: Path) -> tuple[list[str], list[str]]:
    """Provenance lines naming the numerics fingerprint(s) that computed the runs
    (execution.parquet), and a warning where there are several: such runs agree
    within the stated tolerance, not bit for bit."""
    path = Path(out) / "execution.parquet"
    execution = pd.read_parquet(path) if path.is_file() else pd.DataFrame()
    if "numerics" not in execution:
        return [], []
    lines, found = [], execution.groupby("numerics", sort=False)
    for digest, rows in found:
        fields = from_columns(rows.iloc[0].to_dict())
        lines.append(f"numerics `{digest}` ({len(rows)} runs): {describe(fields)}")
    warning = []
    if len(found) > 1:
        warning.append(
            f"runs of this folder were computed under {len(found)} numerics fingerprints "
            f"(machines or library versions): they agree within {SCORE_TOLERANCE:g} in scores "
            "and in decisions farther than that from their boundary, not bit for bit"
        )
    more, beyond = fidelity_notes(execution)
    return lines + more, warning + beyond


def fidelity_notes(execution: pd.DataFrame) -> tuple[list[str], list[str]]:
    """A line on the runs computed in bf16 and their agreement with fp32 on their own
    texts (`uim_sim.lfm.fidelity`), and a warning for runs beyond its bounds."""
    if "fidelity.texts" not in execution:
        return [], []
    sampled = execution[execution["fidelity.texts"].fillna(0) > 0]
    if sampled.empty:
        return [], []
    kinds = ", ".join(sorted(set(sampled["fidelity.agreement_of"].dropna())))
    fell = sampled.get("fidelity.fallback", pd.Series(False, index=sampled.index))
    fell = fell.fillna(False).astype(bool)
    line = (
        f"{len(sampled)} run(s) computed in bf16 (`precision`), compared with fp32 on their "
        f"first {int(sampled['fidelity.texts'].max())} texts, re-scored by an fp32 copy of "
        f"the model: max |score difference| {sampled['fidelity.max_abs_diff'].max():.2g}, "
        f"Spearman ≥ {sampled['fidelity.spearman'].min():.4f}, agreement ≥ "
        f"{sampled['fidelity.agreement'].min():.3f} ({kinds}); bounds: agreement ≥ "
        f"{fidelity.MIN_AGREEMENT:g}, Spearman ≥ {fidelity.MIN_SPEARMAN:g}"
    )
    if fell.any():
        line += (
            f"; {int(fell.sum())} of them (`precision: auto`) lay beyond the bounds and were "
            "computed again in fp32: their results are fp32's (`fidelity.fallback`)"
        )
    outside = sum(fidelity.beyond(row) for row in sampled[~fell].to_dict("records"))
    warning = []
    if outside:
        warning.append(
            f"{outside} bf16 run(s) lie beyond the fidelity bounds (agreement < "
            f"{fidelity.MIN_AGREEMENT:g} or Spearman < {fidelity.MIN_SPEARMAN:g} against fp32 on "
            "their own texts): read their results as approximations; precision: fp32 "
            "computes them as the pins were made"
        )
    return [line], warning


def mitigation_notes(runs: pd.DataFrame) -> list[str]:
    names = sorted({m for arm in runs["mitigations"] for m in arm})
    used = [REGISTRY[m] for m in names if m in REGISTRY]
    return [f"`{m.name}` {note}." for m in used for note in (m.note, m.ill_conditioned) if note]


def group_table(ctx: Context, spec: GroupTable) -> pd.DataFrame:
    """A section's table by group (`GroupTable`), for people: one row per condition and
    group with a value, each metric as the headline shows it (mean [95 % CI])."""
    rows = []
    for condition in ctx.conditions:
        for group, name in spec.groups.items():
            values = [ctx.value(condition, metric, group) for metric, _ in spec.metrics]
            if all(pd.isna(v[0]) for v in values):
                continue
            shown = {label: headline.interval(*v) for (_, label), v in zip(spec.metrics, values)}
            rows.append({"condition (card · arm)": condition, spec.group_label: name, **shown})
    return pd.DataFrame(rows)


def context(
    out: Path, tables: tuple[pd.DataFrame, pd.DataFrame, dict] | None = None
) -> tuple[Context, Section, pd.DataFrame]:
    """What a report of ``out`` reads (runs, summary, spec, decisions on demand), the
    world's section declared from it, and the metrics. ``tables``: the folder's runs,
    metrics and spec where already read (`load_runs`: `uim_sim.api.Results`)."""
    runs, metrics, spec = tables if tables is not None else load_runs(out)
    world = runs["world"].iloc[0]
    if world not in WORLDS:
        raise ReportError(f"{out}: world {world!r} is not a registered world")
    ctx = Context(runs, summarise(runs, metrics), spec, lambda: load_decisions(out), metrics)
    return ctx, world_info(world).section(ctx), metrics


def build_report(out: Path, folder: Path | None = None) -> Report:
    """Write the report of a result folder and return its tables."""
    ctx, section, metrics = context(out)
    runs, summary, spec = ctx.runs, ctx.summary, ctx.spec
    folder = _folder(out, folder)
    numbers, display = headline.build(ctx, section)
    figures = [(draw(ctx, f, folder), f.title, f.caption) for f in section.figures]
    figures = [f for f in figures if f[0] is not None]
    sections = [(section.title, section.text)]
    dose = dose_response(out, runs, metrics, section.harm, folder) if section.harm else None
    if dose is not None:
        figures.append((dose.figure, "Dose-response of inheritance", dose.text))
        sections.append(("Dose-response", dose.text))
    warnings = headline.warnings(ctx, section, numbers)
    machine, mixed = numerics(out)
    warnings += mixed
    tables = [(t.title, t.text, group_table(ctx, t)) for t in section.tables]
    comparison = (
        compare(runs, metrics, section.harm, section.utility, folder, section.outcomes)
        if section.harm
        else None
    )
    if comparison is not None:
        tables.append(("Interventions against no mitigation", comparison.text,
                       comparison.display))  # fmt: skip
        warnings += comparison.warnings
        if comparison.figure is not None:
            figures.append((comparison.figure, "Harm against utility, per intervention",
                            INTERVENTIONS_CAPTION))  # fmt: skip
        comparison.table.to_csv(folder / "interventions.csv", index=False)
    split = attribute(runs, metrics, section.harm, folder, spec) if section.harm else None
    if split is not None:
        tables.append(("Attribution: where the harm comes from", split.text, split.display))
        if split.figure is not None:
            figures.append((split.figure, "Harm carried by each stage", ATTRIBUTION_CAPTION))
        split.table.to_csv(folder / "attribution.csv", index=False)
    page = Page(
        title=f"uim-sim report: {Path(out).resolve().name}",
        provenance=provenance(runs, spec) + machine,
        sections=sections,
        warnings=warnings,
        notes=mitigation_notes(runs)
        + headline.parity_note(headline.parity(ctx, numbers))
        + headline.few_seeds_note(runs)
        + headline.small_note(ctx, section),
        table=display,
        figures=figures,
        tables=tables,
    )
    summary.to_csv(folder / "metrics_summary.csv", index=False)
    numbers.to_csv(folder / "summary.csv", index=False)
    (folder / "summary.md").write_text(markdown(page))
    (folder / "index.html").write_text(to_html(page))
    return Report(folder, numbers, display, summary, [f[0] for f in figures], warnings,
                  {heading: table for heading, _, table in tables})  # fmt: skip


def suite_members(out: Path) -> list[Path]:
    """The result folders of a suite's members (sub-folders holding runs), or []."""
    out = Path(out)
    if (out / "runs.parquet").is_file() or not out.is_dir():
        return []
    return sorted(p for p in out.iterdir() if (p / "runs.parquet").is_file())


def build_suite_report(out: Path) -> tuple[list[Report], Path]:
    """Each member's report, and an index page linking them with every member's
    comparison of interventions in one table (``interventions.csv`` with a ``world``
    and a ``spec`` column)."""
    import html

    members = suite_members(out)
    reports = [build_report(m) for m in members]
    folder = _folder(out, None)
    tables = []
    for member, report in zip(members, reports):
        csv = report.folder / "interventions.csv"
        if csv.is_file():
            runs = pd.read_parquet(member / "runs.parquet", columns=["world"])
            tables.append(pd.read_csv(csv).assign(world=runs["world"].iloc[0], spec=member.name))
    combined = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    combined.to_csv(folder / "interventions.csv", index=False)
    items = "".join(
        f"<li><a href='../{html.escape(m.name)}/report/index.html'>{html.escape(m.name)}</a>"
        f" ({len(pd.read_parquet(m / 'runs.parquet', columns=['run_id']))} runs)</li>"
        for m in members
    )
    (folder / "index.html").write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>uim-sim suite: "
        f"{html.escape(Path(out).resolve().name)}</title></head><body>"
        f"<h1>uim-sim suite: {html.escape(Path(out).resolve().name)}</h1><ul>{items}</ul>"
        "<p>Each member's report is self-contained; <code>interventions.csv</code> here "
        "holds every member's comparison of interventions.</p></body></html>"
    )
    return reports, folder
