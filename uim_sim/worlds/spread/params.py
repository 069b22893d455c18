"""Parameters of the information-spread world: the users' network (shared by both
modes), the reference cascade, and the platform."""

from __future__ import annotations

from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_serializer, model_validator

from uim_sim.schema import GIVEN, Meaningless, Probability, Strict, Trigger
from uim_sim.vocab.news import COMMUNITIES
from uim_sim.worlds.adapt import AdaptiveParams, drop_adaptive
from uim_sim.worlds.spread.graphfile import GraphFiles, check_graph
from uim_sim.worlds.spread.network import Network, community_names

# memory estimates (`memory_estimate`), measured (benchmarks/README.md: 10 million users
# of mean degree 20 peak at 3.9 GiB)
EDGE_BYTES = 40  # an undirected edge while the CSR is built
USER_BYTES = 150  # a user's rows in every per-user array
# (the clustered block model's graph peaks near the block model's: 0.85 GiB against
# 0.89 at a million users of mean degree 20, 3.85 against 3.61 at ten million)
CLUSTERED_FIELDS = ("clustering", "degree_tail")
# what only a generated graph reads (refused with a graph file or a given network)
GENERATOR_FIELDS = ("n_users", "mean_degree", "homophily", "rewiring", *CLUSTERED_FIELDS)
# what only a graph file reads (left out of the record unset: run ids unchanged)
LABEL_FIELDS = ("node_file", "label_column", "communities")
GENERATED = ("block", "clustered", "barabasi_albert", "watts_strogatz")  # graphs drawn
# the network a world was given (`SpreadWorld(network=...)`) while its parameters are
# validated: the graph and its communities are that network's
GIVEN_NETWORK: ContextVar[Network | None] = ContextVar("GIVEN_NETWORK", default=None)


