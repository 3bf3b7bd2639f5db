"""A token bucket: ``rate`` tokens a second, holding at most ``burst``."""

from __future__ import annotations


class TokenBucket:
    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one; ``False`` means the message is over the rate."""
        return self.wait(now) == 0.0

    def wait(self, now: float) -> float:
        """Spend one token if there is one (0.0); otherwise the seconds until there will be."""
        wait = self.due(now)
        if wait == 0.0:
            self._tokens -= 1.0
        return wait

    def due(self, now: float) -> float:
        """The seconds until a token is there (0.0: now), spending none."""
        elapsed = max(0.0, now - self._stamp)
        self._stamp = now
        self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        if self._tokens >= 1.0:
            return 0.0
        return (1.0 - self._tokens) / self._rate
