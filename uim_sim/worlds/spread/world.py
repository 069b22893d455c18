"""What the spread platform and its reference cascade share: the users' network,
built from the parameters (or read from graph files, or given as a `Network`), and
each user's community."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from uim_sim.cards import AgentCard, DecisionSpec, HeadSpec
from uim_sim.vocab.news import COMMUNITIES
from uim_sim.worlds.base import ScreeningWorld
from uim_sim.worlds.spread.graphfile import read_graph
from uim_sim.worlds.spread.network import (
    Network,
    barabasi_albert,
    clustered_block,
    network_statistics,
    stochastic_block,
    watts_strogatz,
)
from uim_sim.worlds.spread.params import GIVEN_NETWORK
from uim_sim.worlds.watch import View

CREDIBLE = "A credible news report, confirmed by official sources and reporters."
DUBIOUS = "An anonymous rumor, shared in a viral post without any source."
ZERO_SHOT = AgentCard(
    name="minilm_credibility_zero_shot",
    head=HeadSpec(kind="zero_shot_contrast", positive=[CREDIBLE], negative=[DUBIOUS]),
    decision=DecisionSpec(rule="top_share", share=0.7),
)


def build_network(params, rng: np.random.Generator, given: Network | None = None) -> Network:
    """The users' graph of ``params`` (a `NetworkParams`), with communities: ``given``
    or a graph file as it is where it names its communities (a file's labels named by
    ``communities``); a file without labels, its users' communities drawn."""
    shares = np.asarray(params.community_shares, dtype=float)
    if given is not None or params.graph == "file":
        network = given if given is not None else read_graph(params.graph_files())
        if network.names is not None:
            mapping = params.communities if given is None else None
            return network.relabel(mapping) if mapping else network
        n = network.n_users
        community = rng.choice(len(shares), size=n, p=shares / shares.sum())
        return Network(network.adjacency, community.astype(np.int16))
    n = params.n_users
    if params.graph in ("block", "clustered"):
        sizes = np.floor(shares * n).astype(int)
        sizes[-1] = n - sizes[:-1].sum()
        if params.graph == "clustered":
            return clustered_block(sizes.tolist(), params.mean_degree, params.homophily,
                                   params.clustering, rng, tail=params.degree_tail)  # fmt: skip
        k = len(sizes)
        within = params.mean_degree * (params.homophily if k > 1 else 1.0)
        p_in = min(1.0, within / max(1, int(sizes.mean()) - 1))
        p_out = min(1.0, params.mean_degree * (1 - params.homophily) / max(1, n - n / k))
        return stochastic_block(sizes.tolist(), p_in, p_out if k > 1 else 0.0, rng)
    community = rng.choice(len(shares), size=n, p=shares / shares.sum()).astype(np.int16)
    if params.graph == "barabasi_albert":
        return barabasi_albert(n, max(1, round(params.mean_degree / 2)), rng, community)
    k = max(2, 2 * round(params.mean_degree / 2))
    return watts_strogatz(n, k, params.rewiring, rng, community)


def describe(params, seed: int) -> dict[str, float]:
    """The network a spec's parameters build (one draw, from ``seed``): the statistics
    to hold against a real graph (`network_statistics`); nothing in reference mode
    without a network."""
    if not hasattr(params, "graph"):
        return {}
    stats = network_statistics(build_network(params, np.random.default_rng(seed)))
    return {k: stats[k] for k in ("clustering", "mean_degree", "degree_gini", "homophily")}


class SpreadWorld(ScreeningWorld):
    """Base of `SpreadPlatform` and `SpreadReference`: the network is built in
    ``setup`` from the population stream, or given: ``network=`` a `Network` (e.g.
    ``Network.from_networkx(g, "community")``), whose communities, where it names
    them, are the world's (``disadvantaged`` one of them); the generators' fields are
    then refused. ``communities``: the world's community names, in code order."""

    default_card = ZERO_SHOT
    view_size: ClassVar[int] = 300  # users drawn in the page's network view

    def __init__(self, *, network: Network | None = None, **keywords: Any) -> None:
        if network is not None and not isinstance(network, Network):
            raise TypeError(f"network: a spread Network, not {type(network).__name__} "
                            "(Network.from_networkx converts a networkx graph)")  # fmt: skip
        self.given_network = network
        token = GIVEN_NETWORK.set(network)  # the parameters are validated against it
        try:
            super().__init__(**keywords)
        finally:
            GIVEN_NETWORK.reset(token)

    def exposure_states(self, users: np.ndarray) -> list[str]:
        """What each of ``users`` has been reached by, for the page's network view."""
        raise NotImplementedError

    def view(self) -> View:
        """A snowball sample of the network (laid out once), coloured by exposure."""
        if getattr(self, "_drawn", None) is None:
            import networkx as nx

            nodes, pairs = self.network.snowball(
                self.view_size, np.random.default_rng([self.seed, 9])
            )
            graph = nx.Graph()
            graph.add_nodes_from(range(len(nodes)))
            graph.add_edges_from(map(tuple, pairs))
            layout = nx.spring_layout(graph, seed=int(self.seed % 2**32), iterations=40)
            self._drawn = nodes, pairs, np.array([layout[i] for i in range(len(nodes))])
        nodes, pairs, xy = self._drawn
        frame = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "user": nodes,
                              "group": np.asarray(self.communities)[self.community[nodes]],
                              "state": self.exposure_states(nodes)})  # fmt: skip
        edges = pd.DataFrame({"x": xy[pairs[:, 0], 0], "y": xy[pairs[:, 0], 1],
                              "x2": xy[pairs[:, 1], 0], "y2": xy[pairs[:, 1], 1]})  # fmt: skip
        note = (f"{len(nodes):,} of {self.n_users:,} users (a snowball sample) and the "
                f"{len(pairs):,} links among them")  # fmt: skip
        return View("The network: who has seen what", "network", frame, edges, note)

    def _network(self) -> None:
        self.network = build_network(self.params, self.population_rng, self.given_network)
        self.adjacency = self.network.adjacency
        self.community = self.network.community
        self.n_users = self.network.n_users
        self.communities = self.network.names or COMMUNITIES
