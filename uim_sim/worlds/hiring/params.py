"""Parameters of the hiring world: the audit study and the labour market share the
historical decisions adapted heads learn from; each adds its own design."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from uim_sim.schema import Probability, Strict
from uim_sim.vocab.names import Group


class HiringParams(Strict):
    """What both hiring models share: the "historical hiring decisions" adapted heads
    are trained on, and the group a biased history disadvantages."""

    n_history: Annotated[int, Field(ge=40)] = 1000
    disadvantaged: Group = "black"
    history_skill_weight: Annotated[float, Field(ge=0.0)] = 2.0


class AuditParams(HiringParams):
    """The correspondence audit of Bertrand & Mullainathan (2004): ``n_jobs`` job ads,
    each receiving eight resumes (two quality levels × four names)."""

    mode: Literal["audit"] = "audit"
    n_jobs: Annotated[int, Field(ge=1)] = 50


class MarketParams(HiringParams):
    """A labour market over ``n_rounds``: applicants apply, employers screen and hire,
    rejection scars."""

    mode: Literal["market"] = "market"
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
    def _applications_fit(self) -> MarketParams:
        if self.applications_per_round > self.n_employers:
            raise ValueError(
                f"applications_per_round ({self.applications_per_round}) exceeds "
                f"n_employers ({self.n_employers})"
            )
        return self
