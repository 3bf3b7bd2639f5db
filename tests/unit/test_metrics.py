"""The metrics object without a server: labels stay a bounded set, reports land where they
should, each Metrics has its own registry."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from salon.core.observe import MeetingEvent
from salon.protocol import CloseCode, ErrorCode
from salon.server.metrics import Metrics, close_label


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain; version=0.0.4")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_close_codes_a_client_chooses_are_one_label_past_the_known_ones() -> None:
    assert close_label(1000) == "1000"
    assert close_label(int(CloseCode.SLOW_CONSUMER)) == "4002"
    assert close_label(None) == "none"
    labels = {close_label(code) for code in range(1000, 5000)}
    assert "other" in labels
    assert len(labels) <= 25  # 4000 possible codes, a handful of series


def test_reports_are_counted_and_registries_are_separate() -> None:
    one, two = Metrics(), Metrics()
    one.frame("chat")
    one.frame("chat")
    one.error(ErrorCode.BAD_JSON)
    one.call("busy")
    one.resume("failed")
    one.closed(4711, by_server=False)
    one.sign_in("throttled")
    one.database_work(0.002, ok=False)
    one.meeting(MeetingEvent(type="meeting_started", room="r", at_ms=1))
    one.meeting(MeetingEvent(type="member_left", room="r", at_ms=1, reason="removed"))
    got = samples(one)
    assert got[("salon_client_messages_total", frozenset({("type", "chat")}))] == 2
    assert got[("salon_client_messages_total", frozenset({("type", "hello")}))] == 0
    assert got[("salon_errors_total", frozenset({("code", "bad_json")}))] == 1
    assert got[("salon_direct_calls_total", frozenset({("outcome", "busy")}))] == 1
    assert got[("salon_resumes_total", frozenset({("outcome", "failed")}))] == 1
    closes = frozenset({("code", "other"), ("by", "client")})
    assert got[("salon_websocket_closes_total", closes)] == 1
    assert got[("salon_sign_ins_total", frozenset({("result", "throttled")}))] == 1
    errors = frozenset({("outcome", "error")})
    assert got[("salon_database_duration_seconds_count", errors)] == 1
    assert got[("salon_meetings_started_total", frozenset())] == 1
    left = frozenset({("reason", "removed")})
    assert got[("salon_meeting_members_left_total", left)] == 1
    assert samples(two)[("salon_client_messages_total", frozenset({("type", "chat")}))] == 0


def test_openmetrics_when_asked() -> None:
    body, content_type = Metrics().exposition("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")


def test_webhook_outcomes_are_read_from_the_service_when_scraped() -> None:
    from salon.core.clock import SystemClock
    from salon.core.settings import WebhookSettings
    from salon.server.webhooks import WebhookService

    metrics = Metrics()
    service = WebhookService(None, WebhookSettings(), SystemClock())  # type: ignore[arg-type]
    metrics.watch_webhooks(service)
    service.attempts.update(delivered=3, retried=2, failed=1)
    service.discarded, service.dropped = 4, 5
    got = samples(metrics)
    by_outcome = {
        outcome: got[("salon_webhook_deliveries_total", frozenset({("outcome", outcome)}))]
        for outcome in ("delivered", "retried", "failed", "discarded")
    }
    assert by_outcome == {"delivered": 3, "retried": 2, "failed": 1, "discarded": 4}
    assert got[("salon_webhook_events_dropped_total", frozenset())] == 5
