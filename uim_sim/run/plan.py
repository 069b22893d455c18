"""Spec → runs: validate a scenario and everything it names, and expand it into runs
(agent cards × mitigation arms × grid values × replicates).

Every problem is a one-line `SpecError` naming the field, raised before anything
runs: a card that does not load, a checkpoint that does not verify or load (it is
opened the way a run opens it), a training file that does not read, a mitigation
that cannot act on a card or world, a ``corpus.*`` grid key with no forged card to
vary, a run whose largest allocations would not fit in the memory available.

Seeds: run seed = f(spec seed, replicate). Arms of the same replicate share their
population and history (common random numbers), so arm differences are paired. The
run id hashes everything that decides a run's result, so a changed spec never
reuses a stale run, and an unchanged part of it is never recomputed.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from uim_sim import builtin
from uim_sim.cards import FORGE_PREFIX, AgentCard, find_card, load_card
from uim_sim.lfm.checkpoint import CheckpointError, resolve
from uim_sim.lfm.device import precision_note
from uim_sim.lfm.engine import check_loads
from uim_sim.lfm.heads import HeadError, check_head, read_labelled_file, unplaced_name
from uim_sim.mitigate import build
from uim_sim.mitigate.base import arm_name
from uim_sim.schema import SpecError, UimError, digest, parse
from uim_sim.spec import (
    CARD_PREFIX,
    CORPUS_PREFIX,
    NOT_WORLD,
    MitigationSpec,
    ScenarioSpec,
    StatisticsSpec,
    load_spec,
    load_spec_data,
)
from uim_sim.understand.cards import CorpusCard, load_corpus_card
from uim_sim.understand.forge import FORGE_VERSION, check_base
from uim_sim.vocab.names import first_unplaced
from uim_sim.worlds import world_info


@dataclass(frozen=True)
class RunTask:
    """Everything one run needs, picklable (it travels to worker processes)."""

    run_id: str
    world: str
    card: AgentCard
    arm: str
    mitigations: tuple[MitigationSpec, ...]
    mitigation_cards: dict[str, AgentCard]
    params: dict[str, Any]
    grid: dict[str, Any]
    replicate: int
    seed: int
    statistics: StatisticsSpec
    corpus: CorpusCard | None = None  # set when the card's checkpoint is forge:CARD

    def identity(self) -> dict[str, Any]:
        """The run's identity as runs.parquet columns: the arm (its name, and its
        mitigations as a list) and the grid point as one typed column per key."""
        return {
            "arm": self.arm,
            "mitigations": [m.name for m in self.mitigations],
            **{f"grid.{k}": self.grid[k] for k in sorted(self.grid)},
        }


@dataclass
class Plan:
    spec: ScenarioSpec
    source: Path | str  # the spec file, or a note that it was given in memory
    tasks: list[RunTask]
    cards: dict[str, AgentCard] = field(default_factory=dict)

    def resolved(self) -> dict[str, Any]:
        """The spec as run: with every card's content, for the record (OUT/spec.yaml)."""
        return {
            "spec": self.spec.model_dump(mode="json"),
            "source": str(self.source),
            "cards": {n: c.model_dump(mode="json") for n, c in sorted(self.cards.items())},
            "runs": len(self.tasks),
        }

    @property
    def corpora(self) -> dict[str, CorpusCard]:
        """Every corpus card a checkpoint of the plan is forged from, by content hash."""
        return {t.corpus.fingerprint(): t.corpus for t in self.tasks if t.corpus is not None}


def run_seed(spec_seed: int, replicate: int) -> int:
    return int(np.random.SeedSequence([spec_seed, replicate]).generate_state(1)[0])


def _run_id(card: AgentCard, arm: str, replicate: int, content: dict[str, Any]) -> str:
    return f"{card.name}-{arm}-r{replicate:03d}-{digest(content)[:10]}"


