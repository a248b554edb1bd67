"""The shared module skeleton's pure helpers."""

from __future__ import annotations

import threading

from ansible_collections.incident.response.plugins.module_utils import common
from ansible_collections.incident.response.plugins.module_utils.common import Deadline, bounded_map


def test_bounded_map_keeps_input_order_and_runs_concurrently():
    # Each call waits until four are running at once: only a pool that runs four concurrently gets through.
    together = threading.Barrier(4)
    active, peak, lock = [0], [0], threading.Lock()

    def work(i):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        together.wait(timeout=30)
        with lock:
            active[0] -= 1
        return i * 2

    assert bounded_map(work, range(8), max_workers=4) == [0, 2, 4, 6, 8, 10, 12, 14]
    assert peak[0] == 4  # and never more than the bound


class FakeClock:
    """time.monotonic for common.Deadline, moved by the test instead of by the machine."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def monotonic(self) -> float:
        return self.now


def test_deadline_counts_down_and_expires(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(common, "time", clock)
    d = Deadline(5)
    assert not d.expired and d.remaining() == 5.0
    clock.now += 4.5
    assert not d.expired and d.remaining() == 0.5 and d.elapsed() == 4.5
    clock.now += 0.5
    assert d.expired and d.remaining() == 0.0
    clock.now += 10
    assert d.expired and d.remaining() == 0.0  # never negative
