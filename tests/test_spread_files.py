"""A researcher's graph in the spread world: graph files whose community labels (a node
file, or a column of the edge list) are the world's communities, headers told from
edges by their fields, the generators' fields refused with a file, a given `Network`,
and the reach of a community's true items split into its network position (the same
items under a neutral ranker) and the ranker's effect. Hand-checked tiny graphs."""

from __future__ import annotations

import filecmp

import networkx as nx
import numpy as np
import pytest
from conftest import write_yaml
from typer.testing import CliRunner

from uim_sim.cards import AgentCard, DecisionSpec, HeadSpec
from uim_sim.run import plan, run_plan
from uim_sim.worlds.spread import SpreadPlatform, SpreadReference
from uim_sim.worlds.spread.graphfile import GraphFiles, read_edge_list, read_graph
from uim_sim.worlds.spread.network import Network, NetworkError
from uim_sim.worlds.spread.params import PlatformParams


def write(path, text: str):
    path.write_text(text)
    return path


def edge_set(network: Network) -> list[tuple[int, int]]:
    coo = network.adjacency.tocoo()
    return sorted((int(a), int(b)) for a, b in zip(coo.row, coo.col) if a < b)


# ---------------------------------------------------------------- headers


@pytest.mark.parametrize(
    ("text", "users", "edges"),
    [
        ("id_1,id_2\n0,1\n1,2\n2,0\n2,3\n", 4, 4),  # musae's header (it has digits)
        ("source target\n10 11\n11 12\n", 3, 2),
        ("# SNAP\n# FromNodeId\tToNodeId\n10\t11\n11\t12\n", 3, 2),
        ("10,11\n11,12\n", 3, 2),  # two whole numbers: an edge
        ("from,to\nalice,bob\nbob,carol\n", 3, 2),
        ("alice,bob\nbob,carol\n", 3, 2),  # words: bob has another edge, so an edge
        ("n1,n2\n1,2\n", 2, 1),
    ],
)
def test_a_header_is_told_from_an_edge_by_its_fields(tmp_path, text, users, edges):
    graph = read_edge_list(write(tmp_path / "e.csv", text))
    assert (graph.n_users, graph.n_edges) == (users, edges)


def test_a_first_edge_keeps_its_place_and_bad_rows_are_named(tmp_path):
    # words as ids: the first row is an edge, and its nodes are users 0 and 1
    graph = read_edge_list(write(tmp_path / "e.csv", "alice,bob\nbob,carol\ncarol,dave\n"))
    assert edge_set(graph) == [(0, 1), (1, 2), (2, 3)]
    with pytest.raises(NetworkError, match=r"edge_file: .*e.csv: line 3: expected two node ids"):
        read_edge_list(write(tmp_path / "e.csv", "id_1,id_2\n1,2\n3\n"))
    with pytest.raises(NetworkError, match=r"edge_file: .*e.csv: no edges"):
        read_edge_list(write(tmp_path / "e.csv", "id_1,id_2\n"))


# ---------------------------------------------------------------- labels


def test_a_node_file_labels_the_users_in_its_order(tmp_path):
    edges = write(tmp_path / "e.csv", "id_1,id_2\n3,1\n1,2\n2,3\n4,3\n")
    nodes = write(tmp_path / "n.csv", "id,name,ml_target\n1,a,0\n2,b,0\n3,c,1\n4,d,1\n5,e,0\n")
    graph = read_graph(GraphFiles(edges, nodes, "ml_target"))
    # users 0-4 are nodes 1-5 (5 has no edge: a user who reaches no one)
    assert graph.n_users == 5 and graph.names == ("0", "1")
    assert graph.community.tolist() == [0, 0, 1, 1, 0]
    assert edge_set(graph) == [(0, 1), (0, 2), (1, 2), (2, 3)] and graph.degrees()[4] == 0
    named = graph.relabel({"0": "web", "1": "ml"})
    assert named.names == ("web", "ml") and named.community.tolist() == [0, 0, 1, 1, 0]
    with pytest.raises(NetworkError, match=r"one community \('a'\)"):
        graph.relabel({"0": "a", "1": "a"})
    # a node file with no label column: id and label, a header told by its label
    for text in ("1 left\n2 left\n3 right\n4 right\n5 left\n",
                 "node,party\n1,left\n2,left\n3,right\n4,right\n5,left\n"):  # fmt: skip
        plain = read_graph(GraphFiles(edges, write(tmp_path / "p.txt", text)))
        assert plain.names == ("left", "right") and plain.community.tolist() == [0, 0, 1, 1, 0]


