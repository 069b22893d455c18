"""The correspondence audit of Bertrand & Mullainathan (2004) as a Mesa model.

Each job ad receives resumes of two quality levels; each resume is sent four times,
identical but for a name from one of the study's race × gender lists, in random
order. One step screens every ad; the metrics are callback rates per group (by race,
gender and their intersection), impact ratios (four-fifths rule) with name-level
permutation p-values, the quality gradient and demographic parity.
"""

from __future__ import annotations

from uim_sim.metrics.fairness import by_group, impact_ratios
from uim_sim.vocab.jobs import OCCUPATIONS, ResumeBody
from uim_sim.vocab.names import GENDERS, GROUPS, RACES
from uim_sim.worlds.hiring.agents import Applicant, Employer
from uim_sim.worlds.hiring.callbacks import AUDIT_SKILL
from uim_sim.worlds.hiring.metrics import ATTRIBUTES, audit_metrics
from uim_sim.worlds.hiring.params import AuditParams
from uim_sim.worlds.hiring.world import ATTRIBUTE_GROUPS, SUBGROUPS, HiringWorld
from uim_sim.worlds.screening import Screener
from uim_sim.worlds.watch import FOUR_FIFTHS, Plot, View, counts


class AuditStudy(HiringWorld):
    """Job ads, each screened by an employer carrying a checkpoint, receive resume
    pairs that differ only by name. ``AuditStudy(n_jobs=3, rng=1)`` builds one with
    defaults for everything else (see `AuditParams`); it runs one step."""

    Params = AuditParams
    watch = (
        Plot("impact_ratio", "Impact ratio of callbacks (vs the best group)",
             ("black", "female", "black_female"), FOUR_FIFTHS, "four fifths"),
        Plot("callback_rate", "Callback rate", ("black", "white", "female", "male")),
    )  # fmt: skip

    def view(self) -> View:
        """The resumes by group: called back or not (waiting before the step)."""
        if not self.decisions:
            pools = [a for _, apps in self.pools for a in apps]
            return counts([a.group for a in pools], ["waiting"] * len(pools), "Resumes by group")
        rows = self.decision_table()
        states = rows["decision"].map({1: "called back", 0: "not called back"})
        return counts(rows["group"], states, "Resumes by group")

    def setup(self) -> None:
        screeners = self._screeners(self.params.n_jobs)
        self.label_of = self._name_labels(any(s.trainable for s in screeners))
        self._post_ads(screeners)

    def _post_ads(self, screeners: list[Screener]) -> None:
        rng = self.population_rng
        occupations = list(OCCUPATIONS)
        self.pools: list[tuple[Employer, list[Applicant]]] = []
        for screener in screeners:
            employer = Employer(self, occupations[rng.integers(len(occupations))], screener)
            resumes = []
            for quality in (1, 0):
                skill = AUDIT_SKILL[quality]
                body = ResumeBody.from_skill(employer.occupation, skill, rng)
                for race, gender in GROUPS:
                    applicant = self._applicant(race, gender, skill, body)
                    applicant.quality = quality
                    resumes.append(applicant)
            order = rng.permutation(len(resumes))  # randomise order (Bloomberg 2024)
            self.pools.append((employer, [resumes[i] for i in order]))

    def truth(self, applicant: Applicant) -> int:
        return applicant.quality

    def act(self) -> None:
        """Every employer screens its ad's resumes (one engine call for all)."""
        self.screen(self.pools)

    def done(self) -> bool:
        return True  # one step

    def measures(self):
        return {
            "callback_rate": SUBGROUPS,
            "impact_ratio": SUBGROUPS,
            "mean_score_ratio": SUBGROUPS,
            "impact_ratio_p_fisher": SUBGROUPS,
            "impact_ratio_p_names": SUBGROUPS,
            "quality_gradient": SUBGROUPS,
            "quality_gap": SUBGROUPS,
            "demographic_parity_difference": ATTRIBUTE_GROUPS,
            "pairwise_win_share": (*RACES, *GENDERS),
            **self.position_measures(),
        }

    def measure(self):
        decisions = self.step_decisions()
        if decisions.empty:
            return {}
        out = audit_metrics(decisions, self.permutations, self.statistics_rng)
        return {**out, **self.measure_position()}

    def known_pools(self):
        """Every job ad's resumes, known when the ads are posted."""
        return [(employer.screener, employer.description,
                 [self._proposal(employer, a)[0] for a in applicants])
                for employer, applicants in self.pools]  # fmt: skip

    def measure_null(self):
        decisions = self.step_decisions()
        if decisions.empty:
            return {}
        return {"impact_ratio": impact_ratios(by_group(decisions, "decision", ATTRIBUTES))}
