"""Helpers shared by the test suite."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(check: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll until ``check`` returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # the condition may raise while the system settles
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_exc})" if last_exc else "")
    )


def incidentctl(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real command line, as an operator would."""
    return subprocess.run(
        [sys.executable, "-m", "incidentctl", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def db(lab, name: str, role: str = "app", database: str | None = "shop"):
    """A TCP login to one lab database as one of the lab's accounts."""
    import pymysql
    from incidentlab.config import DB_USERS, HOST

    return pymysql.connect(
        host=HOST,
        port=lab.cfg.ports[name],
        user=DB_USERS[role],
        password=lab.secrets()[role],
        database=database,
        autocommit=True,
        connect_timeout=2,
    )


def scalar(conn, sql: str, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()[0]
