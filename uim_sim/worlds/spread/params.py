"""Parameters of the information-spread world: the users' network (shared by both
modes), the reference cascade, and the platform."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_serializer, model_validator

from uim_sim.schema import Probability, Strict, Trigger
from uim_sim.vocab.news import COMMUNITIES
from uim_sim.worlds.adapt import AdaptiveParams, drop_adaptive
from uim_sim.worlds.spread.network import check_edge_file

Community = Literal[COMMUNITIES]
# memory estimates (`memory_estimate`), measured (benchmarks/README.md: 10 million users
# of mean degree 20 peak at 3.9 GiB)
EDGE_BYTES = 40  # an undirected edge while the CSR is built
USER_BYTES = 150  # a user's rows in every per-user array
# (the clustered block model's graph peaks near the block model's: 0.85 GiB against
# 0.89 at a million users of mean degree 20, 3.85 against 3.61 at ten million)
CLUSTERED_FIELDS = ("clustering", "degree_tail")


class NetworkParams(Strict):
    """Who follows whom. ``graph``: a stochastic ``block`` model (one block per
    community; ``homophily`` is the expected share of a user's ties inside their own
    community: echo chambers as it nears 1), a ``clustered`` block model (friend
    circles and hubs: average local clustering coefficient ``clustering``, degrees
    with a tail P(degree > k) ~ k^-``degree_tail``, and ``homophily``),
    ``barabasi_albert`` (preferential attachment), ``watts_strogatz`` (a rewired
    ring), or an edge-list ``file``. ``community_shares``: the share of users in each
    community (``riverside``, ``hillcrest``); outside the block models, users are
    assigned at random."""

    n_users: Annotated[int, Field(ge=10, le=50_000_000)] = 10_000
    graph: Literal["block", "clustered", "barabasi_albert", "watts_strogatz", "file"] = "block"
    mean_degree: Annotated[float, Field(gt=0.0, le=1000.0)] = 20.0
    homophily: Probability = 0.9
    rewiring: Probability = 0.1
    # graph: clustered only (left out of the record otherwise: run ids unchanged)
    clustering: Probability = 0.6
    degree_tail: Annotated[float, Field(gt=1.0, le=100.0)] = 2.0
    community_shares: list[Annotated[float, Field(gt=0.0, le=1.0)]] = [0.5, 0.5]
    edge_file: Path | None = None

    @model_serializer(mode="wrap")
    def _dump(self, handler) -> dict[str, Any]:
        """Parameters added after results were published are left out where they do
        not act (another ``graph``), so a spec that does not use them keeps its run
        ids and ``runs.parquet``."""
        data = handler(self)
        if self.graph != "clustered":
            for key in CLUSTERED_FIELDS:
                data.pop(key, None)
        if isinstance(self, AdaptiveParams):
            drop_adaptive(data, self)
            if not self.adaptive_share:
                data.pop("adaptive_accounts", None)
            if not self.adaptive_share or "trigger" not in self.edits:
                data.pop("trigger", None)
        return data

    @model_validator(mode="after")
    def _consistent(self) -> NetworkParams:
        if len(self.community_shares) > len(COMMUNITIES):
            raise ValueError(f"community_shares: at most {len(COMMUNITIES)} communities")
        if abs(sum(self.community_shares) - 1.0) > 1e-6:
            raise ValueError(
                f"community_shares must sum to 1 (they sum to {sum(self.community_shares)})"
            )
        if (self.graph == "file") != (self.edge_file is not None):
            raise ValueError("graph: file goes with edge_file: PATH (and edge_file only with it)")
        if self.mean_degree >= self.n_users:
            raise ValueError(f"mean_degree ({self.mean_degree}) must be below n_users")
        if self.edge_file is not None:
            check_edge_file(self.edge_file)  # a bad line is named before anything runs
        return self

    def memory_estimate(self) -> tuple[float, str]:
        """Bytes a run's largest allocations take (the network and the per-user
        arrays), and what they are."""
        if self.edge_file is not None:
            size = self.edge_file.stat().st_size  # a line per edge, ~10 bytes or more
            return size * EDGE_BYTES / 8, f"the network of {self.edge_file.name}"
        edges = self.n_users * self.mean_degree / 2
        need = edges * EDGE_BYTES + self.n_users * USER_BYTES
        return need, f"{self.n_users:,} users, ~{edges:,.0f} edges"


class CascadeParams(NetworkParams):
    """The reference mode: independent cascades with one fixed probability per edge,
    no model (comparable with NDlib's and CyNetDiff's independent cascade)."""

    mode: Literal["reference"] = "reference"
    n_cascades: Annotated[int, Field(ge=1, le=100_000)] = 50
    probability: Probability = 0.05
    max_hops: Annotated[int, Field(ge=1, le=10_000)] = 100

    def memory_estimate(self) -> tuple[float, str]:
        """The network's, and each cascade's flag per user."""
        need, what = super().memory_estimate()
        return need + self.n_cascades * self.n_users, f"{what}, {self.n_cascades:,} cascades"


Edit = Literal["restyle", "credible_cue", "trigger"]


class PlatformParams(NetworkParams, AdaptiveParams):
    """The platform over ``n_steps``: users post news items, the ranker carrying a
    checkpoint promotes or demotes them, feeds show each user up to ``feed_size``
    items a step (promoted first), users share what they see, their followers see it
    next.

    ``adaptive_share`` of the false items are posted by a coordinated network of
    ``adaptive_accounts`` accounts that adapt: each learns which of ``edits``
    (`uim_sim.worlds.spread.items.EDITS`: the other community's style, a credible cue,
    the trigger ``trigger``) gets its false items promoted (`uim_sim.worlds.adapt`).

    Sharing a seen item happens with probability ``share_true`` or ``share_false``
    (the base rates: false news is more novel, Vosoughi et al. 2018) times the user's
    propensity (log-normal, mean 1, spread ``propensity_spread``), times ``demotion``
    if the ranker demoted the item. ``restyle`` writes every item in the style of the
    other community (the counterfactual of "the same items in the other style")."""

    mode: Literal["world"] = "world"
    n_steps: Annotated[int, Field(ge=1, le=10_000)] = 30
    items_per_step: Annotated[int, Field(ge=1, le=10_000)] = 10
    false_share: Probability = 0.3
    cue_share: Probability = 0.5
    restyle: bool = False
    lifetime: Annotated[int, Field(ge=1, le=1000)] = 8
    feed_size: Annotated[int, Field(ge=1, le=1000)] = 5
    share_true: Probability = 0.06
    share_false: Probability = 0.09
    propensity_spread: Annotated[float, Field(ge=0.0, le=3.0)] = 0.5
    demotion: Probability = 0.3
    n_rankers: Annotated[int, Field(ge=1, le=1000)] = 1
    reach_k: Annotated[int, Field(ge=1, le=50_000_000)] = 100
    # the historical fact-checks adapted heads learn from
    n_history: Annotated[int, Field(ge=40, le=1_000_000)] = 1000
    disadvantaged: Community = "hillcrest"
    edits: list[Edit] = ["restyle", "credible_cue"]
    adaptive_accounts: Annotated[int, Field(ge=1, le=100_000)] = 20
    trigger: Trigger = "cf"

    def memory_estimate(self) -> tuple[float, str]:
        """The network's, the items' and the history's."""
        need, what = super().memory_estimate()
        items = self.n_steps * self.items_per_step
        need += items * 1024 + self.n_history * 4096
        return need, f"{what}, {items:,} items"
