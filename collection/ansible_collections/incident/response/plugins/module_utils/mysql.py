# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""MySQL/MariaDB connections for the collection's modules.

The login options are shared by every database module (doc fragment
``incident.response.mysql``). Connection failures become :class:`ModuleFailure` with
a message that names the server and says what to check.
"""

from __future__ import annotations

import ssl
import threading
import time
import traceback

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.incident.response.plugins.module_utils.common import ModuleFailure, timed_out_text

try:
    import pymysql
    import pymysql.connections

    HAS_PYMYSQL = True
    PYMYSQL_IMPORT_ERROR = None
except ImportError:
    HAS_PYMYSQL = False
    PYMYSQL_IMPORT_ERROR = traceback.format_exc()

_PREFERRED_TLS = []
_PREFERRED_TLS_LOCK = threading.Lock()

if HAS_PYMYSQL:

    class Connection(pymysql.connections.Connection):
        """pymysql's connection, with one TLS context per process for its PREFERRED mode.

        Given no TLS option, pymysql uses TLS when the server offers it, with a context that verifies nothing (no
        CA: no certificate or hostname check), and builds that context - loading every CA certificate, 25-100 ms
        of CPU under the GIL - for every connection: a promotion's or a triage's connections paid it each. Here
        the context is built once per process, as pymysql builds it but without the CA store, which a context that
        verifies nothing never reads: what is verified does not change.
        """

        def _create_ssl_ctx(self, sslp):
            if sslp != {}:  # TLS options given: pymysql's own context for them
                return super()._create_ssl_ctx(sslp)
            with _PREFERRED_TLS_LOCK:
                if not _PREFERRED_TLS:
                    _PREFERRED_TLS.append(unverified_tls_context())
                return _PREFERRED_TLS[0]

    def unverified_tls_context():
        """pymysql's context for sslp={} (no CA given: CERT_NONE, no hostname check), without loading CAs."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.verify_flags &= ~ssl.VERIFY_X509_STRICT
        ctx.options |= ssl.OP_NO_SSLv2 | ssl.OP_NO_SSLv3
        return ctx


def login_argument_spec():
    """Options of the ``incident.response.mysql`` doc fragment."""
    return dict(
        login_host=dict(type="str", default="127.0.0.1"),
        login_port=dict(type="int", default=3306),
        login_user=dict(type="str", required=True),
        login_password=dict(type="str", no_log=True, default=""),
        login_unix_socket=dict(type="path"),
        connect_timeout=dict(type="float", default=5.0),
    )


def login_suboptions(required_user=False):
    """The login options as suboptions of a nested server entry (user and password default to the task's)."""
    spec = login_argument_spec()
    for key in ("login_host", "login_port", "login_user", "login_password", "connect_timeout"):
        spec[key] = dict(spec[key])
        spec[key].pop("default", None)
        spec[key]["required"] = False
    spec["login_user"]["required"] = required_user
    return spec


def merge_login(params, entry):
    """Login parameters for a nested server entry: its own values, else the task's."""
    merged = {key: params.get(key) for key in login_argument_spec()}
    for key, value in (entry or {}).items():
        if key in merged and value is not None:
            merged[key] = value
    if (entry or {}).get("login_host") is not None and (entry or {}).get("login_unix_socket") is None:
        merged["login_unix_socket"] = None  # a host given for the entry wins over the task's socket
    return merged


def require_pymysql(module):
    if not HAS_PYMYSQL:
        module.fail_json(msg=missing_required_lib("PyMySQL"), exception=PYMYSQL_IMPORT_ERROR)


def describe_target(params):
    if params.get("login_unix_socket"):
        return f"socket {params['login_unix_socket']}"
    return f"{params['login_host']}:{params['login_port']}"


# Client and server error numbers that an operator can act on.
_HINTS = {
    1045: "access denied: check login_user and login_password",
    1044: "access denied to the database: grant the login user the privileges it needs",
    1227: "the login user lacks a privilege this step needs (for example REPLICATION SLAVE ADMIN or SUPER)",
    1040: "the server refuses new connections (too many connections): it is alive but saturated",
    1290: "the server runs with read_only: writes need a primary, or a login that may bypass read_only",
    2003: "cannot connect: is the server running and reachable on that address?",
    2005: "unknown host: check login_host (DNS)",
    2006: "the server went away: it may have crashed or restarted",
    2013: "the connection was lost during the query: the server may have crashed or a timeout hit",
}

