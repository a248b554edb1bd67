"""Debian's Chromium, headless, driven over the DevTools protocol (websocket-client, from the lock).

Nothing here downloads a browser: it runs the `chromium` that scripts/bootstrap installs from
Debian and talks to it on a loopback port. Enough of the protocol for the report's tests and
its benchmark: load a page, evaluate JavaScript, click, read console errors, take a screenshot.

    with Chromium(tmp_path) as browser:
        page = browser.open(Path("report.html").as_uri())
        assert page.errors() == []
        page.screenshot(tmp_path / "report.png")
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import websocket

CHROMIUM_NAMES = ("chromium", "chromium-browser")


def chromium_path() -> str | None:
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


class BrowserError(Exception):
    pass


class Page:
    """One tab: commands by id, events kept as they arrive."""

    def __init__(self, ws_url: str, timeout: float):
        self.timeout = timeout
        # Chromium refuses DevTools websockets with an Origin it was not told to allow.
        self.ws = websocket.create_connection(ws_url, timeout=timeout, suppress_origin=True)
        self.events: list[dict] = []
        self._id = 0
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")

    def send(self, method: str, **params) -> dict:
        self._id += 1
        ident = self._id
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == ident:
                if "error" in msg:
                    raise BrowserError(f"{method}: {msg['error']}")
                return msg.get("result") or {}
            if "method" in msg:
                self.events.append(msg)
        raise BrowserError(f"{method}: no answer within {self.timeout}s")

    def wait_event(self, method: str) -> dict:
        seen = next((e for e in self.events if e["method"] == method), None)
        deadline = time.monotonic() + self.timeout
        while seen is None and time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == method:
                    seen = msg
        if seen is None:
            raise BrowserError(f"no {method} within {self.timeout}s")
        return seen

    def navigate(self, url: str) -> None:
        self.events.clear()
        res = self.send("Page.navigate", url=url)
        if res.get("errorText"):
            raise BrowserError(f"cannot load {url}: {res['errorText']}")
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str):
        res = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if res.get("exceptionDetails"):
            raise BrowserError(f"{expression[:80]}: {res['exceptionDetails'].get('text')}")
        return (res.get("result") or {}).get("value")

    def errors(self) -> list[str]:
        """Uncaught exceptions, console.error calls and the browser's own error log (CSP, failed loads)."""
        out = []
        for e in self.events:
            p = e.get("params") or {}
            if e["method"] == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails") or {}
                out.append(f"exception: {d.get('text')} {(d.get('exception') or {}).get('description', '')}")
            elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in p.get("args", [])))
            elif e["method"] == "Log.entryAdded" and (p.get("entry") or {}).get("level") == "error":
                out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        return out

    def screenshot(self, path: Path, width: int = 1200, top: int = 0, height: int | None = None) -> Path:
        """The page as a PNG: all of it, or ``height`` pixels from ``top``."""
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1, mobile=False)
        full = int(self.evaluate("document.documentElement.scrollHeight"))
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=full, deviceScaleFactor=1, mobile=False)
        clip = {"x": 0, "y": top, "width": width, "height": min(height or full, full - top), "scale": 1}
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def pdf(self, path: Path) -> Path:
        data = self.send("Page.printToPDF", printBackground=True, preferCSSPageSize=False)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        self.ws.close()


class Chromium:
    """A headless Chromium with a profile of its own in ``workdir``, on a loopback DevTools port."""

    def __init__(self, workdir: Path, timeout: float = 30):
        self.workdir = Path(workdir)
        self.timeout = timeout
        self.proc: subprocess.Popen | None = None
        self.log = None
        self.port = 0

    def __enter__(self) -> Chromium:
        exe = chromium_path()
        if not exe:
            raise BrowserError("chromium is not installed: scripts/bootstrap installs Debian's package")
        profile = self.workdir / "chromium-profile"
        profile.mkdir(parents=True, exist_ok=True)
        active = profile / "DevToolsActivePort"
        active.unlink(missing_ok=True)  # a previous browser's port
        self.log = open(self.workdir / "chromium.log", "wb")
        self.proc = subprocess.Popen(
            [
                exe,
                "--headless",
                "--no-sandbox",  # root in CI; the pages are our own files
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            start_new_session=True,  # its helper processes go with it (see __exit__)
        )
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrowserError(f"chromium exited with {self.proc.returncode}; see {self.workdir / 'chromium.log'}")
            text = active.read_text() if active.exists() else ""
            if text.strip():
                self.port = int(text.split()[0])
                return self
            time.sleep(0.05)
        self.__exit__(None, None, None)
        raise BrowserError(f"chromium did not open its DevTools port within {self.timeout}s")

    def open(self, url: str) -> Page:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?about:blank", method="PUT")
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            target = json.load(resp)
        page = Page(target["webSocketDebuggerUrl"], self.timeout)
        page.navigate(url)
        return page

    def __exit__(self, *exc) -> None:
        if self.proc:
            # the browser and its zygote, renderer and crash handler: the session this browser leads
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            deadline = time.monotonic() + 10
            while _group_alive(self.proc.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        if self.log:
            self.log.close()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
