"""A run's identity is structured from plan to reader: the arm as its name and its
mitigations, the grid point as one typed column per key, labels made in one place;
result folders of an older uim-sim (arm joined with "+", grid as a JSON string) are
read by the same reader."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from uim_sim.identity import label
from uim_sim.report.load import condition_labels, grid_points, load_runs, setting_labels
from uim_sim.run.store import runs_table

PACKAGE = Path(__file__).resolve().parents[1] / "uim_sim"
READER = PACKAGE / "report" / "load.py"

ROWS = [
    {"run_id": "a", "world": "hiring", "card": "c", "arm": "none", "mitigations": [],
     "replicate": 0, "seed": 1, "grid.corpus.knobs.skew": 0.9, "grid.corpus.seed": 1,
     "grid.restyle": True},
    {"run_id": "b", "world": "hiring", "card": "d", "arm": "inlp+name_redaction",
     "mitigations": ["inlp", "name_redaction"], "replicate": 0, "seed": 1,
     "grid.restyle": False},
]  # fmt: skip
LEGACY = [
    {**{k: v for k, v in row.items()
        if not k.startswith("grid.") and k not in ("arm", "mitigations")},
     "mitigation": row["arm"],
     "grid": json.dumps({k.removeprefix("grid."): v for k, v in row.items()
                         if k.startswith("grid.")}, sort_keys=True)}
    for row in ROWS
]  # fmt: skip


def _folder(tmp_path: Path, runs: pd.DataFrame, name: str) -> Path:
    out = tmp_path / name
    out.mkdir()
    runs.to_parquet(out / "runs.parquet", index=False)
    metrics = pd.DataFrame({"run_id": ["a", "b"], "step": [1, 1], "metric": ["m", "m"],
                            "group": ["", ""], "value": [0.5, 0.6]})  # fmt: skip
    metrics.to_parquet(out / "metrics.parquet", index=False)
    return out


def test_grid_columns_keep_their_type_where_a_run_lacks_the_key(tmp_path):
    runs = runs_table(ROWS)
    assert str(runs["grid.corpus.seed"].dtype) == "Int64"  # not 1.0 for the missing row
    assert str(runs["grid.restyle"].dtype) == "boolean"
    out = _folder(tmp_path, runs, "new")
    read, _, _ = load_runs(out)
    assert grid_points(read) == [
        {"corpus.knobs.skew": 0.9, "corpus.seed": 1, "restyle": True},
        {"restyle": False},
    ]
    assert list(read["condition"]) == [
        "c · none · skew=0.9,corpus.seed=1,restyle=True",
        "d · inlp+name_redaction · restyle=False",
    ]
    assert list(setting_labels(read)) == ["c · skew=0.9,corpus.seed=1,restyle=True",
                                          "d · restyle=False"]  # fmt: skip
    assert list(read["mitigations"]) == [(), ("inlp", "name_redaction")]


def test_an_older_result_folder_reads_the_same(tmp_path):
    new, _, _ = load_runs(_folder(tmp_path, runs_table(ROWS), "new"))
    old, _, _ = load_runs(_folder(tmp_path, pd.DataFrame(LEGACY), "old"))
    assert "grid" not in old and "mitigation" not in old
    assert list(old["condition"]) == list(new["condition"])
    assert list(old["arm"]) == list(new["arm"])
    assert list(old["mitigations"]) == list(new["mitigations"])
    assert grid_points(old) == grid_points(new)
    assert list(condition_labels(old)) == list(old["condition"])


def test_a_label_leaves_out_what_is_not_given():
    assert label("c") == "c"
    assert label("c", "none") == "c · none"
    assert label("c", None, {"corpus.knobs.skew": 0.5, "n": 3}) == "c · skew=0.5,n=3"


def test_no_module_but_the_reader_parses_a_grid_or_splits_an_arm():
    """The run's identity is never flattened into a string and parsed back."""
    parse = re.compile(r"""\["grid"\]|split\("\+"\)|split\(" · "\)|\["mitigation"\]""")
    offenders = [str(p.relative_to(PACKAGE)) for p in sorted(PACKAGE.rglob("*.py"))
                 if p != READER and parse.search(p.read_text())]  # fmt: skip
    assert offenders == []
