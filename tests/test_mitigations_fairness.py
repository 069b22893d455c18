"""Reweighing, counterfactual augmentation, fairlearn's ThresholdOptimizer and reject
option classification: each does what its paper says on a small synthetic case, the
decision-stage seam carries a fitted post-processor from training to every world's
decisions, and each is refused at plan time where it cannot act."""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import small_audit_spec, write_yaml
from typer.testing import CliRunner

from uim_sim.cards import AgentCard, DecisionSpec, HeadSpec
from uim_sim.cli import app
from uim_sim.lfm.heads import LogisticHead
from uim_sim.mitigate import (
    CounterfactualAugmentation,
    RejectOption,
    Reweighing,
    ThresholdOptimizer,
    compose,
)
from uim_sim.mitigate.base import NoParams
from uim_sim.mitigate.decision import RejectOptionParams, ThresholdOptimizerParams
from uim_sim.vocab.names import FIRST_NAMES, GROUPS, SURNAMES
from uim_sim.worlds import world_info
from uim_sim.worlds.base import ScreeningWorld, WorldInfo
from uim_sim.worlds.screening import Screener
from uim_sim.worlds.stages import Stages, TrainingSet

runner = CliRunner()
THRESHOLD = DecisionSpec(rule="threshold", threshold=0.5)


class GroupEngine:
    """Stands in for a checkpoint's engine: a text ``"<group>|<i>"`` embeds as the
    group's indicator, the label signal planted in row i, and noise."""

    def __init__(self, signal: np.ndarray, rng: np.random.Generator) -> None:
        self.signal, self.noise = signal, rng.normal(size=(len(signal), 3))

    def embed(self, texts):
        rows = [int(t.split("|")[1]) for t in texts]
        group = np.array([t.startswith("b|") for t in texts], dtype=float)
        return np.column_stack([group, self.signal[rows], self.noise[rows]]).astype(np.float32)


def biased_history(n: int = 3000, seed: int = 0) -> tuple[TrainingSet, np.ndarray]:
    """Labels that depend on a signal and, with a log-odds penalty, on group b."""
    rng = np.random.default_rng(seed)
    group = np.where(rng.random(n) < 0.4, "b", "a")
    signal = rng.normal(size=n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-(2 * signal - 2.0 * (group == "b"))))).astype(int)
    texts = [f"{g}|{i}" for i, g in enumerate(group)]
    return TrainingSet(texts, labels, [()] * n, group == "b", groups=group), signal


# ---------------------------------------------------------------- reweighing


def test_reweighing_makes_group_and_label_independent_in_the_weighted_data():
    data, signal = biased_history()
    stages = compose([Reweighing(NoParams())])
    out = stages.prepare_training(data, np.random.default_rng(0))
    assert data.weights is None and out.texts == data.texts
    frame = pd.DataFrame({"g": out.protected, "y": out.labels, "w": out.weights})
    weighted = (frame.w * frame.y).groupby(frame.g).sum() / frame.w.groupby(frame.g).sum()
    raw = frame.y.groupby(frame.g).mean()
    assert raw[False] - raw[True] > 0.2  # the history's association …
    assert np.allclose(weighted, frame.y.mean())  # … gone: weighted P(y|g) = P(y)
    assert np.isclose(out.weights.sum(), len(out.labels))
    # w(g, y) = P(g)P(y)/P(g, y): the over-represented cell (b, 0) weighs less than 1
    b_weights = frame[frame.g].groupby("y")["w"].first()
    assert b_weights[0] < 1 < b_weights[1]

    # the weights reach the head: fitted on the weighted data, it scores the groups'
    # texts more alike (the label still depends on the group given the signal, so the
    # group's coefficient shrinks, it does not vanish)
    def score_gap(stages: Stages) -> float:
        card = AgentCard(name="w", head=HeadSpec(kind="logistic", train_on="history"))
        engine = GroupEngine(signal, np.random.default_rng(1))
        screener = Screener(card, engine, LogisticHead())
        scores = screener.train(data, stages, np.random.default_rng(0)).head.score(
            engine.embed(data.texts)
        )
        return scores[data.groups == "a"].mean() - scores[data.groups == "b"].mean()

    plain, reweighed = score_gap(Stages()), score_gap(stages)
    assert plain > 0.2 and 0 < reweighed < plain / 2, (plain, reweighed)


# ---------------------------------------------------------------- counterfactual augmentation


