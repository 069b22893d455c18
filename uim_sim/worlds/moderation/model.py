"""The content-moderation world: moderators carrying checkpoints, as a Mesa model.

Two modes (``ModerationParams.mode``):

- ``reference``: the template test set after Dixon et al. (2018), every frame
  rendered for every group, scored once by one moderator; the Dixon metrics
  (FPR/FNR per identity, FPED, FNED) and the Borkan et al. (2019) AUCs and final
  score, to hold a checkpoint against those papers' tables.
- ``world``: a platform over ``n_steps``. Users of identity groups post template
  texts with a known truth; moderators remove what their screener scores as toxic;
  removed users appeal to a reviewer with limited capacity; users whose benign posts
  are removed post less or leave (chilling), and toxic posts left up lower the
  participation of those who read them. Metrics per step: participation, silencing,
  toxicity exposure, appeal load; at the last step the Dixon and Borkan metrics of
  every post of the run.

A step reads: users post; one engine call scores every post; moderators remove; a
human review (if a mitigation adds one) overturns; users appeal and the reviewer
reinstates; users react.
"""

from __future__ import annotations

from dataclasses import replace

import mesa
import numpy as np
import pandas as pd

from uim_sim.lfm.heads import read_labelled_file
from uim_sim.metrics.moderation import bias_metrics
from uim_sim.spec import AgentCard, DecisionSpec, HeadSpec, ModerationParams
from uim_sim.worlds.base import ScreeningWorld
from uim_sim.worlds.moderation.agents import Moderator, Reviewer, User
from uim_sim.worlds.moderation.reporters import REFERENCE_REPORTERS, WORLD_REPORTERS
from uim_sim.worlds.moderation.templates import (
    BACKGROUND,
    DIALECT,
    GROUPS,
    IDENTITY_GROUPS,
    group_named,
    history,
    supplement,
    test_set,
)
from uim_sim.worlds.screening import score_proposals
from uim_sim.worlds.stages import TrainingSet

TOXIC_DESCRIPTION = "This comment is toxic: rude, insulting, hateful or threatening."
BENIGN_DESCRIPTION = "This comment is friendly, respectful and harmless."
ZERO_SHOT = AgentCard(
    name="minilm_moderation_zero_shot",
    head=HeadSpec(
        kind="zero_shot_contrast", positive=[TOXIC_DESCRIPTION], negative=[BENIGN_DESCRIPTION]
    ),
    decision=DecisionSpec(rule="threshold", threshold=0.0),
)
TERMS = (*IDENTITY_GROUPS, DIALECT)  # the subgroups the Dixon and Borkan metrics cover


