"""The hiring world: screening by foundation-model checkpoints, as a Mesa model.

Two modes (``HiringParams.mode``):

- ``audit``: the correspondence design of Bertrand & Mullainathan (2004). Each job
  ad receives resumes of two quality levels; each resume is sent four times,
  identical but for a name from one of the study's race × gender lists, in random
  order. One step screens every ad; the metrics are callback rates per group,
  impact ratios (four-fifths rule) with name-level permutation p-values, the
  quality gradient and demographic parity.
- ``market``: applicants with a latent skill apply to employers each round; every
  employer screens with the model it carries (one shared model = monoculture),
  shortlists, and hires. Hires gain experience; rejections scar (skill falls, a gap
  shows on the resume) and some applicants stop applying. Per round: employment
  rate and impact ratio per group, the true-positive-rate gap against latent
  qualification, homogenisation (Bommasani et al. 2022) and the skill gap.

A step reads: applicants propose resumes; one engine call scores them; employers
decide; applicants update.
"""

from __future__ import annotations

from dataclasses import replace

import mesa
import numpy as np
import pandas as pd

from uim_sim.lfm.heads import read_labelled_file
from uim_sim.metrics.hiring import audit_metrics, hire_metrics, homogenization
from uim_sim.spec import AgentCard, HeadSpec, HiringParams
from uim_sim.worlds.base import ScreeningWorld
from uim_sim.worlds.hiring.agents import Applicant, Employer
from uim_sim.worlds.hiring.resumes import (
    FIRST_NAMES,
    GROUPS,
    OCCUPATIONS,
    ResumeBody,
    draw_name,
    name_groups,
    name_spans,
)
from uim_sim.worlds.screening import Screener, score_proposals
from uim_sim.worlds.stages import TrainingSet

ZERO_SHOT = AgentCard(name="minilm_zero_shot", head=HeadSpec(kind="zero_shot"))
AUDIT_SKILL = {1: 1.5, 0: -0.5}  # latent skill of the high (1) and low (0) resumes
PROTECTED = {"black": "race", "white": "race", "female": "gender", "male": "gender"}


def _group_means(world: HiringWorld, column: str) -> dict[str, float]:
    pop = world.population()
    out = {}
    for attr in ("race", "gender", "group"):
        out.update(pop.groupby(attr)[column].mean().astype(float).to_dict())
    return out


def _skill_gap(world: HiringWorld) -> float:
    """Mean latent skill of the other group(s) minus the disadvantaged group's."""
    pop = world.population()
    attr = PROTECTED[world.params.disadvantaged]
    mine = pop[attr] == world.params.disadvantaged
    return float(pop.loc[~mine, "skill"].mean() - pop.loc[mine, "skill"].mean())


AUDIT_REPORTERS = {
    "step": lambda m: m.round,
    "*audit": lambda m: audit_metrics(m.step_decisions(), m.permutations, m.statistics_rng),
}
MARKET_REPORTERS = {
    "step": lambda m: m.round,
    "employment_rate": lambda m: _group_means(m, "employed"),
    "active_share": lambda m: _group_means(m, "active"),
    "skill_mean": lambda m: _group_means(m, "skill"),
    "skill_gap": _skill_gap,
    "*round": lambda m: hire_metrics(m.round_applicants),
    "*homogenization": lambda m: {
        f"homogenization_{k}": v for k, v in homogenization(m.step_decisions()).items()
    },
}


