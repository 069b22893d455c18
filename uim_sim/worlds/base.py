"""What every world whose deciders carry screeners shares: a plain Mesa model built
from keywords, seeded streams, screeners built from agent cards, scalar data
collection, and the read-outs the runner writes.

A world is a `mesa.Model` subclass with a ``Params`` class (pydantic, defaults for
everything): ``AuditStudy(n_jobs=3, rng=1)`` builds one, ``while model.running:
model.step()`` runs it to its end, and ``model.datacollector`` holds one scalar
column per metric and group (collected at step 0 and after every step). Mesa's own
tools (``batch_run``, SolaraViz) build worlds the same way, as does the runner.

    >>> from uim_sim.worlds.hiring import AuditStudy
    >>> model = AuditStudy(n_jobs=2, rng=1)  # MiniLM zero-shot screening by default
    >>> while model.running:
    ...     model.step()
    >>> model.round, "impact_ratio[black]" in model.datacollector.model_vars
    (1, True)
    >>> len(model.decision_table())  # 2 ads x 2 qualities x 4 names
    16
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import mesa
import numpy as np
import pandas as pd

from uim_sim.cards import AgentCard
from uim_sim.schema import Strict
from uim_sim.worlds.collect import columns, flat, reporters, tidy
from uim_sim.worlds.screening import Screener, reads_pool
from uim_sim.worlds.stages import Stages, TrainingSet, never_retrain, no_audit
from uim_sim.worlds.watch import Plot, View

DEFAULT_NAME_PERMUTATIONS = 2000


def seed_of(rng: int | np.random.Generator | None) -> int:
    """One integer seed for a run, from Mesa's ``rng`` argument (int, Generator or None)."""
    if rng is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(2**32))
    return int(rng)


