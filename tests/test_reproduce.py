"""`uim-sim reproduce`: the studies' scenarios run, shrunk, on a tiny checkpoint, and
their read-outs; the Bertrand & Mullainathan callback history; the paired tally of
Wilson & Caliskan; the draw rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import write_yaml

from uim_sim import builtin
from uim_sim import reproduce as rep
from uim_sim.cards import DecisionSpec
from uim_sim.cli import main
from uim_sim.worlds.hiring import AuditStudy
from uim_sim.worlds.hiring.callbacks import STUDY_CALLBACK_RATES
from uim_sim.worlds.hiring.metrics import pairwise_wins
from uim_sim.worlds.stages import select

VERDICTS = (
    "in interval", "outside interval", "direction agrees", "direction differs",
    "direction agrees (not significant)", "direction differs (not significant)",
    "reported", "unchanged (within ±0.01)",
    "not measured", "no interval",  # a shrunk run may have no low-quality callback
)  # fmt: skip


def _tiny_cards(project, checkpoint) -> None:
    write_yaml(project / "agents" / "minilm_study_callbacks.yaml", {
        "name": "minilm_study_callbacks", "checkpoint": str(checkpoint),
        "head": {"kind": "logistic", "train_on": "history"}, "decision": {"rule": "draw"},
    })  # fmt: skip
    write_yaml(project / "agents" / "minilm_zero_shot.yaml", {
        "name": "minilm_zero_shot", "checkpoint": str(checkpoint), "head": {"kind": "zero_shot"},
    })  # fmt: skip
    for name in ("minilm_moderation_biased_history", "minilm_biased_history"):
        card = yaml.safe_load((builtin.FOLDERS["cards"] / f"{name}.yaml").read_text())
        card["checkpoint"] = str(checkpoint)
        write_yaml(project / "agents" / f"{name}.yaml", card)


def _shrunk(project, scenario: str, params: dict) -> dict:
    spec = yaml.safe_load((rep.SCENARIOS / scenario).read_text())
    spec.update(replicates=2, statistics={"null_permutations": 0, "name_permutations": 20})
    spec["params"].update(params)
    write_yaml(project / "scenarios" / scenario, spec)
    return spec


@pytest.mark.parametrize(
    "scenario, params",
    [
        ("bertrand_mullainathan.yaml", {"n_jobs": 6, "n_history": 200}),
        ("wilson_caliskan.yaml", {"n_jobs": 4}),
        ("dixon_borkan.yaml", {"n_history": 120}),
        ("bommasani.yaml", {"n_applicants": 40, "n_rounds": 2, "n_history": 100}),
    ],
)
def test_a_study_runs_and_reads(project, tiny_checkpoint, tmp_path, scenario, params):
    _tiny_cards(project, tiny_checkpoint)
    _shrunk(project, scenario, params)
    out = tmp_path / "out"
    assert main(["run", str(project / "scenarios" / scenario), "--out", str(out),
                 "--agents-dir", str(project / "agents")]) == 0  # fmt: skip
    for study in [s for s in rep.STUDIES if s.scenario == scenario]:
        findings = study.read(out)
        assert findings and all(f.study == study.citation for f in findings)
        for f in findings:
            assert f.verdict in VERDICTS or f.verdict.startswith("changed by"), f
        assert any(np.isfinite(f.mean) for f in findings)


def test_unknown_study_is_a_one_line_error(tmp_path, capsys):
    assert main(["reproduce", "--only", "nobody", "--out", str(tmp_path / "r")]) == 2
    assert "--only: unknown study 'nobody'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_verdicts():
    assert rep.in_interval(0.668, 0.7, 0.6, 0.8) == "in interval"
    assert rep.in_interval(0.668, 0.9, 0.8, 1.0) == "outside interval"
    assert rep.direction(-1, -0.2, -0.3, -0.1) == "direction agrees"
    assert rep.direction(-1, -0.2, -0.5, 0.1) == "direction agrees (not significant)"
    assert rep.direction(+1, -0.2, -0.3, -0.1) == "direction differs"
    assert rep.direction(+1, -0.2, -0.3, 0.1) == "direction differs (not significant)"


def test_pairwise_wins_compare_copies_of_one_resume():
    rows = []
    for decider, (wf, bf, wm, bm) in enumerate([(0.9, 0.1, 0.5, 0.5), (0.2, 0.8, 0.7, 0.1)]):
        for (race, gender), score in zip(
            [("white", "female"), ("black", "female"), ("white", "male"), ("black", "male")],
            (wf, bf, wm, bm),
        ):
            rows.append({"step": 1, "decider": decider, "truth": 1, "race": race,
                         "gender": gender, "score": score})  # fmt: skip
    wins = pairwise_wins(pd.DataFrame(rows))
    # race pairs: (wf>bf), tie wm=bm, (wf<bf), (wm>bm) → white wins 1 + 0.5 + 0 + 1 of 4
    assert wins["white"] == pytest.approx(2.5 / 4) and wins["black"] == pytest.approx(1.5 / 4)
    # gender pairs: (wf>wm), (bf<bm), (wf<wm), (bf>bm) → female wins 2 of 4
    assert wins["female"] == pytest.approx(0.5)


def test_callback_history_draws_at_the_study_rates():
    world = AuditStudy(n_jobs=1, history="callbacks", n_history=20000, rng=5)
    data = world.history()
    race = np.where(data.protected, "black", "white")
    for group, rates in STUDY_CALLBACK_RATES.items():
        overall = (rates["high"] + rates["low"]) / 2
        rate = data.labels[race == group].mean()
        assert rate == pytest.approx(overall, abs=0.008), group


def test_callback_file_is_read_and_bad_cells_named(tmp_path, capsys, project):
    good = tmp_path / "bm.csv"
    pd.DataFrame({
        "firstname": ["Emily", "Lakisha", "Zoe", "Jamal"] * 10,
        "sex": ["f", "f", "f", "m"] * 10,
        "race": ["w", "b", "w", "b"] * 10,
        "call": [1, 0, 0, 0] * 10,
        "h": [1, 0, 1, 0] * 10,
    }).to_csv(good, index=False)  # fmt: skip
    world = AuditStudy(n_jobs=1, history="callbacks", history_file=good, rng=1)
    data = world.history()
    assert len(data.texts) == 40 and data.labels.sum() == 10
    assert data.texts[2].count("Zoe") >= 1  # a name outside the lists, with its file's group
    assert data.protected.tolist()[:4] == [False, True, False, True]
    bad = tmp_path / "bad.csv"
    pd.read_csv(good).assign(race=["w", "x", "w", "b"] * 10).to_csv(bad, index=False)
    spec = write_yaml(project / "scenarios" / "bm.yaml", {
        "name": "bm", "world": "hiring", "cards": ["minilm_study_callbacks"],
        "params": {"mode": "audit", "history": "callbacks", "history_file": str(bad)},
    })  # fmt: skip
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "params.history_file" in err and "line 3: column 'race'" in err
    assert len(err.strip().splitlines()) == 1


def test_draw_rule_selects_at_the_score():
    rng = np.random.default_rng(0)
    scores = np.full(20000, 0.2)
    chosen = select(scores, np.zeros(20000), DecisionSpec(rule="draw"), rng)
    assert chosen.mean() == pytest.approx(0.2, abs=0.01)


def test_label_noise_findings_pair_forging_seeds(tmp_path):
    rows = [
        {"label_noise": n, "seed": seed, "id_accuracy": 0.6 + n / 10, "ood_accuracy": 0.5 - n,
         "sve": 2.0 + n + seed / 100, "lsvr": 1.0}
        for n in (0.0, 0.1, 0.3) for seed in range(3)
    ]  # fmt: skip
    pd.DataFrame(rows).to_csv(tmp_path / "label_noise.csv", index=False)  # no design: the first
    found = {f.quantity.removesuffix(" [per_copy]"): f for f in rep.read_label_noise(tmp_path)}
    assert found["out-of-domain accuracy (task), 30% noise − clean"].mean == pytest.approx(-0.3)
    assert found["out-of-domain accuracy (task), 10% noise − clean"].verdict == "direction agrees"
    assert found["in-domain accuracy, 10% noise − clean"].verdict == "holds or gains"
    assert found["SVE, 10% noise − clean"].mean == pytest.approx(0.1)
    assert "SVE, 30% noise − clean" not in found  # the spectrum at the slightest only
    assert not any("style" in q for q in found)  # a table from before the style probe


def test_label_noise_findings_come_per_design(tmp_path):
    rows = [
        {"design": design, "label_noise": n, "seed": seed, "id_accuracy": 0.6,
         "ood_accuracy": 0.5 + (n if design == "a" else -n) + seed / 100, "sve": 2.0,
         "lsvr": 1.0, "style_accuracy": 0.7 - n + seed / 100}
        for design in ("a", "b") for n in (0.0, 0.1) for seed in range(3)
    ]  # fmt: skip
    pd.DataFrame(rows).to_csv(tmp_path / "label_noise.csv", index=False)
    found = {f.quantity: f for f in rep.read_label_noise(tmp_path)}
    ood = "out-of-domain accuracy ({}), 10% noise − clean [{}]"
    assert found[ood.format("task", "a")].verdict == "direction differs"
    assert found[ood.format("task", "b")].verdict == "direction agrees"
    assert found[ood.format("style", "a")].mean == pytest.approx(-0.1)
    assert found["in-domain accuracy, 10% noise − clean [b]"].mean == pytest.approx(0.0)
