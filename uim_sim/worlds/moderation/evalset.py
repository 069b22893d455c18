"""A researcher's own evaluation set for the moderation reference mode: a labelled
file (CSV, TSV or Parquet) of texts, labels (0/1, 1 = toxic, or the file's own words
with ``positive_label`` naming the toxic one: HateCheck's ``hateful``) and,
optionally, the identity each text names (the file's names mapped to the study's
groups by ``identity_map``) and the template it was written from (HateCheck's
``templ_id``, Röttger et al. 2021). The file's other columns travel with each text to
``decisions.parquet`` as ``file.COLUMN`` (all, or ``keep_columns``), and a
``group_by`` column's values become groups of the world's error rates
(``false_positive_rate[functionality=…]``). Read once per version of the file; every
problem is a one-line `EvalFileError` naming the parameter it concerns.

Without an identity column, the identity a text names is found by keyword from the
study's terms (`Identities.find`: the defaults and the spec's ``identity_terms``).
Without a frame column, a text's frame is its label (``label=0``, ``label=1``): the
term-permutation null then shuffles identity labels among texts of the same label,
which differ in more than their identity (see docs/moderation.md).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from uim_sim import builtin
from uim_sim.schema import UimError
from uim_sim.vocab.identity import BACKGROUND, DIALECT, Identities

COLUMNS = ("text", "truth", "subgroup", "dialect", "family", "frame", "referent")
KEPT = "file."  # a kept column of the file, in the catalogue and decisions.parquet
MAX_GROUPS = 200  # values of a group_by column (each a group of the world's rates)


def file_group(column: str, value) -> str:
    """The group of the world's rates holding a file's texts whose ``column`` holds
    ``value``: ``functionality=derog_neg_emote_h``."""
    return f"{column}={value}"


class EvalFileError(UimError, ValueError):
    """A bad evaluation file: one line naming the parameter (``eval_file``, a column,
    ``positive_label``, ``identity_map``, ``keep_columns`` or ``group_by``)."""


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
    """The file's table (read once per version of the file); a shipped example's path
    (``scenarios/data/…``) is read from the package where this folder has no such file."""
    path = builtin.locate(path)
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
    identities: Identities,
    *,
    text_column: str = "text",
    label_column: str = "label",
    identity_column: str | None = None,
    frame_column: str | None = None,
    positive_label: str | int | None = None,
    identity_map: dict[str, str] | None = None,
    keep_columns: str | list[str] = "all",
    group_by: list[str] | tuple[str, ...] = (),
) -> pd.DataFrame:
    """The evaluation set as the reference mode scores it, one row per text, with the
    template test set's columns: text, truth, subgroup (the identity named: the
    identity column's value through ``identity_map``, or found by keyword), dialect,
    family (``eval_file``), frame (the frame column's value, or ``label=TRUTH``) and
    referent (the span naming the identity, which redaction replaces; empty if none is
    found); then each kept column as ``file.COLUMN`` (``keep_columns``: ``all``, every
    column the other fields do not read, or a list; ``group_by``'s columns always),
    an empty cell missing."""
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
    labels = _labels(raw, path, label_column, positive_label)
    found = [identities.find(t) for t in texts]
    if identity_column:
        column = _column(frame, path, "identity_column", identity_column)
        subgroups = _identities(column, path, identity_column, identity_map or {}, identities)
        # the span redaction replaces: the keyword found, where it names the same group
        spans = [s if f == g else None for (f, s), g in zip(found, subgroups)]
    else:
        if identity_map:
            raise EvalFileError("identity_map: goes with identity_column")
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
    read = {text_column, label_column, identity_column, frame_column}
    kept = _kept(frame, path, keep_columns, group_by, read)
    return pd.DataFrame(
        {
            "text": texts.tolist(),
            "truth": labels,
            "subgroup": subgroups,
            "dialect": [g == DIALECT for g in subgroups],
            "family": "eval_file",
            "frame": frames,
            "referent": [s or "" for s in spans],
            **{f"{KEPT}{c}": frame[c].map(_missing_if_empty).tolist() for c in kept},
        },
        columns=[*COLUMNS, *(f"{KEPT}{c}" for c in kept)],
    )


def _labels(raw: pd.Series, path: Path, column: str, positive) -> np.ndarray:
    """0/1 labels (1 = toxic): the column's 0/1, or with ``positive_label`` 1 where the
    column holds that label and 0 where it holds the one other label it may hold."""
    words = [_text(v).strip() for v in raw]
    if positive is None:
        labels = pd.to_numeric(pd.Series(words), errors="coerce")
        bad = [i for i, v in enumerate(labels) if v not in (0, 1)]
        if bad:
            raise EvalFileError(
                f"label_column: {path}: line {bad[0] + 2}: column {column!r} holds "
                f"{words[bad[0]]!r}, not a 0/1 label (name the toxic label with "
                "positive_label)"
            )
        labels = labels.astype(int).to_numpy()
    else:
        positive = str(positive)
        values = list(dict.fromkeys(words))
        if positive not in values:
            raise EvalFileError(
                f"positive_label: {positive!r} is not a label of column {column!r} in {path} "
                f"(labels: {values[:10]})"
            )
        if "" in values:
            raise EvalFileError(
                f"label_column: {path}: line {words.index('') + 2}: column {column!r} is empty"
            )
        # the benign label: the commonest other; a rarer one is the odd one out
        others = sorted((v for v in values if v != positive), key=words.count, reverse=True)
        if len(others) > 1:
            raise EvalFileError(
                f"label_column: {path}: line {words.index(others[1]) + 2}: column {column!r} "
                f"holds {others[1]!r}, a third label beside {positive!r} and {others[0]!r}"
            )
        labels = np.array([int(w == positive) for w in words])
    if len(set(labels.tolist())) < 2:
        raise EvalFileError(
            f"label_column: {path}: column {column!r} holds a single class; the "
            "metrics need benign and toxic texts"
        )
    return labels


def _identities(
    column: pd.Series, path: Path, name: str, mapping: dict[str, str], identities: Identities
) -> list[str]:
    """The study's group each text names: the column's value, or the group
    ``identity_map`` maps it to (an empty cell: ``background``)."""
    named = [_text(v).strip() for v in column]
    known = set(identities.groups)
    hint = f"groups: {', '.join(identities.groups)}; add it to identity_terms"
    for value, group in mapping.items():
        if group not in known:
            raise EvalFileError(
                f"identity_map: {value!r} -> {group!r} is not a group of the study ({hint})"
            )
        if value not in named:
            raise EvalFileError(
                f"identity_map: {value!r} is not a value of column {name!r} in {path}"
            )
    # a group as the study writes it: "african american" for african_american
    groups = [mapping.get(v) or identities.group_of(v) or v for v in named]
    for i, group in enumerate(groups):
        if group and group not in known:
            raise EvalFileError(
                f"identity_column: {path}: line {i + 2}: {group!r} is not a group of the "
                f"study ({hint}, or map it with identity_map)"
            )
    return [g or BACKGROUND for g in groups]


def _kept(frame: pd.DataFrame, path: Path, keep, group_by, read: set) -> list[str]:
    """The file's columns kept with each text: ``keep`` (``all``: those ``read`` does
    not name; or a list) and every ``group_by`` column, in the file's order."""
    columns = [str(c) for c in frame.columns]
    for field, names in (("keep_columns", [] if keep == "all" else keep), ("group_by", group_by)):
        for i, name in enumerate(names):
            if name not in columns:
                raise EvalFileError(
                    f"{field}.{i}: {path} has no column {name!r} (columns: {columns})"
                )
    for i, name in enumerate(group_by):
        values = frame[name].map(_missing_if_empty).dropna().nunique()
        if values > MAX_GROUPS:
            raise EvalFileError(
                f"group_by.{i}: column {name!r} of {path} holds {values} values; a group "
                f"is many texts (at most {MAX_GROUPS} groups)"
            )
    wanted = set(group_by) | (set(columns) - read if keep == "all" else set(keep))
    return [c for c in columns if c in wanted]


def _missing_if_empty(value):
    """A kept cell as the file holds it; an empty one (blank or NaN) missing."""
    return None if not _text(value).strip() else value
