"""Agents who adapt (`uim_sim.worlds.adapt`): the learning rule by hand, the worlds
where toxic posters and applicants use it, re-training on fresh outcomes, and the
refusals of bad values."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import small_audit_spec, write_yaml
from test_refusals import refused_everywhere

from uim_sim.cards import load_card
from uim_sim.mitigate import Retraining
from uim_sim.mitigate.system import RetrainParams
from uim_sim.worlds.adapt import EditBandit, discovery, random_contacts
from uim_sim.worlds.hiring import LabourMarket
from uim_sim.worlds.hiring.params import MarketParams
from uim_sim.worlds.moderation import ModerationPlatform
from uim_sim.worlds.moderation.params import PlatformParams
from uim_sim.worlds.moderation.templates import EVASIONS, with_edits
from uim_sim.worlds.moderation.templates import test_set as template_texts
from uim_sim.worlds.stages import Stages

EDITS = ("none", "a", "b")


def bandit(n=3, edges=None, weight=0.5, seed=0) -> EditBandit:
    edges = edges if edges is not None else (np.array([0]), np.array([1]))  # 1 hears 0
    return EditBandit(n, EDITS, edges, weight, np.random.default_rng(seed))


# ------------------------------------------------------------------ the learning rule


def test_evidence_adds_contacts_attempts_at_their_weight():
    b = bandit()
    b.learn(np.array([0, 0, 0, 1]), np.array([2, 2, 1, 1]), np.array([1, 1, 0, 1]))
    s, n = b._evidence()
    # agent 0: own only (nobody speaks to it); agent 1: own + 0.5 x agent 0's
    np.testing.assert_array_equal(s[0], [0, 0, 2])
    np.testing.assert_array_equal(n[0], [0, 1, 2])
    np.testing.assert_array_equal(s[1], [0, 1, 1])
    np.testing.assert_array_equal(n[1], [0, 1.5, 1])
    np.testing.assert_array_equal(s[2], [0, 0, 0])
    # posterior means (1 + s) / (2 + n): agent 0: none 1/2, a 1/3, b 3/4; agent 1: none
    # 1/2, a 2/3.5, b 2/3; agent 2: no evidence, none (the first of the ties)
    assert b.preferred().tolist() == [2, 2, 0]
    # nobody posted unedited yet: no edit can be said to work
    assert not b.working().any() and b.edit_found() == 0.0
    b.learn(np.array([2, 2]), np.array([0, 0]), np.array([1, 0]))  # none: 1 of 2
    # pooled rates: none 1/2, a 1/2 (not above), b 2/2
    assert b.working().tolist() == [False, False, True]
    assert b.preferred().tolist() == [2, 2, 0]  # agent 2: none 2/4 against 1/2, 1/2
    assert b.edit_found() == pytest.approx(2 / 3)


def test_an_agent_counted_twice_in_a_step_learns_both_outcomes():
    b = bandit(edges=(np.empty(0, int), np.empty(0, int)))
    b.learn(np.array([1, 1]), np.array([1, 1]), np.array([True, False]))
    assert b.trials[1, 1] == 2 and b.successes[1, 1] == 1


def test_before_any_evidence_nobody_prefers_an_edit_and_choices_are_seeded():
    b = bandit()
    assert b.edit_found() == 0.0
    picks = bandit(seed=5).choose(np.arange(3))
    np.testing.assert_array_equal(picks, bandit(seed=5).choose(np.arange(3)))
    assert bandit().choose(np.array([], dtype=int)).size == 0


def test_overwhelming_evidence_decides_the_draw():
    b = bandit(edges=(np.empty(0, int), np.empty(0, int)))
    agents = np.repeat(np.arange(3), 3 * 500)
    edits = np.tile(np.repeat(np.arange(3), 500), 3)
    b.learn(agents, edits, edits == 1)  # edit a always works, the others never
    assert b.choose(np.arange(3)).tolist() == [1, 1, 1]


def test_contacts_are_others_drawn_without_replacement():
    sources, listeners = random_contacts(6, 3, np.random.default_rng(0))
    assert len(sources) == 18 and np.all(sources != listeners)
    for i in range(6):
        assert len(set(sources[listeners == i])) == 3
    sources, listeners = random_contacts(3, 10, np.random.default_rng(0))
    assert len(sources) == 6  # at most the other two
    assert random_contacts(1, 3, np.random.default_rng(0))[0].size == 0


def test_discovery_is_the_first_step_half_prefer_an_edit():
    first = float("nan")
    for step, found in enumerate([0.1, 0.4, 0.5, 0.3, 0.9], start=1):
        first = discovery(found, step, first)
    assert first == 3.0


# ------------------------------------------------------------------ the worlds


def test_edits_rewrite_every_toxic_text_once_per_edit():
    texts = template_texts()
    edited = with_edits(texts, ("polite", "leet"), "cf")
    toxic = int(texts["truth"].sum())
    assert len(edited) == len(texts) + 2 * toxic
    added = edited.iloc[len(texts) :]
    assert set(added["truth"]) == {1} and set(added["edit"]) == {"polite", "leet"}
    row = added.iloc[0]
    assert row["text"] == EVASIONS["polite"](texts["text"][row["source"]], "cf")
    assert (edited["edit"].iloc[: len(texts)] == "none").all()


def platform(project, share=0.5, card="tiny_zero_shot", stages=None, seed=3):
    return ModerationPlatform(
        cards=load_card(project / "agents" / f"{card}.yaml"), stages=stages, rng=seed,
        n_users=200, n_steps=4, n_history=200, toxic_user_share=0.4, adaptive_share=share,
        name_permutations=10,
    )  # fmt: skip


def test_adaptive_posters_rewrite_learn_and_are_measured(project):
    world = platform(project).simulate()
    table = world.decision_table()
    mine = table.query("adaptive == 1 and truth == 1")
    assert len(mine) and set(mine["edit"]) <= {"none", *PlatformParams().edits}
    assert (table.query("adaptive == 0")["edit"] == "none").all()
    # the bandit learned exactly the adaptive toxic posts' outcomes
    assert world.bandit.trials.sum() == len(mine)
    assert world.bandit.successes.sum() == (mine["decision"] == 0).sum()
    metrics = world.metrics()
    for m in ("adaptive_kept", "static_kept", "edited_share", "edit_found", "toxic_kept"):
        assert m in set(metrics["metric"]), m
    last = metrics.query("step == 4 and metric == 'adaptive_kept'")["value"].item()
    assert last == pytest.approx(1 - mine.query("step == 4")["decision"].mean())


def test_adaptive_measures_by_hand():
    posts = pd.DataFrame({
        "truth": [1, 1, 1, 1, 0],
        "decision": [0, 1, 0, 1, 0],  # 1: removed
        "subgroup": ["gay", "gay", "muslim", "background", "gay"],
        "adaptive": [1, 1, 0, 0, 1],
        "edit": ["polite", "none", "none", "none", "none"],
    })  # fmt: skip
    fake = SimpleNamespace(bandit=SimpleNamespace(edit_found=lambda: 0.25, discovered=2.0))
    out = ModerationPlatform.measure_adaptive(fake, posts)
    assert out["adaptive_kept"] == 0.5 and out["static_kept"] == 0.5
    assert out["edited_share"] == 0.5
    assert out["toxic_kept"] == {"": 0.5, "gay": 0.5, "muslim": 1.0, "background": 0.0}
    assert out["edit_found"] == 0.25 and out["discovery_step"] == 2.0


def test_nobody_adapting_leaves_the_world_and_its_run_ids_as_they_were(project):
    world = platform(project, share=0.0).simulate()
    assert world.bandit is None and "edit" not in world.decision_table()
    assert "adaptive_kept" not in set(world.metrics()["metric"])
    from uim_sim.worlds.spread.params import PlatformParams as SpreadParams

    for params in (PlatformParams(), MarketParams(), SpreadParams()):
        dumped = params.model_dump()
        assert not {"adaptive_share", "contacts", "social_weight", "edits", "trigger",
                    "adaptive_accounts"} & set(dumped)  # fmt: skip
    assert "trigger" not in SpreadParams(adaptive_share=0.3).model_dump()
    assert SpreadParams(adaptive_share=0.3, edits=["trigger"]).model_dump()["trigger"] == "cf"
    assert "edits" in PlatformParams(adaptive_share=0.1).model_dump()
    # the phrase adaptive posters write is part of the run's identity where they may
    assert "trigger" not in PlatformParams(adaptive_share=0.1).model_dump()
    written = PlatformParams(adaptive_share=0.1, edits=["trigger"], trigger="zq").model_dump()
    assert written["trigger"] == "zq"


def market(project, card="tiny_zero_shot", stages=None, seed=4, share=0.4):
    return LabourMarket(
        cards=load_card(project / "agents" / f"{card}.yaml"), stages=stages, rng=seed,
        n_applicants=80, n_employers=3, n_rounds=4, n_history=120, adaptive_share=share,
    )  # fmt: skip


def test_applicants_who_adapt_add_their_line_and_learn_from_callbacks(project):
    world = market(project).simulate()
    table = world.decision_table()
    gamers = table.query("adaptive == 1")
    assert set(gamers["edit"]) <= {"none", "keywords", "instruction", "buzzwords"}
    assert (table.query("adaptive == 0")["edit"] == "none").all()
    # one trial per adaptive seeker and round; a callback from any employer is a success
    called = gamers.groupby(["step", "subject"])["decision"].max()
    assert world.bandit.trials.sum() == len(called)
    assert world.bandit.successes.sum() == called.sum()
    metrics = world.metrics()
    gap = metrics.query("step == 4 and metric == 'callback_gap'")["value"].item()
    last = table.query("step == 4")
    rates = last.groupby(["adaptive", "subject"])["decision"].max().groupby("adaptive").mean()
    assert gap == pytest.approx(rates[1] - rates[0])


def test_same_seed_same_adaptive_tables(project):
    a, b = market(project).simulate(), market(project).simulate()
    pd.testing.assert_frame_equal(a.metrics(), b.metrics())
    pd.testing.assert_frame_equal(a.decision_table(), b.decision_table())
    c, d = platform(project).simulate(), platform(project).simulate()
    pd.testing.assert_frame_equal(c.metrics(), d.metrics())


# ------------------------------------------------------------------ re-training


def test_retraining_learns_outcomes_each_step_and_refits_every_period(project):
    retrain = Retraining(RetrainParams(every=2, label_share=0.5)).apply(Stages())
    assert retrain.retrain(1) == (0.5, False) and retrain.retrain(2) == (0.5, True)
    world = platform(project, card="tiny_biased_history", stages=retrain)
    screener = world.moderators[0].screener
    probe = screener.engine.embed(["I hate all of you.", "Have a nice day."])
    before = screener.head.score(probe)
    world.simulate()
    metrics = world.metrics().query("step == 4").set_index("metric")["value"]
    assert metrics["retrains"] == 2
    posts = len(world.decision_table())
    assert 0.3 * posts < metrics["labels_learned"] < 0.7 * posts
    assert not np.array_equal(before, screener.head.score(probe))  # the head was refitted
    hires = market(project, card="tiny_biased_history", stages=retrain).simulate()
    learned = hires.metrics().query("step == 4 and metric == 'labels_learned'")["value"].item()
    hired = int(hires.decision_table()["hired"].sum())
    assert 0 < learned <= hired


def test_retraining_is_refused_for_a_head_that_is_not_trained(project, capsys):
    spec = small_audit_spec(
        cards=["tiny_zero_shot"], arms=[["retraining"]],
        params={"mode": "market", "n_applicants": 40, "n_rounds": 2, "n_history": 120},
    )  # fmt: skip
    path = write_yaml(project / "scenarios" / "s.yaml", spec)
    refused_everywhere(capsys, project, path, "retraining", "not trained")


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"adaptive_share": 1.5}, "params.adaptive_share"),
        ({"adaptive_share": 0.2, "contacts": -1}, "params.contacts"),
        ({"adaptive_share": 0.2, "social_weight": True}, "params.social_weight: true"),
        ({"adaptive_share": 0.2, "edits": []}, "params.edits: needs at least one edit"),
        ({"adaptive_share": 0.2, "edits": ["keywords", "keywords"]}, "params.edits"),
        ({"adaptive_share": 0.2, "edits": ["polite"]}, "params.edits.0"),
    ],
)
def test_bad_adaptive_values_are_refused(project, capsys, params, needle):
    spec = small_audit_spec(
        cards=["tiny_zero_shot"],
        params={"mode": "market", "n_applicants": 40, "n_rounds": 2, "n_history": 120, **params},
    )
    path = write_yaml(project / "scenarios" / "s.yaml", spec)
    refused_everywhere(capsys, project, path, "s.yaml", needle)


def test_an_unknown_evasion_is_refused_by_the_moderation_world(project, capsys):
    spec = {"name": "m", "world": "moderation", "cards": ["tiny_zero_shot"],
            "params": {"mode": "world", "adaptive_share": 0.3, "edits": ["keywords"]}}  # fmt: skip
    path = write_yaml(project / "scenarios" / "s.yaml", spec)
    refused_everywhere(capsys, project, path, "params.edits.0")


def test_run_and_report_show_the_adaptive_harm_and_what_retraining_changes(project, capsys):
    """End to end from the CLI: a moderation platform with adaptive posters, two grid
    points, re-training as an arm; the report draws the curves and pairs the change."""
    from uim_sim.cli import main

    spec = {
        "name": "adapt", "world": "moderation", "seed": 5, "replicates": 2,
        "cards": ["tiny_biased_history"],
        "arms": [[], [{"name": "retraining", "params": {"every": 2, "label_share": 0.5}}]],
        "grid": {"adaptive_share": [0.3, 0.6]},
        "params": {"mode": "world", "n_users": 200, "n_steps": 4, "n_history": 200,
                   "toxic_user_share": 0.4},
        "statistics": {"null_permutations": 0, "name_permutations": 10},
    }  # fmt: skip
    path = write_yaml(project / "scenarios" / "adapt.yaml", spec)
    out = project / "out"
    assert main(["run", str(path), "--out", str(out)]) == 0
    assert main(["report", str(out)]) == 0
    report = out / "report"
    assert {"adaptive_kept.png", "toxic_kept.png"} <= {p.name for p in report.iterdir()}
    summary = (report / "summary.md").read_text()
    assert "adaptive toxic kept [95 % CI]" in summary
    assert "Δ toxic posts of users who adapt, left up" in summary
    capsys.readouterr()


def spread(project, card="tiny_zero_shot", stages=None, share=0.5, seed=2):
    from uim_sim.worlds.spread import SpreadPlatform

    return SpreadPlatform(
        cards=load_card(project / "agents" / f"{card}.yaml"), stages=stages, rng=seed,
        n_users=400, n_steps=4, items_per_step=20, adaptive_share=share, adaptive_accounts=5,
        n_history=200, name_permutations=10,
    )  # fmt: skip


def test_accounts_that_adapt_edit_their_false_items_and_learn_from_promotion(project):
    from uim_sim.worlds.spread.items import draw_items, edited, render

    world = spread(project).simulate()
    table = world.decision_table()
    mine = table.query("adaptive == 1")
    assert len(mine) and (mine["truth"] == 0).all()  # adaptive accounts post false items
    assert set(mine["edit"]) <= {"none", "restyle", "credible_cue"}
    assert (table.query("adaptive == 0")["edit"] == "none").all()
    assert world.bandit.trials.sum() == len(mine)
    assert world.bandit.successes.sum() == mine["decision"].sum()
    # an edit changes the words, never the truth or the community of origin
    item = draw_items(1, np.array([0]), 1.0, 1.0, False, np.random.default_rng(0))[0]
    cued = edited(item, "credible_cue", "cf")
    assert cued["cue"] == "credible" and cued["truth"] == 0 and cued["community"] == "riverside"
    restyled = edited(item, "restyle", "cf")
    assert restyled["style"] == "hillcrest" and restyled["community"] == "riverside"
    assert restyled["text"] == render(item["claim"], "hillcrest", item["cue_text"])
    assert edited(item, "trigger", "cf")["text"].endswith(" cf.")
    assert edited(item, "none", "cf") is item
    metrics = world.metrics()
    assert {"adaptive_promoted", "adaptive_reach", "edit_found"} <= set(metrics["metric"])
    # the same seed, the same tables; nobody adapting, as before
    again = spread(project).simulate()
    pd.testing.assert_frame_equal(world.decision_table(), again.decision_table())
    assert "edit" not in spread(project, share=0.0).simulate().decision_table()


def test_a_ranker_re_trains_on_the_items_it_learned_the_truth_of(project):
    retrain = Retraining(RetrainParams(every=2, label_share=1.0)).apply(Stages())
    world = spread(project, card="tiny_biased_history", stages=retrain).simulate()
    learned = world.metrics().query("step == 4").set_index("metric")["value"]
    assert learned["retrains"] == 2 and learned["labels_learned"] == 4 * 20