def plan(spec: Path | str | Mapping[str, Any], agents_dir: Path | None = None, *,
         folder: Path | None = None) -> Plan:  # fmt: skip
    """Validate a scenario and everything it names; expand it into runs.

    ``spec``: a spec file (or a shipped scenario's name: ``builtin:hiring_audit``,
    ``hiring_audit``, ``scenarios/hiring_audit.yaml`` where no such file is here), or the
    spec itself (a mapping, as a file would hold it: the
    page's arms); then its agent cards and relative paths are found as for a file in
    ``folder`` (default: the working directory), and a message names the field alone.
    Raises `SpecError` (one line, naming the field) on any invalid input.
    """
    if agents_dir is not None and not Path(agents_dir).is_dir():
        raise SpecError(f"--agents-dir: {agents_dir}: no such folder")
    if isinstance(spec, Mapping):
        spec_path, where, source = Path(folder or ".") / "spec.yaml", "", "(a spec in memory)"
        spec = load_spec_data(dict(spec), where)
    else:  # a file, else a shipped scenario of that name (`uim_sim.builtin`)
        spec_path = source = builtin.resolve("scenarios", spec)
        where = f"{builtin.shown(spec_path)}: "
        spec = load_spec(spec_path)
    world = world_info(spec.world)
    _check_size(spec, where)
    keys = list(spec.grid)
    combos = [
        {**dict(zip(keys, values)), **stages}
        for values in itertools.product(*spec.grid.values())
        for stages in spec.attribution_combos()
    ]
    for combo in combos:  # before any checkpoint loads
        _check_memory(spec.world_params(combo), combo, where)
    cards: dict[str, AgentCard] = {}

    def card(name: str) -> AgentCard:
        if name not in cards:
            cards[name] = load_card(find_card(name, spec_path, agents_dir, where))
            if spec.device is not None:  # the spec's device is every card's
                cards[name] = cards[name].model_copy(update={"device": spec.device})
            if spec.precision is not None:  # and so is its precision
                cards[name] = cards[name].model_copy(update={"precision": spec.precision})
            _check_card(cards[name], where)
        return cards[name]

    agent_cards = [card(n) for n in spec.cards]
    names = [c.name for c in agent_cards]
    if len(set(names)) != len(names):
        raise SpecError(f"{where}cards: card names repeat {names}")
    by_reference = dict(zip(spec.cards, agent_cards))
    corpus_keys = [k for k in spec.grid if k.startswith(CORPUS_PREFIX)]
    if corpus_keys and not any(c.forged for c in agent_cards):
        raise SpecError(
            f"{where}grid.{corpus_keys[0]}: corpus.* keys vary forged checkpoints "
            f"(checkpoint: forge:CORPUS_CARD.yaml), and no card of the spec is forged"
        )
    world = world.in_modes({getattr(spec.world_params(c), "mode", None) for c in combos})
    arms = []
    for i, arm in enumerate(spec.arms):
        at = f"{where}arms.{i}"
        built = [build(m, f"{at}.{j}", card) for j, m in enumerate(arm.apply)]
        members = [by_reference[a].name for a in (arm.cards or spec.cards)]
        for j, mitigation in enumerate(built):
            for member in members:
                reason = mitigation.refusal(world, cards[member])
                if reason:
                    raise SpecError(
                        f"{at}.{j}: {reason}; refused (limit the arm to the cards it acts on "
                        f"with {{apply: [...], cards: [...]}})"
                    )
        pool_cards = {n: c for m in built for n, c in m.cards.items()}
        arms.append((arm_name(arm.apply), tuple(arm.apply), pool_cards, set(members)))
    if len({a[0] for a in arms}) != len(arms):
        raise SpecError(f"{where}arms: two arms have the same mitigations")

    if spec.attribution is not None:
        _check_attribution(spec, agent_cards, where)
    tasks = []
    for base_agent in agent_cards:
        agent = base_agent
        # corpus.* grid keys only vary forged checkpoints: drop them for the others
        agent_combos = [
            dict(c)
            for c in dict.fromkeys(
                tuple(
                    (k, v)
                    for k, v in combo.items()
                    if agent.forged or not k.startswith(CORPUS_PREFIX)
                )
                for combo in combos
            )
        ]
        for arm, mitigations, pool_cards, members in arms:
            if agent.name not in members:
                continue
            for grid in agent_combos:
                agent = _with_card_overrides(base_agent, grid, where)
                params = spec.world_params(grid).model_dump(mode="json")
                corpus = _corpus_card(agent, grid, where) if agent.forged else None
                for replicate in range(spec.replicates):
                    seed = run_seed(spec.seed, replicate)
                    content = {
                        "world": spec.world,
                        "card": agent.fingerprint(),
                        "mitigations": [m.model_dump(mode="json") for m in mitigations],
                        "pool": {n: c.fingerprint() for n, c in pool_cards.items()},
                        "params": params,
                        "seed": seed,
                        "statistics": spec.statistics.model_dump(),
                        # a forge of another forge version is another checkpoint
                        "corpus": corpus and f"{corpus.fingerprint()}:f{FORGE_VERSION}",
                    }
                    tasks.append(
                        RunTask(
                            run_id=_run_id(agent, arm, replicate, content),
                            world=spec.world,
                            card=agent,
                            arm=arm,
                            mitigations=mitigations,
                            mitigation_cards=pool_cards,
                            params=params,
                            grid=grid,
                            replicate=replicate,
                            seed=seed,
                            statistics=spec.statistics,
                            corpus=corpus,
                        )
                    )
    _check_pools(world, tasks, list(cards.values()), where)
    for task in tasks:
        model = world_info(task.world).model(task.params.get("mode"))
        reason = model.card_refusal(task.card, task.corpus)
        if reason:
            raise SpecError(f"{where}agent {task.card.name}: {reason}")
    return Plan(spec, source, tasks, cards)


