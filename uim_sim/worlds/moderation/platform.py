"""The content-moderation platform over time, as a Mesa model.

Users of identity groups post template texts with a known truth; moderators remove
what their screener scores as toxic; a human review (if a mitigation adds one) may
overturn; removed users appeal to a reviewer with limited capacity, who reinstates
benign posts; users whose benign posts are removed post less or leave (chilling),
and toxic posts left up lower the participation of those who read them. Measures per
step: participation, silencing, toxicity exposure, appeal load; at the last step the
Dixon et al. (2018) and Borkan et al. (2019) metrics of every post of the run and
the impact ratios of each author group's posts left up.
"""

from __future__ import annotations

from operator import attrgetter

import numpy as np
import pandas as pd

from uim_sim.metrics.fairness import group_means
from uim_sim.vocab.identity import DIALECT
from uim_sim.worlds.adapt import NONE, EditBandit
from uim_sim.worlds.moderation.agents import Moderator, Reviewer, User
from uim_sim.worlds.moderation.metrics import silencing
from uim_sim.worlds.moderation.params import PlatformParams
from uim_sim.worlds.moderation.templates import with_edits
from uim_sim.worlds.moderation.world import ModerationWorld
from uim_sim.worlds.stages import TrainingSet
from uim_sim.worlds.watch import Plot


