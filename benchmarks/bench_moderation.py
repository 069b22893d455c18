"""The moderation world on builtin:minilm: wall time and engine work.

Runs ``ModerationPlatform`` (by default 2,000 users, 30 steps, 5 moderators,
2,000 history comments) with one logistic head trained on identity-biased history,
carried by every moderator, and prints:

- wall time: model load, set-up (history and head training), steps, total;
- the engine's counters for the run: texts requested, texts encoded, cache hits and
  the seconds spent in the model;
- the distinct texts the run asked the engine for (recorded by wrapping the engine's
  ``embed`` on this instance), checked against the cache growth;
- a second run with another seed on the now warm cache (what every later run of a
  batch costs: only history texts not seen before reach the model).

Baseline, measured in the same run: the uncached engine, in which every requested
text reaches the model. Ratios: requested / encoded (model calls the cache saved)
and model seconds / wall seconds. Goals: each distinct text encoded once; a run under
30 s on 2 cores. Exit code 0 always.

    .venv/bin/python benchmarks/bench_moderation.py [--users 2000] [--steps 30]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from _common import REF, parse_args, record_requests, verdict  # noqa: E402

from uim_sim.cards import AgentCard, DecisionSpec, HeadSpec  # noqa: E402
from uim_sim.lfm.engine import get_engine  # noqa: E402
from uim_sim.worlds.moderation import ModerationPlatform  # noqa: E402

GOAL_SECONDS = 30.0


def timed_run(params: dict, card: AgentCard, seed: int, engine) -> dict:
    before, cache_before = engine.counters.copy(), len(engine._caches.get(("embed",), {}))
    t0 = time.perf_counter()
    world = ModerationPlatform(**params, cards=card, rng=seed)
    t1 = time.perf_counter()
    world.simulate()
    t2 = time.perf_counter()
    work = engine.counters.delta(before)
    return {
        "world": world,
        "setup_s": t1 - t0,
        "steps_s": t2 - t1,
        "work": work,
        "grown": len(engine._caches.get(("embed",), {})) - cache_before,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--moderators", type=int, default=5)
    parser.add_argument("--history", type=int, default=2000)
    args = parse_args(parser)
    card = AgentCard(
        name="bench",
        checkpoint=REF,
        head=HeadSpec(kind="logistic", train_on="history", history_bias=2.0),
        decision=DecisionSpec(rule="threshold", threshold=0.5),
    )
    params = dict(
        n_users=args.users,
        n_steps=args.steps,
        n_moderators=args.moderators,
        n_history=args.history,
    )
    print(
        f"{REF} moderation: {args.users} users, {args.steps} steps, {args.moderators} "
        f"moderators, {args.history} history; torch threads {torch.get_num_threads()}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    t0 = time.perf_counter()
    engine = get_engine(REF)
    load_s = time.perf_counter() - t0
    requested = record_requests(engine)
    cold = timed_run(params, card, args.seed, engine)
    work = cold["work"]
    total_s = load_s + cold["setup_s"] + cold["steps_s"]
    print(
        f"cold cache: load {load_s:.1f} s + set-up {cold['setup_s']:.1f} s + steps "
        f"{cold['steps_s']:.1f} s = total {total_s:.1f} s"
    )
    n_req, n_enc, hits = (int(work[k]) for k in ("texts_requested", "texts_encoded", "cache_hits"))
    print(
        f"engine: {int(work['calls'])} calls, texts requested {n_req}, texts encoded {n_enc}, "
        f"cache hits {hits}, model {work['model_seconds']:.1f} s"
    )
    posts = len(cold["world"].decision_table())
    print(f"posts scored: {posts}; distinct texts requested: {len(requested)}")
    once = n_enc == len(requested) == cold["grown"]
    print(
        f"goal: each distinct text encoded once: {n_enc} encoded vs {len(requested)} distinct "
        f"(cache grew by {cold['grown']})  {verdict(once)}"
    )
    per_text = work["model_seconds"] / max(n_enc, 1)
    print(
        f"ratio requested / encoded (model calls saved by the cache): {n_req / max(n_enc, 1):.1f}x"
        f"  (uncached baseline: ~{n_req * per_text:.0f} s of model time vs "
        f"{work['model_seconds']:.1f} s)"
    )
    run_s = cold["setup_s"] + cold["steps_s"]
    print(
        f"ratio model seconds / wall seconds (set-up + steps): "
        f"{work['model_seconds'] / run_s:.2f}  ({work['model_seconds']:.1f} / {run_s:.1f} s)"
    )
    warm = timed_run(params, card, args.seed + 1, engine)
    w = warm["work"]
    warm_s = warm["setup_s"] + warm["steps_s"]
    print(
        f"warm cache, seed {args.seed + 1}: {warm_s:.1f} s (set-up {warm['setup_s']:.1f} s, "
        f"steps {warm['steps_s']:.1f} s); texts requested {int(w['texts_requested'])}, "
        f"texts encoded {int(w['texts_encoded'])}, model {w['model_seconds']:.1f} s"
    )
    print(f"goal: a run under {GOAL_SECONDS:.0f} s, warm: {warm_s:.1f} s  {verdict(warm_s < 30)}")


if __name__ == "__main__":
    main()
