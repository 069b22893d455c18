"""No silent fields (issue 27): a field a chosen design makes meaningless is refused in
one line naming it. Each world's Params declares those pairs beside its fields
(`Meaningless` rows in ``meaningless``); this test walks every world's Params, sets
each declared field to a value other than its default together with each design that
makes it meaningless, and requires the refusal. It also walks every field on the
default design: one the run's record leaves out while it is set would be silently
ignored."""

from __future__ import annotations

import itertools
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
import pytest
from conftest import small_audit_spec, write_yaml
from pydantic import TypeAdapter, ValidationError

from uim_sim.cli import main
from uim_sim.schema import GIVEN, format_error, meaningless_rows
from uim_sim.worlds import WORLDS, world_info

PARAMS = {f"{w}.{mode}": model.Params for w in WORLDS
          for mode, model in world_info(w).models.items()}  # fmt: skip
# the pairs issue 27 found: (world, field, the design field that makes it meaningless)
KNOWN = [("hiring", "n_history", "history_file"), ("spread", "n_users", "graph"),
         ("spread", "homophily", "graph"), ("spread", "mean_degree", "graph")]  # fmt: skip
# fields a dose switches off at zero (unknown_share, adaptive_share, trigger_share): not
# a design, since a grid varies the dose through zero; the record leaves them out there
DOSE_ZERO = {"unknown_group", "unknown_ratio", "contacts", "social_weight", "edits",
             "adaptive_accounts", "trigger"}  # fmt: skip


@pytest.fixture
def given(tmp_path) -> dict[str, Path]:
    """A valid file for each field a design names as given (`GIVEN`)."""
    history = tmp_path / "bm.csv"
    pd.DataFrame({"firstname": ["Emily", "Lakisha", "Zoe", "Jamal"] * 10,
                  "sex": ["f", "f", "f", "m"] * 10, "race": ["w", "b", "w", "b"] * 10,
                  "call": [1, 0, 0, 0] * 10}).to_csv(history, index=False)  # fmt: skip
    edges = tmp_path / "edges.csv"
    edges.write_text("".join(f"{i},{(i + 1) % 12}\n" for i in range(12)))
    return {"history_file": history, "edge_file": edges}


def _halved(value: Any) -> Any:
    """Every number of a nested value halved (a mapping of rates: another one)."""
    if isinstance(value, dict):
        return {k: _halved(v) for k, v in value.items()}
    return value / 2 if isinstance(value, float) else value


def other_value(params, name: str) -> Any:
    """A valid value of a field other than its default."""
    info = params.model_fields[name]
    default = info.get_default(call_default_factory=True)
    kind = info.annotation
    adapter = TypeAdapter(Annotated[(kind, *info.metadata)] if info.metadata else kind)
    number = type(default) in (int, float)
    numbers = [default * 1.5, default / 2, default + 1, 0.5] if number else []
    choices = typing.get_args(kind) if typing.get_origin(kind) is Literal else ()
    candidates = [
        *([not default] if isinstance(default, bool) else numbers), *choices,
        default[:1] if isinstance(default, list) else None,
        _halved(default), True, "other", Path("other.csv"), ["other"], [{"adjective": "deaf"}],
        {"other": "other"},
    ]  # fmt: skip
    for candidate in candidates:
        try:
            value = adapter.validate_python(candidate)
        except ValidationError:
            continue
        if value != default:
            return value
    raise AssertionError(f"{params.__name__}.{name}: no other value to try")


def designs(row, given: dict[str, Path]) -> list[dict[str, Any]]:
    """Every design a row names: each alternative of a tuple, a file for `GIVEN`."""
    options = [[given[k]] if v is GIVEN else list(v) if isinstance(v, tuple) else [v]
               for k, v in row.when.items()]  # fmt: skip
    return [dict(zip(row.when, chosen)) for chosen in itertools.product(*options)]


def refusal(params, data: dict) -> str:
    with pytest.raises(ValidationError) as caught:
        params(**data)
    return format_error(caught.value, "params.")


def test_the_known_pairs_are_declared():
    for world, field, design in KNOWN:
        rows = [row for m in world_info(world).models.values()
                for row in meaningless_rows(m.Params)]  # fmt: skip
        assert any(field in row.fields and design in row.when for row in rows), (world, field)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_every_declared_field_is_refused_with_its_design(name, given):
    params = PARAMS[name]
    walked = 0
    for row in meaningless_rows(params):
        for design in designs(row, given):
            made = params(**design)  # the design alone is valid, and so is its record
            assert params(**made.model_dump(mode="json")) == made
            for field in row.fields:
                message = refusal(params, {**design, field: other_value(params, field)})
                assert message == f"params.{row.message(field)}", (design, field)
                walked += 1
    assert walked or not meaningless_rows(params)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_no_field_set_alone_is_left_out_of_the_record(name):
    """A field set to another value on the default design either acts (the run's
    record holds it: it changes the run id) or is refused; never silently dropped."""
    params = PARAMS[name]
    for field in params.model_fields:
        if field == "mode" or field in DOSE_ZERO:
            continue
        value = other_value(params, field)
        try:
            made = params(**{field: value})
        except ValidationError as err:  # refused, for this value, naming the field
            assert format_error(err).startswith(field), (field, format_error(err))
            continue
        assert field in made.model_dump(mode="json"), f"{name}: {field} set but not recorded"


def test_the_cli_refuses_in_one_line_and_writes_nothing(project, given, capsys, tmp_path):
    spec = write_yaml(project / "scenarios" / "bm.yaml", small_audit_spec(
        params={"mode": "audit", "n_jobs": 2, "history": "callbacks",
                "history_file": str(given["history_file"]), "n_history": 400}))  # fmt: skip
    out = tmp_path / "out"
    for command in (["validate", str(spec)], ["run", str(spec), "--out", str(out)]):
        assert main(command) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert "params.n_history: the history is the rows of history_file" in err
    assert not out.exists()
