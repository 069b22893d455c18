"""Historical callbacks in the design of Bertrand & Mullainathan (2004): resumes of
two quality levels with names from the study's race × gender lists, each called back
at the rate the study observed for its race and quality, or read from a researcher's
file with the study's columns (``firstname``, ``sex``, ``race``, ``call``, optionally
``h``: 1 for a high-quality resume, and ``lastname``: the resume's surname), e.g. the
study's released data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from uim_sim.lfm.heads import HeadError, read_table

# Bertrand & Mullainathan (2004), callback rates by race and resume quality:
# White 8.50 % → 10.79 %, Black 6.19 % → 6.70 % (overall 9.65 % and 6.45 %)
STUDY_CALLBACK_RATES = {
    "white": {"high": 0.1079, "low": 0.0850},
    "black": {"high": 0.0670, "low": 0.0619},
}
QUALITY = {"high": 1, "low": 0}
# the latent skill of a high (1) and a low (0) quality resume, in the audit as in its history
AUDIT_SKILL = {1: 1.5, 0: -0.5}

_RACE = {"w": "white", "white": "white", "b": "black", "black": "black"}
_SEX = {"f": "female", "female": "female", "m": "male", "male": "male"}
COLUMNS = ("firstname", "sex", "race", "call")


def read_callback_file(path: Path) -> pd.DataFrame:
    """The study-shaped file as columns first_name, last_name (empty where the file
    has no ``lastname`` column), race, gender, call (0/1) and quality (1 high, 0 low,
    -1 where the file has no ``h`` column); a one-line `HeadError` naming the line for
    a bad cell."""
    frame = read_table(path)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise HeadError(f"{path}: no column {missing[0]!r} (the study's columns: {list(COLUMNS)})")
    if frame.empty:
        raise HeadError(f"{path}: no rows")
    out = pd.DataFrame({"first_name": _names(frame["firstname"])})
    for column, codes, target in (("race", _RACE, "race"), ("sex", _SEX, "gender")):
        values = frame[column].astype(str).str.strip().str.lower().map(codes)
        _first_bad(path, values.isna(), column, f"one of {sorted(codes)}")
        out[target] = values
    for column, target in (("call", "call"), ("h", "quality")):
        if column not in frame.columns:
            out[target] = -1
            continue
        values = pd.to_numeric(frame[column], errors="coerce")
        _first_bad(path, ~values.isin([0, 1]), column, "0 or 1")
        out[target] = values.astype(int)
    _first_bad(path, out["first_name"] == "", "firstname", "a name")
    out["last_name"] = ""
    if "lastname" in frame.columns:
        out["last_name"] = _names(frame["lastname"])
        _first_bad(path, out["last_name"] == "", "lastname", "a name")
    if out["call"].nunique() < 2:
        raise HeadError(f"{path}: column 'call' holds a single class")
    return out


def _names(column: pd.Series) -> pd.Series:
    """A column of names as text, an empty cell empty (pandas reads it as missing)."""
    return column.fillna("").astype(str).str.strip()


def _first_bad(path: Path, bad: pd.Series, column: str, expected: str) -> None:
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise HeadError(f"{path}: line {row + 2}: column {column!r} must be {expected}")


def draw_callbacks(
    races: np.ndarray, quality: np.ndarray, rates: dict, penalty: np.ndarray, rng
) -> np.ndarray:
    """Callbacks at ``rates[race][quality]``, shifted by ``penalty`` log-odds."""
    names = {v: k for k, v in QUALITY.items()}
    p = np.array([rates[r][names[q]] for r, q in zip(races, quality)], dtype=float)
    logit = np.log(p / (1 - p)) - penalty
    return (rng.random(len(p)) < 1 / (1 + np.exp(-logit))).astype(int)
