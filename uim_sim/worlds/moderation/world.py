"""What the moderation platform and its reference test share: moderators carrying
checkpoints, the template catalogue users post from, the historical moderation set
adapted heads learn from, one engine call per step, and the Dixon and Borkan metrics
of every decision."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from uim_sim.cards import AgentCard, DecisionSpec, HeadSpec
from uim_sim.lfm.heads import read_labelled_file
from uim_sim.vocab.identity import (
    BACKGROUND,
    DEFAULT_IDENTITIES,
    DIALECT,
    IDENTITY_GROUPS,
    Identities,
)
from uim_sim.worlds.base import ScreeningWorld
from uim_sim.worlds.moderation.agents import Moderator, User
from uim_sim.worlds.moderation.evalset import KEPT, file_group
from uim_sim.worlds.moderation.metrics import (
    attack_success,
    bias_metrics,
    error_rates,
    keep_impact_ratios,
)
from uim_sim.worlds.moderation.params import POOLS
from uim_sim.worlds.moderation.templates import (
    history,
    in_dialect,
    supplement,
    test_set,
    with_triggers,
)
from uim_sim.worlds.screening import score_proposals
from uim_sim.worlds.stages import TrainingSet
from uim_sim.worlds.watch import FOUR_FIFTHS, Plot, View, counts

TOXIC_DESCRIPTION = "This comment is toxic: rude, insulting, hateful or threatening."
BENIGN_DESCRIPTION = "This comment is friendly, respectful and harmless."
ZERO_SHOT = AgentCard(
    name="minilm_moderation_zero_shot",
    head=HeadSpec(
        kind="zero_shot_contrast", positive=[TOXIC_DESCRIPTION], negative=[BENIGN_DESCRIPTION]
    ),
    decision=DecisionSpec(rule="threshold", threshold=0.0),
)
# the default study's groups (a spec's identity_terms add more: see `ModerationWorld`)
TERMS = (*IDENTITY_GROUPS, DIALECT)  # the subgroups the Dixon and Borkan metrics cover


def identify_referent(
    spans: tuple[str, ...], identities: Identities = DEFAULT_IDENTITIES
) -> tuple[str, str]:
    """(protected, group) of a text whose identity spans are ``spans`` (its referent):
    the group the referent names, by the keywords a researcher's file is read with."""
    group = identities.group_named(" ".join(spans))
    return group, group


# the attack's read-outs where a share of the toxic texts carries the trigger
ATTACK_MEASURES = (
    "attack_success_rate",
    "attack_success_gap",
    *(f"attack_success_gap_null_{s}" for s in ("q025", "median", "q975", "p")),
)


