"""Value rules: display names, name keys, room ids, passwords and chat text."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salon.core import validate
from salon.core.errors import SalonError


def code_of(call: object, *args: object) -> str | None:
    try:
        call(*args)  # type: ignore[operator]
    except SalonError as exc:
        return exc.code.value
    return None


@given(st.text(max_size=80))
@settings(max_examples=300, deadline=None, database=None)
def test_an_accepted_name_is_nfc_trimmed_short_and_printable(raw: str) -> None:
    code = code_of(validate.display_name, raw, 64)
    if code is not None:
        assert code == "invalid_name"
        return
    name = validate.display_name(raw, 64)
    assert name == unicodedata.normalize("NFC", name)
    assert name == name.strip()
    assert 1 <= len(name) <= 64
    assert all(unicodedata.category(ch)[0] != "C" or ch == "\u200d" for ch in name)
    assert validate.name_key(name)  # something visible is left to compare


@given(st.text(min_size=1, max_size=20))
@settings(max_examples=300, deadline=None, database=None)
def test_composed_and_decomposed_spellings_have_one_key(raw: str) -> None:
    nfc = unicodedata.normalize("NFC", raw)
    nfd = unicodedata.normalize("NFD", raw)
    assert validate.name_key(nfc) == validate.name_key(nfd)


def test_name_keys_ignore_case_and_spacing_but_not_letters() -> None:
    assert validate.name_key("Alice") == validate.name_key("aLICE")
    assert validate.name_key("Ren\u00e9") == validate.name_key("RENE\u0301")
    assert validate.name_key("Rene") != validate.name_key("Ren\u00e9")
    assert validate.name_key("alice") == validate.name_key("alice ")
    assert validate.name_key("Ann Lee") == validate.name_key("annlee")
    assert validate.name_key("Ann") != validate.name_key("Anne")


def test_account_keys_are_the_exact_name_ignoring_case() -> None:
    """What sign-in looks a username up by: NFC and casefold, nothing dropped or mapped."""
    assert validate.account_key("ALICE") == validate.account_key("alice") == "alice"
    assert validate.account_key("Ren\u00e9") == validate.account_key("RENE\u0301")
    assert validate.account_key("\u0430lice") != validate.account_key("alice")
    assert validate.account_key("alice\u200d") != validate.account_key("alice")


@pytest.mark.parametrize("blank", ["\u3164", "\u2800", "\u0301", "\u115f", " \ufe0f\u034f "])
def test_a_name_that_displays_as_nothing_is_invalid(blank: str) -> None:
    assert code_of(validate.display_name, blank, 64) == "invalid_name"
    assert code_of(validate.display_name, "ok" + blank, 64) is None


def test_room_id_rules() -> None:
    assert validate.room_id("A-z_09") == "A-z_09"
    assert validate.room_id("x" * 64) == "x" * 64
    for bad in ("", "x" * 65, "../x", "a.b", "caf\u00e9", "\uff41", "a\n", "١٢٣"):
        assert code_of(validate.room_id, bad) == "invalid_room", bad


def test_password_rules() -> None:
    assert validate.password(None, 8) is None
    assert validate.password("", 8) is None
    assert validate.password("12345678", 8) == "12345678"
    assert code_of(validate.password, "123456789", 8) == "wrong_password"


def test_chat_text_rules() -> None:
    assert validate.chat_text("tab\there\nnext", 100) == "tab\there\nnext"
    assert validate.chat_text("e\u0301", 1) == "\u00e9"
    assert validate.chat_text("\u200d\U0001f468\u200d\U0001f469", 10)  # joiners in emoji stay
    assert validate.chat_text("windows\r\nline", 100) == "windows\r\nline"
    for bad in ("", "  ", "\n", "a\x00", "\x1b", "\u2029", "\ud800"):
        assert code_of(validate.chat_text, bad, 100) == "invalid_text", repr(bad)
    assert code_of(validate.chat_text, "x" * 101, 100) == "invalid_text"


def test_names_keep_emoji_joiners() -> None:
    assert (
        validate.display_name("dev \U0001f469\u200d\U0001f4bb", 64)
        == "dev \U0001f469\u200d\U0001f4bb"
    )


@pytest.mark.parametrize("raw", ["\x00", "a\u202eb", "a\u200bb", "a\nb", "a\u2028b", "\ue000"])
def test_names_with_control_or_format_characters(raw: str) -> None:
    assert code_of(validate.display_name, raw, 64) == "invalid_name"
