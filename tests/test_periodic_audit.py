"""Periodic audits: a decider below four fifths is switched to the replacement card."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import write_yaml

from uim_sim.cards import load_card
from uim_sim.cli import main
from uim_sim.mitigate import PeriodicAudit
from uim_sim.mitigate.system import AuditParams
from uim_sim.worlds.hiring import LabourMarket
from uim_sim.worlds.stages import Stages


def audit_of(project, **params):
    fair = load_card(project / "agents" / "tiny_zero_shot.yaml")
    params = AuditParams(replacement="tiny_zero_shot", **params)
    mitigation = PeriodicAudit(params, {"tiny_zero_shot": fair})
    return mitigation.apply(Stages()).audit, fair


def test_the_audit_switches_only_below_the_threshold_on_audit_steps(project):
    audit, fair = audit_of(project, every=2, min_decisions=10)
    groups = np.array(["black"] * 10 + ["white"] * 10)
    unfair = np.array([1] * 3 + [0] * 7 + [1] * 6 + [0] * 4, dtype=bool)  # 0.3 / 0.6 = 0.5
    even = np.array([1] * 5 + [0] * 5 + [1] * 5 + [0] * 5, dtype=bool)
    assert audit(unfair, groups, 2) is fair
    assert audit(unfair, groups, 3) is None  # not an audit step
    assert audit(even, groups, 2) is None
    assert audit(unfair[:6], groups[:6], 2) is None  # too few decisions yet


def test_a_market_switches_failing_employers_and_counts_it(project):
    audit, fair = audit_of(project, every=1, threshold=1.0, min_decisions=5)
    biased = load_card(project / "agents" / "tiny_biased_history.yaml")
    world = LabourMarket(n_applicants=80, n_employers=3, n_rounds=3, n_history=120,
                         cards=[biased], stages=Stages(audit=audit), rng=4)  # fmt: skip
    world.simulate()
    decisions = pd.DataFrame(world.decisions)
    assert world.audit_switches >= 1
    first, last = decisions[decisions["step"] == 1], decisions[decisions["step"] == 3]
    assert set(first["card"]) == {"tiny_biased_history"}
    assert "tiny_zero_shot" in set(last["card"])
    metrics = world.metrics()
    assert metrics[metrics["metric"] == "audit_switches"]["value"].max() == world.audit_switches


def test_audits_are_refused_where_there_are_no_rounds(project, capsys):
    spec = write_yaml(project / "scenarios" / "a.yaml", {
        "name": "a", "world": "hiring", "cards": ["tiny_biased_history"],
        "arms": [[{"name": "periodic_audit", "params": {"replacement": "tiny_zero_shot"}}]],
        "params": {"mode": "audit", "n_jobs": 4},
    })  # fmt: skip
    assert main(["validate", str(spec), "--agents-dir", str(project / "agents")]) == 2
    assert "the hiring (audit mode) world never calls" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("world", "params"),
    [
        ("moderation", {"n_users": 120, "n_steps": 3, "n_moderators": 2, "n_history": 200}),
        ("spread", {"n_users": 500, "n_steps": 3, "items_per_step": 10, "n_history": 200}),
    ],
)
def test_moderators_and_ranker_shards_are_audited_too(project, world, params):
    from uim_sim.worlds import world_info

    audit, fair = audit_of(project, every=1, threshold=1.0, min_decisions=5)
    biased = load_card(project / "agents" / "tiny_biased_history.yaml")
    model = world_info(world).model("world")(**params, cards=[biased],
                                              stages=Stages(audit=audit), rng=2)  # fmt: skip
    model.simulate()
    assert model.audit_switches >= 1
    assert "tiny_zero_shot" in set(pd.DataFrame(model.decisions)["card"])
