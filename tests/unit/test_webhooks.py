"""The pure parts of webhooks: Standard Webhooks signatures, event bodies, backoff, delivery
ids, and what an endpoint may be."""

from __future__ import annotations

import base64
import json
import random
from datetime import datetime

import httpx
import pytest

from salon.core.observe import MeetingEvent
from salon.server.webhooks import (
    MAX_URL_CHARS,
    InvalidWebhook,
    _failure,
    backoff_seconds,
    check_events,
    check_url,
    event_body,
    new_secret,
    rfc3339,
    signature,
)
from salon.store.webhooks import DeliveryIds

AT = 1_767_225_600_250  # 2026-01-01T00:00:00.250Z


def test_signature_matches_the_standard_webhooks_test_vector() -> None:
    # The vector the Standard Webhooks reference libraries are tested with.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected
    assert signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body) != expected


def test_a_secret_is_24_random_bytes_in_base64() -> None:
    secrets = {new_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 24


def test_event_bodies_carry_what_applies() -> None:
    joined = MeetingEvent("member_joined", "r", AT, "m1", "Ann", "ann", None, host=True)
    left = MeetingEvent("member_left", "r", AT, "m2", "Bob", None, "removed")
    started = MeetingEvent("meeting_started", "r", AT)
    ended = MeetingEvent("meeting_ended", "r", AT, reason="ended")
    bodies = [json.loads(event_body(e)) for e in (joined, left, started, ended)]
    assert bodies == [
        {
            "type": "member_joined",
            "timestamp": "2026-01-01T00:00:00.250Z",
            "data": {"room": "r", "member": "m1", "name": "Ann", "account": "ann", "host": True},
        },
        {
            "type": "member_left",
            "timestamp": "2026-01-01T00:00:00.250Z",
            "data": {
                "room": "r",
                "member": "m2",
                "name": "Bob",
                "account": None,
                "reason": "removed",
            },
        },
        {"type": "meeting_started", "timestamp": "2026-01-01T00:00:00.250Z", "data": {"room": "r"}},
        {
            "type": "meeting_ended",
            "timestamp": "2026-01-01T00:00:00.250Z",
            "data": {"room": "r", "reason": "ended"},
        },
    ]
    assert " " not in event_body(started)  # compact: the signed bytes are the sent bytes
    assert json.loads(event_body(MeetingEvent("member_joined", "r", AT, "m", "Zoë")))["data"][
        "name"
    ] == ("Zoë")


def test_rfc3339_is_utc_with_milliseconds() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"
    stamp = rfc3339(AT)
    assert datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000 == AT


def test_backoff_doubles_up_to_the_cap_with_ten_percent_jitter() -> None:
    rng = random.Random(7)
    for attempts, base in ((1, 1), (2, 2), (3, 4), (6, 32), (12, 600), (500, 600)):
        waits = [backoff_seconds(attempts, 600, rng) for _ in range(200)]
        assert all(0.9 * base <= w <= 1.1 * base for w in waits), attempts
        assert max(waits) - min(waits) > 0.1 * base  # it does spread
    assert backoff_seconds(3, 0.2, rng) <= 0.22


def test_delivery_ids_sort_in_creation_order() -> None:
    ids = DeliveryIds()
    made = [ids.next(ms) for ms in (AT, AT, AT, AT + 1, AT - 5_000, AT + 2, AT + 2)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert all(len(i) == 30 and i.startswith("msg_") for i in made)  # fits String(32)
    assert DeliveryIds().next(AT)[:14] == made[0][:14]  # the time part


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/hook",
        "http://10.0.0.5:8080/salon?token=abc",
        "https://[::1]/x",
        "https://example.org/" + "a" * (MAX_URL_CHARS - len("https://example.org/")),
        "http://my_receiver:8080/hook",  # a container's name
        "https://münchen.example/hook",  # IDNA-encoded when sent
        "https://xn--mnchen-3ya.example/hook",
        "https://example.org./hook",
        "http://127.0.0.1:65535/",
    ],
)
def test_urls_that_may_be_endpoints(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/" + "a" * (MAX_URL_CHARS + 1 - len("https://example.org/")),
        "ftp://example.org/",
        "file:///etc/passwd",
        "example.org/hook",
        "https://",
        "https:///path",
        "https://exa mple.org/",
        "https://example.org/\n",
        "http://[::1/",
        "",
        # httpx would refuse these only when sending (InvalidURL, idna.IDNAError):
        "http://a\u0000/",
        "http://b\u007f/",
        "http://xn--/",
        "http://xn--a/",
        "http://exa\u3002mple..com/",
        "http://\u00e9\u0301\u200d.com/",
        # and these when connecting (a port out of range)
        "http://127.0.0.1:99999/",
        "http://127.0.0.1:65536/",
        "http://127.0.0.1:0/",
        "http://127.0.0.1:http/",
    ],
)
def test_urls_that_may_not(url: str) -> None:
    with pytest.raises(InvalidWebhook):
        check_url(url)


def test_a_failed_attempt_is_named_by_its_kind_never_its_message() -> None:
    refused = httpx.InvalidURL("Invalid non-printable ASCII character in URL, http://a?t=SECRET")
    assert _failure(refused, 10) == "request failed (InvalidURL)"
    grouped = ExceptionGroup("unhandled errors in a TaskGroup", [OverflowError("SECRET")])
    assert _failure(grouped, 10) == "request failed (OverflowError)"
    assert _failure(httpx.ConnectError("http://x/?t=SECRET"), 10) == "could not connect"
    assert _failure(TimeoutError(), 2.5) == "no answer within 2.5 s"


def test_events_asked_for() -> None:
    assert check_events(None)[-1] == "recording_ready"
    assert len(check_events(None)) == 5
    assert check_events(["member_left", "meeting_started", "member_left"]) == (
        "meeting_started",
        "member_left",
    )
    with pytest.raises(InvalidWebhook, match="'recording'"):
        check_events(["recording"])
    with pytest.raises(InvalidWebhook, match="at least one"):
        check_events([])
