"""A researcher's graph as files: an edge list and, optionally, its nodes' community
labels (a column of the edge list, or a node file), read into a `Network`.

Rows are fields separated by commas (quoted as CSV where a field holds one) or, in a
row without a comma, by white space; ``#`` starts a comment. The first two fields
of an edge row are its nodes' ids (any text: ``17``, ``alice``). Users are numbered in
order of first appearance in the edge list or, with a node file, in the node file's
order (its nodes without an edge are users who post and reach no one).

**Headers.** The first row of an edge list is a header when its fields are column
names, not node ids: a row that names a node of the node file, or holds two whole
numbers, is an edge; one with a field that is not a whole number is a header when
every later row's ids are whole numbers (``id_1,id_2`` or ``source,target`` above
numeric ids) and, where ids are words, when neither of its first two fields is an id
of a later row (a header's names label no node; a first edge between two nodes that
have no other edge is read as a header there: give such a file a node file or a
header). A node file's first row is a
header when its label is no later row's label (a label names a community of many
nodes, a column's name none), unless its id is a whole number as every later row's
is. A first row that names the ``label_column`` is the header.

**Labels.** ``label_column`` names a column: of the node file where there is one
(its first column is the node id), else of the edge list, where a row's label is its
first node's (a node's rows must agree). A node file without ``label_column`` has the
label in its second column. Every node of the graph needs a label. The labels, in
order of first appearance, are the communities, as they are or named by a mapping
(`Network.relabel`, a spec's ``communities``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from pathlib import Path

import numpy as np

from uim_sim.worlds.spread.network import Network, NetworkError


@dataclass(frozen=True)
class GraphFiles:
    """What a spec names: the edge list, its node file and the label column."""

    edge_file: Path
    node_file: Path | None = None
    label_column: str | None = None

    def __post_init__(self) -> None:
        for name in ("edge_file", "node_file"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, Path(getattr(self, name)))

    @property
    def labelled(self) -> bool:
        return self.node_file is not None or self.label_column is not None


def _rows(path: Path, where: str):
    """(line number, fields, line) of every row that is not blank or a comment
    (``where``: the field and file a refusal names)."""
    if not path.is_file():
        raise NetworkError(f"{where}: no such file")
    with open(path, newline="") as fh:
        for number, raw in enumerate(fh, start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            fields = next(csv.reader([line])) if "," in line else line.split()
            yield number, [f.strip() for f in fields], raw


def _whole(field: str) -> bool:
    return field.isdigit()


def _column(path: Path, header: list[str], name: str, why: str) -> int:
    if name not in header:
        raise NetworkError(
            f"label_column: {name!r} is not a column of the first row of {path} "
            f"({', '.join(header) or 'empty'}); {why}"
        )
    return header.index(name)


def read_node_labels(path: Path, label_column: str | None) -> dict[str, str]:
    """A node file's labels by node id."""
    path = Path(path)
    where = f"node_file: {path}"
    rows = list(_rows(path, where))
    if not rows:
        raise NetworkError(f"{where}: no nodes")
    at = 1
    if label_column is not None:
        at = _column(path, rows[0][1], label_column, "a node file with a label column "
                     "names its columns in a header")  # fmt: skip
        rows = rows[1:]
    elif len(rows[0][1]) >= 2:
        node, label = rows[0][1][:2]
        later = rows[1:]
        numbered = _whole(node) and all(_whole(r[1][0]) for r in later)
        if not numbered and all(r[1][1:2] != [label] for r in later):
            rows = later  # a header: its "label" labels no one, its "id" is a name
    labels: dict[str, str] = {}
    for number, fields, raw in rows:
        if len(fields) <= at:
            raise NetworkError(f"{where}: line {number}: expected a node id and its label "
                               f"(column {at + 1}), got {raw.strip()!r}")  # fmt: skip
        node, label = fields[0], fields[at]
        if not node or not label:
            raise NetworkError(f"{where}: line {number}: an empty node id or label")
        if labels.setdefault(node, label) != label:
            raise NetworkError(f"{where}: line {number}: node {node!r} labelled {label!r} "
                               f"here and {labels[node]!r} before")  # fmt: skip
    return labels


def _is_header(fields: list[str], label_column: str | None, known) -> bool | None:
    """Is an edge list's first row a header? None: it depends on the rows below."""
    if label_column is not None:
        return True  # it names the label column (checked by the caller)
    if known is not None and any(f in known for f in fields[:2]):
        return False  # it names a node
    if len(fields) < 2:
        return not (fields and _whole(fields[0]))  # one id: a bad row, named below
    if _whole(fields[0]) and _whole(fields[1]):
        return False
    return None


def read_edge_list(path: Path) -> Network:
    """The graph of an edge list without community labels (every user in 0)."""
    return _read_edges(Path(path))[0]


