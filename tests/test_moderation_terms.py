"""The moderation world with a study's own identity terms (``identity_terms``) and a
researcher's own evaluation set in the reference mode (``eval_file``)."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from conftest import ROOT, write_yaml
from test_moderation import history_card

from uim_sim.cli import main
from uim_sim.run import plan
from uim_sim.schema import SpecError
from uim_sim.vocab.identity import GROUPS, Identities
from uim_sim.worlds.moderation import ModerationReference
from uim_sim.worlds.moderation import templates as tpl
from uim_sim.worlds.moderation.params import PlatformParams, ReferenceParams

EVAL_SCENARIO = ROOT / "scenarios" / "moderation_eval_file.yaml"
EVAL_FILE = ROOT / "scenarios" / "data" / "moderation_eval.csv"


def identities(terms) -> Identities:
    return ReferenceParams(identity_terms=terms).identities


# ---------------------------------------------------------------- identity terms


def test_added_terms_are_rendered_like_the_defaults_and_found_in_text():
    ids = identities(["nonbinary", {"adjective": "hard of hearing"}, "immigrant"])
    assert ids.groups[-5:] == ("nonbinary", "hard_of_hearing", "immigrant", "dialect",
                               "background")  # fmt: skip
    assert ids.referents["immigrant"] == (
        ("an immigrant person", "immigrant people"),
        ("someone who is immigrant", "people who are immigrant"),
        ("an immigrant friend", "immigrant friends"),
    )
    test = tpl.test_set(ids)
    assert test.groupby("frame")["subgroup"].nunique().eq(len(ids.groups)).all()
    mine = test[test["subgroup"] == "hard_of_hearing"]
    assert len(mine) == len(test[test["subgroup"] == "gay"]) and mine["truth"].mean() == 0.5
    assert "Being someone who is hard of hearing is wonderful." in set(mine["text"])
    for table in (test, tpl.supplement(ids), tpl.render(tpl.HISTORY_FAMILIES, ids.groups, ids)):
        added = table[table["subgroup"].isin(ids.added)]
        assert set(added["subgroup"]) == set(ids.added)
        assert (added["text"].map(ids.group_named) == added["subgroup"]).all()
    # the defaults are found as before, and nothing of theirs is taken for a new term
    default = test[test["subgroup"].isin(GROUPS)]["text"]
    assert (default.map(ids.group_named) == default.map(Identities().group_named)).all()


def test_without_identity_terms_nothing_changes():
    assert tpl.test_set().equals(tpl.test_set(identities([])))
    for params in (ReferenceParams(), PlatformParams()):
        dumped = params.model_dump(mode="json")
        assert "identity_terms" not in dumped and "eval_file" not in dumped  # run ids kept
    custom = ReferenceParams(identity_terms={"deaf": "deaf"}).model_dump(mode="json")
    assert custom["identity_terms"] == [
        {"name": "deaf", "adjective": "deaf", "person": "a deaf person", "people": "deaf people"}
    ]
    assert ReferenceParams(**custom).identities.groups == identities(["deaf"]).groups


@pytest.fixture
def moderation_spec(project):
    def write(**params):
        spec = {
            "name": "terms", "world": "moderation", "seed": 1, "replicates": 1,
            "cards": ["tiny_biased_history"], "arms": [[]],
            "params": {"mode": "world", "n_users": 60, "n_steps": 2, "n_history": 120,
                       **params},
            "statistics": {"null_permutations": 0, "name_permutations": 20},
        }  # fmt: skip
        return write_yaml(project / "scenarios" / "terms.yaml", spec)

    return write


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"identity_terms": [""]}, "params.identity_terms.0: adjective: an empty term"),
        ({"identity_terms": ["deaf", "Deaf"]}, "params.identity_terms.1: 'Deaf' repeats"),
        ({"identity_terms": ["Muslim"]}, "params.identity_terms.0: 'Muslim' repeats the default"),
        ({"identity_terms": {"queer": "gay"}}, "params.identity_terms.0: 'gay' repeats"),
        ({"identity_terms": ["person"]}, "params.identity_terms.0: 'person' would also be found"),
        ({"identity_terms": [7]}, "params.identity_terms: entry 0: expected a word"),
        ({"identity_terms": {"deaf": 7}}, "params.identity_terms.0.adjective"),
        ({"identity_terms": ["targets"]}, "repeats the pooled read-out 'targets'"),
        ({"identity_terms": {"Deaf people": "deaf"}}, "params.identity_terms.0: name:"),
        ({"history_targets": ["deaf"]}, "params.history_targets.0: 'deaf' is not a group"),
    ],
)
def test_bad_identity_terms_are_one_line_naming_the_field(moderation_spec, tmp_path, capsys,
                                                          params, message):  # fmt: skip
    spec = moderation_spec(**params)
    with pytest.raises(SpecError) as err:
        plan(spec)
    assert message in str(err.value) and "\n" not in str(err.value), str(err.value)
    assert main(["validate", str(spec)]) == 2
    out = tmp_path / "out"
    assert main(["run", str(spec), "--out", str(out)]) == 2 and not out.exists()
    assert message in capsys.readouterr().err.replace("\n", "")


def test_a_run_with_an_added_term_reports_metrics_for_it(moderation_spec, tmp_path):
    spec = moderation_spec(identity_terms=["deaf"], history_targets=["gay", "deaf"])
    out = tmp_path / "out"
    assert main(["run", str(spec), "--out", str(out)]) == 0
    metrics = pd.read_parquet(out / "metrics.parquet")
    last = metrics[metrics["step"] == metrics["step"].max()]
    for metric in ("false_positive_rate", "false_negative_rate", "subgroup_auc", "bpsn_auc",
                   "bnsp_auc", "impact_ratio", "participation"):  # fmt: skip
        assert ((last["metric"] == metric) & (last["group"] == "deaf")).any(), metric
    decisions = pd.read_parquet(out / "decisions.parquet")
    deaf = decisions[(decisions["subgroup"] == "deaf") & (decisions["truth"] == 0)]
    fpr = last.query("metric == 'false_positive_rate' and group == 'deaf'")["value"].item()
    assert len(deaf) and fpr == pytest.approx(deaf["decision"].mean())
    runs = pd.read_parquet(out / "runs.parquet")
    assert runs["param.history_targets"].iloc[0].tolist() == ["gay", "deaf"]
    assert main(["report", str(out)]) == 0
    assert "deaf" in (out / "report" / "metrics_summary.csv").read_text()


def test_a_history_biased_against_an_added_term_raises_its_fpr(tmp_path):
    """MiniLM, a head adapted on history in which texts naming ``deaf`` are toxic with
    log-odds 3 above the rest, against the same head on fair history: scored on the
    template texts that name deaf people or no one (the reference mode, on a file)."""
    ids = identities(["deaf"])
    test = tpl.test_set(ids)
    test = test[test["subgroup"].isin(["deaf", "background"])]
    file = tmp_path / "deaf.csv"
    test[["text", "truth", "subgroup", "frame"]].to_csv(file, index=False)
    fpr = {}
    for bias in (0.0, 3.0):
        world = ModerationReference(
            cards=history_card(bias), rng=1, n_history=200, identity_terms=["deaf"],
            history_targets=["deaf"], eval_file=file, label_column="truth",
            identity_column="subgroup", frame_column="frame", name_permutations=0,
        ).simulate()  # fmt: skip
        last = world.metrics().query("step == 1").set_index(["metric", "group"])["value"]
        fpr[bias] = [last[("false_positive_rate", g)] for g in ("deaf", "background")]
    assert fpr[3.0][0] > fpr[0.0][0] + 0.15, fpr  # measured: 0.13 -> 0.62
    assert fpr[3.0][0] > 3 * fpr[3.0][1], fpr  # and far above the background's


# ---------------------------------------------------------------- an evaluation file


def _eval_spec(root, **params) -> dict:
    spec = yaml.safe_load(EVAL_SCENARIO.read_text())
    spec.update(replicates=2, arms=[[]],
                cards=["minilm_moderation_zero_shot", "minilm_moderation_biased_history"],
                statistics={"null_permutations": 0, "name_permutations": 50})  # fmt: skip
    spec["params"].update(n_history=200, eval_file=str(EVAL_FILE), **params)
    return spec


@pytest.fixture(scope="module")
def eval_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_file")
    spec = write_yaml(root / "eval.yaml", _eval_spec(root))
    out = root / "out"
    assert main(["run", str(spec), "--out", str(out), "--agents-dir", str(ROOT / "agents")]) == 0
    return out


def test_the_shipped_scenario_validates_from_the_project_root(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["validate", "scenarios/moderation_eval_file.yaml"]) == 0


def test_an_evaluation_file_is_scored_instead_of_the_templates(eval_run):
    decisions = pd.read_parquet(eval_run / "decisions.parquet")
    metrics = pd.read_parquet(eval_run / "metrics.parquet")
    source = pd.read_csv(EVAL_FILE)
    assert decisions.groupby("run_id").size().eq(len(source)).all()
    assert set(decisions["text"]) == set(source["text"])
    # identities found by keyword, the added term included; frames from the file
    named = decisions.drop_duplicates("text").set_index("text")
    assert named.loc["I hate immigrants.", "subgroup"] == "immigrant"
    assert named.loc["Many of my colleagues are women.", "subgroup"] == "female"
    assert named.loc["I love sunny mornings.", "subgroup"] == "background"
    assert named.loc["I hate Muslims.", "frame"] == "derog_hate"
    last = metrics[metrics["step"] == 1]
    for group in ("female", "muslim", "gay", "black", "immigrant", "background"):
        aucs = ("subgroup_auc", "bpsn_auc", "bnsp_auc") if group != "background" else ()
        for metric in ("false_positive_rate", "false_negative_rate", *aucs):
            values = last.query("metric == @metric and group == @group")["value"]
            assert len(values) == 4 and values.notna().all(), (metric, group)
    for metric in ("fped", "fned", "final_bias_score", "fped_null_q975", "overall_auc"):
        assert last.query("metric == @metric")["value"].notna().all(), metric
    # one FPR by hand, from the decisions
    run = decisions["run_id"].iloc[-1]
    mine = decisions[(decisions["run_id"] == run) & (decisions["subgroup"] == "muslim")]
    by_hand = mine.loc[mine["truth"] == 0, "decision"].mean()
    fpr = last.query("run_id == @run and metric == 'false_positive_rate' and group == 'muslim'")
    assert fpr["value"].item() == pytest.approx(by_hand)
    assert len(mine) == 10 and (mine["truth"] == 0).sum() == 6


def test_without_frame_or_identity_columns_frames_are_labels(tmp_path):
    file = tmp_path / "plain.csv"
    pd.read_csv(EVAL_FILE).drop(columns="template").to_csv(file, index=False)
    params = ReferenceParams(eval_file=file, identity_terms=["immigrant"])
    texts = params.evaluation_set()
    assert set(texts["frame"]) == {"label=0", "label=1"}
    assert (texts["frame"] == "label=" + texts["truth"].astype(str)).all()
    assert texts.loc[texts["text"] == "I love immigrants.", "referent"].item() == "immigrants"
    # without the added term, immigrants name no group of the study
    plain = ReferenceParams(eval_file=file).evaluation_set()
    assert plain.loc[plain["text"] == "I love immigrants.", "subgroup"].item() == "background"


def _bad_file(tmp_path, rows: list[dict]) -> str:
    file = tmp_path / "bad.csv"
    pd.DataFrame(rows).to_csv(file, index=False)
    return str(file)


GOOD = [{"text": "I love women.", "label": 0}, {"text": "I hate women.", "label": 1}]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: {"eval_file": str(t / "missing.csv")}, "params.eval_file: "),
        (lambda t: {"eval_file": _bad_file(t, GOOD), "label_column": "toxic"},
         "params.label_column: "),
        (lambda t: {"eval_file": _bad_file(t, GOOD), "text_column": "comment"},
         "params.text_column: "),
        (lambda t: {"eval_file": _bad_file(t, [*GOOD, {"text": "Hm.", "label": 2}])},
         "params.label_column: "),
        (lambda t: {"eval_file": _bad_file(t, [*GOOD, {"text": "Hm.", "label": "yes"}])},
         "line 4: column 'label' holds 'yes', not a 0/1 label"),
        (lambda t: {"eval_file": _bad_file(t, GOOD), "identity_column": "group"},
         "params.identity_column: "),
        (lambda t: {"eval_file": _bad_file(t, [{**r, "group": "martian"} for r in GOOD]),
                    "identity_column": "group"}, "'martian' is not a group of the study"),
        (lambda t: {"eval_file": _bad_file(t, GOOD), "frame_column": "template"},
         "params.frame_column: "),
        (lambda t: {"eval_file": None}, "params.text_column: goes with eval_file: PATH"),
    ],
)  # fmt: skip
def test_bad_evaluation_files_are_one_line_naming_the_field(tmp_path, capsys, change, message):
    spec = _eval_spec(tmp_path)
    spec["params"].update(change(tmp_path))
    path = write_yaml(tmp_path / "bad.yaml", spec)
    for command in (["validate", str(path)], ["run", str(path), "--out", str(tmp_path / "o")]):
        assert main([*command, "--agents-dir", str(ROOT / "agents")]) == 2
        err = capsys.readouterr().err
        assert message in err.replace("\n", "") and err.count("error:") == 1, err
    assert not (tmp_path / "o").exists()


def test_the_eval_run_is_deterministic(eval_run, tmp_path):
    spec = write_yaml(tmp_path / "again.yaml", _eval_spec(tmp_path))
    again = tmp_path / "again"
    assert main(["run", str(spec), "--out", str(again), "--agents-dir", str(ROOT / "agents")]) == 0
    for name in ("decisions.parquet", "metrics.parquet", "runs.parquet"):
        assert (again / name).read_bytes() == (eval_run / name).read_bytes(), name
