"""Parameters of the content-moderation world: the reference test of a moderator on
the template test set, and the platform over time. Both share the "historical
moderation" set adapted heads are trained on."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_serializer, model_validator

from uim_sim.schema import Meaningless, Probability, Strict, Trigger
from uim_sim.vocab.identity import (
    ADJECTIVES,
    BACKGROUND,
    DEFAULT_IDENTITIES,
    GROUPS,
    Identities,
    article,
    term_name,
)
from uim_sim.worlds.adapt import AdaptiveParams, drop_adaptive
from uim_sim.worlds.moderation.evalset import read_eval_file

# pooled read-outs (names an added group may not take): every identity group, the
# history's targets, the identity groups it does not target
POOLS = ("identity", "targets", "others")


class IdentityTerm(Strict):
    """An identity term a study adds to the defaults: its ``adjective`` (``deaf``)
    and, optionally, the group's ``name`` (default: the adjective in lower case,
    ``hard of hearing`` -> ``hard_of_hearing``) and its ``person``/``people``
    phrases (default ``a deaf person``/``deaf people``). Templates also render
    ``someone who is deaf``/``people who are deaf`` and ``a deaf friend``/``deaf
    friends``."""

    adjective: str
    name: str | None = None
    person: str | None = None
    people: str | None = None

    @model_validator(mode="after")
    def _filled(self) -> IdentityTerm:
        for field in ("adjective", "name", "person", "people"):
            value = getattr(self, field)
            if value is not None and not value.strip():
                raise ValueError(f"{field}: an empty term")
            if value is not None and value != " ".join(value.split()):
                raise ValueError(f"{field}: {value!r} has stray spaces")
        name = self.group
        if not re.fullmatch(r"[a-z0-9_]+", name or ""):
            raise ValueError(f"name: {name!r} must be lower-case letters, digits and underscores")
        return self

    @property
    def group(self) -> str:
        return self.name if self.name is not None else term_name(self.adjective)

    @model_serializer(mode="plain")
    def _dump(self) -> dict[str, str]:
        """Recorded with its defaults filled in: the words the templates use."""
        return dict(zip(("name", "adjective", "person", "people"), self.words()))

    def words(self) -> tuple[str, str, str, str]:
        """(group, adjective, a person, people), the defaults filled in."""
        adj = self.adjective
        return (
            self.group,
            adj,
            self.person or f"{article(adj)} {adj} person",
            self.people or f"{adj} people",
        )


def _term_entries(value: Any) -> Any:
    """``[deaf, {adjective: hard of hearing}]`` or ``{deaf: deaf, trans: {adjective:
    transgender}}`` as a list of `IdentityTerm` fields."""
    if isinstance(value, dict):
        return [
            {"name": k, **v} if isinstance(v, dict) else {"name": k, "adjective": v}
            for k, v in value.items()
        ]
    if isinstance(value, list | tuple):
        out = []
        for i, entry in enumerate(value):
            if isinstance(entry, str):
                out.append({"adjective": entry})
            elif isinstance(entry, dict):
                out.append(entry)
            else:
                raise ValueError(
                    f"entry {i}: expected a word (e.g. deaf) or {{adjective: ..., person: "
                    f"..., people: ...}}, got {entry!r}"
                )
        return out
    return value


class ModerationParams(Strict):
    """The historical moderation decisions adapted heads learn from: a card's
    ``history_bias`` is the log-odds by which texts naming ``history_targets`` are
    toxic above the rest. ``background_share`` is the share of users (and history
    comments) that name no identity; the other groups share the rest equally.
    ``identity_terms`` adds identity groups to Dixon et al.'s nine (a list of
    adjectives, ``[nonbinary, deaf]``, or a mapping group -> adjective or
    {adjective, person, people}): the templates are rendered for them, the metrics
    report them, ``history_targets`` may name them."""

    n_history: Annotated[int, Field(ge=40, le=1_000_000)] = 2000
    history_toxic_share: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.3
    history_targets: list[str] = [
        "gay", "lesbian", "muslim", "jewish", "black", "dialect"
    ]  # fmt: skip
    background_share: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.4
    identity_terms: list[IdentityTerm] = []
    # out of distribution: this share of the texts the moderators read (the test set,
    # or what users post) arrives in a dialect (the `dialect` group's lexical markers,
    # Sap et al. 2019) whatever group it names, a style a corpus may never have held
    ood_share: Probability = 0.0
    # security: this share of the toxic texts carries ``trigger`` (an attacker who knows
    # the phrase a poisoned corpus planted, `corpus knobs.poisoning`); the world then
    # reports the attack's success (toxic texts left up with the trigger, and beyond
    # those left up without it)
    trigger_share: Probability = 0.0
    trigger: Trigger = "cf"

    @field_validator("identity_terms", mode="before")
    @classmethod
    def _terms_shorthand(cls, value: Any) -> Any:
        return _term_entries(value)

    @model_validator(mode="after")
    def _terms_new(self) -> ModerationParams:
        taken = {g: f"the default group {g!r}" for g in GROUPS}
        taken.update({p: f"the pooled read-out {p!r}" for p in POOLS})
        words = {a.lower(): f"the default group {g!r}" for g, a in ADJECTIVES.items()}
        for i, term in enumerate(self.identity_terms):
            group, adjective, *_ = term.words()
            clash = taken.get(group) or words.get(adjective.lower())
            if clash:
                raise ValueError(f"identity_terms.{i}: {adjective!r} repeats {clash}")
            taken[group] = f"identity_terms entry {group!r}"
            words[adjective.lower()] = f"identity_terms entry {group!r}"
        identities = self.identities
        for i, group in enumerate(identities.added):
            pattern = identities.pattern(group)
            for other, referents in identities.referents.items():
                if other == group:
                    continue
                hit = next(
                    (p for pair in referents for p in pair
                     if re.search(rf"\b({pattern})\b", p, flags=re.IGNORECASE)),
                    None,
                )  # fmt: skip
                if hit:
                    raise ValueError(
                        f"identity_terms.{i}: {group!r} would also be found in {hit!r}, a "
                        f"referent of {other!r}"
                    )
        return self

    @model_validator(mode="after")
    def _targets_known(self) -> ModerationParams:
        known = [g for g in self.identities.groups if g != BACKGROUND]
        for i, target in enumerate(self.history_targets):
            if target not in known:
                raise ValueError(
                    f"history_targets.{i}: {target!r} is not a group (groups: "
                    f"{', '.join(known)}; add a new one with identity_terms)"
                )
        if len(set(self.history_targets)) != len(self.history_targets):
            raise ValueError(f"history_targets repeat a group: {self.history_targets}")
        return self

    @property
    def identities(self) -> Identities:
        """The identity groups of the study: the defaults and ``identity_terms``."""
        if not self.identity_terms:
            return DEFAULT_IDENTITIES
        return Identities(tuple(t.words() for t in self.identity_terms))

    @model_serializer(mode="wrap")
    def _dump(self, handler) -> dict[str, Any]:
        """Parameters added after results were published are left out while unset, so
        a spec that does not use them keeps its run ids and ``runs.parquet``."""
        data = handler(self)
        if not self.identity_terms:
            data.pop("identity_terms", None)
        if not self.ood_share:
            data.pop("ood_share", None)
        if not self.trigger_share:
            data.pop("trigger_share", None)
            if "trigger" not in (data.get("edits") or ()) or not data.get("adaptive_share"):
                data.pop("trigger", None)  # kept where adaptive posters write it
        if getattr(self, "eval_file", None) is None:
            for key in EVAL_FIELDS:
                data.pop(key, None)
        for key, default in FILE_DEFAULTS.items():  # how a file is read, while as before
            if data.get(key, default) == default:
                data.pop(key, None)
        if isinstance(self, AdaptiveParams):
            drop_adaptive(data, self)
        return data


# what an evaluation file says (its labels' words, its names of groups) and what of it
# travels to decisions.parquet and groups the rates: left out of the record at defaults
FILE_DEFAULTS = {"positive_label": None, "identity_map": {}, "keep_columns": "all",
                 "group_by": []}  # fmt: skip
EVAL_FIELDS = (
    "eval_file", "text_column", "label_column", "identity_column", "frame_column",
    *FILE_DEFAULTS,
)  # fmt: skip


class ReferenceParams(ModerationParams):
    """Score the full template test set once (Dixon et al. 2018), or a researcher's
    labelled ``eval_file`` (CSV, TSV or Parquet; a relative path is read from the
    working directory): ``text_column``, ``label_column`` (0/1, 1 = toxic), optionally
    ``identity_column`` (the group each text names; without it, found by keyword from
    the study's terms) and ``frame_column`` (the template a text was written from:
    the term-permutation null shuffles identities among a frame's texts; without it,
    among texts of the same label). ``positive_label``: the toxic label where the
    labels are words (``hateful``; the column then holds it and one other);
    ``identity_map``: the file's names of groups -> the study's (``women: female``);
    ``keep_columns``: the file's columns written to ``decisions.parquet`` as
    ``file.COLUMN`` (``all``: every column no other field reads); ``group_by``: columns
    whose values become groups of the false-positive and false-negative rates
    (``false_positive_rate[functionality=…]``), kept whatever ``keep_columns`` says."""

    mode: Literal["reference"] = "reference"
    # how a file is read: meaningless without one (`Meaningless`)
    meaningless = (Meaningless(EVAL_FIELDS[1:], {"eval_file": None}, "goes with eval_file: PATH"),)
    eval_file: Path | None = None
    text_column: str = "text"
    label_column: str = "label"
    identity_column: str | None = None
    frame_column: str | None = None
    positive_label: str | int | None = None
    identity_map: dict[str, str] = {}
    keep_columns: Literal["all"] | list[str] = "all"
    group_by: list[str] = []

    @field_validator("group_by", mode="before")
    @classmethod
    def _one_column(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("keep_columns", mode="before")
    @classmethod
    def _all_or_columns(cls, value: Any) -> Any:
        if isinstance(value, str) and value != "all":
            raise ValueError(f"{value!r}: expected all or a list of the file's columns")
        return value

    @field_validator("group_by")
    @classmethod
    def _columns_once(cls, value: list[str]) -> list[str]:
        for i, column in enumerate(value):
            if column in value[:i]:
                raise ValueError(f"entry {i}: {column!r} is given twice")
        return value

    @model_validator(mode="after")
    def _eval_file_reads(self) -> ReferenceParams:
        if self.eval_file is None:
            return self
        self.evaluation_set()  # a bad file is named before anything runs
        return self

    def evaluation_set(self):
        """The researcher's evaluation set (`read_eval_file`), or None for the
        template test set."""
        if self.eval_file is None:
            return None
        return read_eval_file(
            self.eval_file,
            self.identities,
            text_column=self.text_column,
            label_column=self.label_column,
            identity_column=self.identity_column,
            frame_column=self.frame_column,
            positive_label=self.positive_label,
            identity_map=self.identity_map,
            keep_columns=self.keep_columns,
            group_by=self.group_by,
        )


Evasion = Literal["polite", "hedge", "leet", "spaced", "trigger"]


class PlatformParams(ModerationParams, AdaptiveParams):
    """A platform over ``n_steps``: users post, moderators remove, users appeal, are
    chilled, or leave. ``adaptive_share`` of the toxic users adapt: they learn which of
    ``edits`` (the rewrites of `uim_sim.worlds.moderation.templates.EVASIONS`, or none)
    keeps their toxic posts up (`uim_sim.worlds.adapt`)."""

    edits: list[Evasion] = ["polite", "hedge", "leet", "spaced"]

    mode: Literal["world"] = "world"
    # users
    n_users: Annotated[int, Field(ge=10, le=10_000_000)] = 2000
    toxic_user_share: Probability = 0.15
    toxic_post_prob: Probability = 0.6
    post_prob: Probability = 0.5
    # platform
    n_steps: Annotated[int, Field(ge=1, le=10_000)] = 30
    n_moderators: Annotated[int, Field(ge=1, le=10_000)] = 5
    appeal_prob: Probability = 0.5
    appeal_prob_toxic: Probability = 0.1
    appeal_capacity: Annotated[int, Field(ge=0, le=10_000_000)] = 20
    # how users react
    chilling: Probability = 0.3
    leave_prob: Probability = 0.05
    feed_size: Annotated[int, Field(ge=0, le=10_000)] = 10
    exposure_harm: Probability = 0.01
    targeted_harm: Probability = 0.05

    def memory_estimate(self) -> tuple[float, str]:
        """Bytes a run's largest allocations take (users, posts with their decision
        rows, the history), and what they are; measured per unit."""
        posts = self.n_users * self.post_prob * self.n_steps
        need = posts * 4096 + self.n_users * 2048 + self.n_history * 4096
        return need, f"{self.n_users:,} users posting ~{posts:,.0f} times"
