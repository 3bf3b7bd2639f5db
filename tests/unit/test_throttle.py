"""Keyed token buckets that slow password guessing."""

from __future__ import annotations

import pytest

from salon.core.throttle import KeyedThrottle, take_all


def test_a_burst_then_a_wait_that_says_how_long() -> None:
    throttle = KeyedThrottle(per_minute=6, burst=3, max_keys=100)
    assert [throttle.take("ip", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert throttle.take("ip", 0.0) == pytest.approx(10.0)  # one try each 10 s
    assert throttle.take("ip", 4.0) == pytest.approx(6.0)
    assert throttle.take("ip", 10.0) == 0.0
    assert throttle.take("other", 10.0) == 0.0  # keys do not share a bucket


def test_memory_is_bounded_by_forgetting_the_least_recent_key() -> None:
    throttle = KeyedThrottle(per_minute=1, burst=1, max_keys=100)
    throttle.take("first", 0.0)
    for i in range(150):
        throttle.take(f"k{i}", 0.0)
    assert len(throttle) == 100
    assert throttle.take("first", 0.0) == 0.0  # forgotten: a fresh bucket


def test_take_all_spends_from_every_budget_or_from_none() -> None:
    member = KeyedThrottle(per_minute=60, burst=1, max_keys=100)
    address = KeyedThrottle(per_minute=60, burst=2, max_keys=100)
    assert take_all([(member, "ann"), (address, "ip")], 0.0) == 0.0
    assert take_all([(member, "ann"), (address, "ip")], 0.0) == pytest.approx(1.0)
    assert address.due("ip", 0.0) == 0.0  # ann's refusal spent none of the address's
    assert take_all([(member, "bob"), (address, "ip")], 0.0) == 0.0
    assert take_all([(member, "cat"), (address, "ip")], 0.0) == pytest.approx(1.0)
    assert member.due("cat", 0.0) == 0.0  # the address's refusal spent none of cat's
    assert take_all([], 0.0) == 0.0
