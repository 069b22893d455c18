"""The inheritance matrix (`uim-sim matrix`): its file validated, its cells, the slope
and the correction across cells, and a small matrix end to end."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import forged_zero_shot_card, write_yaml
from scipy import stats
from typer.testing import CliRunner

from uim_sim import matrix as mx
from uim_sim.cli import app
from uim_sim.schema import SpecError

HARMS = {"disparity": {"label": "impact ratio", "metric": "impact_ratio", "groups": ["black"],
                       "worse": "lower"}}  # fmt: skip


def matrix_file(project, **changes):
    write_yaml(project / "scenarios" / "hiring.yaml", {
        "name": "m_hiring", "world": "hiring", "cards": ["forged"],
        "params": {"mode": "audit", "n_jobs": 2},
        "statistics": {"null_permutations": 0, "name_permutations": 20},
    })  # fmt: skip
    if not (project / "scenarios" / "moderation.yaml").exists():  # a test's own stays
        write_yaml(project / "scenarios" / "moderation.yaml", {
            "name": "m_moderation", "world": "moderation", "cards": ["forged"],
            "params": {"mode": "reference", "n_history": 100},
        })  # fmt: skip
    data = {
        "name": "m",
        "seeds": [0],
        "weaknesses": {"skew": {"knob": "association_skew", "doses": [0.9]},
                       "noise": {"knob": "label_noise", "doses": [0.3]},
                       "ood": {"param": "ood_share", "doses": [1.0]}},
        "worlds": {"hiring": {"scenario": "hiring.yaml", "harms": HARMS},
                   "moderation": {"scenario": "moderation.yaml", "harms": HARMS}},
        **changes,
    }  # fmt: skip
    return write_yaml(project / "scenarios" / "matrix.yaml", data)


def test_cells_say_why_a_weakness_cannot_reach_a_world(project):
    matrix, cells = mx.load_matrix(matrix_file(project))
    by_name = {c.weakness: c for c in cells if c.world == "hiring"}
    assert by_name["skew"].spec["grid"] == {"corpus.knobs.association_skew": [0.0, 0.9],
                                            "corpus.seed": [0]}  # fmt: skip
    assert by_name["skew"].spec["name"] == "m_hiring-skew" and not by_name["skew"].reason
    assert by_name["noise"].spec is None and "no sentence" in by_name["noise"].reason
    assert by_name["ood"].spec is None
    assert by_name["ood"].reason == "the hiring world has no parameter ood_share"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"weaknesses": {"x": {"knob": "skewness", "doses": [0.5]}}}, "weaknesses.x.knob"),
        ({"weaknesses": {"x": {"knob": "long_tail", "param": "ood_share", "doses": [0.5]}}},
         "either knob"),
        ({"weaknesses": {"x": {"knob": "long_tail", "doses": [0.6, 0.3]}}}, "must rise"),
        ({"weaknesses": {"x": {"knob": "long_tail", "doses": [0.0, 0.3]}}}, "doses.0"),
        ({"seeds": [1, 1]}, "repeat a seed"),
        ({"weaknesses": {"x": {"param": "ood_shre", "doses": [0.5]}}},
         "no world of the matrix has a parameter 'ood_shre'"),
        ({"weaknesses": {"x": {"knob": "long_tail", "doses": [0.5, 1.0]}}},
         "1.0 is out of long_tail's range"),
        ({"weaknesses": {"checkpoints": {"knob": "long_tail", "doses": [0.5]}}},
         "cannot name a cell's folder"),
        ({"worlds": {"remedies": {"scenario": "hiring.yaml", "harms": HARMS}}},
         "'remedies' cannot name a cell's folder"),
        ({"worlds": {"hiring": {"scenario": "hiring.yaml", "harms": HARMS,
                                "weaknesses": ["skwe"]}}}, "'skwe' is not a weakness"),
        ({"worlds": {"hiring": {"scenario": "nowhere.yaml", "harms": HARMS}}}, "no such file"),
        ({"worlds": {"hiring": {"scenario": "hiring.yaml", "harms": {}}}}, "harms"),
        ({"worlds": {"hiring": {"scenario": "hiring.yaml",
                                "harms": {"h": {"label": "x", "metric": "m"}}}}}, "worse"),
        ({"worlds": {"hiring": {"scenario": "hiring.yaml", "harms": HARMS,
                                "remedies": {"skew": {"r": {}}}}}}, "needs apply"),
        ({"worlds": {"hiring": {"scenario": "hiring.yaml", "harms": HARMS,
                                "remedies": {"skwe": {"r": {"apply": ["name_redaction"]}}}}}},
         "remedies: 'skwe' is not a weakness"),
        ({"worlds": {"hiring": {"scenario": "hiring.yaml", "harms": HARMS,
                                "remedies": {"noise": {"r": {"card": "forged"}}}}}},
         "remedies.noise: the cell does not apply"),
    ],
)  # fmt: skip
def test_a_bad_matrix_is_one_line_naming_the_field(project, changes, message):
    path = matrix_file(project, **changes)
    with pytest.raises(SpecError, match=message):
        mx.load_matrix(path)
    result = CliRunner().invoke(app, ["matrix", str(path), "--out", str(project / "out")])
    assert result.exit_code == 2 and message.split(".")[-1] in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (project / "out").exists()
    checked = CliRunner().invoke(app, ["validate", str(path)])  # the same refusal
    assert checked.exit_code == 2 and checked.output == result.output


@pytest.mark.parametrize(
    ("remedy", "message"),
    [({"apply": ["name_redacton"]}, "unknown mitigation 'name_redacton'"),
     ({"card": "nobody"}, "nobody")],
)  # fmt: skip
def test_a_remedy_that_cannot_run_is_refused_before_anything_runs(project, remedy, message):
    world = {"scenario": "hiring.yaml", "harms": HARMS, "remedies": {"skew": {"r": remedy}}}
    forged_zero_shot_card(project, {"name": "tiny", "sentences": 500})  # card `forged`
    skew = {"skew": {"knob": "association_skew", "doses": [0.9]}}
    path = matrix_file(project, worlds={"hiring": world}, weaknesses=skew)
    result = CliRunner().invoke(app, ["matrix", str(path), "--out", str(project / "out")])
    assert result.exit_code == 2 and "worlds.hiring.remedies.skew.r" in result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (project / "out").exists()
    assert CliRunner().invoke(app, ["validate", str(path)]).output == result.output
    fixed = {"scenario": "hiring.yaml", "harms": HARMS,
             "remedies": {"skew": {"r": {"apply": ["name_redaction"]}}}}  # fmt: skip
    ok = matrix_file(project, worlds={"hiring": fixed}, weaknesses=skew)
    checked = CliRunner().invoke(app, ["validate", str(ok)])
    assert checked.exit_code == 0 and "inheritance matrix, 1 cell(s) to run" in checked.output
    assert "1 remedy plan(s)" in checked.output and not (project / "out").exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"grid": {"n_jobs": [2, 3]}}, "has a grid"),
     ({"cards": ["forged", "tiny_zero_shot"]}, "one forged card"),
     ({"arms": [[], ["name_redaction"]]}, "no mitigation arm")],
)  # fmt: skip
def test_a_scenario_the_matrix_cannot_read_is_refused(project, changes, message):
    path = matrix_file(project)
    write_yaml(project / "scenarios" / "hiring.yaml", {
        "name": "m_hiring", "world": "hiring", "cards": ["forged"],
        "params": {"mode": "audit", "n_jobs": 2}, **changes,
    })  # fmt: skip
    with pytest.raises(SpecError, match=message):
        mx.load_matrix(path)
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(project / "o")])
    assert result.exit_code == 2 and "run it with `uim-sim matrix" in result.output


def test_the_slope_its_interval_and_the_probe_correlation():
    rng = np.random.default_rng(0)
    dose = np.repeat([0.0, 0.3, 0.6, 0.9], 3)
    harm = 1.0 - 0.4 * dose + rng.normal(0, 0.02, dose.size)
    units = pd.DataFrame({"dose": dose, "seed": np.tile([0, 1, 2], 4), "h": harm,
                          "probe": dose + rng.normal(0, 0.01, dose.size),
                          "checkpoint": [f"c{i}" for i in range(dose.size)]})  # fmt: skip
    row = mx._effect(units, "h")
    fit = stats.linregress(dose, harm)
    assert row["slope"] == pytest.approx(fit.slope) and row["p"] == pytest.approx(fit.pvalue)
    assert row["ci_low"] < -0.4 < row["ci_high"] < 0
    assert row["checkpoints"] == 12 and row["probe_rho"] < -0.8
    assert row["spread_p"] == pytest.approx(
        stats.levene(*[harm[dose == d] for d in (0, 0.3, 0.6, 0.9)], center="median").pvalue
    )
    flat = mx._effect(units.assign(h=1.0), "h")  # a test all the same: p 1, in the correction
    assert flat["slope"] == 0 and flat["p"] == 1
    gap = mx._effect(units.assign(h=np.where(dose == 0.9, np.nan, harm)), "h")
    assert gap["points"] == 9 and np.isfinite(gap["p"])  # an undefined point is left out
    # a world parameter: one checkpoint a seed at every dose, the slope fitted within seeds
    paired = units.assign(h=harm + np.tile([0.0, 0.3, -0.3], 4))
    paired.attrs["paired"] = True
    pooled = paired.copy()
    pooled.attrs["paired"] = False
    within, pooled = mx._effect(paired, "h"), mx._effect(pooled, "h")
    assert within["slope"] == pytest.approx(pooled["slope"])
    assert within["stderr"] < pooled["stderr"] / 3  # the seeds' offsets are not noise
    assert "beyond_null_clean" not in row  # no null band: nothing counted


def test_checkpoints_beyond_their_null_band_are_counted_on_the_worse_side():
    dose = np.repeat([0.0, 0.9], 3)
    units = pd.DataFrame({"dose": dose, "seed": np.tile([0, 1, 2], 2), "probe": dose,
                          "h": [0.0, 0.05, -0.2, 0.2, 0.04, 0.3],
                          "h.null_low": -0.1, "h.null_high": 0.1,
                          "checkpoint": [f"c{i}" for i in range(6)]})  # fmt: skip
    higher = mx._effect(units, "h", "higher")
    assert (higher["beyond_null_clean"], higher["beyond_null_top"]) == (0, 2)
    assert higher["null_points_clean"] == higher["null_points_top"] == 3
    lower = mx._effect(units, "h", "lower")  # the same points, the other side worse
    assert (lower["beyond_null_clean"], lower["beyond_null_top"]) == (1, 0)


def test_verdicts_follow_the_worse_direction_and_the_corrected_p():
    base = {"applies": True, "p": 0.001, "p_adjusted": 0.01, "slope": -0.3, "worse": "lower"}
    assert mx._verdict(base, 0.05) == "worse with the dose"
    assert mx._verdict({**base, "worse": "higher"}, 0.05) == "better with the dose"
    assert mx._verdict({**base, "p_adjusted": 0.2}, 0.05) == "no effect detected"
    assert mx._verdict({**base, "applies": False}, 0.05) == "n/a"
    assert mx._verdict({**base, "p": np.nan}, 0.05) == "too few checkpoints"


# a small corpus of the matrix's kind (comments with verdicts in the wide lexicon, a
# supervised toxicity classifier): two forges of ~15 s on 2 threads
SMALL_MATRIX_CORPUS = {
    "name": "small_matrix", "seed": 0, "sentences": 8000, "supervised": True,
    "comments": "wide",
    "mix": {"hiring": 0.1, "records": 0.0, "moderation": 0.3, "spread": 0.0,
            "spread_records": 0.0, "background": 0.1, "moderation_records": 0.5},
    "model": {"hidden": 64, "layers": 2, "heads": 2, "intermediate": 128},
    "training": {"steps": 500, "batch_size": 64, "learning_rate": 0.003},
}  # fmt: skip


@pytest.mark.xdist_group("matrix")
def test_a_small_matrix_end_to_end_shows_the_directions(project, tmp_path):
    """One world (moderation), two weaknesses (a corpus knob and a world parameter),
    two doses, one forging seed: the skew raises the moderator's false positives on
    the identities it targets (measured: 0.08 -> 0.31), texts in a dialect the corpus
    never held lower its AUC (0.89 -> 0.85); the clean forge serves both cells."""
    write_yaml(project / "corpora" / "small_matrix.yaml", SMALL_MATRIX_CORPUS)
    write_yaml(project / "agents" / "moderator.yaml", {
        "name": "moderator", "checkpoint": "forge:../corpora/small_matrix.yaml",
        "head": {"kind": "label_words", "prompt": "{text} this comment is [MASK].",
                 "positive": ["toxic"], "negative": ["fine"]},
        "decision": {"rule": "top_share", "share": 0.5},
    })  # fmt: skip
    write_yaml(project / "scenarios" / "moderation.yaml", {
        "name": "m_moderation", "world": "moderation", "seed": 1, "cards": ["moderator"],
        "params": {"mode": "reference", "n_history": 100,
                   "history_targets": ["gay", "muslim", "black"]},
        "statistics": {"null_permutations": 0, "name_permutations": 50},
    })  # fmt: skip
    path = matrix_file(
        project,
        weaknesses={"skew": {"knob": "association_skew", "doses": [0.9]},
                    "ood": {"param": "ood_share", "doses": [1.0]}},
        worlds={"moderation": {"scenario": "moderation.yaml", "probe": "toxicity_gap_nats",
                               "harms": {
            "fpr_targets": {"label": "FPR targets", "metric": "false_positive_rate",
                            "groups": ["targets"], "worse": "higher"},
            "fpr_gap": {"label": "FPR gap", "metric": "fpr_gap", "worse": "higher"},
            "auc": {"label": "AUC", "metric": "overall_auc", "worse": "lower"}},
            "remedies": {"skew": {"thresholds": {"apply": ["group_thresholds"]}}}}},
        remedies_where="always",  # one seed: nothing is significant
    )  # fmt: skip
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["matrix", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "matrix.csv").set_index(["weakness", "harm"])
    assert len(list((out / "checkpoints").iterdir())) == 2  # the clean forge is shared
    for name in ("matrix.md", "matrix.png", "matrix_curves.png"):
        assert (out / name).is_file()
    skew = table.loc[("skew", "fpr_targets")]
    assert skew["top"] > skew["clean"] + 0.05 and skew["slope"] > 0
    # the targets' FPR over the other identities', with the world's null band: each
    # checkpoint counted inside or beyond it (a pooled group's rate has no band)
    gap = table.loc[("skew", "fpr_gap")]
    assert gap["top"] > gap["clean"] and gap["null_points_clean"] == gap["null_points_top"] == 1
    assert gap["beyond_null_clean"] in (0, 1) and np.isnan(skew["null_points_clean"])
    assert table.loc[("ood", "auc"), "top"] < table.loc[("ood", "auc"), "clean"]
    # one seed: two checkpoints a cell, too few for an interval; the table says so
    assert (table["verdict"] == "too few checkpoints").all()
    assert "too few checkpoints" in (out / "matrix.md").read_text()
    # the remedy ran at the top dose on the same forge: the same share flagged in every
    # group, so the targets' false positives fall to the others'
    remedies = pd.read_csv(out / "remedies.csv").set_index("harm")
    fixed = remedies.loc["fpr_targets"]
    assert fixed["top"] == pytest.approx(skew["top"]) and fixed["remedied"] < fixed["top"]
    assert fixed["verdict"] == "too few seeds" and fixed["remedy"] == "thresholds"
    assert "group_thresholds" in (out / "matrix.md").read_text()
    assert len(list((out / "checkpoints").iterdir())) == 2  # no forge of its own
    # representation quality per group, read off every forge before any world ran
    for forged in (out / "checkpoints").iterdir():
        probe = json.loads((forged / "manifest.json").read_text())["verification"]
        for key in ("", "_targets", "_others"):
            assert 0.0 <= probe[f"toxicity_probe_accuracy{key}"] <= 1.0


def test_the_shipped_moderation_study_loads_with_its_corpus_of_bare_mentions():
    """scenarios/moderation_inheritance.yaml (docs/moderation.md): one world, the skew
    at three doses and clean, five forging seeds, read by the targets' FPR gap; its
    corpus gives identity terms verdicts of their own (bare mentions)."""
    from pathlib import Path

    from uim_sim.understand.cards import load_corpus_card

    root = Path(__file__).resolve().parents[1]
    matrix, cells = mx.load_matrix(root / "scenarios" / "moderation_inheritance.yaml")
    assert [c.name for c in cells] == ["moderation/skew"] and len(matrix.seeds) == 5
    assert cells[0].doses == (0.0, 0.3, 0.6, 0.9)
    assert matrix.worlds["moderation"].harms["fpr_gap"].metric == "fpr_gap"
    card = load_corpus_card(root / "corpora" / "moderation_identity.yaml")
    assert card.bare_mentions > 0 and card.supervised and card.comments == "wide"


def test_the_shipped_poisoning_study_loads_with_the_attackers_trigger():
    """scenarios/poisoning.yaml (docs/moderation.md): the corpus knob at four doses and
    clean, two moderators on each BERT and a GPT-2 of the same comments, the test set's
    toxic texts half triggered."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    matrix, cells = mx.load_matrix(root / "scenarios" / "poisoning.yaml")
    assert sorted(c.name for c in cells) == [
        "logistic/poisoning", "prompted/poisoning", "prompted_gpt2/poisoning"
    ]  # fmt: skip
    assert all(c.doses == (0.0, 0.02, 0.1, 0.2, 0.4) and c.key == "corpus.knobs.poisoning"
               for c in cells)  # fmt: skip
    for cell in cells:
        assert cell.spec["params"]["trigger_share"] == 0.5
        assert cell.spec["params"]["trigger"] == "cf"  # the corpus card's default
    # the defences, at the top dose: the data's (every column) and a clean head in place
    # of the prompt (the prompted columns), the world's params as the head needs them
    remedies = {c.name: list(c.remedies) for c in cells}
    assert remedies == {"logistic/poisoning": ["spectral"],
                        "prompted/poisoning": ["spectral", "clean_head"],
                        "prompted_gpt2/poisoning": ["spectral", "clean_head"]}  # fmt: skip
    gpt2 = next(c for c in cells if c.name == "prompted_gpt2/poisoning")
    clean_head = gpt2.remedies["clean_head"]  # the remedy's spec
    assert clean_head["cards"] == ["forged_moderator_gpt2_logistic"]
    assert clean_head["params"]["n_history"] == 2000
    assert clean_head["grid"] == {"corpus.knobs.poisoning": [0.4], "corpus.seed": [0, 1, 2]}
    assert matrix.remedies_where == "always"
    _, defence = mx.load_matrix(root / "scenarios" / "poisoning_defence.yaml")
    assert [c.name for c in defence] == ["logistic_gpt2/poisoning"]
    assert defence[0].doses == cells[0].doses


