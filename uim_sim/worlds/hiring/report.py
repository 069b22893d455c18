"""The hiring world's section of the report: what the headline shows, which figures,
and how to read them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from uim_sim.cards import POOLED
from uim_sim.metrics.stats import cluster_permutation_p
from uim_sim.vocab.names import ATTRIBUTE, REFERENCE
from uim_sim.worlds.hiring.metrics import STRATA, position_bias
from uim_sim.worlds.hiring.world import SUBGROUPS
from uim_sim.worlds.section import (
    LL144_SHARE,
    Audit,
    AuditRate,
    Column,
    Context,
    Figure,
    Forest,
    GroupBars,
    Harm,
    Heatmap,
    OverTime,
    Section,
    Utility,
)

INTERSECTIONS = tuple(g for g in SUBGROUPS if "_" in g)
POOLED_PERMUTATIONS = 4000


def name_p(decisions: pd.DataFrame, attribute: str, group: str, reference: str) -> float:
    """The name-level permutation p of the callback gap between ``group`` and
    ``reference`` (values of ``attribute``: race, gender or their intersection) over
    ``decisions`` as given: first names as the unit, labels shuffled within the other
    attribute (`cluster_permutation_p`), from a fixed stream. The report's `p names
    pooled` and the audit table's p are this test on a condition's decisions, its
    seeds pooled: one test, one p."""
    return cluster_permutation_p(
        decisions, "decision", "first_name", attribute, group, reference,
        POOLED_PERMUTATIONS, np.random.default_rng(0), STRATA[attribute],
    )  # fmt: skip


# the bias-audit table of NYC Local Law 144 (`uim-sim audit-table`)
AUDIT = Audit(
    kinds={"sex": "gender", "race/ethnicity": "race", "intersection": "group"},
    unit=("applicants", "applicants"),
    tally=("selected", "selected", "decision"),
    rates=(
        AuditRate(
            "selection_rate",
            "selection rate",
            "impact_ratio",
            "impact ratio",
            seeds=("impact_ratio", "impact ratio"),
            null="impact_ratio_null",
            p=("p_names_pooled", "p (names, pooled)"),
            test=name_p,
            four_fifths=True,
        ),
    ),  # fmt: skip
    unknown="demographics_unknown",
    min_share=LL144_SHARE,  # LL144's small-category rule: a hiring audit's
    intro=(
        "Bias audit in the form of New York City Local Law 144: per category of sex, "
        "race/ethnicity and their intersection, applicants, selected, selection rate and "
        "impact ratio (over the highest selection rate of the same kind of category), the "
        "condition's seeds pooled. Where the auditor does not know some applicants' "
        "race and sex "
        "(`unknown_share`), they are an `unknown` row, left out of the rates, and each "
        "impact ratio is bounded over every way of assigning them to categories: "
        "`cannot tell` where the bounds straddle four fifths. Beside them, the "
        "sandbox's: the impact ratio's mean and 95 % t-interval over seeds and the null "
        "band (every applicant's category known to the world), and the name-level "
        "permutation p of the category's gap to the best of its kind, seeds pooled (the "
        "report's `p names pooled`)."
    ),
)


def pooled_name_p(ctx: Context) -> dict[str, dict[str, float]]:
    """Per condition: the name-level permutation p of the disadvantaged group's gap,
    pooled over all seeds of the condition (audit only: names as the unit)."""
    target = ctx.param("disadvantaged")
    attr, reference = ATTRIBUTE[target], REFERENCE[target]
    decisions = ctx.decisions
    out = {}
    for condition, members in ctx.runs.groupby("condition", sort=False):
        frame = decisions[decisions["run_id"].isin(members["run_id"])]
        frame = frame[frame["step"] == frame["step"].max()]
        out[condition] = {"p_names_pooled": name_p(frame, attr, target, reference)}
    return out


def pooled_position_bias(ctx: Context) -> dict[str, dict[str, float]]:
    """Per condition: the order effect (`position_bias`) over every pool of every seed
    of the condition, Bloomberg's trials pooled (each pool's order is drawn apart)."""
    decisions = ctx.decisions
    out = {}
    for condition, members in ctx.runs.groupby("condition", sort=False):
        frame = decisions[decisions["run_id"].isin(members["run_id"])]
        bias = position_bias(frame, pool=("run_id", "step", "decider"))
        out[condition] = {
            "position_bias_pooled": bias["position_bias"],
            "position_bias_pooled_low": bias["position_bias_low"],
            "position_bias_pooled_high": bias["position_bias_high"],
            "position_p_pooled": bias["position_bias_p"],
        }
    return out


def merged(ctx: Context, extras) -> dict[str, dict[str, float]]:
    """The computed columns of every function of ``extras``, per condition."""
    out: dict[str, dict[str, float]] = {}
    for extra in extras:
        for condition, values in extra(ctx).items():
            out.setdefault(condition, {}).update(values)
    return out


def reads_pools(ctx: Context) -> bool:
    """Does a card of the batch read whole pools (so that the order it was shown them
    in can matter)?"""
    return any((c.get("head") or {}).get("kind") in POOLED for c in ctx.cards().values())


def monoculture(ctx: Context, target: str) -> tuple[list[Column], list[Figure], str]:
    """The market's systemic exclusion and audit per position (Bommasani et al. 2022;
    2026): headline columns, figures and a sentence, where the runs measured them."""
    if not ctx.reports("systemic_exclusion"):
        return [], [], ""
    positions = ctx.param("n_employers")
    columns = [
        Column("systemic_exclusion", f"rejected everywhere {target} [95 % CI]",
               "systemic_exclusion", target, "interval"),
        Column("systemic_exclusion_expected", f"if independent {target} [95 % CI]",
               "systemic_exclusion_expected", target, "interval"),
        Column("pooled_impact_ratio", f"shortlists pooled: ratio {target} [95 % CI]",
               "pooled_impact_ratio", target, "interval"),
        Column("positions_failing", f"positions < 4/5 {target} (of {positions})",
               "positions_failing", target),
    ]  # fmt: skip
    figures = [
        GroupBars(
            "systemic_exclusion_excess", "Rejected everywhere, beyond independent decisions",
            "Over every round: the share of applicants (with two or more applications in a "
            "round) rejected by every employer they applied to, minus the share independent "
            "employers would reject everywhere at their own rates for the group (the "
            "independence baseline); bars: mean over seeds, whiskers: 95 % t-interval. "
            "Zero: verdicts no more shared than chance (Bommasani et al. 2022; 2026).",
            "systemic_exclusion_excess", SUBGROUPS, "observed − independence baseline",
        ),
        Heatmap(
            "positions_failing", f"Positions (of {positions}) failing four fifths, by group",
            "How many employers shortlist the group at less than four fifths of their "
            "best group's rate, every round of the run together; mean over seeds. A "
            "position with few applications of a group fails by chance too: "
            "`positions_failing_significant` (metrics.parquet) counts those whose gap "
            "Fisher's exact test also finds (p < 0.05) (Bommasani et al. 2026).",
            "positions_failing", SUBGROUPS, "positions below four fifths",
        ),
        Heatmap(
            "positions_hidden", "Positions failing four fifths that the pooled ratio hides",
            "Of the positions failing four fifths for a group, those of runs where the "
            "group's pooled ratio (every employer's applications together) passes; mean "
            "over seeds. Zero everywhere: the pooled audit hides no failing position.",
            "positions_hidden", SUBGROUPS, "failing positions hidden",
        ),
    ]  # fmt: skip
    text = (
        f" `rejected everywhere`: over every round, the share of `{target}` applicants "
        "applying to two or more employers in a round whom every one of them rejected "
        "from the shortlist; `if independent`: the share independent employers would "
        "reject everywhere at each employer's own rate for the group in that round "
        "(Bommasani et al. 2022's systemic failure; Bommasani et al. 2026 find it above "
        "the baseline among 3M applicants screened by one vendor). The interval is over "
        "seeds (each a whole market): applicants compete for the same shortlists, so "
        "they are not independent units. `shortlists pooled`: the shortlisting impact "
        "ratio over every employer's applications; `positions < 4/5`: how many employers "
        "(positions) put the group below four fifths on their own applications, what "
        "Bommasani et al. 2026 find pooled figures hide."
    )  # fmt: skip
    return columns, figures, text


def section(ctx: Context) -> Section:
    target = ctx.param("disadvantaged")
    reference = REFERENCE[target]
    audit = ctx.param("mode") in ("audit", "membership")  # both: one round of callbacks
    rate = "callback_rate" if audit else "hire_rate"
    rate_label = "callback" if audit else "hire"  # "callback rate", "hire rate"
    columns = [
        Column("impact_ratio", f"impact ratio {target} [95 % CI]", "impact_ratio", target,
               "interval"),
        Column("null", "null 95 %", "impact_ratio_null_q025", target, "band",
               upper="impact_ratio_null_q975"),
        Column(f"{rate}_{target}", f"{rate_label} rate {target}", rate, target),
        Column(f"{rate}_{reference}", f"{rate_label} rate {reference}", rate, reference),
    ]  # fmt: skip
    if audit:
        columns.append(Column("mean_score_ratio", "mean score ratio", "mean_score_ratio", target))
    else:
        for metric, label in (("employment_rate", "employed"), ("skill_mean", "skill")):
            columns += [
                Column(f"{metric}_{g}", f"{label} {g}", metric, g) for g in (target, reference)
            ]
        columns.append(
            Column("homogenization_ratio", "homogenisation ratio", "homogenization_ratio")
        )
    four_fifths = "the dashed line is the four-fifths rule (29 CFR 1607.4(D))"
    figures = [
        Forest(
            "impact_ratio", f"Impact ratio of {target} applicants per condition",
            f"Selection rate of {target} applicants over the best-treated {ATTRIBUTE[target]} "
            f"group's, mean and 95 % t-interval over seeds; grey: 95 % band of the null "
            f"reference (the same pipeline with permuted adaptation labels, or names "
            f"reassigned to groups: what chance alone gives); {four_fifths}.",
            "impact_ratio", target, f"impact ratio of {target} applicants",
            line=0.8, line_label="four-fifths rule", null_low="impact_ratio_null_q025",
            null_high="impact_ratio_null_q975",
        ),
        Heatmap(
            "impact_ratio_by_group", "Impact ratio of every group and intersection",
            "Each group's selection rate over the best group of its attribute (race, gender, "
            "race × gender), mean over seeds; cells below 0.80 fail the four-fifths rule. "
            "A mitigation aimed at one attribute can leave another, or an intersection, "
            "below the line.",
            "impact_ratio", SUBGROUPS, "impact ratio",
        ),
        GroupBars(
            rate, f"{rate_label.capitalize()} rate by race × gender",
            f"Share of applicants selected ({'called back' if audit else 'hired'}) at the "
            "last step, per intersectional group; bars: mean over seeds, whiskers: 95 % "
            "t-interval.",
            rate, INTERSECTIONS, f"{rate_label} rate",
        ),
    ]  # fmt: skip
    if not audit:
        for metric, label in (("employment_rate", "employment rate"), ("skill_mean", "skill")):
            figures.append(
                OverTime(
                    metric,
                    f"{label.capitalize()} over rounds: {target} vs {reference}",
                    f"Mean over seeds with a 95 % band; solid: {target}, dashed: {reference}. "
                    + (
                        "Latent skill falls with every round out of work (scarring)."
                        if metric == "skill_mean"
                        else ""
                    ),
                    metric,
                    (target, reference),
                    label,
                    xlabel="round",
                )  # fmt: skip
            )
    exclusion = monoculture(ctx, target) if not audit else ([], [], "")
    columns += exclusion[0]
    figures += exclusion[1]
    adaptive = ctx.reports("callback_gap")
    if adaptive:
        columns += [
            Column("callback_gap", "gamers − honest callbacks [95 % CI]", "callback_gap",
                   kind="interval"),
            Column("edit_found", "prefer an edit", "edit_found"),
        ]  # fmt: skip
        figures += [
            OverTime(
                "callback_gap", "Callbacks moved from honest applicants to gamers",
                "Share of adaptive applicants called back minus the share of honest ones, "
                "per round; one panel per card, one line per mitigation arm; mean over "
                "seeds with a 95 % band. Adaptive applicants learn which line to add to "
                "their resume (a bandit over edits, contacts' attempts shared).",
                "callback_gap", ("",), "callback gap: gamers − honest", xlabel="round",
                panels="card", line=0.0,
            ),
            OverTime(
                "hire_skill", "Latent skill of the round's hires",
                "Mean latent skill (standard normal) of the applicants hired in each round; "
                "mean over seeds with a 95 % band.",
                "hire_skill", ("",), "skill of hires", xlabel="round", panels="card",
            ),
        ]  # fmt: skip
    remembered = ctx.reports("member_gap")
    if remembered:
        counts = [c for c in ctx.groups("member_gap") if c != "all"]
        counts.sort(key=lambda c: int(c[1:]))  # k1, k2, ... k16
        columns += [
            Column("member_gap", "members − non-members callbacks [95 % CI]", "member_gap",
                   "all", "interval"),
            Column("member_score_gap", "score gap (paired)", "member_score_gap"),
            Column("recovered_members", "condition read back: members", "recovered_members"),
            Column("recovered_non_members", "non-members (chance)", "recovered_non_members"),
            Column("membership_auc", "membership AUC", "membership_auc"),
        ]  # fmt: skip
        figures.append(GroupBars(
            "member_gap", "Members − non-members: callbacks for identical resumes",
            "Mean paired difference in callbacks between a resume under the name of a "
            "person whose health record the screener's pre-training corpus held and the "
            "same resume under a held-out person's name, over all pairs and by the "
            "number of copies of the record; bars: mean over seeds, whiskers: 95 % "
            "t-interval. Zero: the model treats the people it remembers as the others.",
            "member_gap", ("all", *counts), "callback difference",
        ))  # fmt: skip
    history = any((c.get("head") or {}).get("train_on") == "history" for c in ctx.cards().values())
    pools = reads_pools(ctx)
    text = (
        f"World `hiring` ({'audit study' if audit else 'labour market'}). The headline is "
        f"the impact ratio of `{target}` applicants: their {rate_label} rate over the "
        f"`{reference}` applicants', mean over seeds with a 95 % t-interval; below 0.80 "
        "fails the four-fifths rule. The null band is what the same pipeline gives by "
        "chance (permuted adaptation labels, or names reassigned to groups): an observed "
        "ratio inside it is not evidence of bias."
        + (" `p names pooled`: permutation test with the first name as the unit, pooled "
           "over seeds." if audit else "")
        + (f" Heads adapted on `history` learned from historical decisions biased against "
           f"`{target}` applicants by the card's `history_bias`." if history else "")
        + exclusion[2]
        + (" `position bias`: the share of pools whose top-scored applicant was shown "
           "first, minus the share chance gives (1/k in a pool of k), over every pool of "
           "every seed, with its 95 % Wilson interval and exact p (`p position`); a "
           "`choose_one` head is shown each pool in a random order drawn per decision "
           "(Bloomberg 2024: GPT-3.5 picked the first of eight resumes 56 % of the time, "
           "+0.435). For heads that score one resume at a time the order cannot matter: "
           "their value is what chance gives." if pools else "")
        + (f" {ctx.param('adaptive_share'):.0%} of the applicants adapt: `gamers − honest "
           "callbacks` is the share of them called back in the last round minus the "
           "share of the others; `prefer an edit`: the share of them whose evidence now "
           "favours adding a line to their resume." if adaptive else "")
        + (" Each ad received pairs of identical resumes, one under the name of a person "
           "whose health record the screener's pre-training corpus held (a member; the "
           "record written 1 to 16 times), one under a held-out person's: `members − "
           "non-members callbacks` is the mean paired difference. `condition read back`: "
           "the share of the applicants whose condition an outside party recovers from "
           "the deployed checkpoint by the calibrated attack (the top condition the name "
           "raises over other names; chance 0.10); `membership AUC`: how well that "
           "party's score tells members from non-members." if remembered else "")
    )  # fmt: skip
    extras = ([pooled_name_p] if audit else []) + ([pooled_position_bias] if pools else [])
    labels = {"p_names_pooled": ("p names pooled", "p")} if audit else {}
    if pools:
        labels.update(position_bias_pooled=("position bias [95 % CI]", "interval"),
                      position_p_pooled=("p position", "p"))  # fmt: skip
    return Section(
        title="Hiring",
        columns=columns,
        figures=figures,
        text=text,
        harm=Harm(
            "impact_ratio",
            target,
            f"impact ratio of {target} applicants",
            line=0.8,
            gap=(rate, reference, target),
        ),  # fmt: skip
        utility=(
            Utility(
                "quality_gap", "callback gap, high- minus low-quality resumes", (target, reference)
            )
            if audit
            else Utility("skill_mean", "mean latent skill", (target, reference))
        ),  # fmt: skip
        audit=AUDIT,
        extra=(lambda c: merged(c, extras)) if extras else None,
        extra_labels=labels,
        outcomes=(
            Utility("callback_gap", "callbacks moved from honest applicants to gamers",
                    better="lower"),
            Utility("hire_skill", "latent skill of the round's hires"),
        ) if adaptive else (),
    )  # fmt: skip