class ModerationPlatform(ModerationWorld):
    """A platform: users post, moderators carrying checkpoints remove, users appeal,
    are chilled or leave. ``ModerationPlatform(n_users=200, rng=1)`` builds one (see
    `PlatformParams`); it stops running after ``n_steps``."""

    Params = PlatformParams
    hooks = ModerationWorld.hooks | {"audit", "retrain"}
    watch = (
        Plot("silencing", "False positive rate by identity: benign posts removed"),
        Plot("participation", "Participation (posting probability) by group"),
    )  # the Dixon/Borkan measures are taken at the last step only
    agent_reporters = {
        User: {
            "participation": lambda u: u.post_prob * u.active,
            "active": attrgetter("active"),
            "toxic_seen": attrgetter("toxic_seen"),
        }
    }

    def setup(self) -> None:
        self._step_frame: pd.DataFrame | None = None
        self._population: pd.DataFrame | None = None
        self.appeal_counts: dict[str, float] = {}
        self._catalogue()
        self.moderators = [Moderator(self, s) for s in self._screeners(self.params.n_moderators)]
        self._populate()
        self.reviewer = Reviewer(self, self.params.appeal_capacity)
        self.bandit: EditBandit | None = None
        if self.params.adaptive_share:
            self._adapt()

    def _adapt(self) -> None:
        """Toxic users who adapt (``adaptive_share`` of them, from the adaptation
        stream), their contacts, and every toxic text rewritten by every edit."""
        p, rng = self.params, self.adapt_rng
        toxic = [u for u in self.users if u.toxic]
        for user, draw in zip(toxic, rng.random(len(toxic))):
            user.learner = int(draw < p.adaptive_share) - 1  # -1: does not adapt
        adaptive = [u for u in toxic if u.learner == 0]
        for i, user in enumerate(adaptive):
            user.learner = i
        self.bandit = EditBandit.for_world(len(adaptive), p, rng)
        edits = self.bandit.edits
        n = len(self.catalogue)
        self.catalogue = with_edits(self.catalogue, tuple(p.edits), p.trigger)
        added = self.catalogue.iloc[n:]
        self.prepared += [
            self.stages.prepare_text(t, (r,) if r else ())
            for t, r in zip(added["text"], added["referent"])
        ]
        self.items = self.catalogue.to_dict("records")
        # edited[e][row]: the row of original ``row`` rewritten by edit e (e = 0: itself)
        self.edited = np.tile(np.arange(n), (len(edits), 1))
        for e, edit in enumerate(edits[1:], start=1):
            mine = added[added["edit"] == edit]
            self.edited[e, mine["source"].to_numpy()] = mine.index.to_numpy()
        self._adaptive_posts = (np.empty(0, dtype=int),) * 3
        self.watch = (
            *self.watch,
            Plot("adaptive_kept", "Toxic posts left up: users who adapt"),
            Plot("static_kept", "Toxic posts left up: the other toxic users"),
            Plot("edit_found", "Share of adaptive users who prefer an edit"),
        )  # the page watches them learn

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

    def act(self) -> None:
        """Users post; one engine call scores every post; moderators remove (a human
        review may overturn); users appeal and the reviewer reinstates; users react."""
        self._step_frame = self._population = None
        authors, rows = self._users_post()
        queue = self.decision_rng.integers(len(self.moderators), size=len(rows))
        if self.bandit is not None:
            rows = self._edit(authors, rows)
        self._step_rows = rows
        scores = self.score(rows, queue)
        removed = self._moderate(authors, rows, queue, scores)
        if self.bandit is not None:
            self._learn(removed)
        self._appeal(removed)
        self._react(authors, removed)

    def _edit(self, authors: list[User], rows: np.ndarray) -> np.ndarray:
        """Adaptive users rewrite their toxic posts by the edit their bandit picks."""
        toxic = self.catalogue["truth"].to_numpy()[rows] == 1
        posts = np.array([toxic[i] and a.learner >= 0 for i, a in enumerate(authors)], bool)
        posts = np.flatnonzero(posts)
        learners = np.array([authors[i].learner for i in posts], dtype=int)
        edits = self.bandit.choose(learners)
        rows = rows.copy()
        rows[posts] = self.edited[edits, rows[posts]]
        self._adaptive_posts = (posts, learners, edits)
        return rows

    def _learn(self, removed: np.ndarray) -> None:
        """Each adaptive post's author learns whether its edit kept the post up."""
        posts, learners, edits = self._adaptive_posts
        self.bandit.learn(learners, edits, ~removed[posts], self.round)

    def done(self) -> bool:
        return self.round >= self.params.n_steps

    def audited(self):
        """Moderators: what they flagged (before review), by the group a post names."""
        return self.moderators, "flagged", "subgroup"

    def _users_post(self) -> tuple[list[User], np.ndarray]:
        """Each active user posts with their posting probability: benign posts name
        their own group, toxic posts any group (dialect users write in dialect)."""
        rng = self.decision_rng
        draws = rng.random((len(self.users), 3))
        authors, rows = [], []
        for user, (post, toxic, pick) in zip(self.users, draws):
            is_toxic = user.post(post, toxic)
            if is_toxic is None:
                continue
            subgroup = user.group
            if is_toxic and user.group != DIALECT:
                subgroup = self.target_groups[rng.choice(len(self.target_groups), p=self.target_p)]
            cell = self.cells[(subgroup, int(is_toxic))]
            authors.append(user)
            rows.append(cell[int(pick * len(cell))])
        return authors, np.asarray(rows, dtype=int)

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
                flagged[mine] = moderator.decide(scores[mine], subgroups[mine])
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
        targeted = (toxic & (names == own) & np.isin(names, self.identities.identity_groups)).sum(1)
        for user, seen, hit in zip(readers, toxic_seen, targeted):
            user.toxic_seen = int(seen)
            user.read(int(seen), int(hit), p.exposure_harm, p.targeted_harm)

    # ------------------------------------------------------------ read-outs

    def step_decisions(self) -> pd.DataFrame:
        if self._step_frame is None:
            self._step_frame = super().step_decisions()
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

    def measures(self):
        per_group = dict.fromkeys(
            ("participation", "posts_per_user", "active_share", "silencing"), self.everyone
        )
        return {
            **per_group,
            "participation_ratio": None,
            "toxic_left_up": None,
            "toxicity_exposure": self.everyone,
            **{
                k: None
                for k in ("review_overturned", "appeals_filed", "appeals_upheld", "appeal_backlog")
            },
            **self.bias_measures(),
            **(self.adaptive_measures() if self.params.adaptive_share else {}),
        }

    def adaptive_measures(self) -> dict[str, tuple[str, ...] | None]:
        """What toxic users who adapt achieve (declared where some do)."""
        return {
            "toxic_kept": self.everyone,
            **dict.fromkeys(("adaptive_kept", "static_kept", "edited_share", "edit_found",
                             "discovery_step")),
        }  # fmt: skip

    def measure_adaptive(self, posts: pd.DataFrame) -> dict:
        """Toxic posts left up this step, by the group they name (``toxic_kept``), by
        users who adapt and by the other toxic users; the share of adaptive posts
        rewritten; the share of adaptive users who now prefer an edit
        (``edit_found``) and the step by which half of them first did."""
        out = {"edit_found": self.bandit.edit_found(), "discovery_step": self.bandit.discovered}
        toxic = posts.query("truth == 1")
        if toxic.empty:
            return out
        kept = 1 - toxic["decision"]
        out["toxic_kept"] = {"": float(kept.mean()),
                             **kept.groupby(toxic["subgroup"]).mean().to_dict()}  # fmt: skip
        adaptive = toxic["adaptive"].to_numpy(bool)
        if adaptive.any():
            out["adaptive_kept"] = float(kept[adaptive].mean())
            out["edited_share"] = float((toxic["edit"][adaptive] != NONE).mean())
        if (~adaptive).any():
            out["static_kept"] = float(kept[~adaptive].mean())
        return out

    def outcomes(self) -> TrainingSet:
        """Every post of the step, its truth known once human raters label it."""
        items = [self.items[r] for r in self._step_rows]
        groups = np.array([item["subgroup"] for item in items])
        return TrainingSet(
            [item["text"] for item in items],
            np.array([item["truth"] for item in items], dtype=int),
            [(item["referent"],) if item["referent"] else () for item in items],
            protected=groups,
            groups=groups,
        )

    def measure(self):
        pop = self.population()
        out = {
            "participation": group_means(pop, "participation", ("group",), overall=True),
            "participation_ratio": self._participation_ratio(),
            "posts_per_user": self._posts_per_user(),
            "active_share": group_means(pop, "active", ("group",), overall=True),
            "toxicity_exposure": group_means(
                pop.query("active"), "toxic_seen", ("group",), overall=True
            ),
            **self.appeal_counts,
        }
        posts = self.step_decisions()
        if not posts.empty:
            out["silencing"] = silencing(posts)
            toxic = posts.query("truth == 1")
            if len(toxic):
                out["toxic_left_up"] = float(1 - toxic["decision"].mean())
            if self.bandit is not None:
                out.update(self.measure_adaptive(posts))
        if self.done():
            out.update(self.bias())
        return out

    def _posts_per_user(self) -> dict[str, float]:
        """Posts this step per user of each group (users who left count as silent)."""
        posts = self.step_decisions()
        sizes = self.population()["group"].value_counts()
        counts = posts["group"].value_counts() if len(posts) else pd.Series(dtype=float)
        out = {g: float(counts.get(g, 0)) / n for g, n in sizes.items()}
        out[""] = len(posts) / max(1, int(sizes.sum()))
        return out

    def _participation_ratio(self) -> float:
        """Mean participation of the history's target groups over that of the others."""
        rates = group_means(self.population(), "participation", ("group",), overall=True)
        targets = [g for g in self.groups if g in self.params.history_targets]
        others = [g for g in self.groups if g not in self.params.history_targets]
        mine = np.mean([rates.get(g, np.nan) for g in targets]) if targets else np.nan
        rest = np.mean([rates.get(g, np.nan) for g in others])
        return float(mine / rest) if rest > 0 else float("nan")