def test_a_label_column_of_the_edge_list_labels_each_rows_first_node(tmp_path):
    edges = write(tmp_path / "e.csv", "src,dst,party\n1,2,left\n2,3,right\n3,1,right\n")
    graph = read_graph(GraphFiles(edges, label_column="party"))
    assert graph.names == ("left", "right") and graph.community.tolist() == [0, 1, 1]
    assert graph.n_edges == 3
    write(edges, "src,dst,party\n1,2,left\n1,3,right\n3,2,left\n")
    with pytest.raises(NetworkError, match="line 3: node '1' labelled 'right' here and 'left'"):
        read_graph(GraphFiles(edges, label_column="party"))
    write(edges, "src,dst,party\n1,2,left\n2,1,right\n1,3,left\n")
    with pytest.raises(NetworkError, match="label_column: node '3' of e.csv has no label"):
        read_graph(GraphFiles(edges, label_column="party"))
    with pytest.raises(NetworkError, match=r"label_column: 'side' is not a column of the first"):
        read_graph(GraphFiles(edges, label_column="side"))


def test_networkx_labels_and_files_round_trip(tmp_path):
    graph = nx.Graph([(0, 1), (1, 2), (2, 3)])
    nx.set_node_attributes(graph, {0: "blue", 1: "blue", 2: "red", 3: "red"}, "community")
    network = Network.from_networkx(graph, "community")
    assert network.names == ("blue", "red") and network.community.tolist() == [0, 0, 1, 1]
    network.write(tmp_path / "e.csv", tmp_path / "n.csv")
    back = read_graph(GraphFiles(tmp_path / "e.csv", tmp_path / "n.csv"))
    assert back.names == network.names and np.array_equal(back.community, network.community)
    assert (back.adjacency != network.adjacency).nnz == 0
    graph.nodes[3].pop("community")
    with pytest.raises(NetworkError, match="node 3 has no 'community' attribute"):
        Network.from_networkx(graph, "community")


# ---------------------------------------------------------------- parameters


@pytest.fixture
def labelled(tmp_path):
    """A 4-user graph, its node file labelling users 0/1 (musae's ml_target)."""
    edges = write(tmp_path / "edges.csv", "id_1,id_2\n1,2\n2,3\n3,4\n")
    nodes = write(tmp_path / "target.csv", "id,name,ml_target\n1,a,0\n2,b,0\n3,c,1\n4,d,1\n")
    return {"graph": "file", "edge_file": edges, "node_file": nodes, "label_column": "ml_target"}


@pytest.mark.parametrize(
    ("field", "value"),
    [("n_users", 500), ("homophily", 0.5), ("mean_degree", 4.0), ("rewiring", 0.2),
     ("clustering", 0.3)],
)  # fmt: skip
def test_a_generators_field_is_refused_with_a_graph_file(labelled, field, value):
    with pytest.raises(ValueError, match=rf"{field}: a graph file has its own users and ties"):
        PlatformParams(**labelled, communities={0: "web", 1: "ml"}, disadvantaged="ml",
                       **{field: value})  # fmt: skip


def test_a_graph_files_parameters_are_checked_and_recorded_where_they_act(labelled):
    mine = {**labelled, "communities": {0: "web", 1: "ml"}, "disadvantaged": "ml"}
    params = PlatformParams(**mine)
    assert params.community_names() == ("web", "ml") and params.neutral()
    dump = params.model_dump(mode="json")
    assert not {"n_users", "mean_degree", "homophily", "community_shares"} & dump.keys()
    assert PlatformParams(**dump) == params  # what a run is built from is valid
    # n_users below mean_degree is a generated graph's problem only
    with pytest.raises(ValueError, match=r"mean_degree \(20.0\) must be below n_users"):
        PlatformParams(n_users=10)
    with pytest.raises(ValueError, match="n_users: a graph file"):
        PlatformParams(**mine, n_users=10)
    refusals = [
        ({"community_shares": [0.3, 0.7]}, "community_shares: the graph's labels are its"),
        ({"disadvantaged": "hillcrest"}, r"disadvantaged: 'hillcrest' is not a community of "
                                         r"the graph \(web, ml\)"),
        ({"communities": {0: "web"}}, "communities: the graph's label '1' has no name"),
        ({"communities": {0: "web", 1: "ml", 2: "x"}}, "communities: '2' is not a label"),
        ({"communities": {0: "web", 1: "web"}}, r"communities: one community \('web'\)"),
        ({"communities": {0: "web", 1: "m l"}}, "communities: 'm l' is not a community name"),
        ({"communities": None}, r"communities: '0' is not a community name .* name the labels"),
        ({"label_column": "target"}, "label_column: 'target' is not a column of the first"),
    ]  # fmt: skip
    for change, message in refusals:
        with pytest.raises(ValueError, match=message):
            PlatformParams(**{**mine, **change})
    with pytest.raises(ValueError, match="node_file: only with graph: file"):
        PlatformParams(node_file=labelled["node_file"])
    with pytest.raises(ValueError, match="communities: names the labels of a node_file"):
        PlatformParams(graph="file", edge_file=labelled["edge_file"], communities={0: "a"})
    # generated graphs keep their record (run ids) and their communities
    plain = PlatformParams().model_dump(mode="json")
    assert not {"node_file", "label_column", "communities", "neutral_reference"} & plain.keys()
    assert {"n_users", "mean_degree", "homophily", "community_shares"} <= plain.keys()
    assert not PlatformParams().neutral() and PlatformParams(neutral_reference=True).neutral()


