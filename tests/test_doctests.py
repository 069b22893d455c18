"""The ``>>>`` examples on the public entry points run as written (a world built and
stepped, a card loaded, a world checked, a result folder read), from the project's root."""

from __future__ import annotations

import doctest
import importlib

import pytest
from conftest import ROOT

MODULES = [
    "uim_sim.worlds.base", "uim_sim.cards", "uim_sim.worlds.check", "uim_sim.report.load",
    "uim_sim.api", "uim_sim.builtin", "uim_sim.starter",
]  # fmt: skip


@pytest.mark.parametrize("name", MODULES)
def test_the_examples_in_the_docstrings_run(name, monkeypatch):
    monkeypatch.chdir(ROOT)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(importlib.import_module(name), optionflags=flags, verbose=False)
    assert result.attempted > 0 and result.failed == 0, name
