"""The SDK's exceptions, a small tree::

ClientError                 anything the SDK raises on purpose
├── ServerError             the server answered our request with ``error`` (PROTOCOL.md §6.1)
├── ConnectionLost          the connection is gone for good (closed, or resume gave up)
└── CallFailed              a call we placed ended before it was accepted (§4.5)
"""

from __future__ import annotations

from salon.protocol.errors import CloseCode, ErrorCode


class ClientError(Exception):
    """Base of every error the SDK raises on purpose (also: a request the server's
    ``welcome.version`` cannot carry, or a call made before :meth:`Client.connect`)."""


class ServerError(ClientError):
    """The server refused one of our messages with ``error {code, message, ref}``
    (docs/PROTOCOL.md §5.2 ``error``, codes in §6.1).

    ``code`` is the wire code as a string (an :class:`~salon.protocol.ErrorCode` value for every
    code this SDK knows; a newer server may send others, §1.2), ``message`` the server's English
    sentence (for logs, never parsed), ``ref`` the ``ref`` of our message it answers."""

    def __init__(self, code: str, message: str, ref: str | int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.ref = ref

    @property
    def known_code(self) -> ErrorCode | None:
        """``code`` as an :class:`ErrorCode`, or ``None`` for a code newer than this SDK."""
        try:
            return ErrorCode(self.code)
        except ValueError:
            return None


class ConnectionLost(ClientError):
    """The signaling connection ended for good: :meth:`Client.close`, a close the client must
    not resume after (4001, 4003, 4005, 4006, 4000; §6.2), ``resume_failed`` after the place was
    lost, or no resume succeeded within ``limits.resume_grace_seconds`` (§2.8).

    ``code`` is the WebSocket close code last seen (RFC 6455 §7.4; 1006 when the socket ended
    without a close frame), or ``None`` when none was seen."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message if code is None else f"{message} (close code {code})")
        self.code = code

    @property
    def close_code(self) -> CloseCode | None:
        """``code`` as a :class:`CloseCode` when it is one the server uses, else ``None``."""
        if self.code is None:
            return None
        try:
            return CloseCode(self.code)
        except ValueError:
            return None


class CallFailed(ClientError):
    """A direct call we placed (:meth:`Client.call`) ended before both sides were in its room:
    ``reason`` is the ``call_ended.reason`` (``declined``, ``timeout``, ``busy``, ``offline``,
    ``cancelled``; any other string from a newer server means "the call is over", §1.2)."""

    def __init__(self, call_id: str, reason: str) -> None:
        super().__init__(f"call {call_id} ended: {reason}")
        self.call_id = call_id
        self.reason = reason
