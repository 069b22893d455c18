"""Users' social graphs: built by vectorised generators, read from graph files
(`uim_sim.worlds.spread.graphfile`), or taken from any `networkx` graph, and held as a
`scipy.sparse` CSR adjacency (int32 indices) with a community per user (and, where
the communities are the graph's own, their names). The dynamics never touch networkx
objects.

At a million users networkx's own generators are too slow (a 100,000-node stochastic
block model took 311 s here), so the generators draw edges with numpy:

- `stochastic_block`: per pair of blocks, the number of edges is binomial over the
  possible pairs, and that many distinct pairs are drawn uniformly: the same
  distribution as networkx's ``stochastic_block_model`` (independent edges with the
  block pair's probability).
- `barabasi_albert`: preferential attachment by sampling earlier edge endpoints (a
  node is picked with probability proportional to its degree), in rounds whose
  size grows with the graph, each round attaching to the endpoints that existed
  before it; at small sizes its degree statistics match networkx's
  ``barabasi_albert_graph`` (tested).
- `watts_strogatz`: a ring lattice of ``k`` neighbours, each edge's far end rewired
  with probability ``p`` (self-loops and duplicates dropped, as networkx's
  ``watts_strogatz_graph`` avoids them).
- `clustered_block`: the block model with what real social graphs have and it lacks,
  clustering and hubs: users in friend circles (dense groups; hubs in many) plus a
  degree-corrected block model, its average clustering coefficient set by a
  parameter. Holme and Kim's triad formation (networkx's ``powerlaw_cluster_graph``)
  clusters too little at the degrees of online networks (0.26 at mean degree 44,
  against ego-Facebook's 0.61); clustered households or groups plus a network are the
  epidemic literature's model of clustered contacts (Ball, Sirl & Trapman 2009).

`clustering` (the average local clustering coefficient, as networkx's
``average_clustering``, exact or on a sample of nodes) and `network_statistics` (the
numbers to compare with a real graph) read a `Network`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from uim_sim.schema import UimError


class NetworkError(UimError, ValueError):
    """A graph cannot be built or read; the message names the file and line."""


@dataclass(frozen=True)
class Network:
    """An undirected graph as a symmetric CSR adjacency, and each user's community
    (a code). ``names``: the communities' names, code by code, where the graph has
    its own (a labelled file, a networkx attribute); None where it has none (a
    world then draws its users' communities, or its generator made them)."""

    adjacency: sp.csr_array
    community: np.ndarray
    names: tuple[str, ...] | None = None

    @property
    def n_users(self) -> int:
        return int(self.adjacency.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.adjacency.nnz // 2)

    def degrees(self) -> np.ndarray:
        return np.diff(self.adjacency.indptr)

    def snowball(self, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A connected-looking sample to draw: users reached breadth-first from random
        starts until ``size`` are taken, and the edges among them (pairs of positions
        in the sample). A uniform sample of a large sparse graph would show no edges."""
        indptr, indices = self.adjacency.indptr, self.adjacency.indices
        size = min(size, self.n_users)
        taken: dict[int, None] = {}
        while len(taken) < size:
            frontier = [int(rng.integers(self.n_users))]
            while frontier and len(taken) < size:
                node = frontier.pop(0)
                if node in taken:
                    continue
                taken[node] = None
                frontier += [int(n) for n in indices[indptr[node] : indptr[node + 1]]]
        nodes = np.fromiter(taken, dtype=np.int64)
        sub = self.adjacency[nodes][:, nodes].tocoo()
        upper = sub.row < sub.col
        return nodes, np.column_stack([sub.row[upper], sub.col[upper]])

    @classmethod
    def from_edges(cls, n: int, u: np.ndarray, v: np.ndarray, community: np.ndarray) -> Network:
        """From undirected edge endpoints (self-loops and repeats dropped)."""
        u, v = np.asarray(u, dtype=np.int64), np.asarray(v, dtype=np.int64)
        keep = u != v
        keys = np.minimum(u[keep], v[keep]) * n + np.maximum(u[keep], v[keep])
        return cls.from_keys(n, keys, community)

    @classmethod
    def from_keys(cls, n: int, keys: np.ndarray, community: np.ndarray) -> Network:
        """From edge keys ``lo * n + hi`` (lo < hi; repeats dropped; ``keys`` is sorted
        in place), building the symmetric CSR directly, each row's neighbours ascending,
        in chunks: ten million users need a third of the memory scipy's COO route does."""
        keys.sort()  # grouped by lo, ascending hi within
        repeated = keys[1:] == keys[:-1]
        if repeated.any():
            keys = keys[np.r_[True, ~repeated]]
        del repeated
        index = np.int32 if 2 * len(keys) < np.iinfo(np.int32).max else np.int64
        lo, hi = (keys // n).astype(index), (keys % n).astype(index)
        del keys
        up = np.bincount(lo, minlength=n)  # each node's neighbours above it
        down = np.bincount(hi, minlength=n)  # ... and below it
        indptr = np.zeros(n + 1, dtype=index)
        np.cumsum(up + down, out=indptr[1:])
        indices = np.empty(int(indptr[-1]), dtype=index)
        # a row lists its lower neighbours first, then its higher ones, each ascending:
        # edge (lo, hi) is hi's next lower neighbour and lo's next higher neighbour, in
        # key order; running counters carry the ranks from chunk to chunk
        placed_down = indptr[:-1].astype(np.int64)
        placed_up = placed_down + down
        for start in range(0, len(lo), CHUNK):
            a, b = lo[start : start + CHUNK], hi[start : start + CHUNK]
            indices[placed_up[a] + _rank_within(a)] = b
            placed_up += np.bincount(a, minlength=n)
            indices[placed_down[b] + _rank_within(b)] = a
            placed_down += np.bincount(b, minlength=n)
        del lo, hi, placed_up, placed_down
        data = np.ones(len(indices), dtype=np.bool_)
        adjacency = sp.csr_array((data, indices, indptr), shape=(n, n))
        adjacency.has_sorted_indices = True
        return cls(adjacency, np.asarray(community, dtype=np.int16))

    @classmethod
    def from_networkx(cls, graph, community: str = "community") -> Network:
        """Any `networkx` graph (nodes relabelled 0..n-1 in their order; directions
        and repeated edges dropped). Where nodes have a ``community`` attribute, every
        node must: its value, as text, names its community (``names``, in order of
        first appearance); where none has it, every node is in community 0 and the
        network has no names."""
        nodes = list(graph.nodes)
        index = {node: i for i, node in enumerate(nodes)}
        edges = np.array([(index[a], index[b]) for a, b, *_ in graph.edges], dtype=np.int64)
        edges = edges.reshape(-1, 2)
        labels = [graph.nodes[node].get(community) for node in nodes]
        missing = [node for node, label in zip(nodes, labels) if label is None]
        if len(missing) == len(nodes):
            return cls.from_edges(len(nodes), edges[:, 0], edges[:, 1], np.zeros(len(nodes)))
        if missing:
            raise NetworkError(f"node {missing[0]!r} has no {community!r} attribute "
                               f"({len(missing)} of {len(nodes)} nodes lack one)")  # fmt: skip
        names = tuple(dict.fromkeys(str(label) for label in labels))
        codes = {name: i for i, name in enumerate(names)}
        community = np.array([codes[str(label)] for label in labels])
        network = cls.from_edges(len(nodes), edges[:, 0], edges[:, 1], community)
        return cls(network.adjacency, network.community, names)

    def relabel(self, names: dict[str, str]) -> Network:
        """The same graph with its communities named by ``names`` (each label, a
        file's, to a community's name: `community_names`); labels given one name
        become one community."""
        if self.names is None:
            raise NetworkError("communities: the graph has no community labels to name")
        new = community_names(self.names, names)
        code = np.array([new.index(names[label]) for label in self.names], dtype=np.int16)
        return Network(self.adjacency, code[self.community], new)

    def write(self, edge_file: Path, node_file: Path | None = None) -> None:
        """Write the graph as the files a spec names (``graph: file``): an edge list
        ``source,target`` (nodes numbered 0..n-1, each edge once) and, where the
        network has community names, a node file ``id,community``."""
        coo = sp.triu(self.adjacency, k=1).tocoo()
        with open(edge_file, "w") as fh:
            fh.write("source,target\n")
            fh.writelines(f"{a},{b}\n" for a, b in zip(coo.row.tolist(), coo.col.tolist()))
        if node_file is None:
            return
        if self.names is None:
            raise NetworkError("the network has no community names to write")
        with open(node_file, "w") as fh:
            fh.write("id,community\n")
            fh.writelines(f"{i},{self.names[c]}\n" for i, c in enumerate(self.community))

    def to_networkx(self):
        """The graph as `networkx` (small graphs: analysis and tests); each node's
        ``community`` is its community's name where the network has names, else its
        code."""
        import networkx as nx

        graph = nx.Graph()
        names = self.names
        graph.add_nodes_from(
            (i, {"community": names[c] if names else int(c)}) for i, c in enumerate(self.community)
        )
        coo = sp.triu(self.adjacency, k=1).tocoo()
        graph.add_edges_from(zip(coo.row.tolist(), coo.col.tolist()))
        return graph


COMMUNITY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")
MAX_COMMUNITIES = 10  # a world compares every community with every other


def community_names(
    labels: tuple[str, ...], names: dict[str, str] | None, field: str = "communities"
) -> tuple[str, ...]:
    """The communities a graph's ``labels`` make: the labels as they are, or as
    ``names`` maps them (every label named, only the graph's labels; the communities
    in the order of the mapping's values). A community's name is a word (its items'
    dateline, a metric's group ``true_NAME``); there are 2 to `MAX_COMMUNITIES`.
    ``field``: what a refusal names (``communities`` of a spec, a given ``network``)."""
    how = "communities: {LABEL: NAME, ...}" if field == "communities" else "network.relabel"
    if names is None:
        new = labels
    else:
        unknown = [label for label in names if label not in labels]
        if unknown:
            raise NetworkError(f"{field}: {unknown[0]!r} is not a label of the graph "
                               f"(its labels: {', '.join(labels)})")  # fmt: skip
        unnamed = [label for label in labels if label not in names]
        if unnamed:
            raise NetworkError(f"{field}: the graph's label {unnamed[0]!r} has no name "
                               "(name every label)")  # fmt: skip
        new = tuple(dict.fromkeys(names.values()))
    for name in new:
        if not COMMUNITY_NAME.match(name):
            hint = "" if names else f"; name the labels ({how})"
            raise NetworkError(f"{field}: {name!r} is not a community name (a word of "
                               "letters, digits, _ or -, starting with a letter, at most 40 "
                               f"characters){hint}")  # fmt: skip
    if len(new) < 2:
        raise NetworkError(f"{field}: one community ({new[0]!r}); the world compares "
                           "two or more")  # fmt: skip
    if len(new) > MAX_COMMUNITIES:
        raise NetworkError(f"{field}: {len(new)} communities, more than "
                           f"{MAX_COMMUNITIES}: merge labels ({how})")  # fmt: skip
    return new


CHUNK = 8_000_000  # edges handled at once: bounds the temporaries' memory


def _rank_within(groups: np.ndarray) -> np.ndarray:
    """For each position, how many earlier positions hold the same value (a cumcount)."""
    order = np.argsort(groups, kind="stable")
    ordered = groups[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - start
    return rank


def _sample_distinct(possible: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` distinct integers below ``possible``, uniformly (sorted): draw with
    replacement, drop repeats, draw again for the shortfall (Floyd's ``choice`` keeps a
    hash table of all ``k`` and needs several times the memory)."""
    drawn = np.sort(rng.integers(possible, size=k))
    drawn = drawn[np.r_[True, drawn[1:] != drawn[:-1]]] if k > 1 else drawn
    while len(drawn) < k:
        drawn = np.sort(np.concatenate([drawn, rng.integers(possible, size=k - len(drawn))]))
        drawn = drawn[np.r_[True, drawn[1:] != drawn[:-1]]]
    return drawn


def _upper_pairs(n: int, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear indices of the strict upper triangle of an n × n matrix → (i, j), i < j."""
    index = np.asarray(index, dtype=np.int64)
    i = n - 2 - np.floor(np.sqrt(-8.0 * index + 4.0 * n * (n - 1) - 7) / 2.0 - 0.5).astype(np.int64)
    j = index + i + 1 - n * (n - 1) // 2 + (n - i) * ((n - i) - 1) // 2
    return i, j


def stochastic_block(
    sizes: list[int], p_in: float, p_out: float, rng: np.random.Generator
) -> Network:
    """A stochastic block model: edges inside a block with probability ``p_in``,
    between blocks with ``p_out`` (echo chambers when ``p_in`` dominates)."""
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n = int(starts[-1])
    keys = []  # lo * n + hi of every edge: one int64 per edge while drawing
    for a, na in enumerate(sizes):
        for b in range(a, len(sizes)):
            nb = sizes[b]
            possible = na * (na - 1) // 2 if a == b else na * nb
            p = p_in if a == b else p_out
            k = int(rng.binomial(possible, p)) if possible else 0
            if k == 0:
                continue
            index = _sample_distinct(possible, k, rng)
            block = np.empty(k, dtype=np.int64)
            for lo in range(0, k, CHUNK):  # chunks bound the temporaries
                part = index[lo : lo + CHUNK]
                i, j = _upper_pairs(na, part) if a == b else (part // nb, part % nb)
                block[lo : lo + CHUNK] = (starts[a] + i) * n + (starts[b] + j)  # lo < hi
            keys.append(block)
            del index, block
    community = np.repeat(np.arange(len(sizes)), sizes)
    keys = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)
    return Network.from_keys(n, keys, community)


def barabasi_albert(
    n: int, m: int, rng: np.random.Generator, community: np.ndarray | None = None
) -> Network:
    """Preferential attachment: each new node links to ``m`` earlier nodes picked with
    probability proportional to their degree (by sampling earlier edge endpoints)."""
    if not 1 <= m < n:
        raise NetworkError(f"barabasi_albert needs 1 <= m < n (m={m}, n={n})")
    # the seed: a star of m + 1 nodes, as networkx starts from
    sources = [np.full(m, m, dtype=np.int64)]
    targets = [np.arange(m, dtype=np.int64)]
    endpoints = np.concatenate([sources[0], targets[0]])
    node = m + 1
    while node < n:
        batch = min(n - node, max(1, node // 50))  # rounds grow with the graph
        new = np.repeat(np.arange(node, node + batch, dtype=np.int64), m)
        picks = endpoints[rng.integers(len(endpoints), size=(batch, m))]
        while m > 1:  # m distinct targets per new node: redraw repeats
            picks.sort(axis=1)
            repeat = np.zeros_like(picks, dtype=bool)
            repeat[:, 1:] = picks[:, 1:] == picks[:, :-1]
            if not repeat.any():
                break
            picks[repeat] = endpoints[rng.integers(len(endpoints), size=int(repeat.sum()))]
        picks = picks.ravel()
        sources.append(new)
        targets.append(picks)
        endpoints = np.concatenate([endpoints, new, picks])
        node += batch
    community = np.zeros(n, dtype=np.int16) if community is None else community
    return Network.from_edges(n, np.concatenate(sources), np.concatenate(targets), community)


def watts_strogatz(
    n: int, k: int, p: float, rng: np.random.Generator, community: np.ndarray | None = None
) -> Network:
    """A ring where each node links to its ``k`` nearest neighbours (``k`` even), each
    edge's far end rewired to a uniform node with probability ``p``."""
    if k % 2 or not 0 < k < n:
        raise NetworkError(f"watts_strogatz needs an even k with 0 < k < n (k={k}, n={n})")
    u = np.repeat(np.arange(n, dtype=np.int64), k // 2)
    v = (u + np.tile(np.arange(1, k // 2 + 1), n)) % n
    rewire = rng.random(len(v)) < p
    v = np.where(rewire, rng.integers(n, size=len(v)), v)
    community = np.zeros(n, dtype=np.int16) if community is None else community
    return Network.from_edges(n, u, v, community)


# ---------------------------------------------------------------- clustered networks

CIRCLE_TIES = 0.9  # the probability that two members of one circle are linked
MOST_IN_CIRCLES = 0.9  # at most this share of the mean degree comes from circles
CIRCLE_SPREAD = 2.0  # circle sizes 2 + λ·z, z ~ Gamma(shape 2, mean 1): λ·z's CV 0.71


def clustered_block(
    sizes: list[int],
    mean_degree: float,
    homophily: float,
    clustering: float,
    rng: np.random.Generator,
    tail: float = 2.0,
) -> Network:
    """A block model with circles and hubs: realistic clustering and degree tails.

    Each user has an activity weight ``w`` (Pareto with exponent ``tail``, mean 1) and
    belongs to ``max(1, w rounded at random)`` circles (friend groups: most users one,
    hubs many), cut from a shuffled list of memberships; two members of a circle are
    linked with probability 0.9 (`CIRCLE_TIES`). The rest of the mean degree comes from a
    degree-corrected block model: edge counts as the block model's (``homophily``),
    endpoints picked in proportion to ``w``. A membership joins a circle of its own
    community with the probability that makes the share of circle ties inside a
    community ``homophily`` (as near as circles can: no less than random mixing).

    The circles' mean size is set so that the predicted average local clustering
    coefficient is ``clustering`` (predicted from the drawn circles: each user's
    expected triangles over their expected pairs of neighbours; at most 90 % of the
    degree from circles, `MOST_IN_CIRCLES`, which bounds what can be reached: about
    0.63-0.68 at mean degree 8-44). ``clustering`` 0 gives circles of two: a
    degree-corrected block model with hubs and no clustering. Degrees have a tail like ``w``'s,
    P(degree > k) ~ k^-tail."""
    if tail <= 1:
        raise NetworkError(f"clustered_block needs a degree tail exponent above 1 (tail={tail})")
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n = int(starts[-1])
    if not 0 < mean_degree < n:
        raise NetworkError(f"clustered_block needs 0 < mean_degree < n ({mean_degree}, {n})")
    community = np.repeat(np.arange(len(sizes)), sizes)
    weight = 1.0 + rng.pareto(tail, size=n)
    weight /= weight.mean()
    circles_of = np.maximum(1, np.floor(weight + rng.random(n))).astype(np.int64)
    slot_user = np.repeat(np.arange(n, dtype=np.int64), circles_of)
    home = _circle_homes(community[slot_user], np.asarray(sizes), homophily, rng)
    # each community's circles: its memberships shuffled, cut by sizes 2 + λ·z (the
    # same draws z, u for every λ, so that λ can be solved for on them)
    homes = []
    for a in range(len(sizes)):
        members = slot_user[np.flatnonzero(home == a)]
        members = members[rng.permutation(len(members))]
        count = len(members) // 2 + 1
        spread = rng.gamma(CIRCLE_SPREAD, 1 / CIRCLE_SPREAD, size=count)
        homes.append((members, spread, rng.random(count)))
    scale = _circle_scale(homes, weight, n, mean_degree, clustering)
    keys = []
    in_circles = 0
    for members, spread, jitter in homes:
        size = _cut(len(members), spread, jitter, scale)
        in_circles += int((size * (size - 1)).sum())
        keys.extend(_circle_edges(members, size, n, rng))
    background = max(0.0, mean_degree - CIRCLE_TIES * in_circles / n)
    keys.extend(_weighted_blocks(starts, weight, background, homophily, rng))
    keys = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)
    # repeats (hubs linked twice, a background tie inside a circle) fall short of the
    # mean degree: the background is topped up by what is missing (once at scale)
    for _ in range(5):
        keys.sort(kind="stable")  # sorted runs: merged, not sorted again
        missing = mean_degree - 2 * (len(keys) - int((keys[1:] == keys[:-1]).sum())) / n
        if missing <= 0.01 * mean_degree:
            break
        keys = np.concatenate([keys, *_weighted_blocks(starts, weight, missing, homophily, rng)])
    return Network.from_keys(n, keys, community)


def _circle_homes(
    own: np.ndarray, sizes: np.ndarray, homophily: float, rng: np.random.Generator
) -> np.ndarray:
    """The community whose circle each membership joins: its own with probability
    ``f``, else another, in proportion to their sizes; ``f`` makes the expected share
    of circle ties inside a community ``homophily`` (or the nearest it can)."""
    k = len(sizes)
    if k == 1:
        return np.zeros(len(own), dtype=np.int64)
    share = sizes / sizes.sum()
    away = share[None, :] / (1 - share[:, None])  # from b (row) to a (column), a != b
    np.fill_diagonal(away, 0.0)

    def within(f: np.ndarray) -> np.ndarray:  # expected share of circle ties inside
        move = (1 - f)[:, None, None] * away[None]
        move[:, np.arange(k), np.arange(k)] = f[:, None]
        joined = share[None, :, None] * move  # [f, from b, to a]
        total = joined.sum(axis=1)
        return ((joined**2).sum(axis=1) / np.maximum(total, 1e-300)).sum(axis=1)

    grid = np.linspace(0.0, 1.0, 2001)
    shares = within(grid)
    upper = np.arange(len(grid)) >= np.argmin(shares)  # the branch where f favours one's own
    f = grid[upper][np.argmin(np.abs(shares[upper] - homophily))]
    stay = rng.random(len(own)) < f
    other = np.empty(len(own), dtype=np.int64)
    for b in range(k):
        mine = np.flatnonzero(own == b)
        other[mine] = rng.choice(k, size=len(mine), p=away[b] / away[b].sum())
    return np.where(stay, own, other)


def _cut(count: int, spread: np.ndarray, jitter: np.ndarray, scale: float) -> np.ndarray:
    """Circle sizes 2 + floor(scale·spread + jitter) until ``count`` memberships are
    used (the last circle takes what is left)."""
    size = 2 + np.floor(scale * spread + jitter).astype(np.int64)
    end = np.cumsum(size)
    m = int(np.searchsorted(end, count)) + 1
    size = size[:m].copy()
    size[-1] -= end[m - 1] - count
    return size[size > 0]


def _circle_scale(homes, weight, n: int, mean_degree: float, clustering: float) -> float:
    """The circles' scale λ whose predicted average clustering is ``clustering``
    (bisection; each user's expected triangles over their expected neighbour pairs,
    on a sample of at most 20,000 users), the circles' share of the degree at most
    `MOST_IN_CIRCLES`."""
    q = CIRCLE_TIES
    # the sampled users' memberships (a stream of its own: the graph's draws unchanged)
    sample = np.sort(np.random.default_rng(0).choice(n, size=min(n, 20_000), replace=False))
    rank = np.full(n, -1, dtype=np.int64)
    rank[sample] = np.arange(len(sample))
    picks = [(np.flatnonzero(rank[m] >= 0), rank[m[rank[m] >= 0]]) for m, _, _ in homes]

    def predict(scale: float) -> tuple[float, float]:
        pairs_sum = np.zeros(len(sample))  # Σ (s-1)(s-2) over a sampled user's circles
        degree_sum = np.zeros(len(sample))  # Σ (s-1)
        in_circles = 0
        for (members, spread, jitter), (pick, who) in zip(homes, picks):
            size = _cut(len(members), spread, jitter, scale)
            in_circles += int((size * (size - 1)).sum())
            s = size[np.searchsorted(np.cumsum(size), pick, side="right")].astype(float)
            pairs_sum += np.bincount(who, (s - 1) * (s - 2), minlength=len(sample))
            degree_sum += np.bincount(who, s - 1, minlength=len(sample))
        share = q * in_circles / n / mean_degree
        background = max(0.0, 1 - share) * mean_degree * weight[sample]
        degree = q * degree_sum + background
        # E[k(k-1)] of binomial circle ties and Poisson background ones
        pairs = np.maximum(degree**2 - q**2 * degree_sum, 1e-12)
        local = np.where(degree > 1, q**3 * pairs_sum / pairs, 0.0)
        return float(np.minimum(local, 1).mean()), share

    lo, hi = 0.0, 1.0
    while predict(hi)[1] < MOST_IN_CIRCLES and hi < n:
        hi *= 2
    if predict(hi)[0] < clustering:  # beyond reach: the most circles allowed
        clustering = np.inf
    for _ in range(40):
        mid = (lo + hi) / 2
        value, share = predict(mid)
        if value < clustering and share <= MOST_IN_CIRCLES:
            lo = mid
        else:
            hi = mid
    return lo


def _circle_edges(members: np.ndarray, size: np.ndarray, n: int, rng: np.random.Generator):
    """Edge keys inside circles (consecutive runs of ``members`` of the given sizes),
    each pair linked with probability `CIRCLE_TIES`, in chunks of circles."""
    offset = np.concatenate([[0], np.cumsum(size)[:-1]])
    pairs = size * (size - 1) // 2
    bounds = np.searchsorted(np.cumsum(pairs), np.arange(CHUNK, pairs.sum() + CHUNK, CHUNK))
    start = 0
    for stop in np.unique(np.minimum(bounds + 1, len(size))):
        circles = np.arange(start, stop)
        count = pairs[circles]
        circle = np.repeat(circles, count)
        local = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        keep = rng.random(len(local)) < CIRCLE_TIES
        circle, local = circle[keep], local[keep]
        i, j = _upper_pairs(size[circle], local)
        u, v = members[offset[circle] + i], members[offset[circle] + j]
        distinct = u != v  # a hub twice in one circle
        u, v = u[distinct], v[distinct]
        yield np.minimum(u, v) * n + np.maximum(u, v)
        start = stop


def _weighted_blocks(starts, weight, mean_degree, homophily, rng):
    """A degree-corrected block model: each pair of blocks gets the block model's
    number of edges (Poisson), with endpoints picked in proportion to ``weight``."""
    sizes = np.diff(starts)
    k, n = len(sizes), int(starts[-1])
    if mean_degree <= 0:
        return
    within = mean_degree * (homophily if k > 1 else 1.0)
    p_in = within / max(1, int(sizes.mean()) - 1)
    p_out = mean_degree * (1 - homophily) / max(1, n - n / k) if k > 1 else 0.0
    cumulative = [np.cumsum(weight[starts[a] : starts[a + 1]]) for a in range(k)]

    def pick(a: int, count: int) -> np.ndarray:
        total = cumulative[a][-1]
        return starts[a] + np.searchsorted(cumulative[a], rng.random(count) * total, "right")

    for a in range(k):
        for b in range(a, k):
            possible = sizes[a] * (sizes[a] - 1) / 2 if a == b else sizes[a] * sizes[b]
            count = int(rng.poisson(possible * (p_in if a == b else p_out)))
            for lo in range(0, count, CHUNK):
                part = min(CHUNK, count - lo)
                u, v = pick(a, part), pick(b, part)
                distinct = u != v
                u, v = u[distinct], v[distinct]
                yield np.minimum(u, v) * n + np.maximum(u, v)


# ---------------------------------------------------------------- statistics


def local_clustering(network: Network, nodes: np.ndarray | None = None) -> np.ndarray:
    """Each node's local clustering coefficient (the share of pairs of its neighbours
    that are linked; 0 below degree 2, as networkx's ``clustering``), by sparse
    products over chunks of rows: for ``nodes`` (all if None)."""
    adjacency = network.adjacency
    nodes = np.arange(network.n_users) if nodes is None else np.asarray(nodes, dtype=np.int64)
    degree = np.diff(adjacency.indptr).astype(np.int64)
    counts = sp.csr_array(
        (np.ones(adjacency.nnz, dtype=np.int64), adjacency.indices, adjacency.indptr),
        shape=adjacency.shape,
    )
    # work per row: the sum of its neighbours' degrees; chunks of ~CHUNK of it
    work = counts[nodes] @ degree
    chunk_ends = np.searchsorted(np.cumsum(work), np.arange(CHUNK, work.sum() + CHUNK, CHUNK))
    triangles = np.zeros(len(nodes), dtype=np.int64)
    start = 0
    for stop in np.unique(np.minimum(chunk_ends + 1, len(nodes))):
        rows = counts[nodes[start:stop]]
        triangles[start:stop] = (rows @ counts).multiply(rows).sum(axis=1) // 2
        start = stop
    k = degree[nodes]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(k > 1, 2 * triangles / (k * (k - 1)), 0.0)


def clustering(network: Network, sample: int | None = 20_000, seed: int = 0) -> float:
    """The average local clustering coefficient (networkx's ``average_clustering``):
    exact up to ``sample`` nodes, else over a uniform sample of that many (``seed``;
    standard error below 0.004)."""
    n = network.n_users
    if sample is None or n <= sample:
        return float(local_clustering(network).mean())
    nodes = np.random.default_rng(seed).choice(n, size=sample, replace=False)
    return float(local_clustering(network, np.sort(nodes)).mean())


def network_statistics(network: Network, sample: int | None = 20_000) -> dict[str, float]:
    """What to compare with a real graph: size, mean and tail of the degrees, the
    average clustering coefficient and the share of ties inside a community."""
    degree = network.degrees()
    coo = network.adjacency.tocoo()
    x = np.sort(degree.astype(np.float64))
    ranks = np.arange(1, len(x) + 1)
    gini = float(2 * (ranks * x).sum() / (len(x) * x.sum()) - (len(x) + 1) / len(x))
    return {
        "users": network.n_users,
        "edges": network.n_edges,
        "mean_degree": float(degree.mean()),
        "median_degree": float(np.median(degree)),
        "q99_degree": float(np.quantile(degree, 0.99)),
        "max_degree": int(degree.max()),
        "degree_gini": gini,
        "clustering": clustering(network, sample),
        "homophily": float((network.community[coo.row] == network.community[coo.col]).mean()),
    }
