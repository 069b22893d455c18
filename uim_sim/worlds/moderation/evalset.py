"""A researcher's own evaluation set for the moderation reference mode: a labelled
file (CSV, TSV or Parquet) of texts, 0/1 labels (1 = toxic) and, optionally, the
identity each text names and the template it was written from (HateCheck's
``templ_id``, Röttger et al. 2021). Read once per version of the file; every problem
is a one-line `EvalFileError` naming the parameter it concerns.

Without an identity column, the identity a text names is found by keyword from the
study's terms (`Identities.find`: the defaults and the spec's ``identity_terms``).
Without a frame column, a text's frame is its label (``label=0``, ``label=1``): the
term-permutation null then shuffles identity labels among texts of the same label,
which differ in more than their identity (see docs/moderation.md).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from uim_sim.schema import UimError
from uim_sim.vocab.identity import BACKGROUND, DIALECT, Identities

COLUMNS = ("text", "truth", "subgroup", "dialect", "family", "frame", "referent")


class EvalFileError(UimError, ValueError):
    """A bad evaluation file: one line naming the parameter (``eval_file``,
    ``text_column``, ``label_column``, ``identity_column`` or ``frame_column``)."""


@lru_cache(maxsize=8)
def _read(path: str, mtime_ns: int, size: int) -> pd.DataFrame:
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in (".csv", ".tsv", ".parquet"):
        raise EvalFileError(f"eval_file: {path}: expected a .csv, .tsv or .parquet file")
    try:
        if suffix == ".parquet":
            return pd.read_parquet(file)
        return pd.read_csv(file, sep="\t" if suffix == ".tsv" else ",", keep_default_na=False)
    except Exception as exc:  # pandas raises many types for a malformed file
        raise EvalFileError(
            f"eval_file: {path}: cannot be read ({type(exc).__name__}: {exc})"
        ) from None


def read_table(path: Path) -> pd.DataFrame:
    """The file's table (read once per version of the file)."""
    path = Path(path)
    if not path.is_file():
        raise EvalFileError(f"eval_file: {path}: no such file")
    info = path.stat()
    return _read(str(path), info.st_mtime_ns, info.st_size).copy()


def _column(frame: pd.DataFrame, path: Path, field: str, name: str) -> pd.Series:
    if name not in frame.columns:
        raise EvalFileError(
            f"{field}: {path} has no column {name!r} (columns: {list(frame.columns)})"
        )
    return frame[name]


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and value != value) else str(value)


def read_eval_file(
    path: Path,
    text_column: str,
    label_column: str,
    identity_column: str | None,
    frame_column: str | None,
    identities: Identities,
) -> pd.DataFrame:
    """The evaluation set as the reference mode scores it, one row per text, with the
    template test set's columns: text, truth, subgroup (the identity named: the
    identity column's value, or found by keyword), dialect, family (``eval_file``),
    frame (the frame column's value, or ``label=TRUTH``) and referent (the span
    naming the identity, which redaction replaces; empty if none is found)."""
    path = Path(path)
    frame = read_table(path)
    if frame.empty:
        raise EvalFileError(f"eval_file: {path}: no rows")
    texts = _column(frame, path, "text_column", text_column)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if bad:
        raise EvalFileError(
            f"text_column: {path}: line {bad[0] + 2}: column {text_column!r} is empty"
        )
    raw = _column(frame, path, "label_column", label_column)
    labels = pd.to_numeric(raw.astype(str).str.strip(), errors="coerce")
    bad = [i for i, v in enumerate(labels) if v not in (0, 1)]
    if bad:
        raise EvalFileError(
            f"label_column: {path}: line {bad[0] + 2}: column {label_column!r} holds "
            f"{_text(raw.iloc[bad[0]])!r}, not a 0/1 label"
        )
    if labels.nunique() < 2:
        raise EvalFileError(
            f"label_column: {path}: column {label_column!r} holds a single class; the "
            "metrics need benign and toxic texts"
        )
    found = [identities.find(t) for t in texts]
    if identity_column:
        named = [_text(v).strip() for v in _column(frame, path, "identity_column", identity_column)]
        known = set(identities.groups)
        for i, group in enumerate(named):
            if group and group not in known:
                raise EvalFileError(
                    f"identity_column: {path}: line {i + 2}: {group!r} is not a group of the "
                    f"study (groups: {', '.join(identities.groups)}; add it to identity_terms)"
                )
        subgroups = [g or BACKGROUND for g in named]
        # the span redaction replaces: the keyword found, where it names the same group
        spans = [s if f == g else None for (f, s), g in zip(found, subgroups)]
    else:
        subgroups = [g for g, _ in found]
        spans = [s for _, s in found]
    if frame_column:
        frames = [_text(v).strip() for v in _column(frame, path, "frame_column", frame_column)]
        empty = [i for i, f in enumerate(frames) if not f]
        if empty:
            raise EvalFileError(
                f"frame_column: {path}: line {empty[0] + 2}: column {frame_column!r} is empty"
            )
    else:
        frames = [f"label={int(v)}" for v in labels]
    return pd.DataFrame(
        {
            "text": texts.tolist(),
            "truth": labels.astype(int).to_numpy(),
            "subgroup": subgroups,
            "dialect": [g == DIALECT for g in subgroups],
            "family": "eval_file",
            "frame": frames,
            "referent": [s or "" for s in spans],
        },
        columns=list(COLUMNS),
    )
