"""The information-spread world: vectorised networks against networkx, the
reference cascade against a plain implementation, the platform's mechanics and its
mitigations (tiny checkpoint)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from conftest import write_yaml
from scipy import stats

from uim_sim.cards import AgentCard, DecisionSpec, HeadSpec
from uim_sim.mitigate import FactCheck, ShareFriction, SourceDiverse, compose
from uim_sim.mitigate.base import NoParams
from uim_sim.mitigate.platform import FactCheckParams, FrictionParams
from uim_sim.run import plan, run_plan
from uim_sim.schema import SpecError
from uim_sim.worlds.spread import SpreadPlatform, SpreadReference
from uim_sim.worlds.spread.cascade import independent_cascades, neighbours
from uim_sim.worlds.spread.graphfile import read_edge_list
from uim_sim.worlds.spread.network import (
    Network,
    NetworkError,
    barabasi_albert,
    stochastic_block,
    watts_strogatz,
)

# ---------------------------------------------------------------- networks


def test_block_model_matches_networkx_degrees_and_blocks():
    sizes, p_in, p_out = [600, 400], 0.02, 0.002
    ours = [stochastic_block(sizes, p_in, p_out, np.random.default_rng(s)) for s in range(5)]
    theirs = [nx.stochastic_block_model(sizes, [[p_in, p_out], [p_out, p_in]], seed=s)
              for s in range(5)]  # fmt: skip

    def stats_of(graph: Network):
        coo = graph.adjacency.tocoo()
        within = (graph.community[coo.row] == graph.community[coo.col]).mean()
        return graph.degrees().mean(), within

    mean_ours, within_ours = np.mean([stats_of(g) for g in ours], axis=0)
    mean_theirs, within_theirs = np.mean(
        [stats_of(Network.from_networkx(g, "block")) for g in theirs], axis=0
    )
    expected = (600 * 599 + 400 * 399) * p_in / 1000 + 2 * 600 * 400 * p_out / 1000
    assert abs(mean_ours - expected) < 0.05 * expected
    assert abs(mean_ours - mean_theirs) < 0.05 * expected
    assert abs(within_ours - within_theirs) < 0.03
    assert ours[0].adjacency.indices.dtype == np.int32
    assert (ours[0].adjacency != ours[0].adjacency.T).nnz == 0  # undirected


def test_barabasi_albert_has_networkx_degree_statistics():
    ours = barabasi_albert(3000, 4, np.random.default_rng(1)).degrees()
    theirs = np.array([d for _, d in nx.barabasi_albert_graph(3000, 4, seed=1).degree()])
    assert abs(ours.mean() - theirs.mean()) < 0.1 and ours.min() >= 4
    assert stats.ks_2samp(ours, theirs).pvalue > 0.01
    assert 0.5 < np.quantile(ours, 0.99) / np.quantile(theirs, 0.99) < 2


def test_watts_strogatz_has_networkx_clustering():
    ours = watts_strogatz(2000, 10, 0.1, np.random.default_rng(2))
    theirs = nx.watts_strogatz_graph(2000, 10, 0.1, seed=2)
    assert abs(ours.degrees().mean() - 10) < 0.2
    clustering = nx.transitivity(ours.to_networkx())
    assert abs(clustering - nx.transitivity(theirs)) < 0.05


def test_edge_lists_are_read_and_bad_lines_named(tmp_path):
    good = tmp_path / "edges.csv"
    good.write_text("source,target\n# a comment\na,b\nb,c\nc,a\nc,c\n")
    graph = read_edge_list(good)
    assert graph.n_users == 3 and graph.n_edges == 3
    spaces = tmp_path / "edges.txt"
    spaces.write_text("1 2\n2 3 0.5\n")
    assert read_edge_list(spaces).n_edges == 2
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2\n3\n")
    with pytest.raises(NetworkError, match=r"bad.txt: line 2: expected two node ids"):
        read_edge_list(bad)


def test_neighbours_gathers_csr_rows():
    graph = watts_strogatz(50, 4, 0.3, np.random.default_rng(0))
    nodes = np.array([3, 7, 7])
    expected = np.concatenate([graph.adjacency.indices[
        graph.adjacency.indptr[i] : graph.adjacency.indptr[i + 1]] for i in nodes])  # fmt: skip
    assert np.array_equal(neighbours(graph.adjacency, nodes), expected)


# ---------------------------------------------------------------- reference cascade


def _plain_cascade(graph: nx.Graph, seed: int, p: float, rng) -> int:
    """Kempe et al.'s independent cascade, written plainly on networkx."""
    active, frontier = {seed}, [seed]
    while frontier:
        nxt = []
        for node in frontier:
            for other in graph.neighbors(node):
                if other not in active and rng.random() < p:
                    active.add(other)
                    nxt.append(other)
        frontier = nxt
    return len(active)


