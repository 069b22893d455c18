"""The moderation world's section of the report: what the headline shows, which
figures, and how to read them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from uim_sim.vocab.identity import BACKGROUND, DIALECT, GROUPS, IDENTITY_GROUPS
from uim_sim.worlds.moderation.evalset import KEPT, file_group
from uim_sim.worlds.moderation.params import POOLS
from uim_sim.worlds.section import (
    MIN_COUNT,
    Audit,
    AuditRate,
    Column,
    Context,
    Forest,
    GroupTable,
    Harm,
    Heatmap,
    OverTime,
    Section,
    Utility,
)

SUBGROUPS = (BACKGROUND, *IDENTITY_GROUPS, DIALECT)
NOT_GROUPS = ("", *POOLS)  # the overall and pooled read-outs
# the bias-audit table (`uim-sim audit-table`): error rates by the group a text names
AUDIT = Audit(
    kinds={"group": "subgroup"},
    unit=("texts", "texts"),
    tally=("removed", "removed", "decision"),
    rates=(
        AuditRate(
            "false_positive_rate",
            "FPR",
            "fpr_ratio",
            "FPR / overall",
            value="decision",
            among="truth == 0",
            ratio="overall",
            count=("benign", "benign"),
            hits=("false_positives", "benign removed"),
            seeds=("false_positive_rate", "FPR"),
        ),
        AuditRate(
            "false_negative_rate",
            "FNR",
            "fnr_ratio",
            "FNR / overall",
            value="1 - decision",
            among="truth == 1",
            ratio="overall",
            count=("toxic", "toxic"),
            hits=("false_negatives", "toxic left up"),
            seeds=("false_negative_rate", "FNR"),
        ),
    ),  # fmt: skip
    title="Moderation audit",
    min_count=MIN_COUNT,  # not LL144's 2 %: fifty identities are each under 2 % of the texts
    intro=(
        "Error rates by the group a text names, in the shape of a New York City Local "
        "Law 144 bias audit: per group (each identity, the dialect group and the "
        "background, texts that name none), the texts moderated and removed, the "
        "false-positive rate (benign texts removed) and the false-negative rate (toxic "
        "texts left up), each over the rate of every text of the condition (Dixon et al. "
        "2018 compare each term's rate with the overall rate), the condition's seeds "
        "pooled. Beside them, the "
        "sandbox's: each rate's mean and 95 % t-interval over seeds (the runs' metrics)."
    ),
)


def added_groups(ctx: Context) -> tuple[str, ...]:
    """The identity groups a spec's ``identity_terms`` added, in the order the runs
    report them (the groups of ``subgroup_auc`` beyond the defaults)."""
    s = ctx.summary
    reported = s.loc[s["metric"] == "subgroup_auc", "group"].drop_duplicates()
    return tuple(g for g in reported if g not in (*GROUPS, *NOT_GROUPS))


def file_columns(ctx: Context) -> list[str]:
    """The evaluation file's ``group_by`` columns of the runs (none without)."""
    given = ctx.runs.get("param.group_by", [])
    lists = [v for v in given if isinstance(v, list | tuple | np.ndarray)]
    return list(dict.fromkeys(str(c) for columns in lists for c in columns))


RATES = (("false_positive_rate", "FPR"), ("false_negative_rate", "FNR"))
BY_FILE = (
    "The share of benign texts removed (FPR) and of toxic texts left up (FNR) among the "
    "texts whose evaluation-file column `COLUMN` holds each value (`group_by`; the runs' "
    "`false_positive_rate[COLUMN=VALUE]`), mean and 95 % interval over seeds as for "
    "every group. The world computes no null reference for a group's rate (its term "
    "null is for FPED, FNED and the history targets' FPR gap), so the file's groups "
    "have none either."
)


def by_file(ctx: Context) -> tuple[list[GroupTable], list[Heatmap], Audit]:
    """The tables, figures and audit of the evaluation file's ``group_by`` columns:
    their groups' error rates, and the audit table by each column too."""
    tables, figures, kinds, groups = [], [], dict(AUDIT.kinds), {}
    for column in file_columns(ctx):
        prefix = file_group(column, "")
        names = {g: g.removeprefix(prefix) for metric, _ in RATES for g in ctx.groups(metric)
                 if g.startswith(prefix)}  # fmt: skip
        metrics = tuple((metric, f"{label} [95 % CI]") for metric, label in RATES)
        tables.append(GroupTable(f"Error rates by {column}", BY_FILE.replace("COLUMN", column),
                                 column, names, metrics))  # fmt: skip
        for metric, label in RATES:
            found = [g for g in ctx.groups(metric) if g.startswith(prefix)]
            figures.append(Heatmap(
                f"{metric}_by_{column}", f"{label} by the file's {column}",
                f"{label} among the texts of each value of the evaluation file's column "
                f"`{column}`, mean over seeds.", metric, found, label,
            ))  # fmt: skip
        kind = column if column not in kinds else KEPT + column
        kinds[kind], groups[kind] = KEPT + column, file_group(column, "{category}")
    intro = AUDIT.intro + (
        " Then the same rates by the evaluation file's own columns (`group_by`)." if groups else ""
    )
    return tables, figures, replace(AUDIT, kinds=kinds, groups=groups, intro=intro)


