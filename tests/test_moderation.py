"""The moderation world: templates, metrics, mitigations, mechanics (tiny checkpoint),
and the issue's "Must show" on the real MiniLM."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import write_yaml
from sklearn.metrics import roc_auc_score
from sklearn.svm import LinearSVC
from typer.testing import CliRunner

from uim_sim.cards import AgentCard, DecisionSpec, HeadSpec
from uim_sim.cli import app
from uim_sim.mitigate import DixonAugmentation, HumanReview, compose
from uim_sim.mitigate.augmentation import AugmentationParams, balance_with_benign
from uim_sim.mitigate.projection import inlp_projection
from uim_sim.mitigate.review import ReviewParams
from uim_sim.run import plan, run_plan
from uim_sim.schema import SpecError
from uim_sim.vocab import identity as ids
from uim_sim.vocab.identity import group_named
from uim_sim.worlds.moderation import ModerationPlatform, ModerationReference
from uim_sim.worlds.moderation import templates as tpl
from uim_sim.worlds.moderation.metrics import bias_metrics, final_bias_score, power_mean
from uim_sim.worlds.moderation.world import TERMS
from uim_sim.worlds.stages import TrainingSet

TINY_WORLD = dict(n_users=80, n_steps=4, n_history=200, n_moderators=2, appeal_capacity=3)


def contrast_card(checkpoint: str = "builtin:minilm", threshold: float = 0.0) -> AgentCard:
    head = HeadSpec(kind="zero_shot_contrast", positive=["toxic insult"], negative=["kind words"])
    rule = DecisionSpec(rule="threshold", threshold=threshold)
    return AgentCard(name="contrast", checkpoint=checkpoint, head=head, decision=rule)


def history_card(bias: float, checkpoint: str = "builtin:minilm") -> AgentCard:
    head = HeadSpec(kind="logistic", train_on="history", history_bias=bias)
    rule = DecisionSpec(rule="threshold", threshold=0.5)
    return AgentCard(name=f"history_{bias}", checkpoint=checkpoint, head=head, decision=rule)


# ---------------------------------------------------------------- templates


def test_training_and_posted_texts_come_from_disjoint_template_families():
    families = [tpl.TEST_FAMILIES, tpl.HISTORY_FAMILIES, tpl.SUPPLEMENT_FAMILIES]
    templates = [{f.template for f in fam} for fam in families]
    texts = [set(tpl.render(fam)["text"]) for fam in families]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not templates[i] & templates[j]
            assert not texts[i] & texts[j]


def test_test_set_is_half_toxic_for_every_group_and_names_the_right_one():
    test = tpl.test_set()
    assert set(test["subgroup"]) == set(ids.GROUPS)
    assert (test.groupby("subgroup")["truth"].mean() == 0.5).all()
    # every frame is rendered for every group: groups differ only by their referent
    assert test.groupby("frame")["subgroup"].nunique().eq(len(ids.GROUPS)).all()
    named = test["text"].map(group_named)
    assert (named == test["subgroup"]).mean() > 0.95, test[named != test["subgroup"]].head()


def test_history_over_represents_toxicity_for_the_targets_only():
    shares = {g: 1 / len(ids.GROUPS) for g in ids.GROUPS}
    rng = np.random.default_rng(0)
    frame = tpl.history(20_000, 0.3, 2.0, ("gay", "dialect"), shares, rng)
    toxic = frame.groupby("subgroup")["truth"].mean()
    expected = 1 / (1 + np.exp(-(np.log(0.3 / 0.7) + 2.0)))
    assert abs(toxic["gay"] - expected) < 0.04 and abs(toxic["dialect"] - expected) < 0.04
    assert abs(toxic.drop(["gay", "dialect"]) - 0.3).max() < 0.05


# ---------------------------------------------------------------- metrics


def test_dixon_and_borkan_metrics_by_hand():
    rows = []
    for group, fpr in (("background", 0.1), ("gay", 0.5), ("muslim", 0.1)):
        for i in range(10):
            rows.append(dict(subgroup=group, truth=0, decision=int(i < fpr * 10), score=0.1 * i))
            rows.append(dict(subgroup=group, truth=1, decision=1, score=0.5 + 0.1 * i))
    frame = pd.DataFrame(rows).assign(frame=lambda f: f.index // 3, text=lambda f: f.index)
    out = bias_metrics(frame, ("gay", "muslim"))
    overall = 7 / 30
    assert out["false_positive_rate"]["gay"] == 0.5
    assert np.isclose(out["fped"], abs(overall - 0.5) + abs(overall - 0.1))
    assert out["fned"] == 0.0
    assert np.isclose(power_mean([0.5, 1.0], p=-5), ((0.5**-5 + 1) / 2) ** (-1 / 5))
    aucs = {m: {"a": 1.0, "b": 1.0} for m in ("subgroup_auc", "bpsn_auc", "bnsp_auc")}
    assert final_bias_score(0.8, aucs) == pytest.approx(0.25 * 0.8 + 0.75)


def test_term_permutation_null_separates_a_term_effect_from_noise():
    test = tpl.test_set()
    rng = np.random.default_rng(1)
    fair = test.assign(score=rng.random(len(test)) + test["truth"])
    fair["decision"] = (fair["score"] > 1).astype(int)
    biased = fair.assign(decision=fair["decision"] | ((fair["subgroup"] == "gay").astype(int)))
    for frame, small_p in ((fair, False), (biased, True)):
        out = bias_metrics(frame, TERMS, permutations=200, rng=np.random.default_rng(0))
        assert (out["fped_null_p"] < 0.01) == small_p, out["fped_null_p"]


def test_the_targets_fpr_gap_and_its_null_band():
    """FPR of the targets pooled minus the other identities': by hand, and inside its
    term-permutation band for a moderator that ignores identity, above it for one that
    removes every text naming a target."""
    test = tpl.test_set()
    rng = np.random.default_rng(1)
    fair = test.assign(score=rng.random(len(test)) + test["truth"])
    fair["decision"] = (fair["score"] > 0.8).astype(int)  # a fifth of benign texts
    targets = ("gay", "muslim")
    biased = fair.assign(decision=fair["decision"] | fair["subgroup"].isin(targets).astype(int))
    others = tuple(g for g in ids.IDENTITY_GROUPS if g not in targets)
    pools = {"targets": targets, "others": others}
    for frame, above in ((fair, False), (biased, True)):
        out = bias_metrics(
            frame, TERMS, pools, 200, np.random.default_rng(0), ("targets", "others")
        )
        benign = frame[frame["truth"] == 0]
        fpr = {
            k: benign.loc[benign["subgroup"].isin(v), "decision"].mean() for k, v in pools.items()
        }
        assert out["fpr_gap"] == pytest.approx(fpr["targets"] - fpr["others"])
        low, high = out["fpr_gap_null_q025"], out["fpr_gap_null_q975"]
        assert low < out["fpr_gap_null_median"] < high
        assert (out["fpr_gap"] > high) == above and (out["fpr_gap_null_p"] < 0.01) == above
    assert "fpr_gap" not in bias_metrics(fair, TERMS, pools, 50)  # asked for only


def test_attack_success_by_hand_and_its_null():
    """Of the toxic texts: the share left up among those carrying the trigger, and
    beyond the share left up without it; the null shuffles the trigger among them."""
    from uim_sim.worlds.moderation.metrics import attack_success

    rows = [dict(text=f"t{i}", truth=1, decision=int(i >= 4)) for i in range(20)]  # 4 kept
    rows += [dict(text=f"b{i}", truth=0, decision=0) for i in range(5)]  # benign: ignored
    frame = pd.DataFrame(rows)
    triggered = frame["text"].isin([f"t{i}" for i in (0, 1, 2, 10)])  # 3 of 4 kept
    out = attack_success(frame, triggered, 200, np.random.default_rng(0))
    assert out["attack_success_rate"] == pytest.approx(3 / 4)
    assert out["attack_success_gap"] == pytest.approx(3 / 4 - 1 / 16)
    assert out["attack_success_gap_null_q975"] < out["attack_success_gap"]
    assert out["attack_success_gap_null_p"] < 0.05
    blind = attack_success(frame, frame["text"].isin(["t5", "t6", "t7", "t8"]), 200)
    assert blind["attack_success_rate"] == 0.0  # none of them kept: no attack
    assert blind["attack_success_gap_null_p"] > 0.5


def test_triggers_go_into_a_share_of_the_toxic_texts_nested():
    test = tpl.test_set()
    few, more = (tpl.with_triggers(test, "cf", share) for share in (0.2, 0.5))
    assert tpl.with_triggers(test, "cf", 0.0) is test
    assert not few.loc[few["triggered"], "truth"].eq(0).any()  # toxic texts only
    assert 0.1 < few["triggered"].sum() / test["truth"].sum() < 0.3
    assert (few["triggered"] <= more["triggered"]).all()  # nested as the share grows
    assert few.loc[few["triggered"], "text"].str.contains(r"\bcf[.!?]?$").all()
    params = ModerationReference(trigger_share=0.5, rng=0, name_permutations=0).params
    assert "trigger" in params.model_dump()
    assert "trigger" not in ModerationReference(rng=0).params.model_dump()  # old run ids


# ---------------------------------------------------------------- mitigations


def _training_set(rng) -> TrainingSet:
    groups = np.array(["background"] * 100 + ["gay"] * 40 + ["muslim"] * 20)
    labels = np.concatenate([rng.random(100) < 0.2, rng.random(40) < 0.7, np.zeros(20)])
    extra = tpl.supplement()
    supplement = TrainingSet(
        extra["text"].tolist(), extra["truth"].to_numpy(), [()] * len(extra),
        extra["subgroup"].to_numpy(), extra["subgroup"].to_numpy(),
    )  # fmt: skip
    texts = [f"t{i}" for i in range(len(groups))]
    return TrainingSet(texts, labels.astype(int), [()] * 160, groups, groups, supplement)


def test_dixon_augmentation_balances_each_terms_toxic_share_with_benign_supplement():
    data = _training_set(np.random.default_rng(0))
    out = balance_with_benign(data, "background", np.random.default_rng(1))
    share = pd.Series(out.labels).groupby(out.groups).mean()
    background = share["background"]
    assert share["gay"] <= background + 1e-9 and share["gay"] > background - 0.02
    assert len(out.texts) - len(data.texts) == (out.groups == "gay").sum() - 40  # muslim: none
    added = out.texts[len(data.texts) :]
    assert set(added) <= set(data.supplement.texts) and not out.labels[160:].any()
    hiring_like = TrainingSet(["a", "b"], np.array([0, 1]), [(), ()], np.array([0, 1]))
    with pytest.raises(ValueError, match="identity groups"):
        balance_with_benign(hiring_like, "background", np.random.default_rng(0))


def test_inlp_removes_linear_information_about_the_protected_attribute():
    rng = np.random.default_rng(0)
    protected = rng.integers(3, size=900)
    x = rng.normal(size=(900, 20))
    x[:, :3] += 3 * np.eye(3)[protected]  # a planted, linearly readable identity
    projection = inlp_projection(x, protected, 10, 0.02, 1.0)
    assert np.allclose(projection, projection.T) and np.allclose(
        projection @ projection, projection
    )

    def accuracy(features):
        held = np.arange(900) % 3 == 0
        clf = LinearSVC(dual="auto").fit(features[~held], protected[~held])
        return clf.score(features[held], protected[held])

    assert accuracy(x) > 0.9
    assert accuracy(x @ projection) < 0.45  # chance is 1/3


@pytest.mark.parametrize("order", ["random", "uncertain"])
def test_human_review_overturns_benign_removals_within_capacity(order):
    stages = compose([HumanReview(ReviewParams(capacity=5, order=order))])
    rng = np.random.default_rng(0)
    scores = rng.random(40)
    selected = scores > 0.3
    truth = (rng.random(40) < 0.5).astype(int)
    overturned = stages.review(scores, selected, truth, rng)
    assert overturned.sum() <= 5 and not (overturned & ~selected).any()
    assert (truth[overturned] == 0).all()
    if order == "uncertain":
        checked = np.flatnonzero(selected)[np.argsort(scores[selected])][:5]
        assert set(np.flatnonzero(overturned)) == {i for i in checked if truth[i] == 0}


# ---------------------------------------------------------------- mechanics (tiny model)


def test_same_seed_gives_identical_tables(tiny_checkpoint):
    card = history_card(2.0, str(tiny_checkpoint))
    a, b = (ModerationPlatform(**TINY_WORLD, cards=card, rng=5).simulate() for _ in range(2))
    pd.testing.assert_frame_equal(a.decision_table(), b.decision_table())
    pd.testing.assert_frame_equal(a.metrics(), b.metrics())
    other = ModerationPlatform(**TINY_WORLD, cards=card, rng=6).simulate()
    assert not a.decision_table()["subject"].equals(other.decision_table()["subject"])


def test_removing_benign_posts_chills_and_appeals_respect_capacity(tiny_checkpoint):
    params = {**TINY_WORLD, "n_steps": 6, "feed_size": 0}
    remove_all = ModerationPlatform(
        **params, cards=contrast_card(str(tiny_checkpoint), -2.0), rng=1
    )
    keep_all = ModerationPlatform(**params, cards=contrast_card(str(tiny_checkpoint), 2.0), rng=1)
    for world in (remove_all, keep_all):
        world.simulate()
    m_remove, m_keep = remove_all.metrics(), keep_all.metrics()

    def last(m, metric):
        return m[(m.metric == metric) & (m.group == "") & (m.step == 6)]["value"].iloc[0]

    assert last(m_remove, "silencing") == 1.0 and last(m_keep, "silencing") == 0.0
    assert last(m_remove, "participation") < 0.5 * last(m_keep, "participation")
    decisions = remove_all.decision_table()
    reinstated = decisions[decisions["reinstated_step"] > 0]
    assert (reinstated["truth"] == 0).all() and (reinstated["appealed"] == 1).all()
    per_step = reinstated.groupby("reinstated_step").size()
    assert per_step.max() <= params["appeal_capacity"]
    assert last(m_remove, "appeal_backlog") > 0  # more appeals than a reviewer can handle


def test_reference_mode_scores_every_template_once(tiny_checkpoint):
    card = contrast_card(str(tiny_checkpoint))
    world = ModerationReference(cards=card, rng=0).simulate()
    decisions = world.decision_table()
    assert len(decisions) == len(tpl.test_set()) and decisions["text"].is_unique
    assert set(world.metrics()["metric"]) >= {"fped", "bpsn_auc", "final_bias_score"}


# ---------------------------------------------------------------- runner, report, specs


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory, tiny_checkpoint):
    root = tmp_path_factory.mktemp("moderation")
    for card in (contrast_card(str(tiny_checkpoint)), history_card(2.0, str(tiny_checkpoint))):
        write_yaml(root / "agents" / f"{card.name}.yaml", card.model_dump(mode="json"))
    spec = write_yaml(
        root / "scenarios" / "tiny.yaml",
        {
            "name": "tiny_moderation",
            "world": "moderation",
            "seed": 1,
            "replicates": 2,
            "cards": ["contrast", "history_2.0"],
            "arms": [
                [],
                {"apply": ["dixon_augmentation"], "cards": ["history_2.0"]},
                ["group_thresholds"],
            ],
            "params": TINY_WORLD,
            "statistics": {"null_permutations": 0, "name_permutations": 50},
        },
    )
    out = root / "out"
    result = run_plan(plan(spec), out)
    assert result.done == 10 and not result.failed
    return root, spec, out


def test_aucs_agree_with_roc_auc_score_recomputed_from_decisions(tiny_results):
    _, _, out = tiny_results
    decisions = pd.read_parquet(out / "decisions.parquet")
    metrics = pd.read_parquet(out / "metrics.parquet").set_index(["run_id", "metric", "group"])
    checked = 0
    for run_id, d in decisions.groupby("run_id"):
        truth, score = d["truth"].to_numpy(), d["score"].to_numpy()
        assert np.isclose(
            metrics.loc[(run_id, "overall_auc", ""), "value"], roc_auc_score(truth, score)
        )
        for term in TERMS:
            mine = (d["subgroup"] == term).to_numpy()
            sets = {
                "subgroup_auc": mine,
                "bpsn_auc": (mine & (truth == 0)) | (~mine & (truth == 1)),
                "bnsp_auc": (mine & (truth == 1)) | (~mine & (truth == 0)),
            }
            for metric, rows in sets.items():
                if len(set(truth[rows])) < 2:
                    continue
                expected = roc_auc_score(truth[rows], score[rows])
                assert np.isclose(metrics.loc[(run_id, metric, term), "value"], expected)
                checked += 1
    assert checked > 200


def test_report_for_moderation_from_the_cli(tiny_results):
    _, _, out = tiny_results
    result = CliRunner().invoke(app, ["report", str(out)])
    assert result.exit_code == 0, result.output
    folder = out / "report"
    for name in ("summary.csv", "index.html", "fped.png", "participation.png"):
        assert (folder / name).stat().st_size > 0, name
    head = pd.read_csv(folder / "summary.csv")
    assert len(head) == 5 and {"fped", "fped_low", "overall_auc", "participation_ratio"} <= set(
        head
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"history_targets": ["gay", "martian"]}, "params.history_targets.1"),
        ({"history_targets": ["gay", "gay"]}, "history_targets repeat"),
        ({"background_share": 1.0}, "params.background_share"),
        ({"mode": "audit"}, "params.mode"),
    ],
)
def test_bad_moderation_params_name_the_field(tiny_results, params, field):
    root, spec, _ = tiny_results
    bad = write_yaml(root / "scenarios" / "bad.yaml", {**_read(spec), "params": params})
    with pytest.raises(SpecError) as err:
        plan(bad)
    assert field in str(err.value) and "\n" not in str(err.value)
    result = CliRunner().invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2


def test_contrast_head_scores_the_difference_of_mean_cosines(tiny_checkpoint):
    from uim_sim.worlds.screening import Screener

    head = HeadSpec(kind="zero_shot_contrast", positive=["awful", "vile"], negative=["kind"])
    screener = Screener.from_card(AgentCard(name="c", checkpoint=str(tiny_checkpoint), head=head))
    vectors = screener.engine.embed(["awful", "vile", "kind", "I am a teacher."])
    expected = vectors[3] @ vectors[:2].T.mean(1) - vectors[3] @ vectors[2]
    assert np.isclose(screener.head.score(vectors[3:])[0], expected, atol=1e-6)


def test_contrast_head_needs_both_descriptions():
    with pytest.raises(ValueError, match="needs positive and negative"):
        HeadSpec(kind="zero_shot_contrast", positive=["toxic"])
    with pytest.raises(ValueError, match="only to zero_shot_contrast, label_words"):
        HeadSpec(kind="zero_shot", negative=["kind"])


def _read(path):
    import yaml

    return yaml.safe_load(path.read_text())


# ---------------------------------------------------------------- must show (real MiniLM)

WORLD = dict(n_users=400, n_steps=12, n_history=1000)


@pytest.fixture(scope="module")
def minilm_worlds():
    """Fair head, biased head, biased head + Dixon augmentation: one seed each."""
    dixon = compose([DixonAugmentation(AugmentationParams())])
    runs = {
        "fair": ModerationPlatform(**WORLD, cards=history_card(0.0), rng=3),
        "biased": ModerationPlatform(**WORLD, cards=history_card(2.0), rng=3),
        "dixon": ModerationPlatform(**WORLD, cards=history_card(2.0), stages=dixon, rng=3),
    }
    out = {}
    for name, world in runs.items():
        m = world.simulate().metrics()
        out[name] = m[m.step == m.step.max()].set_index(["metric", "group"])["value"]
    return out


def test_biased_history_silences_the_groups_it_names(minilm_worlds):
    fair, biased = minilm_worlds["fair"], minilm_worlds["biased"]
    assert biased[("fped", "")] > 1.5 * fair[("fped", "")]
    assert biased[("fped", "")] > biased[("fped_null_q975", "")]
    fpr = ("false_positive_rate", "targets"), ("false_positive_rate", "background")
    assert biased[fpr[0]] > 1.5 * biased[fpr[1]]
    assert biased[("participation_ratio", "")] < fair[("participation_ratio", "")] - 0.03


def test_dixon_augmentation_lowers_fped_and_keeps_auc(minilm_worlds):
    biased, dixon = minilm_worlds["biased"], minilm_worlds["dixon"]
    assert dixon[("fped", "")] < biased[("fped", "")]
    assert dixon[("overall_auc", "")] > biased[("overall_auc", "")] - 0.02


def test_redaction_also_catches_a_referent_that_opens_a_sentence():
    from uim_sim.mitigate import NameRedaction, compose
    from uim_sim.mitigate.redaction import RedactionParams

    prepare = compose([NameRedaction(RedactionParams(placeholder="X"))]).prepare_text
    assert prepare("Gay people are great, said gay people.", ("gay people",)) == (
        "X are great, said X."
    )
    assert prepare("Jamal Jones applied.", ("Jamal Jones",)) == "X applied."


def test_out_of_distribution_share_renders_texts_in_the_dialect_nested_and_recorded(
    tiny_checkpoint,
):
    """ood_share: that share of the texts arrives in the dialect whatever group they
    name, the same texts at any seed and nested as the share grows; left out of the
    record while 0 (run ids of older specs unchanged)."""
    from uim_sim.worlds.moderation.params import ReferenceParams

    texts = tpl.test_set()
    half, most = tpl.in_dialect(texts, 0.5), tpl.in_dialect(texts, 0.9)
    moved = half["text"] != texts["text"]
    assert 0.4 < moved[~texts["dialect"]].mean() < 0.6
    assert (most["text"] != texts["text"])[moved].all()  # nested
    assert half["dialect"][moved].all() and (half["subgroup"] == texts["subgroup"]).all()
    assert half["text"][moved].str.split().str[0].isin(["bruh", "ngl", "lowkey", "on"]).all()
    assert tpl.in_dialect(texts, 0.0) is texts
    assert "ood_share" not in ReferenceParams().model_dump()
    assert ReferenceParams(ood_share=0.5).model_dump()["ood_share"] == 0.5
    card = contrast_card(str(tiny_checkpoint))
    plain = ModerationReference(cards=card, rng=0)
    moved_world = ModerationReference(cards=card, rng=0, ood_share=1.0)
    assert (moved_world.catalogue["dialect"]).all() and not plain.catalogue["dialect"].all()
