"""Agent cards: what a population of deciders carries (a checkpoint, a head, a
decision rule), as pydantic models of the YAML files in ``agents/``.

    >>> card = load_card(Path("agents/minilm_zero_shot.yaml"))
    >>> card.checkpoint, card.head.kind, card.decision.rule
    ('builtin:minilm', 'zero_shot', 'top_share')
    >>> AgentCard(name="mine", head=HeadSpec(kind="zero_shot"), colour="red")
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for AgentCard
    ...
"""

from __future__ import annotations

import difflib
import string
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from uim_sim.schema import Name, Share, SpecError, Strict, digest, parse, read_yaml

FORGE_PREFIX = "forge:"  # a checkpoint forged from a corpus card: forge:PATH.yaml


TRAINED = ("logistic", "nmtune")  # head kinds fitted on adaptation data


class HeadSpec(Strict):
    """How a decider turns an embedding into a score.

    - ``zero_shot``: cosine between the text and the decision context (for hiring,
      the job description: the retrieval screening of Wilson & Caliskan 2024).
    - ``zero_shot_contrast``: classification by description, score = mean cosine to
      the ``positive`` descriptions − mean cosine to the ``negative`` ones (for
      moderation: "a toxic comment" vs "a friendly comment").
    - ``logistic``: a logistic-regression head on frozen embeddings, adapted on
      ``history`` (data the world generates, biased by ``history_bias``, a strength
      each world interprets: in hiring the log-odds penalty the historical decision
      makers put on the disadvantaged group, in moderation the log-odds by which
      identity terms co-occur with toxic labels) or on a researcher's own labelled
      ``file`` (CSV/Parquet).
    - ``nmtune``: trained like ``logistic``, but through NMTune (Chen et al., ICLR
      2024): a residual MLP reshapes the frozen features before a linear classifier,
      regularised to keep their geometry, decorrelate them and spread their spectrum:
      a head meant to undo what noisy pre-training did to the feature space.
    - ``label_words``: prompted screening on the checkpoint's masked-LM head: the
      text goes into ``prompt`` (placeholders ``{text}`` and ``{subject}``, exactly
      one ``[MASK]``) and the score is the probability of the ``positive`` label
      words against the ``negative`` ones at the mask (each word one token).
    - ``next_token``: the same on a causal LM: ``prompt`` (with ``{text}``, no
      ``[MASK]``) ends where the answer goes, and the score is the probability of the
      ``positive`` words against the ``negative`` ones as the next token (each word
      one token as it follows the prompt: ``" yes"`` in GPT-2-style vocabularies).
    - ``classifier``: a sequence classifier's own head: the probability of its
      ``label`` (a name of its config.json ``id2label``).
    - ``choose_one``: a causal LM reads a decision's whole pool in one prompt: each
      candidate as a ``candidate`` line (``{label}``: 1 to k, ``{text}``; default
      ``Candidate {label}: {text}``), the lines in a random order drawn per decision
      in place of ``{candidates}`` in ``prompt`` (optionally ``{context}``, e.g. the
      job ad), which ends where the answer goes; a candidate's score is the
      probability of its label (``" 1"`` … ``" k"``, each one token) as the next
      token, over the pool's labels (Bloomberg 2024's ranking audit of GPT-3.5).
    """

    kind: Literal[
        "zero_shot", "zero_shot_contrast", "logistic", "nmtune", "label_words", "next_token",
        "classifier", "choose_one",
    ]  # fmt: skip
    prompt: str | None = None
    candidate: str | None = None  # kind: choose_one, one candidate's line of the prompt
    label: Annotated[str, Field(min_length=1)] | None = None  # kind: classifier
    train_on: Literal["history", "file"] | None = None
    file: Path | None = None
    text_column: str = "text"
    label_column: str = "label"
    # who each text names and their group (train_on: file): names outside the study's
    # lists are then redacted and placed; without group_column, names must be known
    name_column: str | None = None
    group_column: str | None = None
    C: Annotated[float, Field(gt=0.0, le=1e6)] = 1.0  # inverse regularisation strength
    history_bias: Annotated[float, Field(ge=0.0, le=20.0)] = 0.0  # a log-odds penalty
    positive: list[Annotated[str, Field(min_length=1)]] = []
    negative: list[Annotated[str, Field(min_length=1)]] = []

    @property
    def trained(self) -> bool:
        """Is the head fitted on adaptation data (so data- and model-stage
        mitigations of that data can act on it)?"""
        return self.kind in TRAINED

    @property
    def reads_pool(self) -> bool:
        """Does the head read a decision's whole pool in one prompt (not one text at a
        time)?"""
        return self.kind in POOLED

    @model_validator(mode="after")
    def _training_source(self) -> HeadSpec:
        if self.kind in ("zero_shot_contrast", *PROMPTED):
            if not (self.positive and self.negative):
                raise ValueError(f"a {self.kind} head needs positive and negative words/texts")
        elif self.positive or self.negative:
            raise ValueError(
                "positive/negative apply only to zero_shot_contrast, label_words, next_token"
            )
        if self.kind in PROMPTED:
            _check_prompt(self.prompt, self.kind)
        elif self.kind in POOLED:
            _check_pool_prompt(self.prompt, self.candidate)
        elif self.prompt is not None:
            raise ValueError("prompt applies only to kind: label_words, next_token, choose_one")
        if self.candidate is not None and self.kind not in POOLED:
            raise ValueError("candidate applies only to kind: choose_one")
        if self.kind == "classifier" and self.label is None:
            raise ValueError("a classifier head needs label: one of the model's labels")
        if self.kind != "classifier" and self.label is not None:
            raise ValueError("label applies only to kind: classifier")
        if self.kind not in TRAINED:
            if self.train_on is not None or self.file is not None:
                raise ValueError(f"a {self.kind} head is not trained: drop train_on/file")
        elif self.train_on is None:
            raise ValueError(f"a {self.kind} head needs train_on: history or file")
        elif self.train_on == "file" and self.file is None:
            raise ValueError("train_on: file needs file: PATH (CSV or Parquet)")
        elif self.train_on == "history" and self.file is not None:
            raise ValueError("file is only read with train_on: file")
        if (self.name_column or self.group_column) and self.train_on != "file":
            raise ValueError("name_column/group_column apply only with train_on: file")
        if self.group_column and not self.name_column:
            raise ValueError("group_column needs name_column (whose group it gives)")
        if self.history_bias and self.train_on != "history":
            raise ValueError("history_bias applies only with train_on: history")
        return self


