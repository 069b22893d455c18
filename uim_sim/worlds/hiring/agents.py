"""Agents of the hiring world: applicants and employers."""

from __future__ import annotations

import mesa

from uim_sim.worlds.hiring.resumes import ResumeBody, first_name, job_description
from uim_sim.worlds.screening import Screener


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

    @property
    def group(self) -> str:
        return f"{self.race}_{self.gender}"

    @property
    def first_name(self) -> str:
        return first_name(self.name)

    def resume(self) -> str:
        return self.body.render(self.name, gap_years=self.rounds_unemployed // 2)

    def identity_spans(self) -> tuple[str, ...]:
        return (self.name,)

    def choose_employers(self, employers, k: int) -> None:
        idx = self.model.decision_rng.choice(len(employers), size=k, replace=False)
        self.applied_to = [employers[i] for i in sorted(idx)]

    def get_hired(self) -> None:
        self.employed = True
        self.rounds_unemployed = 0

    def stay_unemployed(self, scarring: float, dropout: float) -> None:
        self.rounds_unemployed += 1
        self.skill -= scarring
        if self.model.decision_rng.random() < dropout:
            self.active = False

    def work_a_round(self, job_loss: float) -> None:
        self.body = self.body.with_years(self.body.years + 1)
        if self.model.decision_rng.random() < job_loss:
            self.employed = False


class Employer(mesa.Agent):
    """A job ad (audit) or a hiring firm (market) with the screener it carries."""

    def __init__(self, model, occupation: str, screener: Screener, openings: int = 0) -> None:
        super().__init__(model)
        self.occupation = occupation
        self.description = job_description(occupation)
        self.screener = screener
        self.openings = openings
