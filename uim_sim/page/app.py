"""The analyst page (Solara): **Watch** a world run with two arms side by side on the
same seed, and **Compare** the results of a batch, interactively.

Served by `uim-sim page` (`uim_sim.page.serve`). Every browser tab is its own session
(Solara keeps module-level reactive values per session); model work of all tabs goes
through one lock (`watch.MODEL_LOCK`) in background threads, so the page answers while
a world steps. Failures show as one line; tracebacks go to the server's log only.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import altair as alt
import solara
from mesa.visualization.components.altair_components import PlotAltair
from mesa.visualization.utils import force_update
from solara.server import kernel_context

from uim_sim.page import charts
from uim_sim.page import watch as w
from uim_sim.page.results import Results, result_folders
from uim_sim.report.compare import shown as shown_comparison
from uim_sim.worlds import WORLDS
from uim_sim.worlds.watch import Plot

log = logging.getLogger(__name__)

# Solara's FigureAltair (Mesa's plots use it too) switches Altair's process-wide renderer
# to "mimetype" around each chart and back: two sessions drawing at once raced on it
# (KeyError from the restored renderer). With "mimetype" as the renderer all along,
# switching and restoring leave it the same.
alt.renderers.enable("mimetype")

RESULTS = Path(os.environ.get("UIM_SIM_PAGE_RESULTS", "results"))
AGENTS_DIR = (
    Path(os.environ["UIM_SIM_PAGE_AGENTS"]) if os.environ.get("UIM_SIM_PAGE_AGENTS") else None
)
SCRATCH = Path(os.environ.get("UIM_SIM_PAGE_SCRATCH", ".uim-page"))
PLAY_INTERVAL = 0.5  # seconds: the shortest time between two steps while playing

# ------------------------------------------------------------------ session state

world = solara.reactive("hiring")
mode = solara.reactive("market")
params: solara.Reactive[dict] = solara.reactive({})
seed = solara.reactive(1)
card_a = solara.reactive("minilm_biased_history")
card_b = solara.reactive("minilm_biased_history")
mitigations_a: solara.Reactive[list[str]] = solara.reactive([])
mitigations_b: solara.Reactive[list[str]] = solara.reactive(["group_thresholds"])
watched: solara.Reactive[w.Watch | None] = solara.reactive(None)
snapshot: solara.Reactive[dict | None] = solara.reactive(None)
busy = solara.reactive("")  # what the page is doing, shown with a progress bar
error = solara.reactive("")
playing = solara.reactive(False)

folder = solara.reactive("")
opened: solara.Reactive[Results | None] = solara.reactive(None)
compare_error = solara.reactive("")
compare_busy = solara.reactive("")
chosen_cards: solara.Reactive[list[str]] = solara.reactive([])
chosen_arms: solara.Reactive[list[str]] = solara.reactive([])
chosen_groups: solara.Reactive[list[str]] = solara.reactive([])


def in_background(job: Callable[[], None], state: solara.Reactive[str], what: str,
                  failure: solara.Reactive[str]) -> None:  # fmt: skip
    """Run ``job`` in a thread of this session; ``state`` says ``what`` meanwhile and a
    failure becomes one line in ``failure``."""
    if state.value:
        return
    context = kernel_context.get_current_context()
    state.set(what)
    failure.set("")

    def run() -> None:
        with context:
            try:
                job()
            except Exception as exc:  # shown as one line; the traceback goes to the log
                log.warning("page: %s failed", what, exc_info=True)
                failure.set(w.one_line(exc))
                playing.set(False)
            finally:
                state.set("")

    threading.Thread(target=run, daemon=True, name=f"uim-page: {what}").start()


def _snap(current: w.Watch) -> dict:
    """What the page draws of the watched arms, taken between steps."""
    with w.MODEL_LOCK:
        return {
            "step": current.step_count,
            "running": current.running,
            "series": [current.series(p) for p in current.plots],
            "views": [m.view() for m in current.models],
            "collected": [w.Collected(m) for m in current.models],
        }


def _build() -> w.Watch:
    arms = [w.Arm(card_a.value, tuple(mitigations_a.value)),
            w.Arm(card_b.value, tuple(mitigations_b.value))]  # fmt: skip
    built = w.Watch(world.value, mode.value, dict(params.value), arms, seed.value, SCRATCH,
                    AGENTS_DIR)  # fmt: skip
    watched.set(built)
    snapshot.set(_snap(built))
    return built


def _steps(n: int | None) -> Callable[[], None]:
    """Step ``n`` times, or (None) play until paused or finished, at most one step per
    `PLAY_INTERVAL` seconds so that a fast world can be followed."""

    def job() -> None:
        current = watched.value or _build()
        done = 0
        while current.running and (n is None and playing.value or done < (n or 0)):
            start = time.monotonic()
            current.step()
            done += 1
            snapshot.set(_snap(current))
            force_update()  # Mesa's plot components redraw
            if n is None:
                time.sleep(max(0.0, PLAY_INTERVAL - (time.monotonic() - start)))
        playing.set(False)

    return job


def reset(*_) -> None:
    """Settings changed: the arms are rebuilt on the next step."""
    playing.set(False)
    watched.set(None)
    snapshot.set(None)


# ------------------------------------------------------------------ Watch


@solara.component
def Knobs():
    for knob in w.knobs(world.value, mode.value, params.value):  # the meaningful ones
        value = params.value.get(knob.name, knob.default)

        def set_value(v, name=knob.name):
            params.set({**params.value, name: v})
            reset()

        with solara.Row(style={"align-items": "center"}):
            if knob.kind == "int":
                solara.SliderInt(knob.name, value=int(value), min=int(knob.low),
                                 max=int(knob.high), on_value=set_value)  # fmt: skip
                solara.InputInt(knob.name, value=int(value), on_value=set_value,
                                continuous_update=False)  # fmt: skip
            elif knob.kind == "float":
                step = (knob.high - knob.low) / 200
                solara.SliderFloat(knob.name, value=float(value), min=knob.low, max=knob.high,
                                   step=step, on_value=set_value)  # fmt: skip
                solara.InputFloat(knob.name, value=float(value), on_value=set_value,
                                  continuous_update=False)  # fmt: skip
            elif knob.kind == "choice":
                solara.Select(knob.name, value=value, values=list(knob.choices),
                              on_value=set_value)  # fmt: skip
            else:
                solara.Checkbox(label=knob.name, value=bool(value), on_value=set_value)


@solara.component
def ArmPicker(name: str, card: solara.Reactive[str], chosen: solara.Reactive[list[str]]):
    cards = solara.use_memo(lambda: w.cards(SCRATCH, AGENTS_DIR), dependencies=[])  # read once
    offered = w.mitigations(world.value, mode.value)
    with solara.Card(f"Arm {name}", margin=0):
        solara.Select(f"card {name}", value=card, values=cards,
                      on_value=reset)  # fmt: skip
        solara.SelectMultiple(f"mitigations {name}", values=chosen.value, all_values=offered,
                              on_value=lambda v: (chosen.set(v), reset()))  # fmt: skip


def _post_process(plot: Plot):
    def finish(chart: alt.Chart) -> alt.Chart:
        layers = [chart, *charts.rule(plot.line, plot.line_label)]
        return alt.layer(*layers).properties(title=plot.title, usermeta=charts.SVG)

    return finish


@solara.component
def ArmColumn(index: int):
    current, snap = watched.value, snapshot.value
    model = snap["collected"][index]  # never the live world: the next step may be collecting
    solara.Markdown(f"**{current.labels[index]}** — step {model.round}"
                    + ("" if model.running else " (finished)"))  # fmt: skip
    for plot in current.plots:
        measure = w.columns(model, plot)
        if measure:  # Mesa's SolaraViz plot component, on what the world collected
            PlotAltair(model, measure, post_process=_post_process(plot))
    view = snap["views"][index]
    if view is not None:
        solara.FigureAltair(charts.view(view))


@solara.component
def WatchTab():
    modes = w.modes(world.value)

    def pick_world(name: str) -> None:
        world.set(name)
        picked = w.modes(name)
        mode.set(next((m for m in picked if m in ("market", "world")), picked[0]))
        params.set({})
        card_a.set(w.default_card(name, mode.value))
        card_b.set(w.default_card(name, mode.value))
        mitigations_a.set([])
        mitigations_b.set([])
        reset()

    def pick_mode(name: str) -> None:
        mode.set(name)
        params.set({})
        reset()

    with solara.Row(style={"align-items": "center", "flex-wrap": "wrap"}):
        solara.Select("world", value=world.value, values=list(WORLDS), on_value=pick_world)
        solara.Select("mode", value=mode.value if mode.value in modes else modes[0],
                      values=modes, on_value=pick_mode)  # fmt: skip
        solara.InputInt("seed", value=seed, on_value=reset, continuous_update=False)
    with solara.Columns([1, 1]):
        ArmPicker("A", card_a, mitigations_a)
        ArmPicker("B", card_b, mitigations_b)
    with solara.Details("World parameters (sliders span the schema's bounds)", expand=False):
        Knobs()
    with solara.Row(style={"align-items": "center"}):
        idle = not busy.value
        solara.Button("Build", on_click=lambda: in_background(_build, busy, "building the arms",
                      error), disabled=not idle)  # fmt: skip
        solara.Button("Step", on_click=lambda: in_background(_steps(1), busy, "stepping", error),
                      disabled=not idle)  # fmt: skip
        if playing.value:
            solara.Button("Pause", on_click=lambda: playing.set(False), color="warning")
        else:
            solara.Button("Play", on_click=lambda: (playing.set(True), in_background(
                _steps(None), busy, "playing", error)), disabled=not idle)  # fmt: skip
        solara.Button("Reset", on_click=reset, disabled=not idle, text=True)
        if watched.value is not None:
            snap = snapshot.value or {}
            state = "running" if snap.get("running", True) else "finished"
            solara.Text(f"step {snap.get('step', 0)} · {state}")
    if busy.value:
        solara.Text(f"{busy.value}…")
        solara.ProgressLinear(True)
    if error.value:
        solara.Error(error.value)
    current, snap = watched.value, snapshot.value
    if current is None or snap is None:
        solara.Info(
            "Pick a world and two arms, then Step or Play: both arms are built on the same "
            "seed (the same population and history), so what differs is the arm."
        )
        return
    with solara.Columns([1, 1]):
        ArmColumn(0)
        ArmColumn(1)
    solara.Markdown("### A against B, same seed")
    with solara.Row(style={"flex-wrap": "wrap"}):
        for plot, frame in zip(current.plots, snap["series"]):
            if not frame.empty:
                solara.FigureAltair(charts.lines(frame, plot.title, plot.metric, plot.line,
                                                 plot.line_label))  # fmt: skip


# ------------------------------------------------------------------ Compare


def _open(path: str) -> Callable[[], None]:
    def job() -> None:
        results = Results.load(Path(path))
        chosen_cards.set(results.cards)
        chosen_arms.set(results.arms)
        chosen_groups.set(results.groups)
        opened.set(results)

    return job


@solara.component
def CompareTab():
    folders = [str(p) for p in result_folders(RESULTS)]

    def pick(path: str) -> None:
        folder.set(path)
        opened.set(None)
        in_background(_open(path), compare_busy, f"opening {path}", compare_error)

    with solara.Row(style={"align-items": "center"}):
        solara.Select("result folder", value=folder.value or None, values=folders, on_value=pick)
        solara.InputText("or a path", value="", on_value=pick, continuous_update=False)
    if not folders:
        solara.Info(f"No result folder under {RESULTS}: run `uim-sim run SPEC --out "
                    f"{RESULTS}/NAME` (or give `uim-sim page` another folder).")  # fmt: skip
    if compare_busy.value:
        solara.Text(f"{compare_busy.value} (writing its report if it has none)…")
        solara.ProgressLinear(True)
    if compare_error.value:
        solara.Error(compare_error.value)
    results = opened.value
    if results is None:
        return
    with solara.Row(style={"flex-wrap": "wrap"}):
        solara.SelectMultiple("cards", values=chosen_cards.value, all_values=results.cards,
                              on_value=chosen_cards.set)  # fmt: skip
        solara.SelectMultiple("arms", values=chosen_arms.value, all_values=results.arms,
                              on_value=chosen_arms.set)  # fmt: skip
        solara.SelectMultiple("groups", values=chosen_groups.value, all_values=results.groups,
                              on_value=chosen_groups.set)  # fmt: skip
    CompareBody(results, tuple(chosen_cards.value), tuple(chosen_arms.value),
                tuple(chosen_groups.value))  # fmt: skip


@solara.component
def CompareBody(results: Results, cards: tuple, arms: tuple, groups: tuple):
    section = results.section
    ctx = solara.use_memo(lambda: results.filtered(cards, arms, groups),
                          dependencies=[results.folder, cards, arms, groups])  # fmt: skip
    shown = ctx.runs["condition"].nunique()
    total = results.ctx.runs["condition"].nunique()
    solara.Markdown(f"## {section.title}\n\n{section.text}\n\n*Showing {shown} of {total} "
                    f"conditions (card · arm).*")  # fmt: skip
    headline = solara.use_memo(lambda: results.headline_shown(ctx), dependencies=[ctx])
    if not headline.empty:
        solara.Markdown("### Headline")
        solara.DataFrame(headline, items_per_page=20)
    for title, text, table in results.tables(ctx):  # e.g. by an evaluation file's column
        solara.Markdown(f"### {title}\n\n{text}")
        solara.DataFrame(table, items_per_page=20)
    table = results.interventions(list(cards), list(arms))
    if not table.empty and section.harm is not None:
        solara.Markdown(
            "### Interventions against no mitigation\n\nEach arm's change against "
            "no mitigation (the black cross), paired over seeds: mean and 95 % "
            "interval; right is less harm, up is more utility; grey: dominated."
        )
        chart = charts.interventions(table, section.harm, section.utility)
        if chart is not None:
            solara.FigureAltair(chart)
        solara.DataFrame(shown_comparison(table, section.harm, section.utility,
                                          section.outcomes), items_per_page=20)  # fmt: skip
    for spec in section.figures:
        chart = charts.figure(ctx, spec)
        if chart is not None:
            solara.Markdown(f"### {spec.title}\n\n{spec.caption}")
            solara.FigureAltair(chart)
    split = results.attribution()
    if not split.empty:
        solara.Markdown("### Attribution: where the harm comes from")
        solara.FigureAltair(charts.attribution(split))
    for image in results.images():
        solara.Markdown(f"### {image.stem.replace('_', ' ').capitalize()} (picture)")
        solara.Image(str(image))
    solara.Markdown("### Bias-audit table")
    try:
        audit = results.audit_shown()
        keep = audit["condition"].isin(set(ctx.runs["condition"])) if "condition" in audit else True
        solara.DataFrame(audit[keep] if not isinstance(keep, bool) else audit, items_per_page=20)
    except ValueError as exc:
        solara.Info(w.one_line(exc))
    with solara.Details("The spec that produced these results", expand=False):
        solara.Markdown(f"```yaml\n{results.spec_text()}\n```")


# ------------------------------------------------------------------ the page


@solara.component
def Page():
    solara.Title("uim-sim")
    solara.Style(".v-application .v-card {margin-bottom: 6px}")
    with solara.Column(style={"padding": "0 16px"}):
        solara.Markdown("# uim-sim: watch a world, compare interventions")
        with solara.lab.Tabs():
            with solara.lab.Tab("Watch"):
                WatchTab()
            with solara.lab.Tab("Compare"):
                CompareTab()