PROMPTED = ("label_words", "next_token")  # head kinds that put the text into a prompt
POOLED = ("choose_one",)  # head kinds that put a decision's whole pool into one prompt
CANDIDATE = "Candidate {label}: {text}"  # a choose_one head's default candidate line


def _check_prompt(prompt: str | None, kind: str) -> None:
    if kind == "next_token":
        _check_answer_prompt(prompt, kind, "{text}", "label words (' yes')")
    elif prompt is None:
        raise ValueError("a label_words head needs prompt: text with {text} and one [MASK]")
    elif prompt.count("[MASK]") != 1:
        raise ValueError("prompt must hold exactly one [MASK]")
    _check_fields("prompt", prompt, {"text"}, {"subject"}, "where the scored text goes")


def _check_pool_prompt(prompt: str | None, candidate: str | None) -> None:
    _check_answer_prompt(prompt, "choose_one", "{candidates}", "labels (' 1')")
    _check_fields("prompt", prompt, {"candidates"}, {"context"}, "where the candidates go")
    if candidate is not None:
        _check_fields("candidate", candidate, {"label", "text"}, set(),
                      "a candidate's label (1 to k) and text")  # fmt: skip


def _check_answer_prompt(prompt: str | None, kind: str, holds: str, answers: str) -> None:
    """A causal LM's prompt (``kind``): given, ending where the answer goes."""
    if prompt is None:
        raise ValueError(f"a {kind} head needs prompt: text with {holds}, ending where the "
                         "answer goes")  # fmt: skip
    if "[MASK]" in prompt:
        raise ValueError(f"a {kind} prompt holds no [MASK]: the answer follows its end")
    if prompt != prompt.rstrip():
        raise ValueError(f"a {kind} prompt must not end in whitespace: the space before the "
                         f"answer belongs to the {answers}")  # fmt: skip