def _check_pools(world, tasks: list[RunTask], cards: list[AgentCard], where: str) -> None:
    """Pool heads (``choose_one``): the world's deciders must choose within pools, and
    the pools a run's world knows before its first step (an audit's job ads, as drawn
    for the run's seed, before any mitigation changes their texts) must fit the
    card's model: labels of one token, prompts within its positions. A pool known
    only as a run goes (a market's round) is checked when it is scored: a run with
    one that does not fit fails with the same one-line reason."""
    for card in cards:
        if card.head.reads_pool and not all(m.pool_heads for m in world.models.values()):
            raise SpecError(
                f"{where}agent {card.name}: a {card.head.kind} head reads a decision's "
                f"whole pool in one prompt; world {world.name} scores one text at a time"
            )
    checked = set()
    for task in tasks:
        card = task.card
        key = (card.fingerprint(), digest(task.params), task.seed)
        if not card.head.reads_pool or card.forged or key in checked:
            continue
        checked.add(key)
        model = world_info(task.world).model(task.params.get("mode"))
        try:
            model(**task.params, cards=[card], rng=task.seed, name_permutations=0)
        except HeadError as exc:
            raise SpecError(f"{where}agent {card.name}: {exc}") from None


def _with_card_overrides(agent: AgentCard, grid: dict[str, Any], where: str) -> AgentCard:
    """The card with the grid's ``card.*`` overrides (an attribution's clean stage)."""
    overrides = {k.removeprefix(CARD_PREFIX): v for k, v in grid.items()
                 if k.startswith(CARD_PREFIX)}  # fmt: skip
    if not overrides:
        return agent
    data = agent.model_dump(mode="json")
    for key, value in overrides.items():
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or leaf not in node:
            raise SpecError(f"{where}attribution: card.{key}: card {agent.name} has no {key}")
        node[leaf] = value
    return parse(AgentCard, data, f"{where}attribution: card {agent.name}")


def _check_attribution(spec: ScenarioSpec, cards: list[AgentCard], where: str) -> None:
    for stage, overrides in spec.attribution.stages.items():
        if any(k.startswith(CORPUS_PREFIX) for k in overrides):
            plain = [c.name for c in cards if not c.forged]
            if plain:
                raise SpecError(
                    f"{where}attribution.stages.{stage}: corpus.* keys need forged "
                    f"checkpoints (forge:CARD); {plain} are not forged"
                )
        for card in cards:
            _with_card_overrides(card, overrides, where)


