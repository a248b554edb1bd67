# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The skeleton every module of this collection shares.

A module builds its argument spec, then hands one function to :func:`run`. Expected
failures are raised as :class:`ModuleFailure`, which carries the partial result (what
was checked or done before the failure), so a timeout still says how far it got.
"""

from __future__ import annotations

import time
import traceback
from concurrent.futures import ThreadPoolExecutor


class ModuleFailure(Exception):
    """An expected failure: ``msg`` says what was wrong and what to do; ``result`` is the partial result."""

    def __init__(self, msg, **result):
        super().__init__(msg)
        self.msg = msg
        self.result = result


def run(module, fn):
    """Call ``fn(module)`` and turn its result, or its ModuleFailure, into the module's answer."""
    try:
        result = fn(module)
    except ModuleFailure as exc:
        module.fail_json(msg=exc.msg, **exc.result)
    except Exception as exc:  # an unexpected bug: still a clear message, with the traceback kept apart
        module.fail_json(msg=f"unexpected error: {type(exc).__name__}: {exc}", exception=traceback.format_exc())
    module.exit_json(**result)


def bounded_map(fn, items, max_workers):
    """``fn`` over ``items`` with at most ``max_workers`` at once, results in input order.

    The modules do one runbook step over all its targets in one task; the pool keeps the
    step as long as its slowest target, not the sum of all of them.
    """
    items = list(items)
    if not items:
        return []
    workers = max(1, min(int(max_workers), len(items)))
    if workers == 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


class Deadline:
    """A wait budget: ``remaining()`` seconds left, ``expired`` once it is spent."""

    def __init__(self, seconds):
        self.seconds = float(seconds)
        self.start = time.monotonic()

    def elapsed(self):
        return time.monotonic() - self.start

    def remaining(self):
        return max(0.0, self.seconds - self.elapsed())

    @property
    def expired(self):
        return self.elapsed() >= self.seconds

    def cap(self, seconds):
        """The timeout of one attempt: ``seconds``, or what is left of the budget when that is less."""
        return min(float(seconds), self.remaining())

    @property
    def spent(self):
        """Too little left to start an attempt: it could only time out."""
        return self.remaining() < MIN_ATTEMPT


# An attempt is not started with less than this left of its step's deadline.
MIN_ATTEMPT = 0.05


def cap(deadline, seconds):
    """``seconds`` for one attempt, cut to a step's deadline (a Deadline, or None for no deadline)."""
    return float(seconds) if deadline is None else deadline.cap(seconds)


def timed_out_text(seconds, detail=None):
    """How every probe says that it got no answer in time, with the seconds it waited."""
    return f"not answering (timed out after {seconds:.1f} s" + (f", {detail})" if detail else ")")


def check_deadline(value):
    """A ModuleFailure for a deadline that is not a positive number of seconds."""
    if value is not None and not value > 0:
        raise ModuleFailure(f"deadline must be a positive number of seconds for the whole task, got {value}")


def check_numbers(params, non_negative=(), positive=()):
    """Options that must be >= 0 or >= 1, checked before anything is read or changed (a wait_timeout of -1
    must not restart a service before the module notices)."""
    for name in non_negative:
        if params.get(name) is not None and params[name] < 0:
            raise ModuleFailure(f"{name} must be 0 or more, got {params[name]}")
    for name in positive:
        if params.get(name) is not None and params[name] < 1:
            raise ModuleFailure(f"{name} must be at least 1, got {params[name]}")
