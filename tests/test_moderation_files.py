"""A researcher's evaluation file keeps what it says (issue 27): its label words
(``positive_label``), its names of groups (``identity_map``), its other columns
through to decisions.parquet (``keep_columns``) and, by any of them (``group_by``),
the error rates of the report, the audit table and the page. And a study-shaped
callback history keeps its surnames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, write_yaml

from uim_sim.cli import main
from uim_sim.page import charts
from uim_sim.page.results import Results
from uim_sim.report import build_report
from uim_sim.report.audit_table import audit_table
from uim_sim.report.headline import interval
from uim_sim.worlds.hiring import AuditStudy
from uim_sim.worlds.moderation.evalset import COLUMNS
from uim_sim.worlds.moderation.params import FILE_DEFAULTS, ReferenceParams

# HateCheck's shape (Röttger et al. 2021): its columns, its label words, its names of
# the targets; a few of its functionalities, two templates each, written here
TARGETS = ("women", "trans people", "gay people", "black people", "disabled people",
           "Muslims", "immigrants")  # fmt: skip
FUNCTIONALITIES = {
    "derog_neg_emote_h": ("hateful", ("I hate {t}.", "I despise {t}.")),
    "threat_dir_h": ("hateful", ("I am going to hurt {t}.", "I will kill {t}.")),
    "ident_pos_nh": ("non-hateful", ("I love {t}.", "Many of my friends are {t}.")),
    "negate_neg_nh": ("non-hateful", ("I don't hate {t}.", "I would never hurt {t}.")),
    "counter_quote_nh": ("non-hateful", ('Saying "I hate {t}" is wrong.',
                                         'Calling {t} vermin is hateful.')),
}  # fmt: skip
NO_TARGET = ("target_obj_nh", "non-hateful", ("I really can't stand cauliflower.",
                                              "Rainy mornings are the worst."))  # fmt: skip
HATECHECK = {
    "text_column": "test_case", "label_column": "label_gold", "positive_label": "hateful",
    "identity_column": "target_ident", "frame_column": "templ_id",
    "identity_terms": ["trans", "disabled", "immigrant"],
    "identity_map": {"women": "female", "trans people": "trans", "gay people": "gay",
                     "black people": "black", "disabled people": "disabled",
                     "Muslims": "muslim", "immigrants": "immigrant"},
    "group_by": "functionality",
}  # fmt: skip


def hatecheck_file(path) -> str:
    rows = []
    for functionality, (label, templates) in FUNCTIONALITIES.items():
        for k, template in enumerate(templates):
            rows += [{"functionality": functionality, "test_case": template.format(t=target),
                      "label_gold": label, "target_ident": target,
                      "templ_id": f"{functionality}_{k}"} for target in TARGETS]  # fmt: skip
    name, label, texts = NO_TARGET
    rows += [{"functionality": name, "test_case": t, "label_gold": label, "target_ident": "",
              "templ_id": f"{name}_{k}"} for k, t in enumerate(texts)]  # fmt: skip
    frame = pd.DataFrame(rows)
    frame.insert(1, "case_id", np.arange(1, len(frame) + 1))
    frame["direction"] = np.where(frame["target_ident"] == "", "", "general")
    frame.to_csv(path, index=False)
    return str(path)


def spec(project, **params) -> dict:
    return {
        "name": "hatecheck", "world": "moderation", "seed": 3, "replicates": 2,
        "cards": ["tiny_biased_history"], "arms": [[]],
        "params": {"mode": "reference", "n_history": 120,
                   "eval_file": hatecheck_file(project / "hatecheck.csv"),
                   "history_targets": ["gay", "muslim", "trans"], **HATECHECK, **params},
        "statistics": {"null_permutations": 0, "name_permutations": 20},
    }  # fmt: skip


@pytest.fixture
def hatecheck_run(project):
    path = write_yaml(project / "scenarios" / "hatecheck.yaml", spec(project))
    out = project / "out"
    assert main(["run", str(path), "--out", str(out), "--agents-dir",
                 str(project / "agents")]) == 0  # fmt: skip
    return path, out


def per_run(decisions: pd.DataFrame, truth: int) -> pd.DataFrame:
    """Each run's rate by hand, per functionality: removed benign texts (truth 0), or
    toxic texts left up (truth 1)."""
    rows = decisions[decisions["truth"] == truth]
    wrong = rows["decision"] if truth == 0 else 1 - rows["decision"]
    return wrong.groupby([rows["run_id"], rows["file.functionality"]]).mean().unstack(0)


def test_a_hatecheck_shaped_file_gives_error_rates_by_functionality(hatecheck_run, project):
    path, out = hatecheck_run
    decisions = pd.read_parquet(out / "decisions.parquet")
    metrics = pd.read_parquet(out / "metrics.parquet")
    # the file's words and names are the study's; its other columns are kept
    assert {"file.functionality", "file.case_id", "file.direction"} <= set(decisions)
    assert not {"file.test_case", "file.label_gold", "file.target_ident"} & set(decisions)
    one = decisions.drop_duplicates("text").set_index("text")
    assert one.loc["I hate women.", ["truth", "subgroup"]].tolist() == [1, "female"]
    assert one.loc["I love trans people.", ["truth", "subgroup"]].tolist() == [0, "trans"]
    assert one.loc["Rainy mornings are the worst.", "subgroup"] == "background"
    assert pd.isna(one.loc["Rainy mornings are the worst.", "file.direction"])
    # the world's rates by the file's column, one scalar column per value
    fpr, fnr = per_run(decisions, 0), per_run(decisions, 1)
    assert set(fpr.index) == {"ident_pos_nh", "negate_neg_nh", "counter_quote_nh",
                              "target_obj_nh"} and set(fnr.index) == {"derog_neg_emote_h",
                                                                      "threat_dir_h"}  # fmt: skip
    last = metrics[metrics["step"] == 1].set_index(["run_id", "metric", "group"])["value"]
    for metric, by_hand in (("false_positive_rate", fpr), ("false_negative_rate", fnr)):
        for value, runs in by_hand.iterrows():
            for run, rate in runs.items():
                assert last[(run, metric, f"functionality={value}")] == pytest.approx(rate)
    assert fpr.std(axis=1).max() > 0  # the seeds' heads differ: the intervals have width
    # the report: a table by functionality, as the headline shows intervals
    report = build_report(out)
    table = report.tables["Error rates by functionality"].set_index("functionality")
    summary = report.summary[report.summary["step"] == 1].set_index(["metric", "group"])
    for metric, label, by_hand in (("false_positive_rate", "FPR [95 % CI]", fpr),
                                   ("false_negative_rate", "FNR [95 % CI]", fnr)):  # fmt: skip
        for value, runs in by_hand.iterrows():
            row = summary.loc[(metric, f"functionality={value}")]
            assert row["mean"] == pytest.approx(runs.mean())
            assert table.loc[value, label] == interval(row["mean"], row["ci_low"], row["ci_high"])
    assert table.loc["derog_neg_emote_h", "FPR [95 % CI]"] == "–"  # no benign text there
    assert "FPR history targets" in report.display.columns  # the history's, not the file's
    names = {p.name for p in report.figures}
    assert {"false_positive_rate_by_functionality.png",
            "false_negative_rate_by_functionality.png"} <= names  # fmt: skip
    assert "## Error rates by functionality" in (report.folder / "summary.md").read_text()
    # the audit table: counts pooled over seeds, each rate's interval over seeds
    assert main(["audit-table", str(out)]) == 0
    audit = audit_table(out)
    rows = audit[audit["kind"] == "functionality"].set_index("category")
    assert set(rows.index) == set(fpr.index) | set(fnr.index)
    benign = decisions[(decisions["truth"] == 0)]
    pooled = benign.groupby("file.functionality")["decision"].mean()
    for value in fpr.index:
        assert rows.loc[value, "benign"] == (benign["file.functionality"] == value).sum()
        assert rows.loc[value, "false_positive_rate"] == pytest.approx(pooled[value])
        assert rows.loc[value, "false_positive_rate_seeds_mean"] == pytest.approx(
            fpr.loc[value].mean()
        )
        assert np.isfinite(rows.loc[value, "false_positive_rate_ci_low"])
    assert (audit["kind"] == "group").any()  # the identities' table stays
    # the page: the same figures, drawn interactively, and the same audit table
    page = Results.load(out)
    heat = next(f for f in page.section.figures if f.name == "false_negative_rate_by_functionality")
    assert charts.figure(page.ctx, heat) is not None
    assert page.audit_shown()["category"].str.startswith("functionality: ").sum() == len(rows)
    [(title, _, shown)] = page.tables()
    assert title == "Error rates by functionality" and shown.equals(
        report.tables["Error rates by functionality"]
    )


def test_the_same_spec_and_seed_give_the_same_bytes(hatecheck_run, project):
    path, out = hatecheck_run
    again = project / "again"
    assert main(["run", str(path), "--out", str(again), "--agents-dir",
                 str(project / "agents")]) == 0  # fmt: skip
    for name in ("decisions.parquet", "metrics.parquet", "runs.parquet"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name


def test_keep_columns_names_what_travels(tmp_path):
    file = hatecheck_file(tmp_path / "hc.csv")
    given = {k: v for k, v in HATECHECK.items() if k != "group_by"}
    texts = ReferenceParams(eval_file=file, keep_columns=["direction"], **given).evaluation_set()
    assert list(texts.columns) == [*COLUMNS, "file.direction"]
    grouped = ReferenceParams(eval_file=file, keep_columns=[], **HATECHECK).evaluation_set()
    assert list(grouped.columns) == [*COLUMNS, "file.functionality"]  # group_by is kept


def test_files_read_as_before_keep_their_run_ids():
    file = ROOT / "scenarios" / "data" / "moderation_eval.csv"  # as the shipped spec reads it
    plain = ReferenceParams(eval_file=file, frame_column="template")
    assert not set(FILE_DEFAULTS) & set(plain.model_dump(mode="json"))
    assert list(plain.evaluation_set().columns) == list(COLUMNS)  # nothing else to keep


@pytest.mark.parametrize(
    ("params", "edit", "message"),
    [
        ({"positive_label": "hatefull"}, None,
         "params.positive_label: 'hatefull' is not a label of column 'label_gold'"),
        ({}, lambda f: f.assign(label_gold=f["label_gold"].where(f.index != 3, "unclear")),
         "line 5: column 'label_gold' holds 'unclear', a third label beside 'hateful'"),
        ({}, lambda f: f.assign(label_gold=f["label_gold"].where(f.index != 4, "")),
         "params.label_column: "),
        ({"positive_label": None}, None, "not a 0/1 label (name the toxic label with "
         "positive_label)"),
        ({"identity_map": {"women": "woman"}}, None,
         "params.identity_map: 'women' -> 'woman' is not a group of the study"),
        ({"identity_map": {"woman": "female"}}, None,
         "params.identity_map: 'woman' is not a value of column 'target_ident'"),
        ({"identity_map": {}}, None, "params.identity_column: "),
        ({"identity_column": None}, None, "params.identity_map: goes with identity_column"),
        ({"keep_columns": ["direction", "focus"]}, None,
         "params.keep_columns.1: "),
        ({"keep_columns": "alll"}, None, "params.keep_columns: 'alll': expected all or a list"),
        ({"group_by": ["functionality", "target"]}, None, "params.group_by.1: "),
        ({"group_by": ["functionality", "functionality"]}, None,
         "params.group_by: entry 1: 'functionality' is given twice"),
        ({"group_by": "case_id"}, lambda f: pd.concat([f] * 3, ignore_index=True).assign(
            case_id=lambda g: np.arange(len(g))), "params.group_by.0: column 'case_id'"),
        ({"mode": "reference", "group_by": "functionality"}, None,
         "params.group_by: goes with eval_file: PATH"),
        ({"mode": "world", "group_by": "functionality"}, None, "params.group_by: unknown field"),
    ],
)  # fmt: skip
def test_what_a_file_says_is_checked_in_one_line(project, capsys, params, edit, message):
    data = spec(project, **params)
    if edit is not None:
        file = data["params"]["eval_file"]
        edit(pd.read_csv(file, keep_default_na=False)).to_csv(file, index=False)
    if "mode" in params:  # no file: these parameters alone
        data["params"] = params
    data["params"] = {k: v for k, v in data["params"].items() if v is not None}
    path = write_yaml(project / "scenarios" / "bad.yaml", data)
    out = project / "o"
    for command in (["validate", str(path)], ["run", str(path), "--out", str(out)]):
        assert main([*command, "--agents-dir", str(project / "agents")]) == 2
        err = capsys.readouterr().err
        assert message in err.replace("\n", "") and err.count("error:") == 1, err
    assert not out.exists()


# ---------------------------------------------------------------- callback surnames


def test_a_callback_file_with_surnames_gives_them_to_its_resumes(tmp_path):
    rows = pd.DataFrame({
        "firstname": ["Emily", "Lakisha", "Zoe", "Jamal"] * 10,
        "lastname": ["Walsh", "Washington", "Okafor", "Jones"] * 10,
        "sex": ["f", "f", "f", "m"] * 10,
        "race": ["w", "b", "w", "b"] * 10,
        "call": [1, 0, 0, 0] * 10,
        "h": [1, 0, 1, 0] * 10,
    })  # fmt: skip
    named, plain = tmp_path / "named.csv", tmp_path / "plain.csv"
    rows.to_csv(named, index=False)
    rows.drop(columns="lastname").to_csv(plain, index=False)
    histories = [AuditStudy(n_jobs=1, history="callbacks", history_file=f, rng=1).history()
                 for f in (named, plain)]  # fmt: skip
    with_surnames, drawn = histories
    assert [s[0] for s in with_surnames.spans[:4]] == [
        "Emily Walsh", "Lakisha Washington", "Zoe Okafor", "Jamal Jones"
    ]  # fmt: skip
    assert "Zoe Okafor" in with_surnames.texts[2]
    # the same resumes otherwise: only the names differ
    for a, b, (name,), (other,) in zip(with_surnames.texts, drawn.texts, with_surnames.spans,
                                       drawn.spans):  # fmt: skip
        assert a.replace(name, "NAME") == b.replace(other, "NAME")
    assert (with_surnames.labels == drawn.labels).all()
    empty = tmp_path / "empty.csv"
    for column in ("lastname", "firstname"):  # an empty cell is no name (pandas: missing)
        rows.assign(**{column: ["Walsh", "", "Okafor", "Jones"] * 10}).to_csv(empty, index=False)
        with pytest.raises(ValueError, match=f"line 3: column '{column}' must be a name"):
            AuditStudy(n_jobs=1, history="callbacks", history_file=empty, rng=1)