def _check_fields(field: str, template: str, needed: set[str], optional: set[str],
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


class DecisionSpec(Strict):
    """The selection rule applied to scores within one decision pool.

    ``top_share`` selects the best-scoring share of each pool (a rank cut: it turns
    small score gaps into large selection gaps); ``threshold`` selects every score
    at or above a fixed value; ``draw`` selects each with probability equal to its
    score (clipped to [0, 1]: for heads whose score is a probability, e.g. a logistic
    head's P(callback), so selection rates keep the absolute level the head learnt).
    """

    rule: Literal["top_share", "threshold", "draw"] = "top_share"
    share: Share = 0.5
    # every head's score lies in [-2, 2] (cosines, their differences, probabilities)
    threshold: Annotated[float, Field(ge=-2.0, le=2.0)] | None = None

    @model_validator(mode="after")
    def _threshold_given(self) -> DecisionSpec:
        if self.rule == "threshold" and self.threshold is None:
            raise ValueError("rule: threshold needs threshold: VALUE")
        return self


class AgentCard(Strict):
    """What a population of deciders carries: a checkpoint, a head, a decision rule."""

    name: Name
    description: str = ""
    checkpoint: str = "builtin:minilm"  # or a folder, or forge:CORPUS_CARD.yaml
    head: HeadSpec
    decision: DecisionSpec = DecisionSpec()
    # where the checkpoint computes: cpu (fp32: what the tests check), cuda (bf16 or
    # fp16), auto (cuda when torch sees a GPU)
    device: Literal["auto", "cpu", "cuda"] = "cpu"

    @field_validator("checkpoint")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip() or value.strip() == FORGE_PREFIX:
            raise ValueError(
                f"{value!r} names no checkpoint (builtin:minilm, a checkpoint folder or "
                "forge:CORPUS_CARD.yaml)"
            )
        return value

    def fingerprint(self) -> str:
        # the default device, and a head without a candidate line (every kind but
        # choose_one), leave the hash as it was before cards had them: run ids of
        # earlier result folders stay valid (their runs resume)
        exclude: dict = {"device": True} if self.device == "cpu" else {}
        if self.head.candidate is None:
            exclude["head"] = {"candidate"}
        return digest(self.model_dump(mode="json", exclude=exclude or None))

    @property
    def forged(self) -> bool:
        return self.checkpoint.startswith(FORGE_PREFIX)


def load_card(path: Path) -> AgentCard:
    """Load an agent card. A relative ``head.file`` or ``forge:`` corpus-card path is
    resolved against the card's folder."""
    path = Path(path)
    card = parse(AgentCard, read_yaml(path), str(path))
    if card.forged:
        corpus = Path(card.checkpoint.removeprefix(FORGE_PREFIX))
        if not corpus.is_absolute():
            corpus = (path.parent / corpus).resolve()
        card = card.model_copy(update={"checkpoint": f"{FORGE_PREFIX}{corpus}"})
    head_file = card.head.file
    if head_file is not None and not head_file.is_absolute():
        head = card.head.model_copy(update={"file": (path.parent / head_file).resolve()})
        card = card.model_copy(update={"head": head})
    return card


def card_folders(spec_path: Path | None = None, agents_dir: Path | None = None) -> list[Path]:
    """Where card names are looked up, in order: ``--agents-dir``, ``agents/`` beside
    the spec's folder, inside it, and in the working directory."""
    folders = [Path(agents_dir)] if agents_dir else []
    if spec_path is not None:
        spec_dir = Path(spec_path).resolve().parent
        folders += [spec_dir.parent / "agents", spec_dir / "agents"]
    folders.append(Path("agents"))
    return list(dict.fromkeys(folders))


def find_card(name: str, spec_path: Path, agents_dir: Path | None = None,
              where: str | None = None) -> Path:  # fmt: skip
    """Resolve a card reference: a path to a YAML file, or a name in an agents folder.
    An unknown name is an error naming every folder searched and the closest name
    (after ``where``: default, the spec file's ``PATH: ``)."""
    where = f"{spec_path}: " if where is None else where
    spec_dir = Path(spec_path).resolve().parent
    if name.endswith((".yaml", ".yml")):
        for candidate in (spec_dir / name, Path(name)):
            if candidate.is_file():
                return candidate
        raise SpecError(f"{where}agents: no card file {name!r} (beside the spec or here)")
    folders = card_folders(spec_path, agents_dir)
    for folder in folders:
        if (folder / f"{name}.yaml").is_file():
            return folder / f"{name}.yaml"
    known = sorted({p.stem for folder in folders if folder.is_dir() for p in folder.glob("*.yaml")})
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    looked = ", ".join(str(f) for f in folders)
    raise SpecError(f"{where}agents: no card named {name!r} (looked in {looked}){hint}")
