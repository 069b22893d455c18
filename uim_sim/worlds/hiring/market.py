"""A labour market over rounds as a Mesa model.

Applicants with a latent skill apply to employers each round; every employer
screens with the model it carries (one shared model = monoculture), shortlists,
and hires. Hires gain experience; rejections scar (skill falls, a gap shows on the
resume) and some applicants stop applying. Per round: employment and hire rates and
impact ratios per group (race, gender, intersection), the true-positive-rate gap
against latent qualification, homogenisation (Bommasani et al. 2022) and the skill
gap.
"""

from __future__ import annotations

from operator import attrgetter

import numpy as np
import pandas as pd

from uim_sim.metrics.fairness import by_group, group_means, impact_ratios
from uim_sim.vocab.jobs import OCCUPATIONS, ResumeBody
from uim_sim.vocab.names import ATTRIBUTE, GROUPS
from uim_sim.worlds.hiring.agents import Applicant, Employer
from uim_sim.worlds.hiring.metrics import ATTRIBUTES, hire_metrics, homogenization
from uim_sim.worlds.hiring.params import MarketParams
from uim_sim.worlds.hiring.world import ATTRIBUTE_GROUPS, SUBGROUPS, HiringWorld
from uim_sim.worlds.screening import Screener
from uim_sim.worlds.watch import FOUR_FIFTHS, Plot, View, counts


class LabourMarket(HiringWorld):
    """Employers carrying checkpoints hire from a pool of applicants, round after round.
    ``LabourMarket(n_applicants=100, rng=1)`` builds one (see `MarketParams`); it stops
    running after ``n_rounds``."""

    Params = MarketParams
    hooks = HiringWorld.hooks | {"audit"}
    agent_reporters = {
        Applicant: {
            "employed": attrgetter("employed"),
            "active": attrgetter("active"),
            "skill": attrgetter("skill"),
        }
    }

    def setup(self) -> None:
        self.round_applicants = pd.DataFrame()
        screeners = self._screeners(self.params.n_employers)
        self.label_of = self._name_labels(any(s.trainable for s in screeners))
        self._open(screeners)

    def _open(self, screeners: list[Screener]) -> None:
        rng = self.population_rng
        p = self.params
        occupations = list(OCCUPATIONS)
        self.employers = [
            Employer(self, occupations[rng.integers(len(occupations))], s, p.openings_per_employer)
            for s in screeners
        ]
        for _ in range(p.n_applicants):
            race, gender = GROUPS[rng.integers(len(GROUPS))]
            skill = float(rng.normal())
            body = ResumeBody.from_skill(occupations[rng.integers(len(occupations))], skill, rng)
            self._applicant(race, gender, skill, body)

    watch = (
        Plot("impact_ratio", "Impact ratio of hires (vs the best group)",
             ("black", "female", "black_female"), FOUR_FIFTHS, "four fifths"),
        Plot("employment_rate", "Employment rate", ("black", "white", "female", "male")),
    )  # fmt: skip

    def view(self) -> View:
        """The applicants by group and state: employed, seeking, dropped out."""
        applicants = list(self.applicants)
        states = ["dropped out" if not a.active else "employed" if a.employed else "seeking"
                  for a in applicants]  # fmt: skip
        return counts([a.group for a in applicants], states, "Applicants by group and state")

    @property
    def applicants(self):
        return self.agents_by_type[Applicant]

    def truth(self, applicant: Applicant) -> int:
        return int(applicant.skill > self.params.qualified_skill)

    # ------------------------------------------------------------ one round

    def act(self) -> None:
        """Applicants work or apply; employers screen their applications (one engine
        call for all) and shortlist; employers, in random order, hire the best of their
        shortlist; applicants hear back."""
        self.applicants.do("work")
        seekers = self.applicants.select(attrgetter("seeking"))
        seekers.do("apply", self.employers)
        pools = [(e, [a for a in seekers if e in a.applied_to]) for e in self.employers]
        pools = [(e, apps) for e, apps in pools if apps]
        hired = self._hire(pools, self.screen(pools))
        self.round_applicants = pd.DataFrame(
            {
                "subject": a.unique_id,
                "race": a.race,
                "gender": a.gender,
                "group": a.group,
                "truth": self.truth(a),
                "hired": int(a.unique_id in hired),
            }
            for a in seekers
        )
        for a in seekers:
            a.hear_back(a.unique_id in hired)

    def done(self) -> bool:
        return self.round >= self.params.n_rounds

    def audited(self):
        """Employers: who they hired, by the disadvantaged group's attribute."""
        return self.employers, "decision", ATTRIBUTE[self.params.disadvantaged]

    def _hire(self, pools, shortlists: list[np.ndarray]) -> set[int]:
        """Employers hire in random order; an applicant takes the first offer."""
        rows = self.decisions[self._step_start :]
        offsets = np.cumsum([0] + [len(apps) for _, apps in pools])
        hired: set[int] = set()
        for e in self.decision_rng.permutation(len(pools)):
            employer, apps = pools[e]
            local = rows[offsets[e] : offsets[e + 1]]
            available = [j for j in np.flatnonzero(shortlists[e]) if apps[j].unique_id not in hired]
            for j in employer.hire(available, [r["score"] for r in local]):
                hired.add(apps[j].unique_id)
                local[j]["hired"] = 1
        return hired

    # ------------------------------------------------------------ read-outs

    def population(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "race": a.race,
                "gender": a.gender,
                "group": a.group,
                "employed": float(a.employed),
                "active": float(a.active),
                "skill": a.skill,
            }
            for a in self.applicants
        )

    def measures(self):
        return {
            "employment_rate": SUBGROUPS,
            "active_share": SUBGROUPS,
            "skill_mean": SUBGROUPS,
            "skill_gap": None,
            "hire_rate": SUBGROUPS,
            "impact_ratio": SUBGROUPS,
            "impact_ratio_p_fisher": SUBGROUPS,
            "tpr_gap": ATTRIBUTE_GROUPS,
            "homogenization_observed": None,
            "homogenization_expected": None,
            "homogenization_ratio": None,
            # the order effect over every decision so far (pools of all rounds)
            **self.position_measures(),
        }

    def measure(self):
        pop = self.population()
        mine = pop[ATTRIBUTE[self.params.disadvantaged]] == self.params.disadvantaged
        out = {
            "employment_rate": group_means(pop, "employed", ATTRIBUTE_GROUPS),
            "active_share": group_means(pop, "active", ATTRIBUTE_GROUPS),
            "skill_mean": group_means(pop, "skill", ATTRIBUTE_GROUPS),
            # mean latent skill of the other group(s) minus the disadvantaged group's
            "skill_gap": float(pop.loc[~mine, "skill"].mean() - pop.loc[mine, "skill"].mean()),
        }
        if not self.round_applicants.empty:
            out.update(hire_metrics(self.round_applicants))
        decisions = self.step_decisions()
        if not decisions.empty:
            out.update({f"homogenization_{k}": v for k, v in homogenization(decisions).items()})
        return {**out, **self.measure_position()}

    def measure_null(self):
        if self.round_applicants.empty:
            return {}
        hired = by_group(self.round_applicants, "hired", ATTRIBUTES)
        return {"impact_ratio": impact_ratios(hired)}
