"""Heads trained on a researcher's own labelled file; clear errors for bad files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import small_audit_spec, write_yaml

from uim_sim.lfm.heads import HeadError, LogisticHead, read_labelled_file
from uim_sim.run import plan
from uim_sim.schema import SpecError


def test_reads_csv_and_parquet(tmp_path):
    frame = pd.DataFrame({"resume": ["a", "b", "c"], "callback": [1, 0, 1]})
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet")
    for name in ("d.csv", "d.parquet"):
        texts, labels = read_labelled_file(tmp_path / name, "resume", "callback")
        assert texts == ["a", "b", "c"]
        assert labels.tolist() == [1, 0, 1]


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (pd.DataFrame({"text": ["a", "b"], "y": [1, 0]}), "no column 'label'"),
        (pd.DataFrame({"text": ["a", "b"], "label": [1, 2]}), "must hold 0/1 labels"),
        (pd.DataFrame({"text": ["a", None], "label": [1, 0]}), "must hold text"),
        (pd.DataFrame({"text": ["a", "b"], "label": [1, 1]}), "single class"),
    ],
)
def test_malformed_file_names_file_and_column(tmp_path, frame, match):
    path = tmp_path / "history.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(HeadError, match=match) as err:
        read_labelled_file(path, "text", "label")
    assert "history.csv" in str(err.value)


def test_wrong_extension(tmp_path):
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(HeadError, match="expected a .csv"):
        read_labelled_file(tmp_path / "x.json", "text", "label")


def test_bad_file_in_card_fails_before_running(project):
    (project / "agents" / "data").mkdir(exist_ok=True)
    pd.DataFrame({"text": ["a", "b"], "outcome": [0, 1]}).to_csv(
        project / "agents" / "data" / "mine.csv", index=False
    )
    write_yaml(
        project / "agents" / "mine.yaml",
        {"name": "mine", "head": {"kind": "logistic", "train_on": "file", "file": "data/mine.csv"}},
    )
    spec = write_yaml(project / "scenarios" / "s.yaml", small_audit_spec(cards=["mine"]))
    with pytest.raises(SpecError, match=r"agent mine: .*mine.csv: no column 'label'"):
        plan(spec)


def test_logistic_head_learns_a_direction():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8))
    y = (x[:, 0] > 0).astype(int)
    head = LogisticHead().fit(x, y)
    assert ((head.score(x) > 0.5) == y).mean() > 0.95
    with pytest.raises(HeadError, match="single class"):
        LogisticHead().fit(x, np.ones(200))