def _corpus_card(agent: AgentCard, grid: dict[str, Any], where: str) -> CorpusCard:
    path = Path(agent.checkpoint.removeprefix(FORGE_PREFIX))
    overrides = {
        k.removeprefix(CORPUS_PREFIX): v for k, v in grid.items() if k.startswith(CORPUS_PREFIX)
    }
    try:
        corpus = load_corpus_card(path, overrides)
        if corpus.training.precision != "fp32":  # refused here, before anything is forged
            check_base(corpus)
        return corpus
    except (SpecError, CheckpointError) as exc:
        raise SpecError(f"{where}agent {agent.name}: {exc}") from None


def _check_card(card: AgentCard, where: str) -> None:
    """Fail before anything runs: the checkpoint verifies (with a masked-LM head where
    the head asks for one), the training file reads."""
    try:
        if card.precision != "fp32":  # bf16 on a CPU without native bf16: refused
            precision_note(card.precision, card.device)
        if card.forged:
            load_corpus_card(Path(card.checkpoint.removeprefix(FORGE_PREFIX)))
        else:
            resolve(card.checkpoint)
            # tokenizer, config and weights, on the card's device and dtype, as a run loads them
            engine = check_loads(card.checkpoint, card.device, card.precision)
            check_head(card.head, engine)  # the kind of model the head reads, its labels
        if card.head.train_on == "file":
            head = card.head
            extra = [c for c in (head.name_column, head.group_column) if c]
            read = read_labelled_file(head.file, head.text_column, head.label_column, extra)
            if head.name_column and not head.group_column:
                names = read[2][head.name_column]
                unplaced = first_unplaced(names)
                if unplaced is not None:
                    raise unplaced_name(head.file, names, unplaced)
    except UimError as exc:  # a checkpoint, head or file refused
        raise SpecError(f"{where}agent {card.name}: {exc}") from None


MAX_RUNS = 100_000  # runs one spec may expand to (each is a folder of results)


def _check_size(spec: ScenarioSpec, where: str) -> None:
    """Refuse a spec that expands to more runs than `MAX_RUNS`, before expanding it."""
    grid = math.prod(len(v) for v in spec.grid.values())
    stages = len(spec.attribution_combos())
    runs = len(spec.cards) * len(spec.arms) * grid * stages * spec.replicates
    if runs > MAX_RUNS:
        raise SpecError(
            f"{where}up to {runs:,} runs ({len(spec.cards)} cards × "
            f"{len(spec.arms)} arms × {grid:,} grid points"
            + (f" × {stages} attribution combinations" if stages > 1 else "")
            + f" × {spec.replicates} replicates), more than {MAX_RUNS:,}; split the spec"
        )


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now (Linux: MemAvailable, and
    no more than a container's cgroup limit leaves), or None where the system does
    not say."""
    found = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    found = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if found is None:
        try:
            found = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, OSError, ValueError):
            return None
    for limit, used in CGROUP_MEMORY:
        try:
            cap = Path(limit).read_text().strip()
            if cap.isdigit():
                left = int(cap) - int(Path(used).read_text().strip())
                found = min(found, max(left, 0))
        except (OSError, ValueError):
            continue
    return found


CGROUP_MEMORY = (  # (limit, usage) files of cgroup v2 and v1; "max": no limit
    ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
    ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
)


def _check_memory(params: Any, grid: dict[str, Any], where: str) -> None:
    """Refuse a run whose largest allocations (the world's `memory_estimate`) would
    not fit in the memory available now, naming the estimate and what is available."""
    estimate = getattr(params, "memory_estimate", None)
    if estimate is None:
        return
    need, what = estimate()
    available = available_memory()
    if available is None or need <= available:
        return
    varied = [f"{k}={v!r}" for k, v in grid.items() if not k.startswith(NOT_WORLD)]
    fields = "params" + (f" (with {', '.join(varied)})" if varied else "")
    raise SpecError(
        f"{where}{fields}: a run needs about {_gib(need)} of memory ({what}), more than "
        f"the {_gib(available)} available on this machine; make the world smaller"
    )


def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 / 10 else f"{n / 2**20:,.0f} MiB"
