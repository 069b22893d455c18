"""Driving the page as a person would, in a real browser (headless Chromium through
Playwright's Python client): the page's browser tests and its documentation
screenshots share these steps.

Chromium: Debian's ``chromium`` package (``apt-get install -y chromium``), found on the
PATH or named by ``UIM_SIM_CHROMIUM``; Playwright's own browser download is not used.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

STEP_TIMEOUT_MS = 180_000  # a first step builds both arms (loads models, adapts heads)


def chromium() -> str | None:
    """The Chromium binary to drive (None: none installed)."""
    named = os.environ.get("UIM_SIM_CHROMIUM")
    if named:
        return named if Path(named).is_file() else None
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def page_server(results: Path, agents_dir: Path | None = None, port: int | None = None,
                timeout: float = 90.0):  # fmt: skip
    """Run ``uim-sim page`` in a child process; yield its address; stop it."""
    port = port or free_port()
    command = [sys.executable, "-m", "uim_sim.cli", "page", str(results), "--port", str(port)]
    if agents_dir is not None:
        command += ["--agents-dir", str(agents_dir)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"uim-sim page exited: {process.stdout.read()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("uim-sim page did not start listening") from None
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


class Driver:
    """One browser tab on the page."""

    def __init__(self, page, url: str) -> None:
        self.page = page
        page.goto(url)
        page.get_by_role("button", name="Step").wait_for(timeout=60_000)

    def tab(self, name: str) -> None:
        self.page.get_by_role("tab", name=name).click()

    def choose(self, label: str, option: str) -> None:
        """Pick ``option`` in the select labelled ``label``."""
        self.page.locator(".v-select").filter(has_text=label).first.click()
        menu = self.page.locator(".menuable__content__active")
        menu.get_by_text(option, exact=True).first.click()
        self.page.keyboard.press("Escape")

    def choose_many(self, label: str, options: list[str]) -> None:
        """Tick each of ``options`` in the multiple select labelled ``label``."""
        self.page.locator(".v-select").filter(has_text=label).first.click()
        menu = self.page.locator(".menuable__content__active")
        for option in options:
            menu.get_by_text(option, exact=True).first.click()
        self.page.keyboard.press("Escape")

    def set_number(self, label: str, value: float) -> None:
        """Type ``value`` into the number box of the parameter ``label``."""
        box = self.page.locator(".v-text-field").filter(has_text=label).locator("input").last
        if not box.is_visible():
            self.page.get_by_text("World parameters").click()
        box.fill(str(value))
        box.press("Enter")

    def step(self, times: int = 1) -> None:
        """Press Step ``times`` times, each time waiting for the step to show."""
        for _ in range(times):
            now = self.shown_step()
            self.page.get_by_role("button", name="Step").click()
            self.page.get_by_text(f"step {now + 1} ·").wait_for(timeout=STEP_TIMEOUT_MS)

    def shown_step(self) -> int:
        found = self.page.get_by_text("· running").or_(self.page.get_by_text("· finished"))
        if found.count() == 0:
            return 0
        return int(found.first.inner_text().split()[1])

    def marks(self, chart_title: str) -> list[str]:
        """The aria-labels of the marks (points, bars) of the chart titled ``chart_title``
        (each names its values, e.g. ``step: 3; value: 0.71; group: black``)."""
        return self.page.evaluate(
            """title => [...document.querySelectorAll('svg')]
                .filter(s => [...s.querySelectorAll('[aria-label]')].some(
                    e => (e.getAttribute('aria-label') || '').includes("Title text '" + title)))
                .flatMap(s => [...s.querySelectorAll('[aria-roledescription]')]
                    .filter(e => / mark$/.test(e.getAttribute('aria-roledescription')))
                    .map(e => e.getAttribute('aria-label')))""",
            chart_title,
        )

    def screenshot(self, path: Path, height: int = 2200) -> Path:
        """A picture of the page (the page scrolls inside its own frame: the window is
        made tall for the picture)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        size = self.page.viewport_size
        self.page.set_viewport_size({"width": size["width"], "height": height})
        self.page.wait_for_timeout(1500)
        self.page.screenshot(path=str(path))
        self.page.set_viewport_size(size)
        return path


def values(marks: list[str]) -> list[dict[str, str]]:
    """``'step: 3; value: 0.71'`` -> ``{'step': '3', 'value': '0.71'}`` per mark."""
    out = []
    for label in marks:
        pairs = [part.split(": ", 1) for part in (label or "").split("; ") if ": " in part]
        out.append({k.strip(): v.strip() for k, v in pairs})
    return out
