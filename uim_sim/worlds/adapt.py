"""Agents who adapt to the deciders: a bandit over the edits they can make to their
text, with what works passed on to their contacts.

Strategic response to a classifier is a known design: Hardt et al. (2016, "Strategic
classification") let the classified change their features at a cost to pass a
published rule; Perdomo et al. (2020, "Performative prediction") study a model whose
deployment shifts the data it is then evaluated on. This module keeps the core of
both (the people classified change what the classifier reads, in response to the
classifier's decisions, and the decider may re-train on the shifted data: the
``retraining`` mitigation) and drops their assumptions of a known rule and a best
response: here people do not see the model, they learn from their own outcomes and
their contacts' by trial and error, as an applicant or a poster does.

The learning rule (`EditBandit`), seeded like everything else:

- each adaptive agent holds, per edit ``e`` (``none`` among them), the successes
  ``s_e`` and trials ``n_e`` of its own attempts;
- before acting it draws, for every edit, ``θ_e ~ Beta(1 + S_e, 1 + N_e − S_e)``
  with ``S_e = s_e + w · Σ_contacts s_e`` and ``N_e`` alike (Thompson sampling; ``w``:
  ``social_weight``, how much a contact's experience counts against one's own), and
  uses the edit of the largest draw;
- after the decision it adds its outcome (1: the post stayed up, the applicant was
  called back) to ``s`` and ``n`` of the edit it used.

Contacts are ``contacts`` other adaptive agents drawn at random when the world is
built (a directed graph: an agent hears from its contacts; in the spread world too,
whose coordinated accounts talk among themselves, not through the users' network).
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field, field_validator

from uim_sim.schema import Probability, Strict

NONE = "none"  # the edit of an agent who posts or applies as it would have


class AdaptiveParams(Strict):
    """How many agents adapt and how they learn (see `EditBandit`).

    ``adaptive_share``: the share of the eligible agents (toxic posters, applicants)
    who adapt (0: nobody does; the world is as before). ``contacts``: how many other
    adaptive agents each hears from. ``social_weight``: how much one contact's
    attempt counts against one of the agent's own (0: each learns alone)."""

    adaptive_share: Probability = 0.0
    contacts: Annotated[int, Field(ge=0, le=1000)] = 3
    social_weight: Annotated[float, Field(ge=0.0, le=10.0)] = 0.5

    @field_validator("edits", check_fields=False)
    @classmethod
    def _edits_listed(cls, value: list[str]) -> list[str]:
        """A world's ``edits`` (the rewrites its agents may choose among): some, once each."""
        if not value:
            raise ValueError("needs at least one edit")
        if len(set(value)) != len(value):
            raise ValueError(f"repeats an edit: {value}")
        return value


ADAPTIVE_FIELDS = tuple(AdaptiveParams.model_fields)


def drop_adaptive(data: dict, params) -> dict:
    """A params dump without the adaptive fields while nobody adapts: specs written
    before agents adapted keep their run ids and tables."""
    if not params.adaptive_share:
        for key in (*ADAPTIVE_FIELDS, "edits"):
            data.pop(key, None)
    return data


