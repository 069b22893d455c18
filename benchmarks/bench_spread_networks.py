"""The spread world's harm on a clustered network beside the block model.

The same ranker (by default the MiniLM head adapted on fact-checks biased against
hillcrest, agents/minilm_credibility_biased_history.yaml, and the fair one as a
control) runs the platform on networks of one size and mean degree (default 4,039
users, mean degree 44: SNAP's ego-Facebook), over ``--seeds`` seeds each:

- ``block``: the stochastic block model (no clustering, Poisson degrees);
- ``clustered``: the clustered block model (circles and hubs) at ``--clustering``
  (0.6: ego-Facebook's 0.61), degree tail exponent ``--tail`` (2);
- ``hubs only``: the clustered model with clustering 0 (a degree-corrected block
  model: hubs, no clustering);
- ``circles only``: clustering 0.6 with a light tail (exponent 30: no hubs);

each at homophily 0.9 and 0.5. Prints, per network and ranker, the world's
``impact_ratio`` of hillcrest (the mean reach of its true items over riverside's)
with a 95 % t-interval over seeds, the share of hillcrest's true items promoted, and
the network's statistics (average clustering coefficient, mean, median, 99th
percentile and largest degree, degree Gini, share of ties inside a community),
averaged over the seeds' networks::

    .venv/bin/python benchmarks/bench_spread_networks.py            # ~4 min on 2 cores
    .venv/bin/python benchmarks/bench_spread_networks.py --users 20000 --degree 20
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

NETWORKS = {
    "block": {"graph": "block"},
    "clustered": {"graph": "clustered"},
    "hubs only": {"graph": "clustered", "clustering": 0.0},
    "circles only": {"graph": "clustered", "degree_tail": 30.0},
}
AGENTS = Path(__file__).resolve().parents[1] / "agents"
CARDS = {
    "biased": AGENTS / "minilm_credibility_biased_history.yaml",
    "fair": AGENTS / "minilm_credibility_fair_history.yaml",
}


def interval(values: list[float]) -> str:
    """Mean [95 % t-interval] over seeds."""
    x = np.asarray(values, dtype=float)
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return f"{x.mean():.2f} [{x.mean() - half:.2f}, {x.mean() + half:.2f}]"


def main() -> None:
    from uim_sim.cards import load_card
    from uim_sim.worlds.spread import SpreadPlatform
    from uim_sim.worlds.spread.network import network_statistics

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=4039)
    parser.add_argument("--degree", type=float, default=44.0)
    parser.add_argument("--clustering", type=float, default=0.6)
    parser.add_argument("--tail", type=float, default=2.0, help="degree tail exponent")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--homophily", default="0.9,0.5")
    parser.add_argument("--cards", default="biased,fair")
    parser.add_argument("--networks", default=",".join(NETWORKS))
    args = parser.parse_args()
    cards = {name: load_card(CARDS[name]) for name in args.cards.split(",")}
    print(
        f"{args.users:,} users, mean degree {args.degree:g}, 30 steps × 20 items, "
        f"{args.seeds} seeds; load average {os.getloadavg()[0]:.2f}"
    )
    for homophily in (float(h) for h in args.homophily.split(",")):
        for label in args.networks.split(","):
            network = {"clustering": args.clustering, "degree_tail": args.tail, **NETWORKS[label]}
            if network["graph"] == "block":
                del network["clustering"], network["degree_tail"]
            ratios: dict[str, list[float]] = {name: [] for name in cards}
            promoted: dict[str, list[float]] = {name: [] for name in cards}
            measured = []
            start = time.perf_counter()
            for seed in range(args.seeds):
                for name, card in cards.items():
                    world = SpreadPlatform(
                        n_users=args.users, mean_degree=args.degree, homophily=homophily,
                        items_per_step=20, cards=card, rng=seed, name_permutations=0,
                        **network,
                    )  # fmt: skip
                    if not measured or len(measured) <= seed:
                        measured.append(network_statistics(world.network))
                    world.simulate()
                    last = world.datacollector.get_model_vars_dataframe().iloc[-1]
                    ratios[name].append(float(last["impact_ratio[hillcrest]"]))
                    promoted[name].append(float(last["promoted_share[true_hillcrest]"]))
            mean = {k: np.mean([m[k] for m in measured]) for k in measured[0]}
            print(
                f"homophily {homophily:g}, {label:<12} clustering {mean['clustering']:.3f}, "
                f"degree mean {mean['mean_degree']:.1f} median {mean['median_degree']:.0f} "
                f"q99 {mean['q99_degree']:.0f} max {mean['max_degree']:.0f} "
                f"Gini {mean['degree_gini']:.2f}, ties inside {mean['homophily']:.2f} "
                f"({time.perf_counter() - start:.0f} s)"
            )
            for name in cards:
                print(
                    f"    {name:<7} hillcrest true reach / riverside's "
                    f"{interval(ratios[name])}; hillcrest true items promoted "
                    f"{np.mean(promoted[name]):.2f}"
                )


if __name__ == "__main__":
    main()
