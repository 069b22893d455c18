"""Open a report's index.html in headless Chromium, check that every figure shows,
and save a screenshot (the README's picture of a report).

Needs Playwright's Python client (`pip install playwright`, the `docs` extra) and a
Chromium binary: Debian's `chromium` package works (`apt-get install -y chromium`);
Playwright's own browser download is not needed.

    python scripts/screenshot_report.py results/compare_spread/report/index.html \
        docs/mitigate/report.png [--start "Interventions against no mitigation"]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--height", type=int, default=2400, help="clip of the full page")
    parser.add_argument("--start", default=None, help="clip from the heading with this text")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    if not args.page.is_file():
        print(f"error: {args.page}: no such file", file=sys.stderr)
        return 2
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": args.width, "height": 900})
        page.goto(args.page.resolve().as_uri())
        page.wait_for_load_state("load")
        images = page.eval_on_selector_all(
            "img", "els => els.map(e => [e.alt, e.complete && e.naturalWidth > 0])"
        )
        broken = [alt for alt, ok in images if not ok]
        args.png.parent.mkdir(parents=True, exist_ok=True)
        height = page.evaluate("document.body.scrollHeight")
        top = 0
        if args.start:
            box = page.get_by_role("heading", name=args.start).first.bounding_box()
            top = int(box["y"]) - 10 if box else 0
        page.screenshot(
            path=str(args.png),
            full_page=True,
            clip={"x": 0, "y": top, "width": args.width,
                  "height": min(height - top, args.height)},
        )  # fmt: skip
        browser.close()
    print(f"{len(images)} figure(s), {len(broken)} not showing; page {height} px → {args.png}")
    if broken:
        print(f"not showing: {broken}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
