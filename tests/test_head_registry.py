"""The head registry: a head kind is one class (its fields, checks and the head it
builds), registered in one place; checkpoint kinds are an enum.

The ``axis`` kind below is a new kind as a researcher would add it, here or in their
own package: `AxisSpec` and its `AxisHead` are all of it, in this file alone. It
scores a text by one coordinate of its embedding (its own field ``axis``)."""

from __future__ import annotations

import json
from importlib.metadata import EntryPoint
from types import SimpleNamespace
from typing import Annotated, Literal

import numpy as np
import pytest
from conftest import write_yaml
from pydantic import Field, ValidationError

import uim_sim.cards as cards
from uim_sim.cards import HEADS, HeadSpec, head_kinds, load_card, register_head
from uim_sim.lfm.checkpoint import Checkpoint, Kind, kind_of
from uim_sim.lfm.heads import HeadError, ZeroShotSpec, build_head, check_head
from uim_sim.schema import SpecError
from uim_sim.worlds.hiring import AuditStudy

BUILT_IN = ["zero_shot", "zero_shot_contrast", "logistic", "nmtune", "label_words",
            "next_token", "classifier", "choose_one"]  # fmt: skip


# ------------------------------------------------------------ the new kind, whole


class AxisHead:
    """Score = one coordinate of the (L2-normalised) embedding."""

    trainable = False
    needs_context = False

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def score(self, embeddings: np.ndarray, contexts: np.ndarray | None = None) -> np.ndarray:
        return embeddings[:, self.axis].astype(np.float64)


class AxisSpec(HeadSpec):
    """``axis``: a text's score is coordinate ``axis`` of its embedding."""

    kind: Literal["axis"]
    axis: Annotated[int, Field(ge=0)] = 0

    def check_engine(self, engine) -> None:
        if self.axis >= engine.dim:
            raise HeadError(f"axis {self.axis} is outside {engine.dim} dimensions")

    def build(self) -> AxisHead:
        return AxisHead(self.axis)


@pytest.fixture
def axis():
    """The kind registered (as ``@register_head`` on the class would), for one test."""
    register_head(AxisSpec)
    yield AxisSpec
    HEADS.pop("axis")


# ------------------------------------------------------------ tests


def test_a_new_kind_is_one_class_and_runs_a_hiring_audit(axis, tmp_path, tiny_checkpoint):
    scores = {}
    for n in (0, 5):
        path = write_yaml(tmp_path / f"axis_{n}.yaml", {
            "name": f"axis_{n}", "checkpoint": str(tiny_checkpoint),
            "head": {"kind": "axis", "axis": n},
        })  # fmt: skip
        card = load_card(path)
        assert type(card.head) is AxisSpec and not card.head.trained
        dumped = card.model_dump(mode="json")["head"]
        assert list(dumped)[0] == "kind" and list(dumped)[-1] == "axis" and dumped["axis"] == n
        world = AuditStudy(n_jobs=4, cards=card, rng=3, name_permutations=0)
        screener = world.pools[0][0].screener
        check_head(card.head, screener.engine)  # as a plan checks a card before running
        assert isinstance(screener.head, AxisHead) and screener.head.axis == n
        table = world.simulate().decision_table()
        assert len(table) == 4 * 8 and set(table["card"]) == {f"axis_{n}"}
        assert table["score"].between(-1, 1).all() and table["score"].nunique() > 1
        scores[n] = table["score"].to_numpy()
    assert not np.allclose(scores[0], scores[5])  # the kind's own field reaches the head
    other = card.model_copy(update={"head": AxisSpec(kind="axis", axis=1)})
    assert other.fingerprint() != card.fingerprint()  # run ids tell the axes apart
    with pytest.raises(HeadError, match="axis 32 is outside 32 dimensions"):
        check_head(AxisSpec(kind="axis", axis=32), screener.engine)


def test_a_new_kind_keeps_the_shared_rules_and_its_own(axis, tmp_path):
    def refused(head: dict) -> str:
        path = write_yaml(tmp_path / "card.yaml", {"name": "c", "head": head})
        with pytest.raises(SpecError) as err:
            load_card(path)
        assert "\n" not in str(err.value)
        return str(err.value)

    assert refused({"kind": "axis", "axis": -1}).endswith(
        "card.yaml: head.axis: Input should be greater than or equal to 0"
    )
    assert refused({"kind": "axis", "prompt": "{text}"}).endswith(
        "head: prompt applies only to kind: label_words, next_token, choose_one"
    )
    assert refused({"kind": "axis", "train_on": "history"}).endswith(
        "head: a axis head is not trained: drop train_on/file"
    )
    assert refused({"kind": "zero_shot", "axis": 1}).endswith("head.axis: unknown field")


