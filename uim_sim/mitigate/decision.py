"""Decision stage: post-processing of a head's scores within each decision pool.

- ``group_thresholds``: the card's share of every pool, selected within each group;
- ``threshold_optimizer``: fairlearn's ``ThresholdOptimizer`` (Hardt et al. 2016),
  fitted once on the adaptation data, applied to every pool;
- ``reject_option``: Kamiran, Karim & Zhang's (2012) reject option classification
  near the decision boundary;
- ``output_noise``: Laplace noise on each pool's scores (output perturbation).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator
from sklearn.base import BaseEstimator

from uim_sim.cards import AgentCard
from uim_sim.mitigate.base import Mitigation
from uim_sim.schema import Strict
from uim_sim.worlds.base import WorldInfo
from uim_sim.worlds.stages import Stages, top_share


class GroupThresholds(Mitigation):
    """Post-processing to demographic parity within each decision pool.

    The card's rule fixes how many are selected; this mitigation then selects that
    same share within each protected group, by score: each group gets its own
    threshold, recomputed in every pool, so the constraint holds exactly in every pool
    and the number selected is the card's. It needs no labels and no training: it
    acts on zero-shot cards too. ``threshold_optimizer`` instead fits its thresholds
    once, on the adaptation data (scores and labels), choosing them to maximise an
    objective under the constraint; in a pool they hold only as far as the pool
    resembles that data, and the share selected is the fitted thresholds', not the
    card's.
    """

    name = "group_thresholds"
    stage = "decision"
    hook = "decide"
    summary = (
        "selects the same share within each protected group of every pool (demographic parity)"
    )
    note = (
        "equalises selection rates within each pool by construction: an impact ratio of 1.00 "
        "under it says nothing about the scores (read the mean score ratio), and other "
        "attributes or intersections can stay below four fifths"
    )

    def apply(self, stages: Stages) -> Stages:
        inner = stages.decide

        def decide(scores, groups, rule, rng, fitted=None):
            base = np.asarray(inner(scores, groups, rule, rng, fitted=fitted), dtype=bool)
            share = base.mean() if len(base) else 0.0
            chosen = np.zeros(len(base), dtype=bool)
            groups = np.asarray(groups)
            for group in np.unique(groups):
                members = np.flatnonzero(groups == group)
                if share > 0:
                    chosen[members] = top_share(np.asarray(scores)[members], share, rng)
            return chosen

        return replace(stages, decide=decide)


# ---------------------------------------------------------------- threshold optimizer


class _Scores(BaseEstimator):
    """A prefit estimator for fairlearn whose decision function is the head's score
    itself (X holds one column: the score), so the optimiser thresholds scores."""

    def fit(self, X, y=None):
        return self

    def decision_function(self, X):
        return np.asarray(X, dtype=np.float64)[:, 0]

    def __sklearn_is_fitted__(self) -> bool:
        return True


@dataclass(frozen=True)
class FittedThresholds:
    """A fitted fairlearn ``ThresholdOptimizer`` and the groups it was fitted on."""

    optimizer: Any
    groups: frozenset[str]

    def predict(self, scores: np.ndarray, groups: np.ndarray, seed: int) -> np.ndarray:
        x = np.asarray(scores, dtype=np.float64).reshape(-1, 1)
        chosen = self.optimizer.predict(x, sensitive_features=groups, random_state=seed)
        return np.asarray(chosen).astype(bool)


def fit_thresholds(
    scores: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    constraints: str,
    objective: str,
    grid_size: int,
) -> FittedThresholds:
    """fairlearn's ``ThresholdOptimizer`` (``prefit=True``) fitted on ``scores``, the
    0/1 ``labels`` and the ``groups`` (as text) of the same rows. Groups whose labels
    hold one class only (fairlearn cannot fit them) are left out: like groups absent
    from the data, their members keep the card's decision."""
    from fairlearn.postprocessing import ThresholdOptimizer as Fairlearn

    groups, labels = np.asarray(groups).astype(str), np.asarray(labels).astype(int)
    both = {g for g in np.unique(groups) if len(np.unique(labels[groups == g])) == 2}
    keep = np.isin(groups, sorted(both))
    if not keep.any():
        raise ValueError(
            "threshold_optimizer: no group of the adaptation data has both labels to fit on"
        )
    scores, labels, groups = np.asarray(scores)[keep], labels[keep], groups[keep]
    optimizer = Fairlearn(
        estimator=_Scores(),
        constraints=constraints,
        objective=objective,
        grid_size=grid_size,
        prefit=True,
        predict_method="decision_function",
    )
    x = np.asarray(scores, dtype=np.float64).reshape(-1, 1)
    try:
        optimizer.fit(x, labels, sensitive_features=groups)
    except (ValueError, ZeroDivisionError) as exc:
        raise ValueError(
            f"threshold_optimizer: fairlearn cannot fit {constraints} on the adaptation data "
            f"({exc})"
        ) from None
    return FittedThresholds(optimizer, frozenset(groups.tolist()))


