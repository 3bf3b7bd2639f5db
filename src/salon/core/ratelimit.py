"""Pacing: a token bucket (``rate`` tokens a second, holding at most ``burst``), and the
per-connection :class:`Pacer` built on it."""

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


class Pacer:
    """The pace of one connection's frames (a session's, or a front's when several processes
    serve): a :class:`TokenBucket` of ``rate`` frames a second (``burst`` at most), and
    strikes for frames refused, which leak away at one a second, so a client a little over
    the rate is only slowed while one that keeps flooding reaches ``strikes_before_close``.
    The caller sends ``rate_limited`` when :meth:`warn` says so (at most once a second, so
    the errors cannot flood the outbox either) and closes (4003) when :meth:`strike` says so.
    """

    __slots__ = ("_bucket", "_limit", "_strikes", "_strikes_at", "_warned_at")

    def __init__(self, rate: float, burst: int, strikes_before_close: float, now: float) -> None:
        self._bucket = TokenBucket(rate, burst, now)
        self._limit = strikes_before_close
        self._strikes = 0.0
        self._strikes_at = now
        self._warned_at = float("-inf")

    def allow(self, now: float) -> bool:
        """Spend a token for one frame; False: over the rate (the caller refuses it)."""
        return self._bucket.take(now)

    def warn(self, now: float) -> bool:
        """Whether ``rate_limited`` is due now: True at most once a second."""
        if now - self._warned_at < 1.0:
            return False
        self._warned_at = now
        return True

    def strike(self, now: float, count: int = 1) -> bool:
        """Add ``count`` strikes (after leaking one a second since the last); True: they
        reach ``strikes_before_close`` (the caller closes the connection, 4003)."""
        self._strikes = max(0.0, self._strikes - (now - self._strikes_at)) + count
        self._strikes_at = now
        return self._strikes >= self._limit
