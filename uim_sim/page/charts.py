"""Interactive versions (Altair / Vega-Lite) of what the page draws: the metrics of a
watched world as they are collected, the world itself, every figure a world's report
section declares (`uim_sim.worlds.section`: forest, group bars, over time, heatmap),
the comparison of interventions (harm against utility) and the attribution.

Every chart has a title, labelled axes, a legend and tooltips (hover for values); the
drag/zoom of line charts is on. Charts render as SVG, so each mark carries its values
in an ``aria-label`` (what a screen reader, and the page's browser tests, read).
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from uim_sim.worlds.section import Context, Forest, GroupBars, Harm, Heatmap, OverTime, Utility
from uim_sim.worlds.watch import View

WIDTH = 420
INTERVAL = [
    "condition:N",
    "group:N",
    *(alt.Tooltip(f"{k}:Q", format=".3f") for k in ("mean", "ci_low", "ci_high")),
]
SVG = {"embedOptions": {"renderer": "svg"}}


def _finish(chart: alt.Chart | alt.LayerChart, title: str) -> alt.Chart:
    return chart.properties(title=title, usermeta=SVG)


def rule(value: float | None, label: str, orient: str = "y") -> list[alt.Chart]:
    """A dashed reference line at ``value`` (none for None), e.g. the four-fifths rule."""
    if value is None:
        return []
    data = pd.DataFrame({"line": [value], "label": [label or f"{value:g}"]})
    enc = {orient: alt.X("line:Q") if orient == "x" else alt.Y("line:Q"),
           "tooltip": ["label:N", "line:Q"]}  # fmt: skip
    return [alt.Chart(data).mark_rule(strokeDash=[6, 4], color="#1565c0").encode(**enc)]


def lines(frame: pd.DataFrame, title: str, ylabel: str, line: float | None = None,
          line_label: str = "", dash: str | None = "arm") -> alt.Chart:  # fmt: skip
    """A metric per step: a colour per group, a dash per arm (``frame``: step, group,
    value and ``dash``)."""
    enc = {
        "x": alt.X("step:Q", title="step", axis=alt.Axis(tickMinStep=1)),
        "y": alt.Y("value:Q", title=ylabel, scale=alt.Scale(zero=False)),
        "color": alt.Color("group:N", title="group"),
        "tooltip": ["step:Q", "group:N", alt.Tooltip("value:Q", format=".3f")],
    }
    if dash and dash in frame:
        enc["strokeDash"] = alt.StrokeDash(f"{dash}:N", title=dash)
        enc["tooltip"] = [f"{dash}:N", *enc["tooltip"]]
    # lines and points as two layers: Vega-Lite 5.2 (what solara-assets serves) names
    # the zoom selection twice when a line mark draws its own points
    base = alt.Chart(frame).encode(**enc)
    layers = [base.mark_line().interactive(), base.mark_point(filled=True, size=30),
              *rule(line, line_label)]  # fmt: skip
    return _finish(alt.layer(*layers).properties(width=WIDTH, height=260), title)


def view(v: View) -> alt.Chart:
    """The world at this step: stacked bars per group, or the network sample."""
    if v.kind == "bars":
        chart = (
            alt.Chart(v.frame)
            .mark_bar()
            .encode(
                x=alt.X("group:N", title="group", sort=None),
                y=alt.Y("count:Q", title="count"),
                color=alt.Color("state:N", title="state"),
                tooltip=["group:N", "state:N", "count:Q"],
            )
            .properties(width=WIDTH, height=260)
        )
        return _finish(chart, v.title)
    axis = alt.Axis(labels=False, ticks=False, grid=False, title=None)
    edges = (
        alt.Chart(v.edges)
        .mark_rule(color="#ccc", strokeWidth=0.6)
        .encode(x=alt.X("x:Q", axis=axis), y=alt.Y("y:Q", axis=axis), x2="x2:Q", y2="y2:Q")
    )
    palette = alt.Scale(
        domain=["not reached", "true news only", "false news only", "both", "reached"],
        range=["#d0d0d0", "#2e7d32", "#c62828", "#6a1b9a", "#ef6c00"],
    )
    nodes = (
        alt.Chart(v.frame)
        .mark_circle(size=40, opacity=0.9)
        .encode(
            x=alt.X("x:Q", axis=axis),
            y=alt.Y("y:Q", axis=axis),
            color=alt.Color("state:N", title="exposure", scale=palette),
            shape=alt.Shape("group:N", title="community"),
            tooltip=["user:Q", "group:N", "state:N"],
        )
    )
    chart = alt.layer(edges, nodes).properties(width=WIDTH, height=WIDTH)
    return _finish(chart, f"{v.title} — {v.note}" if v.note else v.title)


# ---------------------------------------------------------------- report figures


def figure(ctx: Context, spec) -> alt.Chart | None:
    """A report figure a world's section declares, interactive (None: nothing to draw)."""
    drawer = {Forest: forest, GroupBars: group_bars, OverTime: over_time, Heatmap: heatmap}
    return drawer[type(spec)](ctx, spec)


