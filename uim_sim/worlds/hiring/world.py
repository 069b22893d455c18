"""What the audit study and the labour market share: employers carrying checkpoints,
applicants with Bertrand & Mullainathan names, the historical decisions adapted
heads learn from, and one screening pass per step (applicants propose resumes; one
engine call scores them; each employer's decision rule picks within its pool)."""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

import numpy as np
import pandas as pd

from uim_sim.cards import AgentCard, HeadSpec
from uim_sim.lfm.heads import read_labelled_file, unplaced_name
from uim_sim.metrics.fairness import INTERSECTION
from uim_sim.vocab.jobs import OCCUPATIONS, ResumeBody
from uim_sim.vocab.names import (
    ATTRIBUTE,
    FIRST_NAMES,
    GENDERS,
    GROUPS,
    RACES,
    REFERENCE,
    draw_name,
    first_unplaced,
    intersection,
    name_groups,
    name_spans,
)
from uim_sim.worlds.base import ScreeningWorld
from uim_sim.worlds.hiring.agents import Applicant, Employer
from uim_sim.worlds.hiring.callbacks import AUDIT_SKILL, draw_callbacks, read_callback_file
from uim_sim.worlds.hiring.metrics import ATTRIBUTES, POSITION_BIAS, position_bias
from uim_sim.worlds.screening import score_proposals
from uim_sim.worlds.stages import TrainingSet

ZERO_SHOT = AgentCard(name="minilm_zero_shot", head=HeadSpec(kind="zero_shot"))
# every group a rate is reported for: by race, by gender, and their intersection
SUBGROUPS = (*RACES, *GENDERS, *(intersection(r, g) for r, g in GROUPS))
# race, gender and their intersection: the keys of per-attribute read-outs
ATTRIBUTE_GROUPS = (*ATTRIBUTES, INTERSECTION)
UNKNOWN_STREAM = 8  # the key of the auditor's stream (whose categories it misses)


