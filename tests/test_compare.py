"""The comparison of interventions: paired over seeds, dominated arms, delayed impact."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import small_audit_spec, write_yaml

from uim_sim.cli import main
from uim_sim.report.compare import compare
from uim_sim.worlds.section import Harm, Utility

HARM = Harm("impact_ratio", "black", "impact ratio", worse="lower")
UTILITY = Utility("quality", "quality")


def frames(effects: dict[str, tuple[float, float, float]], seeds: int = 5):
    """runs and metrics of one card: per arm (harm change at step 1, at the last step,
    utility change); every seed moves all arms alike (shared noise, as with common
    random numbers)."""
    rng = np.random.default_rng(0)
    shared = rng.normal(0, 0.3, size=seeds)
    runs, metrics = [], []
    for arm, (first, last, utility) in {"none": (0, 0, 0), **effects}.items():
        for r in range(seeds):
            run_id = f"{arm}-{r}"
            runs.append({"run_id": run_id, "card": "c", "arm": arm, "replicate": r})
            jitter = rng.normal(0, 0.005, size=3)
            for step, value in ((1, 0.6 + first), (5, 0.6 + last)):
                metrics.append((run_id, step, "impact_ratio", "black",
                                value + shared[r] + jitter[step // 5]))  # fmt: skip
            metrics.append((run_id, 5, "quality", "", 1.0 + utility + shared[r] + jitter[2]))
    return pd.DataFrame(runs), pd.DataFrame(metrics, columns=["run_id", "step", "metric",
                                                                  "group", "value"])  # fmt: skip


def test_paired_differences_see_through_the_noise_the_seeds_share(tmp_path):
    runs, metrics = frames({"good": (0.1, 0.1, 0.0)})
    result = compare(runs, metrics, HARM, UTILITY, tmp_path)
    row = result.table.set_index("arm").loc["good"]
    assert row["d_harm"] == pytest.approx(0.1, abs=0.01)
    assert 0 < row["d_harm_low"] < row["d_harm_high"] < 0.2  # narrow: the shared noise cancels
    # unpaired, the seeds' spread (sd 0.3) would swamp an effect of 0.1
    base = metrics[(metrics.run_id.str.startswith("none")) & (metrics.step == 5)
                   & (metrics.metric == "impact_ratio")]["value"]  # fmt: skip
    assert base.std() > 0.1  # more than the effect
    assert (tmp_path / "interventions.png").is_file()


def test_dominated_arms_and_too_few_seeds_and_delayed_impact(tmp_path):
    runs, metrics = frames({
        "better": (0.1, 0.1, 0.05),
        "worse": (0.05, 0.05, -0.05),  # beaten by `better` on both
        "nothing": (0.0, 0.0, 0.0),
        "later": (0.15, -0.15, 0.0),  # helps at first, harms in the long run
    })  # fmt: skip
    result = compare(runs, metrics, HARM, UTILITY, tmp_path)
    dominated = result.table.set_index("arm")["dominated"]
    assert not dominated["better"] and dominated["worse"]
    text = "\n".join(result.warnings)
    assert "c · nothing: the change in impact ratio" in text and "cannot be told" in text
    assert "c · later: helps at the first step" in text
    assert "c · better" not in text
    assert list(result.display["arm"]) == ["better", "worse", "nothing", "later"]


def test_nothing_to_compare_without_a_baseline_arm(tmp_path):
    runs, metrics = frames({"good": (0.1, 0.1, 0.0)})
    runs = runs[runs["arm"] != "none"]
    assert compare(runs, metrics, HARM, UTILITY, tmp_path) is None


def test_a_suite_runs_each_spec_into_its_folder_and_reports_them_together(project, tmp_path):
    for name in ("one", "two"):
        write_yaml(project / "scenarios" / f"{name}.yaml", small_audit_spec(
            name=name, cards=["tiny_biased_history"], replicates=2,
            statistics={"null_permutations": 0, "name_permutations": 50}))  # fmt: skip
    suite = write_yaml(project / "scenarios" / "both.yaml",
                       {"name": "both", "suite": ["one.yaml", "two.yaml"]})  # fmt: skip
    out = tmp_path / "out"
    agents = ["--agents-dir", str(project / "agents")]
    assert main(["run", str(suite), "--out", str(out), *agents]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["one", "two"]
    assert main(["report", str(out)]) == 0
    combined = pd.read_csv(out / "report" / "interventions.csv")
    assert set(combined["spec"]) == {"one", "two"} and set(combined["world"]) == {"hiring"}
    assert "one/report/index.html" in (out / "report" / "index.html").read_text()
    bad = write_yaml(project / "scenarios" / "bad.yaml", {"name": "bad", "suite": ["x.yaml"]})
    assert main(["run", str(bad), "--out", str(tmp_path / "bad"), *agents]) == 2
    assert not (tmp_path / "bad").exists()
