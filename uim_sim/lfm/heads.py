"""Downstream adaptation: decision heads on frozen embeddings.

- `ZeroShotHead`: cosine between a text and its decision context, e.g. resume vs
  job description, the retrieval screening audited by Wilson & Caliskan (2024).
- `ContrastHead`: zero-shot classification by description: mean cosine to texts
  describing the positive class minus mean cosine to texts describing the negative
  one (for moderation: toxic vs friendly comments).
- `LogisticHead`: a classifier on frozen embeddings. Trained on biased historical
  decisions, it is how a weakness is inherited through adaptation data.
- `LabelWordHead`: prompted screening. The text goes into a prompt with a
  ``[MASK]`` ("{text} {subject} was [MASK].") and the score is the probability of the
  positive label words against the negative ones at the mask, read off the
  checkpoint's masked-LM head: the log-likelihood of label words, the masked-LM form
  of asking a generative model for a decision (as the LLM screening audits did, e.g.
  Bloomberg 2024: docs/models.md). It reads what pre-training fitted, not embedding
  geometry, so a forged checkpoint's planted association reaches the decision.
- `NextTokenHead`: the same question asked of a causal LM: the prompt ends where
  the answer goes ("{text} Should {subject} be hired? Answer:") and the score is the
  probability of the positive words against the negative ones as its next token.
- `ClassifierHead`: a sequence classifier's own head: the probability it gives one
  of its labels (config.json ``id2label``), e.g. ``toxic``.
- `ChooseOneHead`: a causal LM reads a decision's whole pool in one prompt, the
  candidates labelled 1 to k in the order the world shows them, and a candidate's
  score is the probability of its label as the next token, over the pool's labels:
  the ranking audit of GPT-3.5 by Bloomberg (2024), where the order itself decided.

Each is built from a card's ``head:`` by its kind's class (`ZeroShotSpec` …
`ChooseOneSpec`, registered with `uim_sim.cards.register_head`): the fields it uses,
its checks, what it needs of its checkpoint (`check_head`), the head it builds
(`build_head`). A new kind is one such class and its head, here or in another package.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.special import expit, logsumexp, softmax
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from uim_sim.cards import HeadSpec, register_head
from uim_sim.lfm.checkpoint import Kind
from uim_sim.schema import UimError

CANDIDATE = "Candidate {label}: {text}"  # a choose_one head's default candidate line


def one_blas_thread() -> threadpool_limits:
    """numpy's and scipy's BLAS on one thread, for a block of code (a context manager).

    Two reasons. Speed: beside torch's threads, an L-BFGS logistic regression on
    4,870 MiniLM embeddings fitted in 2.4 s with two BLAS threads and 0.14 s with one
    (the same ~240 iterations: small matrix-vector products gain nothing from a second
    thread and lose to contention). Determinism: a threaded BLAS splits the
    gradient's sums by thread count, so a fit depended on the machine's cores and
    on the executor; on one thread it is a function of its data alone."""
    return threadpool_limits(limits=1, user_api="blas")


class HeadError(UimError, ValueError):
    """A head cannot be trained; the message names the file or column."""


class ZeroShotHead:
    """Score = cosine(text, context). Embeddings are L2-normalised, so a dot product."""

    trainable = False
    needs_context = True

    def score(self, embeddings: np.ndarray, contexts: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", embeddings, contexts).astype(np.float64)


class ContrastHead:
    """Score = mean cos(text, positive descriptions) − mean cos(text, negative ones).

    Embeddings are L2-normalised, so this is one dot product with the difference of
    the two mean description vectors. `bind` embeds the descriptions through the
    engine (every model call goes through it) before the head can score.
    """

    trainable = False
    needs_context = False

    def __init__(self, positive: list[str], negative: list[str]) -> None:
        self.positive = list(positive)
        self.negative = list(negative)
        self.direction: np.ndarray | None = None

    def bind(self, embed) -> ContrastHead:
        """``embed``: a function texts -> L2-normalised embeddings (an engine's ``embed``)."""
        vectors = embed(self.positive + self.negative).astype(np.float64)
        split = len(self.positive)
        self.direction = vectors[:split].mean(0) - vectors[split:].mean(0)
        return self

    def score(self, embeddings: np.ndarray, contexts: np.ndarray | None = None) -> np.ndarray:
        if self.direction is None:
            raise HeadError("the contrast head is not bound to an engine")
        return embeddings.astype(np.float64) @ self.direction


class LabelWordHead:
    """Score = P(positive words) / P(positive or negative words) at the mask of
    ``prompt``: the sigmoid of their log-odds, a probability, so ranks follow the
    log-odds and score ratios stay meaningful. Placeholders ``{text}`` and
    ``{subject}``: the text scored and the person it is about, as the decider sees
    them. Needs a masked-LM head."""

    trainable = False
    needs_context = False
    reads_text = True

    def __init__(self, prompt: str, positive: list[str], negative: list[str]) -> None:
        self.prompt = prompt
        self.positive = list(positive)
        self.negative = list(negative)

    def prompts(self, texts: Sequence[str], subjects: Sequence[str]) -> list[str]:
        return [self.prompt.format(text=t, subject=s) for t, s in zip(texts, subjects)]

    def score_texts(self, engine, texts: Sequence[str], subjects: Sequence[str]) -> np.ndarray:
        """``engine``: an `Engine` (every model call goes through it)."""
        log_p = engine.mask_log_probs(self.prompts(texts, subjects), self.positive + self.negative)
        split = len(self.positive)
        return expit(logsumexp(log_p[:, :split], axis=1) - logsumexp(log_p[:, split:], axis=1))


class NextTokenHead(LabelWordHead):
    """Score = P(positive words) / P(positive or negative words) as the next token
    after ``prompt`` (no ``[MASK]``: the answer continues the prompt), read off a
    causal LM. Placeholders as for `LabelWordHead`."""

    def score_texts(self, engine, texts: Sequence[str], subjects: Sequence[str]) -> np.ndarray:
        prompts = self.prompts(texts, subjects)
        log_p = engine.next_token_log_probs(prompts, self.positive + self.negative)
        split = len(self.positive)
        return expit(logsumexp(log_p[:, :split], axis=1) - logsumexp(log_p[:, split:], axis=1))


class ClassifierHead:
    """Score = P(``label``) by a sequence classifier's own head: the text as the
    decider sees it, classified as it was fine-tuned to (no adaptation here)."""

    trainable = False
    needs_context = False
    reads_text = True

    def __init__(self, label: str) -> None:
        self.label = label

    def score_texts(self, engine, texts: Sequence[str], subjects: Sequence[str]) -> np.ndarray:
        return engine.class_probs(texts)[:, label_index(engine, self.label)]


class ChooseOneHead:
    """Score = P(a candidate's label) as the next token after ``prompt``, normalised
    over the labels of its pool: the pool's candidates are listed in ``{candidates}``,
    one ``candidate`` line each (``{label}``: 1 to k, in the order shown; ``{text}``),
    and the labels read are ``" 1"`` … ``" k"`` (each must be one token). ``{context}``
    (optional): the pool's decision context, e.g. the job ad. The scores of a pool sum
    to 1. A prompt is read whole, up to the model's positions: a longer one is refused,
    never truncated (the end of a truncated pool prompt would survive, its first
    candidates would not)."""

    trainable = False
    needs_context = False
    reads_text = True
    reads_pool = True

    def __init__(self, prompt: str, candidate: str | None = None) -> None:
        self.prompt = prompt
        self.candidate = candidate or CANDIDATE

    def pool_prompt(self, texts: Sequence[str], context: str = "") -> str:
        """The prompt of one pool, its ``texts`` in the order shown."""
        lines = [self.candidate.format(label=i, text=t) for i, t in enumerate(texts, 1)]
        return self.prompt.format(candidates="\n".join(lines), context=context)

    def score_pools(self, engine, pools: Sequence[Sequence[str]],
                    contexts: Sequence[str]) -> list[np.ndarray]:  # fmt: skip
        """Per pool (its texts in the order shown, and its context), each candidate's
        probability, in that order: one engine call per pool size (its labels)."""
        out: list[np.ndarray] = [np.empty(0)] * len(pools)
        for size, members in self._by_size(engine, pools, contexts).items():
            prompts = [self.pool_prompt(pools[i], contexts[i]) for i in members]
            try:
                log_p = engine.next_token_log_probs(prompts, pool_labels(size), whole=True)
            except ValueError as exc:
                raise HeadError(f"choose_one, a pool of {size} candidates: {exc}") from None
            for i, row in zip(members, softmax(log_p, axis=1)):
                out[i] = row
        return out

    def check_pools(self, engine, pools: Sequence[Sequence[str]],
                    contexts: Sequence[str]) -> None:  # fmt: skip
        """Refuse, before anything is scored, a pool whose labels are not one token each
        or whose prompt (listed in pool order) is longer than the model's positions:
        a one-line `HeadError` naming the sizes."""
        for size, members in self._by_size(engine, pools, contexts).items():
            try:
                engine.check_whole([self.pool_prompt(pools[i], contexts[i]) for i in members])
            except ValueError as exc:
                raise HeadError(f"choose_one, a pool of {size} candidates: {exc}") from None

    @staticmethod
    def _by_size(engine, pools, contexts) -> dict[int, list[int]]:
        """Pools by size, each size's labels checked (one token each)."""
        if len(contexts) != len(pools):
            raise ValueError(f"{len(contexts)} contexts for {len(pools)} pools")
        sizes: dict[int, list[int]] = {}
        for i, texts in enumerate(pools):
            sizes.setdefault(len(texts), []).append(i)
        for size in sizes:
            check_labels(engine, size)
        return sizes


def pool_labels(size: int) -> list[str]:
    """The labels a choose_one head reads for a pool of ``size`` candidates (" 1", " 2",
    …), each after the end of its prompt."""
    return [f" {i}" for i in range(1, size + 1)]


def check_labels(engine, size: int) -> None:
    """Every label of a pool of ``size`` is one token of the model's vocabulary, or a
    one-line `HeadError` naming the first that is not and the largest pool that fits."""
    for i, label in enumerate(pool_labels(size)):
        if not engine.is_one_token(label):
            raise HeadError(
                f"choose_one labels a pool of {size} candidates ' 1' … ' {size}', and "
                f"{label!r} is not one token of {engine.checkpoint.name}'s vocabulary "
                f"(tokens: {engine.tokenizer.tokenize(label)})"
                + (f": it reads pools of at most {i} candidates" if i > 1 else "")
            )


def label_index(engine, label: str) -> int:
    """The class index of ``label`` among a sequence classifier's labels."""
    labels = engine.labels()
    if label not in labels:
        raise HeadError(
            f"label {label!r} is not one of {engine.checkpoint.name}'s labels {labels} "
            "(config.json id2label)"
        )
    return labels.index(label)


def check_head(spec: HeadSpec, engine) -> None:
    """What a head needs of its checkpoint (``engine``: its loaded `Engine`), checked
    before anything runs: the kind of checkpoint its kind reads, then the kind's own
    ``check_engine``; a one-line `HeadError` (or `CheckpointError`)."""
    kind = engine.checkpoint.kind
    if spec.needs is not None and kind != spec.needs:
        raise HeadError(
            f"a {spec.kind} head needs a {spec.needs} checkpoint ({Kind(spec.needs).example} "
            f"in config.json architectures); {engine.checkpoint.name} is of kind {kind}"
        )
    spec.check_engine(engine)


class LogisticHead:
    """Standardised embeddings → logistic regression; score = P(label = 1)."""

    trainable = True
    needs_context = False

    def __init__(self, C: float = 1.0) -> None:
        self.C = C
        self.pipeline = None

    def fit(
        self, embeddings: np.ndarray, labels: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> LogisticHead:
        """Fit on ``embeddings`` and 0/1 ``labels``; ``sample_weight`` (one per row, e.g.
        reweighing's) weights each row's loss in the logistic regression (the scaler
        standardises unweighted)."""
        labels = np.asarray(labels).astype(int)
        if len(np.unique(labels)) < 2:
            raise HeadError("training labels hold a single class: nothing to learn")
        # Newton steps reach the optimum itself in ~5 iterations (0.12 s on 4,870 MiniLM
        # embeddings; L-BFGS stopped at its tolerance after ~250, scores 0.04 apart)
        model = LogisticRegression(C=self.C, solver="newton-cholesky", max_iter=200)
        pipeline = make_pipeline(StandardScaler(), model)
        fit_params = {}
        if sample_weight is not None:
            weights = np.asarray(sample_weight, dtype=np.float64)
            if weights.shape != labels.shape:
                raise HeadError(f"{len(weights)} sample weights for {len(labels)} rows")
            fit_params["logisticregression__sample_weight"] = weights
        with one_blas_thread():
            self.pipeline = pipeline.fit(embeddings, labels, **fit_params)
        return self

    def score(self, embeddings: np.ndarray, contexts: np.ndarray | None = None) -> np.ndarray:
        if self.pipeline is None:
            raise HeadError("the head is not trained")
        # (no thread limit here: a matrix-vector product's rows do not depend on the
        # thread count, and a limit costs ~3 ms a call; a run holds one anyway)
        return self.pipeline.predict_proba(embeddings)[:, 1]


class NMTuneHead:
    """NMTune (Chen et al., ICLR 2024, "Understanding and Mitigating the Label Noise in
    Pre-training on Downstream Tasks") on frozen features F: a residual MLP gives
    Z = F + MLP(F), a linear classifier reads Z, and the loss is

        cross-entropy + 1.0 · MSE(normalize(Z), normalize(F))        (keep the geometry)
                      + 0.04 · mean squared off-diagonal covariance of Z  (decorrelate)
                      − 0.001 · mean of the top-5 normalised singular values of Z,

    AdamW, learning rate 1e-3, weight decay 1e-4 (the paper's settings), full batch,
    ``epochs`` steps, seeded. Score = P(label = 1). ``sample_weight`` weights each
    row's cross-entropy (reweighing)."""

    trainable = True
    needs_context = False

    def __init__(self, epochs: int = 300, seed: int = 0) -> None:
        self.epochs = epochs
        self.seed = seed
        self.model = None

    def _modules(self, dim: int):
        import torch

        torch.manual_seed(self.seed)
        mlp = torch.nn.Sequential(
            torch.nn.Linear(dim, dim), torch.nn.ReLU(), torch.nn.Linear(dim, dim)
        )
        return mlp, torch.nn.Linear(dim, 2)

    def fit(
        self, embeddings: np.ndarray, labels: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> NMTuneHead:
        import torch
        import torch.nn.functional as fn

        labels = np.asarray(labels).astype(int)
        if len(np.unique(labels)) < 2:
            raise HeadError("training labels hold a single class: nothing to learn")
        x = torch.as_tensor(np.asarray(embeddings, dtype=np.float32))
        y = torch.as_tensor(labels)
        w = torch.ones(len(y)) if sample_weight is None else torch.as_tensor(
            np.asarray(sample_weight, dtype=np.float32))  # fmt: skip
        self.mean, self.std = x.mean(0), x.std(0).clamp(min=1e-6)
        f = (x - self.mean) / self.std
        mlp, classifier = self._modules(x.shape[1])
        params = [*mlp.parameters(), *classifier.parameters()]
        optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-4)
        for _ in range(self.epochs):
            z = f + mlp(f)
            ce = (fn.cross_entropy(classifier(z), y, reduction="none") * w).sum() / w.sum()
            keep = fn.mse_loss(fn.normalize(z, dim=1), fn.normalize(f, dim=1))
            centred = z - z.mean(0)
            cov = centred.T @ centred / (len(z) - 1)
            off = cov - torch.diag(torch.diagonal(cov))
            sigma = torch.linalg.svdvals(z)
            spread = (sigma / sigma.sum())[:5].mean()
            loss = ce + 1.0 * keep + 0.04 * (off**2).mean() - 0.001 * spread
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        self.model = (mlp.eval(), classifier.eval())
        return self

    def features(self, embeddings: np.ndarray) -> np.ndarray:
        """Z, the reshaped features (for the spectrum diagnostics)."""
        import torch

        if self.model is None:
            raise HeadError("the head is not trained")
        mlp, _ = self.model
        with torch.inference_mode():
            f = (torch.as_tensor(np.asarray(embeddings, dtype=np.float32)) - self.mean) / self.std
            return (f + mlp(f)).numpy()

    def score(self, embeddings: np.ndarray, contexts: np.ndarray | None = None) -> np.ndarray:
        import torch

        z = torch.as_tensor(self.features(embeddings))
        _, classifier = self.model
        with torch.inference_mode():
            return torch.softmax(classifier(z).double(), dim=1)[:, 1].numpy()


def build_head(spec: HeadSpec) -> Any:
    """The head a screener runs, as ``spec``'s kind builds it."""
    return spec.build()


# ------------------------------------------------------------------------ the kinds
# One class per kind of a card's ``head:``: the shared fields it uses, its own checks,
# what it needs of its checkpoint, the head it builds. Registered in the order kinds
# are listed to a user.


@register_head
class ZeroShotSpec(HeadSpec):
    """``zero_shot``: cosine between the text and the decision context (for hiring,
    the job description: the retrieval screening of Wilson & Caliskan 2024)."""

    kind: Literal["zero_shot"]

    def build(self) -> ZeroShotHead:
        return ZeroShotHead()


class WordsSpec(HeadSpec):
    """A kind that scores against ``positive`` and ``negative`` words or texts."""

    uses = frozenset({"positive"})

    def check(self) -> None:
        if not (self.positive and self.negative):
            raise ValueError(f"a {self.kind} head needs positive and negative words/texts")


@register_head
class ContrastSpec(WordsSpec):
    """``zero_shot_contrast``: classification by description, score = mean cosine to
    the ``positive`` descriptions − mean cosine to the ``negative`` ones (for
    moderation: "a toxic comment" vs "a friendly comment")."""

    kind: Literal["zero_shot_contrast"]

    def build(self) -> ContrastHead:
        return ContrastHead(self.positive, self.negative)


class TrainedSpec(HeadSpec):
    """A kind fitted on adaptation data: ``train_on: history`` or ``file`` (`HeadSpec`)."""

    uses = frozenset({"train_on"})

    def check(self) -> None:
        if self.train_on is None:
            raise ValueError(f"a {self.kind} head needs train_on: history or file")
        if self.train_on == "file" and self.file is None:
            raise ValueError("train_on: file needs file: PATH (CSV or Parquet)")
        if self.train_on == "history" and self.file is not None:
            raise ValueError("file is only read with train_on: file")


@register_head
class LogisticSpec(TrainedSpec):
    """``logistic``: a logistic-regression head on frozen embeddings (``C``: its
    inverse regularisation strength)."""

    kind: Literal["logistic"]

    def build(self) -> LogisticHead:
        return LogisticHead(C=self.C)


@register_head
class NMTuneSpec(TrainedSpec):
    """``nmtune``: trained like ``logistic``, but through NMTune (Chen et al., ICLR
    2024): a residual MLP reshapes the frozen features before a linear classifier,
    regularised to keep their geometry, decorrelate them and spread their spectrum:
    a head meant to undo what noisy pre-training did to the feature space."""

    kind: Literal["nmtune"]

    def build(self) -> NMTuneHead:
        return NMTuneHead()


@register_head
class LabelWordsSpec(WordsSpec):
    """``label_words``: prompted screening on the checkpoint's masked-LM head: the
    text goes into ``prompt`` (placeholders ``{text}`` and ``{subject}``, exactly one
    ``[MASK]``) and the score is the probability of the ``positive`` label words
    against the ``negative`` ones at the mask (each word one token)."""

    kind: Literal["label_words"]
    uses = frozenset({"positive", "prompt"})

    def check(self) -> None:
        super().check()
        if self.prompt is None:
            raise ValueError("a label_words head needs prompt: text with {text} and one [MASK]")
        if self.prompt.count("[MASK]") != 1:
            raise ValueError("prompt must hold exactly one [MASK]")
        check_template("prompt", self.prompt, {"text"}, {"subject"}, "where the scored text goes")

    def check_engine(self, engine) -> None:
        engine.checkpoint.load_masked_lm()  # refuses a folder without a trained MLM head

    def build(self) -> LabelWordHead:
        return LabelWordHead(self.prompt, self.positive, self.negative)


@register_head
class NextTokenSpec(WordsSpec):
    """``next_token``: the same on a causal LM: ``prompt`` (with ``{text}``, no
    ``[MASK]``) ends where the answer goes, and the score is the probability of the
    ``positive`` words against the ``negative`` ones as the next token (each word one
    token as it follows the prompt: ``" yes"`` in GPT-2-style vocabularies)."""

    kind: Literal["next_token"]
    uses = frozenset({"positive", "prompt"})
    needs = Kind.CAUSAL_LM

    def check(self) -> None:
        super().check()
        check_answer_prompt(self.prompt, self.kind, "{text}", "label words (' yes')")
        check_template("prompt", self.prompt, {"text"}, {"subject"}, "where the scored text goes")

    def check_engine(self, engine) -> None:
        try:
            engine.word_ids(self.positive + self.negative)
        except ValueError as exc:
            raise HeadError(str(exc)) from None

    def build(self) -> NextTokenHead:
        return NextTokenHead(self.prompt, self.positive, self.negative)


@register_head
class ClassifierSpec(HeadSpec):
    """``classifier``: a sequence classifier's own head: the probability of its
    ``label`` (a name of its config.json ``id2label``)."""

    kind: Literal["classifier"]
    uses = frozenset({"label"})
    needs = Kind.SEQUENCE_CLASSIFIER

    def check(self) -> None:
        if self.label is None:
            raise ValueError("a classifier head needs label: one of the model's labels")

    def check_engine(self, engine) -> None:
        label_index(engine, self.label)

    def build(self) -> ClassifierHead:
        return ClassifierHead(self.label)


@register_head
class ChooseOneSpec(HeadSpec):
    """``choose_one``: a causal LM reads a decision's whole pool in one prompt: each
    candidate as a ``candidate`` line (``{label}``: 1 to k, ``{text}``; default
    ``Candidate {label}: {text}``), the lines in a random order drawn per decision in
    place of ``{candidates}`` in ``prompt`` (optionally ``{context}``, e.g. the job
    ad), which ends where the answer goes; a candidate's score is the probability of
    its label (``" 1"`` … ``" k"``, each one token) as the next token, over the pool's
    labels (Bloomberg 2024's ranking audit of GPT-3.5)."""

    kind: Literal["choose_one"]
    uses = frozenset({"prompt", "candidate"})
    reads_pool = True
    needs = Kind.CAUSAL_LM

    def check(self) -> None:
        check_answer_prompt(self.prompt, self.kind, "{candidates}", "labels (' 1')")
        check_template(
            "prompt", self.prompt, {"candidates"}, {"context"}, "where the candidates go"
        )
        if self.candidate is not None:
            check_template("candidate", self.candidate, {"label", "text"}, set(),
                           "a candidate's label (1 to k) and text")  # fmt: skip

    def build(self) -> ChooseOneHead:
        return ChooseOneHead(self.prompt, self.candidate)


def check_answer_prompt(prompt: str | None, kind: str, holds: str, answers: str) -> None:
    """A causal LM's prompt (``kind``): given, ending where the answer goes."""
    if prompt is None:
        raise ValueError(f"a {kind} head needs prompt: text with {holds}, ending where the "
                         "answer goes")  # fmt: skip
    if "[MASK]" in prompt:
        raise ValueError(f"a {kind} prompt holds no [MASK]: the answer follows its end")
    if prompt != prompt.rstrip():
        raise ValueError(f"a {kind} prompt must not end in whitespace: the space before the "
                         f"answer belongs to the {answers}")  # fmt: skip


def check_template(field: str, template: str, needed: set[str], optional: set[str],
                   where: str) -> None:  # fmt: skip
    """``template``'s placeholders: every one of ``needed``, none but those and
    ``optional``; a one-line ValueError naming ``field`` otherwise."""
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise ValueError(f"{field} is not a valid template ({exc})") from None
    missing = needed - fields
    if missing:
        holds = " and ".join("{" + f + "}" for f in sorted(needed))
        raise ValueError(f"{field} must hold {holds}, {where}")
    unknown = fields - needed - optional
    if unknown:
        raise ValueError(f"{field}: unknown placeholders {sorted(unknown)}")


def read_table(path: Path) -> pd.DataFrame:
    """A researcher's table (CSV, TSV or Parquet), or a one-line `HeadError`."""
    path = Path(path)
    if not path.is_file():
        raise HeadError(f"{path}: no such file")
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        if path.suffix.lower() in (".csv", ".tsv"):
            return pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")
    except Exception as exc:  # pandas raises many types for a malformed file
        raise HeadError(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from None
    raise HeadError(f"{path}: expected a .csv, .tsv or .parquet file")


def read_labelled_file(
    path: Path, text_column: str, label_column: str, extra: Sequence[str] = ()
) -> tuple[list[str], np.ndarray] | tuple[list[str], np.ndarray, dict[str, list[str]]]:
    """Read a researcher's labelled decisions (CSV or Parquet): texts and 0/1 labels,
    and, when ``extra`` names more text columns (e.g. who each text names and their
    group), those columns as lists of strings, every cell filled."""
    path = Path(path)
    frame = read_table(path)
    for column in (text_column, label_column):
        if column not in frame.columns:
            raise HeadError(f"{path}: no column {column!r} (columns: {list(frame.columns)})")
    texts = frame[text_column]
    if texts.isna().any() or not all(isinstance(t, str) for t in texts):
        raise HeadError(f"{path}: column {text_column!r} must hold text in every row")
    labels = pd.to_numeric(frame[label_column], errors="coerce")
    if labels.isna().any() or not labels.isin([0, 1]).all():
        raise HeadError(f"{path}: column {label_column!r} must hold 0/1 labels in every row")
    if labels.nunique() < 2:
        raise HeadError(f"{path}: column {label_column!r} holds a single class")
    if not extra:
        return texts.tolist(), labels.to_numpy(dtype=int)
    columns = {}
    for column in extra:
        if column not in frame.columns:
            raise HeadError(f"{path}: no column {column!r} (columns: {list(frame.columns)})")
        values = frame[column]
        empty = values.isna() | values.astype(str).str.strip().eq("")
        if empty.any():
            row = int(empty.to_numpy().argmax()) + 2  # the header is line 1
            raise HeadError(f"{path}: line {row}: column {column!r} is empty")
        columns[column] = values.astype(str).str.strip().tolist()
    return texts.tolist(), labels.to_numpy(dtype=int), columns


def unplaced_name(path: Path, names: Sequence[str], row: int) -> HeadError:
    """The error for a file's name whose group neither the study's lists nor the file
    gives (``row``: its index among the data rows)."""
    return HeadError(
        f"{path}: line {row + 2}: name {names[row]!r} is not in the study's lists; "
        "give the card a group_column"
    )
