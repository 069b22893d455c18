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

On an Intel Xeon with AVX-512 and AMX, buckets were not enough: MKL split its sums by
shape and thread count (55 of 304 MiniLM texts changed bits with their company or
the threads, 4 of 304 even in batches of one fixed shape). MKL's strict conditional
numerical reproducibility, which uim-sim asks for (`uim_sim.lfm.numerics`), brings
that to none at the same speed; the engine checks it is in force when it starts.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from uim_sim.lfm.checkpoint import (
    Checkpoint,
    CheckpointError,
    first_line,
    resolve,
)
from uim_sim.lfm.device import (
    GPU_BUCKET,
    GPU_ROWS,
    compute_dtype,
    free_memory,
    gpu_batch_rows,
    pick_device,
)
from uim_sim.lfm.numerics import ensure_reproducible

BUCKET = 2  # tokens: the width of a length bucket
BATCH_ROWS = 32  # the most rows of a forward pass (texts of one bucket); the least is 2
# the most tokens of a forward pass on the CPU: BATCH_ROWS rows up to 256 tokens wide,
# fewer rows (2 at least) in wider buckets (whole prompts of a choose_one head)
BATCH_TOKENS = BATCH_ROWS * 256
# positions whose logits a causal LM computes (logits_to_keep) for a prompt's next token
LAST_POSITIONS = 4
CLASSIFIER_ROWS = 4  # a sequence classifier's batches hold a multiple of this many rows


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
    """Batched, de-duplicated, cached inference on one checkpoint.

    Embeddings: mean pooling over the attention mask, then L2 normalisation: for
    all-MiniLM-L6-v2 this equals the sentence-transformers output. A debiased
    checkpoint's projection (`Checkpoint.projection`) is applied to the pooled vector
    before the normalisation; masked-LM scoring reads the hidden states and is not
    affected by it. A causal LM or a sequence classifier embeds with the model under
    its head, and scores with its head: the log-probability of a next token after a
    prompt (`next_token_log_probs`), its class probabilities (`class_probs`).

    ``device``: ``cpu`` (fp32, the bit-invariant batches), ``cuda`` or ``auto``
    (`uim_sim.lfm.device`). ``precision``: the CPU's dtype, ``fp32`` (the default),
    ``bf16`` (refused on a CPU without native bf16) or ``auto`` (`compute_dtype`).
    """

    def __init__(self, checkpoint: Checkpoint, max_length: int = 256, device: str = "cpu",
                 precision: str = "fp32") -> None:  # fmt: skip
        import torch

        self._torch = torch
        self.checkpoint = checkpoint
        self.max_length = max_length
        self.device = pick_device(device)
        self.dtype = compute_dtype(self.device, precision)  # refused before anything loads
        if self.device == "cpu":
            ensure_reproducible()  # MKL's sums: independent of company and threads
        self.tokenizer, self.network = checkpoint.load(self.device, self._weights_dtype())
        self.model = self.network.base_model  # the encoder under any head: embeddings
        _count_load()
        self._caches: dict[tuple[str, ...], dict[str, np.ndarray]] = {}
        self._masked_lm = None  # loaded on first label-word scoring
        self.counters = Counters()
        self.dim = int(self.model.config.hidden_size)
        projection = checkpoint.projection()
        if projection is not None and projection.shape[0] != self.dim:
            raise ValueError(
                f"{checkpoint.ref}: projection is {projection.shape[0]}-dimensional, "
                f"the encoder {self.dim}"
            )
        self._projection = (
            None if projection is None else torch.from_numpy(projection).to(self.device)
        )
        positions = getattr(self.model.config, "max_position_embeddings", None)
        if isinstance(positions, int) and positions > 0:
            self.max_length = min(max_length, positions)  # small forged models: 64
        # the longest prompt read whole (`next_token_log_probs(whole=True)`): every
        # position the model has, where its config says how many
        self.positions = positions if isinstance(positions, int) and positions > 0 else max_length
        # a causal LM computes logits at its last positions only where it can (else all)
        forward = inspect.signature(self.network.forward).parameters
        self._last_only = {"logits_to_keep": LAST_POSITIONS} if "logits_to_keep" in forward else {}
        self._free = free_memory(self.device)
        self._gpu_rows: dict[int, int] = {}
        self._eos_appended: bool | None = None  # read off the tokenizer when first needed
        # on a GPU every batch of a bucket has one shape (filled with copies): a GPU's
        # kernels are chosen by shape, and only a fixed shape keeps a row's bits its own
        self.bucket = BUCKET if self.device == "cpu" else GPU_BUCKET
        self.gpu_rows = GPU_ROWS

    def _weights_dtype(self):
        """The dtype the weights are held in: on the CPU always fp32 (bf16 there is mixed
        precision: `_forward`); on a GPU the compute dtype."""
        return self._torch.float32 if self.device == "cpu" else self.dtype

    def _forward(self, module, **batch):
        """``module(**batch)`` without gradients, in the engine's precision. On the CPU in
        bf16, mixed precision (``torch.autocast``): matrix products in bf16, weights,
        layer norms, softmax and the residual stream in fp32. Measured on an AMD EPYC
        with AVX512-BF16 (MiniLM, 768 resume-like texts, 2 threads): the same speed as
        casting the whole model to bf16 (355 vs 351 texts/s; fp32 190), and a third of
        its error (lowest cosine to fp32 0.99997 vs 0.99990; a steep logistic score moved
        at most 0.025 vs 0.051; 0.26 % vs 0.52 % of threshold decisions flipped)."""
        torch = self._torch
        with torch.inference_mode():
            if self.device == "cpu" and self.dtype != torch.float32:
                with torch.autocast("cpu", dtype=self.dtype):
                    return module(**batch)
            return module(**batch)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts`` as a float32 array of shape (len(texts), dim)."""
        return self._cached(("embed",), texts, self._encode, self.dim, np.float32)

    def _cached(self, key: tuple[str, ...], texts: Sequence[str], compute, width: int,
                dtype) -> np.ndarray:  # fmt: skip
        """One row per text: cached rows of the cache ``key``, ``compute`` (a function
        of a list of distinct new texts) for the others; counted."""
        cache = self._caches.setdefault(key, {})
        self.counters.calls += 1
        self.counters.texts_requested += len(texts)
        new = [t for t in dict.fromkeys(texts) if t not in cache]
        self.counters.cache_hits += len(texts) - len(new)
        if new:
            start = time.perf_counter()
            for text, row in zip(new, compute(new), strict=True):
                cache[text] = row
            self.counters.model_seconds += time.perf_counter() - start
            self.counters.texts_encoded += len(new)
        if not texts:
            return np.zeros((0, width), dtype=dtype)
        return np.stack([cache[t] for t in texts])

    def _encode(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for chunk, batch in self._batches(texts):
            hidden = self._forward(self.model, **batch).last_hidden_state.float()
            pooled = _mean_pool(hidden, batch["attention_mask"], self._projection, self._torch)
            out[chunk] = pooled[: len(chunk)]
        return out

    def _batches(self, texts: list[str], left: bool = False, rows_multiple: int = 1,
                 whole: bool = False):  # fmt: skip
        """(row indices, batch) over ``texts``: each batch holds 2 to ``BATCH_ROWS``
        texts of one length bucket, padded to its width (a lone text twice: the rows
        after ``len(indices)`` are copies), so a row's result depends on its text alone.
        ``rows_multiple``: copies of the last text fill the batch to a multiple of that
        many rows (for a head that reads one vector a row: `_classify`).

        ``left``: for a causal LM's next token, padded on the left (the last position
        is every row's last token), truncated from the left (the end of a prompt is
        where its answer goes) and given position ids that start at its first real
        token: without them a padded row reads its tokens at shifted positions.
        ``whole`` (with ``left``): never truncated; read up to the model's positions,
        a longer text is a one-line ValueError (`check_whole`)."""
        limit = self.positions if whole else self.max_length
        if left:
            ids = self._prompt_ids(texts)
        else:
            ids = self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
        if whole:
            self._fits(ids)
        elif left:
            ids = [row[-self.max_length :] for row in ids]
        buckets: dict[int, list[int]] = {}
        for i, row in enumerate(ids):
            width = min(-(-len(row) // self.bucket) * self.bucket, limit)
            buckets.setdefault(width, []).append(i)
        for width, members in sorted(buckets.items()):
            rows_per_batch = self._rows(width)
            for lo in range(0, len(members), rows_per_batch):
                chunk = members[lo : lo + rows_per_batch]
                rows = [ids[i] for i in chunk]
                held = max(2, -(-len(rows) // rows_multiple) * rows_multiple)
                if self._free is not None:
                    held = rows_per_batch  # a GPU: one shape a bucket
                rows += rows[-1:] * (held - len(rows))  # copies of the last text
                batch = self.tokenizer.pad(
                    {"input_ids": rows}, padding="max_length", max_length=width,
                    padding_side="left" if left else "right", return_tensors="pt",
                )  # fmt: skip
                if left:
                    batch["position_ids"] = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)
                yield chunk, {k: v.to(self.device) for k, v in batch.items()}

    def _rows(self, width: int) -> int:
        """The most rows of a batch of ``width`` tokens: ``BATCH_ROWS`` on the CPU (the
        measured bit-invariant batches); on a GPU ``gpu_rows``, fewer (a multiple of 8)
        where the memory free at load holds fewer, and every batch filled to it."""
        if self._free is None:
            return max(2, min(BATCH_ROWS, BATCH_TOKENS // width))
        if width not in self._gpu_rows:
            itemsize = self._torch.finfo(self.dtype).bits // 8
            fits = gpu_batch_rows(self._free, width, self.network.config, itemsize)
            self._gpu_rows[width] = min(self.gpu_rows, fits)
        return self._gpu_rows[width]

    # ------------------------------------------------------ masked-LM scoring

    def mask_log_probs(self, prompts: Sequence[str], words: Sequence[str]) -> np.ndarray:
        """log P(word at the mask) for each prompt (one ``[MASK]`` each) and word.

        The label-word scoring of prompted screening: the model is asked to fill in a
        decision ("... was [MASK].") and the log-probabilities of the candidate words
        are read off its masked-LM head. Batched, de-duplicated and cached like
        embeddings (by prompt and word list); counted in the same counters. Every word
        must be one token of the vocabulary.
        """
        token_ids = self.word_ids(words)
        return self._cached(("mask", *words), prompts, lambda new: self._fill(new, token_ids),
                            len(words), np.float64)  # fmt: skip

    def _token_id(self, word: str) -> int | None:
        """The vocabulary id of ``word`` if it is exactly one known token, else None."""
        pieces = self.tokenizer.tokenize(word)
        if len(pieces) != 1:
            return None
        token = self.tokenizer.convert_tokens_to_ids(pieces[0])
        return None if token is None or token == self.tokenizer.unk_token_id else token

    def is_one_token(self, word: str) -> bool:
        return self._token_id(word) is not None

    def word_ids(self, words: Sequence[str]) -> list[int]:
        """The vocabulary id of each label word; a one-line ValueError for a word that
        is not one token."""
        ids = []
        for word in words:
            token = self._token_id(word)
            if token is None:
                space = (" " + word) if not word.startswith(" ") else None
                hint = (
                    f"; {space!r}, with the space before it, is"
                    if space is not None and self.is_one_token(space)
                    else ""
                )
                raise ValueError(
                    f"label word {word!r} is not one token of {self.checkpoint.name}'s "
                    f"vocabulary (tokens: {self.tokenizer.tokenize(word)}){hint}"
                )
            ids.append(token)
        return ids

    def _fill(self, prompts: list[str], token_ids: list[int]) -> np.ndarray:
        torch = self._torch
        if self._masked_lm is None:
            self._masked_lm = self.checkpoint.load_masked_lm(self.device, self._weights_dtype())
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
            logits = self._forward(self._masked_lm, **batch).logits[: len(chunk)][where]
            out[chunk] = torch.log_softmax(logits.double(), dim=-1)[:, token_ids].cpu().numpy()
        return out

    # ------------------------------------------------------ causal-LM scoring

    def next_token_log_probs(self, prompts: Sequence[str], words: Sequence[str],
                             whole: bool = False) -> np.ndarray:  # fmt: skip
        """log P(next token = word | prompt) for each prompt and word, read off a causal
        LM's head at the prompt's last position. Only the last ``LAST_POSITIONS``
        positions' logits are computed (``logits_to_keep``, where the model takes it),
        not one: the head's matrix product then has 4 rows a prompt, each prompt's
        starting on a multiple of 4, and a prompt's scores keep their bits in any
        company (the tiling argument of this module's docstring). Measured on this CPU
        (random GPT-2 and Llama-style models, 235-483 prompts in subsets of 3 to 200,
        one or two threads, lone prompts): with 1 position 40-58 prompts changed their
        last bits, with 2 positions 6-7, with 4 or 8 none. The cost is nil beside the
        forward pass (4 rows of the vocabulary matrix a prompt).

        Batched like embeddings (length buckets, left padding with position ids: a
        prompt scores the same alone and among longer ones), de-duplicated and cached
        by prompt and word list, counted in the same counters. Every word must be one
        token, as it follows the prompt (GPT-2-style vocabularies: ``" yes"``).

        A prompt longer than ``max_length`` is cut from the left; with ``whole`` it is
        read whole, up to the model's ``positions``, and a longer one is a one-line
        ValueError naming both sizes (a pool of candidates in one prompt: cutting it
        would drop its first candidates silently).
        """
        if self.checkpoint.kind != "causal_lm":
            raise ValueError(
                f"{self.checkpoint.name}: next-token scoring needs a causal LM "
                f"(*ForCausalLM); this checkpoint is of kind {self.checkpoint.kind}"
            )
        token_ids = self.word_ids(words)
        key = ("whole" if whole else "next", *words)
        return self._cached(key, prompts, lambda new: self._next(new, token_ids, whole),
                            len(words), np.float64)  # fmt: skip

    def check_whole(self, prompts: Sequence[str]) -> None:
        """Would every prompt be read whole (`next_token_log_probs` with ``whole``)? A
        one-line ValueError naming the longest one's length and the model's positions."""
        if prompts:
            self._fits(self._prompt_ids(list(prompts)))

    def _prompt_ids(self, prompts: list[str]) -> list[list[int]]:
        """A causal LM's prompts as token ids, as its tokenizer writes them (a beginning
        token where it adds one) but without an end-of-text token that some tokenizers
        append (Llama's with ``add_eos_token``): the next token must follow the prompt,
        not the end of a text."""
        ids = self.tokenizer(prompts)["input_ids"]
        eos = self.tokenizer.eos_token_id
        if eos is None or not self._appends_eos():
            return ids
        return [row[:-1] if row and row[-1] == eos else row for row in ids]

    def _appends_eos(self) -> bool:
        """Does the tokenizer end every text with its end-of-text token?"""
        if self._eos_appended is None:
            eos = self.tokenizer.eos_token_id
            probe = [self.tokenizer(t)["input_ids"] for t in ("a", "hello there")]
            self._eos_appended = eos is not None and all(r and r[-1] == eos for r in probe)
        return self._eos_appended

    def _fits(self, ids: list[list[int]]) -> None:
        longest = max((len(row) for row in ids), default=0)
        if longest > self.positions:
            raise ValueError(
                f"a prompt of {longest:,} tokens is longer than the {self.positions:,} "
                f"positions {self.checkpoint.name} reads; refused (never truncated)"
            )

    def _next(self, prompts: list[str], token_ids: list[int], whole: bool = False) -> np.ndarray:
        torch = self._torch
        out = np.empty((len(prompts), len(token_ids)))
        for chunk, batch in self._batches(prompts, left=True, whole=whole):
            logits = self._forward(self.network, **batch, use_cache=False,
                                   **self._last_only).logits  # fmt: skip
            last = logits[: len(chunk), -1].double()
            out[chunk] = torch.log_softmax(last, dim=-1)[:, token_ids].cpu().numpy()
        return out

    # ------------------------------------------------------ classifier scoring

    def labels(self) -> list[str]:
        """A sequence classifier's label names, by class index (config.json id2label)."""
        config = self.network.config
        return [str(config.id2label.get(i, f"LABEL_{i}")) for i in range(config.num_labels)]

    def class_probs(self, texts: Sequence[str]) -> np.ndarray:
        """A sequence classifier's probability of each label (`labels`) for each text:
        softmax over its logits, or a sigmoid per label where config.json says
        ``problem_type: multi_label_classification`` or there is one label. Batched,
        de-duplicated, cached and counted like embeddings."""
        if self.checkpoint.kind != "sequence_classifier":
            raise ValueError(
                f"{self.checkpoint.name}: class probabilities need a sequence classifier "
                f"(*ForSequenceClassification); this checkpoint is of kind {self.checkpoint.kind}"
            )
        return self._cached(("classes",), texts, self._classify, len(self.labels()), np.float64)

    def _classify(self, texts: list[str]) -> np.ndarray:
        """Class probabilities, in batches of a multiple of 4 rows: a classifier's head
        multiplies one vector a row (BERT's pooler and classifier), and with a row count
        that is not a multiple of 4, 58 of 273 texts changed their last bits with their
        company on this CPU; with multiples of 4 (or 8), none of 319 did."""
        torch = self._torch
        config = self.network.config
        each = config.num_labels == 1 or config.problem_type == "multi_label_classification"
        out = np.empty((len(texts), config.num_labels))
        for chunk, batch in self._batches(texts, rows_multiple=CLASSIFIER_ROWS):
            logits = self._forward(self.network, **batch).logits[: len(chunk)].double()
            probs = torch.sigmoid(logits) if each else torch.softmax(logits, dim=-1)
            out[chunk] = probs.cpu().numpy()
        return out

    def clear_cache(self) -> None:
        self._caches.clear()


def _mean_pool(hidden, mask, projection, torch) -> np.ndarray:
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    if projection is not None:
        pooled = pooled @ projection
    return torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy()


_ENGINES: dict[tuple[str, str, str, str], Engine] = {}  # by `_engine_key`
_TWINS: dict[tuple[str, str, str, str], Engine] = {}  # fp32 twins of reduced engines
_LOADS = 0  # models this process loaded (encoders and masked-LM heads)


def _count_load() -> None:
    global _LOADS
    _LOADS += 1


def model_loads() -> int:
    """How many models this process has loaded from disk so far (an encoder per
    engine, and a masked-LM head where label words are scored): what an executor
    that keeps its workers' engines saves."""
    return _LOADS


def _engine_key(checkpoint: Checkpoint, device: str,
                precision: str = "fp32") -> tuple[str, str, str, str]:  # fmt: skip
    """An engine serves one model on one device in one dtype: weights, config and
    tokenizer (a folder with the same weights and another tokenizer is another
    model)."""
    where = pick_device(device)
    return checkpoint.sha256, checkpoint.settings, where, str(compute_dtype(where, precision))


def get_engine(ref: str, device: str = "cpu", precision: str = "fp32") -> Engine:
    """The process-wide engine for a checkpoint reference on a device, in a precision
    (a card's ``device`` and ``precision``): each model loads once per device and
    dtype."""
    checkpoint = resolve(ref)
    key = _engine_key(checkpoint, device, precision)
    engine = _ENGINES.get(key)
    if engine is None:
        engine = _ENGINES[key] = Engine(checkpoint, device=device, precision=precision)
    return engine


def reduced(engine: Engine) -> bool:
    """Does the engine compute on the CPU in less than fp32 (``precision: bf16``)?"""
    return engine.device == "cpu" and engine.dtype != engine._torch.float32


def fp32_twin(engine: Engine) -> Engine:
    """A second copy of a reduced engine's model in fp32 on the CPU (its own cache and
    counters, kept apart from the engines runs count): what `uim_sim.lfm.fidelity`
    re-scores a bf16 run's sample with."""
    key = _engine_key(engine.checkpoint, "cpu", "fp32")
    twin = _TWINS.get(key)
    if twin is None:
        twin = _TWINS[key] = Engine(engine.checkpoint, engine.max_length, "cpu", "fp32")
    return twin


def check_loads(ref: str, device: str = "cpu", precision: str = "fp32") -> Engine:
    """Open a checkpoint the way a run will: verified, then its tokenizer, model and
    projection loaded on ``device`` in ``precision`` (once per process: the run reuses
    the loaded engine, returned). Any failure is a one-line `CheckpointError`."""
    checkpoint = resolve(ref)
    key = _engine_key(checkpoint, device, precision)
    try:
        loaded = _ENGINES.get(key)
        if loaded is None:
            loaded = get_engine(ref, device, precision)  # kept: the run uses it
        elif loaded.checkpoint.path != checkpoint.path:  # the same weights, another folder
            loaded = Engine(checkpoint, device=device, precision=precision)
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
    return loaded


TOKENIZER_PROBE = "the people of the town"  # words any tokenizer of English knows
