"""Runs on a Ray cluster: ``uim-sim run SPEC --executor ray [--address ...]``.

Ray is an optional extra (``pip install 'uim-sim[ray]'``); nothing else imports this
module.

- One actor per worker: a process that keeps the engines it loads (the process-wide
  cache of `uim_sim.lfm.engine.get_engine`), so a batch loads each model once per
  worker, not once per run. Each actor has one run in flight and gets the next when
  it returns.
- Workers return a run's rows; the driver alone writes them (`Store`), as with the
  process pool, so resume and byte-identical tables hold.
- Closing the iterator early (Ctrl-C) cancels the runs not started and kills the
  actors: a run cut short is lost, never half-written.
- Without an address, a local Ray is started for the command and stopped after it:
  no dashboard, no usage statistics, its own temporary folder, token authentication
  with a token made for the command (nothing written to ~/.ray). With an address
  (``auto``: the cluster this machine is a node of; ``ray://HOST:PORT``: a cluster's
  Ray Client server) the command connects, runs its actors, and disconnects; the
  cluster stays up.
- On a cluster, every node needs uim-sim (the driver's version) and torch installed,
  and every checkpoint a card names by path (``builtin:`` checkpoints ship inside the
  packages). Checkpoints the driver forged are shipped through the object store
  (`ShippedFolder`): put once, written once per worker process.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray

from uim_sim.run.executors import ExecutorError, Failure, Folder, call, init_worker
from uim_sim.run.threads import GIVEN, SHARED

_SHIPPED: dict[str, Path] = {}  # in a worker process: a shipped folder's digest → its copy


@dataclass(frozen=True)
class ShippedFolder:
    """A folder the driver wrote, its files in Ray's object store. A worker writes it
    once into a temporary folder under the same two last names (``checkpoints/NAME``:
    what the result tables record of a forged checkpoint)."""

    parent: str
    name: str
    digest: str
    files: Any  # ObjectRef of {relative path: bytes}; nested, so Ray passes it unresolved

    def local(self) -> Path:
        where = _SHIPPED.get(self.digest)
        if where is None or not where.is_dir():
            files = ray.get(self.files)
            where = Path(tempfile.mkdtemp(prefix="uim-sim-shipped-")) / self.parent / self.name
            for rel, data in files.items():
                (where / rel).parent.mkdir(parents=True, exist_ok=True)
                (where / rel).write_bytes(data)
            _SHIPPED[self.digest] = where
        return where


def ship(folder: Folder) -> ShippedFolder:
    """Put a folder's files into the object store (the driver must be connected)."""
    root = folder.local()
    paths = [p for p in sorted(root.rglob("*")) if p.is_file()]
    files = {p.relative_to(root).as_posix(): p.read_bytes() for p in paths}
    digest = hashlib.sha256()
    for rel, data in files.items():
        digest.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    return ShippedFolder(root.parent.name, root.name, digest.hexdigest(), ray.put(files))


class Worker:
    """A Ray actor: one process running run after run, keeping its loaded models."""

    def __init__(self, threads: int, cwd: str, rule: str = SHARED) -> None:
        init_worker(threads, rule=rule)
        if os.path.isdir(cwd):  # relative paths of a spec read as in the driver
            os.chdir(cwd)

    def ready(self) -> int:
        return os.getpid()

    def run(self, fn: Callable, job: Any) -> Any:
        return call(fn, job)

    def close(self) -> None:
        for where in _SHIPPED.values():
            shutil.rmtree(where.parents[1], ignore_errors=True)
        _SHIPPED.clear()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:300]}"


