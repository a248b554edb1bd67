"""The shared module skeleton's pure helpers."""

from __future__ import annotations

import threading
import time

from ansible_collections.incident.response.plugins.module_utils.common import Deadline, bounded_map


def test_bounded_map_keeps_input_order_and_runs_concurrently():
    active, peak, lock = [0], [0], threading.Lock()

    def work(i):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        return i * 2

    assert bounded_map(work, range(8), max_workers=4) == [0, 2, 4, 6, 8, 10, 12, 14]
    assert peak[0] == 4


def test_deadline_expires():
    d = Deadline(0.01)
    assert not d.expired
    time.sleep(0.02)
    assert d.expired and d.remaining() == 0.0
