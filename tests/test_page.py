"""The analyst page without a browser: what the Watch tab offers and builds, the world
views, the Compare tab's reading of a result folder, its charts, and the command's
refusals. (tests/test_page_browser.py drives the page in Chromium.)"""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from uim_sim.cli import main
from uim_sim.page import asset_folder, charts
from uim_sim.page import watch as w
from uim_sim.page.results import Results, result_folders
from uim_sim.schema import SpecError
from uim_sim.worlds import WORLDS, world_info
from uim_sim.worlds.hiring import LabourMarket
from uim_sim.worlds.hiring.params import MarketParams
from uim_sim.worlds.spread import SpreadPlatform
from uim_sim.worlds.spread.network import stochastic_block

pytest.importorskip("altair")


@pytest.fixture
def scratch(tmp_path):
    w.write_default_cards(tmp_path / "scratch")
    return tmp_path / "scratch"


def test_sliders_take_their_ranges_from_the_worlds_schema():
    knobs = {k.name: k for k in w.knobs("hiring", "market")}
    field = MarketParams.model_fields["n_applicants"]
    bounds = {type(m).__name__: m for m in field.metadata}
    assert (knobs["n_applicants"].low, knobs["n_applicants"].high) == (
        bounds["Ge"].ge, bounds["Le"].le)  # fmt: skip
    assert knobs["n_applicants"].kind == "int" and knobs["n_applicants"].default == 400
    assert knobs["dropout"].kind == "float" and (knobs["dropout"].low, knobs["dropout"].high) == (
        0,
        1,
    )
    assert knobs["disadvantaged"].choices == ("black", "white", "female", "male")
    assert "mode" not in knobs and "history_file" not in knobs  # a file: set in a spec
    assert "restyle" in {k.name for k in w.knobs("spread", "world") if k.kind == "bool"}


def test_only_mitigations_whose_hook_the_world_calls_are_offered():
    assert "human_review" in w.mitigations("moderation", "world")
    assert "human_review" not in w.mitigations("hiring", "market")
    assert "periodic_audit" not in w.mitigations("hiring", "audit")  # the audit has one step
    assert w.mitigations("spread", "reference") == []


def test_two_arms_share_the_seed_and_differ_by_the_mitigation(scratch):
    arms = [w.Arm("minilm_zero_shot"), w.Arm("minilm_zero_shot", ("group_thresholds",))]
    watched = w.Watch("hiring", "market", {"n_applicants": 24, "n_rounds": 3}, arms, 5, scratch)
    people = [[(a.name, a.group, round(a.skill, 9)) for a in m.applicants] for m in watched.models]
    assert people[0] == people[1]  # common random numbers: the same population
    watched.step()
    watched.step()
    assert watched.step_count == 2 and watched.running
    plot = watched.plots[0]
    frame = watched.series(plot)
    assert set(frame["arm"]) == set(watched.labels) == {
        "A: minilm_zero_shot · none", "B: minilm_zero_shot · group_thresholds"}  # fmt: skip
    assert set(frame["step"]) <= {1, 2} and set(frame["group"]) <= set(plot.groups)
    # the page's numbers are the world's DataCollector's
    mine = frame[(frame["arm"] == watched.labels[1]) & (frame["group"] == "black")]
    collected = watched.models[1].datacollector.get_model_vars_dataframe()["impact_ratio[black]"]
    assert mine["value"].tolist() == collected.dropna().tolist()
    watched.step()
    assert not watched.running
    watched.step()  # a finished world stays finished
    assert watched.step_count == 3


def test_a_refused_arm_is_one_line_naming_the_field_not_the_scratch_file(scratch):
    with pytest.raises(SpecError) as err:
        w.build("hiring", "market", {}, w.Arm("minilm_zero_shot", ("reweighing",)), 1, scratch)
    message = w.one_line(err.value)
    assert message.startswith("arms.0.0: reweighing acts on adaptation data")
    assert str(scratch) not in message
    with pytest.raises(SpecError) as err:
        w.build("hiring", "market", {"n_employers": 2, "applications_per_round": 3},
                w.Arm("minilm_zero_shot"), 1, scratch)  # fmt: skip
    assert w.one_line(err.value).startswith("params.")
    assert "n_employers" in w.one_line(err.value)
    with pytest.raises(SpecError, match="no card named 'nobody'"):
        w.build("hiring", "market", {}, w.Arm("nobody"), 1, scratch)
    assert w.one_line(RuntimeError("boom\nTraceback ...")) == "RuntimeError: boom"
    assert not (scratch / "specs").exists()  # planned in memory: no scratch spec written


