"""The clustered block model (friend circles, hubs, communities) and the network
statistics: the clustering coefficient against networkx's, the generator's
clustering, degree tail, mean degree and homophily in stated ranges and beside
networkx's Holme–Kim graph (``powerlaw_cluster_graph``)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from uim_sim.worlds.spread import SpreadReference
from uim_sim.worlds.spread.network import (
    Network,
    NetworkError,
    clustered_block,
    clustering,
    local_clustering,
    network_statistics,
    stochastic_block,
    watts_strogatz,
)
from uim_sim.worlds.spread.params import CascadeParams, PlatformParams
from uim_sim.worlds.spread.world import build_network


def _graphs():
    rng = np.random.default_rng
    return [
        clustered_block([300, 200], 12, 0.8, 0.5, rng(0)),
        watts_strogatz(400, 8, 0.2, rng(1)),
        Network.from_networkx(nx.powerlaw_cluster_graph(500, 4, 0.7, seed=2)),
        Network.from_networkx(nx.karate_club_graph()),
    ]


@pytest.mark.parametrize("index", range(4))
def test_clustering_equals_networkx(index):
    network = _graphs()[index]
    graph = network.to_networkx()
    theirs = nx.clustering(graph)
    ours = local_clustering(network)
    assert np.abs(ours - np.array([theirs[i] for i in range(network.n_users)])).max() < 1e-9
    assert abs(clustering(network) - nx.average_clustering(graph)) < 1e-9
    some = np.array([3, 0, 17, 3])
    assert np.allclose(local_clustering(network, some), [theirs[i] for i in some.tolist()])


def test_sampled_clustering_is_close_and_repeatable():
    network = clustered_block([3000, 3000], 20, 0.9, 0.4, np.random.default_rng(4))
    exact = clustering(network, sample=None)
    sampled = clustering(network, sample=2000)
    assert abs(sampled - exact) < 0.03
    assert sampled == clustering(network, sample=2000)


def _tail(degrees: np.ndarray) -> float:
    return float(np.quantile(degrees, 0.99) / degrees.mean())


def test_clustered_block_has_clustering_tails_degree_and_homophily():
    network = clustered_block([1000, 1000], 20, 0.9, 0.6, np.random.default_rng(5))
    stats = network_statistics(network)
    assert 0.52 < stats["clustering"] < 0.68
    assert abs(stats["mean_degree"] - 20) < 0.4
    assert abs(stats["homophily"] - 0.9) < 0.03
    assert stats["degree_gini"] > 0.3 and _tail(network.degrees()) > 3.5
    assert stats["max_degree"] > 8 * stats["mean_degree"]
    # the block model of the same size, degree and homophily: no clustering, no tail
    block = stochastic_block([1000, 1000], 18 / 999, 2 / 1000, np.random.default_rng(5))
    plain = network_statistics(block)
    assert plain["clustering"] < 0.03 and plain["degree_gini"] < 0.15
    assert _tail(block.degrees()) < 1.8
    # Holme–Kim at the same size and degree: clustered, heavy-tailed, less clustered
    # than ours (its triads cannot reach 0.6 at this degree), a tail of the same order
    holme_kim = Network.from_networkx(nx.powerlaw_cluster_graph(2000, 10, 1.0, seed=5))
    theirs = network_statistics(holme_kim)
    assert 0.25 < theirs["clustering"] < stats["clustering"] - 0.15
    assert 0.5 < _tail(network.degrees()) / _tail(holme_kim.degrees()) < 2
    assert 0.33 < stats["max_degree"] / theirs["max_degree"] < 3


def test_clustering_is_tunable_and_zero_leaves_hubs():
    measured = []
    for target in (0.0, 0.2, 0.4, 0.6):
        network = clustered_block([1500, 1500], 20, 0.9, target, np.random.default_rng(6))
        measured.append(clustering(network))
        assert abs(measured[-1] - target) < 0.06, (target, measured[-1])
        assert abs(network.degrees().mean() - 20) < 0.4
        assert _tail(network.degrees()) > 3.5  # hubs whatever the clustering
    assert np.all(np.diff(measured) > 0.1)
    # mean degree 44 as ego-Facebook's: clustering 0.6 within reach
    facebook = clustered_block([2019, 2020], 44, 0.9, 0.6, np.random.default_rng(7))
    assert abs(clustering(facebook) - 0.6) < 0.05
    assert abs(facebook.degrees().mean() - 44) < 0.9


def test_homophily_and_tail_follow_their_parameters():
    mixed = network_statistics(
        clustered_block([1000, 1000], 20, 0.5, 0.5, np.random.default_rng(8))
    )
    assert abs(mixed["homophily"] - 0.5) < 0.03
    uneven = clustered_block([600, 1400], 20, 0.8, 0.5, np.random.default_rng(8))
    assert abs(network_statistics(uneven)["homophily"] - 0.8) < 0.05
    assert np.array_equal(np.bincount(uneven.community), [600, 1400])
    light = clustered_block([1000, 1000], 20, 0.9, 0.5, np.random.default_rng(8), tail=8.0)
    heavy = clustered_block([1000, 1000], 20, 0.9, 0.5, np.random.default_rng(8), tail=1.5)
    assert _tail(light.degrees()) < 3 < 4 < _tail(heavy.degrees())
    with pytest.raises(NetworkError, match="tail exponent above 1"):
        clustered_block([10, 10], 4, 0.9, 0.5, np.random.default_rng(0), tail=1.0)


def test_clustered_block_is_deterministic_and_a_simple_graph():
    a = clustered_block([700, 500], 15, 0.9, 0.6, np.random.default_rng(9))
    b = clustered_block([700, 500], 15, 0.9, 0.6, np.random.default_rng(9))
    c = clustered_block([700, 500], 15, 0.9, 0.6, np.random.default_rng(10))
    assert (a.adjacency != b.adjacency).nnz == 0 and np.array_equal(a.community, b.community)
    assert (a.adjacency != c.adjacency).nnz > 0
    assert (a.adjacency != a.adjacency.T).nnz == 0 and a.adjacency.diagonal().sum() == 0
    assert a.adjacency.indices.dtype == np.int32


def test_the_world_builds_it_and_old_specs_keep_their_record():
    params = PlatformParams(n_users=2000, graph="clustered", clustering=0.5, mean_degree=12)
    network = build_network(params, np.random.default_rng(0))
    assert network.n_users == 2000 and np.array_equal(np.bincount(network.community), [1000, 1000])
    assert 0.44 < clustering(network) < 0.58
    # the new parameters are recorded only where they act: run ids of other graphs stay
    assert {"clustering", "degree_tail"} <= params.model_dump().keys()
    for other in (PlatformParams(), CascadeParams(graph="watts_strogatz")):
        assert not {"clustering", "degree_tail"} & other.model_dump(mode="json").keys()
    # ... and refused where they do not act (issue 27: no silent fields)
    with pytest.raises(ValueError, match="clustering: acts with graph: clustered only"):
        CascadeParams(graph="watts_strogatz", clustering=0.2)
    assert PlatformParams(**params.model_dump()) == params
    with pytest.raises(ValueError, match="degree_tail"):
        PlatformParams(graph="clustered", degree_tail=1.0)
    world = SpreadReference(n_users=3000, graph="clustered", n_cascades=10, probability=0.08,
                            rng=1).simulate()  # fmt: skip
    assert not world.running and (world.cascades()["size"] >= 1).all()
