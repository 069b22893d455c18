"""The reference cascade of the spread world, as a Mesa model: ``n_cascades``
independent cascades (Kempe et al. 2003) with one fixed edge probability and no
model, one hop per step, on the same network the platform uses. Its final sizes can
be held against NDlib's and CyNetDiff's independent cascade on the same graph and
seeds (benchmarks/bench_spread.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from uim_sim.worlds.spread.cascade import hop
from uim_sim.worlds.spread.params import CascadeParams
from uim_sim.worlds.spread.world import SpreadWorld
from uim_sim.worlds.watch import Plot


class SpreadReference(SpreadWorld):
    """Independent cascades from random seed users. ``SpreadReference(rng=1)`` builds
    one (see `CascadeParams`); it stops when every cascade has died out."""

    Params = CascadeParams

    def setup(self) -> None:
        self._network()
        p = self.params
        self.seeds = self.population_rng.integers(self.n_users, size=p.n_cascades)
        self.active = np.zeros((p.n_cascades, self.n_users), dtype=bool)
        self.active[np.arange(p.n_cascades), self.seeds] = True
        self.frontier = [np.array([s], dtype=np.int64) for s in self.seeds]
        self.size = np.ones(p.n_cascades, dtype=np.int64)
        self.depth = np.zeros(p.n_cascades, dtype=np.int64)

    watch = (Plot("active_share", "Share of users reached by a live cascade"),
             Plot("size_mean", "Mean cascade size"))  # fmt: skip

    def exposure_states(self, users: np.ndarray) -> list[str]:
        reached = self.active[:, users].any(axis=0)
        return np.where(reached, "reached", "not reached").tolist()

    def act(self) -> None:
        """One hop of every cascade still alive; at the end, a row per cascade."""
        p = self.params
        for c, frontier in enumerate(self.frontier):
            if len(frontier):
                new = hop(
                    self.adjacency, frontier, self.active[c], p.probability, self.decision_rng
                )
                self.frontier[c] = new
                self.size[c] += len(new)
                if len(new):
                    self.depth[c] = self.round
        if self.done():
            self._record()

    def done(self) -> bool:
        """Every cascade has died out, or ``max_hops`` were taken."""
        return not any(len(f) for f in self.frontier) or self.round >= self.params.max_hops

    def _record(self) -> None:
        for c, seed in enumerate(self.seeds):
            self.decisions.append({
                "step": self.round,
                "subject": c,
                "group": self.communities[int(self.community[seed])],
                "seed": int(seed),
                "reach": int(self.size[c]),
                "depth": int(self.depth[c]),
            })  # fmt: skip

    def cascades(self) -> pd.DataFrame:
        return pd.DataFrame({"seed": self.seeds, "size": self.size, "depth": self.depth})

    def measures(self):
        return {
            "active_share": None,
            "alive": None,
            "size_mean": None,
            "size_q50": None,
            "size_q90": None,
            "depth_mean": None,
        }

    def measure(self):
        out = {
            "active_share": float(self.size.sum() / (self.n_users * len(self.size))),
            "alive": float(sum(len(f) > 0 for f in self.frontier)),
        }
        if not self.running:
            out.update(
                size_mean=float(self.size.mean()),
                size_q50=float(np.median(self.size)),
                size_q90=float(np.quantile(self.size, 0.9)),
                depth_mean=float(self.depth.mean()),
            )
        return out
