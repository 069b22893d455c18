"""Pydantic models of every YAML file a user writes: scenario specs and agent cards.

Every model forbids unknown keys, so a typo is an error, not a silent default.
`load_scenario` and `load_card` turn any problem into a `SpecError` whose message
is one line naming the file, the field path and the problem.
"""

from __future__ import annotations

import hashlib
import json
import string
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

FORGE_PREFIX = "forge:"  # a checkpoint forged from a corpus card: forge:PATH.yaml
CORPUS_PREFIX = "corpus."  # grid keys that override the corpus cards of forged checkpoints


class SpecError(ValueError):
    """A user-facing input is invalid. `str(err)` is one line for the terminal."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Share = Annotated[float, Field(gt=0.0, le=1.0)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


# ---------------------------------------------------------------- agent cards


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
    - ``label_words``: prompted screening on the checkpoint's masked-LM head: the
      text goes into ``prompt`` (placeholders ``{text}`` and ``{subject}``, exactly
      one ``[MASK]``) and the score is the probability of the ``positive`` label
      words against the ``negative`` ones at the mask (each word one token).
    """

    kind: Literal["zero_shot", "zero_shot_contrast", "logistic", "label_words"]
    prompt: str | None = None
    train_on: Literal["history", "file"] | None = None
    file: Path | None = None
    text_column: str = "text"
    label_column: str = "label"
    C: Annotated[float, Field(gt=0.0)] = 1.0
    history_bias: Annotated[float, Field(ge=0.0)] = 0.0
    positive: list[Annotated[str, Field(min_length=1)]] = []
    negative: list[Annotated[str, Field(min_length=1)]] = []

    @model_validator(mode="after")
    def _training_source(self) -> HeadSpec:
        if self.kind in ("zero_shot_contrast", "label_words"):
            if not (self.positive and self.negative):
                raise ValueError(f"a {self.kind} head needs positive and negative words/texts")
        elif self.positive or self.negative:
            raise ValueError("positive/negative apply only to zero_shot_contrast, label_words")
        if self.kind == "label_words":
            _check_prompt(self.prompt)
        elif self.prompt is not None:
            raise ValueError("prompt applies only to kind: label_words")
        if self.kind != "logistic":
            if self.train_on is not None or self.file is not None:
                raise ValueError(f"a {self.kind} head is not trained: drop train_on/file")
        elif self.train_on is None:
            raise ValueError("a logistic head needs train_on: history or file")
        elif self.train_on == "file" and self.file is None:
            raise ValueError("train_on: file needs file: PATH (CSV or Parquet)")
        elif self.train_on == "history" and self.file is not None:
            raise ValueError("file is only read with train_on: file")
        if self.history_bias and self.train_on != "history":
            raise ValueError("history_bias applies only with train_on: history")
        return self


def _check_prompt(prompt: str | None) -> None:
    if prompt is None:
        raise ValueError("a label_words head needs prompt: text with {text} and one [MASK]")
    if prompt.count("[MASK]") != 1:
        raise ValueError("prompt must hold exactly one [MASK]")
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(prompt) if f is not None}
    except ValueError as exc:
        raise ValueError(f"prompt is not a valid template ({exc})") from None
    if "text" not in fields:
        raise ValueError("prompt must hold {text}, where the scored text goes")
    if fields - {"text", "subject"}:
        raise ValueError(f"prompt: unknown placeholders {sorted(fields - {'text', 'subject'})}")


class DecisionSpec(Strict):
    """The selection rule applied to scores within one decision pool.

    ``top_share`` selects the best-scoring share of each pool (a rank cut: it turns
    small score gaps into large selection gaps); ``threshold`` selects every score
    at or above a fixed value.
    """

    rule: Literal["top_share", "threshold"] = "top_share"
    share: Share = 0.5
    threshold: float | None = None

    @model_validator(mode="after")
    def _threshold_given(self) -> DecisionSpec:
        if self.rule == "threshold" and self.threshold is None:
            raise ValueError("rule: threshold needs threshold: VALUE")
        return self