class ModerationWorld(ScreeningWorld):
    """Moderators carrying checkpoints decide which posts stay up.

    Args:
        params: world parameters (defaults: the platform of `scenarios/moderation.yaml`).
        cards: the agent card(s) moderators may carry; the ``assign`` stage picks.
        stages: the hooks mitigations wrap (defaults: no mitigation).
        seed: one seed for the run; users, history and decisions draw from
            independent child streams (common random numbers across arms).
        null_draw: if set, trainable heads learn from permuted labels.
        statistics: ``name_permutations`` is the number of term permutations of the
            FPED/FNED null reference (labels shuffled among a frame's texts).
    """

    null_metrics = ()  # the null of FPED/FNED is a permutation inside the metrics

    Params = ModerationParams
    default_card = ZERO_SHOT

    def setup(self) -> None:
        self._step_frame: pd.DataFrame | None = None
        self._population: pd.DataFrame | None = None
        self.appeal_counts: dict[str, float] = {}

        self.catalogue = test_set()
        self.prepared = [
            self.stages.prepare_text(t, (r,))
            for t, r in zip(self.catalogue["text"], self.catalogue["referent"])
        ]
        self.items = self.catalogue.to_dict("records")
        cells = self.catalogue.groupby(["subgroup", "truth"]).indices
        self.cells = {key: np.asarray(rows) for key, rows in cells.items()}
        self.authors: list[User | None] = []  # the author of each decision row
        self.group_shares = self._group_shares()
        reference = self.params.mode == "reference"
        screeners = self._screeners(1 if reference else self.params.n_moderators)
        self.moderators = [Moderator(self, s) for s in screeners]
        if not reference:
            self._populate()
            self.reviewer = Reviewer(self, self.params.appeal_capacity)
        self.datacollector = mesa.DataCollector(
            model_reporters=REFERENCE_REPORTERS if reference else WORLD_REPORTERS
        )

    # ------------------------------------------------------------ set-up

    def _group_shares(self) -> dict[str, float]:
        """Background users hold ``background_share``; the other groups share the rest."""
        others = [g for g in GROUPS if g != BACKGROUND]
        rest = (1 - self.params.background_share) / len(others)
        return {**{g: rest for g in others}, BACKGROUND: self.params.background_share}

    def training_data(self, card: AgentCard, draw: int = 0) -> TrainingSet:
        """The adaptation data of a trainable card (before any mitigation), with the
        benign supplement a data-stage mitigation may draw from."""
        if card.head.train_on == "file":
            texts, labels = read_labelled_file(
                card.head.file, card.head.text_column, card.head.label_column
            )
            groups = np.array([group_named(t) for t in texts])
            spans = [()] * len(texts)
        else:
            frame = self.history(card.head.history_bias, draw)
            texts, labels = frame["text"].tolist(), frame["truth"].to_numpy(int)
            groups, spans = frame["subgroup"].to_numpy(), [(r,) for r in frame["referent"]]
        extra = supplement()
        data = TrainingSet(
            texts,
            np.asarray(labels),
            spans,
            protected=groups,
            groups=groups,
            supplement=TrainingSet(
                extra["text"].tolist(),
                extra["truth"].to_numpy(int),
                [(r,) for r in extra["referent"]],
                protected=extra["subgroup"].to_numpy(),
                groups=extra["subgroup"].to_numpy(),
            ),
        )
        if self.null_draw is not None:
            rng = np.random.default_rng([self.seed, 3, self.null_draw, draw])
            data = replace(data, labels=rng.permutation(data.labels))
        return data

    def history(self, bias: float = 0.0, draw: int = 0) -> pd.DataFrame:
        """Historical moderation decisions in which the target groups' texts are toxic
        with log-odds ``bias`` above the rest: the comments depend only on the seed and
        ``draw``, the bias only moves which of them are toxic."""
        p = self.params
        rng = np.random.default_rng([self.seed, 1, draw])
        return history(
            p.n_history,
            p.history_toxic_share,
            bias,
            tuple(p.history_targets),
            self.group_shares,
            rng,
        )

    def _populate(self) -> None:
        p, rng = self.params, self.population_rng
        names = list(self.group_shares)
        shares = np.array(list(self.group_shares.values()))
        groups = rng.choice(len(names), size=p.n_users, p=shares / shares.sum())
        toxic = rng.random(p.n_users) < p.toxic_user_share
        self.users = [User(self, names[g], bool(t), p.post_prob) for g, t in zip(groups, toxic)]
        # who toxic posts name: any identity or background referent, as often as they occur
        self.target_groups = [g for g in names if g != DIALECT]
        weights = np.array([self.group_shares[g] for g in self.target_groups])
        self.target_p = weights / weights.sum()

    # ------------------------------------------------------------ one step

    @property
    def finished(self) -> bool:
        return self.params.mode == "reference" or self.round >= self.params.n_steps

    def step(self) -> None:
        self.round += 1
        self._step_start = len(self.decisions)
        self._step_frame = self._population = None
        if self.params.mode == "reference":
            self._score_reference()
        else:
            authors, rows = self._users_post()
            queue = self.decision_rng.integers(len(self.moderators), size=len(rows))
            scores = self._score(rows, queue)
            removed = self._moderate(authors, rows, queue, scores)
            self._appeal(removed)
            self._react(authors, removed)
        if self.finished:
            self.running = False
        self.datacollector.collect(self)

    def _users_post(self) -> tuple[list[User], np.ndarray]:
        """Each active user posts with their posting probability: benign posts name
        their own group, toxic posts any group (dialect users write in dialect)."""
        rng, p = self.decision_rng, self.params
        draws = rng.random((len(self.users), 3))
        authors, rows = [], []
        for user, (post, toxic, pick) in zip(self.users, draws):
            if not user.wants_to_post(post):
                continue
            is_toxic = user.post_is_toxic(toxic, p.toxic_post_prob)
            subgroup = user.group
            if is_toxic and user.group != DIALECT:
                subgroup = self.target_groups[rng.choice(len(self.target_groups), p=self.target_p)]
            cell = self.cells[(subgroup, int(is_toxic))]
            authors.append(user)
            rows.append(cell[int(pick * len(cell))])
        return authors, np.asarray(rows, dtype=int)

    def _score(self, rows: np.ndarray, queue: np.ndarray) -> np.ndarray:
        """One engine call for every post of the step (post i goes to moderator queue[i])."""
        texts = [self.prepared[r] for r in rows]
        screeners = [self.moderators[q].screener for q in queue]
        return score_proposals(screeners, texts, [TOXIC_DESCRIPTION] * len(texts))

    def _moderate(
        self, authors: list[User], rows: np.ndarray, queue: np.ndarray, scores: np.ndarray
    ) -> np.ndarray:
        """Each moderator decides its queue; a human review (review stage) may overturn
        removals before they take effect. Records every decision; returns removals."""
        subgroups = self.catalogue["subgroup"].to_numpy()[rows]
        truth = self.catalogue["truth"].to_numpy()[rows]
        flagged = np.zeros(len(rows), dtype=bool)
        for q, moderator in enumerate(self.moderators):
            mine = np.flatnonzero(queue == q)
            if len(mine):
                flagged[mine] = moderator.moderate(scores[mine], subgroups[mine])
        review = self.stages.review(scores, flagged, truth, self.decision_rng)
        overturned = np.asarray(review, dtype=bool) & flagged
        removed = flagged & ~overturned
        for i, (user, row) in enumerate(zip(authors, rows)):
            self._record(user, row, queue[i], scores[i], flagged[i], removed[i])
        self.appeal_counts = {"review_overturned": float(overturned.sum())}
        return removed

    def _appeal(self, removed: np.ndarray) -> None:
        """Removed users may appeal; the reviewer works through the backlog and
        reinstates benign posts, which undoes their authors' chill."""
        p, first = self.params, self._step_start
        truth = np.array([self.decisions[first + i]["truth"] for i in range(len(removed))])
        appeal_p = np.where(truth == 0, p.appeal_prob, p.appeal_prob_toxic)
        appealed = np.flatnonzero(removed & (self.decision_rng.random(len(removed)) < appeal_p))
        for i in appealed:
            self.decisions[first + i]["appealed"] = 1
        self.reviewer.file([first + i for i in appealed])
        upheld = 0
        for row in self.reviewer.work():
            record = self.decisions[row]
            if record["truth"] == 0:
                record["reinstated_step"] = self.round
                self.authors[row].reinstated(p.chilling)
                upheld += 1
        self.appeal_counts.update(
            appeals_filed=float(len(appealed)),
            appeals_upheld=float(upheld),
            appeal_backlog=float(len(self.reviewer.backlog)),
        )

    def _react(self, authors: list[User], removed: np.ndarray) -> None:
        """A removed benign post chills its author (posts less, may leave); every
        active user then reads posts left up, and toxic ones lower participation."""
        p, first = self.params, self._step_start
        rows = self.decisions[first:]
        truth = np.array([r["truth"] for r in rows])
        subgroups = np.array([r["subgroup"] for r in rows])
        leave_draws = self.decision_rng.random(len(rows))
        for i in np.flatnonzero(removed & (truth == 0)):
            authors[i].benign_post_removed(p.chilling, p.leave_prob, leave_draws[i])
        self._read_feeds(subgroups[~removed], truth[~removed])

    def _read_feeds(self, subgroups: np.ndarray, truth: np.ndarray) -> None:
        """Every active user reads ``feed_size`` posts left up this step."""
        p = self.params
        readers = [u for u in self.users if u.active]
        for u in self.users:
            u.toxic_seen = 0
        if not readers or len(truth) == 0 or p.feed_size == 0:
            return
        feed = self.decision_rng.integers(len(truth), size=(len(readers), p.feed_size))
        toxic = truth[feed] == 1
        names = subgroups[feed]
        own = np.array([u.group for u in readers])[:, None]
        toxic_seen = toxic.sum(1)
        targeted = (toxic & (names == own) & np.isin(names, IDENTITY_GROUPS)).sum(1)
        for user, seen, hit in zip(readers, toxic_seen, targeted):
            user.toxic_seen = int(seen)
            user.read(int(seen), int(hit), p.exposure_harm, p.targeted_harm)

    def _record(self, user: User | None, row: int, queue: int, score, flagged, removed) -> None:
        """One decision row; ``subject`` is the author (the test item in reference mode)."""
        item = self.items[row]
        moderator = self.moderators[queue]
        self.authors.append(user)
        self.decisions.append({
            "step": self.round,
            "decider": moderator.unique_id,
            "subject": user.unique_id if user is not None else int(row),
            "group": user.group if user is not None else item["subgroup"],
            "subgroup": item["subgroup"],
            "dialect": bool(item["dialect"]),
            "family": item["family"],
            "frame": item["frame"],
            "text": item["text"],
            "checkpoint": moderator.screener.card.checkpoint,
            "card": moderator.screener.card.name,
            "score": float(score),
            "flagged": int(flagged),
            "decision": int(removed),
            "truth": int(item["truth"]),
            "appealed": 0,
            "reinstated_step": -1,
        })  # fmt: skip

    def _score_reference(self) -> None:
        """Score the whole template test set once; decide it as one pool."""
        rows = np.arange(len(self.catalogue))
        queue = np.zeros(len(rows), dtype=int)
        scores = self._score(rows, queue)
        removed = self.moderators[0].moderate(scores, self.catalogue["subgroup"].to_numpy())
        for row in rows:
            self._record(None, row, 0, scores[row], removed[row], removed[row])

    # ------------------------------------------------------------ read-outs

    def default_steps(self) -> int:
        """The reference pass, or ``n_steps``."""
        return 1 if self.params.mode == "reference" else self.params.n_steps

    def step_decisions(self) -> pd.DataFrame:
        if self._step_frame is None:
            self._step_frame = pd.DataFrame(self.decisions[self._step_start :])
        return self._step_frame

    def population(self) -> pd.DataFrame:
        """Users now: ``participation`` is the expected posts per step (0 once left)."""
        if self._population is None:
            active = np.array([u.active for u in self.users])
            self._population = pd.DataFrame(
                {
                    "group": [u.group for u in self.users],
                    "active": active,
                    "participation": np.array([u.post_prob for u in self.users]) * active,
                    "toxic_seen": np.array([u.toxic_seen for u in self.users], dtype=float),
                }
            )
        return self._population

    def bias(self) -> dict:
        """Dixon and Borkan metrics of every decision so far, with the term null."""
        pools = {"identity": IDENTITY_GROUPS, "targets": tuple(self.params.history_targets)}
        return bias_metrics(
            self.decision_table(), TERMS, pools, self.permutations, self.statistics_rng
        )
