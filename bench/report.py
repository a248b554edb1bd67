#!/usr/bin/env python3
"""Benchmark: the incident report of a record, written and rendered.

For an incident record (the drill's: ``incidents/INC-...``), it measures:

* the time ``incidentctl report`` takes to prepare and write ``report.html`` (in-process, median of ``--repeat``);
* the page's size, and how much of it the plots' SVG takes;
* how long Debian's headless chromium takes to show it from a ``file://`` URL: the navigation's
  DOMContentLoaded and load events, and the second animation frame after load, when the page has
  been painted, and the renderer's work by kind (DevTools' Performance metrics), median of
  ``--repeat`` fresh tabs.

    .venv/bin/python bench/report.py incidents/INC-20261205-082001-abcd
    .venv/bin/python bench/report.py incidents/INC-... --repeat 5

A report, not a test: it prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests")]

from browser import Chromium  # noqa: E402
from incidentctl import report  # noqa: E402
from incidentctl.record import Incident  # noqa: E402

# ms since the navigation started: DOMContentLoaded, load, and the second frame drawn after load
# (headless chromium records no paint timing entries; two animation frames mean a frame was painted)
TIMING = (
    "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => {"
    " const n = performance.getEntriesByType('navigation')[0];"
    " r([n.domContentLoadedEventEnd, n.loadEventEnd, performance.now()]); })))"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("record", type=Path, help="an incident record directory (incidents/INC-...)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    inc = Incident.open(args.record.parent.absolute(), args.record.name)

    writes = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        path = report.write(inc)
        writes.append(time.perf_counter() - start)
    page = path.read_text()
    svg = sum(len(m) for m in re.findall(r"<svg data-points.*?</svg>", page, re.S))
    points = sum(int(n) for n in re.findall(r'<svg data-points="(\d+)"', page))

    loads, work = [], []
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp, Chromium(Path(tmp)) as browser:
        for _ in range(args.repeat):
            tab = browser.open("about:blank")
            tab.send("Page.bringToFront")  # a tab in the background is not painted
            tab.send("Performance.enable")
            tab.navigate(path.as_uri())
            loads.append(tab.evaluate(TIMING))
            metrics = {m["name"]: m["value"] for m in tab.send("Performance.getMetrics")["metrics"]}
            work.append([metrics.get(k, 0) * 1000 for k in ("TaskDuration", "LayoutDuration", "ScriptDuration")])
            errors = tab.errors()
            tab.close()

    def med(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else float("nan")

    print(f"record: {inc.path}")
    print(f"write report.html: {med(writes) * 1000:.0f} ms (min {min(writes) * 1000:.0f}, median of {args.repeat})")
    print(f"page: {len(page.encode()) / 1024:.0f} KiB, of which plots {svg / 1024:.0f} KiB ({points} points drawn)")
    dcl, load, painted = (med(x[i] for x in loads) for i in range(3))
    print(
        f"chromium, file://: DOMContentLoaded {dcl:.0f} ms, load {load:.0f} ms, painted {painted:.0f} ms "
        f"(median of {len(loads)})"
    )
    task, layout, script = (med(x[i] for x in work) for i in range(3))
    print(f"renderer's work: {task:.0f} ms, of which layout {layout:.0f} ms, script {script:.0f} ms")
    print(f"console errors: {len(errors)}")


if __name__ == "__main__":
    main()