def _last(ctx: Context, metric: str, groups=None) -> pd.DataFrame:
    last = ctx.last()
    data = last[last["metric"] == metric]
    if groups is not None:
        data = data[data["group"].isin(list(groups))]
    return data.replace({np.inf: np.nan, -np.inf: np.nan})


def forest(ctx: Context, spec: Forest) -> alt.Chart | None:
    data = _last(ctx, spec.metric, [spec.group])
    if data.empty:
        return None
    order = [c for c in ctx.conditions if c in set(data["condition"])]
    for name in ("null_low", "null_high"):
        metric = getattr(spec, name)
        if metric:
            band = _last(ctx, metric, [spec.group]).set_index("condition")["mean"]
            data = data.assign(**{name: data["condition"].map(band)})
    y = alt.Y("condition:N", sort=order, title=None, axis=alt.Axis(labelLimit=420))
    tooltip = ["condition:N", alt.Tooltip("mean:Q", format=".3f"),
               alt.Tooltip("ci_low:Q", format=".3f"), alt.Tooltip("ci_high:Q", format=".3f"),
               "n:Q"]  # fmt: skip
    layers = []
    if "null_low" in data and "null_high" in data and data["null_low"].notna().any():
        layers.append(alt.Chart(data).mark_bar(color="#ddd", height=10).encode(
            x="null_low:Q", x2="null_high:Q", y=y,
            tooltip=["condition:N", alt.Tooltip("null_low:Q", format=".3f"),
                     alt.Tooltip("null_high:Q", format=".3f")]))  # fmt: skip
    layers.append(alt.Chart(data).mark_rule(color="#c62828").encode(
        x="ci_low:Q", x2="ci_high:Q", y=y))  # fmt: skip
    layers.append(alt.Chart(data).mark_point(filled=True, color="#c62828", size=60).encode(
        x=alt.X("mean:Q", title=spec.xlabel, scale=alt.Scale(zero=False)), y=y,
        tooltip=tooltip))  # fmt: skip
    layers += rule(spec.line, spec.line_label, orient="x")
    return _finish(alt.layer(*layers).properties(width=WIDTH + 100), spec.title)


def group_bars(ctx: Context, spec: GroupBars) -> alt.Chart | None:
    data = _last(ctx, spec.metric, spec.groups)
    if data.empty:
        return None
    x = alt.X("group:N", title=None, sort=list(spec.groups))
    bars = alt.Chart(data).mark_bar().encode(
        x=x, y=alt.Y("mean:Q", title=spec.ylabel), color=alt.Color("group:N", title="group"),
        tooltip=INTERVAL)  # fmt: skip
    errors = alt.Chart(data).mark_rule().encode(x=x, y="ci_low:Q", y2="ci_high:Q")
    chart = alt.layer(bars, errors).properties(width=max(120, 28 * len(spec.groups)), height=220)
    chart = chart.facet(column=alt.Column("condition:N", title="condition (card · arm)",
                                          header=alt.Header(labelLimit=260)))  # fmt: skip
    return _finish(chart, spec.title)


def heatmap(ctx: Context, spec: Heatmap) -> alt.Chart | None:
    data = _last(ctx, spec.metric, spec.groups)
    if data.empty:
        return None
    scale = (alt.Scale(scheme="redblue", domainMid=0.8, domain=[0, 1])
             if "impact" in spec.metric else alt.Scale(scheme="reds"))  # fmt: skip
    base = alt.Chart(data).encode(
        x=alt.X("group:N", title="group", sort=list(spec.groups)),
        y=alt.Y("condition:N", title=None, sort=ctx.conditions, axis=alt.Axis(labelLimit=420)),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("mean:Q", title=spec.label, scale=scale),
        tooltip=INTERVAL,
    )
    text = base.mark_text(fontSize=9).encode(text=alt.Text("mean:Q", format=".2f"))
    return _finish(alt.layer(cells, text).properties(width=WIDTH + 100), spec.title)


