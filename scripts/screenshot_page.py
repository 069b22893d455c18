"""The README's pictures of the analyst page, taken in headless Chromium on the embedded
MiniLM: the Watch tab (the hiring market, a biased-history card with and without name
redaction, played to its end) and the Compare tab (a result folder's comparison of
interventions).

    python scripts/screenshot_page.py [--results results] \
        [--compare results/compare_interventions/compare_hiring] [--to docs/page] \
        [--only watch|compare]

Needs the page and test extras (``pip install -e '.[page,test]'``) and Debian's
chromium; the compare folder comes from ``uim-sim run
scenarios/compare_interventions.yaml --out results/compare_interventions``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--compare", type=Path,
                        default=Path("results/compare_interventions/compare_hiring"))  # fmt: skip
    parser.add_argument("--to", type=Path, default=Path("docs/page"))
    parser.add_argument("--only", choices=("watch", "compare"), default=None)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from page_driver import Driver, chromium, page_server  # test tooling, not the package

    if not (args.compare / "runs.parquet").is_file():
        print(f"error: {args.compare}: no runs.parquet (run the comparison first)", file=sys.stderr)
        return 2
    start = time.monotonic()
    with page_server(args.results) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        if args.only != "compare":
            watch = Driver(browser.new_page(viewport={"width": 1400, "height": 1000}), url)
            watch.untick("mitigations B", ["group_thresholds"])
            watch.choose_many("mitigations B", ["name_redaction"])
            watch.page.get_by_role("button", name="Play").click()
            watch.wait_step(8, timeout=900)
            watch.page.get_by_text("· finished").wait_for(timeout=60_000)
            watch.page.wait_for_timeout(3000)
            watch.screenshot(args.to / "watch.png", height=2300)
        if args.only != "watch":
            compare = Driver(browser.new_page(viewport={"width": 1400, "height": 1000}), url)
            compare.tab("Compare")
            compare.choose("result folder", str(args.compare.resolve()))
            shown = compare.page.get_by_text("Interventions against no mitigation")
            shown.wait_for(timeout=300_000)
            compare.page.wait_for_timeout(4000)
            compare.screenshot(args.to / "compare.png", height=2300)
        browser.close()
    shots = [f"{args.to / name}.png" for name in ("watch", "compare") if args.only in (None, name)]
    print(f"→ {', '.join(shots)} ({time.monotonic() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