def race_of(spans: tuple[str, ...]) -> tuple[bool, str]:
    """A hiring-like ``identify``: (names someone Black, their race)."""
    first = spans[0].split()[0]
    race = next(r for (r, _), names in FIRST_NAMES.items() if first in names)
    return race == "black", race


def named_history(n: int = 200, seed: int = 0) -> TrainingSet:
    rng = np.random.default_rng(seed)
    races, texts, spans, labels = [], [], [], []
    for _ in range(n):
        race, gender = GROUPS[int(rng.integers(4))] if rng.random() < 0.5 else ("white", "male")
        first, last = FIRST_NAMES[(race, gender)], SURNAMES[race]
        name = f"{first[rng.integers(len(first))]} {last[rng.integers(len(last))]}"
        texts.append(f"{name}. Office clerk with {int(rng.integers(10))} years of experience.")
        spans.append((name,))
        races.append(race)
        labels.append(int(rng.random() < (0.2 if race == "black" else 0.6)))
    protected = np.array(races) == "black"
    return TrainingSet(
        texts, np.array(labels), spans, protected, groups=np.array(races), identify=race_of
    )


def test_counterfactual_augmentation_gives_every_text_a_swapped_twin_with_its_label():
    data = named_history()
    stages = compose([CounterfactualAugmentation(NoParams())])
    out = stages.prepare_training(data, np.random.default_rng(0))
    n = len(data.texts)
    assert len(out.texts) == 2 * n and out.texts[:n] == data.texts
    for i in range(n):
        (own,), (twin,) = data.spans[i], out.spans[n + i]
        assert out.texts[n + i] == data.texts[i].replace(own, twin)  # only the name differs
        assert out.labels[n + i] == data.labels[i]
        assert race_of((twin,))[1] != data.groups[i] == race_of((own,))[1]
        assert out.groups[n + i] == race_of((twin,))[1]
        assert out.protected[n + i] == (out.groups[n + i] == "black")
        # the twin keeps the gender: the first name comes from the same gender's list
        gender = next(g for (_, g), names in FIRST_NAMES.items() if own.split()[0] in names)
        assert any(twin.split()[0] in FIRST_NAMES[(r, gender)] for r in ("black", "white"))
    # two-sided: both races named equally often, and the label no longer depends on race
    counts = pd.Series(out.groups).value_counts()
    assert (
        counts["black"] == counts["white"] == n and pd.Series(data.groups).value_counts().std() > 20
    )
    rates = pd.Series(out.labels).groupby(out.groups).mean()
    assert rates["black"] == rates["white"]
    # counterparts come from the generator: same state, same twins
    again = stages.prepare_training(data, np.random.default_rng(0))
    assert again.texts == out.texts
    with pytest.raises(ValueError, match="identity spans"):
        stages.prepare_training(TrainingSet(["a", "b"], np.array([0, 1]), [(), ()],
                                            np.array([0, 1]), identify=race_of),  # fmt: skip
                                np.random.default_rng(0))  # fmt: skip


def test_counterfactual_twins_of_identity_terms_keep_a_capital_and_skip_unpaired_groups():
    texts = ["Women are awful.", "I met a Muslim today.", "Teachers are lovely."]
    spans = [("women",), ("a Muslim",), ("Teachers",)]
    groups = np.array(["female", "muslim", "background"])

    def identify(spans):
        word = spans[0].lower()
        group = "male" if "men" in word else next(g for g in ("jewish", "christian") if g in word)
        return group, group

    data = TrainingSet(texts, np.array([1, 0, 0]), spans, groups, groups, identify=identify)
    out = compose([CounterfactualAugmentation(NoParams())]).prepare_training(
        data, np.random.default_rng(0)
    )
    assert out.texts[3] == "Men are awful." and out.groups[3] == "male"
    assert re.fullmatch(r"I met a (Jewish person|Christian) today\.", out.texts[4])
    assert len(out.texts) == 5  # the background text has no counterpart, so no twin


# ---------------------------------------------------------------- threshold optimizer


def scored_pool(n: int = 6000, seed: int = 0):
    """Scores of a head that under-scores group b at equal labels; b also has fewer
    positives."""
    rng = np.random.default_rng(seed)
    groups = np.where(rng.random(n) < 0.5, "b", "a")
    labels = (rng.random(n) < np.where(groups == "b", 0.35, 0.5)).astype(int)
    logit = 2.0 * (2 * labels - 1) + rng.normal(size=n) * 1.5 - 1.5 * (groups == "b")
    return 1 / (1 + np.exp(-logit)), labels, groups


