"""The token bucket on its own, with times given by hand."""

from __future__ import annotations

from salon.core.ratelimit import TokenBucket


def test_a_full_bucket_allows_the_burst_then_refuses() -> None:
    bucket = TokenBucket(rate=10, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]


def test_tokens_come_back_at_the_rate() -> None:
    bucket = TokenBucket(rate=10, burst=3, now=0.0)
    for _ in range(3):
        bucket.take(0.0)
    assert bucket.take(0.05) is False  # half a token
    assert bucket.take(0.1) is True  # the half from before, and half more
    assert bucket.take(0.1) is False


def test_the_bucket_never_holds_more_than_the_burst() -> None:
    bucket = TokenBucket(rate=100, burst=2, now=0.0)
    assert [bucket.take(3600.0) for _ in range(3)] == [True, True, False]


def test_a_clock_going_back_adds_nothing() -> None:
    bucket = TokenBucket(rate=1, burst=1, now=10.0)
    assert bucket.take(10.0) is True
    assert bucket.take(5.0) is False
    assert bucket.take(5.5) is False  # counted from the latest stamp: half a token
    assert bucket.take(6.0) is True
