"""The spread world at scale, and its reference cascade against NDlib and CyNetDiff.

Part 1, the platform with the model running (builtin:minilm zero-shot ranker), for
each ``--sizes`` (default 10,000 / 100,000 / 1,000,000 users; add 10000000 for ten
million), each in its own process so that its peak memory is its own: a block model
of two communities, mean degree 20, 30 steps of 10 items, supercritical sharing
rates (``--share-true``, ``--share-false``). Prints the graph's build time, steps per
second, peak RSS, and texts encoded vs exposures simulated.

Part 2, the reference cascade: the same graph and the same seed users, independent
cascades with edge probability ``--probability`` (supercritical), timed for uim-sim's
CSR kernel, CyNetDiff's ``IndependentCascadeModel`` and NDlib's
``IndependentCascadesModel`` (NDlib only up to ``--ndlib-max`` users: it takes minutes
beyond). Prints mean final sizes (they must agree within sampling error) and the time
ratios. NDlib and CyNetDiff are benchmark-only extras:

    .venv/bin/pip install six ndlib cynetdiff
    .venv/bin/python benchmarks/bench_spread.py [--sizes 10000,100000,1000000]

Goals on 2 cores: 1,000,000 users × 30 steps under 120 s; 10,000,000 under 600 s and
8 GiB; the reference cascade at least as fast as CyNetDiff at 100,000 users and at
least 30× faster than NDlib at 10,000 and 100,000.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from _common import REF, verdict  # noqa: E402


def platform_run(n: int, share_true: float, share_false: float, seed: int) -> dict:
    """One platform run in this process: timings, memory, engine work."""
    from uim_sim.lfm.engine import get_engine
    from uim_sim.worlds.spread import SpreadPlatform

    t0 = time.perf_counter()
    engine = get_engine(REF)
    t1 = time.perf_counter()
    world = SpreadPlatform(
        n_users=n, rng=seed, share_true=share_true, share_false=share_false,
        name_permutations=200,
    )  # fmt: skip
    t2 = time.perf_counter()
    world.simulate()
    t3 = time.perf_counter()
    decisions = world.decision_table()
    return {
        "n": n,
        "load_s": t1 - t0,
        "build_s": t2 - t1,
        "steps_s": t3 - t2,
        "steps": world.round,
        "edges": world.network.n_edges,
        "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "texts_encoded": engine.counters.texts_encoded,
        "items": len(decisions),
        "exposures": int(decisions["reach"].sum()),
        "reach_true": float(decisions.loc[decisions.truth == 1, "reach"].mean()),
        "reach_false": float(decisions.loc[decisions.truth == 0, "reach"].mean()),
    }


def reference(n: int, p: float, cascades: int, ndlib_max: int, seed: int) -> None:
    """Our independent cascades vs CyNetDiff's and NDlib's on one graph and seeds."""
    import array

    from uim_sim.worlds.spread.cascade import independent_cascades
    from uim_sim.worlds.spread.network import stochastic_block

    rng = np.random.default_rng(seed)
    graph = stochastic_block([n // 2, n - n // 2], 18 / (n // 2), 2 / (n // 2), rng)
    seeds = rng.integers(n, size=cascades)
    start = time.perf_counter()
    ours = independent_cascades(graph.adjacency, seeds, p, np.random.default_rng(seed + 1))
    t_ours = time.perf_counter() - start
    line = (
        f"  {n:>9,} users, {cascades} cascades, p = {p}: uim-sim {t_ours:7.2f} s "
        f"(mean size {ours.size.mean():9.1f})"
    )
    try:
        from cynetdiff.models import IndependentCascadeModel
    except ImportError:
        print(line + "; CyNetDiff not installed (pip install cynetdiff)")
    else:
        starts = array.array("I", graph.adjacency.indptr[:-1].astype(np.uint32).tobytes())
        edges = array.array("I", graph.adjacency.indices.astype(np.uint32).tobytes())
        model = IndependentCascadeModel(starts, edges, activation_prob=p, rng=seed)
        sizes = []
        start = time.perf_counter()
        for s in seeds:
            model.set_seeds([int(s)])
            model.advance_until_completion()
            sizes.append(model.get_num_activated_nodes())
        t_cy = time.perf_counter() - start
        ratio = t_cy / t_ours
        goal = f"  goal >= 1 at 100,000: {verdict(ratio >= 1)}" if n == 100_000 else ""
        line += (
            f"; CyNetDiff {t_cy:7.2f} s (mean size {np.mean(sizes):9.1f}): "
            f"CyNetDiff / uim-sim = {ratio:.2f}x{goal}"
        )
        print(line)
    if n > ndlib_max:
        print(f"  NDlib skipped at {n:,} users (--ndlib-max {ndlib_max:,})")
        return
    try:
        import ndlib.models.epidemics as epidemics
        import ndlib.models.ModelConfig as config
    except ImportError:
        print("  NDlib not installed (pip install six ndlib)")
        return
    nx_graph = graph.to_networkx()
    few = seeds[: max(1, min(cascades, 10))]  # NDlib is slow: time a few, scale per cascade
    start = time.perf_counter()
    sizes = []
    for s in few:
        model = epidemics.IndependentCascadesModel(nx_graph, seed=seed)
        cfg = config.Configuration()
        cfg.add_model_initial_configuration("Infected", [int(s)])
        for edge in nx_graph.edges():
            cfg.add_edge_configuration("threshold", edge, p)
        model.set_initial_status(cfg)
        while True:  # until no node is infected (iteration_bunch would run on idle)
            counts = model.iteration(node_status=False)["node_count"]
            if counts.get(1, 0) == 0:
                break
        sizes.append(counts.get(2, 0))
    t_nd = (time.perf_counter() - start) / len(few) * cascades
    ratio = t_nd / t_ours
    print(
        f"  NDlib {t_nd:8.2f} s for {cascades} (timed on the first {len(few)}: mean size "
        f"{np.mean(sizes):9.1f}, uim-sim's on the same seeds {ours.size[: len(few)].mean():9.1f}"
        f"): NDlib / uim-sim = {ratio:.1f}x  goal >= 30: {verdict(ratio >= 30)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--share-true", type=float, default=0.3)
    parser.add_argument("--share-false", type=float, default=0.35)
    parser.add_argument("--probability", type=float, default=0.1)
    parser.add_argument("--cascades", type=int, default=50)
    parser.add_argument("--reference-sizes", default="10000,100000,1000000")
    parser.add_argument("--ndlib-max", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--one", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # a child process: one platform run, printed as JSON
        print(json.dumps(platform_run(args.one, args.share_true, args.share_false, args.seed)))
        return

    print(
        f"platform with {REF} ranking, 30 steps × 10 items, block model (2 communities, "
        f"mean degree 20), sharing {args.share_true}/{args.share_false}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    goals = {1_000_000: (120, None), 10_000_000: (600, 8.0)}
    for n in (int(s) for s in args.sizes.split(",")):
        cmd = [sys.executable, __file__, "--one", str(n), "--share-true", str(args.share_true),
               "--share-false", str(args.share_false), "--seed", str(args.seed)]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"  {n:>10,} users: failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        total = r["build_s"] + r["steps_s"]
        line = (
            f"  {n:>10,} users, {r['edges']:>11,} edges: build {r['build_s']:6.1f} s, "
            f"{r['steps']} steps {r['steps_s']:6.1f} s ({r['steps'] / r['steps_s']:6.2f} "
            f"steps/s), peak RSS {r['rss_gb']:5.2f} GiB; {r['texts_encoded']} texts encoded "
            f"for {r['exposures']:,} exposures of {r['items']} items (reach true "
            f"{r['reach_true']:,.0f}, false {r['reach_false']:,.0f})"
        )
        if n in goals:
            seconds, memory = goals[n]
            ok = total < seconds and (memory is None or r["rss_gb"] < memory)
            line += f"; goal < {seconds} s" + (f" and < {memory} GiB" if memory else "")
            line += f": {total:.0f} s  {verdict(ok)}"
        print(line)

    print(f"reference cascades (load average {os.getloadavg()[0]:.2f}):")
    for n in (int(s) for s in args.reference_sizes.split(",")):
        reference(n, args.probability, args.cascades, args.ndlib_max, args.seed)


if __name__ == "__main__":
    main()
