"""The base of every schema a user writes (scenario specs, agent cards, corpus cards,
world parameters, mitigation parameters): strict pydantic models and one-line errors.

Every model forbids unknown keys, so a typo is an error, not a silent default.
`parse` turns a validation failure into a `SpecError` whose message is one line
naming the file, the field path and the problem.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class SpecError(ValueError):
    """A user-facing input is invalid. `str(err)` is one line for the terminal."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Share = Annotated[float, Field(gt=0.0, le=1.0)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]


def digest(obj: Any) -> str:
    """A content hash of JSON-able data (key order does not matter)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def format_error(err: ValidationError, prefix: str = "") -> str:
    """One line for the first problem: ``file: a.b.c: message``."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"] if not str(p).startswith("function-"))
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown field"
    where = f"{prefix}{loc}: " if loc else prefix
    more = len(err.errors()) - 1
    return f"{where}{msg}" + (f" (and {more} more problem(s))" if more else "")


def read_yaml(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise SpecError(f"{path}:{line} not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping at the top level")
    return data


def parse(model: type[BaseModel], data: dict[str, Any], source: str) -> Any:
    """Validate ``data`` against ``model``; any problem is a one-line `SpecError`."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise SpecError(format_error(err, f"{source}: ")) from None