class ThresholdOptimizerParams(Strict):
    constraints: Literal[
        "demographic_parity",
        "equalized_odds",
        "false_positive_rate_parity",
        "false_negative_rate_parity",
        "true_positive_rate_parity",
        "true_negative_rate_parity",
    ] = "demographic_parity"
    objective: Literal[
        "accuracy_score",
        "balanced_accuracy_score",
        "selection_rate",
        "true_positive_rate",
        "true_negative_rate",
    ] = "balanced_accuracy_score"
    grid_size: Annotated[int, Field(ge=10, le=100_000)] = 1000

    @model_validator(mode="after")
    def _objective_fits(self):
        if self.constraints == "equalized_odds" and self.objective not in (
            "accuracy_score",
            "balanced_accuracy_score",
        ):
            raise ValueError(
                "equalized_odds takes objective accuracy_score or balanced_accuracy_score"
            )
        return self


class ThresholdOptimizer(Mitigation):
    """Hardt, Price & Srebro (2016), "Equality of Opportunity in Supervised Learning",
    as fairlearn's ``ThresholdOptimizer`` (``prefit=True``): a (randomised) threshold
    per group on the trained head's scores, chosen to maximise ``objective`` (default
    balanced accuracy) subject to ``constraints`` (``demographic_parity``: equal
    selection rates; ``equalized_odds``: equal true- and false-positive rates; or one
    of fairlearn's single-rate parities, e.g. ``false_positive_rate_parity``).

    It is fitted once per trained head (the ``fit_decide`` hook), on the head's scores
    of its own adaptation texts, their labels and groups, then replaces the card's rule
    in every pool that head decides: each member is selected by its group's fitted
    thresholds (fairlearn draws the randomised ones from a seed taken from the
    decision stream). Members of a group absent from the adaptation data, or whose
    adaptation texts all carry one label, keep the card's decision.

    Unlike ``group_thresholds``, which takes the card's share of every pool within
    each group (exact parity in every pool, no labels needed), the constraint here
    holds on the adaptation data and carries over to a pool only as far as the pool
    resembles it; the share selected is the thresholds', not the card's; and its
    labels are the historical decisions, so equalised odds equalises error rates
    against them, biased or not.
    """

    name = "threshold_optimizer"
    stage = "decision"
    hook = "decide"
    trains = True
    summary = (
        "per-group thresholds fitted on the adaptation data under a fairness constraint "
        "(fairlearn ThresholdOptimizer, Hardt et al. 2016)"
    )
    note = (
        "holds its constraint on the adaptation data the thresholds were fitted on, where "
        "the labels are the historical decisions; in a pool it holds only as far as the pool "
        "resembles that data, and the share selected is no longer the card's"
    )
    Params = ThresholdOptimizerParams

    def refusal(self, world: WorldInfo, card: AgentCard) -> str | None:
        reason = super().refusal(world, card)
        if reason is None and "fit_decide" not in world.hooks:
            reason = f"{self.name} needs the fit_decide hook, which the {world.name} world lacks"
        return reason

    def apply(self, stages: Stages) -> Stages:
        fit_inner, decide_inner = stages.fit_decide, stages.decide
        p, name = self.params, self.name

        def fit_decide(scores, labels, groups, rng):
            fitted = dict(fit_inner(scores, labels, groups, rng))
            fitted[name] = fit_thresholds(
                scores, labels, groups, p.constraints, p.objective, p.grid_size
            )
            return fitted

        def decide(scores, groups, rule, rng, fitted=None):
            base = np.asarray(decide_inner(scores, groups, rule, rng, fitted=fitted), dtype=bool)
            thresholds = (fitted or {}).get(name)
            if thresholds is None or len(base) == 0:
                return base
            seed = int(rng.integers(2**32))
            groups = np.asarray(groups).astype(str)
            known = np.isin(groups, list(thresholds.groups))
            chosen = base.copy()
            if known.any():
                chosen[known] = thresholds.predict(np.asarray(scores)[known], groups[known], seed)
            return chosen

        return replace(stages, fit_decide=fit_decide, decide=decide)


# ---------------------------------------------------------------- reject option


class RejectOptionParams(Strict):
    # half-width of the critical region around the boundary, in the card's score units
    theta: Annotated[float, Field(gt=0.0, le=2.0)] = 0.1  # scores lie in [-2, 2]
    # groups selected inside the critical region (empty: those selected less than the pool)
    deprived: list[str] = []


def boundary(scores: np.ndarray, rule) -> float:
    """The decision boundary of a card's rule in one pool: its threshold, or for a
    top share the lowest score the rule selects (the pool's cut score)."""
    if rule.rule == "threshold":
        return float(rule.threshold)
    k = max(1, int(round(rule.share * len(scores))))
    return float(np.sort(np.asarray(scores, dtype=np.float64))[::-1][k - 1])


