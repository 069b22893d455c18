"""Writing the report's pages: ``summary.md`` and ``index.html``, with the provenance
of the results (package version, spec, seeds), the section's explanation, warnings,
notes on the mitigations used, the headline table, more tables (the comparison of
interventions) and every figure with its caption. ``index.html`` embeds its figures:
one file to mail or archive."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
line-height:1.45;color:#222}
table{border-collapse:collapse;font-size:0.85em;margin:1em 0}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}
th{background:#f4f4f4}
figure{margin:1.5em 0}figcaption{font-size:0.9em;color:#444;max-width:900px}
.warn{background:#fff4e5;border-left:4px solid #e69500;padding:0.4em 0.8em}
.note{background:#eef5ff;border-left:4px solid #3b78c4;padding:0.4em 0.8em}
code{background:#f2f2f2;padding:0 3px}
"""


@dataclass
class Page:
    title: str
    provenance: list[str]
    sections: list[tuple[str, str]]  # (heading, Markdown paragraph)
    warnings: list[str]
    notes: list[str]
    table: pd.DataFrame  # display strings
    figures: list[tuple[Path, str, str]]  # (file, title, caption)
    # more tables after the headline: (heading, Markdown paragraph, display strings)
    tables: list[tuple[str, str, pd.DataFrame]] = field(default_factory=list)


def inline(text: str) -> str:
    """Markdown's inline code and emphasis as HTML (the only Markdown sections use)."""
    text = html.escape(text, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)


def markdown(page: Page) -> str:
    lines = [f"# {page.title}", "", *[f"- {p}" for p in page.provenance], ""]
    for heading, text in page.sections:
        lines += [f"## {heading}", "", text, ""]
    if page.warnings:
        lines += ["### Warnings", "", *[f"- ⚠ {w}" for w in page.warnings], ""]
    if page.notes:
        lines += ["### Read with care", "", *[f"- {n}" for n in page.notes], ""]
    lines += [page.table.to_markdown(index=False, disable_numparse=True), ""]
    for heading, text, table in page.tables:
        lines += [f"## {heading}", "", text, "", table.to_markdown(index=False,
                  disable_numparse=True), ""]  # fmt: skip
    for file, title, caption in page.figures:
        lines += [f"![{title}]({file.name})", "", f"*{title}.* {caption}", ""]
    return "\n".join(lines)


def to_html(page: Page) -> str:
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(page.title)}"
        f"</title><style>{CSS}</style></head><body><h1>{html.escape(page.title)}</h1>",
        "<ul>" + "".join(f"<li>{inline(p)}</li>" for p in page.provenance) + "</ul>",
    ]
    for heading, text in page.sections:
        parts.append(f"<h2>{html.escape(heading)}</h2><p>{inline(text)}</p>")
    if page.warnings:
        parts.append(
            "<div class='warn'><b>Warnings</b><ul>"
            + "".join(f"<li>{inline(w)}</li>" for w in page.warnings)
            + "</ul></div>"
        )
    if page.notes:
        parts.append(
            "<div class='note'><b>Read with care</b><ul>"
            + "".join(f"<li>{inline(n)}</li>" for n in page.notes)
            + "</ul></div>"
        )
    parts.append(page.table.to_html(index=False, escape=True, border=0))
    for heading, text, table in page.tables:
        parts.append(f"<h2>{html.escape(heading)}</h2><p>{inline(text)}</p>")
        parts.append(table.to_html(index=False, escape=True, border=0))
    for file, title, caption in page.figures:
        data = base64.b64encode(Path(file).read_bytes()).decode("ascii")
        parts.append(  # embedded: the page is one self-contained file
            f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(title)}' "
            f"style='max-width:100%'><figcaption><b>{html.escape(title)}.</b> "
            f"{inline(caption)}</figcaption></figure>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)
