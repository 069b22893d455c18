"""A labour market over rounds as a Mesa model.

Applicants with a latent skill apply to employers each round; every employer
screens with the model it carries (one shared model = monoculture), shortlists,
and hires. Hires gain experience; rejections scar (skill falls, a gap shows on the
resume) and some applicants stop applying. Per round: employment and hire rates and
impact ratios per group (race, gender, intersection), the true-positive-rate gap
against latent qualification, homogenisation (Bommasani et al. 2022) and the skill
gap; over every round so far, systemic exclusion against its independence baseline
by group, and the shortlists audited per position (each employer) beside the pooled
audit (Bommasani et al. 2026).
"""

from __future__ import annotations

from operator import attrgetter

import numpy as np
import pandas as pd

from uim_sim.metrics.fairness import by_group, group_means, impact_ratios
from uim_sim.vocab.jobs import OCCUPATIONS, ResumeBody
from uim_sim.vocab.names import ATTRIBUTE, GROUPS, REFERENCE
from uim_sim.worlds.adapt import NONE, EditBandit
from uim_sim.worlds.hiring.agents import Applicant, Employer
from uim_sim.worlds.hiring.metrics import (
    ATTRIBUTES,
    EXCLUSION,
    POSITION_AUDIT,
    exclusion_counts,
    exclusion_rates,
    hire_metrics,
    homogenization,
    position_audit,
    position_counts,
)
from uim_sim.worlds.hiring.params import MarketParams
from uim_sim.worlds.hiring.world import ATTRIBUTE_GROUPS, SUBGROUPS, HiringWorld
from uim_sim.worlds.screening import Screener
from uim_sim.worlds.stages import TrainingSet
from uim_sim.worlds.watch import FOUR_FIFTHS, Plot, View, counts


