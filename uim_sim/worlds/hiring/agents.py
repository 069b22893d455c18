"""Agents of the hiring world: applicants and employers.

Agents do not call models: an applicant proposes its resume, the world scores every
proposal of a step in one engine call, and employers act on the scores.
"""

from __future__ import annotations

from collections.abc import Sequence

import mesa

from uim_sim.vocab.jobs import GAMING, ResumeBody, job_description
from uim_sim.vocab.names import first_name, intersection
from uim_sim.worlds.screening import Decider, Screener


class Applicant(mesa.Agent):
    """A person looking for work: a name, a group, a latent skill and a resume.

    In the market, a hire adds experience; each round without a job lowers the latent
    skill by ``scarring`` (Liu et al. 2018's delayed impact: harm compounds) and shows
    as a gap on the resume; some rejected applicants stop applying.
    """

    def __init__(
        self,
        model,
        name: str,
        race: str,
        gender: str,
        skill: float,
        body: ResumeBody,
        label_group: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(model)
        self.name = name
        # the group recorded for metrics; a null draw may reassign names to groups
        self.race, self.gender = label_group or (race, gender)
        self.skill = skill
        self.body = body
        self.quality: int | None = None  # audit resumes: 1 high, 0 low
        self.employed = False
        self.active = True
        self.rounds_unemployed = 0
        self.applied_to: list[Employer] = []
        self.learner = -1  # an applicant who adapts: its row in the world's bandit
        self.edit = "none"  # what it adds to its resume this round (`GAMING`)

    @property
    def group(self) -> str:
        return intersection(self.race, self.gender)

    @property
    def first_name(self) -> str:
        return first_name(self.name)

    @property
    def seeking(self) -> bool:
        return self.active and not self.employed

    def resume(self) -> str:
        return self.body.render(self.name, gap_years=self.rounds_unemployed // 2)

    def resume_for(self, occupation: str) -> str:
        """The resume as sent to an ad for ``occupation``: with this round's edit."""
        if self.edit == "none":
            return self.resume()
        return self.resume() + GAMING[self.edit](occupation)

    def identity_spans(self) -> tuple[str, ...]:
        return (self.name,)

    def work(self) -> None:
        """An employed applicant works a round (a year of experience) and may lose the job."""
        if not self.employed:
            return
        self.body = self.body.with_years(self.body.years + 1)
        if self.model.decision_rng.random() < self.model.params.job_loss:
            self.employed = False

    def apply(self, employers: Sequence[Employer]) -> None:
        """Apply to ``applications_per_round`` employers drawn at random."""
        k = self.model.params.applications_per_round
        idx = self.model.decision_rng.choice(len(employers), size=k, replace=False)
        self.applied_to = [employers[i] for i in sorted(idx)]

    def hear_back(self, hired: bool) -> None:
        """Take the job, or stay unemployed: skill scars, and some stop applying."""
        if hired:
            self.employed = True
            self.rounds_unemployed = 0
            return
        params = self.model.params
        self.rounds_unemployed += 1
        self.skill -= params.scarring
        if self.model.decision_rng.random() < params.dropout:
            self.active = False


class Employer(Decider):
    """A job ad (audit) or a hiring firm (market) with the screener it carries; it
    shortlists a pool (``decide``) and hires from the shortlist."""

    def __init__(self, model, occupation: str, screener: Screener, openings: int = 0) -> None:
        super().__init__(model, screener)
        self.occupation = occupation
        self.description = job_description(occupation)
        self.openings = openings

    def hire(self, available: Sequence[int], scores: Sequence[float]) -> list[int]:
        """The positions (in this employer's pool) it hires: the best-scored of the
        ``available`` shortlisted applicants, up to its openings."""
        return sorted(available, key=lambda j: -scores[j])[: self.openings]
