"""Value rules for names, room ids, passwords and chat text."""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from salon.core import names
from salon.core.errors import SalonError, fail
from salon.protocol import ErrorCode

ROOM_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Cc control, Cf format (bidi overrides, zero-width joiners), Cs surrogates, Co private use,
# Cn unassigned, Zl/Zp line and paragraph separators.
_FORBIDDEN_IN_NAMES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_FORBIDDEN_IN_TEXT: Final = frozenset({"Cs", "Zl", "Zp"})
_ZWJ: Final = "\u200d"  # joins emoji sequences such as 👩‍💻; allowed in names


def display_name(raw: str, max_chars: int) -> str:
    """Normalise a display name (NFC, trimmed) or raise ``invalid_name``."""
    name = unicodedata.normalize("NFC", raw).strip()
    if names.blank(name):  # spaces, fillers such as U+3164 or U+2800, a lone accent
        raise fail(ErrorCode.INVALID_NAME, "a name needs at least one visible character")
    if len(name) > max_chars:
        raise fail(ErrorCode.INVALID_NAME, f"a name has at most {max_chars} characters")
    if any(unicodedata.category(ch) in _FORBIDDEN_IN_NAMES and ch != _ZWJ for ch in name):
        raise fail(ErrorCode.INVALID_NAME, "a name cannot contain control or format characters")
    return name


name_key = names.name_key


def account_key(name: str) -> str:
    """The form an account's username is looked up in when signing in (NFC, casefold): the
    exact name ignoring case. Whether two names are one person's is :func:`name_key`'s."""
    return unicodedata.normalize("NFC", name.casefold())


def room_id(raw: str) -> str:
    if not ROOM_ID.fullmatch(raw):
        raise fail(
            ErrorCode.INVALID_ROOM,
            "a room id has 1 to 64 characters from A-Z, a-z, 0-9, '-' and '_'",
        )
    return raw


def password(raw: str | None, max_chars: int) -> str | None:
    if raw is None or raw == "":
        return None
    if len(raw) > max_chars:
        raise fail(ErrorCode.WRONG_PASSWORD, f"a room password has at most {max_chars} characters")
    return raw


def chat_text(raw: str, max_chars: int) -> str:
    """Chat text: NFC, not blank, at most ``max_chars``; tabs and line breaks are kept."""
    text = unicodedata.normalize("NFC", raw)
    if not text.strip():
        raise fail(ErrorCode.INVALID_TEXT, "a chat message cannot be empty")
    if len(text) > max_chars:
        raise fail(ErrorCode.INVALID_TEXT, f"a chat message has at most {max_chars} characters")
    for ch in text:
        cat = unicodedata.category(ch)
        if cat in _FORBIDDEN_IN_TEXT or (cat == "Cc" and ch not in "\r\n\t"):
            raise fail(ErrorCode.INVALID_TEXT, "a chat message cannot contain control characters")
    return text


__all__ = [
    "ROOM_ID",
    "SalonError",
    "account_key",
    "chat_text",
    "display_name",
    "name_key",
    "password",
    "room_id",
]
