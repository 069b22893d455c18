"""System stage: model diversity instead of one shared model (monoculture), periodic
audits with consequences, periodic re-training on fresh outcomes."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import numpy as np
import pandas as pd
from pydantic import Field

from uim_sim.mitigate.base import Mitigation
from uim_sim.schema import Strict
from uim_sim.worlds.stages import Stages


class DiversityParams(Strict):
    pool: list[str] = []
    independent_data: bool = True


class ModelDiversity(Mitigation):
    """Deciders draw their model from a pool instead of sharing one.

    Bommasani et al. (2022): when every decision maker carries the same model, the
    same people are rejected everywhere. Here decider ``i`` carries card
    ``pool[i % len(pool)]`` (the run's own card when the pool is empty), and with
    ``independent_data`` each decider adapts its head on its own draw of the
    historical decisions, so errors are no longer shared.
    """

    name = "model_diversity"
    stage = "system"
    hook = "assign"
    summary = "deciders carry cards from a pool, each adapted on its own draw of the history"
    Params = DiversityParams

    @classmethod
    def card_names(cls, params: DiversityParams) -> list[str]:
        return list(params.pool)

    def apply(self, stages: Stages) -> Stages:
        pool_cards = [self.cards[n] for n in self.params.pool]
        independent = self.params.independent_data

        def assign(cards, n_deciders, rng):
            pool = pool_cards or list(cards)
            return [(pool[i % len(pool)], i + 1 if independent else 0) for i in range(n_deciders)]

        return replace(stages, assign=assign)


class AuditParams(Strict):
    replacement: str  # the card a failing decider carries from then on
    every: Annotated[int, Field(ge=1, le=10_000)] = 2  # audit after every `every` steps
    threshold: Annotated[float, Field(gt=0.0, le=1.0)] = 0.8  # four fifths
    min_decisions: Annotated[int, Field(ge=1, le=10**7)] = 20  # fewer since the last switch: wait


class PeriodicAudit(Mitigation):
    """Periodic bias audits with consequences: every ``every`` steps each decider's
    selections since it last changed model are audited, and a decider whose impact
    ratio (the lowest group's selection rate over the highest's) is below
    ``threshold`` (0.8: the four-fifths rule of 29 CFR 1607.4(D), which New York City's
    Local Law 144 bias audits report) is switched to the ``replacement`` card (e.g. a
    debiased checkpoint or a fair head). Audits need enough decisions: fewer than
    ``min_decisions`` since the last switch, and the decider waits.
    """

    name = "periodic_audit"
    stage = "system"
    hook = "audit"
    summary = "every few steps, deciders whose impact ratio is below 4/5 switch to another card"
    note = (
        "switches deciders only after their impact ratio fell below the threshold: harm "
        "before the first audit stays, and the metric `audit_switches` counts the switches"
    )
    Params = AuditParams

    @classmethod
    def card_names(cls, params: AuditParams) -> list[str]:
        return [params.replacement]

    def apply(self, stages: Stages) -> Stages:
        inner = stages.audit
        p = self.params
        replacement = self.cards[p.replacement]

        def audit(selected, groups, step):
            switched = inner(selected, groups, step)
            if switched is not None or step % p.every or len(selected) < p.min_decisions:
                return switched
            rates = pd.Series(np.asarray(selected, dtype=float)).groupby(np.asarray(groups)).mean()
            if len(rates) < 2 or rates.max() == 0:
                return None
            return replacement if rates.min() / rates.max() < p.threshold else None

        return replace(stages, audit=audit)


class RetrainParams(Strict):
    every: Annotated[int, Field(ge=1, le=10_000)] = 5  # re-train after every `every` steps
    label_share: Annotated[float, Field(gt=0.0, le=1.0)] = 0.2  # outcomes whose truth is learned


class Retraining(Mitigation):
    """Periodic re-training on fresh outcomes (Perdomo et al. 2020's repeated risk
    minimisation, as a platform runs it): after every step the platform learns the
    truth of ``label_share`` of the step's outcomes the world says it could learn
    (moderation: posts, labelled by human raters; hiring: the firm's hires, whose
    work shows whether they were qualified), and after every ``every`` steps each
    decider's trained head is re-trained on its adaptation data and every outcome
    learned so far, the texts as they were posted: edits that agents who adapt found
    become training data (adversarial augmentation with the evasions observed).
    """

    name = "retraining"
    stage = "system"
    hook = "retrain"
    trains = True
    summary = "every few steps, trained heads re-train on the outcomes learned since the start"
    note = (
        "re-trains only after each period: harm within the first period stays, and the "
        "metrics `labels_learned` (outcomes whose truth was bought) and `retrains` count "
        "its cost"
    )
    Params = RetrainParams

    def apply(self, stages: Stages) -> Stages:
        p = self.params

        def retrain(step: int) -> tuple[float, bool]:
            return p.label_share, step % p.every == 0

        return replace(stages, retrain=retrain)
