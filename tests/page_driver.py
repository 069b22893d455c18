"""Driving the page as a person would, in a real browser (headless Chromium through
Playwright's Python client): the page's browser tests and its documentation
screenshots share these steps.

Chromium: Debian's ``chromium`` package (``apt-get install -y chromium``), found on the
PATH or named by ``UIM_SIM_CHROMIUM``; Playwright's own browser download is not used.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
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
                timeout: float = 90.0, log: Path | None = None):  # fmt: skip
    """Run ``uim-sim page`` in a child process; yield its address; stop it. Its output
    goes to ``log`` (default: a temporary file), never to a pipe nobody reads (a full
    pipe would freeze the server)."""
    port = port or free_port()
    command = [sys.executable, "-m", "uim_sim.cli", "page", str(results), "--port", str(port)]
    if agents_dir is not None:
        command += ["--agents-dir", str(agents_dir)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    log = Path(log) if log else Path(tempfile.mkstemp(prefix="uim-page-", suffix=".log")[1])
    with open(log, "w") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"uim-sim page exited: {log.read_text()[-2000:]}")
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

    def _select(self, label: str):
        """The visible select whose label is exactly ``label`` (the other tab's selects
        stay in the page, hidden)."""
        exact = self.page.locator("label").filter(has_text=re.compile(f"^{re.escape(label)}$"))
        return self.page.locator(".v-select").filter(has=exact).filter(visible=True).first

    def idle(self, timeout: float = 180.0) -> None:
        """Wait until the page is not busy (no progress bar): a control drawn anew
        while the page finishes its work can lose a click."""
        busy = self.page.locator(".v-progress-linear").filter(visible=True)
        deadline = time.monotonic() + timeout
        while busy.count() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.page.wait_for_timeout(300)

    def _shown(self, label: str, option: str):
        """``option`` as the select labelled ``label`` shows it (a multiple select lists
        its choices with commas: ``none, name_redaction``)."""
        pattern = re.compile(rf"^\s*{re.escape(option)},?\s*$")
        return self._select(label).locator(".v-select__selection").filter(has_text=pattern)

    def _option(self, select, option: str):
        """Open ``select``'s menu and return its item ``option`` once the menu has
        finished opening (a click during Vuetify's opening transition changes the
        select on the screen without telling the server)."""
        select.click()
        item = self.page.locator(".menuable__content__active").get_by_text(option, exact=True)
        item.first.wait_for(state="visible")
        self.page.wait_for_timeout(500)
        return item.first

    def _pick(self, label: str, option: str) -> None:
        """Open the select labelled ``label`` and click ``option`` in its menu, until the
        select shows it (a click during the menu's opening animation can be lost)."""
        self.idle()
        select = self._select(label)
        for _attempt in range(3):
            self._option(select, option).click()
            self.page.keyboard.press("Escape")
            try:
                self._shown(label, option).first.wait_for(timeout=3_000)
                return
            except Exception:  # noqa: BLE001 - not shown yet: try again
                continue
        raise AssertionError(f"{label}: could not pick {option!r}")

    def choose(self, label: str, option: str) -> None:
        """Pick ``option`` in the select labelled ``label``."""
        if self._shown(label, option).count() == 0:
            self._pick(label, option)

    def choose_many(self, label: str, options: list[str]) -> None:
        """Tick each of ``options`` in the multiple select labelled ``label``."""
        for option in options:
            self.choose(label, option)

    def untick(self, label: str, options: list[str]) -> None:
        """Untick each of ``options`` in the multiple select labelled ``label``."""
        for option in options:
            self.idle()
            shown = self._shown(label, option)
            if shown.count():
                self._option(self._select(label), option).click()
                self.page.keyboard.press("Escape")
                shown.first.wait_for(state="detached", timeout=10_000)

    def set_number(self, label: str, value: float) -> None:
        """Type ``value`` into the number box of the parameter ``label``."""
        box = self.page.locator(".v-text-field").filter(has_text=label).locator("input").last
        if not box.is_visible():
            self.page.get_by_text("World parameters").click()
        box.fill(str(value))
        box.press("Enter")

    def step(self, times: int = 1) -> None:
        """Press Step ``times`` times, each time waiting for the step to show. A click that
        lands while the page redraws can be lost: where the page is idle (no "stepping…",
        Step enabled) and the step has not moved 10 s after a click, it is pressed again,
        as a person would. A page that does not move is one line saying where it stayed."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        failed = self.page.locator(".v-alert.error")
        busy = self.page.get_by_text("stepping…")
        button = self.page.get_by_role("button", name="Step")
        for _ in range(times):
            now = self.shown_step()
            deadline = time.monotonic() + STEP_TIMEOUT_MS / 1000
            button.click(timeout=STEP_TIMEOUT_MS)  # enabled once the last step's work is done
            clicked = time.monotonic()
            while self.shown_step() <= now:
                if failed.count():
                    raise AssertionError(f"the page says: {failed.first.inner_text()}")
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"the page stayed at step {now} for {STEP_TIMEOUT_MS // 1000} s after "
                        f"Step; it shows {self.state()}"
                    )
                if not button.count() and time.monotonic() > clicked + 30:  # (not a redraw)
                    raise AssertionError(f"the Step button is gone; the page shows {self.state()}")
                try:
                    idle = not busy.count() and button.is_enabled(timeout=1_000)
                except PlaywrightTimeout:  # gone a moment while the page redraws
                    idle = False
                if idle and time.monotonic() > clicked + 10:
                    button.click(timeout=STEP_TIMEOUT_MS)
                    clicked = time.monotonic()
                time.sleep(0.2)

    def press_until(self, button: str, shown, tries: int = 5) -> None:
        """Press ``button`` until ``shown`` (a locator) appears: a page that redraws
        several times a second (a world playing) can lose a click, as a person would
        notice and click again; under load it may answer late (waits of 5, 10, … s)."""
        pressed = self.page.get_by_role("button", name=button)
        for attempt in range(tries):
            try:
                pressed.click(timeout=10_000)
            except Exception:  # noqa: BLE001 - not clicked within 10 s
                if not pressed.count():  # no such button: say what the page shows
                    raise AssertionError(
                        f"no {button} button; the page shows {self.state()}"
                    ) from None
                continue  # there, but redrawn under the click for 10 s: press again
            try:  # more patience each time: a page busy redrawing answers late
                shown.first.wait_for(timeout=5_000 * (attempt + 1))
                return
            except Exception:  # noqa: BLE001 - not yet: press again
                continue
        raise AssertionError(f"pressing {button} {tries} times did not show {shown}")

    def wait_step(self, at_least: int, timeout: float = STEP_TIMEOUT_MS / 1000) -> int:
        """Wait until the page shows step ``at_least`` or later (while playing)."""
        deadline = time.monotonic() + timeout
        while (now := self.shown_step()) < at_least:
            if time.monotonic() > deadline:
                raise AssertionError(f"the page stayed at step {now}, not {at_least}")
            time.sleep(0.3)
        return now

    def state(self) -> str:
        """One line of what the page shows: step, busy, error and the Play/Pause button."""
        found = self.page.get_by_text("· running").or_(self.page.get_by_text("· finished"))
        parts = [found.first.inner_text() if found.count() else "no step"]
        for what in ("stepping…", "playing…", "building the arms…"):
            if self.page.get_by_text(what).count():
                parts.append(what)
        failed = self.page.locator(".v-alert.error")
        if failed.count():
            parts.append(f"error: {failed.first.inner_text().strip()}")
        parts += [name for name in ("Play", "Pause")
                  if self.page.get_by_role("button", name=name).count()]  # fmt: skip
        return "; ".join(parts)

    def shown_step(self) -> int:
        found = self.page.get_by_text("· running").or_(self.page.get_by_text("· finished"))
        if found.count() == 0:
            return 0
        return int(found.first.inner_text().split()[1])

    def marks(self, chart_title: str) -> list[str]:
        """The aria-labels of the marks (points, bars, rules) of the chart titled
        ``chart_title``, each naming its values (e.g. ``step: 3; value: 0.71; group:
        black``); a line or an area names only its first point and is left out."""
        return self.page.evaluate(
            """title => [...document.querySelectorAll('svg')]
                .filter(s => [...s.querySelectorAll('[aria-label]')].some(
                    e => (e.getAttribute('aria-label') || '').includes("Title text '" + title)))
                .flatMap(s => [...s.querySelectorAll('[aria-roledescription]')]
                    .filter(e => !/container|axis|legend|title|line mark|area mark/.test(
                        e.getAttribute('aria-roledescription')))
                    .map(e => e.getAttribute('aria-label')))""",
            chart_title,
        )

    def wait_marks(self, title: str, ready, timeout: float = 60.0) -> list[dict[str, str]]:
        """The marks' values of a chart once ``ready(values)`` holds (charts redraw a
        moment after the numbers beside them change)."""
        deadline = time.monotonic() + timeout
        while True:
            found = values(self.marks(title))
            if ready(found) or time.monotonic() > deadline:
                return found
            time.sleep(0.3)

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
