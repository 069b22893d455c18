"""Rules where they belong (issue 27): LL144's small-category rule (2 % of the
applicants) is the hiring audit's; the moderation and spread audits mark a category
with fewer than a minimum count of units a run (30, or ``--min-count``), so an audit of
fifty identities, each under 2 % of the texts (Dixon et al.'s released test set), is
not emptied; identity terms of several words are written as they are; and with two
seeds the report's intervals of rates stay inside [0, 1]."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import small_audit_spec, write_yaml

from uim_sim.cli import main
from uim_sim.metrics.stats import UNIT, metric_range
from uim_sim.vocab.identity import IDENTITY_GROUPS, term_name

# Dixon et al.'s nine and 41 more, several of them of two words, as a study writes them
ADDED = [
    "bisexual", "transgender", "queer", "lgbt", "homosexual", "heterosexual", "nonbinary",
    "african american", "european", "hispanic", "latino", "latina", "mexican", "canadian",
    "asian", "indian", "middle eastern", "chinese", "japanese", "buddhist", "catholic",
    "protestant", "sikh", "taoist", "hindu", "atheist", "older", "younger", "teenage",
    "middle aged", "elderly", "blind", "deaf", "paralyzed", "disabled", "autistic",
    "korean", "vietnamese", "filipino", "native american", "pacific islander",
]  # fmt: skip
PER_IDENTITY = 40  # texts a run: 1.96 % of the file, above the minimum count of 30
BENIGN = ("I am {a} and proud of it, day {i}.", "My neighbour is {a}; we cook on day {i}.")
TOXIC = ("All {a} people are disgusting vermin, day {i}.", "I hate {a} people, day {i}.")


@pytest.fixture(scope="module")
def fifty(tmp_path_factory, tiny_checkpoint) -> Path:
    """A moderation reference run on a 50-identity evaluation file (two seeds, a head
    adapted on a biased history, so the seeds differ)."""
    root = tmp_path_factory.mktemp("fifty")
    rows = []
    for identity in (*IDENTITY_GROUPS, *ADDED, ""):
        for i in range(PER_IDENTITY // 2):
            written = identity or "a teacher"
            for template, label in ((BENIGN[i % 2], 0), (TOXIC[i % 2], 1)):
                rows.append({"text": template.format(a=written, i=i), "label": label,
                             "identity": identity})  # fmt: skip
    pd.DataFrame(rows).to_csv(root / "fifty.csv", index=False)
    write_yaml(root / "agents" / "tiny_biased_history.yaml", {
        "name": "tiny_biased_history", "checkpoint": str(tiny_checkpoint),
        "head": {"kind": "logistic", "train_on": "history", "history_bias": 2.5},
    })  # fmt: skip
    spec = write_yaml(root / "scenarios" / "fifty.yaml", {
        "name": "fifty", "world": "moderation", "seed": 7, "replicates": 2,
        "cards": ["tiny_biased_history"], "arms": [[]],
        "params": {"mode": "reference", "eval_file": str(root / "fifty.csv"),
                   "identity_column": "identity", "identity_terms": ADDED, "n_history": 200},
        "statistics": {"null_permutations": 0, "name_permutations": 20},
    })  # fmt: skip
    out = root / "out"
    assert main(["run", str(spec), "--out", str(out)]) == 0
    return out


def test_a_fifty_identity_audit_lists_every_identity_as_reportable(fifty):
    assert main(["audit-table", str(fifty)]) == 0
    table = pd.read_csv(fifty / "report" / "audit_table.csv").set_index("category")
    groups = {*IDENTITY_GROUPS, *(term_name(a) for a in ADDED), "background"}
    assert set(table.index) == groups and len(groups) == 51
    # every identity is under 2 % of the texts (LL144's rule would exclude each one) ...
    assert (table["texts"] / table["texts"].sum() < 0.02).all()
    # ... and has 40 texts a run, over the minimum count: none excluded
    assert (table["texts"] == 2 * PER_IDENTITY).all() and not table["excludable"].any()
    # a term of two words, written as it is in identity_terms and in the file's column
    assert table.loc["african_american", "benign"] == PER_IDENTITY
    assert table.loc["middle_eastern", "false_positive_rate"] >= 0
    document = json.loads((fifty / "report" / "audit_table.json").read_text())
    assert document["rules"]["min_count"] == 30 and document["rules"]["excludable_below"] is None
    text = (fifty / "report" / "audit_table.md").read_text()
    assert "fewer than 30 texts a run" in text and "under 2 %" not in text
    assert ": excludable)" not in text  # no row marked


def test_the_minimum_count_is_configurable_and_checked(fifty, tmp_path, capsys):
    assert main(["audit-table", str(fifty), "--min-count", "41", "--to", str(tmp_path / "a")]) == 0
    table = pd.read_csv(tmp_path / "a" / "audit_table.csv")
    assert table["excludable"].all()  # 40 texts a run, each under 41
    assert "(under 41 texts a run: excludable)" in (tmp_path / "a" / "audit_table.md").read_text()
    capsys.readouterr()
    for bad in ("0", "-3"):
        target = tmp_path / f"bad{bad}"
        assert main(["audit-table", str(fifty), "--min-count", bad, "--to", str(target)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "--min-count" in err, err
        assert not target.exists()


def test_the_hiring_audit_keeps_ll144s_rule(project, tmp_path, capsys):
    spec = write_yaml(project / "scenarios" / "h.yaml", small_audit_spec(
        cards=["tiny_zero_shot"], arms=[[]], replicates=1))  # fmt: skip
    out = tmp_path / "hiring"
    assert main(["run", str(spec), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["audit-table", str(out), "--min-count", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--min-count" in err and "LL144" in err
    assert not (out / "report").exists()
    assert main(["audit-table", str(out)]) == 0
    document = json.loads((out / "report" / "audit_table.json").read_text())
    assert document["rules"]["excludable_below"] == 0.02 and document["rules"]["min_count"] is None


def test_two_seeds_give_intervals_inside_the_range_and_a_note(fifty):
    assert main(["report", str(fifty)]) == 0
    summary = pd.read_csv(fifty / "report" / "metrics_summary.csv", keep_default_na=False,
                          na_values=[""])  # fmt: skip
    bounded = summary[[metric_range(m) == UNIT for m in summary["metric"]]]
    bounded = bounded[bounded["n"] == 2].dropna(subset=["ci_low"])
    assert len(bounded) > 100
    assert bounded["ci_low"].ge(0).all() and bounded["ci_high"].le(1).all()
    assert (bounded["ci_low"] <= bounded["mean"]).all()
    assert (bounded["mean"] <= bounded["ci_high"]).all()
    # where the plain t-interval over the two seeds would have left [0, 1]
    metrics = pd.read_parquet(fifty / "metrics.parquet")
    fpr = metrics[metrics["metric"] == "false_positive_rate"].groupby("group")["value"]
    half = 12.706 * fpr.std() / math.sqrt(2)
    left = ((fpr.mean() - half < 0) | (fpr.mean() + half > 1)) & (half > 0)
    assert left.any()
    page = (fifty / "report" / "summary.md").read_text()
    assert "Only 2 seeds per condition" in page and "logit" in page
    assert np.isfinite(bounded["ci_high"]).all()
