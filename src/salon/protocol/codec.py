"""Parse a frame into a typed client message once, at the edge; encode server messages."""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError

from salon.protocol.errors import ErrorCode
from salon.protocol.messages import ClientMessage, ServerMessage

_CLIENT: Final[TypeAdapter[ClientMessage]] = TypeAdapter(ClientMessage)
_SERVER: Final[TypeAdapter[ServerMessage]] = TypeAdapter(ServerMessage)

_UNKNOWN_TYPE_ERRORS: Final = frozenset({"union_tag_not_found", "union_tag_invalid"})
_NOT_AN_OBJECT_ERRORS: Final = frozenset({"model_type", "model_attributes_type", "dict_type"})


class ProtocolError(Exception):
    """A frame that is not a valid client message: carries the wire code and a sentence."""

    def __init__(self, code: ErrorCode, message: str, ref: str | int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref


def decode_client(frame: str | bytes) -> ClientMessage:
    """Turn one text frame into a client message, or raise :class:`ProtocolError`."""
    try:
        return _CLIENT.validate_json(frame)
    except ValidationError as exc:
        raise _explain(frame, exc) from None


def _explain(frame: str | bytes, exc: ValidationError) -> ProtocolError:
    first = exc.errors(include_url=False, include_input=False)[0]
    kind = first["type"]
    if kind == "json_invalid":
        return ProtocolError(ErrorCode.BAD_JSON, "the frame is not valid JSON")
    ref = _find_ref(frame)
    if kind in _NOT_AN_OBJECT_ERRORS and not first["loc"]:
        return ProtocolError(ErrorCode.BAD_MESSAGE, "a message is a JSON object", ref)
    if kind in _UNKNOWN_TYPE_ERRORS:
        return ProtocolError(ErrorCode.UNKNOWN_TYPE, "the message type is missing or unknown", ref)
    where = ".".join(str(part) for part in first["loc"][1:]) or "message"
    return ProtocolError(ErrorCode.BAD_MESSAGE, f"{where}: {first['msg']}", ref)


def _find_ref(frame: str | bytes) -> str | int | None:
    """Best effort: the ``ref`` of a frame that failed validation, if it is a usable one."""
    try:
        value: Any = json.loads(frame)
    except (ValueError, RecursionError):
        return None
    ref = value.get("ref") if isinstance(value, dict) else None
    if isinstance(ref, str) and len(ref) <= 64:
        return ref
    if isinstance(ref, int) and not isinstance(ref, bool) and abs(ref) <= 2**53:
        return ref
    return None


def encode(message: ServerMessage) -> str:
    """Serialize a server message to its JSON text (aliases applied).

    Uses the message class's own serializer: the same output as the union's, at about a
    third of the cost (measured: 1.6 us against 4.7 us for a candidate relay), which matters
    on the relay's hot path."""
    return message.__pydantic_serializer__.to_json(message, by_alias=True).decode()


def decode_server(frame: str | bytes) -> ServerMessage:
    """Parse a server message; used by Python clients, bots and tests."""
    return _SERVER.validate_json(frame)


class Outgoing:
    """A server message on its way to one or more members, encoded at most once."""

    __slots__ = ("__dict__", "message")

    def __init__(self, message: ServerMessage) -> None:
        self.message = message

    @cached_property
    def text(self) -> str:
        return encode(self.message)


def json_schema() -> dict[str, Any]:
    """One JSON Schema document naming every message: ``ClientMessage`` (what a client may
    send) and ``ServerMessage`` (what it receives), sharing their ``$defs``."""
    refs, doc = TypeAdapter.json_schemas(
        [
            ("ClientMessage", "validation", _CLIENT),
            ("ServerMessage", "serialization", _SERVER),
        ],
        by_alias=True,
        ref_template="#/$defs/{model}",
    )
    defs: dict[str, Any] = doc.get("$defs", {})
    defs["ClientMessage"] = refs[("ClientMessage", "validation")]
    defs["ServerMessage"] = refs[("ServerMessage", "serialization")]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "SalonProtocol",
        "description": "Salon signaling protocol v1: every client and server message.",
        "type": "object",
        "properties": {
            "client": {"$ref": "#/$defs/ClientMessage"},
            "server": {"$ref": "#/$defs/ServerMessage"},
        },
        "$defs": defs,
    }