class ScreeningWorld(mesa.Model):
    """A `mesa.Model` whose deciders carry screeners built from agent cards.

    Keywords: the world's parameters (``Params``; defaults for everything), and
    ``cards`` (the agent card(s) deciders may carry; the ``assign`` stage picks),
    ``stages`` (the hooks mitigations wrap; default: none), ``rng`` (the run's seed),
    ``null_draw`` (build draw ``k`` of the null reference: trainable heads learn from
    permuted labels) and ``name_permutations`` (for permutation p-values).

    Randomness: one seed per run; population, decisions and statistics draw from
    independent child streams, so two arms of an experiment with the same seed see
    the same population (common random numbers). The order in which a pool head is
    shown each pool has a stream of its own (`shown_order`).

    Subclasses set ``Params``, ``default_card``, ``hooks`` (the stage hooks they
    call: a mitigation wrapping any other hook is refused at plan time),
    ``identity_spans`` (the adaptation sources, ``history`` and/or ``file``, whose
    texts carry identity spans with counterparts: counterfactual augmentation is
    refused for the others), ``null_metrics`` and ``measures`` ({metric: groups or
    None}), and implement ``setup``, ``act``, ``done`` and ``measure`` (and, with the
    ``audit`` hook, ``audited``): `step` is the base world's. A world whose deciders
    choose within pools sets ``pool_heads`` (its cards may read a whole pool in one
    prompt, `shown_order`) and may implement ``known_pools``. For someone watching a
    run (`uim-sim page`) they may declare ``watch`` (the metrics to plot as they are
    collected) and implement ``view`` (the world itself at the current step).
    """

    Params: ClassVar[type[Strict]]
    default_card: ClassVar[AgentCard]
    hooks: ClassVar[frozenset[str]] = frozenset()
    identity_spans: ClassVar[frozenset[str]] = frozenset()
    null_metrics: ClassVar[tuple[str, ...]] = ()
    agent_reporters: ClassVar[dict[type, dict[str, Callable]]] = {}
    watch: ClassVar[tuple[Plot, ...]] = ()
    pool_heads: ClassVar[bool] = False  # do its deciders choose within pools?

    def __init__(
        self,
        *,
        cards: AgentCard | Sequence[AgentCard] | None = None,
        stages: Stages | None = None,
        rng: int | np.random.Generator | None = None,
        null_draw: int | None = None,
        name_permutations: int = DEFAULT_NAME_PERMUTATIONS,
        **params: Any,
    ) -> None:
        seed = seed_of(rng)
        super().__init__(rng=seed)
        self.params = self.Params(**params)
        self.cards = [cards] if isinstance(cards, AgentCard) else list(cards or [self.default_card])
        self.stages = stages or Stages()
        self._built_screeners: dict[tuple[str, int], Screener] = {}
        self.seed = seed
        self.null_draw = null_draw
        self.permutations = name_permutations
        self.decisions: list[dict] = []
        self._step_start = 0
        self._measured: tuple[int, dict[str, float]] | None = None
        # (children 0-2 are what spawn(3) gave before the order stream was added; a
        # later child never moves the earlier ones)
        streams = np.random.SeedSequence([seed, 0]).spawn(5)
        population, decisions, statistics_seed, order, adapt = streams
        self.population_rng = np.random.default_rng(population)
        self.decision_rng = np.random.default_rng(decisions)
        self.statistics_rng = np.random.default_rng(statistics_seed)
        self.order_rng = np.random.default_rng(order)
        self.adapt_rng = np.random.default_rng(adapt)  # adaptive agents' draws
        self.fresh: list[TrainingSet] = []  # outcomes learned for re-training
        self.retrains = 0
        self.setup()
        self.check_pools()
        self.audit_switches = 0  # deciders switched to another card by an audit
        declared = dict(self.measures())
        if self.audits:
            declared["audit_switches"] = None
        if self.retraining:
            declared.update(labels_learned=None, retrains=None)
        self.datacollector = mesa.DataCollector(
            model_reporters=reporters(columns(declared), type(self)._measured_now),
            agenttype_reporters=self.agent_reporters or None,
        )
        self.datacollector.collect(self)  # step 0: the world before anyone decides

    # ------------------------------------------------------------ one step

    def step(self) -> None:
        """One step, as Mesa calls it (Mesa counts it, `round`, as it begins): the world
        acts (`act`), a system-stage audit looks at its deciders (`audited`), it stops
        running once `done`, and its measures are collected."""
        self._step_start = len(self.decisions)
        self.act()
        if self.audits:
            self.run_audits(*self.audited())
        if self.retraining:
            self.learn_outcomes()
        if self.done():
            self.running = False
        self.datacollector.collect(self)

    @property
    def round(self) -> int:
        """The steps taken so far (0 before the first), as Mesa counts them: ``steps``
        in Mesa 3, ``time`` in Mesa 4, which drops ``steps`` (both advance as a step
        begins)."""
        steps = getattr(self, "steps", None)
        return int(self.time) if steps is None else steps

    # ------------------------------------------------------------ to implement

    def setup(self) -> None:
        """Build the world's population and deciders (called from ``__init__``)."""
        raise NotImplementedError

    def act(self) -> None:
        """What the world does in one step: agents propose, one engine call scores, agents
        act on the scores and the decisions are recorded (`step` does the rest)."""
        raise NotImplementedError

    def done(self) -> bool:
        """Is the world done after this step (then it stops ``running``)?"""
        raise NotImplementedError

    @classmethod
    def card_refusal(cls, card: AgentCard, corpus: Any) -> str | None:
        """Why this world cannot run ``card`` (``corpus``: the corpus card of a forged
        checkpoint, else None), read when a scenario is planned; None: it can."""
        return None

    def audited(self) -> tuple[Sequence[Any], str, str]:
        """What a system-stage audit reads after a step, for a world with the ``audit``
        hook: its deciders and the decision-table fields of a selection and a group."""
        raise NotImplementedError

    def measures(self) -> Mapping[str, Sequence[str] | None]:
        """The declared measures: {metric: its groups, or None if population-level}."""
        raise NotImplementedError

    def measure(self) -> Mapping[str, float | Mapping[str, float]]:
        """This step's measures as a bundle {metric: value or {group: value}}."""
        raise NotImplementedError

    def training_data(self, card: AgentCard, draw: int = 0) -> TrainingSet:
        raise NotImplementedError

    def measure_null(self) -> Mapping[str, float | Mapping[str, float]]:
        """A null draw's measures: only ``null_metrics`` are kept from it, so a world
        may compute just those (default: `measure`, filtered)."""
        return {m: v for m, v in self.measure().items() if m in self.null_metrics}

    def view(self) -> View | None:
        """The world at the current step, for the page (None: nothing to draw)."""
        return None

    def known_pools(self) -> list[tuple[Screener, str, list[str]]]:
        """The pools the world will show its deciders, where it knows them before its
        first step (an audit's job ads): (screener, context, texts as the decider sees
        them), in pool order. A pool head's are checked when the world is built."""
        return []

    # ------------------------------------------------------------ pools

    @property
    def reads_pools(self) -> bool:
        """Does a decider of the world (any screener built so far: after ``setup``, every
        card assigned) read a decision's whole pool in one prompt?"""
        return any(reads_pool(s) for s in self._built_screeners.values())

    def shown_order(self, screener: Screener, n: int) -> np.ndarray:
        """Where each of a pool's ``n`` candidates (in pool order) is shown to the
        decider carrying ``screener``: a pool head reads the pool in one prompt, in a
        random order drawn afresh for every decision from the world's order stream
        (Bloomberg 2024: GPT-3.5 picked the first of eight resumes 56 % of the time); a
        head that reads one text at a time sees them in pool order (0 … n − 1)."""
        if reads_pool(screener):
            return self.order_rng.permutation(n)
        return np.arange(n)

    def check_pools(self) -> None:
        """Refuse, before anything is scored, a known pool (`known_pools`) that a pool
        head cannot read: labels that are not one token, a prompt longer than the
        model's positions (one-line `HeadError`)."""
        by_screener: dict[int, tuple[Screener, list[list[str]], list[str]]] = {}
        for screener, context, texts in self.known_pools():
            if reads_pool(screener):
                entry = by_screener.setdefault(id(screener), (screener, [], []))
                entry[1].append(texts)
                entry[2].append(context)
        for screener, pools, contexts in by_screener.values():
            screener.head.check_pools(screener.engine, pools, contexts)

    # ------------------------------------------------------------ shared

    def _measured_now(self) -> dict[str, float]:
        """The step's measures, computed once however many columns read them."""
        if self._measured is None or self._measured[0] != self.round:
            measured = flat(self.measure() if self.null_draw is None else self.measure_null())
            if self.audits:
                measured["audit_switches"] = float(self.audit_switches)
            if self.retraining:
                measured["labels_learned"] = float(sum(len(f.texts) for f in self.fresh))
                measured["retrains"] = float(self.retrains)
            self._measured = (self.round, measured)
        return self._measured[1]

    @property
    def audits(self) -> bool:
        """Does a system-stage audit watch this world's deciders?"""
        return "audit" in self.hooks and self.stages.audit is not no_audit

    @property
    def retraining(self) -> bool:
        """Does the platform learn outcomes and re-train its deciders' heads?"""
        return "retrain" in self.hooks and self.stages.retrain is not never_retrain

    def outcomes(self) -> TrainingSet | None:
        """The step's outcomes whose truth the platform could learn, as adaptation
        data (texts as the deciders read them, their truth); for a world with the
        ``retrain`` hook."""
        raise NotImplementedError

    def learn_outcomes(self) -> None:
        """After a step, the retrain stage's share of the step's outcomes (`outcomes`,
        drawn from a stream of the seed and the step) joins what the platform learned;
        when it says so, every trained head is re-trained on its adaptation data and
        all of that (`screener.train`: through the same stages as at the start)."""
        asked = self.stages.retrain(self.round)
        if asked is None:
            return
        share, refit = asked
        fresh = self.outcomes()
        if fresh is not None and len(fresh.texts):
            rng = np.random.default_rng([self.seed, 7, self.round])
            keep = np.flatnonzero(rng.random(len(fresh.texts)) < share)
            self.fresh.append(subset(fresh, keep))
        if not refit:
            return
        for (_, draw), screener in self._built_screeners.items():
            if screener.trainable:
                data = joined(self.training_data(screener.card, draw), self.fresh)
                rng = np.random.default_rng([self.seed, 5, draw, self.round])
                screener.train(self.null_labels(data, draw), self.stages, rng)
        self.retrains += 1

    def run_audits(self, deciders: Sequence[Any], selected: str, group: str) -> None:
        """The system stage's audits, after a step (`step` calls it with `audited`): each
        decider's decisions since it last changed model (decision-table fields
        ``selected`` and ``group``); an audit may hand it another card, whose screener it
        carries from then on."""
        if not self.audits:
            return
        for decider in deciders:
            since = getattr(decider, "audited_from", 0)
            rows = [r for r in self.decisions[since:] if r["decider"] == decider.unique_id]
            card = self.stages.audit(
                np.array([r[selected] for r in rows], dtype=bool),
                np.array([r[group] for r in rows]),
                self.round,
            )
            if card is not None:
                decider.screener = self.screener(card)
                decider.audited_from = len(self.decisions)
                self.audit_switches += 1

    def _screeners(self, n_deciders: int) -> list[Screener]:
        """One screener per (card, training draw): deciders sharing both share a model."""
        assigned = self.stages.assign(self.cards, n_deciders, self.population_rng)
        return [self.screener(card, draw) for card, draw in assigned]

    def screener(self, card: AgentCard, draw: int = 0) -> Screener:
        """The screener of ``card`` adapted on draw ``draw`` of its training data, built
        once per world: deciders sharing both share a model."""
        built = self._built_screeners
        key = (card.fingerprint(), draw)
        if key not in built:
            screener = Screener.from_card(card)
            if screener.trainable:
                rng = np.random.default_rng([self.seed, 5, draw])
                screener.train(self.null_labels(self.training_data(card, draw), draw),
                               self.stages, rng)  # fmt: skip
            built[key] = screener
        return built[key]

    def null_labels(self, data: TrainingSet, draw: int = 0) -> TrainingSet:
        """A null draw's adaptation data: the labels permuted (the texts and groups
        kept), from a stream of the run's seed, the null draw and the training draw; the
        data itself for an observed run. Every world's trainable heads learn through it."""
        if self.null_draw is None:
            return data
        rng = np.random.default_rng([self.seed, 3, self.null_draw, draw])
        return replace(data, labels=rng.permutation(data.labels))

    def simulate(self, n: int | None = None):
        """Step ``n`` times, or (default) until the world stops running; the world.
        (Not Mesa's ``run_for``: later Mesa versions step through their own.)"""
        steps = 0
        while self.running and (n is None or steps < n):
            self.step()
            steps += 1
        return self

    def decision_table(self) -> pd.DataFrame:
        """One row per decision so far (who decided about whom, with which checkpoint,
        the score, the decision, the truth where the world knows it)."""
        return pd.DataFrame(self.decisions)

    def step_decisions(self) -> pd.DataFrame:
        """Decisions of the current step (rows are appended in step order)."""
        return pd.DataFrame(self.decisions[self._step_start :])

    def metrics(self) -> pd.DataFrame:
        """The collected measures as a tidy table: step, metric, group, value."""
        return tidy(self.datacollector.model_vars)


