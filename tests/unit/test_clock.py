"""The fake clock tests use everywhere: monotonic and wall time move together."""

from __future__ import annotations

from salon.core.clock import FakeClock, SystemClock


def test_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(start=5.0, wall_ms=1_000_000)
    assert (clock.monotonic(), clock.wall_ms()) == (5.0, 1_000_000)
    clock.advance(1.5)
    assert (clock.monotonic(), clock.wall_ms()) == (6.5, 1_001_500)


def test_system_clock_is_plausible() -> None:
    clock = SystemClock()
    first = clock.monotonic()
    assert clock.monotonic() >= first
    assert clock.wall_ms() > 1_600_000_000_000
