"""Parameters of the hiring world: the audit study and the labour market share the
historical decisions adapted heads learn from; each adds its own design."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_serializer, model_validator

from uim_sim.lfm.heads import HeadError
from uim_sim.schema import GIVEN, Meaningless, Probability, Strict
from uim_sim.vocab.names import Group
from uim_sim.worlds.adapt import AdaptiveParams, drop_adaptive
from uim_sim.worlds.hiring.callbacks import STUDY_CALLBACK_RATES, read_callback_file

Rate = Annotated[float, Field(gt=0.0, lt=1.0)]
KIB = 1024  # memory estimates (`memory_estimate`), measured per unit with pooled rows
UNKNOWN_FIELDS = ("unknown_share", "unknown_group", "unknown_ratio")


def drop_unknown(data: dict, params: HiringParams) -> dict:
    """A params dump without the unknown-category fields while the auditor knows
    everyone's category: specs written before them keep their run ids and tables."""
    if not params.unknown_share:
        for key in UNKNOWN_FIELDS:
            data.pop(key, None)
    return data


class HiringParams(Strict):
    """What both hiring models share: the "historical hiring decisions" adapted heads
    are trained on, and the group a biased history disadvantages.

    ``history: skill`` (default): hiring decisions that follow a latent skill
    (log-odds ``history_skill_weight`` per unit). ``history: callbacks``: the design
    of Bertrand & Mullainathan (2004), resumes of two quality levels called back at
    ``callback_rates`` (by race and quality; the study's by default), or the rows of
    ``history_file``, a file with the study's columns (``firstname``, ``sex``,
    ``race``, ``call``, optionally ``h`` and ``lastname``), each row rendered as a
    resume by the world's generator. A card's ``history_bias`` is a log-odds penalty
    on the disadvantaged group in either design (a file's callbacks are used as they
    are). A field the design does not read is refused (``meaningless``)."""

    n_history: Annotated[int, Field(ge=40, le=1_000_000)] = 1000
    disadvantaged: Group = "black"
    history_skill_weight: Annotated[float, Field(ge=0.0, le=20.0)] = 2.0  # log-odds per unit
    history: Literal["skill", "callbacks"] = "skill"
    callback_rates: dict[Literal["black", "white"], dict[Literal["high", "low"], Rate]] = (
        STUDY_CALLBACK_RATES
    )
    history_file: Path | None = None
    # the auditor's view: applicants whose race and sex it does not know (none at
    # unknown_share 0, whatever unknown_group and unknown_ratio say: a grid can vary it)
    unknown_share: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    unknown_group: Group | None = None
    unknown_ratio: Annotated[float, Field(ge=1.0, le=100.0)] = 1.0

    # fields a history design makes meaningless, refused in one line (`Meaningless`;
    # the unknown-category fields at unknown_share 0 are not: a grid varies the share)
    meaningless = (
        Meaningless(("history_file",), {"history": "skill"},
                    "read only with history: callbacks (drop {field})"),
        Meaningless(("callback_rates",), {"history": "skill"},
                    "acts with history: callbacks only (a skill history's decisions follow "
                    "history_skill_weight); drop {field}"),
        Meaningless(("history_skill_weight",), {"history": "callbacks"},
                    "acts with history: skill only (callbacks follow the study's quality "
                    "levels); drop {field}"),
        Meaningless(("n_history", "callback_rates"),
                    {"history": "callbacks", "history_file": GIVEN},
                    "the history is the rows of history_file; {field} acts on a drawn "
                    "history only (drop it)"),
    )  # fmt: skip

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        return drop_unknown(handler(self), self)

    def unknown_chance(self, race: str | None, gender: str | None) -> float:
        """The chance that the auditor does not know an applicant's race and sex:
        ``unknown_share`` on average over applicants, ``unknown_ratio`` times as high
        for ``unknown_group`` as for the others (each group is half of its attribute,
        as the audit's and the market's applicants are drawn)."""
        if self.unknown_group is None:
            return self.unknown_share
        others = 2 * self.unknown_share / (self.unknown_ratio + 1)
        return others * self.unknown_ratio if self.unknown_group in (race, gender) else others

    @model_validator(mode="after")
    def _unknown(self) -> HiringParams:
        if self.unknown_ratio != 1 and self.unknown_group is None:
            raise ValueError("unknown_ratio needs unknown_group (the group missing more often)")
        group = self.unknown_group
        if self.unknown_chance(group, group) > 1:
            raise ValueError(
                f"unknown_ratio: {group} applicants unknown {self.unknown_ratio:g} times as "
                f"often as the others at unknown_share {self.unknown_share:g} would be "
                f"unknown with chance {self.unknown_chance(group, group):.2f} (> 1)"
            )
        return self

    @model_validator(mode="after")
    def _callbacks(self) -> HiringParams:
        for race in ("black", "white"):
            missing = {"high", "low"} - set(self.callback_rates.get(race, {}))
            if missing:
                raise ValueError(f"callback_rates.{race}: needs high and low (missing {missing})")
        if self.history_file is not None:
            try:
                read_callback_file(self.history_file)
            except HeadError as exc:
                raise ValueError(f"history_file: {exc}") from None
        return self