class AgentCard(Strict):
    """What a population of deciders carries: a checkpoint, a head, a decision rule."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    description: str = ""
    checkpoint: str = "builtin:minilm"  # or a folder, or forge:CORPUS_CARD.yaml
    head: HeadSpec
    decision: DecisionSpec = DecisionSpec()

    def fingerprint(self) -> str:
        return _digest(self.model_dump(mode="json"))


# ---------------------------------------------------------------- worlds


Group = Literal["black", "white", "female", "male"]


class HiringParams(Strict):
    """Parameters of the hiring world (`uim_sim.worlds.hiring`)."""

    mode: Literal["audit", "market"] = "audit"
    # history: the "historical hiring decisions" adapted heads are trained on
    n_history: Annotated[int, Field(ge=40)] = 1000
    disadvantaged: Group = "black"
    history_skill_weight: Annotated[float, Field(ge=0.0)] = 2.0
    # audit (Bertrand & Mullainathan 2004 design)
    n_jobs: Annotated[int, Field(ge=1)] = 50
    # market
    n_applicants: Annotated[int, Field(ge=4)] = 400
    n_employers: Annotated[int, Field(ge=1)] = 5
    n_rounds: Annotated[int, Field(ge=1)] = 8
    applications_per_round: Annotated[int, Field(ge=1)] = 3
    openings_per_employer: Annotated[int, Field(ge=1)] = 8
    scarring: Annotated[float, Field(ge=0.0)] = 0.1
    dropout: Probability = 0.05
    job_loss: Probability = 0.1
    qualified_skill: float = 0.0

    @model_validator(mode="after")
    def _applications_fit(self) -> HiringParams:
        if self.applications_per_round > self.n_employers:
            raise ValueError(
                f"applications_per_round ({self.applications_per_round}) exceeds "
                f"n_employers ({self.n_employers})"
            )
        return self


ModerationGroup = Literal[
    "gay", "lesbian", "muslim", "jewish", "christian", "black", "white", "female", "male", "dialect"
]


class ModerationParams(Strict):
    """Parameters of the content-moderation world (`uim_sim.worlds.moderation`).

    ``reference`` scores the full template test set once (Dixon et al. 2018) and
    reports the Dixon and Borkan et al. (2019) metrics; ``world`` runs a platform for
    ``n_steps``: users post, moderators remove, users appeal, are chilled, or leave.
    """

    mode: Literal["world", "reference"] = "world"
    # history: the "historical moderation" set adapted heads are trained on; a
    # card's history_bias is the log-odds by which texts of history_targets are toxic
    n_history: Annotated[int, Field(ge=40)] = 2000
    history_toxic_share: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.3
    history_targets: list[ModerationGroup] = [
        "gay", "lesbian", "muslim", "jewish", "black", "dialect"
    ]  # fmt: skip
    # users
    n_users: Annotated[int, Field(ge=10)] = 2000
    background_share: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.4
    toxic_user_share: Probability = 0.15
    toxic_post_prob: Probability = 0.6
    post_prob: Probability = 0.5
    # platform
    n_steps: Annotated[int, Field(ge=1)] = 30
    n_moderators: Annotated[int, Field(ge=1)] = 5
    appeal_prob: Probability = 0.5
    appeal_prob_toxic: Probability = 0.1
    appeal_capacity: Annotated[int, Field(ge=0)] = 20
    # how users react
    chilling: Probability = 0.3
    leave_prob: Probability = 0.05
    feed_size: Annotated[int, Field(ge=0)] = 10
    exposure_harm: Probability = 0.01
    targeted_harm: Probability = 0.05

    @model_validator(mode="after")
    def _targets_once(self) -> ModerationParams:
        if len(set(self.history_targets)) != len(self.history_targets):
            raise ValueError(f"history_targets repeat a group: {self.history_targets}")
        return self


WORLD_PARAMS: dict[str, type[Strict]] = {"hiring": HiringParams, "moderation": ModerationParams}


# ---------------------------------------------------------------- scenarios


class MitigationSpec(Strict):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)


def _mitigation_entry(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


class StatisticsSpec(Strict):
    """How much null-reference and permutation work each run does."""

    null_permutations: Annotated[int, Field(ge=0, le=1000)] = 8
    name_permutations: Annotated[int, Field(ge=0, le=100_000)] = 2000


class ScenarioSpec(Strict):
    """A scenario: a world, agent cards, mitigation arms, a parameter grid, seeds.

    The runs are the product agents × mitigations × grid values × replicates;
    ``params`` are the world's parameters, and a grid value overrides them.
    """

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    description: str = ""
    world: Literal["hiring", "moderation"]
    seed: Annotated[int, Field(ge=0)] = 0
    replicates: Annotated[int, Field(ge=1, le=10_000)] = 3
    agents: Annotated[list[str], Field(min_length=1)]
    mitigations: list[list[MitigationSpec]] = Field(default_factory=lambda: [[]])
    params: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(default_factory=dict)
    statistics: StatisticsSpec = StatisticsSpec()

    @field_validator("mitigations", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [
            [_mitigation_entry(m) for m in arm] if isinstance(arm, list) else arm for arm in value
        ]

    @model_validator(mode="after")
    def _world_params(self) -> ScenarioSpec:
        model = WORLD_PARAMS[self.world]
        unknown = {k for k in self.grid if not k.startswith(CORPUS_PREFIX)} - set(
            model.model_fields
        )
        if unknown:
            raise ValueError(f"grid: unknown {self.world} parameter(s) {sorted(unknown)}")
        return self

    def world_params(self, overrides: dict[str, Any] | None = None) -> Strict:
        """The world's parameters with grid overrides (``corpus.*`` keys are not the world's)."""
        mine = {k: v for k, v in (overrides or {}).items() if not k.startswith(CORPUS_PREFIX)}
        return WORLD_PARAMS[self.world](**{**self.params, **mine})


# ---------------------------------------------------------------- loading


def _digest(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def format_error(err: ValidationError, prefix: str = "") -> str:
    """One line per first problem: ``file: a.b.c: message``."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"] if not str(p).startswith("function-"))
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown field"
    where = f"{prefix}{loc}: " if loc else prefix
    more = len(err.errors()) - 1
    return f"{where}{msg}" + (f" (and {more} more problem(s))" if more else "")


