"""Same spec + same seed → byte-identical result tables, whatever the executor, the
run order, the engine's cache or a resume after a kill.

The engine pads a text to its length bucket and batches only texts of one bucket
(tests/test_engine.py says why), so an embedding is a function of (checkpoint,
text) alone; the result tables hold
nothing that depends on how a run executed (timings and cache counters go to
execution.parquet)."""

from __future__ import annotations

import numpy as np

from uim_sim.lfm.checkpoint import resolve
from uim_sim.lfm.engine import BATCH_ROWS, BUCKET, Engine

PROBES = [
    "Emily Walsh. Sales representative with 5 years of experience.",
    "Jamal Jones. Office clerk with 1 years of experience. High school diploma.",
    "ok",
    "Lakisha Washington. Customer service representative with 8 years of experience. "
    "Bachelor's degree. Skills: call handling, returns, Zendesk. Employee of the month award.",
]
# other texts of the same length buckets: the company the probes keep in a batch
COMPANY = [
    f"{name} {surname}. Office clerk with {years} years of experience. High school diploma."
    for name in ("Anne", "Brad", "Tamika", "Kareem", "Jill", "Hakim")
    for surname in ("Baker", "Jones", "Ryan")
    for years in (2, 7)
] + [f"{w} walsh." for w in ("hi", "yo", "ok", "no")]
# more texts of the first probe's length than a batch holds: across the trials it is
# computed in a full batch or in a partial one
COMPANY += [
    f"Emily Walsh. Sales representative with {y} years of experience." for y in range(10, 60)
]


def test_an_embedding_is_a_function_of_the_text_alone():
    engine = Engine(resolve("builtin:minilm"))
    alone = []
    for text in PROBES:
        engine.clear_cache()
        alone.append(engine.embed([text])[0].tobytes())
    rng = np.random.default_rng(0)
    for trial in range(3):
        engine.clear_cache()
        if trial == 2:  # a cache already holding other texts, computed in other batches
            engine.embed(COMPANY[:7])
        batch = PROBES + COMPANY
        order = rng.permutation(len(batch))
        vectors = engine.embed([batch[i] for i in order])
        where = {i: k for k, i in enumerate(order)}
        for j, expected in enumerate(alone):
            assert vectors[where[j]].tobytes() == expected, (trial, PROBES[j])
    bucket = [-(-len(ids) // BUCKET) for ids in engine.tokenizer(COMPANY)["input_ids"]]
    first = -(-len(engine.tokenizer(PROBES[0])["input_ids"]) // BUCKET)
    assert bucket.count(first) > BATCH_ROWS  # full and partial batches of its bucket


# Serial and two worker processes give byte-identical tables: tests/test_faults.py runs
# the same 8-run spec with two workers, killed at a random moment and resumed, against
# an uninterrupted serial run; tests/test_ray.py adds Ray.
