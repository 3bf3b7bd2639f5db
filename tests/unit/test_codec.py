"""The frame parser (salon.protocol.codec): JSON beyond what pydantic's parser refuses, unknown
fields, field limits and the schema that says so (docs/PROTOCOL.md §1.3, §7)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salon.core.settings import LimitSettings
from salon.protocol import ErrorCode, ProtocolError, decode_client, decode_server, encode
from salon.protocol.codec import json_schema
from salon.protocol.messages import Limits, Welcome


@dataclass(frozen=True)
class Small:
    max_sdp_chars: int = 10
    max_candidate_chars: int = 5


LIMITS = LimitSettings()

CANDIDATE = {"candidate": "candidate:1 1 udp 1 192.0.2.1 5000 typ host", "sdpMid": "0"}
VALID: list[dict[str, Any]] = [
    {"type": "ping"},
    {"type": "chat", "text": "a: b", "id": "c-1", "ref": 7},
    {"type": "hand", "raised": True},
    {"type": "media", "mic": True, "camera": False, "screen": True},
    {"type": "join", "room": "r", "media": {"mic": True, "camera": False, "screen": False}},
    {"type": "signal", "to": "x", "candidate": {**CANDIDATE, "sdpMLineIndex": 0}},
    {"type": "signal", "to": "x", "description": {"type": "offer", "sdp": "v=0\r\n"}},
    {"type": "hello", "versions": [1, 2], "name": "ann", "resume": None},
]


def code_of(frame: str, limits: Any = LIMITS) -> ErrorCode | None:
    try:
        decode_client(frame, limits)
    except ProtocolError as exc:
        return exc.code
    return None


def _objects(value: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The paths of every object in ``value``, the top one first."""
    found = [path]
    for key, inner in value.items():
        if isinstance(inner, dict):
            found += _objects(inner, (*path, key))
    return found


def _write(value: Any, style: str, escape: bool, repeat: tuple[str, ...] | None) -> str:
    """JSON text for ``value``: compact, spaced, spaced before colons or a mix, keys optionally
    spelled with a \\u escape, and the object at ``repeat`` writing its first key twice."""

    def obj(node: dict[str, Any], path: tuple[str, ...]) -> str:
        items = list(node.items())
        if path == repeat:
            items.append(items[0])
        parts = []
        for i, (key, inner) in enumerate(items):
            # mixed: only the first key of each object is spaced, so the repeated one is not
            colon = {"compact": ":", "spaced": ": ", "before": " :", "mixed": ":"}[style]
            if style == "mixed" and i == 0:
                colon = " :"
            name = json.dumps(key)
            if escape and key:
                name = f'"\\u{ord(key[0]):04x}' + json.dumps(key)[2:]
            text = obj(inner, (*path, key)) if isinstance(inner, dict) else json.dumps(inner)
            parts.append(name + colon + text)
        return "{" + ("," if style in ("compact", "mixed") else ", ").join(parts) + "}"

    return obj(value, ())


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(VALID),
    st.sampled_from(["compact", "spaced", "before", "mixed"]),
    st.booleans(),
    st.data(),
)
def test_a_repeated_key_is_found_however_the_frame_is_written(
    message: dict[str, Any], style: str, escape: bool, data: st.DataObject
) -> None:
    """The quick look (a count of ``":``) and the full parse must agree: a repeated key at
    any depth, spelled with escapes or spaced, is ``bad_json``; none is no error."""
    repeat = data.draw(st.sampled_from([None, *_objects(message)]))
    expected = None if repeat is None else ErrorCode.BAD_JSON
    assert code_of(_write(message, style, escape, repeat)) is expected


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ('{"type": "ping", "ref": NaN}', ErrorCode.BAD_JSON),
        ('{"type": "ping", "x": Infinity}', ErrorCode.BAD_JSON),
        ('{"type": "teleport", "x": -Infinity}', ErrorCode.BAD_JSON),
        ('{"type": "chat", "text": "NaN Infinity"}', None),
        ('{"type": "chat", "text": ":x"}', None),  # a string that starts with a colon
        ('{"type": "chat", "text": "\\":"}', None),
        ('{"type": "chat", "text": "\\":", "text": "y"}', ErrorCode.BAD_JSON),
        ('{"type":"chat","text":"a\\\\","text":"b"}', ErrorCode.BAD_JSON),  # \\ before "
        ('{"type": "ping", "x": 1}', ErrorCode.BAD_MESSAGE),
        ('{"type": "welcome"}', ErrorCode.UNKNOWN_TYPE),
        (b'{"type": "ping", "type": "ping"}', ErrorCode.BAD_JSON),
        (b'{"type": "ping"}', None),
        # A field that may be null may be left out (§1.3); these two once could not.
        ('{"type": "room_password"}', None),
        ('{"type": "sfu_candidate", "pc": "publisher"}', None),
    ],
)
def test_json_rules(frame: str, code: ErrorCode | None) -> None:
    assert code_of(frame) is code