def subset(data: TrainingSet, rows: np.ndarray) -> TrainingSet:
    """The rows ``rows`` of ``data`` (weights and groups kept, if any)."""
    pick = lambda a: None if a is None else np.asarray(a)[rows]  # noqa: E731
    return replace(
        data,
        texts=[data.texts[i] for i in rows],
        labels=np.asarray(data.labels)[rows],
        spans=[data.spans[i] for i in rows],
        protected=np.asarray(data.protected)[rows],
        groups=pick(data.groups),
        weights=pick(data.weights),
    )


def joined(data: TrainingSet, more: Sequence[TrainingSet]) -> TrainingSet:
    """``data`` followed by the rows of ``more`` (``data``'s supplement and
    ``identify`` kept; weights, where ``data`` has them, 1 for the rows added)."""
    if not more:
        return data
    parts = [data, *more]
    groups = (
        None
        if data.groups is None
        else np.concatenate(
            [np.asarray(p.groups if p.groups is not None else p.protected) for p in parts]
        )
    )
    weights = None if data.weights is None else np.concatenate(
        [data.weights, *(np.ones(len(p.texts)) for p in more)])  # fmt: skip
    return replace(
        data,
        texts=[t for p in parts for t in p.texts],
        labels=np.concatenate([np.asarray(p.labels) for p in parts]),
        spans=[s for p in parts for s in p.spans],
        protected=np.concatenate([np.asarray(p.protected) for p in parts]),
        groups=groups,
        weights=weights,
    )


