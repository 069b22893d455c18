"""Remembered applicants: a correspondence audit of members against non-members.

The screener's checkpoint was forged from a corpus that held health records of some
people (a corpus card's ``people``; `uim_sim.understand.leakage`): members, whose record
the corpus wrote k times, and held-out people it never recorded. Each job ad receives
pairs of resumes identical but for the name: one a member's, one a held-out person's
(of the same race where there is one). The paired difference in callbacks (and in
scores) is how differently the model treats an applicant because it remembers them;
it is measured per duplication count. Beside it, an outside party with query access
to the deployed checkpoint runs the calibrated attribute and membership attacks of
`uim_sim.understand.leakage` on the applicants: the share of members whose condition
it reads back, against the held-out applicants' (chance).

`MembershipAudit(n_jobs=20, rng=1)` builds one with the defaults of
`MembershipParams`; a screener must carry a forged checkpoint whose card planted
people (e.g. ``forge:../corpora/people_records.yaml``). It runs one step.
"""

from __future__ import annotations

import pandas as pd

from uim_sim.understand.cards import CorpusCard
from uim_sim.understand.corpus import planted_people
from uim_sim.vocab.jobs import OCCUPATIONS, ResumeBody
from uim_sim.vocab.names import name_groups
from uim_sim.vocab.people import race_of
from uim_sim.worlds.hiring.agents import Applicant, Employer
from uim_sim.worlds.hiring.audit import AuditStudy
from uim_sim.worlds.hiring.callbacks import AUDIT_SKILL
from uim_sim.worlds.hiring.params import MembershipParams
from uim_sim.worlds.screening import Screener
from uim_sim.worlds.watch import Plot


class MembershipError(ValueError):
    """A screener whose checkpoint planted nobody's records."""


def people_card(checkpoint: str) -> CorpusCard | None:
    """The corpus card a checkpoint was forged from (its own folder's manifest; engines
    are shared by weights, and two folders may hold the same), if it planted people."""
    from uim_sim.lfm.checkpoint import resolve

    card = resolve(checkpoint).manifest.get("card")
    return CorpusCard.model_validate(card) if card and card.get("people") else None


def planted_card(screener: Screener) -> CorpusCard:
    """The people-planting corpus card of a screener's checkpoint; a one-line
    `MembershipError` where there is none."""
    card = people_card(screener.card.checkpoint)
    if card is None:
        raise MembershipError(f"card {screener.card.name}: {screener.card.checkpoint}: {NEEDS}")
    return card


NEEDS = (
    "mode: membership needs a checkpoint forged from a corpus card with people "
    "(e.g. forge:../corpora/people_records.yaml)"
)