def test_an_unknown_kind_is_one_line_naming_head_kind_and_the_known_kinds(axis, tmp_path):
    path = write_yaml(tmp_path / "card.yaml", {"name": "c", "head": {"kind": "axes"}})
    with pytest.raises(SpecError) as err:
        load_card(path)
    listed = ", ".join(repr(k) for k in BUILT_IN)
    assert str(err.value) == f"{path}: head.kind: Input should be {listed} or 'axis'"
    HEADS.pop("axis")
    try:
        with pytest.raises(
            ValidationError, match="Input should be 'zero_shot', .* or 'choose_one'"
        ):
            HeadSpec(kind="axis", axis=1)
    finally:
        register_head(AxisSpec)


def test_head_spec_and_model_validate_give_the_class_of_the_kind(axis):
    assert type(HeadSpec(kind="zero_shot")) is ZeroShotSpec
    assert type(HeadSpec.model_validate({"kind": "axis", "axis": 2})) is AxisSpec
    assert head_kinds() == [*BUILT_IN, "axis"]
    assert isinstance(build_head(HeadSpec(kind="axis")), AxisHead)
    assert cards.POOLED == ("choose_one",)  # as worlds read pool kinds


def test_a_kind_name_is_held_once_and_is_a_literal(axis):
    class Again(HeadSpec):
        kind: Literal["zero_shot"]

    class Loose(HeadSpec):
        pass

    register_head(AxisSpec)  # the same class again: nothing changes
    with pytest.raises(ValueError, match=r"'zero_shot' is taken by uim_sim.lfm.heads.ZeroShotSpec"):
        register_head(Again)
    with pytest.raises(TypeError, match="kind: Literal"):
        register_head(Loose)


def test_a_package_declares_a_kind_under_the_entry_point_group(monkeypatch, tmp_path):
    declared = [
        EntryPoint("axis", f"{__name__}:AxisSpec", "uim_sim.heads"),
        EntryPoint("broken", "no_such_package.heads:Head", "uim_sim.heads"),
        EntryPoint("zero_shot", "elsewhere:ZeroShot", "uim_sim.heads"),
    ]
    monkeypatch.setattr(
        cards, "entry_points", lambda group: declared if group == cards.ENTRY_POINTS else []
    )
    assert "axis" not in HEADS
    try:
        with pytest.warns(UserWarning, match="'zero_shot' of elsewhere:ZeroShot is ignored"):
            assert head_kinds()[-2:] == ["axis", "broken"]  # declared, not imported yet
        path = write_yaml(
            tmp_path / "card.yaml", {"name": "c", "head": {"kind": "axis", "axis": 3}}
        )
        with pytest.warns(UserWarning):
            assert type(load_card(path).head) is AxisSpec and HEADS["axis"] is AxisSpec
            write_yaml(path, {"name": "c", "head": {"kind": "broken"}})
            with pytest.raises(
                SpecError,
                match=r"head: head kind 'broken' of no_such_package"
                r".heads:Head cannot be loaded \(ModuleNotFound",
            ):
                load_card(path)
    finally:
        HEADS.pop("axis", None)


def test_checkpoint_kinds_are_an_enum_of_the_same_strings():
    assert [str(k) for k in Kind] == ["encoder", "sequence_classifier", "causal_lm"]
    assert json.dumps({"kind": Kind.CAUSAL_LM}) == '{"kind": "causal_lm"}'
    assert f"{Kind.SEQUENCE_CLASSIFIER}" == "sequence_classifier" and Kind.ENCODER == "encoder"
    found = {a: kind_of("x", {"architectures": [a]})
             for a in ("GPT2LMHeadModel", "BertModel", "BertForMaskedLM",
                       "RobertaForSequenceClassification", "LlamaForCausalLM")}  # fmt: skip
    assert found == {"GPT2LMHeadModel": Kind.CAUSAL_LM, "BertModel": Kind.ENCODER,
                     "BertForMaskedLM": Kind.ENCODER, "LlamaForCausalLM": Kind.CAUSAL_LM,
                     "RobertaForSequenceClassification": Kind.SEQUENCE_CLASSIFIER}  # fmt: skip
    assert Checkpoint("r", None, "s", kind="causal_lm").kind is Kind.CAUSAL_LM
    engine = SimpleNamespace(checkpoint=SimpleNamespace(kind=Kind.ENCODER, name="tiny"))
    with pytest.raises(HeadError, match=r"needs a causal_lm checkpoint \(\*ForCausalLM in config"):
        check_head(HeadSpec(kind="choose_one", prompt="{candidates} Best:"), engine)
