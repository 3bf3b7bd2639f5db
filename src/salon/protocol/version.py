"""Protocol versions this code speaks."""

from __future__ import annotations

PROTOCOL_VERSIONS: tuple[int, ...] = (1, 2, 3)
"""Every version this server can speak, oldest first. The newest one both sides know wins.
2 adds recording (docs/PROTOCOL.md §3.9); 3 adds rooms whose media goes through the SFU
(§3.10)."""

RECORDING_VERSION = 2
"""The first version with recording: ``media.recording``, ``record``, ``recordings``."""

SFU_VERSION = 3
"""The first version with SFU rooms: ``sfu_publish``, ``sfu_subscribe``, ``sfu_candidate``,
``sfu_answer``, ``sfu_offer``, ``room_media`` and ``joined.sfu``. A room moves to the SFU only
while every member in it speaks this version."""


def choose_version(offered: list[int]) -> int | None:
    """Return the highest version both sides speak, or ``None`` when there is none."""
    common = set(offered) & set(PROTOCOL_VERSIONS)
    return max(common) if common else None
