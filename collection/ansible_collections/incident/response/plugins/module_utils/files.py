# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files the modules write: incident records and configuration, always atomically."""

from __future__ import annotations

import os
import tempfile

from ansible_collections.incident.response.plugins.module_utils.common import ModuleFailure


def read_bytes(path):
    """The file's content, or None when it does not exist."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ModuleFailure(f"cannot read {path}: {exc.strerror}") from None


def check_writable(path):
    """ModuleFailure unless ``path`` can be a file in an existing directory."""
    if os.path.isdir(path):
        raise ModuleFailure(f"{path} is a directory: give the path of a file")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ModuleFailure(f"directory {parent} does not exist: create it first or choose another path")
    if not os.access(parent, os.W_OK):
        raise ModuleFailure(f"directory {parent} is not writable by the user running the module")


def write_atomic(module, path, data):
    """Write ``data`` (bytes) to ``path`` so readers see the old or the new file, never half of one.

    The temporary file is written and fsynced beside the target, then moved over it with
    Ansible's ``atomic_move`` (which keeps the target's mode and SELinux context; a new file gets 0666 minus the umask).
    """
    check_writable(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        module.atomic_move(tmp, os.path.abspath(path))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
