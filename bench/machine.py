"""The machine a benchmark ran on, as one line for its report (run the scripts from the
repository root: ``python bench/<name>.py``, so this folder is on the import path)."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path

import psutil


def describe(*extras: str) -> str:
    """``"2 cores (CPU model), 23.5 GiB RAM, Python 3.11.7, <extras>, <platform>"``."""
    cpu = "?"
    with contextlib.suppress(OSError):
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    mem = psutil.virtual_memory().total / 2**30
    parts = [f"{os.cpu_count()} cores ({cpu})", f"{mem:.1f} GiB RAM"]
    parts += [f"Python {platform.python_version()}", *extras, platform.platform()]
    return ", ".join(parts)
