"""Parameters of the content-moderation world: the reference test of a moderator on
the template test set, and the platform over time. Both share the "historical
moderation" set adapted heads are trained on."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from uim_sim.schema import Probability, Strict
from uim_sim.vocab.identity import ModerationGroup


class ModerationParams(Strict):
    """The historical moderation decisions adapted heads learn from: a card's
    ``history_bias`` is the log-odds by which texts naming ``history_targets`` are
    toxic above the rest. ``background_share`` is the share of users (and history
    comments) that name no identity; the other groups share the rest equally."""

    n_history: Annotated[int, Field(ge=40)] = 2000
    history_toxic_share: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.3
    history_targets: list[ModerationGroup] = [
        "gay", "lesbian", "muslim", "jewish", "black", "dialect"
    ]  # fmt: skip
    background_share: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.4

    @model_validator(mode="after")
    def _targets_once(self) -> ModerationParams:
        if len(set(self.history_targets)) != len(self.history_targets):
            raise ValueError(f"history_targets repeat a group: {self.history_targets}")
        return self


class ReferenceParams(ModerationParams):
    """Score the full template test set once (Dixon et al. 2018)."""

    mode: Literal["reference"] = "reference"


class PlatformParams(ModerationParams):
    """A platform over ``n_steps``: users post, moderators remove, users appeal, are
    chilled, or leave."""

    mode: Literal["world"] = "world"
    # users
    n_users: Annotated[int, Field(ge=10)] = 2000
    toxic_user_share: Probability = 0.15
    toxic_post_prob: Probability = 0.6
    post_prob: Probability = 0.5
    # platform
    n_steps: Annotated[int, Field(ge=1)] = 30
    n_moderators: Annotated[int, Field(ge=1)] = 5
    appeal_prob: Probability = 0.5
    appeal_prob_toxic: Probability = 0.1
    appeal_capacity: Annotated[int, Field(ge=0)] = 20
    # how users react
    chilling: Probability = 0.3
    leave_prob: Probability = 0.05
    feed_size: Annotated[int, Field(ge=0)] = 10
    exposure_harm: Probability = 0.01
    targeted_harm: Probability = 0.05