# Errors that mean "no server answers there" (as opposed to "a server answered and said no").
UNREACHABLE_ERRORS = (2002, 2003, 2005, 2006, 2013)


# Reads and writes of a connection without a step deadline (the server answered the login, so it is alive).
DEFAULT_IO_TIMEOUT = 30.0


class ConnectFailure(ModuleFailure):
    """connect() could not log in. ``unreachable`` is True when no server answered (down, refused, timeout);
    ``timed_out`` when it did not answer in time (a hung server, a partition), as opposed to refused."""

    def __init__(self, msg, code=None, unreachable=False, timed_out=False, **result):
        super().__init__(msg, **result)
        self.code = code
        self.unreachable = unreachable
        self.timed_out = timed_out


def is_timeout(exc):
    """A pymysql error that means "no answer in time": the connect, the greeting or a read timed out."""
    original = getattr(exc, "original_exception", None)
    if isinstance(original, TimeoutError):
        return True
    text = str(exc.args[-1]) if getattr(exc, "args", None) else ""
    return error_code(exc) in (2003, 2013) and "timed out" in text


def explain(exc, params):
    """One line for a pymysql error, naming the server."""
    code = error_code(exc)
    text = exc.args[-1] if exc.args else str(exc)
    hint = _HINTS.get(code)
    where = describe_target(params)
    return f"{where}: {hint} ({code}: {text})" if hint else f"{where}: {type(exc).__name__} {code}: {text}"


def connect(params, timeout=None, database=None, deadline=None):
    """An autocommit connection with dict rows; ModuleFailure when it cannot log in.

    Connecting (TCP, the server's greeting, the login) waits at most the connect timeout: PyMySQL
    reads the greeting under ``read_timeout``, not ``connect_timeout``, so both are set to it, or a
    hung server would hold every connection for the read timeout. With ``deadline`` (a
    common.Deadline for the whole step) the connect waits at most what is left of it, and the
    connection's reads and writes are then bounded by the rest (see :func:`bound_io`).
    """
    connect_timeout = float(timeout if timeout is not None else params.get("connect_timeout") or 5.0)
    if deadline is not None:
        if deadline.spent:
            raise ConnectFailure(
                f"{describe_target(params)}: {timed_out_text(deadline.elapsed())}: the step's deadline was spent "
                "before it could be asked",
                code=None,
                unreachable=True,
                timed_out=True,
                target=describe_target(params),
            )
        connect_timeout = deadline.cap(connect_timeout)
    kwargs = dict(
        user=params["login_user"],
        password=params.get("login_password") or "",
        connect_timeout=connect_timeout,
        read_timeout=connect_timeout,
        write_timeout=connect_timeout,
        autocommit=True,
        cursorclass=pymysql.cursors.DictCursor,
        database=database,
    )
    if params.get("login_unix_socket"):
        kwargs["unix_socket"] = params["login_unix_socket"]
    else:
        kwargs["host"] = params["login_host"]
        kwargs["port"] = params["login_port"]
    start = time.monotonic()
    try:
        conn = Connection(**kwargs)
    except pymysql.MySQLError as exc:
        code = error_code(exc)
        if is_timeout(exc):
            raise ConnectFailure(
                f"{describe_target(params)}: {timed_out_text(time.monotonic() - start)}",
                code=code,
                unreachable=True,
                timed_out=True,
                target=describe_target(params),
            ) from None
        raise ConnectFailure(
            explain(exc, params), code=code, unreachable=code in UNREACHABLE_ERRORS, target=describe_target(params)
        ) from None
    bound_io(conn, deadline)
    return conn


def bound_io(conn, deadline=None):
    """Bound the connection's next reads and writes: by what is left of ``deadline``, else DEFAULT_IO_TIMEOUT.

    PyMySQL has no public setter; it applies ``_read_timeout``/``_write_timeout`` to the socket before
    each packet, so setting them before a statement bounds that statement. Returns False when the
    deadline is spent (the statement should not be sent).
    """
    seconds = DEFAULT_IO_TIMEOUT
    if deadline is not None:
        if deadline.spent:
            return False
        seconds = deadline.remaining()
    conn._read_timeout = conn._write_timeout = seconds  # pylint: disable=protected-access
    return True


def error_code(exc):
    return exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