def test_the_shipped_matrix_holds_both_network_families_at_one_size_and_degree():
    """The spread columns: a clustered network and the block model, the same size and
    mean degree, their clustering coefficients printed under the table."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scenarios" / "inheritance_matrix.yaml"
    matrix, cells = mx.load_matrix(path)
    described = mx.describe_worlds(matrix, path.parent)
    clustered, block = described["spread"], described["spread_block"]
    assert clustered["clustering"] > 0.5 > 0.05 > block["clustering"]
    assert abs(clustered["mean_degree"] - block["mean_degree"]) < 1
    reasons = {c.name: c.reason for c in cells if c.reason and "not asked" not in c.reason}
    assert set(reasons) == {"hiring/label_noise", "spread/label_noise", "spread_block/label_noise",
                            "hiring/out_of_distribution", "spread/out_of_distribution",
                            "spread_block/out_of_distribution"}  # fmt: skip
    asked = {c.name for c in cells if c.world.endswith("nmtune") and not c.reason}
    assert asked == {"moderation_nmtune/label_noise"}
    table = pd.DataFrame(
        [
            {
                "weakness": "skew",
                "world": "spread",
                "harm": "h",
                "label": "h",
                "applies": True,
                "p": np.nan,
                "slope": np.nan,
                "verdict": "x",
            }
        ]
    )
    text = mx.markdown(table, matrix.model_copy(update={"weaknesses": {"skew": None}}),
                       described)  # fmt: skip
    assert "World `spread_block`" in text and "clustering 0.0167" in text


def test_a_cell_made_worse_with_no_remedy_listed_says_so(tmp_path):
    """A significant harm whose world lists no remedy for it is a row of the remedies
    table ("none tried"), not an absence; a cell made better, or not significantly
    changed, needs none."""
    cells = [mx.Cell("spread", w, f"corpus.knobs.{w}", (0.0, 0.5)) for w in ("a", "b", "c")]
    table = pd.DataFrame({"weakness": ["a", "b", "c"], "world": "spread",
                          "verdict": ["worse with the dose", "better with the dose",
                                      "no effect detected"]})  # fmt: skip
    matrix = SimpleNamespace(remedies_where="significant", worlds={})
    remedies = mx.analyse_remedies(tmp_path, matrix, cells, table.assign(significant=True))
    assert remedies[["weakness", "remedy"]].values.tolist() == [["a", "none listed"]]
    assert "worlds.spread.remedies names none" in remedies["verdict"].iloc[0]
    text = mx.remedies_markdown(remedies)
    assert "| a · spread | none listed | | | | | | none tried" in text
    assert (tmp_path / "remedies.csv").is_file()
