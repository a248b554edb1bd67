"""The image ``incidentlab/log-generator``: writes a known amount of Spring-Boot-style log
lines at start, then idles until it is stopped, so log collection can be measured and
checked line by line (``python -m incidentlab.kube.loggen``).

Environment: ``LOG_LINES`` (default 10000) lines; every ``LOG_ERROR_EVERY``-th line
(default 100, 0 for none) is an ERROR line; ``SERVICE_NAME`` names the logger.
"""

from __future__ import annotations

import os
import signal
import sys
import time


def lines(count: int, error_every: int, service: str) -> list[str]:
    t = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"
    out = []
    for i in range(1, count + 1):
        thread = f"nio-8080-exec-{i % 10 + 1}"
        if error_every and i % error_every == 0:
            out.append(
                f"{stamp} ERROR 1 --- [{service}] [{thread}] c.i.shop.OrderController : request {i} failed: "
                "java.sql.SQLTransientConnectionException: Connection is not available, request timed out after 30000ms"
            )
        else:
            out.append(
                f"{stamp}  INFO 1 --- [{service}] [{thread}] c.i.shop.OrderController : request {i} handled "
                f"in {i % 47 + 3} ms (GET /api/orders/{i}, status 200)"
            )
    return out


def main() -> int:
    count = int(os.environ.get("LOG_LINES", "10000"))
    error_every = int(os.environ.get("LOG_ERROR_EVERY", "100"))
    service = os.environ.get("SERVICE_NAME") or os.environ.get("POD_NAME", "log-generator")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.stdout.write("\n".join(lines(count, error_every, service)) + "\n")
    sys.stdout.flush()
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