def over_time(ctx: Context, spec: OverTime) -> alt.Chart | None:
    data = ctx.summary[(ctx.summary["metric"] == spec.metric)
                       & ctx.summary["group"].isin(list(spec.groups))]  # fmt: skip
    if spec.arm is not None:
        arms = ctx.runs.drop_duplicates("condition").set_index("condition")["arm"]
        data = data[data["condition"].map(arms) == spec.arm]
    if data.empty or data["step"].nunique() < 2:
        return None
    data = data.assign(line=data["condition"] + ": " + data["group"])
    enc = {
        "x": alt.X("step:Q", title=spec.xlabel),
        "color": alt.Color("line:N", title="condition: group", legend=alt.Legend(labelLimit=400)),
    }
    band = alt.Chart(data).mark_area(opacity=0.15).encode(y="ci_low:Q", y2="ci_high:Q", **enc)
    mean = alt.Chart(data).mark_line().encode(
        y=alt.Y("mean:Q", title=spec.ylabel, scale=alt.Scale(zero=False)),
        tooltip=["step:Q", *INTERVAL],
        **enc,
    )  # fmt: skip
    layers = [band, mean, *rule(spec.line, "")]
    return _finish(alt.layer(*layers).properties(width=WIDTH + 100, height=280).interactive(),
                   spec.title)  # fmt: skip


def _better(values: pd.Series, worse: str) -> pd.Series:
    return values if worse == "lower" else -values


def interventions(table: pd.DataFrame, harm: Harm, utility: Utility | None) -> alt.Chart | None:
    """Harm against utility: each arm's paired change against no mitigation (the black
    cross), mean and 95 % interval; right is less harm, up is more utility."""
    if table.empty or "d_utility" not in table:
        return None
    data = table.assign(
        improvement=_better(table["d_harm"], harm.worse),
        improvement_low=_better(table["d_harm_low"], harm.worse),
        improvement_high=_better(table["d_harm_high"], harm.worse),
        status=np.where(table["dominated"].astype(bool), "dominated", "not dominated"),
    )
    x = alt.X("improvement:Q", title=f"improvement in {harm.label}")
    y = alt.Y("d_utility:Q", title=f"change in {utility.label if utility else 'utility'}")
    colour = alt.Color("status:N", title=None,
                       scale=alt.Scale(domain=["not dominated", "dominated"],
                                       range=["#c62828", "#777"]))  # fmt: skip
    tooltip = ["arm:N", "setting:N",
               alt.Tooltip("d_harm:Q", format=".3f", title=f"change in {harm.metric}"),
               alt.Tooltip("d_harm_low:Q", format=".3f"),
               alt.Tooltip("d_harm_high:Q", format=".3f"),
               alt.Tooltip("d_utility:Q", format=".4f"), "seeds:Q", "status:N"]  # fmt: skip
    # arms told apart by their marker in the legend (and the tooltip), not by labels
    # beside the points: arms whose changes are alike would print over one another
    shape = alt.Shape("arm:N", title="arm")
    points = alt.Chart().mark_point(filled=True, size=90, opacity=0.9).encode(
        x=x, y=y, color=colour, shape=shape, tooltip=tooltip)  # fmt: skip
    xerr = alt.Chart().mark_rule().encode(x="improvement_low:Q", x2="improvement_high:Q",
                                          y="d_utility:Q", color=colour)  # fmt: skip
    yerr = alt.Chart().mark_rule().encode(x="improvement:Q", y="d_utility_low:Q",
                                          y2="d_utility_high:Q", color=colour)  # fmt: skip
    base = alt.Chart().mark_point(shape="cross", size=140, color="black", filled=True).encode(
        x=alt.datum(0.0), y=alt.datum(0.0))  # fmt: skip  # no mitigation (not an arm's shape)
    chart = alt.layer(xerr, yerr, points, base, data=data)
    chart = chart.properties(width=WIDTH, height=320)
    if data["setting"].nunique() > 1:
        chart = chart.facet(facet=alt.Facet("setting:N", title=None), columns=2)
    else:
        chart = chart.interactive()
    return _finish(chart, "Harm against utility, per intervention")


def attribution(table: pd.DataFrame) -> alt.Chart | None:
    """The Shapley share of the harm each stage carries, mean and interval over seeds."""
    if table.empty:
        return None
    y = alt.Y("stage:N", title=None, sort=None)
    bars = alt.Chart(table).mark_bar(color="#c62828").encode(
        x=alt.X("share:Q", title="share of the harm"), y=y,
        tooltip=["condition:N", "stage:N", alt.Tooltip("share:Q", format=".3f"),
                 alt.Tooltip("ci_low:Q", format=".3f"), alt.Tooltip("ci_high:Q", format=".3f"),
                 alt.Tooltip("fraction:Q", format=".2f"), "seeds:Q"])  # fmt: skip
    errors = alt.Chart(table).mark_rule().encode(x="ci_low:Q", x2="ci_high:Q", y=y)
    chart = alt.layer(bars, errors).properties(width=WIDTH, height=30 * table["stage"].nunique())
    chart = chart.facet(row=alt.Row("condition:N", title=None, header=alt.Header(labelAngle=0,
                                    labelAlign="left", labelLimit=300)))  # fmt: skip
    return _finish(chart, "Harm carried by each stage")
