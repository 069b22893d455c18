"""The analyst page (`uim-sim page`): a Solara app to **watch** a world run, two arms
side by side on the same seed, and to **compare** the results of a batch interactively.

- `watch`: what the Watch tab can pick and the two arms it steps (no web code).
- `results`: a result folder read back for the Compare tab (no web code).
- `charts`: the interactive (Altair / Vega-Lite) charts of both tabs.
- `app`: the Solara components; `serve` runs them (uvicorn, Solara's Starlette app).

Works offline: the page's JavaScript (Vue, Vuetify, Vega) comes from the
``solara-assets`` package, served by Solara's asset proxy from a folder this module
prepares (the Vega libraries under the names Solara's chart widget asks for).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def check_installed() -> str | None:
    """Why the page cannot run here (None: it can)."""
    missing = [m for m in ("solara", "altair", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        return f"the page needs {', '.join(missing)}: pip install 'uim-sim[page]'"
    if not (Path(sys.prefix) / "share" / "solara" / "cdn").is_dir():
        return "the page needs solara-assets (offline JavaScript): pip install 'uim-sim[page]'"
    return None


def asset_folder(scratch: Path) -> Path:
    """Solara's asset-proxy folder for this server: every folder ``solara-assets``
    installed, linked, and each ``NAME@X.Y.Z`` also as ``NAME@X`` (Solara's Vega-Lite
    widget asks for ``vega@5``, ``vega-lite@5``, ``vega-embed@6``; the proxy would
    fetch those from a CDN, which this machine may not reach)."""
    installed = Path(sys.prefix) / "share" / "solara" / "cdn"
    folder = Path(scratch) / "cdn"
    folder.mkdir(parents=True, exist_ok=True)
    entries = sorted(installed.iterdir()) if installed.is_dir() else []
    for entry in entries:
        names = [entry.name]
        name, at, version = entry.name.rpartition("@")
        if at and name and version[:1].isdigit():
            names.append(f"{name}@{version.split('.')[0]}")
        for alias in names:
            link = folder / alias
            if not link.exists():
                link.symlink_to(entry, target_is_directory=True)
    return folder


def serve(results: Path, host: str = "127.0.0.1", port: int = 8765,
          agents_dir: Path | None = None) -> None:  # fmt: skip
    """Serve the page until interrupted."""
    scratch = Path(tempfile.mkdtemp(prefix="uim-page-"))
    os.environ.update(
        {
            "SOLARA_APP": "uim_sim.page.app",
            "SOLARA_ASSETS_PROXY_CACHE_DIR": str(asset_folder(scratch)),
            "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False",
            "SERVER_NAME": host,
            "SERVER_PORT": str(port),
            "UIM_SIM_PAGE_RESULTS": str(Path(results).resolve()),
            "UIM_SIM_PAGE_SCRATCH": str(scratch),
        }
    )
    if agents_dir is not None:
        os.environ["UIM_SIM_PAGE_AGENTS"] = str(Path(agents_dir).resolve())
    if "solara.server.settings" in sys.modules:  # read its environment at import
        settings = sys.modules["solara.server.settings"]
        settings.assets.proxy_cache_dir = Path(os.environ["SOLARA_ASSETS_PROXY_CACHE_DIR"])
        settings.telemetry.mixpanel_enable = False
    from uim_sim.page.watch import write_default_cards

    write_default_cards(scratch)
    import uvicorn

    uvicorn.run("solara.server.starlette:app", host=host, port=port, log_level="warning",
                ws_max_size=64 * 2**20)  # fmt: skip
