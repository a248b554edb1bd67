"""Which errors mean "no answer in time" (a hung server), as opposed to refused or down."""

from __future__ import annotations

import pymysql
import pytest
from ansible.module_utils.six.moves.urllib.error import URLError

from ansible_collections.incident.response.plugins.module_utils import mysql, web


@pytest.mark.parametrize(
    ("exc", "timed_out"),
    [
        (pymysql.err.OperationalError(2003, "Can't connect to MySQL server on '10.0.0.5' (timed out)"), True),
        (pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query (timed out)"), True),
        (
            pymysql.err.OperationalError(2003, "Can't connect to MySQL server on 'h' ([Errno 111] Connection refused)"),
            False,
        ),
        (pymysql.err.OperationalError(1045, "Access denied for user 'x'@'h' (using password: YES)"), False),
    ],
)
def test_mysql_timeouts(exc, timed_out):
    assert mysql.is_timeout(exc) is timed_out


def test_a_connect_error_wrapping_a_socket_timeout_is_a_timeout():
    exc = pymysql.err.OperationalError(2003, "Can't connect to MySQL server on 'h' (whatever the text)")
    exc.original_exception = TimeoutError("timed out")
    assert mysql.is_timeout(exc)


def test_http_timeouts():
    assert web.is_timeout(TimeoutError("timed out"))
    assert web.is_timeout(URLError(TimeoutError("timed out")))
    assert not web.is_timeout(URLError(ConnectionRefusedError(111, "Connection refused")))


def test_a_spent_deadline_sends_no_login():
    from ansible_collections.incident.response.plugins.module_utils.common import Deadline

    deadline = Deadline(1)
    deadline.start -= 1
    params = dict(login_host="db.example", login_port=3306, login_user="u", login_password="p", connect_timeout=5)
    with pytest.raises(mysql.ConnectFailure) as failure:
        mysql.connect(params, deadline=deadline)
    assert failure.value.timed_out and failure.value.unreachable
    assert failure.value.msg.startswith("db.example:3306: not answering (timed out after 1.0 s)")
