"""docs/PROTOCOL.md is a promise: independent clients are written from it alone.

These tests hold its tables and examples to the code, so that a changed code, limit or message
shape that the document does not follow fails here: every error code and close code (§6), every
limit with its default, minimum and whether ``welcome`` announces it (§7), every JSON example of
a message (§5) and every frame of the example session (§8). And nothing we ship names a path of
a development machine.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from annotated_types import Ge, Gt

from salon.core.settings import LimitSettings
from salon.protocol.codec import ProtocolError, decode_client, decode_server
from salon.protocol.errors import CloseCode, ErrorCode
from salon.protocol.messages import Limits

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "PROTOCOL.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The text of the section whose heading is exactly ``title``, up to the next heading of
    the same or a higher level."""
    match = re.search(rf"^(#+) {re.escape(title)}\n", DOC, flags=re.MULTILINE)
    assert match, f"PROTOCOL.md has no section {title!r}"
    level = len(match.group(1))
    rest = DOC[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, flags=re.MULTILINE)
    return rest[: end.start()] if end else rest


def table_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row in ``text``, header and rule rows left out."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows[1:] if rows else rows


def test_the_error_codes_are_exactly_the_servers() -> None:
    listed = {row[0].strip("`") for row in table_rows(section("6.1 Error codes"))}
    assert listed == {code.value for code in ErrorCode}


def test_the_close_codes_are_the_servers_plus_those_of_the_websocket_layer() -> None:
    listed = {int(row[0]) for row in table_rows(section("6.2 Close codes"))}
    # 1006 is what a client sees without a close frame and 1007 is sent by the WebSocket
    # layer itself; the rest are the server's own.
    assert listed - {1006, 1007} == {int(code) for code in CloseCode}


def _bound(field: Any) -> tuple[str, float] | None:
    for rule in field.metadata:
        if isinstance(rule, Ge):
            return ("ge", float(rule.ge))
        if isinstance(rule, Gt):
            return ("gt", float(rule.gt))
    return None


def test_every_limit_is_listed_with_its_default_minimum_and_welcome() -> None:
    rows = {row[0].strip("`"): row for row in table_rows(section("7. Limits"))}
    fields = LimitSettings.model_fields
    assert set(rows) == set(fields), "the §7 table and LimitSettings differ"
    announced = set(Limits.model_fields)
    for name, row in rows.items():
        env, default, welcome = row[1].strip("`"), row[2], row[3]
        assert env == f"SALON_LIMITS__{name.upper()}", name
        value = re.match(r"[0-9.]+", default)
        assert value, (name, default)
        assert float(value.group()) == float(fields[name].default), (name, default)
        bound = _bound(fields[name])
        minimum = re.search(r"\((>\s*)?([0-9.]+)", default)
        if re.search(r"\(>\s*`", default):
            bound = None  # "greater than another setting": the settings check it (see §7)
        if bound is not None:
            assert minimum, f"{name}: the table gives no minimum ({default})"
            kind = "gt" if minimum.group(1) else "ge"
            assert (kind, float(minimum.group(2))) == bound, (name, default, bound)
        assert (welcome == "yes") == (name in announced), (name, welcome)


def _json_blocks(text: str) -> list[dict[str, Any]]:
    """Each ``json`` block holds one message, or one message a line."""
    found = []
    for block in re.findall(r"```json\n(.*?)\n```", text, flags=re.DOTALL):
        try:
            found.append(json.loads(block))
        except json.JSONDecodeError:
            found += [json.loads(line) for line in block.splitlines() if line.strip()]
    return found


def _examples() -> list[tuple[str, str, dict[str, Any]]]:
    """(message type, direction, example) for every JSON example under a message heading of
    §5, such as ``#### `hello` (C → S)`` or ``#### Host actions (C → S)`` (whose examples
    name their own types)."""
    found = []
    parts = re.split(r"^#### (.*)\n", section("5. Messages"), flags=re.MULTILINE)
    for heading, body in zip(parts[1::2], parts[2::2], strict=True):
        named = re.fullmatch(r"`([a-z_]+)` \(([^)]*)\)", heading)
        direction = re.search(r"\(([^)]*→[^)]*)\)", heading)
        for example in _json_blocks(body):
            kind = named.group(1) if named else example.get("type", "")
            found.append((kind, direction.group(1) if direction else "", example))
    return found


def test_the_message_sections_have_examples() -> None:
    assert len(_examples()) >= 40


@pytest.mark.parametrize(
    ("kind", "direction", "example"),
    _examples(),
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_every_example_message_is_what_the_server_reads_or_sends(
    kind: str, direction: str, example: dict[str, Any]
) -> None:
    frame = json.dumps(example)
    assert example.get("type") == kind
    if "S → C" in direction and "C → S" not in direction:
        assert decode_server(frame).type == kind
        return
    try:
        assert decode_client(frame, LimitSettings()).type == kind
    except ProtocolError:
        if "S → C" not in direction:
            raise
        assert decode_server(frame).type == kind


def test_every_frame_of_the_example_session_is_a_message_of_its_direction() -> None:
    session = section("8. Example session")
    frames = re.findall(r"^\w+\s+(>>>|<<<) (\{.*\})$", session, flags=re.MULTILINE)
    assert len(frames) >= 20
    for arrow, frame in frames:
        if "…" in frame:  # a frame shortened in the text ("…as above…")
            continue
        if arrow == ">>>":
            decode_client(frame, LimitSettings())
        else:
            decode_server(frame)


def test_nothing_shipped_names_a_development_machines_path() -> None:
    shipped = subprocess.run(
        ["git", "ls-files", "--", "docs", "src", "deploy", "web/src", "bench", "README.md"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    found = []
    for name in shipped:
        path = ROOT / name
        if not path.is_file() or path.suffix in {".png", ".jpg", ".ico", ".woff2"}:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        found += [f"{name}: {m}" for m in re.findall(r"/(?:work|root)/[\w./-]+", text)]
    assert found == []
