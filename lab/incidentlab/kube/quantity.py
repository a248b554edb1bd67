"""Kubernetes resource quantities ("100m", "128Mi", "2") to numbers and back."""

from __future__ import annotations

import re

_SUFFIX = {
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "": 1.0,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_RE = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


def parse(q: object) -> float | None:
    if isinstance(q, int | float):
        return float(q)
    m = _RE.match(str(q or "").strip())
    if not m:
        return None
    return float(m.group(1)) * _SUFFIX[m.group(2) or ""]


def cpu_nano(cores: float) -> str:
    """CPU as metrics-server writes it (nanocores)."""
    return f"{max(0, round(cores * 1e9))}n"


def mem_ki(nbytes: float) -> str:
    return f"{max(0, int(nbytes) // 1024)}Ki"
