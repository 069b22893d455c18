"""The spreading kernels, on a CSR adjacency with dense per-item state: no Python
loop over users, no networkx object.

- `neighbours`: every neighbour of a set of nodes (with repeats), by slicing CSR rows.
- `independent_cascades`: Kempe et al.'s (2003) independent cascade, many at once:
  each newly active node gets one chance to activate each neighbour with probability
  ``p``. The reference mode runs it with a fixed ``p`` and no model, the process
  NDlib's and CyNetDiff's ``IndependentCascadesModel`` simulate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


def neighbours(adjacency: sp.csr_array, nodes: np.ndarray) -> np.ndarray:
    """Every neighbour of ``nodes`` (a node appears once per edge to the set)."""
    nodes = np.asarray(nodes, dtype=np.int64)
    if len(nodes) == 0:
        return np.zeros(0, dtype=adjacency.indices.dtype)
    starts = adjacency.indptr[nodes]
    lengths = adjacency.indptr[nodes + 1] - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=adjacency.indices.dtype)
    # position k of the output reads indices[starts[row(k)] + (k - first(row(k)))]
    first = np.cumsum(lengths) - lengths
    offsets = np.repeat(starts - first, lengths) + np.arange(total)
    return adjacency.indices[offsets]


def distinct(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values (by sorting: numpy's hash-based ``unique`` is several
    times slower on millions of integers here)."""
    values = np.sort(values)  # a copy: the caller's array is left alone
    if len(values) < 2:
        return values
    return values[np.r_[True, values[1:] != values[:-1]]]


def first_seen(candidates: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """The distinct ``candidates`` not yet ``seen`` (a bool array), marked as seen now."""
    fresh = candidates[~seen[candidates]]
    if len(fresh) == 0:
        return fresh
    fresh = distinct(fresh)
    seen[fresh] = True
    return fresh


def hop(
    adjacency: sp.csr_array,
    frontier: np.ndarray,
    active: np.ndarray,
    p: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """One hop of an independent cascade: each node of ``frontier`` tries each
    neighbour once with probability ``p``; returns the newly active nodes."""
    tried = neighbours(adjacency, frontier)
    return first_seen(tried[rng.random(len(tried)) < p], active)


@dataclass
class CascadeResult:
    size: np.ndarray  # active nodes at the end, per cascade (seeds included)
    depth: np.ndarray  # hops until the cascade stopped
    hops: int  # hops simulated


def independent_cascades(
    adjacency: sp.csr_array,
    seeds: np.ndarray,
    p: float,
    rng: np.random.Generator,
    max_hops: int = 100,
) -> CascadeResult:
    """One independent cascade from each seed node, with edge probability ``p``."""
    n = adjacency.shape[0]
    size = np.ones(len(seeds), dtype=np.int64)
    depth = np.zeros(len(seeds), dtype=np.int64)
    longest = 0
    for c, seed in enumerate(seeds):
        active = np.zeros(n, dtype=bool)
        active[seed] = True
        frontier = np.array([seed], dtype=np.int64)
        done = 0
        while len(frontier) and done < max_hops:
            frontier = hop(adjacency, frontier, active, p, rng)
            done += 1
            size[c] += len(frontier)
            if len(frontier):
                depth[c] = done
        longest = max(longest, done)
    return CascadeResult(size, depth, longest)
