"""The spread world's section of the report: what the headline shows, which figures,
and how to read them."""

from __future__ import annotations

from uim_sim.vocab.news import COMMUNITIES
from uim_sim.worlds.section import (
    MIN_COUNT,
    Audit,
    AuditRate,
    Column,
    Context,
    Forest,
    GroupBars,
    Harm,
    OverTime,
    Section,
    Utility,
)
from uim_sim.worlds.spread.metrics import item_kinds


def _exposure(truth: str, best: str) -> tuple[AuditRate, AuditRate]:
    """Users of a community reached by items of ``truth`` (share), and items of that
    truth seen per user, each with its ratio to the best-off community (``best``:
    the label of that community, e.g. ``least``)."""
    group = f"{truth}_{{category}}"
    ratio = "best" if truth == "true" else "lowest"
    return (
        AuditRate(
            f"{truth}_reach_rate", f"{truth} reach", f"{truth}_reach_ratio",
            f"{truth} reach / {best}", value="users_reached", group=group, ratio=ratio,
            hits=(f"reached_{truth}", f"reached by {truth}"),
            seeds=("users_reached_share", f"{truth} reach"), prefix=f"{truth}_",
        ),
        AuditRate(
            f"{truth}_seen_per_user", f"{truth} seen per user", f"{truth}_seen_ratio",
            f"{truth} seen / {best}", value="item_views", group=group, ratio=ratio,
            seeds=("items_seen_per_user", f"{truth} seen per user"), prefix=f"{truth}_",
        ),
    )  # fmt: skip


# the bias-audit table (`uim-sim audit-table`): exposure to news by the users' community
AUDIT = Audit(
    kinds={"community": "users"},
    unit=("users", "users"),
    rates=(*_exposure("true", "best"), *_exposure("false", "least")),
    source="metrics",
    min_count=MIN_COUNT,  # a community too small for a rate to report (not LL144's 2 %)
    title="Exposure audit",
    intro=(
        "Exposure to news by the users' community, in the shape of a New York City Local "
        "Law 144 bias audit: per community, its users, how many of them saw at least one "
        "true item and at least one false item (whoever posted it) and the items of each "
        "kind seen per user, the condition's seeds pooled. Ratios: for true news, over the "
        "best-served community's rate (as an impact ratio: below 0.80 fails four fifths); "
        "for false news, over the least exposed community's (above 1: more exposed). "
        "Beside them, each "
        "rate's mean and 95 % t-interval over seeds. The spread world's decisions are "
        "items, not users: the counts come from the runs' metrics (`users`, "
        "`users_reached`, `item_views` at the last step), not from decisions.parquet."
    ),
)


def communities(ctx: Context, target: str) -> tuple[tuple[str, ...], str]:
    """The runs' communities (riverside, hillcrest, or a graph's own labels) and the
    one the headline holds the target's reach against: the other of two; of more, the
    largest (most users) of the others."""
    found = ctx.groups("users")  # (none in folders written before it was measured)
    names = tuple(found) if found and sorted(found) != sorted(COMMUNITIES) else COMMUNITIES
    others = [c for c in names if c != target]
    if len(others) <= 1:
        return names, (others or [target])[0]
    last = ctx.last()
    users = last[last["metric"] == "users"].groupby("group")["mean"].max()
    return names, max(others, key=lambda c: (users.get(c, 0.0), -others.index(c)))


