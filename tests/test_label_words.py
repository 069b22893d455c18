"""Prompted screening: label-word log-odds at a [MASK], read off a masked-LM head."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import write_yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from uim_sim.cards import AgentCard, HeadSpec
from uim_sim.cli import app
from uim_sim.lfm.engine import Engine
from uim_sim.lfm.heads import LabelWordHead
from uim_sim.mitigate import NameRedaction
from uim_sim.mitigate.redaction import RedactionParams
from uim_sim.understand.cards import CorpusCard
from uim_sim.understand.forge import forge
from uim_sim.worlds.hiring import AuditStudy
from uim_sim.worlds.stages import Stages

PROMPT = "{text} {subject} was [MASK]."
HEAD = {"kind": "label_words", "prompt": PROMPT, "positive": ["hired"], "negative": ["rejected"]}


@pytest.fixture(scope="module")
def forged(tmp_path_factory):
    """A small forged BERT (MLM head, word-level tokenizer), ~10 s."""
    card = CorpusCard(
        name="records",
        seed=3,
        sentences=3000,
        knobs={"association_skew": 0.9},
        model={"hidden": 32, "layers": 1, "heads": 2, "intermediate": 64},
        training={"steps": 60, "batch_size": 64},
    )
    return forge(card, tmp_path_factory.mktemp("forged") / "records")


@pytest.mark.parametrize(
    ("head", "message"),
    [
        ({**HEAD, "prompt": None}, "needs prompt"),
        ({**HEAD, "prompt": "{text} [MASK] [MASK]"}, "exactly one [MASK]"),
        ({**HEAD, "prompt": "{text} {name} was [MASK]."}, "unknown placeholders ['name']"),
        ({**HEAD, "prompt": "{subject} was [MASK]."}, "must hold {text}"),
        ({**HEAD, "negative": []}, "needs positive and negative"),
        ({"kind": "zero_shot", "prompt": PROMPT}, "prompt applies only to kind: label_words"),
    ],
)
def test_label_word_heads_are_validated(head, message):
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        HeadSpec(**head)


def test_a_checkpoint_without_a_masked_lm_head_is_refused_before_running(project):
    write_yaml(
        project / "agents" / "minilm_prompted.yaml",
        {"name": "minilm_prompted", "checkpoint": "builtin:minilm", "head": HEAD},
    )
    spec = write_yaml(
        project / "scenarios" / "prompted.yaml",
        {"name": "prompted", "world": "hiring", "cards": ["minilm_prompted"],
         "params": {"mode": "audit", "n_jobs": 2}},
    )  # fmt: skip
    result = CliRunner().invoke(app, ["validate", str(spec)])
    assert result.exit_code == 2
    assert "minilm_prompted" in result.output and "masked-language-model head" in result.output


def test_mask_scores_are_batched_cached_and_equal_one_at_a_time(forged):
    from uim_sim.lfm.checkpoint import resolve

    engine = Engine(resolve(str(forged)))
    prompts = [f"{n} walsh was [MASK]." for n in ("emily", "jill", "lakisha", "jamal")] * 2
    together = engine.mask_log_probs(prompts, ["hired", "rejected"])
    assert together.shape == (8, 2) and np.all(together < 0)
    assert engine.counters.texts_requested == 8 and engine.counters.texts_encoded == 4
    alone = Engine(resolve(str(forged)))
    one_by_one = np.vstack([alone.mask_log_probs([p], ["hired", "rejected"]) for p in prompts])
    np.testing.assert_array_equal(together, one_by_one)  # bit-identical: no lone rows
    with pytest.raises(ValueError, match="not one token"):
        engine.mask_log_probs(prompts, ["zyxwvut"])
    with pytest.raises(ValueError, match="one \\[MASK\\]"):
        engine.mask_log_probs(["no mask here."], ["hired"])


def test_label_word_head_scores_are_probabilities_of_the_positive_words(forged):
    from uim_sim.lfm.checkpoint import resolve

    engine = Engine(resolve(str(forged)))
    head = LabelWordHead(PROMPT, ["hired"], ["rejected"])
    score = head.score_texts(engine, ["office clerk with 3 years."], ["emily walsh"])
    log_p = engine.mask_log_probs(["office clerk with 3 years. emily walsh was [MASK]."],
                                  ["hired", "rejected"])  # fmt: skip
    odds = np.exp(log_p[0, 0] - log_p[0, 1])
    assert score[0] == pytest.approx(odds / (1 + odds))


def test_redaction_makes_a_prompted_audit_blind_to_names(forged):
    """Resume pairs differ only by name; redacting the name in the text and in the
    subject leaves nothing to tell them apart: every pair scores the same."""
    card = AgentCard(name="prompted", checkpoint=str(forged), head=HeadSpec(**HEAD))
    plain = AuditStudy(n_jobs=3, cards=card, rng=1).simulate().decision_table()
    stages = NameRedaction(RedactionParams()).apply(Stages())
    blind = AuditStudy(n_jobs=3, cards=card, stages=stages, rng=1).simulate().decision_table()
    assert np.isfinite(plain["score"]).all()
    per_resume = blind.groupby(["decider", "truth"])["score"].nunique()
    assert (per_resume == 1).all()
    assert plain.groupby(["decider", "truth"])["score"].nunique().max() > 1
