"""Stable error codes and WebSocket close codes of protocols v1 and v2.

Codes never change meaning; new ones are added at the end. ``docs/PROTOCOL.md`` lists
the same codes with what each means to a client.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ErrorCode(StrEnum):
    """The ``code`` field of an ``error`` message."""

    # The frame itself.
    BAD_JSON = "bad_json"  # not valid UTF-8 JSON
    BAD_MESSAGE = "bad_message"  # JSON, but not an object, or fields of the wrong shape
    UNKNOWN_TYPE = "unknown_type"  # "type" missing or not a message this version knows
    BINARY_UNSUPPORTED = "binary_unsupported"  # a binary WebSocket frame
    # Order.
    HELLO_REQUIRED = "hello_required"  # anything but hello before the handshake
    ALREADY_GREETED = "already_greeted"  # a second hello
    UNSUPPORTED_VERSION = "unsupported_version"  # no common protocol version; closes 4001
    NOT_JOINED = "not_joined"  # a room message while not in a room
    ALREADY_JOINED = "already_joined"  # join while already in that room
    # Values.
    INVALID_NAME = "invalid_name"
    NAME_TAKEN = "name_taken"
    INVALID_ROOM = "invalid_room"
    NO_SUCH_ROOM = "no_such_room"
    ROOM_FULL = "room_full"
    SERVER_FULL = "server_full"  # the server has as many rooms open as it allows
    WRONG_PASSWORD = "wrong_password"  # noqa: S105 - a code, not a secret
    NO_SUCH_MEMBER = "no_such_member"
    INVALID_TEXT = "invalid_text"
    # Calls.
    NOT_ONLINE = "not_online"
    SELF_CALL = "self_call"
    NO_SUCH_CALL = "no_such_call"
    IN_CALL = "in_call"
    # Flow.
    RATE_LIMITED = "rate_limited"
    INTERNAL = "internal"
    STORE_UNAVAILABLE = "store_unavailable"  # the database is down or too slow; nothing changed
    # Accounts (added in v1 without a version bump: a new code, no changed meaning).
    SIGN_IN_REQUIRED = "sign_in_required"  # this server admits only signed-in members to rooms
    # Resume.
    RESUME_FAILED = "resume_failed"  # hello.resume: the token is invalid, expired or spent
    # Hosts.
    NOT_HOST = "not_host"  # a host action from a member who is not a host of its room
    ROOM_LOCKED = "room_locked"  # join or knock while a host has locked the room
    # Recording (v2).
    RECORDING_UNAVAILABLE = "recording_unavailable"  # record: this server cannot record now
    # Several server processes (added without a version bump: a new code, no changed meaning).
    BUS_UNAVAILABLE = "bus_unavailable"  # the other server processes cannot be reached; retry
    # The SFU (v3).
    NOT_SFU_ROOM = "not_sfu_room"  # an sfu_* message in a room whose media is a mesh
    SFU_UNAVAILABLE = "sfu_unavailable"  # the SFU refused or did not answer; nothing changed


class CloseCode(IntEnum):
    """WebSocket close codes the server uses (RFC 6455 section 7.4; 4000-4999 are ours)."""

    NORMAL = 1000
    GOING_AWAY = 1001  # server shutting down
    PROTOCOL_ERROR = 1002  # a frame breaking RFC 6455's framing; sent by the WebSocket layer
    MESSAGE_TOO_BIG = 1009  # frame over the limit; sent by the WebSocket layer
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012  # the server is draining for a restart: resume after a moment
    HANDSHAKE_TIMEOUT = 4000  # no hello within the handshake deadline
    UNSUPPORTED_VERSION = 4001  # hello offered no version this server speaks
    SLOW_CONSUMER = 4002  # outbox overflowed: the client does not read fast enough
    RATE_ABUSE = 4003  # kept sending over the rate, or frames the server cannot read
    DEAD_PEER = 4004  # nothing received within the dead-peer timeout
    REPLACED = 4005  # a newer connection took this member's place (resume token or account)
    SIGNED_OUT = 4006  # the handshake's account session ended (sign-out, password change)
