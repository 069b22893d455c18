"""The inference engine: every model call of uim-sim goes through here.

A world step collects every text its agents propose, and the engine embeds them
in one call: texts are de-duplicated, embeddings are cached by (checkpoint hash,
text), and only new texts reach the model, in batches.

Embeddings are a pure function of (checkpoint, text). Padding changes the last
bits of a transformer's output, so texts are padded to a fixed length bucket
(their token count rounded up to a multiple of ``BUCKET``) and only texts of the
same bucket share a batch. On CPU the result of a row does not depend on the
other rows of its batch, so a text embeds to the same bits whether it is encoded
alone, in a batch, in this run or an earlier one: results do not depend on which
worker ran what, or in which order.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from uim_sim.lfm.checkpoint import Checkpoint, resolve

BUCKET = 8


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
    all-MiniLM-L6-v2 this equals the sentence-transformers output.
    """

    def __init__(
        self, checkpoint: Checkpoint, batch_size: int = 128, max_length: int = 256
    ) -> None:
        import torch

        self.checkpoint = checkpoint
        self.batch_size = batch_size
        self.max_length = max_length
        self.tokenizer, self.model = checkpoint.load()
        self._torch = torch
        self._cache: dict[str, np.ndarray] = {}
        self._mask_cache: dict[tuple[str, ...], dict[str, np.ndarray]] = {}
        self._masked_lm = None  # loaded on first label-word scoring
        self.counters = Counters()
        self.dim = int(self.model.config.hidden_size)
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
            out[chunk] = _mean_pool(hidden, batch["attention_mask"], self._torch)
        return out

    def _batches(self, texts: list[str]):
        """(row indices, padded batch) over ``texts``: only texts of one length bucket
        share a batch, so a row's result does not depend on the rest of its batch."""
        ids = self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
        buckets: dict[int, list[int]] = {}
        for i, row in enumerate(ids):
            width = min(-(-len(row) // BUCKET) * BUCKET, self.max_length)
            buckets.setdefault(width, []).append(i)
        for width, members in sorted(buckets.items()):
            for lo in range(0, len(members), self.batch_size):
                chunk = members[lo : lo + self.batch_size]
                batch = self.tokenizer.pad(
                    {"input_ids": [ids[i] for i in chunk]},
                    padding="max_length",
                    max_length=width,
                    return_tensors="pt",
                )
                yield chunk, batch

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

    def _word_ids(self, words: tuple[str, ...]) -> list[int]:
        ids = []
        for word in words:
            pieces = self.tokenizer.tokenize(word)
            token = self.tokenizer.convert_tokens_to_ids(pieces) if len(pieces) == 1 else [None]
            if token[0] is None or token[0] == self.tokenizer.unk_token_id:
                raise ValueError(
                    f"label word {word!r} is not one token of {self.checkpoint.name}'s "
                    f"vocabulary (tokens: {pieces})"
                )
            ids.append(token[0])
        return ids

    def _fill(self, prompts: list[str], token_ids: list[int]) -> np.ndarray:
        torch = self._torch
        if self._masked_lm is None:
            self._masked_lm = self.checkpoint.load_masked_lm()
        mask = self.tokenizer.mask_token
        texts = [p.replace("[MASK]", mask) for p in prompts]
        out = np.empty((len(texts), len(token_ids)))
        for chunk, batch in self._batches(texts):
            where = batch["input_ids"] == self.tokenizer.mask_token_id
            per_row = where.sum(1)
            if not bool((per_row == 1).all()):
                bad = texts[chunk[int(torch.nonzero(per_row != 1)[0, 0])]]
                raise ValueError(f"a prompt must hold one {mask} after truncation: {bad!r}")
            with torch.inference_mode():
                logits = self._masked_lm(**batch).logits[where]
            out[chunk] = torch.log_softmax(logits.double(), dim=-1)[:, token_ids].numpy()
        return out

    def clear_cache(self) -> None:
        self._cache.clear()
        self._mask_cache.clear()


def _mean_pool(hidden, mask, torch) -> np.ndarray:
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


_ENGINES: dict[str, Engine] = {}


def get_engine(ref: str) -> Engine:
    """The process-wide engine for a checkpoint reference: each model loads once."""
    checkpoint = resolve(ref)
    engine = _ENGINES.get(checkpoint.sha256)
    if engine is None:
        engine = _ENGINES[checkpoint.sha256] = Engine(checkpoint)
    return engine