class LabourMarket(HiringWorld):
    """Employers carrying checkpoints hire from a pool of applicants, round after round.
    ``LabourMarket(n_applicants=100, rng=1)`` builds one (see `MarketParams`); it stops
    running after ``n_rounds``."""

    Params = MarketParams
    hooks = HiringWorld.hooks | {"audit", "retrain"}
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
        self.bandit: EditBandit | None = None
        self.hires: list[tuple[Applicant, str, int]] = []  # this round's: resume read, truth
        # every round so far: systemic exclusion and applications per position, counted
        self.counts: tuple[pd.DataFrame, pd.DataFrame] | None = None
        if self.params.adaptive_share:
            self._adapt()

    def _adapt(self) -> None:
        """Applicants who adapt (``adaptive_share`` of them, from the adaptation
        stream) and their contacts."""
        p, rng = self.params, self.adapt_rng
        applicants = list(self.applicants)
        adaptive = [a for a, d in zip(applicants, rng.random(len(applicants)))
                    if d < p.adaptive_share]  # fmt: skip
        for i, a in enumerate(adaptive):
            a.learner = i
        self.bandit = EditBandit.for_world(len(adaptive), p, rng)
        self.watch = (
            *self.watch,
            Plot("callback_gap", "Callbacks: gamers minus honest applicants", line=0.0),
            Plot("edit_found", "Share of adaptive applicants who prefer an edit"),
        )  # the page watches them learn

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
        gamers = self._edit(seekers)
        shortlists = self.screen(pools)
        called = {a.unique_id for (_, apps), chosen in zip(pools, shortlists)
                  for a, pick in zip(apps, chosen) if pick}  # fmt: skip
        hired = self._hire(pools, shortlists)
        self.round_applicants = pd.DataFrame(
            {
                "subject": a.unique_id,
                "race": a.race,
                "gender": a.gender,
                "group": a.group,
                "truth": self.truth(a),
                "hired": int(a.unique_id in hired),
                "called": int(a.unique_id in called),
                "adaptive": int(a.learner >= 0),
                "edit": a.edit,
                "skill": a.skill,
            }
            for a in seekers
        )
        if self.bandit is not None:
            self._learn(gamers, called)
        for a in seekers:
            a.hear_back(a.unique_id in hired)
        self._count()

    def _count(self) -> None:
        """Add the round's shortlisting decisions to the counts of every round so far."""
        screened = self.step_decisions()
        if screened.empty:
            return
        counts = (exclusion_counts(screened), position_counts(screened))
        if self.counts is not None:
            counts = tuple(old.add(new, fill_value=0) for old, new in zip(self.counts, counts))
        self.counts = counts

    def _edit(self, seekers) -> list[Applicant]:
        """Adaptive seekers pick this round's edit (their bandit's draw)."""
        if self.bandit is None:
            return []
        gamers = [a for a in seekers if a.learner >= 0]
        picks = self.bandit.choose(np.array([a.learner for a in gamers], dtype=int))
        for a, e in zip(gamers, picks):
            a.edit = self.bandit.edits[e]
        return gamers

    def _learn(self, gamers: list[Applicant], called: set[int]) -> None:
        """Each adaptive seeker learns whether its edit got it called back."""
        learners = np.array([a.learner for a in gamers], dtype=int)
        edits = np.array([self.bandit.edits.index(a.edit) for a in gamers], dtype=int)
        called_back = np.array([a.unique_id in called for a in gamers])
        self.bandit.learn(learners, edits, called_back, self.round)

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
                if self.retraining:  # the resume as read, before the hire changes it
                    self.hires.append((apps[j], apps[j].resume_for(employer.occupation),
                                       self.truth(apps[j])))  # fmt: skip
        return hired

    def outcomes(self) -> TrainingSet:
        """The round's hires, their resumes as the employers read them, labelled by
        whether the hire is qualified (what a firm learns from a hire's work)."""
        hires, self.hires = self.hires, []
        d = self.params.disadvantaged
        mine = np.array([self._is_protected(tuple(a.name.split())) for a, _, _ in hires], bool)
        return TrainingSet(
            [text for _, text, _ in hires],
            np.array([truth for _, _, truth in hires], dtype=int),
            [a.identity_spans() for a, _, _ in hires],
            mine,
            groups=np.where(mine, d, REFERENCE[d]),
        )

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
            # every round so far: rejected everywhere, and the audit per position
            **dict.fromkeys(EXCLUSION, (*SUBGROUPS, "")),
            **dict.fromkeys(POSITION_AUDIT, SUBGROUPS),
            # the order effect over every decision so far (pools of all rounds)
            **self.position_measures(),
            **(self.adaptive_measures() if self.params.adaptive_share else {}),
        }

    def adaptive_measures(self) -> dict[str, tuple[str, ...] | None]:
        """What applicants who adapt achieve, and what honest ones lose (declared where
        some adapt)."""
        return {
            "honest_callback_rate": (*SUBGROUPS, ""),
            **dict.fromkeys(("gamer_callback_rate", "callback_gap", "hire_skill",
                             "hire_qualified", "edited_share", "edit_found",
                             "discovery_step")),
        }  # fmt: skip

    def measure_adaptive(self) -> dict:
        """This round's callbacks of honest seekers (by group) and of adaptive ones,
        their difference, the latent skill and qualified share of the round's hires,
        the share of adaptive seekers who edited, the share of adaptive applicants who
        now prefer an edit (``edit_found``) and the round by which half first did."""
        out = {"edit_found": self.bandit.edit_found(), "discovery_step": self.bandit.discovered}
        rows = self.round_applicants
        if rows.empty:
            return out
        gamer = rows["adaptive"].to_numpy(bool)
        honest = rows[~gamer]
        if len(honest):
            out["honest_callback_rate"] = group_means(honest, "called", ATTRIBUTE_GROUPS, True)
        if gamer.any():
            out["gamer_callback_rate"] = float(rows.loc[gamer, "called"].mean())
            out["edited_share"] = float((rows.loc[gamer, "edit"] != NONE).mean())
        if gamer.any() and len(honest):
            out["callback_gap"] = out["gamer_callback_rate"] - float(honest["called"].mean())
        hires = rows.query("hired == 1")
        if len(hires):
            out["hire_skill"] = float(hires["skill"].mean())
            out["hire_qualified"] = float(hires["truth"].mean())
        return out

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
        if self.counts is not None:
            out.update({**exclusion_rates(self.counts[0]), **position_audit(self.counts[1])})
        if self.bandit is not None:
            out.update(self.measure_adaptive())
        return {**out, **self.measure_position()}

    def measure_null(self):
        if self.round_applicants.empty:
            return {}
        hired = by_group(self.round_applicants, "hired", ATTRIBUTES)
        return {"impact_ratio": impact_ratios(hired)}
