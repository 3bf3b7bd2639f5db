"""Token buckets by key (a client address, an account name): how long until the next try.

Used to slow password guessing, handshakes, joins and chat. Memory is bounded: past
``max_keys`` the least recently seen key is forgotten, which at worst gives that key a fresh
bucket.
"""

from __future__ import annotations

from collections.abc import Sequence

from salon.core.ratelimit import TokenBucket


class KeyedThrottle:
    def __init__(self, per_minute: float, burst: int, max_keys: int) -> None:
        self._rate = per_minute / 60.0
        self._burst = burst
        self._max_keys = max_keys
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, key: str, now: float) -> float:
        """Spend one try for ``key``: 0.0 when allowed, else the seconds until one is."""
        bucket = self._buckets.pop(key, None)  # re-inserted below: the dict stays LRU-ordered
        if bucket is None:
            bucket = TokenBucket(self._rate, self._burst, now)
        self._buckets[key] = bucket
        if len(self._buckets) > self._max_keys:
            del self._buckets[next(iter(self._buckets))]
        return bucket.wait(now)

    def due(self, key: str, now: float) -> float:
        """The seconds until ``key`` has a try (0.0: now), spending none."""
        bucket = self._buckets.get(key)
        return 0.0 if bucket is None else bucket.due(now)

    def __len__(self) -> int:
        return len(self._buckets)


def take_all(budgets: Sequence[tuple[KeyedThrottle, str]], now: float) -> float:
    """Spend one try from each ``(throttle, key)`` when every one has a try (0.0), or none at
    all and answer the longest wait: a refused try costs no budget, so one budget that is
    spent does not drain the others."""
    wait = max((throttle.due(key, now) for throttle, key in budgets), default=0.0)
    if wait > 0:
        return wait
    for throttle, key in budgets:
        throttle.take(key, now)
    return 0.0