class AuditParams(HiringParams):
    """The correspondence audit of Bertrand & Mullainathan (2004): ``n_jobs`` job ads,
    each receiving eight resumes (two quality levels × four names)."""

    mode: Literal["audit"] = "audit"
    n_jobs: Annotated[int, Field(ge=1, le=100_000)] = 50

    def memory_estimate(self) -> tuple[float, str]:
        """Bytes a run's largest allocations take (resumes, their embeddings and
        decision rows; the history), and what they are."""
        resumes = 8 * self.n_jobs
        need = resumes * 10 * KIB + self.n_history * 4 * KIB
        return need, f"{resumes:,} resumes, {self.n_history:,} history texts"


class MembershipParams(HiringParams):
    """Remembered applicants (`uim_sim.worlds.hiring.membership`): ``n_jobs`` job ads,
    each receiving ``pairs`` resume pairs identical but for the name, a person whose
    record the screener's pre-training corpus held and one it never saw."""

    mode: Literal["membership"] = "membership"
    n_jobs: Annotated[int, Field(ge=1, le=100_000)] = 40
    pairs: Annotated[int, Field(ge=1, le=100)] = 4

    def memory_estimate(self) -> tuple[float, str]:
        """Bytes a run's largest allocations take, and what they are."""
        resumes = 2 * self.pairs * self.n_jobs
        need = resumes * 10 * KIB + self.n_history * 4 * KIB
        return need, f"{resumes:,} resumes, {self.n_history:,} history texts"


Edit = Literal["keywords", "instruction", "buzzwords"]


class MarketParams(HiringParams, AdaptiveParams):
    """A labour market over ``n_rounds``: applicants apply, employers screen and hire,
    rejection scars. ``adaptive_share`` of the applicants adapt: they learn which of
    ``edits`` (lines added to a resume, `uim_sim.vocab.jobs.GAMING`, or none) gets
    them called back (`uim_sim.worlds.adapt`)."""

    edits: list[Edit] = ["keywords", "instruction", "buzzwords"]

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        """Without the adaptive fields while nobody adapts, nor the unknown-category
        fields while the auditor knows everyone (run ids stay as they were)."""
        return drop_adaptive(drop_unknown(handler(self), self), self)

    mode: Literal["market"] = "market"
    n_applicants: Annotated[int, Field(ge=4, le=1_000_000)] = 400
    n_employers: Annotated[int, Field(ge=1, le=10_000)] = 5
    n_rounds: Annotated[int, Field(ge=1, le=10_000)] = 8
    applications_per_round: Annotated[int, Field(ge=1, le=10_000)] = 3
    openings_per_employer: Annotated[int, Field(ge=1, le=1_000_000)] = 8
    scarring: Annotated[float, Field(ge=0.0, le=5.0)] = 0.1  # skill is standard normal
    dropout: Probability = 0.05
    job_loss: Probability = 0.1
    qualified_skill: Annotated[float, Field(ge=-10.0, le=10.0)] = 0.0

    @model_validator(mode="after")
    def _applications_fit(self) -> MarketParams:
        if self.applications_per_round > self.n_employers:
            raise ValueError(
                f"applications_per_round ({self.applications_per_round}) exceeds "
                f"n_employers ({self.n_employers})"
            )
        return self

    def memory_estimate(self) -> tuple[float, str]:
        """Bytes a run's largest allocations take (applicants, decision rows, the
        per-round agent records; the history), and what they are."""
        decisions = self.n_applicants * self.applications_per_round * self.n_rounds
        need = (
            decisions * 2 * KIB
            + self.n_applicants * self.n_rounds * KIB // 2
            + self.n_applicants * 10 * KIB
            + self.n_history * 4 * KIB
        )
        return need, f"up to {decisions:,} applications over {self.n_rounds:,} rounds"