def reject_option(
    scores: np.ndarray,
    groups: np.ndarray,
    base: np.ndarray,
    edge: float,
    theta: float,
    deprived: list[str],
) -> np.ndarray:
    """Kamiran, Karim & Zhang's rule on one pool: inside the critical region
    |score − edge| ≤ theta, members of deprived groups are selected and everyone else
    rejected; outside it, ``base`` stands. Deprived: the groups named, or (none named)
    those whose selection rate under ``base`` is below the pool's; groups at the
    pool's rate keep their decisions."""
    scores = np.asarray(scores, dtype=np.float64)
    groups, base = np.asarray(groups).astype(str), np.asarray(base, dtype=bool)
    critical = np.abs(scores - edge) <= theta
    if deprived:
        low = np.isin(groups, deprived)
        high = ~low
    else:
        overall = base.mean()
        rate = {g: base[groups == g].mean() for g in np.unique(groups)}
        low = np.array([rate[g] < overall - 1e-12 for g in groups], dtype=bool)
        high = np.array([rate[g] > overall + 1e-12 for g in groups], dtype=bool)
    chosen = base.copy()
    chosen[critical & low] = True
    chosen[critical & high] = False
    return chosen


class RejectOption(Mitigation):
    """Kamiran, Karim & Zhang (2012), "Decision Theory for Discrimination-Aware
    Classification" (ICDM), reject option classification: decisions near the
    boundary are the least certain, so there, and only there, the deprived group gets
    the positive decision and the favoured group the negative one. The critical region
    is |score − boundary| ≤ ``theta`` around the card's threshold or, for a top-share
    rule, around the pool's cut score (for probability scores and a 0.5 threshold,
    their confidence level θ is 0.5 + ``theta``). ``theta`` is in the card's score
    units: probabilities for logistic and label-word heads, cosines (zero-shot) and
    cosine differences (contrast) span far less, so set it for the card.

    Which groups are deprived is decided in each pool without knowing the world: those
    whose selection rate under the card's rule is below the pool's overall rate are
    selected inside the region, those above it rejected. Moving every group toward the
    pool's rate, this works whichever outcome is the favourable one (in moderation,
    selected means removed: the groups removed most are kept near the boundary).
    ``deprived`` names the groups to select inside the region instead (all others are
    rejected there), as the paper fixes one deprived group.
    """

    name = "reject_option"
    stage = "decision"
    hook = "decide"
    summary = (
        "near the decision boundary, selects the deprived groups and rejects the others "
        "(Kamiran, Karim & Zhang 2012)"
    )
    note = (
        "changes only decisions whose score is within theta of the boundary, so how much it "
        "does depends on the card's score scale; a top-share rule no longer selects its share"
    )
    Params = RejectOptionParams

    def refusal(self, world: WorldInfo, card: AgentCard) -> str | None:
        reason = super().refusal(world, card)
        if reason is None and card.decision.rule == "draw":
            reason = (
                f"{self.name} needs a decision boundary, and card {card.name}'s rule draw has none"
            )
        return reason

    def apply(self, stages: Stages) -> Stages:
        inner = stages.decide
        p = self.params

        def decide(scores, groups, rule, rng, fitted=None):
            base = np.asarray(inner(scores, groups, rule, rng, fitted=fitted), dtype=bool)
            if len(base) == 0:
                return base
            edge = boundary(scores, rule)
            return reject_option(scores, groups, base, edge, p.theta, list(p.deprived))

        return replace(stages, decide=decide)


# ---------------------------------------------------------------- output perturbation


class OutputNoiseParams(Strict):
    # Laplace scale, in standard deviations of the pool's scores
    scale: Annotated[float, Field(gt=0.0, le=100.0)] = 0.5


class OutputNoise(Mitigation):
    """Output perturbation (Dwork et al. 2006's Laplace mechanism, applied to a
    decision's scores rather than to a model's weights): before the card's rule picks,
    every score of a pool gets independent Laplace noise of scale ``scale`` × the
    pool's score standard deviation, drawn from the decision stream. It blurs what a
    decision says about any one score, the part of a checkpoint's memory that reaches
    a decision (a remembered applicant's callbacks); it does nothing about what a
    party reads from the checkpoint itself, and every decision pays for it (read the
    world's utility beside it). No formal ε: the scores' sensitivity is not bounded."""

    name = "output_noise"
    stage = "decision"
    hook = "decide"
    summary = "Laplace noise on each pool's scores before the rule picks (output perturbation)"
    note = (
        "protects decisions, not the checkpoint: what a party queries from the model is "
        "unchanged; noise in units of the pool's score spread, no formal privacy guarantee"
    )
    Params = OutputNoiseParams

    def apply(self, stages: Stages) -> Stages:
        inner = stages.decide
        scale = self.params.scale

        def decide(scores, groups, rule, rng, fitted=None):
            scores = np.asarray(scores, dtype=np.float64)
            spread = scores.std() if len(scores) > 1 else 0.0
            noisy = scores + rng.laplace(0.0, scale * spread, len(scores)) if spread else scores
            return inner(noisy, groups, rule, rng, fitted=fitted)

        return replace(stages, decide=decide)
