"""A researcher's file whose names are not the study's: the card names the name and
group columns; redaction and group detection use them; an unplaced name is an error."""

from __future__ import annotations

import pandas as pd
from conftest import small_audit_spec, write_yaml

from uim_sim.cards import AgentCard
from uim_sim.cli import main
from uim_sim.mitigate import NameRedaction, compose
from uim_sim.mitigate.redaction import RedactionParams
from uim_sim.worlds.hiring import AuditStudy

ROWS = [
    ("Priya Raman", "black", 0), ("Chen Wei", "white", 1), ("Amara Okafor", "black", 0),
    ("Lukas Berg", "white", 1), ("Sofia Marin", "black", 1), ("Jonas Weber", "white", 0),
]  # fmt: skip


def decisions_file(path, rows=ROWS):
    frame = pd.DataFrame(
        [
            {
                "text": f"{n} has five years of experience as an office clerk. {n} types fast.",
                "label": y,
                "applicant": n,
                "race": g,
            }
            for n, g, y in rows
        ]  # fmt: skip
    )
    frame.to_csv(path, index=False)
    return path


def test_names_from_the_file_are_redacted_and_placed(tmp_path, tiny_checkpoint):
    file = decisions_file(tmp_path / "d.csv")
    card = AgentCard(name="mine", checkpoint=str(tiny_checkpoint), head={
        "kind": "logistic", "train_on": "file", "file": file, "name_column": "applicant",
        "group_column": "race"})  # fmt: skip
    world = AuditStudy(n_jobs=2, n_history=100, cards=card, rng=1)
    data = world.training_data(card)
    assert list(data.protected) == [g == "black" for _, g, _ in ROWS]
    prepare = compose([NameRedaction(RedactionParams())]).prepare_text
    for text, spans in zip(data.texts, data.spans):
        redacted = prepare(text, spans)
        assert not any(word in redacted for n, _, _ in ROWS for word in n.split()), redacted


def test_a_name_that_cannot_be_placed_is_reported_with_its_line(project, tmp_path, capsys):
    file = decisions_file(tmp_path / "d.csv", [("Lakisha Washington", "black", 0), *ROWS])
    write_yaml(project / "agents" / "mine.yaml", {
        "name": "mine", "checkpoint": "builtin:minilm",
        "head": {"kind": "logistic", "train_on": "file", "file": str(file),
                 "name_column": "applicant"},
    })  # fmt: skip
    spec = write_yaml(project / "scenarios" / "s.yaml", small_audit_spec(cards=["mine"]))
    assert main(["validate", str(spec), "--agents-dir", str(project / "agents")]) == 2
    err = capsys.readouterr().err
    assert "line 3: name 'Priya Raman' is not in the study's lists" in err  # line 2 is known