def test_every_worlds_knobs_build_and_a_meaningless_one_is_neither_shown_nor_given(scratch):
    # a field the design makes meaningless (clustering on a block model) is refused in a
    # spec; the page hides its knob, and a value set before the design changed (or a
    # slider snapped to its step) is not given to the world
    for world in WORLDS:
        for mode in w.modes(world):
            if mode == "membership":  # needs a forged checkpoint with planted people
                continue
            params = {k.name: k.default for k in w.knobs(world, mode)}
            card = w.default_card(world, mode)
            assert w.build(world, mode, params, w.Arm(card), 0, scratch).running
    shown = {k.name for k in w.knobs("spread", "world", {})}
    assert "clustering" not in shown and "homophily" in shown
    clustered = {k.name for k in w.knobs("spread", "world", {"graph": "clustered"})}
    assert {"clustering", "degree_tail"} <= clustered and "rewiring" not in clustered
    stale = {"graph": "block", "clustering": 0.3, "degree_tail": 2.01, "n_users": 500}
    model = w.build("spread", "world", stale, w.Arm(w.default_card("spread", "world")), 0,
                    scratch)  # fmt: skip
    assert model.params.n_users == 500 and model.params.graph == "block"


def test_the_cards_offered_load_and_need_no_forging(scratch):
    offered = w.cards(scratch)
    assert {"minilm_zero_shot", "minilm_moderation_zero_shot"} <= set(offered)
    assert "forged_zero_shot" not in offered and "forged_biased_history" not in offered
    for world in WORLDS:
        for mode in world_info(world).models:
            assert w.default_card(world, mode) in offered


SMALL = {
    ("hiring", "audit"): {"n_jobs": 2},
    ("hiring", "market"): {"n_applicants": 20},
    ("moderation", "world"): {"n_users": 100},
    ("moderation", "reference"): {},
    ("spread", "world"): {"n_users": 500},
    ("spread", "reference"): {"n_users": 500},
}


def test_every_world_declares_plots_it_collects_and_a_view(tiny_checkpoint):
    from test_mesa import tiny_card

    from uim_sim.worlds.hiring import MembershipAudit

    # remembered applicants need a checkpoint forged from a card with people
    small = {**SMALL, ("hiring", "membership"): {
        "n_jobs": 2, "pairs": 2, "cards": tiny_card(tiny_checkpoint, MembershipAudit)}}  # fmt: skip
    for world in WORLDS:
        for mode, model in world_info(world).models.items():
            m = model(rng=2, name_permutations=0, **small[world, mode])
            assert model.watch, (world, mode)
            m.step()
            for plot in model.watch:
                assert w.columns(m, plot), (world, mode, plot.metric)
            view = m.view()
            assert view is not None and not view.frame.empty, (world, mode)
            chart = charts.view(view).to_dict()
            assert chart["usermeta"] == charts.SVG  # drawn as SVG: marks carry aria-labels


def test_the_plots_draw_what_was_collected_between_steps_not_a_step_half_collected():
    m = LabourMarket(rng=1, n_applicants=40, n_rounds=3, name_permutations=0)
    m.step()
    taken = w.Collected(m)
    before = taken.get_model_vars_dataframe()
    plot = LabourMarket.watch[0]
    assert w.columns(taken, plot) == w.columns(m, plot)
    first = next(iter(m.datacollector.model_vars))
    m.datacollector.model_vars[first].append(0.0)  # a step collecting: one column ahead
    with pytest.raises(ValueError, match="same length"):  # what Mesa's plot met, live
        m.datacollector.get_model_vars_dataframe()
    pd.testing.assert_frame_equal(taken.get_model_vars_dataframe(), before)
    assert (taken.round, taken.running) == (1, True)


def test_the_market_view_counts_every_applicant_in_one_state():
    m = LabourMarket(rng=1, n_applicants=40, n_rounds=2, name_permutations=0)
    m.step()
    view = m.view()
    assert view.frame["count"].sum() == 40
    assert set(view.frame["state"]) <= {"employed", "seeking", "dropped out"}
    groups = pd.Series([a.group for a in m.applicants]).value_counts()
    assert view.frame.groupby("group")["count"].sum().to_dict() == groups.to_dict()