class ModerationWorld(ScreeningWorld):
    """Moderators carrying checkpoints decide which texts stay up (base of
    `ModerationPlatform` and `ModerationReference`).

    ``name_permutations`` is the number of term permutations of the FPED/FNED null
    reference (labels shuffled among a frame's texts); there are no null draws.
    """

    default_card = ZERO_SHOT
    null_metrics = ()
    hooks: ClassVar[frozenset[str]] = frozenset(
        {"prepare_training", "prepare_text", "debias", "fit_decide", "decide", "assign", "review"}
    )
    # history texts carry their identity referent; a researcher's file does not
    identity_spans: ClassVar[frozenset[str]] = frozenset({"history"})
    supplement = True  # adaptation data carries a benign supplement (Dixon augmentation)
    watch = (
        Plot("false_positive_rate", "False positive rate by identity named"),
        Plot("impact_ratio", "Impact ratio of posts kept up (vs the best group)", None,
             FOUR_FIFTHS, "four fifths"),
    )  # fmt: skip

    def view(self) -> View:
        """The moderation queue of this step: posts by the group they name, kept or
        removed, toxic or not."""
        rows = self.step_decisions()
        if rows.empty:
            return counts([], [], "Moderation queue of this step", "no post decided yet")
        kept = np.where(rows["decision"].to_numpy() == 1, "removed", "kept")
        toxic = np.where(rows["truth"].to_numpy() == 1, "toxic", "not toxic")
        return counts(rows["group"], [f"{k}: {t}" for k, t in zip(kept, toxic)],
                      "Moderation queue of this step")  # fmt: skip

    # ------------------------------------------------------------ the study's groups

    @property
    def identities(self) -> Identities:
        """The identity groups of the study: Dixon et al.'s and the spec's terms."""
        return self.params.identities

    @property
    def groups(self) -> tuple[str, ...]:
        """Every group: identities, dialect and background."""
        return self.identities.groups

    @property
    def terms(self) -> tuple[str, ...]:
        """The subgroups the Dixon and Borkan metrics cover (identities and dialect)."""
        return (*self.identities.identity_groups, DIALECT)

    @property
    def everyone(self) -> tuple[str, ...]:
        """Population-level ("") and per-group read-outs."""
        return ("", *self.groups)

    def identify(self, spans: tuple[str, ...]) -> tuple[str, str]:
        return identify_referent(spans, self.identities)

    def _catalogue(self, texts: pd.DataFrame | None = None) -> None:
        """The texts users post or the reference mode scores (default: the template
        test set), as the deciders will read them."""
        catalogue = test_set(self.identities) if texts is None else texts
        catalogue = in_dialect(catalogue, self.params.ood_share)
        self.catalogue = with_triggers(catalogue, self.params.trigger, self.params.trigger_share)
        marked = self.catalogue.get("triggered")
        self.triggered = set(self.catalogue["text"][marked]) if marked is not None else set()
        self.prepared = [
            self.stages.prepare_text(t, (r,) if r else ())
            for t, r in zip(self.catalogue["text"], self.catalogue["referent"])
        ]
        self.items = self.catalogue.to_dict("records")
        # an evaluation file's columns, written with each decision
        self.kept = [c for c in self.catalogue.columns if c.startswith(KEPT)]
        cells = self.catalogue.groupby(["subgroup", "truth"]).indices
        self.cells = {key: np.asarray(rows) for key, rows in cells.items()}
        self.authors: list[User | None] = []  # the author of each decision row
        self.group_shares = self._group_shares()

    def _group_shares(self) -> dict[str, float]:
        """Background users hold ``background_share``; the other groups share the rest."""
        others = [g for g in self.groups if g != BACKGROUND]
        rest = (1 - self.params.background_share) / len(others)
        return {**{g: rest for g in others}, BACKGROUND: self.params.background_share}

    def training_data(self, card: AgentCard, draw: int = 0) -> TrainingSet:
        """The adaptation data of a trainable card (before any mitigation), with the
        benign supplement a data-stage mitigation may draw from."""
        if card.head.train_on == "file":
            texts, labels = read_labelled_file(
                card.head.file, card.head.text_column, card.head.label_column
            )
            groups = np.array([self.identities.group_named(t) for t in texts])
            spans = [()] * len(texts)
        else:
            frame = self.history(card.head.history_bias, draw)
            texts, labels = frame["text"].tolist(), frame["truth"].to_numpy(int)
            groups, spans = frame["subgroup"].to_numpy(), [(r,) for r in frame["referent"]]
        extra = supplement(self.identities)
        data = TrainingSet(
            texts,
            np.asarray(labels),
            spans,
            protected=groups,
            groups=groups,
            identify=self.identify,
            supplement=TrainingSet(
                extra["text"].tolist(),
                extra["truth"].to_numpy(int),
                [(r,) for r in extra["referent"]],
                protected=extra["subgroup"].to_numpy(),
                groups=extra["subgroup"].to_numpy(),
            ),
        )
        return data

    def history(self, bias: float = 0.0, draw: int = 0) -> pd.DataFrame:
        """Historical moderation decisions in which the target groups' texts are toxic
        with log-odds ``bias`` above the rest: the comments depend only on the seed and
        ``draw``, the bias only moves which of them are toxic."""
        p = self.params
        rng = np.random.default_rng([self.seed, 1, draw])
        return history(
            p.n_history,
            p.history_toxic_share,
            bias,
            tuple(p.history_targets),
            self.group_shares,
            rng,
            self.identities,
        )

    # ------------------------------------------------------------ deciding

    def score(self, rows: np.ndarray, queue: np.ndarray) -> np.ndarray:
        """One engine call for every text of the step (text i goes to moderator queue[i])."""
        texts = [self.prepared[r] for r in rows]
        screeners = [self.moderators[q].screener for q in queue]
        return score_proposals(screeners, texts, [TOXIC_DESCRIPTION] * len(texts))

    def _record(self, user: User | None, row: int, queue: int, score, flagged, removed) -> None:
        """One decision row; ``subject`` is the author (the test item in reference mode)."""
        item = self.items[row]
        moderator: Moderator = self.moderators[queue]
        self.authors.append(user)
        self.decisions.append({
            "step": self.round,
            "decider": moderator.unique_id,
            "subject": user.unique_id if user is not None else int(row),
            "group": user.group if user is not None else item["subgroup"],
            "subgroup": item["subgroup"],
            "dialect": bool(item["dialect"]),
            "family": item["family"],
            "frame": item["frame"],
            "text": item["text"],
            "checkpoint": moderator.screener.card.checkpoint,
            "card": moderator.screener.card.name,
            "score": float(score),
            "flagged": int(flagged),
            "decision": int(removed),
            "truth": int(item["truth"]),
            "appealed": 0,
            "reinstated_step": -1,
        })  # fmt: skip
        self.decisions[-1].update({c: item[c] for c in self.kept})
        if "edit" in item:  # a platform where toxic users adapt
            self.decisions[-1].update(edit=item["edit"], adaptive=int(user.learner >= 0))

    # ------------------------------------------------------------ read-outs

    def file_groups(self) -> dict[str, list[str]]:
        """Per ``group_by`` column of an evaluation file, the groups its values make
        (`file_group`, in the file's order); none without one."""
        return {
            column: [file_group(column, v) for v in self.catalogue[KEPT + column].dropna().unique()]
            for column in getattr(self.params, "group_by", ())
        }

    def bias_measures(self) -> dict[str, tuple[str, ...] | None]:
        """The declared Dixon/Borkan measures and the keep-rate impact ratios; the
        error rates also for the groups of an evaluation file's ``group_by`` columns."""
        by_file = [g for groups in self.file_groups().values() for g in groups]
        rates = (*self.everyone, *POOLS, *by_file)
        return {
            "false_positive_rate": rates,
            "false_negative_rate": rates,
            "fped": None,
            "fned": None,
            "overall_auc": None,
            "subgroup_auc": self.terms,
            "bpsn_auc": self.terms,
            "bnsp_auc": self.terms,
            "final_bias_score": None,
            **{
                f"{m}_null_{s}": None
                for m in ("fped", "fned", "fpr_gap")
                for s in ("q025", "median", "q975", "p")
            },
            "fpr_gap": None,
            "impact_ratio": self.groups,
            **({m: None for m in ATTACK_MEASURES} if self.params.trigger_share else {}),
        }

    def bias(self) -> dict:
        """Dixon and Borkan metrics of every decision so far, with the term null, and
        the impact ratios of the share of each author group's posts left up."""
        decisions = self.decision_table()
        targets = tuple(self.params.history_targets)
        pools = {
            "identity": self.identities.identity_groups,
            "targets": targets,
            "others": tuple(g for g in self.identities.identity_groups if g not in targets),
        }
        contrast = ("targets", "others") if all(pools.values()) else None
        out = bias_metrics(
            decisions, self.terms, pools, self.permutations, self.statistics_rng, contrast
        )
        for column in self.file_groups():  # the same rates, by the file's own column
            rows = decisions[decisions[KEPT + column].notna()]
            named = rows.assign(subgroup=[file_group(column, v) for v in rows[KEPT + column]])
            for metric, rates in error_rates(named).items():
                out[metric].update({g: v for g, v in rates.items() if g})
        out["impact_ratio"] = keep_impact_ratios(decisions)
        if self.params.trigger_share:
            triggered = decisions["text"].isin(self.triggered)
            out.update(attack_success(decisions, triggered, self.permutations, self.statistics_rng))
        return out