def section(ctx: Context) -> Section:
    platform = ctx.param("mode") == "world"
    added = added_groups(ctx)
    tables, file_figures, audit = by_file(ctx)
    subgroups = (BACKGROUND, *IDENTITY_GROUPS, *added, DIALECT)
    columns = [
        Column("fped", "FPED [95 % CI]", "fped", kind="interval"),
        Column("fped_null_q975", "null 97.5 %", "fped_null_q975"),
        Column("overall_auc", "AUC [95 % CI]", "overall_auc", kind="interval"),
        Column("fpr_background", "FPR background", "false_positive_rate", BACKGROUND),
        Column("fpr_targets", "FPR history targets", "false_positive_rate", "targets"),
        Column("fpr_dialect", "FPR dialect", "false_positive_rate", DIALECT),
        Column("fnr", "FNR", "false_negative_rate"),
    ]
    if platform:
        columns += [
            Column("participation_ratio", "participation ratio [95 % CI]",
                   "participation_ratio", kind="interval"),
            Column("appeal_backlog", "appeal backlog", "appeal_backlog"),
        ]  # fmt: skip
    figures = [
        Forest(
            "fped", "False-positive equality difference per condition",
            "FPED = Σ over identity terms and dialect of |overall FPR − the term's FPR| at "
            "the card's threshold (Dixon et al. 2018), mean and 95 % t-interval over "
            "seeds; grey tick: 97.5 % of the same statistic with group labels shuffled "
            "among each template frame's texts (FPED is a sum of absolute values, so noise "
            "alone makes it positive).",
            "fped", "", "FPED", null_high="fped_null_q975",
        ),
        Heatmap(
            "fpr_by_group", "Benign texts removed, by the group they name",
            "False-positive rate per named group (share of benign texts removed), mean "
            "over seeds. Compare each group with the background.",
            "false_positive_rate", subgroups, "false-positive rate",
        ),
        Heatmap(
            "impact_ratio_by_group", "Benign posts left up, relative to the best-treated group",
            "Share of each author group's benign posts left up (1 − silencing) over the "
            "best group's share: the four-fifths comparison for moderation; below 0.80 "
            "fails the rule.",
            "impact_ratio", (*IDENTITY_GROUPS, *added, DIALECT, BACKGROUND),
            "impact ratio (benign posts left up)",
        ),
        *file_figures,
    ]  # fmt: skip
    if platform:
        figures.append(
            OverTime(
                "participation",
                "Participation of the history's target groups over time",
                "Expected posts per user of the groups the biased history over-represents "
                "in toxic comments, over the other groups' (1 = equal), per step; one panel "
                "per card, one line per mitigation; mean over seeds with a 95 % band.",
                "participation_ratio",
                ("",),
                "participation: target groups / others",
                panels="card",
                line=1.0,
            )  # fmt: skip
        )
    adaptive = ctx.reports("adaptive_kept")
    if adaptive:
        columns += [
            Column("adaptive_kept", "adaptive toxic kept [95 % CI]", "adaptive_kept",
                   kind="interval"),
            Column("static_kept", "other toxic kept", "static_kept"),
            Column("edit_found", "prefer an edit", "edit_found"),
        ]  # fmt: skip
        figures += [
            OverTime(
                "adaptive_kept", "Toxic posts of users who adapt, left up",
                "Share of the adaptive toxic users' posts left up, per step; one panel per "
                "card, one line per mitigation arm; mean over seeds with a 95 % band. "
                "Adaptive users learn which rewrite keeps a post up (a bandit over edits, "
                "contacts' attempts shared).",
                "adaptive_kept", ("",), "adaptive toxic posts left up", panels="card",
            ),
            OverTime(
                "toxic_kept", "Toxic posts left up, by the group they name",
                "Share of the step's toxic posts left up, for the history's target groups' "
                "and the background's, per condition; mean over seeds with a 95 % band.",
                "toxic_kept", (BACKGROUND, "muslim", "gay", "black"), "toxic posts left up",
                panels="condition",
            ),
        ]  # fmt: skip
    text = (
        f"World `moderation` ({'platform' if platform else 'reference test'}). FPED and "
        "FNED: Σ over identity terms and dialect of |overall rate − the term's rate| at "
        "the card's threshold (Dixon et al. 2018), mean over seeds with a 95 % t-interval; "
        "`null 97.5 %`: the same statistic with group labels shuffled among each template "
        "frame's texts. AUCs and the final score (power mean p = −5) follow Borkan et al. "
        "(2019). `FPR …`: share of benign texts removed, by the group they name "
        "(`history targets`: the groups the history adapted heads learn from "
        "over-represents in toxic comments, `history_targets`, whatever texts are scored)."
        + (" `Error rates by …`: the same rates by the evaluation file's own columns "
           "(`group_by`)." if tables else "")
        + (" `participation ratio`: expected posts per user of the target groups over the "
           "other groups' at the last step." if platform else "")
        + (f" {ctx.param('adaptive_share'):.0%} of the toxic users adapt: `adaptive toxic "
           "kept` is the share of their posts left up at the last step (`other toxic "
           "kept`: the other toxic users'); `prefer an edit`: the share of them whose "
           "evidence now favours rewriting." if adaptive else "")
    )  # fmt: skip
    return Section(
        title="Content moderation",
        columns=columns,
        figures=figures,
        text=text,
        harm=Harm(
            "fped",
            "",
            "FPED",
            worse="higher",
            probe="toxicity_gap_nats",
            probe_label="MLM toxicity gap, target identities (nats)",
        ),
        utility=Utility("overall_auc", "AUC"),
        audit=audit,
        tables=tuple(tables),
        outcomes=(
            Utility("fned", "FNED", better="lower"),
            Utility("participation_ratio", "participation ratio"),
            *(
                (
                    Utility(
                        "adaptive_kept", "toxic posts of users who adapt, left up", better="lower"
                    ),
                    Utility("false_positive_rate", "benign posts removed", better="lower"),
                )
                if adaptive
                else ()
            ),
        ),  # fmt: skip
    )
