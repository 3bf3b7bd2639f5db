"""Protocol versions this code speaks."""

from __future__ import annotations

PROTOCOL_VERSIONS: tuple[int, ...] = (1, 2)
"""Every version this server can speak, oldest first. The newest one both sides know wins.
2 adds recording (docs/PROTOCOL.md §3.9)."""

RECORDING_VERSION = 2
"""The first version with recording: ``media.recording``, ``record``, ``recordings``."""


def choose_version(offered: list[int]) -> int | None:
    """Return the highest version both sides speak, or ``None`` when there is none."""
    common = set(offered) & set(PROTOCOL_VERSIONS)
    return max(common) if common else None