def _read_edges(
    path: Path, label_column: str | None = None, known: dict[str, str] | None = None
) -> tuple[Network, list[str], dict[str, str]]:
    """The graph of an edge list, its node ids in order, and its nodes' labels where
    ``label_column`` names a column of it (a row's label is its first node's).
    ``known``: the node file's labels, whose ids tell a header from an edge."""
    path = Path(path)
    where = f"edge_file: {path}"
    rows = _rows(path, where)
    first = next(rows, None)
    if first is None:
        raise NetworkError(f"{where}: no edges")
    at = None
    if label_column is not None:
        at = _column(path, first[1], label_column, "an edge list with a label column "
                     "names its columns in a header")  # fmt: skip
    header = _is_header(first[1], label_column, known)
    ids: dict[str, int] = {}
    labels: dict[str, str] = {}
    us, vs = [], []
    whole = True  # are the ids of every row after the first whole numbers?
    for number, fields, raw in rows if header is not False else chain([first], rows):
        if len(fields) < 2:
            raise NetworkError(f"{where}: line {number}: expected two node ids, got {raw!r}")
        a, b = fields[0], fields[1]
        if not a or not b:
            raise NetworkError(f"{where}: line {number}: an empty node id")
        whole = whole and _whole(a) and _whole(b)
        if at is not None:
            label = fields[at] if len(fields) > at else ""
            if not label:
                raise NetworkError(f"{where}: line {number}: no {label_column!r} label")
            if labels.setdefault(a, label) != label:
                raise NetworkError(f"{where}: line {number}: node {a!r} labelled {label!r} "
                                   f"here and {labels[a]!r} before")  # fmt: skip
        us.append(ids.setdefault(a, len(ids)))
        vs.append(ids.setdefault(b, len(ids)))
    if header is None:  # names above whole numbers, or names no later row uses
        a, b = first[1][:2]
        if not whole and (a in ids or b in ids):  # an edge after all: its nodes first
            order = {node: i for i, node in enumerate(dict.fromkeys([a, b, *ids]))}
            renumber = np.empty(len(ids), dtype=np.int64)
            for node, old in ids.items():
                renumber[old] = order[node]
            us = [order[a], *renumber[us].tolist()]
            vs = [order[b], *renumber[vs].tolist()]
            ids = order
    if not us:
        raise NetworkError(f"{where}: no edges")
    n = len(ids)
    network = Network.from_edges(n, np.array(us), np.array(vs), np.zeros(n, dtype=np.int16))
    return network, list(ids), labels


def read_graph(files: GraphFiles) -> Network:
    """The network of a spec's graph files: with community names (the labels as
    they are, in order of first appearance) where they have labels, else without
    (every user in 0). With a node file, users are numbered in its order (its nodes
    without an edge are users who post and reach no one)."""
    known = None
    if files.node_file is not None:
        known = read_node_labels(files.node_file, files.label_column)
    column = files.label_column if known is None else None
    network, ids, labels = _read_edges(files.edge_file, column, known)
    if not files.labelled:
        return network
    where = f"node_file: {files.node_file}" if known is not None else "label_column"
    unlabelled = [node for node in ids if node not in (known or labels)]
    if unlabelled:
        raise NetworkError(f"{where}: node {unlabelled[0]!r} of {files.edge_file.name} has "
                           f"no label ({len(unlabelled)} nodes have none; every node needs "
                           "one)")  # fmt: skip
    if known is not None:  # the node file's order, isolated users included
        labels = known
        position = {node: i for i, node in enumerate(known)}
        new = np.array([position[node] for node in ids], dtype=np.int64)
        coo = network.adjacency.tocoo()
        network = Network.from_edges(len(known), new[coo.row], new[coo.col],
                                     np.zeros(len(known), dtype=np.int16))  # fmt: skip
        ids = list(known)
    names = tuple(dict.fromkeys(labels[node] for node in ids))
    if len(names) < 2:
        raise NetworkError(f"{where}: every node has the label {names[0]!r}: the world "
                           "compares two communities or more")  # fmt: skip
    if len(names) > 1000:
        raise NetworkError(f"{where}: {len(names)} labels: labels name communities, "
                           "not nodes (is label_column the right column?)")  # fmt: skip
    code = {name: i for i, name in enumerate(names)}
    community = np.array([code[labels[node]] for node in ids], dtype=np.int16)
    return Network(network.adjacency, community, names)


@lru_cache(maxsize=8)
def _checked(files: GraphFiles, versions: tuple) -> tuple[int, tuple[str, ...] | None]:
    network = read_graph(files)
    return network.n_users, network.names


def check_graph(files: GraphFiles) -> tuple[int, tuple[str, ...] | None]:
    """Read a spec's graph files once per version of them (parameters are validated
    often): the number of users and the labels (None without), or a `NetworkError`
    naming the file and line."""
    paths = [p for p in (files.edge_file, files.node_file) if p is not None]
    for field, path in zip(("edge_file", "node_file"), paths):
        if not Path(path).is_file():
            raise NetworkError(f"{field}: {path}: no such file")
    versions = tuple((str(Path(p).resolve()), Path(p).stat().st_mtime_ns, Path(p).stat().st_size)
                     for p in paths)  # fmt: skip
    return _checked(files, versions)