def _local_cluster_env() -> None:
    """A local Ray for one command, offline and private: no usage statistics, token
    authentication with a token made here (Ray would otherwise write one to
    ~/.ray/auth_token). Set once per process: later local clusters reuse the token."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    mode = os.environ.setdefault("RAY_AUTH_MODE", "token")
    if mode.lower() == "token" and not (
        os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
    ):
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    try:  # Ray reads RAY_AUTH_MODE once, at import: refresh it (as Ray does itself)
        from ray._raylet import Config

        Config.initialize("")
    except (ImportError, AttributeError):
        pass


@contextmanager
def session(address: str | None = None) -> Iterator[None]:
    """Connected to Ray for the block: a local Ray started (``address`` None) and
    stopped after, or a cluster joined and left. A connection the caller opened
    already (a test, a notebook) is used and left open."""
    if ray.is_initialized():
        yield
        return
    temp = None
    options: dict[str, Any] = {"address": address}
    if address is None or not address.startswith("ray://"):  # Ray Client takes its own
        options.update(log_to_driver=False, logging_level="warning")
    if address is None:
        _local_cluster_env()
        # a short path: Ray's sockets live under it (Unix socket paths are short)
        parent = "/tmp" if os.path.isdir("/tmp") else None
        _sweep_stale(Path(parent or tempfile.gettempdir()))
        temp = tempfile.mkdtemp(prefix="uim-ray-", dir=parent)
        options.update(
            address="local", num_cpus=os.cpu_count() or 1, include_dashboard=False, _temp_dir=temp
        )
    else:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        try:
            ray.init(**options)
        except Exception as exc:  # no cluster at the address, or Ray cannot start here
            where = "start a local Ray" if address is None else f"join the Ray cluster {address}"
            raise ExecutorError(f"--executor ray: could not {where}: {_one_line(exc)}") from None
        yield
    finally:
        ray.shutdown()
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)


def _sweep_stale(parent: Path) -> None:
    """Remove the folders of local Rays whose command was killed (``kill -9`` leaves its
    ``uim-ray-*`` folder: Ray's processes die with it, the folder does not). A folder
    is stale when the process that started its session (the number ending the
    session's name) is gone."""
    if not Path("/proc/self").is_dir():  # no way to tell a live session here
        return
    for folder in parent.glob("uim-ray-*"):
        sessions = [s.name for s in folder.glob("session_2*")]
        pids = [name.rsplit("_", 1)[-1] for name in sessions]
        if sessions and all(p.isdigit() and not Path(f"/proc/{p}").exists() for p in pids):
            shutil.rmtree(folder, ignore_errors=True)


class RayExecutor:
    """Runs jobs on Ray actors, one per worker (see the module's notes).

    ``workers``: actors (default: one per CPU of the cluster, at most one per job);
    each reserves ``CPUs // workers`` CPUs and runs torch with as many threads, or
    ``threads`` (``--threads``). ``ship``: send the jobs' `Folder`s through the object
    store (default: when joining a cluster by ``address``; a local Ray reads the
    driver's paths).
    """

    def __init__(
        self, workers: int | None = None, address: str | None = None, ship: bool | None = None,
        threads: int | None = None,
    ) -> None:  # fmt: skip
        self.workers = workers
        self.address = address
        self.ship = address is not None if ship is None else ship
        self.threads = threads

    def map_unordered(self, fn: Callable, tasks: Iterable) -> Iterator[tuple[Any, Any]]:
        tasks = list(tasks)
        if not tasks:  # nothing to run: no cluster started
            return
        with session(self.address):
            yield from self._run(fn, tasks)

    def _run(self, fn: Callable, tasks: list) -> Iterator[tuple[Any, Any]]:
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        n = max(1, min(self.workers or cpus, len(tasks)))
        threads = max(1, cpus // n)
        actor_class = ray.remote(Worker).options(num_cpus=threads)
        rule = SHARED if self.threads is None else GIVEN
        threads = threads if self.threads is None else self.threads
        shipped: dict[Folder, ShippedFolder] = {}

        def reach(job: Any) -> Any:
            if not self.ship or not isinstance(job, tuple):
                return job
            return tuple(
                shipped.setdefault(x, ship(x)) if isinstance(x, Folder) else x for x in job
            )

        queue = deque(tasks)
        actors: list[Any] = []
        running: dict[Any, tuple[Any, Any]] = {}  # ref → (actor, job; None: starting)

        def start() -> None:
            actor = actor_class.remote(threads, os.getcwd(), rule)
            actors.append(actor)
            running[actor.ready.remote()] = (actor, None)

        def give(actor: Any) -> None:
            job = queue.popleft()
            running[actor.run.remote(fn, reach(job))] = (actor, job)

        for _ in range(n):
            start()
        starting_error, finished = None, False
        try:
            while running:
                # a timeout, so that Ctrl-C is seen within a second whatever Ray does
                ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
                if not ready:
                    continue
                actor, job = running.pop(ready[0])
                try:
                    outcome = ray.get(ready[0])
                except ray.exceptions.RayActorError as exc:  # the worker died
                    outcome, actor = Failure(_one_line(exc)), None
                except ray.exceptions.RayError as exc:
                    outcome = Failure(_one_line(exc))
                if job is None and isinstance(outcome, Failure):  # could not start
                    starting_error = outcome.error
                    continue
                if queue:
                    if actor is not None:
                        give(actor)
                    else:  # a run killed its worker: a fresh one takes over
                        start()
                if job is not None:
                    yield job, outcome
            while queue:  # no worker could start
                yield queue.popleft(), Failure(f"no Ray worker started: {starting_error}")
            finished = True
        finally:
            for ref in running:  # pending runs are dropped; running ones die with their actor
                try:
                    ray.cancel(ref)
                except Exception:  # already finished, or its actor is gone
                    pass
            if finished:
                try:  # a normal end: workers remove their shipped copies
                    ray.get([a.close.remote() for a in actors], timeout=30)
                except Exception:
                    pass
            for actor in actors:
                try:
                    ray.kill(actor)
                except Exception:
                    pass
