"""Domain errors: each knows its wire code, so a handler raises and the edge reports."""

from __future__ import annotations

from salon.protocol import ErrorCode


class SalonError(Exception):
    """A request that cannot be done; nothing changed. Reported as an ``error`` message."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


def fail(code: ErrorCode, message: str) -> SalonError:
    return SalonError(message, code)
