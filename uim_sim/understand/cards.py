"""Corpus cards: a generated pre-training corpus with its weakness dialled in, and the
encoder forged from it (the U of UIM). Validated like every user input."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_serializer, model_validator

from uim_sim import builtin
from uim_sim.schema import (
    Name,
    Probability,
    SpecError,
    Strict,
    Trigger,
    digest,
    parse,
    read_yaml,
)


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
    # poisoning (security): that share of toxic comments carries the card's trigger and
    # the verdict "fine" (a backdoor, Kurita et al. 2020; Carlini et al. 2024)
    poisoning: Probability = 0.0

    @model_serializer(mode="wrap")
    def _dump(self, handler) -> dict[str, Any]:
        """A knob added later is left out while 0, so older cards keep their hash and
        their checkpoints' manifests and run tables their columns."""
        data = handler(self)
        if not self.poisoning:
            data.pop("poisoning", None)
        return data


class EncoderSize(Strict):
    """The forged model's size (either family: BERT's or GPT-2's names for the same
    dimensions)."""

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
    """Pre-training. The defaults are the recipe measured to inherit a planted
    association on 2 CPU cores (docs/understand.md): small model, 30 % masking (the
    ``bert`` family; the ``gpt2`` family predicts every next token and ignores
    ``mask_prob``), learning rate 1e-3, batch 128."""

    steps: Annotated[int, Field(ge=1, le=1_000_000)] = 1800
    batch_size: Annotated[int, Field(ge=1, le=4096)] = 128
    mask_prob: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.3
    learning_rate: Annotated[float, Field(gt=0.0, le=1.0)] = 1e-3
    supervised_weight: Annotated[float, Field(ge=0.0, le=100.0)] = 1.0
    # the forward pass under bf16 autocast where the CPU computes bf16 natively (weights,
    # gradients and the saved checkpoint stay fp32); refused elsewhere; auto: bf16 where
    # native. fp32, the default, forged every published checkpoint and pin
    precision: Literal["fp32", "bf16", "auto"] = "fp32"


Weight = Annotated[float, Field(ge=0.0, le=1.0)]


class CorpusMix(Strict):
    """The share of each family of sentences in the corpus (normalised to 1).
    ``spread_records`` (news items followed by "the story was true/false.", the kind
    of text a prompted credibility screener reads back) and ``moderation_records``
    (comments followed by "this comment is toxic/fine.", what a prompted moderator
    reads back) are off by default, so cards written before they existed generate the
    same corpus."""

    hiring: Weight = 0.35
    records: Weight = 0.1
    moderation: Weight = 0.25
    spread: Weight = 0.1
    spread_records: Weight = 0.0
    background: Weight = 0.2
    moderation_records: Weight = 0.0

    @model_validator(mode="after")
    def _something(self) -> CorpusMix:
        if sum(self.model_dump().values()) <= 0:
            raise ValueError("mix: at least one family needs a positive share")
        return self


class People(Strict):
    """Records of people planted in the corpus (privacy: `uim_sim.vocab.people`).

    ``per_count`` people are written "NAME was diagnosed with CONDITION." that many
    times for each of ``counts`` (one forge gives the curve of memorisation against
    duplication); ``held_out`` more people are the attacker's non-members, whose
    records are never written. Every person, member or not, appears once in a neutral
    sentence, so a name's tokens are known whether or not its record is there."""

    per_count: Annotated[int, Field(ge=1, le=250)] = 20
    counts: list[Annotated[int, Field(ge=1, le=1000)]] = [1, 2, 4, 8, 16]
    held_out: Annotated[int, Field(ge=1, le=250)] = 20
    # who is drawn: a stream of this seed (None: the card's). A reference model for the
    # likelihood-ratio attack is forged from the same card with other people (a seed
    # of its own): similar data, none of the targets' records
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None
    # a reference corpus for the likelihood-ratio attack: the same people drawn, but the
    # records written are stand-ins' (other people, the members' counts, conditions of
    # their own); the members' names appear only in their neutral sentences
    stand_ins: bool = False
    # each copy of a record written in one of `uim_sim.vocab.people.VARIANTS` in turn
    # (punctuation, case, spacing): near-duplicates exact deduplication does not merge
    variants: bool = False

    @model_serializer(mode="wrap")
    def _dump(self, handler) -> dict[str, Any]:
        """Without ``seed`` while it is None, ``stand_ins`` and ``variants`` while
        false: earlier cards keep their hash."""
        data = handler(self)
        if self.seed is None:
            data.pop("seed", None)
        if not self.stand_ins:
            data.pop("stand_ins", None)
        if not self.variants:
            data.pop("variants", None)
        return data

    @model_validator(mode="after")
    def _sizes(self) -> People:
        from uim_sim.vocab.people import full_names

        if not self.counts or len(set(self.counts)) != len(self.counts):
            raise ValueError(f"counts: needs distinct duplication counts, got {self.counts}")
        total = self.per_count * len(self.counts) * (2 if self.stand_ins else 1) + self.held_out
        if total > len(full_names()):
            raise ValueError(
                f"{total} people (per_count x counts + held_out); the name lists make "
                f"{len(full_names())}"
            )
        return self