def random_contacts(n: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Edges (source, listener) where each of ``n`` agents hears from ``k`` others drawn
    at random without replacement (fewer where there are fewer others)."""
    k = min(k, n - 1)
    if k <= 0:
        return np.empty(0, dtype=int), np.empty(0, dtype=int)
    sources = np.empty((n, k), dtype=int)
    for i in range(n):
        others = rng.choice(n - 1, size=k, replace=False)
        sources[i] = others + (others >= i)  # skip the agent itself
    return sources.ravel(), np.repeat(np.arange(n), k)


class EditBandit:
    """Thompson sampling over ``edits`` for ``n`` agents, with contacts' evidence.

    ``edges`` = (source, listener) arrays: the listener counts the source's attempts
    with weight ``social_weight``. ``rng``: the world's stream for adaptation draws.
    """

    def __init__(
        self,
        n: int,
        edits: tuple[str, ...],
        edges: tuple[np.ndarray, np.ndarray],
        social_weight: float,
        rng: np.random.Generator,
    ) -> None:
        self.edits = edits
        self.successes = np.zeros((n, len(edits)))
        self.trials = np.zeros((n, len(edits)))
        self.sources, self.listeners = edges
        self.weight = social_weight
        self.rng = rng
        self.discovered = float("nan")  # the step by which half first found an edit

    @classmethod
    def for_world(cls, n: int, params: AdaptiveParams, rng: np.random.Generator) -> EditBandit:
        """The bandit of ``n`` adaptive agents of a world: its ``edits`` besides ``none``,
        ``contacts`` drawn at random among them, its ``social_weight``."""
        edges = random_contacts(n, params.contacts, rng)
        return cls(n, (NONE, *params.edits), edges, params.social_weight, rng)

    def _evidence(self) -> tuple[np.ndarray, np.ndarray]:
        """(successes, trials) each agent counts: its own and, weighted, its contacts'."""
        s, n = self.successes.copy(), self.trials.copy()
        if self.weight and len(self.sources):
            np.add.at(s, self.listeners, self.weight * self.successes[self.sources])
            np.add.at(n, self.listeners, self.weight * self.trials[self.sources])
        return s, n

    def choose(self, agents: np.ndarray) -> np.ndarray:
        """The edit (index into ``edits``) each of ``agents`` uses now: one Beta draw
        per agent and edit from the stream, the largest wins."""
        agents = np.asarray(agents, dtype=int)
        if not len(agents):
            return np.empty(0, dtype=int)
        s, n = self._evidence()
        draws = self.rng.beta(1 + s[agents], 1 + n[agents] - s[agents])
        return draws.argmax(axis=1)

    def learn(
        self, agents: np.ndarray, edits: np.ndarray, rewards: np.ndarray, step: int | None = None
    ) -> None:
        """Add each agent's outcome (0/1) to the edit it used (an agent may appear
        more than once); at a world's ``step``, note whether half the agents now prefer
        an edit that works (`discovered`, `discovery`)."""
        np.add.at(self.trials, (agents, edits), 1.0)
        np.add.at(self.successes, (agents, edits), np.asarray(rewards, dtype=float))
        if step is not None:
            self.discovered = discovery(self.edit_found(), step, self.discovered)

    def preferred(self) -> np.ndarray:
        """Each agent's edit with the best posterior mean on the evidence it counts
        (ties: the first, ``none``, so nobody prefers an edit before evidence)."""
        s, n = self._evidence()
        return ((1 + s) / (2 + n)).argmax(axis=1)

    def working(self) -> np.ndarray:
        """Which edits work: their success rate over every agent's attempts so far is
        above that of posting unedited (``none`` never; an edit nobody tried, or any
        while nobody posted unedited, neither)."""
        trials = self.trials.sum(axis=0)
        rates = np.full(len(trials), np.nan)
        np.divide(self.successes.sum(axis=0), trials, out=rates, where=trials > 0)
        return rates > rates[self.edits.index(NONE)]  # NaN compares False

    def edit_found(self) -> float:
        """Share of the agents who now prefer an edit that works (`working`): an
        evasion or a gaming line, found; NaN without agents."""
        if not len(self.trials):
            return float("nan")
        return float(np.mean(self.working()[self.preferred()]))


def discovery(found: float, step: int, first: float) -> float:
    """The step at which half the adaptive agents first preferred an edit that works
    (``first``: what it was before this step; NaN until then)."""
    if np.isnan(first) and found >= 0.5:
        return float(step)
    return first


__all__ = [
    "ADAPTIVE_FIELDS",
    "NONE",
    "AdaptiveParams",
    "EditBandit",
    "discovery",
    "drop_adaptive",
    "random_contacts",
]
