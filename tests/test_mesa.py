"""Every world is a plain Mesa model: built from keywords with defaults, stepped until
``running`` turns False, scalar DataCollector columns collected from step 0, agent
reporters where agents have state; Mesa's own batch_run can drive it."""

from __future__ import annotations

import json
import math
import shutil

import mesa
import pytest

from uim_sim.cards import AgentCard, DecisionSpec, HeadSpec
from uim_sim.worlds import BUILT_IN, world_info
from uim_sim.worlds.hiring import AuditStudy, LabourMarket, MembershipAudit
from uim_sim.worlds.hiring.agents import Applicant
from uim_sim.worlds.moderation import ModerationPlatform, ModerationReference
from uim_sim.worlds.moderation.agents import User
from uim_sim.worlds.spread import SpreadPlatform, SpreadReference
from uim_sim.worlds.spread.agents import Ranker

SMALL = {
    AuditStudy: {"n_jobs": 2},
    MembershipAudit: {"n_jobs": 2, "pairs": 2},
    LabourMarket: {"n_applicants": 30, "n_employers": 2, "applications_per_round": 2,
                   "n_rounds": 3, "n_history": 60},
    ModerationPlatform: {"n_users": 40, "n_steps": 3, "n_moderators": 2, "n_history": 80},
    ModerationReference: {"n_history": 80},
    SpreadPlatform: {"n_users": 400, "n_steps": 3, "items_per_step": 4, "mean_degree": 8,
                     "n_history": 80},
    SpreadReference: {"n_users": 400, "n_cascades": 5, "mean_degree": 8, "probability": 0.2},
}  # fmt: skip


def people_checkpoint(checkpoint):
    """The tiny checkpoint as if forged from a corpus card that planted people (a
    copy whose manifest records that card): what mode membership reads."""
    from uim_sim.lfm.checkpoint import write_manifest
    from uim_sim.understand.cards import CorpusCard

    folder = checkpoint.parent / f"{checkpoint.name}-people"
    if not folder.is_dir():
        shutil.copytree(checkpoint, folder)
        card = CorpusCard(name="tiny_people", sentences=400,
                          people={"per_count": 3, "counts": [1, 4], "held_out": 3})  # fmt: skip
        recorded = json.loads((checkpoint / "manifest.json").read_text())
        write_manifest(folder, family=recorded["family"], seed=0,
                       card=card.model_dump(mode="json"))  # fmt: skip
    return folder


def tiny_card(checkpoint, world) -> AgentCard:
    if world is MembershipAudit:
        return AgentCard(name="tiny", checkpoint=str(people_checkpoint(checkpoint)),
                         head=HeadSpec(kind="zero_shot"))  # fmt: skip
    if world in (AuditStudy, LabourMarket):
        return AgentCard(name="tiny", checkpoint=str(checkpoint), head=HeadSpec(kind="zero_shot"))
    head = HeadSpec(kind="zero_shot_contrast", positive=["awful"], negative=["kind"])
    rule = DecisionSpec(rule="threshold", threshold=0.0)
    if world is SpreadPlatform:
        rule = DecisionSpec(rule="top_share", share=0.5)
    return AgentCard(name="tiny", checkpoint=str(checkpoint), head=head, decision=rule)


def tidy_has_rows(model) -> bool:
    return len(model.metrics()) > 0


def run_to_the_end(model, limit: int = 100):
    steps = 0
    while model.running:
        model.step()
        steps += 1
        assert steps < limit, "running never turned False"
    return steps


def test_every_registered_model_is_covered():
    models = {m for name in BUILT_IN for m in world_info(name).models.values()}
    assert models == set(SMALL)


def test_the_audit_study_of_the_issue_builds_from_keywords_on_the_default_model():
    model = AuditStudy(n_jobs=3, rng=1)  # everything else defaults, MiniLM zero-shot
    assert run_to_the_end(model) == 1
    frame = model.datacollector.get_model_vars_dataframe()
    assert list(frame["step"]) == [0, 1]
    assert 0 < frame["impact_ratio[black]"].iloc[-1] <= 1
    assert math.isnan(frame["impact_ratio[black]"].iloc[0])  # nobody screened at step 0


@pytest.mark.parametrize("world", list(SMALL), ids=lambda w: w.__name__)
def test_world_is_a_plain_mesa_model(world, tiny_checkpoint):
    model = world(**SMALL[world], cards=tiny_card(tiny_checkpoint, world), rng=4)
    assert isinstance(model, mesa.Model) and model.running
    steps = run_to_the_end(model)
    frame = model.datacollector.get_model_vars_dataframe()
    assert list(frame["step"]) == list(range(steps + 1))  # collected at step 0 too
    for column, values in frame.items():
        assert all(isinstance(v, int | float) for v in values), column  # scalars only
    if world is SpreadReference:  # population-level measures only
        assert tidy_has_rows(model)
        return
    grouped = [c for c in frame.columns if c.endswith("]")]
    assert grouped and all("[" in c for c in grouped)
    tidy = model.metrics()
    assert set(tidy.columns) == {"step", "metric", "group", "value"}
    assert tidy["value"].notna().all()


@pytest.mark.parametrize(
    ("world", "agent", "column"),
    [
        (LabourMarket, Applicant, "employed"),
        (ModerationPlatform, User, "participation"),
        (SpreadPlatform, Ranker, "card"),
    ],
    ids=["market", "platform", "spread"],
)
def test_agents_with_state_have_agent_reporters(world, agent, column, tiny_checkpoint):
    model = world(**SMALL[world], cards=tiny_card(tiny_checkpoint, world), rng=2)
    run_to_the_end(model)
    agents = model.datacollector.get_agenttype_vars_dataframe(agent)
    steps = agents.index.get_level_values("Step")
    assert column in agents and set(steps) == set(range(model.round + 1))


def test_bad_keywords_are_refused_by_the_params_schema(tiny_checkpoint):
    with pytest.raises(ValueError, match="n_jobs"):
        AuditStudy(n_jobs=0)
    with pytest.raises(ValueError, match="n_wizards"):
        LabourMarket(n_wizards=3)


def test_mesas_batch_run_drives_a_world(tiny_checkpoint):
    card = tiny_card(tiny_checkpoint, LabourMarket)
    rows = mesa.batch_run(
        LabourMarket,
        {**SMALL[LabourMarket], "cards": [card], "rng": [1, 2]},
        number_processes=1,
        display_progress=False,
        data_collection_period=1,
    )
    assert {row["rng"] for row in rows} == {1, 2}
    assert all("employment_rate[black]" in row for row in rows)
