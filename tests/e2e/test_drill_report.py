"""The report of a real drill (db-primary-down on a lab of its own), opened in Debian's headless chromium.

The screenshot is kept as a test artifact: <pytest's tmp dir>/test_the_drill_s_report_*/report.png
(pytest keeps the last three runs' directories; `pytest --basetemp DIR` puts them in DIR).
"""

from __future__ import annotations

import json
from pathlib import Path

from browser import Chromium
from incidentctl import report
from incidentctl.record import Incident
from incidentlab.monitoring import http_json
from support import incidentctl, wait_for

VISIBLE_ROWS = "Array.from(document.querySelectorAll('#timeline-table tbody tr')).filter(r => !r.hidden)"


def _replica_lag_scraped(lab) -> bool:
    """Prometheus has the replica's lag: the window then shows it before the fault, as on a platform."""
    url = lab.cfg.url("prometheus", "/api/v1/query?query=mysql_replica_seconds_behind_source")
    return bool(http_json(url)["data"]["result"])


def test_the_drill_s_report_shows_every_metric_and_every_change_and_its_filters_work(own_lab, ctl_env, tmp_path):
    wait_for(lambda: _replica_lag_scraped(own_lab), 60, "Prometheus to scrape the replica's lag")
    own_lab.break_fault("db-primary-down")
    res = incidentctl("respond", "--inventory", "lab", "--json", "--yes", env=ctl_env, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    inc = Incident.open(Path(ctl_env["INCIDENTCTL_INCIDENTS_DIR"]), json.loads(res.stdout)["incident"])

    # respond wrote the page into the record, and said so in the timeline
    page_file = inc.path / "report.html"
    assert any(e.get("kind") == "report written" and str(page_file) in e["message"] for e in inc.timeline())
    assert page_file.stat().st_size < 2_000_000
    changes = [
        e
        for e in inc.timeline()
        if e.get("source") == "ansible" and e["changed"] and not e["failed"] and e["run"] == "01-respond"
    ]
    modules = [e["module"].rsplit(".", 1)[-1] for e in changes]
    assert {"mysql_promote", "config_patch", "incident_notify"} <= set(modules), modules

    with Chromium(tmp_path / "browser") as browser:
        page = browser.open(page_file.as_uri())
        assert page.errors() == []

        plots = page.evaluate(
            "Array.from(document.querySelectorAll('svg.plot')).map(s => ({metric: s.dataset.metric,"
            " points: +s.dataset.points, changes: Array.from(s.querySelectorAll('.marker.change title'))"
            ".map(t => t.textContent)}))"
        )
        assert [p["metric"] for p in plots] == [s.metric for s in report.PLOT_SPECS]
        assert all(p["points"] > 0 for p in plots), plots
        # one marker per change the procedure made, in order, its hover text the step's one-line message
        want = [f"{report._clock(e['ts'])} {m}: {e['summary']}" for e, m in zip(changes, modules, strict=True)]
        assert all(p["changes"] == want for p in plots), (plots[0]["changes"], want)

        # the filters, clicked as a person would
        total = page.evaluate(f"{VISIBLE_ROWS}.length")
        assert total == len(inc.timeline()) - 1  # all but the line that says the page was written
        page.evaluate("document.getElementById('f-changed').click()")
        shown = page.evaluate(
            f"{VISIBLE_ROWS}.map(r => [r.dataset.run, r.cells[3].textContent, r.cells[6].textContent])"
        )
        changed = [e for e in inc.timeline() if e.get("source") == "ansible" and e["changed"] and not e["failed"]]
        assert shown == [[e["run"], e["task"], "changed"] for e in changed]
        page.evaluate(
            "const s = document.getElementById('f-run'); s.value = '01-respond';"
            " s.dispatchEvent(new Event('change')); undefined"
        )
        assert page.evaluate(f"{VISIBLE_ROWS}.map(r => r.cells[3].textContent)") == [e["task"] for e in changes]
        page.evaluate("document.getElementById('f-changed').click(); undefined")
        runs = page.evaluate(f"{VISIBLE_ROWS}.map(r => r.dataset.run)")
        assert runs and set(runs) == {"01-respond"}

        page.evaluate("document.getElementById('f-run').value = ''; document.getElementById('f-run')"
                      ".dispatchEvent(new Event('change')); undefined")  # fmt: skip
        shot = page.screenshot(tmp_path / "report.png")
        print(f"screenshot of the drill's report: {shot}")
    assert shot.stat().st_size > 50_000