def test_reference_cascade_matches_a_plain_independent_cascade_at_10000_nodes():
    network = stochastic_block([5000, 5000], 0.0016, 0.0004, np.random.default_rng(3))
    graph = network.to_networkx()
    rng = np.random.default_rng(4)
    seeds = rng.integers(10_000, size=150)
    ours = independent_cascades(network.adjacency, seeds, 0.1, np.random.default_rng(5)).size
    plain = np.array([_plain_cascade(graph, int(s), 0.1, rng) for s in seeds])
    assert stats.ks_2samp(ours, plain).pvalue > 0.01
    assert abs(ours.mean() - plain.mean()) < 0.35 * plain.mean() + 5


def test_reference_world_is_deterministic_and_stops():
    a = SpreadReference(n_users=3000, n_cascades=10, probability=0.08, rng=1).simulate()
    b = SpreadReference(n_users=3000, n_cascades=10, probability=0.08, rng=1).simulate()
    assert not a.running and a.cascades().equals(b.cascades())
    assert (a.cascades()["size"] >= 1).all()


# ---------------------------------------------------------------- the platform

SMALL = dict(n_users=3000, n_steps=6, items_per_step=8, mean_degree=12, lifetime=4,
             share_true=0.25, share_false=0.3, n_history=200)  # fmt: skip


def card(checkpoint, share: float = 0.5) -> AgentCard:
    head = HeadSpec(kind="zero_shot_contrast", positive=["official records"],
                    negative=["anonymous rumor"])  # fmt: skip
    return AgentCard(name="ranker", checkpoint=str(checkpoint), head=head,
                     decision=DecisionSpec(rule="top_share", share=share))  # fmt: skip


@pytest.fixture(scope="module")
def platform(tiny_checkpoint):
    return SpreadPlatform(**SMALL, cards=card(tiny_checkpoint), rng=7).simulate()


def test_one_decision_per_item_and_reach_within_the_population(platform):
    decisions = platform.decision_table()
    assert len(decisions) == SMALL["n_steps"] * SMALL["items_per_step"]
    assert decisions["subject"].is_unique and (decisions["reach"] >= 1).all()
    assert (decisions["reach"] <= SMALL["n_users"]).all()
    assert set(decisions["group"]) <= {"riverside", "hillcrest"}
    assert (decisions["style"] == decisions["group"]).all()  # native style
    assert decisions["decision"].mean() == pytest.approx(0.5)  # the card's top share


def test_feeds_show_at_most_feed_size_items_a_step(platform):
    assert platform.seen_count.max() <= SMALL["n_steps"] * platform.params.feed_size
    metrics = platform.metrics()
    last = metrics[metrics.step == SMALL["n_steps"]].set_index(["metric", "group"])["value"]
    for key in (
        ("reach", "true"),
        ("false_true_reach_ratio", ""),
        ("exposure_gini", ""),
        ("impact_ratio", "hillcrest"),
        ("impact_ratio_null_q975", "hillcrest"),
    ):
        assert key in last.index, key  # fmt: skip


def test_same_seed_same_tables_and_restyle_swaps_styles(tiny_checkpoint):
    runs = [SpreadPlatform(**SMALL, cards=card(tiny_checkpoint), rng=3).simulate()
            for _ in range(2)]  # fmt: skip
    pd.testing.assert_frame_equal(runs[0].decision_table(), runs[1].decision_table())
    swapped = SpreadPlatform(**SMALL, restyle=True, cards=card(tiny_checkpoint), rng=3)
    decisions = swapped.simulate().decision_table()
    assert (decisions["style"] != decisions["group"]).all()
    # the same posters, claims and truths: only the style changed
    same = runs[0].decision_table()
    assert (decisions["truth"].to_numpy() == same["truth"].to_numpy()).all()


def test_demotion_and_fact_checks_lower_reach(tiny_checkpoint):
    def false_reach(**kwargs):
        stages = kwargs.pop("stages", None)
        world = SpreadPlatform(**{**SMALL, **kwargs}, cards=card(tiny_checkpoint), stages=stages,
                               rng=11).simulate()  # fmt: skip
        d = world.decision_table()
        return d.loc[d.truth == 0, "reach"].mean(), d

    base, _ = false_reach(demotion=1.0)
    checked, d = false_reach(
        demotion=0.0, stages=compose([FactCheck(FactCheckParams(coverage=1.0, delay=0))])
    )
    assert (d.loc[d.truth == 0, "labelled_step"] > 0).all()
    assert (d.loc[d.truth == 1, "labelled_step"] == -1).all()
    assert checked < base
    label_all = FactCheck(FactCheckParams(coverage=1.0, delay=0))
    no_sharing = ShareFriction(FrictionParams(strength=1.0))
    friction, _ = false_reach(demotion=1.0, stages=compose([label_all, no_sharing]))
    assert friction < base


