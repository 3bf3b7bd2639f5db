"""Time, injected: the domain never reads the wall clock itself."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; for deadlines and rates."""
        ...

    def wall_ms(self) -> int:
        """Milliseconds since the Unix epoch; for timestamps people read."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000


class FakeClock:
    """A clock a test moves by hand."""

    def __init__(self, start: float = 1000.0, wall_ms: int = 1_700_000_000_000) -> None:
        self.now = start
        self._wall_offset_ms = wall_ms - int(start * 1000)

    def monotonic(self) -> float:
        return self.now

    def wall_ms(self) -> int:
        return int(self.now * 1000) + self._wall_offset_ms

    def advance(self, seconds: float) -> None:
        self.now += seconds