class HiringWorld(ScreeningWorld):
    """Employers carrying checkpoints screen applicants.

    The null reference (runner) summarises ``null_metrics`` over null draws.

    Args:
        params: world parameters (defaults: a small audit).
        cards: the agent card(s) employers may carry; the ``assign`` stage picks.
        stages: the hooks mitigations wrap (defaults: no mitigation).
        seed: one seed for the run; population, history and decisions draw from
            independent child streams, so two arms of an experiment with the same
            seed see the same applicants (common random numbers).
        null_draw: if set, build the null reference of draw ``k``: trainable heads
            learn from permuted labels, zero-shot runs reassign names to groups.
        statistics: ``name_permutations`` for the audit's name-level p-values.
    """

    null_metrics = ("impact_ratio",)

    Params = HiringParams
    default_card = ZERO_SHOT

    def setup(self) -> None:
        self.round_applicants = pd.DataFrame()
        n_deciders = self.params.n_jobs if self.params.mode == "audit" else self.params.n_employers
        screeners = self._screeners(n_deciders)
        self.label_of = self._name_labels(any(s.trainable for s in screeners))
        if self.params.mode == "audit":
            self._post_audit(screeners)
            reporters = AUDIT_REPORTERS
        else:
            self._open_market(screeners)
            reporters = MARKET_REPORTERS
        self.datacollector = mesa.DataCollector(model_reporters=reporters)

    # ------------------------------------------------------------ set-up

    def training_data(self, card: AgentCard, draw: int = 0) -> TrainingSet:
        """The adaptation data of a trainable card (before any mitigation)."""
        if card.head.train_on == "file":
            texts, labels = read_labelled_file(
                card.head.file, card.head.text_column, card.head.label_column
            )
            spans = [name_spans(t) for t in texts]
            protected = np.array([self._is_protected(s) for s in spans])
            data = TrainingSet(texts, labels, spans, protected)
        else:
            data = self.history(card.head.history_bias, draw)
        if self.null_draw is not None:
            rng = np.random.default_rng([self.seed, 3, self.null_draw, draw])
            data = replace(data, labels=rng.permutation(data.labels))
        return data

    def _is_protected(self, spans: tuple[str, ...]) -> bool:
        """Does a text name someone of the disadvantaged group (by the study's lists)?"""
        attr = PROTECTED[self.params.disadvantaged]
        index = 0 if attr == "race" else 1
        groups = {g[index] for g in name_groups(spans)}
        return self.params.disadvantaged in groups

    def history(self, bias: float = 0.0, draw: int = 0) -> TrainingSet:
        """Historical hiring decisions, biased by ``bias`` (a log-odds penalty) against
        the disadvantaged group: the adaptation data through which a head inherits.
        The resumes depend only on the seed and ``draw``; the bias only moves labels."""
        p = self.params
        rng = np.random.default_rng([self.seed, 1, draw])
        attr = PROTECTED[p.disadvantaged]
        texts, spans, labels, protected = [], [], [], []
        occupations = list(OCCUPATIONS)
        for _ in range(p.n_history):
            race, gender = GROUPS[rng.integers(len(GROUPS))]
            name = draw_name(race, gender, rng)
            skill = rng.normal()
            occupation = occupations[rng.integers(len(occupations))]
            body = ResumeBody.from_skill(occupation, skill, rng)
            mine = {"race": race, "gender": gender}[attr] == p.disadvantaged
            logit = -0.5 + p.history_skill_weight * skill - bias * mine
            labels.append(int(rng.random() < 1 / (1 + np.exp(-logit))))
            texts.append(body.render(name))
            spans.append((name,))
            protected.append(mine)
        return TrainingSet(texts, np.array(labels), spans, np.array(protected))

    def _name_labels(self, trainable: bool) -> dict[str, tuple[str, str]]:
        """The group each first name is recorded under. A zero-shot null draw shuffles
        names across groups, so any remaining gap is what chance alone gives."""
        names = [(n, g) for g in GROUPS for n in FIRST_NAMES[g]]
        labels = [g for _, g in names]
        if self.null_draw is not None and not trainable:
            rng = np.random.default_rng([self.seed, 4, self.null_draw])
            labels = [labels[i] for i in rng.permutation(len(labels))]
        return {n: label for (n, _), label in zip(names, labels)}

    def _applicant(self, race: str, gender: str, skill: float, body: ResumeBody) -> Applicant:
        name = draw_name(race, gender, self.population_rng)
        label = self.label_of[name.split(" ", 1)[0]]
        return Applicant(self, name, race, gender, skill, body, label_group=label)

    def _post_audit(self, screeners: list[Screener]) -> None:
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

    def _open_market(self, screeners: list[Screener]) -> None:
        rng = self.population_rng
        p = self.params
        occupations = list(OCCUPATIONS)
        self.employers = [
            Employer(self, occupations[rng.integers(len(occupations))], s, p.openings_per_employer)
            for s in screeners
        ]
        self.applicants = []
        for _ in range(p.n_applicants):
            race, gender = GROUPS[rng.integers(len(GROUPS))]
            skill = float(rng.normal())
            body = ResumeBody.from_skill(occupations[rng.integers(len(occupations))], skill, rng)
            self.applicants.append(self._applicant(race, gender, skill, body))

    # ------------------------------------------------------------ one step

    def step(self) -> None:
        self.round += 1
        self._step_start = len(self.decisions)
        if self.params.mode == "audit":
            self._screen(self.pools)
            self.running = False
        else:
            self._market_round()
        self.datacollector.collect(self)

    def _screen(self, pools: list[tuple[Employer, list[Applicant]]]) -> list[np.ndarray]:
        """Propose every resume of every pool, score them in one call, decide per pool."""
        texts, contexts, subjects, screeners = [], [], [], []
        for employer, applicants in pools:
            for a in applicants:
                texts.append(self.stages.prepare_text(a.resume(), a.identity_spans()))
                contexts.append(employer.description)
                subjects.append(self.stages.prepare_text(a.name, a.identity_spans()))
                screeners.append(employer.screener)
        scores = score_proposals(screeners, texts, contexts, subjects)
        attr = PROTECTED[self.params.disadvantaged]
        chosen_by_pool, start = [], 0
        for employer, applicants in pools:
            pool_scores = scores[start : start + len(applicants)]
            groups = np.array([getattr(a, attr) for a in applicants])
            rule = employer.screener.card.decision
            chosen = self.stages.decide(pool_scores, groups, rule, self.decision_rng)
            for position, (a, score, pick) in enumerate(zip(applicants, pool_scores, chosen)):
                self.decisions.append(self._record(employer, a, position, score, pick))
            chosen_by_pool.append(np.asarray(chosen, dtype=bool))
            start += len(applicants)
        return chosen_by_pool

    def _record(self, employer: Employer, a: Applicant, position: int, score, pick) -> dict:
        truth = (
            a.quality if self.params.mode == "audit" else int(a.skill > self.params.qualified_skill)
        )
        return {
            "step": self.round,
            "decider": employer.unique_id,
            "subject": a.unique_id,
            "name": a.name,
            "first_name": a.first_name,
            "race": a.race,
            "gender": a.gender,
            "group": a.group,
            "position": position,
            "checkpoint": employer.screener.card.checkpoint,
            "card": employer.screener.card.name,
            "score": float(score),
            "decision": int(pick),
            "truth": float(truth),
            "hired": 0,
        }

    def _market_round(self) -> None:
        p = self.params
        for a in self.applicants:
            if a.employed:
                a.work_a_round(p.job_loss)
        seekers = [a for a in self.applicants if a.active and not a.employed]
        for a in seekers:
            a.choose_employers(self.employers, p.applications_per_round)
        applications = {e: [a for a in seekers if e in a.applied_to] for e in self.employers}
        first_row = len(self.decisions)
        pools = [(e, apps) for e, apps in applications.items() if apps]
        chosen = self._screen(pools)
        rows = self.decisions[first_row:]
        hired: set[int] = set()
        offsets = np.cumsum([0] + [len(apps) for _, apps in pools])
        for e in self.decision_rng.permutation(len(pools)):
            employer, apps = pools[e]
            local = rows[offsets[e] : offsets[e + 1]]
            candidates = [j for j in np.flatnonzero(chosen[e]) if apps[j].unique_id not in hired]
            candidates.sort(key=lambda j: -local[j]["score"])
            for j in candidates[: employer.openings]:
                hired.add(apps[j].unique_id)
                local[j]["hired"] = 1
        self.round_applicants = pd.DataFrame(
            {
                "subject": a.unique_id,
                "race": a.race,
                "gender": a.gender,
                "group": a.group,
                "truth": int(a.skill > p.qualified_skill),
                "hired": int(a.unique_id in hired),
            }
            for a in seekers
        )
        for a in seekers:
            if a.unique_id in hired:
                a.get_hired()
            else:
                a.stay_unemployed(p.scarring, p.dropout)

    # ------------------------------------------------------------ read-outs

    def default_steps(self) -> int:
        """One audit round, or ``n_rounds`` market rounds."""
        return 1 if self.params.mode == "audit" else self.params.n_rounds

    def step_decisions(self) -> pd.DataFrame:
        """Decisions of the current step (rows are appended in step order)."""
        return pd.DataFrame(self.decisions[self._step_start :])

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
