# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One HTTP client for the collection (health checks, Prometheus, notification APIs).

Built on Ansible's ``open_url`` so proxies, certificates and auth behave as in the
builtin modules. Never raises for an HTTP status: the caller decides what a status
means. Raises :class:`HttpError` only when there is no answer at all.
"""

from __future__ import annotations

import json
import time

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.urls import open_url


class HttpError(Exception):
    """No HTTP answer: connection refused, timeout, DNS, TLS..."""


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
        resp = open_url(
            url,
            data=data,
            headers=headers,
            method=method,
            timeout=timeout,
            validate_certs=validate_certs,
            url_username=url_username,
            url_password=url_password,
            force_basic_auth=force_basic_auth,
            follow_redirects="safe",
        )
        status, resp_headers, raw = resp.status, dict(resp.headers), resp.read()
    except HTTPError as exc:
        status, resp_headers = exc.code, dict(exc.headers or {})
        try:
            raw = exc.read()
        except Exception:  # a broken error body must not hide the status
            raw = b""
    except (URLError, OSError) as exc:  # refused, timeout, DNS, TLS
        reason = getattr(exc, "reason", exc)
        raise HttpError(f"{method} {url}: no answer ({reason})") from None
    return Response(url, status, resp_headers, raw.decode("utf-8", "replace"), time.monotonic() - start)