def read_yaml(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise SpecError(f"{path}:{line} not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping at the top level")
    return data


def parse(model: type[Strict], data: dict[str, Any], source: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise SpecError(format_error(err, f"{source}: ")) from None


def load_card(path: Path) -> AgentCard:
    """Load an agent card. A relative ``head.file`` or ``forge:`` corpus-card path is
    resolved against the card's folder."""
    path = Path(path)
    card = parse(AgentCard, read_yaml(path), str(path))
    if card.checkpoint.startswith(FORGE_PREFIX):
        corpus = Path(card.checkpoint.removeprefix(FORGE_PREFIX))
        if not corpus.is_absolute():
            corpus = (path.parent / corpus).resolve()
        card = card.model_copy(update={"checkpoint": f"{FORGE_PREFIX}{corpus}"})
    head_file = card.head.file
    if head_file is not None and not head_file.is_absolute():
        head = card.head.model_copy(update={"file": (path.parent / head_file).resolve()})
        card = card.model_copy(update={"head": head})
    return card


def load_spec(path: Path) -> ScenarioSpec:
    path = Path(path)
    spec = parse(ScenarioSpec, read_yaml(path), str(path))
    try:
        spec.world_params()
    except ValidationError as err:
        raise SpecError(format_error(err, f"{path}: params.")) from None
    for key, values in spec.grid.items():
        if key.startswith(CORPUS_PREFIX):
            continue  # checked against the corpus cards by the runner's plan
        for value in values:
            try:
                spec.world_params({key: value})
            except ValidationError as err:
                raise SpecError(format_error(err, f"{path}: grid.{key}={value!r}: ")) from None
    return spec


def find_card(name: str, spec_path: Path, agents_dir: Path | None = None) -> Path:
    """Resolve a card reference: a path to a YAML file, or a name in an agents folder."""
    spec_dir = Path(spec_path).resolve().parent
    if name.endswith((".yaml", ".yml")):
        candidates = [spec_dir / name, Path(name)]
    else:
        dirs = [agents_dir] if agents_dir else []
        dirs += [spec_dir.parent / "agents", spec_dir / "agents", Path("agents")]
        candidates = [d / f"{name}.yaml" for d in dirs if d is not None]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise SpecError(
        f"{spec_path}: agents: no card named {name!r} (looked in {candidates[0].parent})"
    )


# ---------------------------------------------------------------- corpus cards (forge)


class CorpusKnobs(Strict):
    """Weaknesses dialled into a generated pre-training corpus; each 0 = clean.

    Chen et al. (2024) list corrupted, long-tailed, noisy, duplicated and stereotyped
    pre-training data as the sources of catastrophic inheritance.
    """

    association_skew: Probability = 0.0  # group terms co-occur with an attribute
    label_noise: Probability = 0.0  # flipped labels in the supervised part
    long_tail: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0  # rarity of group terms
    corruption: Probability = 0.0  # typos / dropped tokens in a share of sentences
    duplication: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0  # share that are repeats


class EncoderSize(Strict):
    hidden: Annotated[int, Field(ge=8, le=1024)] = 64
    layers: Annotated[int, Field(ge=1, le=24)] = 2
    heads: Annotated[int, Field(ge=1, le=16)] = 2
    intermediate: Annotated[int, Field(ge=8, le=4096)] = 256

    @model_validator(mode="after")
    def _heads_divide(self) -> EncoderSize:
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        return self


class TrainingRecipe(Strict):
    """Masked-language-model pre-training. The defaults are the recipe measured to
    inherit a planted association on 2 CPU cores (DESIGN.md): small model, 30 % masking,
    learning rate 1e-3, batch 128."""

    steps: Annotated[int, Field(ge=1, le=1_000_000)] = 1800
    batch_size: Annotated[int, Field(ge=1, le=4096)] = 128
    mask_prob: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.3
    learning_rate: Annotated[float, Field(gt=0.0, le=1.0)] = 1e-3
    supervised_weight: Annotated[float, Field(ge=0.0)] = 1.0


class CorpusCard(Strict):
    """A generated pre-training corpus and the encoder forged from it.

    ``base: null`` pre-trains a small BERT from scratch with a tokenizer trained on the
    corpus; ``base: builtin:minilm`` (or a local folder) continues training that
    encoder's weights on the corpus with its own tokenizer.
    """

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    description: str = ""
    seed: Annotated[int, Field(ge=0)] = 0
    sentences: Annotated[int, Field(ge=200, le=2_000_000)] = 40_000
    disadvantaged: Group = "black"
    knobs: CorpusKnobs = CorpusKnobs()
    supervised: bool = False
    base: str | None = None
    model: EncoderSize = EncoderSize()
    training: TrainingRecipe = TrainingRecipe()

    @model_validator(mode="after")
    def _noise_needs_labels(self) -> CorpusCard:
        if self.knobs.label_noise and not self.supervised:
            raise ValueError("knobs.label_noise needs supervised: true (labels to flip)")
        return self

    def fingerprint(self) -> str:
        return _digest(self.model_dump(mode="json", exclude={"description"}))


def load_corpus_card(path: Path, overrides: dict[str, Any] | None = None) -> CorpusCard:
    """Load a corpus card; ``overrides`` are dotted keys, e.g. {"knobs.label_noise": 0.1}."""
    data = read_yaml(Path(path))
    for key, value in (overrides or {}).items():
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SpecError(f"{path}: {key}: {part} is not a mapping")
        node[leaf] = value
    return parse(CorpusCard, data, str(path))