def rates_by_group(chosen, labels, groups) -> pd.DataFrame:
    frame = pd.DataFrame({"d": chosen.astype(int), "y": labels, "g": groups})
    return pd.DataFrame({
        "selection": frame.groupby("g")["d"].mean(),
        "tpr": frame[frame.y == 1].groupby("g")["d"].mean(),
        "fpr": frame[frame.y == 0].groupby("g")["d"].mean(),
    })  # fmt: skip


@pytest.mark.parametrize(
    ("constraints", "equal", "tolerance"),
    [("demographic_parity", ["selection"], 0.03), ("equalized_odds", ["tpr", "fpr"], 0.05)],
)
def test_threshold_optimizer_meets_its_constraint_on_the_data_it_was_fitted_on(
    constraints, equal, tolerance
):
    scores, labels, groups = scored_pool()
    params = ThresholdOptimizerParams(constraints=constraints)
    stages = compose([ThresholdOptimizer(params)])
    rng = np.random.default_rng(0)
    fitted = stages.fit_decide(scores, labels, groups, rng)
    assert set(fitted) == {"threshold_optimizer"}
    before = rates_by_group(stages.decide(scores, groups, THRESHOLD, rng), labels, groups)
    chosen = stages.decide(scores, groups, THRESHOLD, rng, fitted=fitted)
    after = rates_by_group(chosen, labels, groups)
    for rate in equal:
        gap_before = abs(before.loc["a", rate] - before.loc["b", rate])
        gap_after = abs(after.loc["a", rate] - after.loc["b", rate])
        assert gap_before > 0.05 and gap_after < tolerance, (rate, gap_before, gap_after)
    # a group the adaptation data never named keeps the card's decision
    other = np.array(["c"] * 50)
    base = scores[:50] >= 0.5
    assert (stages.decide(scores[:50], other, THRESHOLD, rng, fitted=fitted) == base).all()
    # a group whose adaptation texts all carry one label cannot be fitted: left out too
    one_label = np.where(groups == "b", 0, labels)
    assert stages.fit_decide(scores, one_label, groups, rng)["threshold_optimizer"].groups == {"a"}


def test_threshold_optimizer_objective_must_suit_equalized_odds():
    with pytest.raises(ValueError, match="equalized_odds takes objective"):
        ThresholdOptimizerParams(constraints="equalized_odds", objective="selection_rate")


class HashEngine:
    """Stands in for a checkpoint's engine in a world: each text embeds as a random
    unit vector seeded by the text."""

    def embed(self, texts):
        vectors = np.stack(
            [np.random.default_rng(zlib.crc32(t.encode())).normal(size=16) for t in texts]
        )
        return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def test_the_fitted_post_processor_reaches_every_worlds_decide(monkeypatch):
    """The seam: each world trains its heads through ``fit_decide`` and passes the
    screener's ``fitted`` to every ``decide``."""
    from uim_sim.worlds.hiring import AuditStudy
    from uim_sim.worlds.moderation import ModerationPlatform
    from uim_sim.worlds.spread import SpreadPlatform

    monkeypatch.setattr("uim_sim.worlds.screening.get_engine", lambda *_: HashEngine())
    seen = []

    def spy(scores, groups, rule, rng, fitted=None):
        seen.append(((fitted or {}).get("threshold_optimizer"), set(np.asarray(groups).tolist())))
        return np.asarray(scores) >= np.median(scores)

    stages = compose([ThresholdOptimizer(ThresholdOptimizerParams())], Stages(decide=spy))
    head = HeadSpec(kind="logistic", train_on="history", history_bias=2.0)
    card = AgentCard(name="hashed", head=head, decision=THRESHOLD)
    worlds = [
        lambda: AuditStudy(n_jobs=2, n_history=120, cards=card, stages=stages, rng=1),
        lambda: ModerationPlatform(
            n_users=80, n_steps=1, n_history=200, n_moderators=2, cards=card, stages=stages, rng=1
        ),  # fmt: skip
        lambda: SpreadPlatform(
            n_users=200,
            n_steps=1,
            items_per_step=8,
            n_history=120,
            cards=card,
            stages=stages,
            rng=1,
        ),  # fmt: skip
    ]
    for make in worlds:
        seen.clear()
        world = make().simulate()
        assert seen and all(f is not None for f, _ in seen), type(world).__name__
        # the pools' groups are labelled as the adaptation data's: the fit applies
        assert all(groups <= f.groups for f, groups in seen), type(world).__name__


