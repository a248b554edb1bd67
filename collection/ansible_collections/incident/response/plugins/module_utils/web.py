# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One HTTP client for the collection (health checks, Prometheus, notification APIs).

Built on Ansible's ``open_url`` (its ``Request``) so proxies, certificates and auth behave as in the
builtin modules. Never raises for an HTTP status: the caller decides what a status
means. Raises :class:`HttpError` only when there is no answer at all.
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.urls import Request, make_context

_CONTEXTS = {}
_CONTEXTS_LOCK = threading.Lock()


def tls_context(validate_certs=True):
    """One TLS context per process and setting, built as open_url would build it.

    open_url (and Request without a context) builds a new context (loading every CA certificate, ~25 ms of CPU
    under the GIL) for every request, even plain HTTP: 200 concurrent health checks would
    take 5 s of CPU instead of the 0.1 s the endpoints need.
    """
    key = bool(validate_certs)
    with _CONTEXTS_LOCK:
        if key not in _CONTEXTS:
            _CONTEXTS[key] = make_context(validate_certs=key)
        return _CONTEXTS[key]


class HttpError(Exception):
    """No HTTP answer: connection refused, timeout, DNS, TLS... ``timed_out``: nothing came back in time
    (a frozen server accepts the connection and never answers), as opposed to a refusal. ``silent``: timed out
    after the connection was made and the request sent (the server took it and said nothing: frozen or
    overloaded), as opposed to a connect that timed out (no server reached: a lost packet, a partition)."""

    def __init__(self, msg, timed_out=False, silent=False):
        super().__init__(msg)
        self.timed_out = timed_out
        self.silent = silent


def is_timeout(exc):
    """True for a socket timeout, bare or wrapped in urllib's URLError."""
    return isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError)


class Response:
    def __init__(self, url, status, headers, body, elapsed):
        self.url = url
        self.status = status
        self.headers = headers
        self.body = body
        self.elapsed = elapsed

    @property
    def ok(self):
        return 200 <= self.status < 300

    def header(self, name, default=""):
        """A response header, whatever the case of its name."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), default)

    def json(self):
        """The body as JSON; ValueError with a short excerpt when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            excerpt = self.body[:120].replace("\n", " ")
            raise ValueError(f"{self.url} answered {self.status} with a body that is not JSON: {excerpt!r}") from None


def request(
    url,
    method="GET",
    body=None,
    headers=None,
    timeout=5.0,
    validate_certs=True,
    url_username=None,
    url_password=None,
    force_basic_auth=False,
):
    """Send one request. ``body`` may be bytes, str, or a dict/list sent as JSON."""
    headers = dict(headers or {})
    data = body
    if isinstance(body, (dict, list)):
        data = json.dumps(body)
        headers.setdefault("Content-Type", "application/json")
    start = time.monotonic()
    try:
        # Request().open is open_url with one more argument: the shared TLS context.
        resp = Request().open(
            method,
            url,
            data=data,
            headers=headers,
            timeout=timeout,
            validate_certs=validate_certs,
            url_username=url_username,
            url_password=url_password,
            force_basic_auth=force_basic_auth,
            follow_redirects="safe",
            context=tls_context(validate_certs),
        )
        status, resp_headers, raw = resp.status, dict(resp.headers), resp.read()
    except HTTPError as exc:
        status, resp_headers = exc.code, dict(exc.headers or {})
        try:
            raw = exc.read()
        except Exception:  # a broken error body must not hide the status
            raw = b""
    except (URLError, OSError) as exc:  # refused, timeout, DNS, TLS
        if is_timeout(exc):
            # urllib wraps what fails while connecting and sending in URLError; the answer's read raises bare
            silent = not isinstance(exc, URLError)
            raise HttpError(
                f"{method} {url}: no answer within {timeout:g} s (timed out)", timed_out=True, silent=silent
            ) from None
        reason = getattr(exc, "reason", exc)
        raise HttpError(f"{method} {url}: no answer ({reason})") from None
    except http.client.HTTPException as exc:  # something answered, but not HTTP
        raise HttpError(f"{method} {url}: not an HTTP answer ({type(exc).__name__}: {exc})") from None
    except ValueError as exc:  # a URL that cannot be requested (no scheme, bad port)
        raise HttpError(f"{method} {url}: invalid URL ({exc})") from None
    return Response(url, status, resp_headers, raw.decode("utf-8", "replace"), time.monotonic() - start)


def auth_argument_spec():
    """Options of the ``incident.response.http_auth`` doc fragment."""
    return dict(
        bearer_token=dict(type="str", no_log=True),
        url_username=dict(type="str"),
        url_password=dict(type="str", no_log=True),
        validate_certs=dict(type="bool", default=True),
    )


AUTH_MUTUALLY_EXCLUSIVE = [("bearer_token", "url_username")]
AUTH_REQUIRED_TOGETHER = [("url_username", "url_password")]


def auth_headers(params):
    """The Authorization header for the ``http_auth`` options (empty without credentials)."""
    if params.get("bearer_token"):
        return {"Authorization": f"Bearer {params['bearer_token']}"}
    if params.get("url_username"):
        pair = f"{params['url_username']}:{params.get('url_password') or ''}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
    return {}