class HiringWorld(ScreeningWorld):
    """Employers carrying checkpoints screen applicants (base of `AuditStudy` and
    `LabourMarket`). The null reference (runner) summarises ``impact_ratio`` over null
    draws: trainable heads learn from permuted labels, zero-shot runs reassign names
    to groups."""

    default_card = ZERO_SHOT
    null_metrics = ("impact_ratio",)
    pool_heads = True  # an employer chooses within its pool of applicants
    hooks: ClassVar[frozenset[str]] = frozenset(
        {"prepare_training", "prepare_text", "debias", "fit_decide", "decide", "assign"}
    )
    identity_spans: ClassVar[frozenset[str]] = frozenset({"history", "file"})  # names
    # the auditor's stream and its draws by applicant, where it misses categories
    _unknown: tuple[np.random.Generator, dict[int, int]] | None = None

    # ------------------------------------------------------------ set-up

    def training_data(self, card: AgentCard, draw: int = 0) -> TrainingSet:
        """The adaptation data of a trainable card (before any mitigation). Its
        ``groups`` are the values of the compared attribute (``black``/``white`` or
        ``female``/``male``), as the decision stage sees applicants."""
        head = card.head
        if head.train_on == "file" and head.name_column:
            extra = [c for c in (head.name_column, head.group_column) if c]
            texts, labels, columns = read_labelled_file(
                head.file, head.text_column, head.label_column, extra
            )
            names = columns[head.name_column]
            spans = [(n,) for n in names]  # the file says who each text names
            if head.group_column:
                d = self.params.disadvantaged
                protected = np.array([g.lower() == d for g in columns[head.group_column]])
            else:
                unplaced = first_unplaced(names)
                if unplaced is not None:
                    raise unplaced_name(head.file, names, unplaced)
                protected = np.array([self._is_protected(tuple(n.split())) for n in names])
            data = TrainingSet(texts, labels, spans, protected)
        elif head.train_on == "file":
            texts, labels = read_labelled_file(head.file, head.text_column, head.label_column)
            spans = [name_spans(t) for t in texts]
            protected = np.array([self._is_protected(s) for s in spans])
            data = TrainingSet(texts, labels, spans, protected)
        else:
            data = self.history(card.head.history_bias, draw)
        d = self.params.disadvantaged
        data = replace(
            data,
            groups=np.where(data.protected, d, REFERENCE[d]),
            identify=self._identify,
        )
        return data

    def _is_protected(self, spans: tuple[str, ...]) -> bool:
        """Does a text name someone of the disadvantaged group (by the study's lists)?"""
        index = 0 if ATTRIBUTE[self.params.disadvantaged] == "race" else 1
        return self.params.disadvantaged in {g[index] for g in name_groups(spans)}

    def _identify(self, spans: tuple[str, ...]) -> tuple[bool, str]:
        """(protected, group) of a text naming ``spans`` (full names or single names):
        whether it names someone of the disadvantaged group, and that group or the one
        it is compared with."""
        mine = self._is_protected(tuple(w for span in spans for w in span.split()))
        d = self.params.disadvantaged
        return mine, d if mine else REFERENCE[d]

    def history(self, bias: float = 0.0, draw: int = 0) -> TrainingSet:
        """Historical hiring decisions, biased by ``bias`` (a log-odds penalty) against
        the disadvantaged group: the adaptation data through which a head inherits.
        The resumes depend only on the seed and ``draw``; the bias only moves labels."""
        p = self.params
        if p.history == "callbacks":
            return self._callback_history(bias, draw)
        rng = np.random.default_rng([self.seed, 1, draw])
        attr = ATTRIBUTE[p.disadvantaged]
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

    def _callback_history(self, bias: float, draw: int) -> TrainingSet:
        """Callbacks in the design of Bertrand & Mullainathan (2004): the study's
        rates (shifted by ``bias`` log-odds against the disadvantaged group) or a
        researcher's study-shaped file, each row rendered as a resume of its quality
        (drawn at random where the file does not say) with its name."""
        p = self.params
        rng = np.random.default_rng([self.seed, 1, draw])
        if p.history_file is not None:
            rows = read_callback_file(p.history_file)
            unknown = rows["quality"].to_numpy() < 0
            rows.loc[unknown, "quality"] = rng.integers(2, size=int(unknown.sum()))
        else:
            pairs = [GROUPS[i] for i in rng.integers(len(GROUPS), size=p.n_history)]
            rows = pd.DataFrame(pairs, columns=["race", "gender"])
            rows["quality"] = rng.integers(2, size=p.n_history)
        attr = ATTRIBUTE[p.disadvantaged]
        protected = (rows[attr] == p.disadvantaged).to_numpy()
        if p.history_file is None:
            rows["call"] = draw_callbacks(
                rows["race"].to_numpy(), rows["quality"].to_numpy(), p.callback_rates,
                bias * protected, rng,
            )  # fmt: skip
        occupations = list(OCCUPATIONS)
        texts, spans = [], []
        for row in rows.itertuples():
            if p.history_file is None:
                name = draw_name(row.race, row.gender, rng)
            else:  # the file's first name with its surname, or a surname of its race
                # (drawn either way: a file's surnames change nothing else of the history)
                drawn = draw_name(row.race, row.gender, rng).split(" ", 1)[1]
                name = f"{row.first_name} {row.last_name or drawn}"
            occupation = occupations[rng.integers(len(occupations))]
            body = ResumeBody.from_skill(occupation, AUDIT_SKILL[row.quality], rng)
            texts.append(body.render(name))
            spans.append((name,))
        return TrainingSet(texts, rows["call"].to_numpy(int), spans, protected)

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

    # ------------------------------------------------------------ screening

    def position_measures(self) -> dict[str, None]:
        """The order effect's measures (population-level), declared where a card reads
        whole pools: a head scoring one text at a time cannot have one (its tables
        stay as they were; `position_bias` computes it from any decision table)."""
        return dict.fromkeys(POSITION_BIAS) if self.reads_pools else {}

    def measure_position(self) -> dict[str, float]:
        """The order effect over every decision so far (an audit's one step, a market's
        rounds), where it is declared; else nothing."""
        if not (self.reads_pools and self.decisions):
            return {}
        return position_bias(self.decision_table())

    def truth(self, applicant: Applicant) -> int:
        """What the world knows an applicant deserves (1: hire)."""
        raise NotImplementedError

    def screen(self, pools: list[tuple[Employer, list[Applicant]]]) -> list[np.ndarray]:
        """Propose every resume of every pool, score them in one engine call, and let
        each employer's decision rule (the decision stage) pick within its pool.
        Records every decision, with the position the applicant was shown at
        (`shown_order`: a pool head's random order, else the pool's own); returns the
        picks per pool."""
        texts, contexts, subjects, screeners, pool_of, shown = [], [], [], [], [], []
        orders = [self.shown_order(employer.screener, len(apps)) for employer, apps in pools]
        for p, ((employer, applicants), order) in enumerate(zip(pools, orders)):
            for a in applicants:
                text, context, subject = self._proposal(employer, a)
                texts.append(text)
                contexts.append(context)
                subjects.append(subject)
                screeners.append(employer.screener)
            pool_of += [p] * len(applicants)
            shown += order.tolist()
        scores = score_proposals(screeners, texts, contexts, subjects, pool_of, shown)
        attr = ATTRIBUTE[self.params.disadvantaged]
        chosen_by_pool, start = [], 0
        for (employer, applicants), order in zip(pools, orders):
            pool_scores = scores[start : start + len(applicants)]
            groups = np.array([getattr(a, attr) for a in applicants])
            chosen = employer.decide(pool_scores, groups)
            for a, score, pick, position in zip(applicants, pool_scores, chosen, order):
                self.decisions.append(self._record(employer, a, int(position), score, pick))
            chosen_by_pool.append(np.asarray(chosen, dtype=bool))
            start += len(applicants)
        return chosen_by_pool

    def _proposal(self, employer: Employer, a: Applicant) -> tuple[str, str, str]:
        """(resume, job ad, name) as the employer's screener sees them."""
        spans = a.identity_spans()
        text = self.stages.prepare_text(a.resume_for(employer.occupation), spans)
        return text, employer.description, self.stages.prepare_text(a.name, spans)

    def _record(self, employer: Employer, a: Applicant, position: int, score, pick) -> dict:
        adapts = getattr(self, "bandit", None) is not None  # a market where applicants adapt
        return {
            **({"edit": a.edit, "adaptive": int(a.learner >= 0)} if adapts else {}),
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
            "truth": float(self.truth(a)),
            "hired": 0,
            **self._unknown_to_auditor(a),
        }

    def _unknown_to_auditor(self, a: Applicant) -> dict[str, int]:
        """``demographics_unknown``: 1 where the auditor does not know the applicant's
        race and sex (`unknown_share`), drawn once per applicant from a stream of its
        own; without ``unknown_share`` nothing is drawn or recorded."""
        p = self.params
        if not p.unknown_share:
            return {}
        if self._unknown is None:
            self._unknown = (np.random.default_rng([self.seed, UNKNOWN_STREAM]), {})
        rng, drawn = self._unknown
        if a.unique_id not in drawn:
            drawn[a.unique_id] = int(rng.random() < p.unknown_chance(a.race, a.gender))
        return {"demographics_unknown": drawn[a.unique_id]}