@pytest.mark.parametrize("world", ["hiring", "moderation", "spread"])
def test_the_new_mitigations_run_together_in_every_world(monkeypatch, world):
    monkeypatch.setattr("uim_sim.worlds.screening.get_engine", lambda *_: HashEngine())
    mitigations = [
        CounterfactualAugmentation(NoParams()),
        Reweighing(NoParams()),
        ThresholdOptimizer(ThresholdOptimizerParams(constraints="equalized_odds")),
        RejectOption(RejectOptionParams(theta=0.05)),
    ]
    head = HeadSpec(kind="logistic", train_on="history", history_bias=2.0)
    card = AgentCard(name="hashed", head=head, decision=THRESHOLD)
    model = world_info(world).model()
    small = {
        "hiring": dict(n_jobs=2, n_history=120),
        "moderation": dict(n_users=80, n_steps=2, n_history=200, n_moderators=2),
        "spread": dict(n_users=200, n_steps=2, items_per_step=8, n_history=120),
    }[world]
    run = model(**small, cards=card, stages=compose(mitigations), rng=2).simulate()
    assert len(run.decision_table()) > 0 and run.metrics()["value"].notna().all()


# ---------------------------------------------------------------- reject option


def test_reject_option_favours_the_deprived_group_only_near_the_boundary():
    scores, labels, groups = scored_pool(2000, seed=1)
    theta = 0.1
    stages = compose([RejectOption(RejectOptionParams(theta=theta))])
    rng = np.random.default_rng(0)
    base = scores >= 0.5
    chosen = stages.decide(scores, groups, THRESHOLD, rng)
    critical = np.abs(scores - 0.5) <= theta
    assert (chosen[~critical] == base[~critical]).all()  # nothing changes outside
    assert chosen[critical & (groups == "b")].all()  # b, selected less, is deprived
    assert not chosen[critical & (groups == "a")].any()
    rate = pd.Series(chosen).groupby(groups).mean()
    rate_before = pd.Series(base).groupby(groups).mean()
    assert rate["b"] > rate_before["b"] and rate["a"] < rate_before["a"]
    # a top-share rule: the region lies around the pool's cut score
    share = DecisionSpec(rule="top_share", share=0.3)
    cut = np.sort(scores)[::-1][round(0.3 * len(scores)) - 1]
    chosen = stages.decide(scores, groups, share, rng)
    outside = np.abs(scores - cut) > theta
    assert (chosen[outside] == (scores >= cut)[outside]).all()
    assert chosen[~outside & (groups == "b")].all() and not chosen[~outside & (groups == "a")].any()
    # naming the deprived group instead: a is selected near the boundary
    named = compose([RejectOption(RejectOptionParams(theta=theta, deprived=["a"]))])
    chosen = named.decide(scores, groups, THRESHOLD, rng)
    assert chosen[critical & (groups == "a")].all() and not chosen[critical & (groups == "b")].any()


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "name", ["reweighing", "counterfactual_augmentation", "threshold_optimizer"]
)
def test_mitigations_that_need_a_trained_head_are_refused_on_a_zero_shot_card(project, name):
    spec = small_audit_spec(cards=["tiny_zero_shot"], arms=[[name]])
    path = write_yaml(project / "scenarios" / "noop.yaml", spec)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "card tiny_zero_shot's zero_shot head is not trained" in result.output
    spec = small_audit_spec(cards=["tiny_biased_history"], arms=[[name]])
    ok = write_yaml(project / "scenarios" / "ok.yaml", spec)
    assert runner.invoke(app, ["validate", str(ok)]).exit_code == 0


class NoDecisions(ScreeningWorld):
    hooks = frozenset({"prepare_training", "debias"})


def test_mitigations_are_refused_where_their_hooks_or_spans_are_missing():
    file_card = AgentCard(
        name="from_file",
        head=HeadSpec(kind="logistic", train_on="file", file=Path("decisions.csv")),
    )
    cda = CounterfactualAugmentation(NoParams())
    assert "carries none" in cda.refusal(world_info("moderation"), file_card)
    assert cda.refusal(world_info("hiring"), file_card) is None
    assert cda.refusal(world_info("spread"), file_card) is None
    toy = WorldInfo("toy", "no decisions", {"toy": NoDecisions})
    assert "decide hook" in RejectOption(RejectOptionParams()).refusal(toy, file_card)
    assert "decide hook" in ThresholdOptimizer(ThresholdOptimizerParams()).refusal(toy, file_card)
    for world in ("hiring", "moderation", "spread"):
        zero_shot = world_info(world).model().default_card
        assert RejectOption(RejectOptionParams()).refusal(world_info(world), zero_shot) is None