class NetworkParams(Strict):
    """Who follows whom. ``graph``: a stochastic ``block`` model (one block per
    community; ``homophily`` is the expected share of a user's ties inside their own
    community: echo chambers as it nears 1), a ``clustered`` block model (friend
    circles and hubs: average local clustering coefficient ``clustering``, degrees
    with a tail P(degree > k) ~ k^-``degree_tail``, and ``homophily``),
    ``barabasi_albert`` (preferential attachment), ``watts_strogatz`` (a rewired
    ring), or an edge-list ``file`` (`uim_sim.worlds.spread.graphfile`: ``edge_file``,
    its nodes' community labels in ``node_file`` and/or ``label_column``, named by
    ``communities``, a mapping from each label to a community's name, or as they
    are). ``community_shares``: the share of users in each community (``riverside``,
    ``hillcrest``); outside the block models, and in a file without labels, users are
    assigned at random. A generator's fields (``n_users``, ``mean_degree``, …) are
    refused with a file (its graph has its own), and one generator's with another
    (``meaningless``)."""

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
    node_file: Path | None = None
    label_column: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    communities: dict[str, str] | None = None  # a file's label → a community's name
    _given: Network | None = PrivateAttr(default=None)  # the network a world was given

    # fields a graph design makes meaningless, refused in one line (`Meaningless`)
    meaningless = (
        Meaningless(GENERATOR_FIELDS, {"graph": "file", "edge_file": GIVEN},
                    "a graph file has its own users and ties; {field} acts on generated "
                    "graphs only (drop it)"),
        Meaningless(("edge_file",), {"graph": GENERATED},
                    "only with graph: file (a generated graph is drawn, not read)"),
        Meaningless(LABEL_FIELDS, {"graph": GENERATED},
                    "only with graph: file (a generated graph's communities are drawn by "
                    "community_shares)"),
        Meaningless(CLUSTERED_FIELDS, {"graph": ("block", "barabasi_albert", "watts_strogatz")},
                    "acts with graph: clustered only (drop it)"),
        Meaningless(("homophily",), {"graph": ("barabasi_albert", "watts_strogatz")},
                    "acts with the block models only (graph: block or clustered); drop it"),
        Meaningless(("rewiring",), {"graph": ("block", "clustered", "barabasi_albert")},
                    "acts with graph: watts_strogatz only (drop it)"),
    )  # fmt: skip

    @field_validator("communities", mode="before")
    @classmethod
    def _labels_are_text(cls, value: Any) -> Any:
        """Labels as the file holds them, text: YAML reads ``{0: web}``'s key as 0."""
        if isinstance(value, dict):
            return {str(k): v for k, v in value.items()}
        return value

    @model_serializer(mode="wrap")
    def _dump(self, handler) -> dict[str, Any]:
        """Parameters added after results were published are left out where they do
        not act (another ``graph``), so a spec that does not use them keeps its run
        ids and ``runs.parquet``; with a graph file, so are the generators' (refused
        there: a dump read back is valid) and, where its labels make the
        communities, ``community_shares``."""
        data = handler(self)
        if self.graph != "clustered":
            for key in CLUSTERED_FIELDS:
                data.pop(key, None)
        if self.graph == "file":
            for key in GENERATOR_FIELDS:
                data.pop(key, None)
        if self.own_communities():
            data.pop("community_shares", None)
        for key in (*LABEL_FIELDS, "neutral_reference"):
            if getattr(self, key, None) is None:
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
        self._given = given = GIVEN_NETWORK.get()
        if self.own_communities() and "community_shares" in self.model_fields_set:
            raise ValueError("community_shares: the graph's labels are its communities; drop "
                             "community_shares")  # fmt: skip
        if len(self.community_shares) > len(COMMUNITIES):
            raise ValueError(f"community_shares: at most {len(COMMUNITIES)} communities")
        if abs(sum(self.community_shares) - 1.0) > 1e-6:
            raise ValueError(
                f"community_shares must sum to 1 (they sum to {sum(self.community_shares)})"
            )
        if given is not None:
            for key in (*GENERATOR_FIELDS, "graph", "edge_file", *LABEL_FIELDS):
                if key in self.model_fields_set:
                    raise ValueError(f"{key}: the network given (network=...) is the graph; "
                                     f"drop {key}")  # fmt: skip
            if given.names is not None:
                community_names(given.names, None, "network")
            return self
        if (self.graph == "file") != (self.edge_file is not None):
            raise ValueError("graph: file goes with edge_file: PATH (and edge_file only with it)")
        if self.graph != "file":
            if self.mean_degree >= self.n_users:
                raise ValueError(f"mean_degree ({self.mean_degree}) must be below n_users")
            return self
        files = self.graph_files()
        if self.communities is not None and not files.labelled:
            raise ValueError("communities: names the labels of a node_file or label_column; "
                             "give one")  # fmt: skip
        # a bad line, label or name is named before anything runs
        _, labels = check_graph(files)
        if labels is not None:
            community_names(labels, self.communities)
        return self

    def graph_files(self) -> GraphFiles:
        """The graph files a ``graph: file`` names."""
        return GraphFiles(self.edge_file, self.node_file, self.label_column)

    def own_communities(self) -> bool:
        """Are the communities the graph's own (a given network's names, a graph
        file's labels), not drawn or generated?"""
        if self._given is not None:
            return self._given.names is not None
        return self.graph == "file" and self.graph_files().labelled

    def community_names(self) -> tuple[str, ...]:
        """The world's communities, in code order: a given network's or a graph
        file's labels (named by ``communities``), else ``riverside``, ``hillcrest``."""
        if self._given is not None:
            return self._given.names or COMMUNITIES
        if self.own_communities():
            _, labels = check_graph(self.graph_files())
            return community_names(labels, self.communities)
        return COMMUNITIES

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
    other community (the counterfactual of "the same items in the other style").

    ``neutral_reference``: every item spreads a second time under a ranker blind to
    it, on the same graph from the same poster, and the world reports each
    community's network position and the ranker's effect beside it (default: where
    the communities are the graph's own labels)."""

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
    disadvantaged: Annotated[str, Field(min_length=1, max_length=40)] = "hillcrest"
    edits: list[Edit] = ["restyle", "credible_cue"]
    adaptive_accounts: Annotated[int, Field(ge=1, le=100_000)] = 20
    trigger: Trigger = "cf"

    # the same items spread again under a ranker blind to them, on the same graph and
    # posts (None: where the communities are the graph's own labels)
    neutral_reference: bool | None = None

    @model_validator(mode="after")
    def _a_community(self) -> PlatformParams:
        names = self.community_names()
        if self.disadvantaged not in names:
            raise ValueError(f"disadvantaged: {self.disadvantaged!r} is not a community of "
                             f"the graph ({', '.join(names)})")  # fmt: skip
        return self

    def neutral(self) -> bool:
        """Does the world spread its items under a neutral ranker too?"""
        if self.neutral_reference is not None:
            return self.neutral_reference
        return self.own_communities()

    def memory_estimate(self) -> tuple[float, str]:
        """The network's, the items' and the history's."""
        need, what = super().memory_estimate()
        items = self.n_steps * self.items_per_step
        need += items * 1024 + self.n_history * 4096
        if self.neutral():  # each live item's exposure again, under the neutral ranker
            users = check_graph(self.graph_files())[0] if self.graph == "file" else self.n_users
            need += self.items_per_step * self.lifetime * users
        return need, f"{what}, {items:,} items"
