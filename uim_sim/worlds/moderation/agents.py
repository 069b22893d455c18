"""Agents of the moderation world: users, moderators and the appeals reviewer."""

from __future__ import annotations

from collections import deque

import mesa

from uim_sim.worlds.screening import Decider


class User(mesa.Agent):
    """A member of the platform: an identity group, a habit of posting, a temper.

    Benign posts speak of the user's own group ("I am a Muslim, ask me anything"); a
    toxic user's posts are toxic with some probability. How the user is treated
    changes how often they post: a benign post removed chills (the posting probability
    falls by ``chilling``, and the user may leave), a reinstatement on appeal undoes
    the chill, and every toxic post the user reads lowers it a little, more if it
    names the user's own group.
    """

    def __init__(self, model, group: str, toxic: bool, post_prob: float) -> None:
        super().__init__(model)
        self.group = group
        self.toxic = toxic
        self.post_prob = post_prob
        self.start_prob = post_prob
        self.active = True
        self.toxic_seen = 0  # toxic posts read in the last step
        self.learner = -1  # a toxic user who adapts: its row in the world's bandit

    def post(self, post_draw: float, toxic_draw: float) -> bool | None:
        """Whether the user posts this step (None: silent) and, if so, whether the post
        is toxic; the draws come from the world's decision stream."""
        if not (self.active and post_draw < self.post_prob):
            return None
        return self.toxic and toxic_draw < self.model.params.toxic_post_prob

    def benign_post_removed(self, chilling: float, leave_prob: float, draw: float) -> None:
        self.post_prob *= 1 - chilling
        if draw < leave_prob:
            self.active = False

    def reinstated(self, chilling: float) -> None:
        if chilling < 1:
            self.post_prob = min(self.start_prob, self.post_prob / (1 - chilling))

    def read(self, toxic_seen: int, targeted_seen: int, harm: float, targeted_harm: float):
        self.post_prob *= (1 - harm) ** toxic_seen * (1 - targeted_harm) ** targeted_seen


class Moderator(Decider):
    """Removes posts from its queue (``decide``: removal decisions through the world's
    decision stage) with the screener (checkpoint + head) it carries."""


class Reviewer(mesa.Agent):
    """A human who handles appeals first come, first served, up to ``capacity`` a step,
    and reinstates benign posts. Appeals beyond capacity wait in the backlog."""

    def __init__(self, model, capacity: int) -> None:
        super().__init__(model)
        self.capacity = capacity
        self.backlog: deque[int] = deque()

    def file(self, rows: list[int]) -> None:
        self.backlog.extend(rows)

    def work(self) -> list[int]:
        """The decision rows reviewed this step."""
        n = min(self.capacity, len(self.backlog))
        return [self.backlog.popleft() for _ in range(n)]