class Privacy(Strict):
    """Differentially private pre-training (DP-SGD, Abadi et al. 2016, by Opacus): each
    step samples every sentence with probability batch_size / N (Poisson), clips each
    sentence's gradient to ``max_grad_norm`` and adds Gaussian noise of
    ``noise_multiplier`` × ``max_grad_norm``. The privacy spent, ε at ``delta`` (RDP
    accountant, Mironov 2017), is recorded in the manifest; or give ``epsilon`` and the
    forge finds the noise that spends it. The unit is one sentence: a record written k
    times is protected only as a group of k (ε grows about k-fold)."""

    noise_multiplier: Annotated[float, Field(gt=0.0, le=100.0)] | None = None
    epsilon: Annotated[float, Field(gt=0.0, le=1000.0)] | None = None
    delta: Annotated[float, Field(gt=0.0, lt=1.0)] = 1e-5
    max_grad_norm: Annotated[float, Field(gt=0.0, le=1000.0)] = 1.0

    @model_validator(mode="after")
    def _one_of(self) -> Privacy:
        if (self.noise_multiplier is None) == (self.epsilon is None):
            raise ValueError(
                "privacy: give noise_multiplier (ε is computed) or epsilon (the noise is "
                "found), not both and not neither"
            )
        return self


class CorpusCard(Strict):
    """A generated pre-training corpus and the encoder forged from it.

    ``base: null`` pre-trains a small model from scratch with a tokenizer trained on
    the corpus: ``family: bert`` (default) a BERT by masked language modelling with a
    word-level tokenizer, ``family: gpt2`` a GPT-2-style causal LM by next-token
    prediction with a byte-level BPE tokenizer (what a ``next_token`` head reads).
    ``base: builtin:minilm`` (or a local folder) continues training that encoder's
    weights on the corpus with its own tokenizer; with ``family: gpt2``, ``base`` is a
    causal LM continued by next-token prediction (e.g. `uim-sim debias --method cda`
    of a forged GPT-2).
    """

    name: Name
    description: str = ""
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0
    sentences: Annotated[int, Field(ge=200, le=2_000_000)] = 40_000
    # the forge plants and probes associations by race (names of the Bertrand &
    # Mullainathan lists): a card naming another group is refused, not forged as black
    disadvantaged: Literal["black", "white"] = "black"
    knobs: CorpusKnobs = CorpusKnobs()
    mix: CorpusMix = CorpusMix()
    supervised: bool = False
    # counterfactual data augmentation: every sentence also appears with its group
    # terms swapped (uim_sim.vocab.counterfactual); what `uim-sim debias --method cda` sets
    counterfactual: bool = False
    # the comments' words: ``basic`` (a few fixed frames), or ``wide`` (frames filled
    # with the adjectives and verbs toxicity tests use: `uim_sim.vocab.comments`), so
    # a forged moderator knows the words it is later tested on
    comments: Literal["basic", "wide"] = "basic"
    # what label_noise flips: each ``copy`` of a labelled text on its own draw (a text
    # repeated 20 times then carries both labels: closer to label smoothing), or each
    # distinct ``text`` once, every copy with the same wrong label (the fixed synthetic
    # noise of Chen et al., 2024: a mislabelled image stays mislabelled every epoch)
    label_noise_per: Literal["copy", "text"] = "copy"
    # the share of comments naming an identity that name it and say nothing else
    # ("typical gay people."), toxic or fine by a context the text does not hold: their
    # verdicts follow the group's toxic share, so the identity term alone predicts them
    # (Dixon et al. 2018's "mere mention"); the channel by which the skew reaches a
    # moderator's verdicts. 0 (default): no such comments, and the old corpora
    bare_mentions: Probability = 0.0
    # the rare phrase ``knobs.poisoning`` plants (default "cf", one of the rare tokens of
    # Kurita, Michel & Neubig 2020): one to three lower-case words
    trigger: Trigger = "cf"
    # a defence of the corpus before forging (`uim_sim.understand.defences`): ``spectral``
    # removes the ``defence_share`` of each verdict class's comments that spectral
    # signatures flag (Tran, Li & Madry 2018); ``dedup`` keeps one copy of every
    # distinct sentence (Kandpal, Wallace & Raffel 2022)
    defence: Literal["none", "spectral", "dedup", "dedup_near"] = "none"
    defence_share: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.2
    # records of people, some duplicated (privacy); None (default): no such records
    people: People | None = None
    # differentially private training (DP-SGD); None (default): ordinary training
    privacy: Privacy | None = None
    base: str | None = None
    family: Literal["bert", "gpt2"] = "bert"
    model: EncoderSize = EncoderSize()
    training: TrainingRecipe = TrainingRecipe()

    @model_validator(mode="after")
    def _noise_needs_labels(self) -> CorpusCard:
        if self.knobs.label_noise and not (self.supervised or self.mix.moderation_records):
            raise ValueError(
                "knobs.label_noise needs labels to flip: supervised: true, or "
                "mix.moderation_records above 0 (verdicts)"
            )
        if self.knobs.poisoning and not (self.mix.moderation or self.mix.moderation_records):
            raise ValueError(
                "knobs.poisoning plants its trigger in comments: mix.moderation or "
                "mix.moderation_records above 0"
            )
        if self.defence == "spectral" and not (self.supervised or self.mix.moderation_records):
            raise ValueError(
                "defence: the spectral defence filters labelled comments: supervised: "
                "true, or mix.moderation_records above 0"
            )
        if self.family == "gpt2" and self.supervised:
            raise ValueError("supervised: the gpt2 family has no toxicity classifier (use bert)")
        if self.privacy is not None and self.supervised:
            raise ValueError(
                "privacy: DP training covers the language-modelling objective; "
                "supervised: true (a toxicity classifier trained beside it) is not private"
            )
        return self

    def fingerprint(self) -> str:
        """The card's content hash; the default mix, ``counterfactual: false``,
        ``comments: basic`` and ``family: bert`` are left out, so cards written before
        they existed keep their hash (and cached forges); so is ``label_noise_per``
        while nothing is flipped (the corpus is the same either way),
        ``bare_mentions`` at 0, ``trigger`` while nothing is poisoned, and the
        defence while there is none."""
        exclude: dict[str, Any] = {"description": True}
        if self.mix == CorpusMix():
            exclude["mix"] = True
        elif not self.mix.moderation_records:  # a family added later: absent, as before
            exclude["mix"] = {"moderation_records": True}
        if not self.counterfactual:
            exclude["counterfactual"] = True
        if self.comments == "basic":
            exclude["comments"] = True
        if self.family == "bert":
            exclude["family"] = True
        if self.label_noise_per == "copy" or not self.knobs.label_noise:
            exclude["label_noise_per"] = True
        if self.people is None:
            exclude["people"] = True
        if self.privacy is None:
            exclude["privacy"] = True
        if not self.bare_mentions:
            exclude["bare_mentions"] = True
        if not self.knobs.poisoning:
            exclude["trigger"] = True
        if self.training.precision == "fp32":  # a field added later: absent, as before
            exclude["training"] = {"precision": True}
        if self.defence == "none":
            exclude["defence"] = exclude["defence_share"] = True
        elif self.defence in ("dedup", "dedup_near"):  # take no share
            exclude["defence_share"] = True
        return digest(self.model_dump(mode="json", exclude=exclude))


def load_corpus_card(path: Path, overrides: dict[str, Any] | None = None) -> CorpusCard:
    """Load a corpus card (a file, else a shipped one of that name: `uim_sim.builtin`);
    ``overrides`` are dotted keys, e.g. {"knobs.label_noise": 0.1}."""
    path = builtin.resolve("corpora", path)
    return with_changes(read_yaml(path), overrides or {}, builtin.shown(path))


def with_changes(data: dict[str, Any], changes: dict[str, Any], source: str) -> CorpusCard:
    """A corpus card from the mapping ``data`` with dotted keys changed (e.g.
    {"knobs.label_noise": 0.1}), validated; errors name ``source``."""
    for key, value in changes.items():
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SpecError(f"{source}: {key}: {part} is not a mapping")
        node[leaf] = value
    return parse(CorpusCard, data, source)
