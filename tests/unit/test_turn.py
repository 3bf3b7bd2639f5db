"""TURN REST credentials (draft-uberti-behave-turn-rest-00 section 2.2), checked by hand."""

from __future__ import annotations

import base64
import hashlib
import hmac

from salon.core.turn import TurnCredential, turn_credential


def test_turn_credential_for_a_fixed_vector() -> None:
    username = "1700003600:alice"
    expected = base64.b64encode(hmac.new(b"north", username.encode(), hashlib.sha1).digest())

    cred = turn_credential("north", "alice", 1_700_000_000, 3600)

    assert cred == TurnCredential(username, expected.decode(), 1_700_003_600)
    # openssl dgst -sha1 -hmac north -binary <<< "1700003600:alice" (no newline) | base64
    assert cred.password == "wjwSXO2ch1B6VaLTLMy2Avn5O9o="


def test_the_password_depends_on_secret_user_and_expiry() -> None:
    base = turn_credential("north", "alice", 1_700_000_000, 3600)
    assert turn_credential("south", "alice", 1_700_000_000, 3600).password != base.password
    assert turn_credential("north", "bob", 1_700_000_000, 3600).password != base.password
    later = turn_credential("north", "alice", 1_700_000_001, 3600)
    assert later.username == "1700003601:alice"
    assert later.password != base.password


def test_non_ascii_secret_and_user_are_utf8() -> None:
    cred = turn_credential("nørd", "zoë", 0, 60)
    digest = hmac.new("nørd".encode(), "60:zoë".encode(), hashlib.sha1).digest()
    assert cred.username == "60:zoë"
    assert base64.b64decode(cred.password) == digest