def test_the_network_view_is_a_sample_with_the_links_among_it():
    network = stochastic_block([5000, 5000], 0.002, 0.0002, np.random.default_rng(0))
    nodes, pairs = network.snowball(300, np.random.default_rng(1))
    assert len(nodes) == len(set(nodes.tolist())) == 300
    assert len(pairs) > 300  # breadth-first: the sample keeps its links
    adjacency = network.adjacency
    assert all(adjacency[nodes[a], nodes[b]] for a, b in pairs[:50])
    m = SpreadPlatform(rng=3, n_users=2000, name_permutations=0)
    m.simulate(3)
    view = m.view()
    assert len(view.frame) == 300 and view.edges is not None and len(view.edges) > 0
    seen = m.seen["true"][view.frame["user"]] | m.seen["false"][view.frame["user"]]
    assert (view.frame["state"] != "not reached").tolist() == seen.tolist()
    assert "300 of 2,000 users" in view.note


@pytest.fixture
def batch(page_batch, tmp_path):
    """A small audit batch with two mitigation arms on the tiny checkpoint (a copy)."""
    out = tmp_path / "results" / "tiny"
    shutil.copytree(page_batch["out"], out, ignore=shutil.ignore_patterns("report"))
    return out


def test_compare_reads_a_result_folder_and_writes_its_report_first(batch):
    assert result_folders(batch.parent) == [batch]
    assert not (batch / "report").exists()
    results = Results.load(batch)
    assert (batch / "report" / "summary.csv").is_file()  # the report the CLI would write
    assert results.world == "hiring" and results.cards == ["tiny_biased_history"]
    assert results.arms == ["none", "name_redaction", "group_thresholds"]
    table = results.interventions()
    written = pd.read_csv(batch / "report" / "interventions.csv")
    assert table["d_harm"].tolist() == written["d_harm"].tolist()
    assert results.interventions(arms=["group_thresholds"])["arm"].tolist() == ["group_thresholds"]
    chart = charts.interventions(table, results.section.harm, results.section.utility)
    spec = chart.to_dict()
    data = next(iter(spec["datasets"].values()))
    assert sorted(row["arm"] for row in data) == ["group_thresholds", "name_redaction"]
    # filters: one arm, one group
    ctx = results.filtered(arms=["none"], groups=["black"])
    assert set(ctx.runs["arm"]) == {"none"}
    assert set(ctx.summary["group"]) & set(results.groups) == {"black"}
    for figure in results.section.figures:
        drawn = charts.figure(results.filtered(), figure)
        assert drawn is None or json.dumps(drawn.to_dict())
    assert not results.audit().empty
    assert "tiny_audit" in results.spec_text()
    # what the page shows people: labels, not column keys; rounded strings, not raw floats
    from uim_sim.report.compare import shown

    tables = (results.headline_shown(), results.headline_shown(ctx), results.audit_shown(),
              shown(table, results.section.harm, results.section.utility))  # fmt: skip
    for frame in tables:
        assert not frame.empty
        assert not [c for c in frame.columns if "_" in str(c)], list(frame.columns)
        cells = frame.to_numpy().ravel()
        assert all(isinstance(v, str) for v in cells)
        assert not [v for v in cells if re.search(r"\d\.\d{5}", v)], cells
    assert len(results.headline_shown(ctx)) == 1  # the filtered conditions only


def test_a_folder_without_runs_is_one_line(tmp_path):
    with pytest.raises(ValueError, match="no runs.parquet"):
        Results.load(tmp_path)


def test_the_page_serves_its_javascript_offline_under_the_names_it_asks_for(tmp_path):
    folder = asset_folder(tmp_path)
    for name in ("vega@5", "vega-lite@5", "vega-embed@6", "requirejs@2.3.6"):
        assert (folder / name).is_dir(), name
    assert (folder / "vega-lite@5" / "build" / "vega-lite.min.js").is_file()
    assert asset_folder(tmp_path) == folder  # a second server start reuses it


def test_the_page_command_refuses_bad_input_in_one_line(tmp_path, capsys):
    import socket

    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert main(["page", str(a_file)]) == 2
    assert "RESULTS:" in capsys.readouterr().err
    assert main(["page", "--port", "0"]) == 2
    capsys.readouterr()
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert main(["page", str(tmp_path), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert "--port: cannot serve on 127.0.0.1:" in err and len(err.strip().splitlines()) == 1


def test_the_page_watches_an_adaptive_population_learn(scratch):
    arms = [w.Arm("minilm_fair_history"), w.Arm("minilm_fair_history", ("retraining",))]
    params = {"n_applicants": 40, "n_rounds": 3, "n_history": 120, "adaptive_share": 0.5}
    watched = w.Watch("hiring", "market", params, arms, 5, scratch)
    assert {"callback_gap", "edit_found"} <= {p.metric for p in watched.plots}
    watched.step()
    gap = next(p for p in watched.plots if p.metric == "callback_gap")
    frame = watched.series(gap)
    assert set(frame["arm"]) == set(watched.labels) and set(frame["step"]) == {1}
