"""The image ``incidentlab/task``: a batch task that runs to completion (for Jobs).

It says when it starts and ends, works for ``TASK_SECONDS`` (default 0) and exits with
``TASK_EXIT_CODE`` (default 0). The container's command and arguments are ignored: the lab
runs no program a pod spec names (``python -m incidentlab.kube.task``).
"""

from __future__ import annotations

import os
import signal
import sys
import time


def main() -> int:
    name = os.environ.get("POD_NAME", "task")
    seconds = float(os.environ.get("TASK_SECONDS", "0") or 0)
    code = int(os.environ.get("TASK_EXIT_CODE", "0") or 0)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(f"task {name}: started, working for {seconds:g}s", flush=True)
    time.sleep(seconds)
    print(f"task {name}: done, exit code {code}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
