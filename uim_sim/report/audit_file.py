"""The bias-audit table (`uim_sim.report.audit_table`) as files a person or an office
can take: ``audit_table.csv`` (every number), ``audit_table.md`` (the table as the
terminal shows it), ``audit_table.json`` (every number with its provenance: the
result folder, the model card, the seeds; valid against ``SCHEMA``, written beside
it as ``audit_table.schema.json``) and ``audit_table.html`` (one print-ready page:
human labels, rounded numbers, a section per condition).

Nothing in them depends on the machine, the time or the folder's path: the same spec
and seed give the same bytes.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import uim_sim
from uim_sim.report.audit_table import FOUR_FIFTHS, UNKNOWN, build, display
from uim_sim.report.load import ReportError, grid_points
from uim_sim.report.page import inline
from uim_sim.worlds.section import Audit, AuditRate, Context

SCHEMA_ID = "uim-sim/audit-table/1"
INTERVAL = "Student-t over seeds, 95 % (rates and ratios on the logit or log scale)"
LAW = (
    "New York City Local Law 144 of 2021 and its rules (6 RCNY § 5-300): a bias audit of "
    "an automated employment decision tool reports, per category of sex, race/ethnicity "
    "and their intersection, the number of applicants, the selection rate and the impact "
    "ratio; categories under 2 % of the data may be excluded from the impact ratios"
)
FILES = ("audit_table.csv", "audit_table.md", "audit_table.json", "audit_table.schema.json",
         "audit_table.html")  # fmt: skip


def write_audit_table(
    out: Path, folder: Path | None = None, min_count: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, Path]:
    """Write `FILES` into ``folder`` (default OUT/report); returns the table, its
    display and the folder. ``min_count``: the minimum count of a world whose small
    categories are counted (not a hiring audit's)."""
    audit, table, ctx = build(out, min_count)
    folder = Path(folder) if folder else Path(out) / "report"
    if folder.exists() and not folder.is_dir():
        raise ReportError(f"--to: {folder} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    shown = display(table, audit)
    name = Path(out).resolve().name
    document = audit_document(audit, table, ctx, name)
    table.to_csv(folder / "audit_table.csv", index=False)
    (folder / "audit_table.md").write_text(
        f"# {audit.title}: {name}\n\n{audit.intro}\n\n"
        + shown.to_markdown(index=False, disable_numparse=True)
        + "\n"
    )
    (folder / "audit_table.json").write_text(json.dumps(document, indent=1, allow_nan=False))
    (folder / "audit_table.schema.json").write_text(json.dumps(SCHEMA, indent=1))
    (folder / "audit_table.html").write_text(audit_page(audit, table, shown, document))
    return table, shown, folder


# ---------------------------------------------------------------- JSON


def _number(value: Any) -> float | None:
    """A JSON number: None where there is none (NaN, infinite)."""
    value = float(value)
    return value if np.isfinite(value) else None


def _count(value: Any) -> int | None:
    return int(value) if pd.notna(value) else None


def audit_document(audit: Audit, table: pd.DataFrame, ctx: Context, name: str) -> dict:
    """The audit as one JSON document (`SCHEMA`): where its numbers come from, the
    rules applied, and per condition its model card, mitigations, seeds and rows."""
    runs = ctx.runs
    first = runs.iloc[0]
    source = {
        "simulated": True,
        "result_folder": name,
        "table": "decisions.parquet" if audit.source == "decisions" else "metrics.parquet",
        "world": str(first["world"]),
        "mode": str(first["param.mode"]) if "param.mode" in runs else None,
        "spec": str(ctx.spec.get("spec", {}).get("name", "")) or None,
        "runs": len(runs),
        "software": f"uim-sim {uim_sim.__version__}",
    }
    conditions = []
    grids = dict(zip(runs["run_id"], grid_points(runs)))
    for condition, members in runs.groupby("condition", sort=False):
        card = str(members["card"].iloc[0])
        rows = table[table["condition"] == condition]
        conditions.append({
            "condition": str(condition),
            "model_card": ctx.cards().get(card, {"name": card}),
            "checkpoints": sorted(map(str, members["checkpoint"].unique())),
            "mitigations": [str(m) for m in members["mitigations"].iloc[0]],
            "grid": grids[members["run_id"].iloc[0]],
            "seeds": sorted(int(s) for s in members["seed"]),
            "unknown_share": _number(rows["unknown_share"].iloc[0]) if len(rows) else 0.0,
            "rows": [_row(audit, row) for row in rows.to_dict("records")],
        })  # fmt: skip
    return {
        "schema": SCHEMA_ID,
        "title": audit.title,
        "law": LAW,
        "intro": audit.intro,
        "data_source": source,
        "rules": {
            "excludable_below": audit.min_share,
            "min_count": audit.min_count,
            "four_fifths": FOUR_FIFTHS,
            "interval": INTERVAL,
        },
        "conditions": conditions,
    }


def _row(audit: Audit, row: dict) -> dict:
    counts = {audit.unit[0]: _count(row[audit.unit[0]])}
    if audit.tally:
        counts[audit.tally[0]] = _count(row[audit.tally[0]])
    for rate in audit.rates:
        for pair in (rate.count, rate.hits):
            if pair:
                counts[pair[0]] = _count(row[pair[0]])
    return {
        "kind": str(row["kind"]),
        "category": str(row["category"]),
        "unknown": row["category"] == UNKNOWN,
        "excludable": bool(row["excludable"]),
        "unknown_share": _number(row["unknown_share"]),
        "counts": counts,
        "rates": [_rate(rate, row) for rate in audit.rates],
        "seeds": int(row["seeds"]),
    }


def _rate(rate: AuditRate, row: dict) -> dict:
    key, pre = rate.ratio_key, rate.prefix
    ratio = {"key": key, "label": rate.ratio_label, "value": _number(row[key]),
             "bounds": None, "four_fifths": None}  # fmt: skip
    if rate.four_fifths:
        ratio["bounds"] = {"low": _number(row[f"{key}_bound_low"]),
                           "high": _number(row[f"{key}_bound_high"])}  # fmt: skip
        ratio["four_fifths"] = row[f"{key}_four_fifths"] or None
    out = {"key": rate.key, "label": rate.label, "value": _number(row[rate.key]),
           "ratio": ratio, "interval": None, "null_band": None, "p": None}  # fmt: skip
    if rate.seeds:
        metric, label = rate.seeds
        out["interval"] = {
            "metric": metric, "label": f"{label} over seeds", "level": 0.95,
            "mean": _number(row[f"{pre}{metric}_seeds_mean"]),
            "low": _number(row[f"{pre}{metric}_ci_low"]),
            "high": _number(row[f"{pre}{metric}_ci_high"]),
        }  # fmt: skip
    if rate.null:
        out["null_band"] = {"low": _number(row[f"{pre}null_q025"]),
                            "high": _number(row[f"{pre}null_q975"])}  # fmt: skip
    if rate.p:
        out["p"] = {"key": rate.p[0], "label": rate.p[1],
                    "value": _number(row[f"{pre}{rate.p[0]}"])}  # fmt: skip
    return out


NUMBER = {"type": ["number", "null"]}
INTEGER = {"type": ["integer", "null"]}
TEXT = {"type": "string"}


def _object(properties: dict, **more) -> dict:
    """An object with exactly these properties, every one required."""
    return {"type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False, **more}  # fmt: skip


def _nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


BAND = _object({"low": NUMBER, "high": NUMBER})
RATE = _object({
    "key": TEXT, "label": TEXT, "value": NUMBER,
    "ratio": _object({
        "key": TEXT, "label": TEXT, "value": NUMBER, "bounds": _nullable(BAND),
        "four_fifths": {"enum": ["pass", "fail", "cannot tell", "excludable", None]},
    }),
    "interval": _nullable(_object({"metric": TEXT, "label": TEXT, "level": {"type": "number"},
                                   "mean": NUMBER, "low": NUMBER, "high": NUMBER})),
    "null_band": _nullable(BAND),
    "p": _nullable(_object({"key": TEXT, "label": TEXT, "value": NUMBER})),
})  # fmt: skip
ROW = _object({
    "kind": TEXT, "category": TEXT, "unknown": {"type": "boolean"},
    "excludable": {"type": "boolean"}, "unknown_share": NUMBER,
    "counts": {"type": "object", "additionalProperties": INTEGER},
    "rates": {"type": "array", "items": RATE, "minItems": 1},
    "seeds": {"type": "integer", "minimum": 0},
})  # fmt: skip
# the JSON Schema (2020-12) of audit_table.json; docs/hiring.md documents each field
SCHEMA = _object({
    "schema": {"const": SCHEMA_ID}, "title": TEXT, "law": TEXT, "intro": TEXT,
    "data_source": _object({
        "simulated": {"const": True}, "result_folder": TEXT,
        "table": {"enum": ["decisions.parquet", "metrics.parquet"]}, "world": TEXT,
        "mode": {"type": ["string", "null"]}, "spec": {"type": ["string", "null"]},
        "runs": {"type": "integer", "minimum": 1}, "software": TEXT,
    }),
    "rules": _object({"excludable_below": {"type": ["number", "null"]},
                      "min_count": {"type": ["integer", "null"], "minimum": 1},
                      "four_fifths": {"type": "number"}, "interval": TEXT}),
    "conditions": {"type": "array", "items": _object({
        "condition": TEXT, "model_card": {"type": "object"},
        "checkpoints": {"type": "array", "items": TEXT},
        "mitigations": {"type": "array", "items": TEXT},
        "grid": {"type": "object"}, "seeds": {"type": "array", "items": {"type": "integer"}},
        "unknown_share": NUMBER, "rows": {"type": "array", "items": ROW},
    })},
}, **{"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
      "title": "uim-sim bias-audit table"})  # fmt: skip


# ---------------------------------------------------------------- the page

STYLE = """
@page { size: A4 landscape; margin: 11mm; }
body { font: 9.5pt/1.35 "DejaVu Sans", Arial, sans-serif; color: #111; margin: 1.2em auto;
       max-width: 275mm; }
h1 { font-size: 15pt; margin: 0 0 .2em; }
h2 { font-size: 11pt; margin: 1.1em 0 .2em; }
p { margin: .3em 0; }
.source { color: #333; border-left: 3px solid #999; padding-left: .6em; }
.meta { color: #333; margin-bottom: .4em; }
table { border-collapse: collapse; width: 100%; font-size: 8.8pt; page-break-inside: avoid; }
th { font-weight: 600; text-align: right; vertical-align: bottom; padding: 2pt 5pt;
     border-bottom: 1.5px solid #111; }
td { text-align: right; padding: 2pt 5pt; border-bottom: 1px solid #ddd;
     font-variant-numeric: tabular-nums; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
tr.kind td { font-weight: 600; text-align: left; border-bottom: 1px solid #999;
             padding-top: 6pt; }
tr.unknown td { font-style: italic; background: #f3f3f3; }
td.fail { color: #a50016; font-weight: 600; }
td.cannot { color: #8a5300; font-weight: 600; }
td.pass { color: #1d5e20; }
.notes { color: #333; font-size: 8.5pt; margin-top: .8em; }
@media print { body { margin: 0; } }
"""
VERDICT = {"fail": "fail", "cannot tell": "cannot", "pass": "pass"}


def audit_page(audit: Audit, table: pd.DataFrame, shown: pd.DataFrame, document: dict) -> str:
    """One print-ready HTML page: the source, the audit's explanation, and per
    condition its model, mitigations and seeds above its table."""
    source = document["data_source"]
    title = f"{audit.title}: {source['result_folder']}"
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='source'>Simulated data, not an audit of a deployed tool: "
        f"{html.escape(source['software'])}, world <code>{html.escape(source['world'])}</code>"
        + (f" ({html.escape(source['mode'])})" if source["mode"] else "")
        + (f", spec <code>{html.escape(source['spec'])}</code>" if source["spec"] else "")
        + f", {source['runs']} runs, counted from <code>{source['table']}</code>.</p>",
        f"<p>{inline(audit.intro)}</p>",
    ]
    for condition in document["conditions"]:
        mine = (table["condition"] == condition["condition"]).to_numpy()
        cells = shown[mine].drop(columns=["condition", "category"])
        columns = [c for c in cells if (cells[c] != "–").any()]  # none: no column
        parts.append(f"<h2>{html.escape(condition['condition'])}</h2>")
        parts.append(f"<p class='meta'>{_described(condition)}</p>")
        parts.append(_table(table[mine], shown[mine], columns))
    parts.append(
        "<p class='notes'>Rates and ratios pool the condition's seeds. Impact ratio: a "
        "category's selection rate over the highest of its kind. Four fifths (29 CFR "
        "1607.4(D)): <b>fail</b> below 0.80; <b>cannot tell</b> where some assignment of "
        "the applicants of unknown category to categories would give a ratio on the "
        "other side. Over seeds: mean and 95 % t-interval of each run's ratio. – : no "
        "number. Every number, unrounded, is in <code>audit_table.json</code> and "
        "<code>audit_table.csv</code>.</p></body></html>\n"
    )
    return "\n".join(parts)


def _described(condition: dict) -> str:
    card = condition["model_card"]
    head = (card.get("head") or {}).get("kind")
    rule = (card.get("decision") or {}).get("rule")
    parts = [f"model: <code>{html.escape(', '.join(condition['checkpoints']))}</code>"
             + (f", head {html.escape(head)}" if head else "")
             + (f", decision {html.escape(rule)}" if rule else "")
             + f" (card <code>{html.escape(str(card.get('name', '')))}</code>)"]  # fmt: skip
    parts.append("mitigations: " + (html.escape(", ".join(condition["mitigations"])) or "none"))
    point = condition.get("grid") or {}  # the condition's grid point, as the JSON gives it
    if point:
        parts.append(html.escape(", ".join(f"{k} = {v}" for k, v in point.items())))
    seeds = condition["seeds"]
    parts.append(f"{len(seeds)} seeds ({', '.join(map(str, seeds))})")
    if condition["unknown_share"]:
        parts.append(f"category unknown to the auditor: {condition['unknown_share']:.1%}")
    return " · ".join(parts)


def _table(table: pd.DataFrame, shown: pd.DataFrame, columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c).replace(' %', '&nbsp;%')}</th>"
                   for c in ["category", *columns])  # fmt: skip
    rows, kind = [], None
    for (_, numbers), (_, cells) in zip(table.iterrows(), shown.iterrows()):
        if numbers["kind"] != kind:
            kind = numbers["kind"]
            rows.append(f"<tr class='kind'><td colspan='{len(columns) + 1}'>"
                        f"{html.escape(str(kind))}</td></tr>")  # fmt: skip
        cls = " class='unknown'" if numbers["category"] == UNKNOWN else ""
        cells_html = [f"<td>{html.escape(str(numbers['category']))}</td>"]
        for c in columns:
            verdict = VERDICT.get(cells[c]) if c == "four fifths" else None
            cells_html.append(
                f"<td class='{verdict}'>{html.escape(cells[c])}</td>" if verdict
                else f"<td>{html.escape(cells[c])}</td>"
            )  # fmt: skip
        rows.append(f"<tr{cls}>{''.join(cells_html)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
