"""Server-side helpers that need no server: statement display and the replica wait loop."""

from __future__ import annotations

import pytest

from ansible_collections.incident.response.plugins.module_utils import mysql_replication
from ansible_collections.incident.response.plugins.module_utils.mysql_flavors import MARIADB, Flavor
from ansible_collections.incident.response.plugins.module_utils.mysql_replication import display_sql, wait_replica


def test_display_sql_masks_secret_parameters_and_quotes_the_rest():
    sql = "CHANGE MASTER TO MASTER_HOST=%(host)s, MASTER_PORT=%(port)s, MASTER_PASSWORD=%(password)s"
    shown = display_sql(sql, dict(host="db'1", port=3306, password="s3cr3t"), secret=("password",))
    assert shown == "CHANGE MASTER TO MASTER_HOST='db\\'1', MASTER_PORT=3306, MASTER_PASSWORD='********'"
    assert display_sql("STOP REPLICA") == "STOP REPLICA"


class FakeReplica:
    """Answers state() from a script of (io, sql, applied, executed) tuples; the last one repeats."""

    flavor = Flavor(MARIADB, (10, 11, 0))

    def __init__(self, script):
        self.script = list(script)
        self.polls = 0

    def state(self):
        io, sql, applied, executed = self.script[min(self.polls, len(self.script) - 1)]
        self.polls += 1
        rep = dict(io_thread=io, sql_thread=sql, relay_log_applied=applied)
        return dict(replication=rep, gtid=dict(executed=executed))


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch):
    monkeypatch.setattr(mysql_replication, "POLL_INTERVAL", 0.001)


def test_wait_ends_as_soon_as_the_relay_log_is_applied():
    server = FakeReplica([("connecting", "running", False, "0-1-5")] * 3 + [("connecting", "running", True, "0-1-8")])
    _state, _waited, done = wait_replica(server, timeout=5)
    assert done and server.polls == 4


def test_wait_gives_up_at_once_when_the_sql_thread_is_stopped():
    server = FakeReplica([("running", "stopped", False, "0-1-5")])
    assert wait_replica(server, timeout=5)[2] is False
    assert server.polls == 1


def test_wait_for_a_target_follows_the_executed_position():
    server = FakeReplica([("running", "running", True, "0-1-5"), ("running", "running", True, "0-1-9")])
    assert wait_replica(server, timeout=5, target_gtid="0-1-9")[2] is True
    assert server.polls == 2


def test_wait_for_a_target_that_cannot_arrive_gives_up():
    server = FakeReplica([("stopped", "running", True, "0-1-5")])
    assert wait_replica(server, timeout=5, target_gtid="0-1-9")[2] is False
    assert server.polls == 1


def test_wait_respects_its_timeout():
    server = FakeReplica([("connecting", "running", False, "0-1-5")])
    _state, waited, done = wait_replica(server, timeout=0.05)
    assert not done and 0.05 <= waited < 1