def test_source_diverse_feeds_give_every_community_a_quota(tiny_checkpoint):
    stages = compose([SourceDiverse(NoParams())])
    assert stages.feed_quota(2, 5) == 3 and compose([]).feed_quota(2, 5) is None
    world = SpreadPlatform(**SMALL, cards=card(tiny_checkpoint), stages=stages, rng=11)
    assert world.simulate().seen_count.max() <= SMALL["n_steps"] * world.params.feed_size


def test_spread_mitigations_are_refused_elsewhere(project):
    spec = write_yaml(project / "scenarios" / "fc.yaml", {
        "name": "fc", "world": "hiring", "cards": ["tiny_zero_shot"],
        "arms": [["fact_check"]], "params": {"n_jobs": 2},
    })  # fmt: skip
    with pytest.raises(SpecError, match="label hook"):
        plan(spec)


def test_the_spread_world_runs_from_a_spec_and_reports(project, tmp_path):
    spec = write_yaml(project / "scenarios" / "spread.yaml", {
        "name": "tiny_spread", "world": "spread", "replicates": 2, "cards": ["tiny_spread"],
        "arms": [[], ["fact_check"]], "params": {"mode": "world", **SMALL},
        "statistics": {"null_permutations": 0, "name_permutations": 200},
    })  # fmt: skip
    write_yaml(project / "agents" / "tiny_spread.yaml", card(project_checkpoint(project))
               .model_dump(mode="json") | {"name": "tiny_spread"})  # fmt: skip
    out = tmp_path / "out"
    assert run_plan(plan(spec), out).done == 4
    from uim_sim.report import build_report

    report = build_report(out)
    names = {f.name for f in report.figures}
    assert {"impact_ratio.png", "reach_over_time.png", "reach.png"} <= names
    assert {"impact_ratio", "reach_false"} <= set(report.headline.columns)


def project_checkpoint(project) -> str:
    import yaml

    return yaml.safe_load((project / "agents" / "tiny_zero_shot.yaml").read_text())["checkpoint"]


def test_a_bad_edge_file_is_one_line_naming_the_line(project, tmp_path):
    from typer.testing import CliRunner

    from uim_sim.cli import app

    edges = tmp_path / "follows.csv"
    edges.write_text("1,2\n2,3\n4\n")
    spec = write_yaml(project / "scenarios" / "edges.yaml", {
        "name": "edges", "world": "spread", "cards": ["tiny_zero_shot"],
        "params": {"mode": "reference", "graph": "file", "edge_file": str(edges)},
    })  # fmt: skip
    result = CliRunner().invoke(app, ["validate", str(spec)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "follows.csv: line 3: expected two node ids" in result.output
    edges.write_text("1,2\n2,3\n3,4\n")
    assert CliRunner().invoke(app, ["validate", str(spec)]).exit_code == 0


def test_csr_is_built_in_chunks_exactly_as_networkx_would(monkeypatch):
    import uim_sim.worlds.spread.network as network

    monkeypatch.setattr(network, "CHUNK", 97)  # many chunks: the running ranks carry over
    graph = nx.gnm_random_graph(300, 1200, seed=1)
    ours = Network.from_networkx(graph).adjacency
    theirs = nx.to_scipy_sparse_array(graph, nodelist=range(300), format="csr").astype(bool)
    assert (ours != theirs).nnz == 0
    rows = np.split(ours.indices, ours.indptr[1:-1])
    assert all((np.diff(row) > 0).all() for row in rows)  # each row ascending


def test_one_or_two_workers_give_byte_identical_spread_tables(project, tmp_path):
    import filecmp

    from uim_sim.run.store import RESULT_FILES

    write_yaml(project / "agents" / "tiny_spread.yaml", card(project_checkpoint(project))
               .model_dump(mode="json") | {"name": "tiny_spread"})  # fmt: skip
    spec = write_yaml(project / "scenarios" / "spread2.yaml", {
        "name": "spread2", "world": "spread", "replicates": 2, "cards": ["tiny_spread"],
        "arms": [[], ["source_diverse"]], "params": {"mode": "world", **SMALL},
        "statistics": {"null_permutations": 0, "name_permutations": 100},
    })  # fmt: skip
    one, two = tmp_path / "one", tmp_path / "two"
    assert run_plan(plan(spec), one, workers=1).done == 4
    assert run_plan(plan(spec), two, workers=2).done == 4
    for name in RESULT_FILES:
        assert filecmp.cmp(one / name, two / name, shallow=False), name
