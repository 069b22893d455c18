"""Users' social graphs: built by vectorised generators, read from an edge list, or
taken from any `networkx` graph, and held as a `scipy.sparse` CSR adjacency (int32
indices) with a community per user. The dynamics never touch networkx objects.

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
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from uim_sim.schema import UimError


class NetworkError(UimError, ValueError):
    """A graph cannot be built or read; the message names the file and line."""


@dataclass(frozen=True)
class Network:
    """An undirected graph as a symmetric CSR adjacency, and each user's community."""

    adjacency: sp.csr_array
    community: np.ndarray

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
        """Any `networkx` graph (nodes relabelled 0..n-1 in their order); a node's
        ``community`` attribute, if set, gives its community (else 0)."""
        nodes = list(graph.nodes)
        index = {node: i for i, node in enumerate(nodes)}
        edges = np.array([(index[a], index[b]) for a, b in graph.edges], dtype=np.int64)
        edges = edges.reshape(-1, 2)
        labels = [graph.nodes[node].get(community, 0) for node in nodes]
        codes = {c: i for i, c in enumerate(dict.fromkeys(labels))}
        return cls.from_edges(
            len(nodes), edges[:, 0], edges[:, 1], np.array([codes[c] for c in labels])
        )

    def to_networkx(self):
        """The graph as `networkx` (small graphs: analysis and tests)."""
        import networkx as nx

        graph = nx.Graph()
        graph.add_nodes_from((i, {"community": int(c)}) for i, c in enumerate(self.community))
        coo = sp.triu(self.adjacency, k=1).tocoo()
        graph.add_edges_from(zip(coo.row.tolist(), coo.col.tolist()))
        return graph


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


@lru_cache(maxsize=8)
def _checked(path: str, mtime_ns: int, size: int) -> int:
    return read_edge_list(Path(path)).n_users


def check_edge_file(path: Path) -> int:
    """Read an edge list once per version of the file (parameters are validated often);
    returns its number of nodes or raises `NetworkError` naming the line."""
    path = Path(path)
    if not path.is_file():
        raise NetworkError(f"{path}: no such file")
    info = path.stat()
    return _checked(str(path.resolve()), info.st_mtime_ns, info.st_size)


def read_edge_list(path: Path) -> Network:
    """An edge list: one edge per line, two node ids separated by a comma or white
    space (``#`` comments and a ``source,target`` header allowed); a third column, if
    every line has one, is ignored. Nodes are numbered in order of appearance."""
    path = Path(path)
    if not path.is_file():
        raise NetworkError(f"{path}: no such file")
    ids: dict[str, int] = {}
    us, vs = [], []
    with open(path) as fh:
        for number, raw in enumerate(fh, start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            fields = [f for f in line.replace(",", " ").split() if f]
            if number == 1 and fields and not any(c.isdigit() for c in fields[0]):
                continue  # a header
            if len(fields) < 2:
                raise NetworkError(f"{path}: line {number}: expected two node ids, got {raw!r}")
            a, b = (ids.setdefault(f, len(ids)) for f in fields[:2])
            us.append(a)
            vs.append(b)
    if not us:
        raise NetworkError(f"{path}: no edges")
    n = len(ids)
    return Network.from_edges(n, np.array(us), np.array(vs), np.zeros(n, dtype=np.int16))