@dataclass(frozen=True)
class WorldInfo:
    """What the registry knows of a world: its Mesa model class per ``mode`` (the
    first is the default), a one-line summary, and its report section."""

    name: str
    summary: str
    models: dict[str, type[ScreeningWorld]]
    section: Callable[..., Any] | None = field(default=None, compare=False)
    # describe(params, seed): numbers that characterise the world a spec builds before
    # anything is decided (spread: its network's clustering, degrees, homophily)
    describe: Callable[[Any, int], dict[str, float]] | None = field(default=None, compare=False)
    # the range of metrics whose name does not say it (`uim_sim.metrics.stats.
    # metric_range`: rates, shares, AUCs, p-values and ratios are told by their name), so
    # their intervals over seeds stay inside it; None: a metric is not bounded
    ranges: Mapping[str, tuple[float, float] | None] = field(default_factory=dict, compare=False)

    def model(self, mode: str | None = None) -> type[ScreeningWorld]:
        if len(self.models) == 1:
            return next(iter(self.models.values()))
        mode = mode or next(iter(self.models))
        if mode not in self.models:
            raise ValueError(
                f"mode: {mode!r} is not a mode of world {self.name} "
                f"(modes: {', '.join(self.models)})"
            )
        return self.models[mode]

    def params(self, data: Mapping[str, Any]) -> Strict:
        """Validated parameters (raises pydantic's ValidationError, a ValueError)."""
        return self.model(data.get("mode")).Params.model_validate(dict(data))

    def parameter_names(self) -> set[str]:
        return {name for m in self.models.values() for name in m.Params.model_fields}

    @property
    def hooks(self) -> frozenset[str]:
        return frozenset().union(*(m.hooks for m in self.models.values()))

    def in_modes(self, modes: set[str | None]) -> WorldInfo:
        """The world as a spec runs it: only the models of ``modes`` (what a mitigation
        may act on depends on the mode, e.g. audits need rounds)."""
        chosen = {m: cls for m, cls in self.models.items() if m in modes}
        if not chosen or len(chosen) == len(self.models):
            return self
        return replace(self, name=f"{self.name} ({', '.join(chosen)} mode)", models=chosen)