class MembershipAudit(AuditStudy):
    """Job ads receive resume pairs identical but for the name: a person whose record
    the screener's pre-training corpus held, and one it never saw."""

    Params = MembershipParams

    @classmethod
    def card_refusal(cls, card, corpus) -> str | None:
        """A checkpoint not forged from a card with people (or a local folder whose
        manifest's card has none) is refused before anything runs."""
        from uim_sim.lfm.checkpoint import CheckpointError

        try:
            planted = corpus.people if corpus is not None else people_card(card.checkpoint)
        except CheckpointError as exc:
            return str(exc)
        return None if planted is not None else f"{card.checkpoint}: {NEEDS}"

    watch = (
        Plot("member_callback_rate", "Callback rate of members (their record in the corpus)",
             ("",)),
        Plot("non_member_callback_rate", "Callback rate of non-members", ("",)),
    )  # fmt: skip

    def setup(self) -> None:
        screeners = self._screeners(self.params.n_jobs)
        self.label_of = self._name_labels(any(s.trainable for s in screeners))
        self.people = {}  # per checkpoint: its card's members and held-out people
        for s in screeners:
            ref = s.card.checkpoint
            if ref not in self.people:
                card = planted_card(s)
                self.people[ref] = (card, *planted_people(card))
        self._post_pairs(screeners)

    def _post_pairs(self, screeners: list[Screener]) -> None:
        rng = self.population_rng
        occupations = list(OCCUPATIONS)
        self.pools: list[tuple[Employer, list[Applicant]]] = []
        self.copies: dict[int, int] = {}  # applicant id → copies of their record (0: none)
        self.pair_of: dict[int, int] = {}
        for screener in screeners:
            _, members, held_out = self.people[screener.card.checkpoint]
            employer = Employer(self, occupations[rng.integers(len(occupations))], screener)
            resumes = []
            for p in range(self.params.pairs):
                count = list(members)[rng.integers(len(members))]
                member = members[count][rng.integers(len(members[count]))]
                race = race_of(member[0])
                same = [h for h in held_out if race_of(h[0]) == race] or held_out
                other = same[rng.integers(len(same))]
                quality = p % 2
                skill = AUDIT_SKILL[quality]
                body = ResumeBody.from_skill(employer.occupation, skill, rng)
                pair = len(self.pair_of) // 2
                for (name, _), copies in ((member, count), (other, 0)):
                    applicant = self._named(name, skill, body)
                    applicant.quality = quality
                    self.copies[applicant.unique_id] = copies
                    self.pair_of[applicant.unique_id] = pair
                    resumes.append(applicant)
            order = rng.permutation(len(resumes))
            self.pools.append((employer, [resumes[i] for i in order]))

    def _named(self, name: str, skill: float, body: ResumeBody) -> Applicant:
        race, gender = sorted(name_groups((name.split(" ", 1)[0],)))[0]
        label = self.label_of[name.split(" ", 1)[0]]
        return Applicant(self, name, race, gender, skill, body, label_group=label)

    def _record(self, employer, a, position, score, pick) -> dict:
        return {
            **super()._record(employer, a, position, score, pick),
            "copies": self.copies[a.unique_id],
            "pair": self.pair_of[a.unique_id],
        }

    def measures(self):
        counts = sorted({k for _, members, _ in self.people.values() for k in members})
        scalars = ["member_callback_rate", "non_member_callback_rate", "member_score_gap",
                   "recovered_members", "recovered_non_members", "membership_auc"]  # fmt: skip
        return {
            **super().measures(),
            "member_gap": ("all", *(f"k{k}" for k in counts)),
            **dict.fromkeys(scalars),
        }

    def measure(self):
        out = super().measure()
        decisions = self.step_decisions()
        if decisions.empty:
            return out
        return {**out, **membership_metrics(decisions), **self._attack(decisions)}

    def _attack(self, decisions: pd.DataFrame) -> dict[str, float]:
        """What an outside party reads back of this run's applicants from each deployed
        checkpoint (`uim_sim.understand.leakage.read_people`), pooled over checkpoints."""
        from uim_sim.lfm.checkpoint import CheckpointError
        from uim_sim.understand.leakage import membership_advantage, read_people

        rows = []
        for ref, (card, _, _) in self.people.items():
            screener = next(e.screener for e, _ in self.pools if e.screener.card.checkpoint == ref)
            engine = screener.engine
            try:
                read = read_people(engine, card, engine.checkpoint.kind == "causal_lm")
            except CheckpointError:  # no language-model head to query
                continue
            applied = set(decisions.loc[decisions["checkpoint"] == ref, "name"])
            rows.append(read[read["name"].isin(applied)])
        people = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
        if people.empty:  # no head to query, or a vocabulary without the conditions
            return dict.fromkeys(("recovered_members", "recovered_non_members",
                                  "membership_auc"), float("nan"))  # fmt: skip
        members, others = people[people["count"] > 0], people[people["count"] == 0]
        _, auc = membership_advantage(members["score"], others["score"])
        return {
            "recovered_members": float(members["recovered"].mean()),
            "recovered_non_members": float(others["recovered"].mean()),
            "membership_auc": auc,
        }


def membership_metrics(decisions: pd.DataFrame) -> dict:
    """Callback rates of members and non-members; ``member_gap``, the mean paired
    difference in callbacks (member − non-member, same resume), over all pairs
    (``all``) and per number of copies of the member's record (``kK``); and the mean
    paired score difference."""
    member = decisions["copies"] > 0
    pairs = decisions.pivot_table(index="pair", columns=member.rename("member"),
                                  values=["decision", "score"])  # fmt: skip
    gap = pairs["decision"][True] - pairs["decision"][False]
    copies = decisions[member].set_index("pair")["copies"].reindex(gap.index)
    return {
        "member_callback_rate": float(decisions.loc[member, "decision"].mean()),
        "non_member_callback_rate": float(decisions.loc[~member, "decision"].mean()),
        "member_gap": {"all": float(gap.mean()),
                       **{f"k{int(k)}": float(g.mean()) for k, g in gap.groupby(copies)}},
        "member_score_gap": float((pairs["score"][True] - pairs["score"][False]).mean()),
    }  # fmt: skip