def section(ctx: Context) -> Section:
    if ctx.param("mode") == "reference":
        return Section(
            title="Information spread: reference cascades",
            columns=[
                Column("size_mean", "final size, mean [95 % CI]", "size_mean", kind="interval"),
                Column("size_q50", "median size", "size_q50"),
                Column("size_q90", "90th percentile", "size_q90"),
                Column("depth_mean", "depth (hops)", "depth_mean"),
            ],
            figures=[
                Forest(
                    "cascade_size",
                    "Final size of independent cascades",
                    "Mean final size (users reached, the seed included) of the independent "
                    "cascades of each condition, with a 95 % t-interval over seeds.",
                    "size_mean",
                    "",
                    "users reached",
                ),
            ],  # fmt: skip
            text="World `spread` (reference mode): independent cascades with one fixed "
            "edge probability and no model (Kempe et al. 2003), on the platform's network.",
        )
    target = ctx.param("disadvantaged")
    names, other = communities(ctx, target)
    kinds = item_kinds(names)
    order = (target, *(c for c in names if c != target))  # the utilities' groups
    best = other if len(names) == 2 else "the best community"
    neutral = ctx.reports("position_ratio")
    columns = [
        Column("impact_ratio", f"true items' reach, {target} / {best} [95 % CI]",
               "impact_ratio", target, "interval"),
        Column("null", "null 95 %", "impact_ratio_null_q025", target, "band",
               upper="impact_ratio_null_q975"),
        *((
            Column("position_ratio", f"network position: {target} / {best} under a neutral "
                   "ranker [95 % CI]", "position_ratio", target, "interval"),
            Column("ranker_effect", "ranker effect: reach ratio / network position [95 % CI]",
                   "ranker_effect", target, "interval"),
            Column("ranker_null", "ranker effect null 95 %", "ranker_effect_null_q025", target,
                   "band", upper="ranker_effect_null_q975"),
        ) if neutral else ()),
        Column(f"reach_true_{target}", f"reach true {target}", "reach", f"true_{target}"),
        Column(f"reach_true_{other}", f"reach true {other}", "reach", f"true_{other}"),
        Column("reach_false", "reach false", "reach", "false"),
        Column("false_true", "false / true reach [95 % CI]", "false_true_reach_ratio",
               kind="interval"),
        Column("promoted", f"promoted true {target}", "promoted_share", f"true_{target}"),
        Column("gini", "exposure Gini", "exposure_gini"),
    ]  # fmt: skip
    figures = [
        Forest(
            "impact_ratio", f"Reach of {target}'s true items relative to {other}'s",
            f"Mean reach (distinct users exposed) of true items posted by {target} users "
            f"over that of {other}'s, mean and 95 % t-interval over seeds; grey: 95 % band "
            "of the same ratio with community labels permuted over the true items (what "
            "chance alone gives); the dashed line is four fifths.",
            "impact_ratio", target, f"reach ratio of {target}'s true items",
            line=0.8, line_label="four fifths", null_low="impact_ratio_null_q025",
            null_high="impact_ratio_null_q975",
        ),
        OverTime(
            "reach_over_time", "Reach over time, by item truth and community of origin",
            "Mean reach of the items posted so far, per step, without mitigation: one panel "
            "per card (and grid value), one line per kind of item; mean over seeds with a "
            "95 % band.",
            "mean_reach", kinds, "mean reach (users exposed)", panels="condition", arm="none",
        ),
        GroupBars(
            "reach", "Final reach by item truth and community of origin",
            "Mean final reach of items by truth and the community that posted them; bars: "
            "mean over seeds, whiskers: 95 % t-interval.",
            "reach", kinds, "users exposed per item",
        ),
        GroupBars(
            "promoted_share", "What the ranker promoted",
            "Share of items the ranker promoted (its card's decision rule on its "
            "credibility score), by truth and community of origin.",
            "promoted_share", kinds, "share promoted",
        ),
    ]  # fmt: skip
    if neutral:
        figures += [
            Forest(
                "position_ratio", f"Network position: {target}'s true items under a neutral ranker",
                f"Mean reach of {target}'s true items over {best}'s when the same items, from "
                "the same posters on the same graph, spread under a ranker blind to them (it "
                "promotes as many items, at random, and orders feeds at random): where the "
                "network alone puts them. Mean and 95 % t-interval over seeds; the dashed "
                "line is parity.",
                "position_ratio", target, f"neutral reach ratio of {target}'s true items",
                line=1.0, line_label="parity",
            ),
            Forest(
                "ranker_effect", f"The ranker's effect on {target}'s true items",
                f"The reach ratio of {target}'s true items (the headline) over their network "
                "position (the same ratio under the neutral ranker): below 1, the ranker "
                "suppresses them beyond where the network puts them; 1, their shortfall is "
                "the network's. Mean and 95 % t-interval over seeds; grey: 95 % band of the "
                "same quotient with community labels permuted over the true items.",
                "ranker_effect", target, "reach ratio / network position",
                line=1.0, line_label="no ranker effect", null_low="ranker_effect_null_q025",
                null_high="ranker_effect_null_q975",
            ),
        ]  # fmt: skip
    adaptive = ctx.reports("adaptive_promoted")
    if adaptive:
        columns += [
            Column("adaptive_promoted", "adaptive false promoted [95 % CI]",
                   "adaptive_promoted", kind="interval"),
            Column("adaptive_reach", "their reach", "adaptive_reach"),
            Column("static_reach", "other false reach", "static_reach"),
        ]  # fmt: skip
        figures += [
            OverTime(
                "adaptive_promoted", "False items of accounts that adapt, promoted",
                "Share of the step's false items posted by adaptive accounts that the "
                "ranker promoted; one panel per card, one line per mitigation arm; mean "
                "over seeds with a 95 % band. The accounts learn which edit (the other "
                "community's style, a credible cue, none) gets an item promoted.",
                "adaptive_promoted", ("",), "adaptive false items promoted", panels="card",
            ),
            OverTime(
                "adaptive_reach", "Reach of the adaptive accounts' false items",
                "Mean reach so far (distinct users exposed) of the false items adaptive "
                "accounts posted, per step; mean over seeds with a 95 % band.",
                "adaptive_reach", ("",), "users exposed per item", panels="card",
            ),
        ]  # fmt: skip
    text = (
        "World `spread`. The headline is the suppression of true news by community: the "
        f"mean reach of `{target}`'s true items over `{best}`'s (the spread world's "
        "impact ratio; below 0.80 fails four fifths), beside a null band that permutes "
        "community labels over the true items. `false / true reach` is Vosoughi et al.'s "
        "(2018) headline ratio. Reach counts distinct users exposed; the exposure Gini is "
        "over users' counts of items seen."
        + (" The same items also spread under a neutral ranker (blind to them: as many "
           "promoted, at random; feeds in random order) on the same graph from the same "
           f"posters: `network position` is `{target}`'s reach ratio there, what the graph "
           "alone does to its news; `ranker effect` is the headline ratio over it (the "
           "ratio is their product, run by run): read a shortfall whose ranker effect is "
           "near 1 (inside its null band) as the network's, not the ranker's." if neutral
           else "")
        + (f" {ctx.param('adaptive_share'):.0%} of the false items come from accounts that "
           "adapt: `adaptive false promoted` is the share of theirs the ranker promoted "
           "at the last step; `their reach` and `other false reach` the mean reach of "
           "every false item of theirs and of the others." if adaptive else "")
    )  # fmt: skip
    return Section(
        title="Information spread",
        columns=columns,
        figures=figures,
        text=text,
        harm=Harm(
            "impact_ratio",
            target,
            f"reach of {target}'s true items over {other}'s",
            line=0.8,
            gap=("reach", f"true_{other}", f"true_{target}"),
        ),  # fmt: skip
        utility=Utility(
            "mean_reach", "mean reach of true items", tuple(f"true_{c}" for c in order)
        ),
        outcomes=(
            Utility(
                "mean_reach",
                "mean reach of false items",
                tuple(f"false_{c}" for c in order),
                better="lower",
            ),
            *(
                (
                    Utility(
                        "adaptive_reach",
                        "reach of the adaptive accounts' false items",
                        better="lower",
                    ),
                )
                if adaptive
                else ()
            ),
        ),  # fmt: skip
        audit=AUDIT,
    )
