"""The base of every schema a user writes (scenario specs, agent cards, corpus cards,
world parameters, mitigation parameters): strict pydantic models and one-line errors.

Every model forbids unknown keys, so a typo is an error, not a silent default; a
number field refuses booleans (``seed: true``) and non-finite floats (``.inf``,
``.nan``, or ``1e400``, which YAML reads as infinity). `read_yaml` refuses files that
are not UTF-8, hold characters YAML does not allow, or repeat a key in one mapping
(YAML would keep the last silently). `parse` turns a validation failure into a
`SpecError` whose message is one line naming the file, the field path and the problem.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)


class UimError(Exception):
    """Every refusal a user meets: `str(err)` is one line for the terminal (the CLI
    prints it and exits 2). Each kind below is also the built-in error it refines."""


class SpecError(UimError, ValueError):
    """A user-facing input is invalid. `str(err)` is one line for the terminal."""


GIVEN = "any value but none"  # a design a `Meaningless` names: the field is given


@dataclass(frozen=True)
class Meaningless:
    """A row of a model's table of fields a chosen design makes meaningless: each of
    ``fields`` acts nowhere where every ``when`` holds (a field holding the value, one
    of a tuple of values, or, for `GIVEN`, any value but None). ``why`` is the
    refusal, ``{field}`` the field's name. A model declares its rows in
    ``meaningless`` (`Strict`), beside its fields; its parents' rows hold too."""

    fields: tuple[str, ...]
    when: Mapping[str, Any]
    why: str

    def holds(self, model: BaseModel) -> bool:
        return self.holds_in({k: getattr(model, k) for k in self.when})

    def holds_in(self, values: Mapping[str, Any]) -> bool:
        """Does the design hold for these values (a field absent: None)?"""
        return all(_matches(values.get(k), v) for k, v in self.when.items())

    def message(self, field: str) -> str:
        return f"{field}: {self.why.format(field=field)}"


def _matches(value: Any, wanted: Any) -> bool:
    if wanted is GIVEN:
        return value is not None
    return value in wanted if isinstance(wanted, tuple) else value == wanted


def meaningless_rows(cls: type[BaseModel]) -> list[Meaningless]:
    """Every row of a model's table, its parents' included (`Meaningless`)."""
    return [row for c in cls.__mro__ for row in vars(c).get("meaningless", ())]


class Strict(BaseModel):
    """Unknown keys, booleans where numbers are meant and non-finite floats are
    refused, in this model and every model built on it; so is a field the chosen
    design makes meaningless (the model's `Meaningless` table)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    # fields a chosen design makes meaningless, each refused in one line where given
    meaningless: ClassVar[tuple[Meaningless, ...]] = ()

    @model_validator(mode="after")
    def _no_silent_fields(self) -> Strict:
        """A field given where the design makes it meaningless is refused, naming it;
        given at its default it passes where the run's record holds it anyway (a
        record is read back to build the run's world: it must stay valid)."""
        record = None
        for row in meaningless_rows(type(self)):
            if not row.holds(self):
                continue
            for name in row.fields:
                if name not in self.model_fields_set:
                    continue
                if getattr(self, name) == type(self).model_fields[name].get_default(
                    call_default_factory=True
                ):
                    record = self.model_dump(mode="json") if record is None else record
                    if name in record:
                        continue
                raise ValueError(row.message(name))
        return self

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic reads true as 1 for an int or float field: `seed: true` would run
        if _holds_bool(value) and _numbers_only(cls.model_fields[info.field_name].annotation):
            raise ValueError(f"{_yaml_word(value)} is a boolean, not a number")
        return value


def _holds_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, list | tuple | set | frozenset):
        return any(_holds_bool(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_bool(v) for v in value.values())
    return False


def _yaml_word(value: Any) -> str:
    found = value
    while not isinstance(found, bool):  # the first boolean inside a list or mapping
        items = list(found.values() if isinstance(found, dict) else found)
        found = next(v for v in items if _holds_bool(v))
    return "true" if found else "false"


def _numbers_only(annotation: Any) -> bool:
    """Does a field of this type take numbers (int, float), and nothing a boolean
    could rightly be (bool, Any, a nested model, which checks itself)?"""
    leaves = _leaves(annotation)
    return any(leaf in (int, float) for leaf in leaves) and all(
        leaf in (int, float, str, type(None)) or (isinstance(leaf, type) and issubclass(leaf, Path))
        for leaf in leaves
    )


def _leaves(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _leaves(typing.get_args(annotation)[0])
    if origin is Literal:
        return [type(a) for a in typing.get_args(annotation)]
    if origin in (typing.Union, types.UnionType, list, dict, tuple, set, frozenset):
        return [leaf for a in typing.get_args(annotation) if a is not Ellipsis
                for leaf in _leaves(a)]  # fmt: skip
    return [annotation]


Share = Annotated[float, Field(gt=0.0, le=1.0)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
# a backdoor's trigger phrase: one to three lower-case words (a corpus card plants it,
# the moderation world's attacker writes it)
Trigger = Annotated[str, Field(pattern=r"^[a-z]{2,12}( [a-z]{2,12}){0,2}$")]


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
    return _one_line(f"{where}{msg}" + (f" (and {more} more problem(s))" if more else ""))


# the characters YAML allows in a stream (PyYAML's Reader refuses the others)
NOT_YAML = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
BOMS = (  # UTF-32's marks start with UTF-16's: test them first
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, line: int, first: int) -> None:
        super().__init__(f"line {line}: key {key!r} appears twice (first on line {first})")


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key repeated in one mapping (by default the
    last one wins silently). Merge keys (``<<: *anchor``) may still be overridden."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise _DuplicateKey(key, line, seen[key])
                seen[key] = line
            except TypeError:  # an unhashable key: the base class says so
                continue
        return super().construct_mapping(node, deep=deep)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def read_text(path: Path) -> str:
    """A user's text file as a string: UTF-8 (a byte-order mark is allowed), with
    no character YAML refuses; anything else is a one-line `SpecError`."""
    raw = path.read_bytes()
    for bom, name in BOMS:
        if raw.startswith(bom):
            raise SpecError(f"{path}: the file is {name} text; save it as UTF-8")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpecError(
            f"{path}: line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}, e.g. Latin-1); "
            "save the file as UTF-8"
        ) from None
    bad = NOT_YAML.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        hint = " (is the file UTF-16? save it as UTF-8)" if bad.group() == "\x00" else ""
        raise SpecError(
            f"{path}: line {line}: the character U+{ord(bad.group()):04X} is not allowed in "
            f"YAML{hint}"
        )
    return text


def read_yaml(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such file")
    text = read_text(path)
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a safe loader
    except _DuplicateKey as exc:
        raise SpecError(f"{path}: {exc}; give each key once") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or exc
        raise SpecError(_one_line(f"{path}:{line} not valid YAML ({problem})")) from None
    except RecursionError:
        raise SpecError(f"{path}: not valid YAML (nested too deeply)") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping at the top level")
    return data


def parse(model: type[BaseModel], data: dict[str, Any], source: str) -> Any:
    """Validate ``data`` against ``model``; any problem is a one-line `SpecError`
    starting with ``source`` (a file; empty: the field alone)."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise SpecError(format_error(err, f"{source}: " if source else "")) from None