def test_a_refused_field_is_one_line_and_exit_status_2_from_the_cli(project, labelled):
    from uim_sim.cli import app

    spec = write_yaml(project / "scenarios" / "g.yaml", {
        "name": "g", "world": "spread", "cards": ["tiny_zero_shot"],
        "params": {"mode": "world", **{k: str(v) for k, v in labelled.items()},
                   "communities": {0: "web", 1: "ml"}, "disadvantaged": "ml", "n_users": 500},
    })  # fmt: skip
    out = project / "out"
    for command in (["validate", str(spec)], ["run", str(spec), "--out", str(out)]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
        assert "params.n_users: a graph file has its own users and ties" in result.output
    assert not out.exists()


# ---------------------------------------------------------------- worlds

SMALL = dict(n_steps=6, items_per_step=12, lifetime=4, share_true=0.3, share_false=0.3,
             feed_size=3)  # fmt: skip


def ranker(checkpoint, positive: str, negative: str) -> AgentCard:
    head = HeadSpec(kind="zero_shot_contrast", positive=[positive], negative=[negative])
    return AgentCard(name=f"ranker_{positive[:4]}", checkpoint=str(checkpoint), head=head,
                     decision=DecisionSpec(rule="top_share", share=0.5))  # fmt: skip


@pytest.fixture(scope="module")
def graph_files(tmp_path_factory):
    """240 users: 200 'web' users in a random graph of mean degree 8 (ids 0-199) and
    40 'ml' users with no tie at all (ids 200-239, only in the node file): whatever
    a ranker does, an ml item reaches its poster alone."""
    folder = tmp_path_factory.mktemp("graph")
    web = nx.gnm_random_graph(200, 800, seed=3)
    edges = write(folder / "edges.csv",
                  "id_1,id_2\n" + "".join(f"{a},{b}\n" for a, b in web.edges))  # fmt: skip
    nodes = write(folder / "target.csv", "id,ml_target\n"
                  + "".join(f"{i},{int(i >= 200)}\n" for i in range(240)))  # fmt: skip
    return {"graph": "file", "edge_file": edges, "node_file": nodes,
            "communities": {0: "web", 1: "ml"}, "disadvantaged": "ml"}  # fmt: skip


def test_a_labelled_file_makes_the_worlds_communities(graph_files, tiny_checkpoint):
    card = ranker(tiny_checkpoint, "official records", "anonymous rumor")
    world = SpreadPlatform(**graph_files, **SMALL, cards=card, rng=4).simulate()
    assert world.communities == ("web", "ml") and world.n_users == 240
    decisions = world.decision_table()
    assert set(decisions["group"]) == {"web", "ml"}  # both post at this size and seed
    assert all(t.startswith(f"{g} news: ") for t, g in zip(decisions["text"], decisions["group"]))
    assert (decisions.loc[decisions["group"] == "ml", ["reach", "neutral_reach"]] == 1).all().all()
    last = world.metrics().query(f"step == {SMALL['n_steps']}").set_index(["metric", "group"])
    assert last.loc[("users", "web"), "value"] == 200 and last.loc[("users", "ml"), "value"] == 40
    assert ("impact_ratio", "ml") in last.index and ("reach", "true_ml") in last.index
    reference = SpreadReference(**{k: v for k, v in graph_files.items() if k != "disadvantaged"},
                                n_cascades=30, probability=0.2, rng=1).simulate()  # fmt: skip
    cascades = reference.decision_table()
    assert set(cascades["group"]) <= {"web", "ml"}
    assert (cascades.loc[cascades["group"] == "ml", "reach"] == 1).all()


def test_a_given_network_is_the_world_as_its_files_are(graph_files, tiny_checkpoint, tmp_path):
    card = ranker(tiny_checkpoint, "official records", "anonymous rumor")
    from_files = SpreadPlatform(**graph_files, **SMALL, cards=card, rng=5).simulate()
    network = from_files.network
    graph = Network.from_networkx(network.to_networkx(), "community")
    given = SpreadPlatform(network=graph, disadvantaged="ml", **SMALL, cards=card, rng=5)
    assert given.communities == ("web", "ml")
    assert given.simulate().decision_table().equals(from_files.decision_table())
    for field, value in (("n_users", 100), ("graph", "block"), ("homophily", 0.5)):
        with pytest.raises(ValueError, match=f"{field}: the network given"):
            SpreadPlatform(network=graph, disadvantaged="ml", cards=card, **{field: value})
    with pytest.raises(ValueError, match="disadvantaged: 'hillcrest' is not a community"):
        SpreadPlatform(network=graph, cards=card)
    with pytest.raises(ValueError, match="network: '0' is not a community name"):
        SpreadPlatform(network=Network(graph.adjacency, graph.community, ("0", "1")),
                       disadvantaged="0", cards=card)  # fmt: skip


def test_reach_splits_into_network_position_and_ranker_effect(graph_files, tiny_checkpoint):
    """ml's users have no ties, so its true items reach 1 under any ranker: its network
    position is 1 over web's true items' mean neutral reach, the ranker's effect what
    the ranker's reach of web's items adds; the neutral spread is the same whichever
    ranker the world has (it promotes as many items)."""
    worlds = [
        SpreadPlatform(**graph_files, **SMALL, cards=ranker(tiny_checkpoint, pos, neg), rng=6,
                       name_permutations=200).simulate()
        for pos, neg in (("official records", "anonymous rumor"),
                         ("anonymous rumor", "official records"))
    ]  # fmt: skip
    first, second = (w.decision_table() for w in worlds)
    assert (first["decision"] != second["decision"]).any()  # the rankers differ
    assert first["neutral_reach"].equals(second["neutral_reach"])  # the network does not
    assert first["neutral_promoted"].equals(second["neutral_promoted"])
    for world, decisions in zip(worlds, (first, second)):
        web = decisions[(decisions["truth"] == 1) & (decisions["group"] == "web")]
        last = world.metrics().query(f"step == {SMALL['n_steps']}")
        value = last.set_index(["metric", "group"])["value"]
        assert value[("impact_ratio", "ml")] == pytest.approx(1 / web["reach"].mean())
        assert value[("position_ratio", "ml")] == pytest.approx(1 / web["neutral_reach"].mean())
        assert value[("ranker_effect", "ml")] == pytest.approx(
            web["neutral_reach"].mean() / web["reach"].mean()
        )
        assert value[("position_ratio", "ml")] < 0.5  # the network's, not the ranker's
        assert value[("ranker_effect_null_q025", "ml")] <= value[("ranker_effect_null_q975", "ml")]
        # the neutral ranker promotes as many items each step, blind to them
        per_step = decisions.groupby("step")[["decision", "neutral_promoted"]].sum()
        assert (per_step["neutral_promoted"] == per_step["decision"]).all()


def test_a_labelled_spec_reports_the_split_and_repeats_byte_for_byte(project, graph_files,
                                                                     tmp_path):  # fmt: skip
    from uim_sim.report import build_report
    from uim_sim.run.store import RESULT_FILES

    params = {"mode": "world", **{k: str(v) if k.endswith("_file") else v
                                  for k, v in graph_files.items()}, **SMALL}  # fmt: skip
    spec = write_yaml(project / "scenarios" / "labelled.yaml", {
        "name": "labelled", "world": "spread", "replicates": 2, "cards": ["tiny_zero_shot"],
        "params": params, "statistics": {"null_permutations": 0, "name_permutations": 100},
    })  # fmt: skip
    one, two = tmp_path / "one", tmp_path / "two"
    assert run_plan(plan(spec), one).done == 2 and run_plan(plan(spec), two).done == 2
    for name in RESULT_FILES:
        assert filecmp.cmp(one / name, two / name, shallow=False), name
    report = build_report(one)
    assert {"position_ratio", "ranker_effect", "ranker_null_low"} <= set(report.headline.columns)
    assert {"position_ratio.png", "ranker_effect.png"} <= {f.name for f in report.figures}
    headline = report.headline.iloc[0]
    assert headline["position_ratio"] < 0.5 and "ml / web" in " ".join(report.display.columns)
