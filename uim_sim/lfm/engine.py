"""The inference engine: every model call of uim-sim goes through here.

A world step collects every text its agents propose, and the engine embeds them
in one call: texts are de-duplicated, embeddings are cached by (checkpoint hash,
text), and only new texts reach the model, in batches.

Embeddings are a pure function of (checkpoint, text). A transformer's output for
one row can change in its last bits with the shape of the batch it is computed in
(the math libraries pick kernels, blockings and reduction orders by shape), and
the cache makes the company a text is encoded in depend on what earlier runs left
there. So a text is padded to its length bucket (its token count rounded up to a
multiple of ``BUCKET``), only texts of one bucket share a batch, 2 to
``BATCH_ROWS`` of them (a text alone in its bucket is run with a copy of itself),
and a text embeds to the same bits whether it is encoded among few or many
others, at any row of its batch, with one torch thread or two, in this run or an
earlier one, by whichever worker: tables do not depend on the executor, the run
order or a resume (tests/test_determinism.py, tests/test_engine.py and
tests/test_ray.py compare bytes).

Why these rules, measured with torch 2.13 on this CPU (MiniLM and two forged BERTs):
the math libraries compute a matrix product in tiles of rows, and the rows of a last,
partial tile come out of other code; a token's row in the flattened batch (row ×
width) must therefore start on a tile boundary whatever its company. Exact widths
(no padding) failed this: 2–10 of 204 texts changed bits with their company or the
thread count. Widths that are multiples of 2, 4 or 8 gave the same bits at any row
count from 2 to 64 and with one or two threads; a batch of one row takes yet another
path. Buckets of 2 tokens pad least (1.5 % more tokens than the texts hold): on 2
cores (benchmarks/bench_engine.py) the engine runs at the speed of the best
hand-written loop (texts sorted by length, batches padded to their longest), where
buckets of 8 ran at 0.91× and the earlier design (buckets of 8, every batch filled to
16 rows with empty ones) at 0.87×. On another machine, tests/test_engine.py is the
check that its kernels behave the same.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from uim_sim.lfm.checkpoint import Checkpoint, CheckpointError, first_line, resolve

BUCKET = 2  # tokens: the width of a length bucket
BATCH_ROWS = 32  # the most rows of a forward pass (texts of one bucket); the least is 2


@dataclass
class Counters:
    """Engine work, cumulative per engine; `delta` gives one run's share.

    ``cache_hits`` = requested − encoded: repeats within one call count as hits.
    """

    texts_requested: int = 0
    texts_encoded: int = 0
    cache_hits: int = 0
    model_seconds: float = 0.0
    calls: int = 0

    def delta(self, before: Counters) -> dict[str, float]:
        now, then = asdict(self), asdict(before)
        return {k: now[k] - then[k] for k in now}

    def copy(self) -> Counters:
        return Counters(**asdict(self))


class Engine:
    """Batched, de-duplicated, cached sentence embeddings of one checkpoint.

    Mean pooling over the attention mask, then L2 normalisation: for
    all-MiniLM-L6-v2 this equals the sentence-transformers output. A debiased
    checkpoint's projection (`Checkpoint.projection`) is applied to the pooled vector
    before the normalisation; masked-LM scoring reads the hidden states and is not
    affected by it.
    """

    def __init__(self, checkpoint: Checkpoint, max_length: int = 256) -> None:
        import torch

        self.checkpoint = checkpoint
        self.max_length = max_length
        self.tokenizer, self.model = checkpoint.load()
        _count_load()
        self._torch = torch
        self._cache: dict[str, np.ndarray] = {}
        self._mask_cache: dict[tuple[str, ...], dict[str, np.ndarray]] = {}
        self._masked_lm = None  # loaded on first label-word scoring
        self.counters = Counters()
        self.dim = int(self.model.config.hidden_size)
        projection = checkpoint.projection()
        if projection is not None and projection.shape[0] != self.dim:
            raise ValueError(
                f"{checkpoint.ref}: projection is {projection.shape[0]}-dimensional, "
                f"the encoder {self.dim}"
            )
        self._projection = None if projection is None else torch.from_numpy(projection)
        positions = getattr(self.model.config, "max_position_embeddings", None)
        if isinstance(positions, int) and positions > 0:
            self.max_length = min(max_length, positions)  # small forged models: 64

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts`` as a float32 array of shape (len(texts), dim)."""
        self.counters.calls += 1
        self.counters.texts_requested += len(texts)
        new = [t for t in dict.fromkeys(texts) if t not in self._cache]
        self.counters.cache_hits += len(texts) - len(new)
        if new:
            start = time.perf_counter()
            for text, vector in zip(new, self._encode(new), strict=True):
                self._cache[text] = vector
            self.counters.model_seconds += time.perf_counter() - start
            self.counters.texts_encoded += len(new)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])

    def _encode(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for chunk, batch in self._batches(texts):
            with self._torch.inference_mode():
                hidden = self.model(**batch).last_hidden_state
            pooled = _mean_pool(hidden, batch["attention_mask"], self._projection, self._torch)
            out[chunk] = pooled[: len(chunk)]
        return out

    def _batches(self, texts: list[str]):
        """(row indices, batch) over ``texts``: each batch holds 2 to ``BATCH_ROWS``
        texts of one length bucket, padded to its width (a lone text twice: the rows
        after ``len(indices)`` are copies), so a row's result depends on its text alone."""
        ids = self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
        buckets: dict[int, list[int]] = {}
        for i, row in enumerate(ids):
            width = min(-(-len(row) // BUCKET) * BUCKET, self.max_length)
            buckets.setdefault(width, []).append(i)
        for width, members in sorted(buckets.items()):
            for lo in range(0, len(members), BATCH_ROWS):
                chunk = members[lo : lo + BATCH_ROWS]
                rows = [ids[i] for i in chunk] * (2 if len(chunk) == 1 else 1)
                yield chunk, self.tokenizer.pad(
                    {"input_ids": rows}, padding="max_length", max_length=width,
                    return_tensors="pt",
                )  # fmt: skip

    # ------------------------------------------------------ masked-LM scoring

    def mask_log_probs(self, prompts: Sequence[str], words: Sequence[str]) -> np.ndarray:
        """log P(word at the mask) for each prompt (one ``[MASK]`` each) and word.

        The label-word scoring of prompted screening: the model is asked to fill in a
        decision ("... was [MASK].") and the log-probabilities of the candidate words
        are read off its masked-LM head. Batched, de-duplicated and cached like
        embeddings (by prompt and word list); counted in the same counters. Every word
        must be one token of the vocabulary.
        """
        key = tuple(words)
        token_ids = self._word_ids(key)
        cache = self._mask_cache.setdefault(key, {})
        self.counters.calls += 1
        self.counters.texts_requested += len(prompts)
        new = [p for p in dict.fromkeys(prompts) if p not in cache]
        self.counters.cache_hits += len(prompts) - len(new)
        if new:
            start = time.perf_counter()
            for prompt, row in zip(new, self._fill(new, token_ids), strict=True):
                cache[prompt] = row
            self.counters.model_seconds += time.perf_counter() - start
            self.counters.texts_encoded += len(new)
        if not prompts:
            return np.zeros((0, len(key)))
        return np.stack([cache[p] for p in prompts])

    def _token_id(self, word: str) -> int | None:
        """The vocabulary id of ``word`` if it is exactly one known token, else None."""
        pieces = self.tokenizer.tokenize(word)
        if len(pieces) != 1:
            return None
        token = self.tokenizer.convert_tokens_to_ids(pieces[0])
        return None if token is None or token == self.tokenizer.unk_token_id else token

    def is_one_token(self, word: str) -> bool:
        return self._token_id(word) is not None

    def _word_ids(self, words: tuple[str, ...]) -> list[int]:
        ids = []
        for word in words:
            token = self._token_id(word)
            if token is None:
                raise ValueError(
                    f"label word {word!r} is not one token of {self.checkpoint.name}'s "
                    f"vocabulary (tokens: {self.tokenizer.tokenize(word)})"
                )
            ids.append(token)
        return ids

    def _fill(self, prompts: list[str], token_ids: list[int]) -> np.ndarray:
        torch = self._torch
        if self._masked_lm is None:
            self._masked_lm = self.checkpoint.load_masked_lm()
            _count_load()
        mask = self.tokenizer.mask_token
        texts = [p.replace("[MASK]", mask) for p in prompts]
        out = np.empty((len(texts), len(token_ids)))
        for chunk, batch in self._batches(texts):
            where = batch["input_ids"][: len(chunk)] == self.tokenizer.mask_token_id
            per_row = where.sum(1)
            if not bool((per_row == 1).all()):
                bad = texts[chunk[int(torch.nonzero(per_row != 1)[0, 0])]]
                raise ValueError(f"a prompt must hold one {mask} after truncation: {bad!r}")
            with torch.inference_mode():
                logits = self._masked_lm(**batch).logits[: len(chunk)][where]
            out[chunk] = torch.log_softmax(logits.double(), dim=-1)[:, token_ids].numpy()
        return out

    def clear_cache(self) -> None:
        self._cache.clear()
        self._mask_cache.clear()


def _mean_pool(hidden, mask, projection, torch) -> np.ndarray:
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    if projection is not None:
        pooled = pooled @ projection
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


_ENGINES: dict[str, Engine] = {}
_LOADS = 0  # models this process loaded (encoders and masked-LM heads)


def _count_load() -> None:
    global _LOADS
    _LOADS += 1


def model_loads() -> int:
    """How many models this process has loaded from disk so far (an encoder per
    engine, and a masked-LM head where label words are scored): what an executor
    that keeps its workers' engines saves."""
    return _LOADS


def get_engine(ref: str) -> Engine:
    """The process-wide engine for a checkpoint reference: each model loads once."""
    checkpoint = resolve(ref)
    engine = _ENGINES.get(checkpoint.sha256)
    if engine is None:
        engine = _ENGINES[checkpoint.sha256] = Engine(checkpoint)
    return engine


def check_loads(ref: str) -> None:
    """Open a checkpoint the way a run will: verified, then its tokenizer, model and
    projection loaded (once per process: the run reuses the loaded engine). Any
    failure is a one-line `CheckpointError`."""
    checkpoint = resolve(ref)
    try:
        loaded = _ENGINES.get(checkpoint.sha256)
        if loaded is None:
            loaded = get_engine(ref)  # kept: the run uses it
        elif loaded.checkpoint.path != checkpoint.path:  # the same weights, another folder
            loaded = Engine(checkpoint)
        tokenizer = loaded.tokenizer
        unknown = tokenizer.unk_token_id
        ids = tokenizer(TOKENIZER_PROBE, add_special_tokens=False)["input_ids"]
    except CheckpointError:
        raise
    except Exception as exc:  # transformers raises many kinds for a broken folder
        raise CheckpointError(
            f"{ref}: does not load ({type(exc).__name__}: {first_line(exc)})"
        ) from None
    if unknown is not None and all(i == unknown for i in ids):
        raise CheckpointError(
            f"{ref}: the tokenizer reads every word of {TOKENIZER_PROBE!r} as unknown "
            "(are its tokenizer files missing?)"
        )


TOKENIZER_PROBE = "the people of the town"  # words any tokenizer of English knows
