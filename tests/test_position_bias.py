"""A causal LM shown a whole pool in one prompt (the `choose_one` head), the order it
is shown in, drawn per decision and recorded, and the order effect it can have
(`position_bias`, after Bloomberg's 2024 audit of GPT-3.5 ranking resumes)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import small_audit_spec, write_yaml
from pydantic import ValidationError
from scipy import stats
from test_causal_lm import POOL_HEAD, pool_lm, refused

from uim_sim.cards import AgentCard, HeadSpec
from uim_sim.lfm.heads import HeadError
from uim_sim.metrics.stats import chance_hits_p, wilson_interval
from uim_sim.worlds.hiring import AuditStudy, LabourMarket
from uim_sim.worlds.hiring.metrics import POSITION_BIAS, position_bias

FIRST = 1 - 1 / 8  # the position bias of a model that always picks the first of eight
INTERSECTIONS = ("black_female", "black_male", "white_female", "white_male")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: these models are tiny, and the machine is shared."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def chooser(tmp_path_factory):
    return pool_lm(tmp_path_factory.mktemp("pool") / "gpt2")


@pytest.fixture(scope="module")
def first_chooser(chooser, tmp_path_factory):
    """The chooser with its last layer norm set so that its next token is " 1" after any
    prompt: whatever the candidates, it picks the one shown first."""
    import torch
    from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

    folder = shutil.copytree(chooser, tmp_path_factory.mktemp("first") / "gpt2")
    model = GPT2LMHeadModel.from_pretrained(folder)
    labels = PreTrainedTokenizerFast.from_pretrained(folder).convert_tokens_to_ids(
        [f"Ġ{i}" for i in range(1, 9)]
    )  # fmt: skip
    embeddings = model.transformer.wte.weight.detach()
    with torch.no_grad():
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.copy_(1000 * embeddings[labels[0]])
        logits = embeddings[labels] @ model.transformer.ln_f.bias
    assert int(logits.argmax()) == 0 and float(logits[0] - logits[1:].max()) > 10
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def card(folder, **head) -> AgentCard:
    return AgentCard(name="chooser", checkpoint=str(folder), head=HeadSpec(**POOL_HEAD, **head))


def spy_prompts(engine) -> list[str]:
    """The pool prompts the engine is asked to score, from now on."""
    seen, score = [], engine.next_token_log_probs

    def spy(prompts, words, whole=False):
        seen.extend(prompts)
        return score(prompts, words, whole=whole)

    engine.next_token_log_probs = spy
    return seen


# ------------------------------------------------------------ the head


@pytest.mark.parametrize(
    ("head", "message"),
    [
        ({"prompt": None}, "a choose_one head needs prompt"),
        ({"prompt": "{context} The best is Candidate"}, "prompt must hold {candidates}"),
        ({"prompt": "{candidates} {text} Candidate"}, "unknown placeholders ['text']"),
        ({"prompt": "{candidates} Best: "}, "must not end in whitespace"),
        ({"prompt": "{candidates} [MASK]"}, "holds no [MASK]"),
        ({"candidate": "Candidate {label}"}, "candidate must hold {label} and {text}"),
        ({"candidate": "{label} {text} {name}"}, "candidate: unknown placeholders ['name']"),
        ({"positive": [" 1"], "negative": [" 2"]}, "positive/negative apply only to"),
        ({"kind": "next_token", "prompt": "{text} Hire? Answer:", "positive": [" yes"],
          "negative": [" no"], "candidate": "{label} {text}"},
         "candidate applies only to kind: choose_one"),
    ],
)  # fmt: skip
def test_a_choose_one_head_is_validated(head, message):
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        HeadSpec(**{**POOL_HEAD, **head})


def test_a_pool_is_one_prompt_in_an_order_drawn_per_decision(chooser):
    """Every job ad's eight resumes in one prompt, labelled in the order recorded as
    each decision's position; the orders differ between ads; a pool's scores are the
    probabilities of its labels, summing to 1, as the prompt alone gives them (longer
    than 256 tokens, not cut); the engine counts one prompt a pool."""
    import torch

    world = AuditStudy(n_jobs=12, cards=card(chooser), rng=1)
    engine = world.pools[0][0].screener.engine
    prompts = spy_prompts(engine)
    before = engine.counters.copy()
    table = world.simulate().decision_table()
    assert len(prompts) == 12 and engine.counters.delta(before)["texts_requested"] == 12
    orders = set()
    for (employer, applicants), prompt in zip(world.pools, prompts):
        rows = table[table["decider"] == employer.unique_id]
        assert sorted(rows["position"]) == list(range(8))
        assert rows["score"].sum() == pytest.approx(1) and rows["score"].nunique() == 8
        for a, position in zip(applicants, rows["position"]):
            assert f"Candidate {position + 1}: {a.resume()}\n" in prompt
        assert prompt.startswith(employer.description) and prompt.endswith("is Candidate")
        orders.add(tuple(rows["position"]))
    assert len(orders) == 12
    # read whole, beyond the 256 tokens other prompts are cut to: as the prompt alone
    _, applicants = world.pools[0]
    ids = engine.tokenizer(prompts[0], return_tensors="pt")["input_ids"]
    assert ids.shape[1] > engine.max_length == 256
    with torch.inference_mode():
        logits = engine.network(input_ids=ids).logits[0, -1].double()
    alone = torch.softmax(logits[engine.word_ids([f" {i}" for i in range(1, 9)])], 0).numpy()
    rows = table[table["decider"] == world.pools[0][0].unique_id].sort_values("position")
    np.testing.assert_allclose(rows["score"], alone, rtol=0, atol=1e-6)
    # the card's rule picks within the pool: the four likeliest labels
    picked = table.groupby("decider").apply(
        lambda r: set(r.nlargest(4, "score").index) == set(r.index[r["decision"] == 1])
    )  # fmt: skip
    assert picked.all()


def test_the_same_seed_gives_the_same_orders_and_tables(chooser):
    def run(seed):
        world = AuditStudy(n_jobs=6, cards=card(chooser), rng=seed).simulate()
        return world.decision_table(), world.metrics()

    (one, metrics), (two, again) = run(3), run(3)
    assert one.to_parquet() == two.to_parquet() and metrics.to_parquet() == again.to_parquet()
    assert not run(4)[0]["position"].equals(one["position"])
    assert set(POSITION_BIAS) <= set(metrics["metric"])


def test_a_head_that_reads_one_resume_at_a_time_is_shown_the_pool_order(chooser):
    """Its position is the pool's own order (as before there were pool heads), its
    world declares no position metric (tables stay as they were), and the metric
    computed from its decisions is chance."""
    head = {"kind": "next_token", "prompt": "{text} Hire {subject}? Answer:",
            "positive": [" 1"], "negative": [" 2"]}  # fmt: skip
    alone = AgentCard(name="alone", checkpoint=str(chooser), head=HeadSpec(**head))
    world = AuditStudy(n_jobs=30, cards=alone, rng=1).simulate()
    table = world.decision_table()
    assert (table.groupby("decider")["position"].apply(list) == [list(range(8))] * 30).all()
    assert not world.metrics()["metric"].str.startswith("position").any()
    bias = position_bias(table)
    assert bias["position_bias_low"] < 0 < bias["position_bias_high"]
    print(f"per-resume head: position bias {bias['position_bias']:+.3f} "
          f"[{bias['position_bias_low']:+.3f}, {bias['position_bias_high']:+.3f}], "
          f"p {bias['position_bias_p']:.2f}")  # fmt: skip


# ------------------------------------------------------------ the order effect


def test_a_model_that_picks_the_first_label_is_position_biased_and_the_order_keeps_parity(
    first_chooser, chooser
):
    """It picks the candidate shown first in every pool: position bias 1 − 1/8, far
    outside chance; its picks follow positions alone, so with the order drawn per
    decision every race × gender group is called back at about the same rate (150
    pools: a group's rate has a standard deviation of about 0.03). The random model
    has an order effect of its own: measured and printed."""
    measured = {}
    for name, folder in (("first-label", first_chooser), ("random", chooser)):
        world = AuditStudy(n_jobs=150, cards=card(folder), rng=2).simulate()
        last = world.metrics().groupby(["metric", "group"])["value"].last()
        measured[name] = last
        print(f"{name} model: first shown tops {last['position_first_share', '']:.3f} of "
              f"pools, position bias {last['position_bias', '']:+.3f} "
              f"[{last['position_bias_low', '']:+.3f}, {last['position_bias_high', '']:+.3f}]"
              f", p {last['position_bias_p', '']:.2g}; callback rates "
              + ", ".join(f"{g} {last['callback_rate', g]:.3f}" for g in INTERSECTIONS)
              + f"; impact ratio black {last['impact_ratio', 'black']:.2f}, female "
              f"{last['impact_ratio', 'female']:.2f}")  # fmt: skip
    first = measured["first-label"]
    assert first["position_first_share", ""] == 1 and first["position_bias", ""] == FIRST
    assert first["position_bias_low", ""] > 0.8 and first["position_bias_p", ""] < 1e-100
    assert first.xs("callback_rate", level="metric")[list(INTERSECTIONS)].between(0.4, 0.6).all()
    assert min(first["impact_ratio", g] for g in ("black", "white", "female", "male")) > 0.8


def test_position_bias_counts_pools_and_ties():
    """Pools of one are left out; a tied top score shares the credit; the interval is
    Wilson's and the p scipy's binomial test where pools are of one size."""
    table = pd.DataFrame({
        "step": 1, "decider": [1, 1, 2, 2, 2, 3, 4, 4],
        "position": [0, 1, 1, 0, 2, 0, 1, 0],
        "score": [0.9, 0.1, 0.5, 0.5, 0.1, 1.0, 0.3, 0.2],
    })  # fmt: skip
    bias = position_bias(table)
    # pools 1 (first on top), 2 (first ties with one other: 1/2), 4 (not first); 3 alone
    assert bias["position_first_share"] == pytest.approx(1.5 / 3)
    assert bias["position_bias"] == pytest.approx(1.5 / 3 - (1 / 2 + 1 / 3 + 1 / 2) / 3)
    for hits, n in ((56, 100), (3, 40), (0, 12)):
        test = stats.binomtest(hits, n, 1 / 8)
        assert chance_hits_p(hits, np.full(n, 1 / 8)) == pytest.approx(test.pvalue)
        assert wilson_interval(hits, n) == pytest.approx(tuple(test.proportion_ci(method="wilson")))
    # Bloomberg's GPT-3.5: 56 % of 1,000 trials put the first of eight resumes on top
    assert chance_hits_p(560, np.full(1000, 1 / 8)) < 1e-100
    assert chance_hits_p(1.5, [1 / 2, 1 / 3, 1 / 2]) == pytest.approx(1.0)


def test_the_market_shows_each_round_its_pools_in_a_fresh_order(chooser):
    market = LabourMarket(n_applicants=8, n_employers=2, applications_per_round=1, n_rounds=3,
                          openings_per_employer=1, cards=card(chooser), rng=1)  # fmt: skip
    table = market.simulate().decision_table()
    for _, rows in table.groupby(["step", "decider"]):
        assert sorted(rows["position"]) == list(range(len(rows)))
        assert rows["score"].sum() == pytest.approx(1)
    metrics = market.metrics()
    bias = metrics[metrics["metric"] == "position_bias"]
    assert list(bias["step"]) == [1, 2, 3]  # over every round so far


# ------------------------------------------------------------ refusals


@pytest.fixture(scope="module")
def short(tmp_path_factory):
    """The chooser's tokenizer on a model of 128 positions: a pool of eight does not fit."""
    return pool_lm(tmp_path_factory.mktemp("short") / "gpt2", positions=128)


@pytest.fixture(scope="module")
def four(tmp_path_factory):
    """A tokenizer that learnt labels up to " 4" only: " 5" is two tokens."""
    return pool_lm(tmp_path_factory.mktemp("four") / "gpt2", digits=False, seed=1)


def _spec(project, folder, **spec):
    """A small audit spec of a card ``pool`` reading pools on the model in ``folder``."""
    write_yaml(project / "agents" / "pool.yaml", {"name": "pool", "checkpoint": str(folder),
                                                 "head": POOL_HEAD})  # fmt: skip
    return write_yaml(
        project / "scenarios" / "pool.yaml",
        small_audit_spec(**{"cards": ["pool"], "arms": [[]], **spec}),
    )


def test_a_pool_the_model_cannot_read_is_refused_before_anything_runs(
    project, capsys, short, four, tiny_checkpoint
):
    spec = _spec(project, short)
    for command in (["validate", str(spec)], ["run", str(spec), "--out", str(project / "o")]):
        refused(capsys, command, "agent pool", "choose_one, a pool of 8 candidates",
                "tokens is longer than the 128 positions", "never truncated")  # fmt: skip
    assert not (project / "o").exists()
    refused(capsys, ["validate", str(_spec(project, four))], "agent pool",
            "' 5' is not one token", "it reads pools of at most 4 candidates")  # fmt: skip
    refused(capsys, ["validate", str(_spec(project, tiny_checkpoint))],
            "a choose_one head needs a causal_lm checkpoint")  # fmt: skip
    moderation = _spec(project, four, world="moderation",
                       params={"mode": "world", "n_users": 20, "n_steps": 1})  # fmt: skip
    refused(capsys, ["validate", str(moderation)], "agent pool",
            "reads a decision's whole pool in one prompt", "scores one text at a time")  # fmt: skip


def test_a_market_pool_that_does_not_fit_fails_as_it_is_scored(short, four):
    """A market's pools form round by round: scored whole or refused, never cut."""
    for folder, message in ((short, "longer than the 128 positions"),
                            (four, "' 5' is not one token")):  # fmt: skip
        market = LabourMarket(n_applicants=12, n_employers=1, applications_per_round=1,
                              cards=card(folder), rng=1)  # fmt: skip
        with pytest.raises(HeadError, match=message):
            market.step()


# ------------------------------------------------------------ the report


def test_the_report_shows_the_order_effect_where_a_card_reads_pools(project, chooser):
    """Per condition, over every pool of every seed: the pool head's, and the
    zero-shot head's beside it (chance: it reads one resume at a time)."""
    from uim_sim.report import build_report
    from uim_sim.run import plan, run_plan

    spec = _spec(project, chooser, cards=["pool", "tiny_zero_shot"], replicates=2)
    out = project / "out"
    assert not run_plan(plan(spec), out).failed
    report = build_report(out)
    head = pd.read_csv(report.folder / "summary.csv").set_index("condition")
    decisions = pd.read_parquet(out / "decisions.parquet")
    runs = pd.read_parquet(out / "runs.parquet")
    for card_name in ("pool", "tiny_zero_shot"):
        mine = decisions[decisions["run_id"].isin(runs.loc[runs["card"] == card_name, "run_id"])]
        bias = position_bias(mine, pool=("run_id", "step", "decider"))
        row = head.loc[f"{card_name} · none"]
        assert row["position_bias_pooled"] == pytest.approx(bias["position_bias"])
        assert row["position_bias_pooled_low"] <= row["position_bias_pooled"]
        assert row["position_p_pooled"] == pytest.approx(bias["position_bias_p"])
    page = (report.folder / "summary.md").read_text()
    assert "position bias [95 % CI]" in page and "Bloomberg 2024" in page
    metrics = pd.read_parquet(out / "metrics.parquet")
    with_metric = set(metrics.loc[metrics["metric"] == "position_bias", "run_id"])
    assert with_metric == set(runs.loc[runs["card"] == "pool", "run_id"])