def test_no_client_field_is_a_float() -> None:
    """Why a valid client message needs no look for NaN or Infinity (codec): strict ints,
    strings and booleans refuse them. A float field would need that look back."""
    text = json.dumps(json_schema()["$defs"])
    assert '"number"' not in json.dumps(_client_defs())
    assert '"number"' in text  # server messages have floats: the check can see one


def _client_defs() -> dict[str, Any]:
    defs: dict[str, Any] = json_schema()["$defs"]
    seen: dict[str, Any] = {}
    todo = ["ClientMessage"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen[name] = defs[name]
        text = json.dumps(defs[name])
        todo += [part.split('"')[0] for part in text.split('"#/$defs/')[1:]]
    return seen


def test_the_schema_closes_client_objects_and_leaves_server_ones_open() -> None:
    client = _client_defs()
    assert all(d.get("additionalProperties") is False for d in client.values() if "properties" in d)
    assert {"Hello", "Signal", "IceCandidate-Input", "MediaState-Input"} <= set(client)
    defs = json_schema()["$defs"]
    for name in ("Welcome", "SignalRelay", "IceCandidate-Output", "MediaState-Output"):
        assert "additionalProperties" not in defs[name], name


def test_python_clients_still_read_server_messages_with_new_fields() -> None:
    welcome = Welcome(
        version=1,
        id="m",
        name="ann",
        ice_servers=[],
        limits=Limits(**dict.fromkeys(Limits.model_fields, 1)),
        resume_token="t",
    )
    frame = json.loads(encode(welcome))
    frame["added_later"] = True
    frame["limits"]["max_future_chars"] = 9
    assert decode_server(json.dumps(frame)) == welcome


def test_unknown_fields_are_named_where_they_are() -> None:
    for frame, where in [
        ('{"type": "ping", "colour": 1}', "colour"),
        ('{"type": "signal", "to": "x", "candidate": {"candidate": "", "x": 1}}', "candidate.x"),
        ('{"type": "ping", "' + "k" * 5000 + '": 1}', "k" * 100 + "…"),
    ]:
        with pytest.raises(ProtocolError) as caught:
            decode_client(frame, LIMITS)
        assert caught.value.message == f"{where}: unknown field"


def test_sdp_and_candidate_limits_come_from_the_settings() -> None:
    def signal(**payload: Any) -> str:
        return json.dumps({"type": "signal", "to": "x", "ref": "r", **payload})

    assert code_of(signal(description={"type": "offer", "sdp": "s" * 10}), Small()) is None
    with pytest.raises(ProtocolError) as caught:
        decode_client(signal(description={"type": "offer", "sdp": "s" * 11}), Small())
    assert (caught.value.code, caught.value.message, caught.value.ref) == (
        ErrorCode.BAD_MESSAGE,
        "description.sdp: at most 10 characters",
        "r",
    )
    for field in ("candidate", "sdpMid", "usernameFragment"):
        ok = {"candidate": "", field: "c" * 5}
        assert code_of(signal(candidate=ok), Small()) is None
        with pytest.raises(ProtocolError) as caught:
            decode_client(signal(candidate={**ok, field: "c" * 6}), Small())
        assert caught.value.message == f"candidate.{field}: at most 5 characters"
    # The same limits hold for what the server relays to the SFU (issue #13).
    for message, kind in (("sfu_publish", "offer"), ("sfu_subscribe", "answer")):
        sdp = {"type": message, "description": {"type": kind, "sdp": "s" * 10}}
        assert code_of(json.dumps(sdp), Small()) is None
        sdp["description"] = {"type": kind, "sdp": "s" * 11}
        with pytest.raises(ProtocolError) as caught:
            decode_client(json.dumps({**sdp, "ref": 7}), Small())
        assert (caught.value.message, caught.value.ref) == (
            "description.sdp: at most 10 characters",
            7,
        )
    for field in ("candidate", "sdpMid", "usernameFragment"):
        ok = {
            "type": "sfu_candidate",
            "pc": "publisher",
            "candidate": {"candidate": "", field: "c" * 5},
        }
        assert code_of(json.dumps(ok), Small()) is None
        ok["candidate"] = {"candidate": "", field: "c" * 6}
        with pytest.raises(ProtocolError) as caught:
            decode_client(json.dumps(ok), Small())
        assert caught.value.message == f"candidate.{field}: at most 5 characters"
    # The server's own settings are the limits it passes.
    assert (LIMITS.max_sdp_chars, LIMITS.max_candidate_chars) == (32_768, 1024)
    assert code_of(signal(candidate={"candidate": "c" * 1025})) is ErrorCode.BAD_MESSAGE
