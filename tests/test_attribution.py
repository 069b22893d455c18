"""Attribution: the Shapley split of a harm over stages made clean one at a time."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import small_audit_spec, write_yaml

from uim_sim.cli import main
from uim_sim.report.attribution import shapley
from uim_sim.run.plan import plan


def test_shapley_splits_additive_and_interacting_harm():
    f = frozenset
    additive = {f(): 0, f("a"): 0.3, f("b"): 0.1, f("ab"): 0.4}
    assert shapley(additive, ["a", "b"]) == pytest.approx({"a": 0.3, "b": 0.1})
    together = {f(): 0, f("a"): 0, f("b"): 0, f("ab"): 0.4}  # harm only when both
    assert shapley(together, ["a", "b"]) == pytest.approx({"a": 0.2, "b": 0.2})
    three = {f(s): len(s) ** 2 * 0.1 for n in range(4) for s in __import__("itertools")
             .combinations("abc", n)}  # fmt: skip
    values = shapley(three, list("abc"))
    assert sum(values.values()) == pytest.approx(three[f("abc")])  # efficiency
    assert values["a"] == pytest.approx(values["b"]) == pytest.approx(values["c"])  # symmetry


def attribution_spec(**stages) -> dict:
    return small_audit_spec(
        cards=["tiny_biased_history"], arms=[[]], replicates=2,
        attribution={"stages": stages or {
            "adaptation": {"card.head.history_bias": 0.0},
            "history_size": {"n_history": 60},
        }},
    )  # fmt: skip


def test_the_plan_runs_every_combination_on_the_same_seeds(project):
    spec = write_yaml(project / "scenarios" / "a.yaml", attribution_spec())
    tasks = plan(spec).tasks
    assert len(tasks) == 4 * 2
    fair = [t for t in tasks if t.grid["clean.adaptation"]]
    assert {t.card.head.history_bias for t in fair} == {0.0}
    assert {t.card.head.history_bias for t in tasks if t not in fair} == {2.5}
    assert {t.params["n_history"] for t in tasks if t.grid["clean.history_size"]} == {60}
    assert len({t.seed for t in tasks}) == 2  # replicates share seeds across combinations


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ({"x": {"card.head.nope": 1}}, "card.head.nope: card tiny_biased_history has no"),
        ({"x": {"not_a_param": 1}}, "neither corpus.*, card.* nor hiring parameters"),
        ({"x": {"corpus.knobs.association_skew": 0.0}}, "corpus.* keys need forged"),
        ({"x": {"n_history": -3}}, "attribution.stages.x"),
        ({"x": {}}, "name at least one override"),
    ],
)
def test_bad_attribution_blocks_are_one_line_errors(project, capsys, stages, message):
    spec = write_yaml(project / "scenarios" / "a.yaml", attribution_spec(**stages))
    assert main(["validate", str(spec), "--agents-dir", str(project / "agents")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err.strip()


def test_the_report_splits_the_harm_and_the_parts_sum_to_the_total(project, tmp_path):
    spec = write_yaml(project / "scenarios" / "a.yaml", attribution_spec())
    out = tmp_path / "out"
    assert main(["attribute", str(spec), "--out", str(out), "--agents-dir",
                 str(project / "agents")]) == 0  # fmt: skip
    table = pd.read_csv(out / "report" / "attribution.csv")
    assert list(table["stage"]) == ["adaptation", "history_size", "total"]
    parts = table[table["stage"] != "total"]["share"].sum()
    assert parts == pytest.approx(table.loc[table["stage"] == "total", "share"].item())
    assert (out / "report" / "attribution.png").is_file()
    assert "Attribution: where the harm comes from" in (out / "report" / "summary.md").read_text()


def test_attribute_without_a_block_is_a_one_line_error(project, tmp_path, capsys):
    spec = write_yaml(project / "scenarios" / "s.yaml", small_audit_spec())
    assert main(["attribute", str(spec), "--out", str(tmp_path / "o"), "--agents-dir",
                 str(project / "agents")]) == 2  # fmt: skip
    assert "attribution: missing" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
