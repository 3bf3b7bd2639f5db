"""Prometheus metrics of one server (docs/OPERATIONS.md, "Metrics"), served at ``/metrics``.

:class:`Metrics` owns a registry of its own (never prometheus-client's global one: tests run
several servers in one process). It is an :class:`~salon.core.observe.Observer` of the hub
(frames, errors, calls, resumes, meeting events), the connections report relay latency,
handshakes and closes to it, and the database reports each unit of work. Gauges of what is
live (connections, members, rooms, lobbies) are read from the server's state when scraped,
so they can never drift from it.

Hot-path cost: labelled counters keep their children in a plain dict, so a frame costs one
look-up and one ``inc``; a relayed ``signal`` costs two clock reads and one histogram
observation (a lock and a bisect). Label values are never free text: message types, error
codes, outcomes, route templates, a bounded set of close codes.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

from fastapi import APIRouter, Request
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from salon.core.observe import (
    CallOutcome,
    MeetingEndReason,
    MeetingEvent,
    MemberLeftReason,
    ResumeOutcome,
)
from salon.protocol import CloseCode, ErrorCode
from salon.protocol.messages import ClientMessage

if TYPE_CHECKING:
    from salon.server.state import ServerState
    from salon.server.webhooks import WebhookService

SignInResult = Literal["ok", "unknown_account", "wrong_password", "throttled", "invalid"]
"""How a ``POST /api/v1/session`` ended: signed in; no such account; a wrong password; refused
by a throttle (429); refused before any check (422: a name or password no account can
have)."""

RELAY_BUCKETS: Final = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
"""Seconds. A relay on an idle server takes ~0.1 ms; the target is p99 <= 2 ms (BENCHMARKS)."""

HANDSHAKE_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
DATABASE_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

HTTP_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE: Final = "unmatched"
"""The ``route`` label of a request no route matched (any path: a raw path is never a label)."""

# Close codes a client may choose freely (any of 1000-4999): past these, one label "other",
# so a client cannot mint series.
_KNOWN_CLOSE_CODES: Final = frozenset(
    {1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 1015}
    | {int(c) for c in CloseCode}
)


def _client_message_types() -> list[str]:
    """Every client message ``type`` of the protocol (the ``ClientMessage`` union)."""
    union = get_args(ClientMessage)[0]
    return sorted(get_args(cls.model_fields["type"].annotation)[0] for cls in get_args(union))


def close_label(code: int | None) -> str:
    """The ``code`` label of a WebSocket close: the code when it is a standard or Salon's own,
    ``none`` for a connection that ended without one, else ``other``."""
    if code is None:
        return "none"
    return str(code) if code in _KNOWN_CLOSE_CODES else "other"


class Metrics:
    """Every metric of one server, in :attr:`registry`; an Observer of its hub."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)  # process_cpu_seconds_total, process_resident_memory_bytes
        self.frames = _Labelled(
            Counter(
                "salon_client_messages_total",
                "Client messages decoded, by type (before they are handled).",
                ["type"],
                registry=r,
            ),
            _client_message_types(),
        )
        self.errors = _Labelled(
            Counter(
                "salon_errors_total",
                "Protocol errors sent to clients, by code.",
                ["code"],
                registry=r,
            ),
            [c.value for c in ErrorCode],
        )
        self.calls = _Labelled(
            Counter(
                "salon_direct_calls_total",
                "Direct calls by name that stopped ringing, by outcome.",
                ["outcome"],
                registry=r,
            ),
            get_args(CallOutcome),
        )
        self.resumes = _Labelled(
            Counter(
                "salon_resumes_total",
                "hello.resume attempts, by outcome: held (the place was kept here), rebuilt "
                "(from the token), failed (resume_failed).",
                ["outcome"],
                registry=r,
            ),
            get_args(ResumeOutcome),
        )
        self.sign_ins = _Labelled(
            Counter(
                "salon_sign_ins_total",
                "Sign-ins (POST /api/v1/session), by result.",
                ["result"],
                registry=r,
            ),
            get_args(SignInResult),
        )
        self.closes = _Labelled(
            Counter(
                "salon_websocket_closes_total",
                "WebSocket connections ended, by close code and by who decided it (server: "
                "Salon's own close; client: the code the connection ended with).",
                ["code", "by"],
                registry=r,
            ),
        )
        self.turn_credentials = Counter(
            "salon_turn_credentials_issued_total",
            "TURN credentials handed out (welcome, ice_refresh, GET /api/v1/ice-servers).",
            registry=r,
        )
        self.meetings_started = Counter(
            "salon_meetings_started_total", "Meetings started (a first member seated).", registry=r
        )
        self.meetings_ended = _Labelled(
            Counter(
                "salon_meetings_ended_total",
                "Meetings ended, by reason: empty (the last member left), ended (by a host or "
                "the server API).",
                ["reason"],
                registry=r,
            ),
            get_args(MeetingEndReason),
        )
        self.members_joined = Counter(
            "salon_meeting_members_joined_total",
            "Members seated in a meeting (a resume that takes a seat back is not a join).",
            registry=r,
        )
        self.members_left = _Labelled(
            Counter(
                "salon_meeting_members_left_total",
                "Members who left a meeting, by reason.",
                ["reason"],
                registry=r,
            ),
            get_args(MemberLeftReason),
        )
        self.http = _Labelled(
            Counter(
                "salon_http_requests_total",
                "HTTP requests answered, by route template, method and status.",
                ["route", "method", "status"],
                registry=r,
            ),
        )
        self.relay_latency = Histogram(
            "salon_relay_latency_seconds",
            "From a signal frame's arrival to its relay being written to the receiving socket.",
            buckets=RELAY_BUCKETS,
            registry=r,
        )
        self.handshake = Histogram(
            "salon_handshake_duration_seconds",
            "From a WebSocket upgrade request reaching the app to its welcome being written.",
            buckets=HANDSHAKE_BUCKETS,
            registry=r,
        )
        self.database = _Labelled(
            Histogram(
                "salon_database_duration_seconds",
                "Units of database work (a connection or transaction block), by outcome: ok, "
                "or error (store_unavailable: refused, failed or timed out).",
                ["outcome"],
                buckets=DATABASE_BUCKETS,
                registry=r,
            ),
            ("ok", "error"),
        )

    def watch(self, state: ServerState) -> None:
        """Read the live gauges (connections, members, rooms, lobbies) from ``state`` when
        scraped. Call once."""
        self.registry.register(LiveCollector(state))

    def watch_webhooks(self, webhooks: WebhookService) -> None:
        """Read the webhook service's counts when scraped. Call once."""
        self.registry.register(WebhookCollector(webhooks))

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """Every metric and its content type, in the format the ``Accept`` header asks for
        (OpenMetrics or Prometheus text; plain text 0.0.4 by default). Run it on the event
        loop: it reads the hub's state."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type

    # ------------------------------------------------------------------ reports

    def database_work(self, seconds: float, ok: bool) -> None:
        """A unit of database work took ``seconds`` (GuardedEngine's hook)."""
        self.database.child("ok" if ok else "error").observe(seconds)

    def closed(self, code: int | None, by_server: bool) -> None:
        """A WebSocket connection ended with ``code`` (None: without one)."""
        self.closes.child(close_label(code), "server" if by_server else "client").inc()

    def sign_in(self, result: SignInResult) -> None:
        self.sign_ins.child(result).inc()

    # ------------------------------------------------------------------ Observer

    def frame(self, kind: str) -> None:
        self.frames.child(kind).inc()

    def error(self, code: ErrorCode) -> None:
        self.errors.child(code.value).inc()

    def call(self, outcome: CallOutcome) -> None:
        self.calls.child(outcome).inc()

    def resume(self, outcome: ResumeOutcome) -> None:
        self.resumes.child(outcome).inc()

    def meeting(self, event: MeetingEvent) -> None:
        if event.type == "member_joined":
            self.members_joined.inc()
        elif event.type == "member_left":
            self.members_left.child(event.reason or "left").inc()
        elif event.type == "meeting_started":
            self.meetings_started.inc()
        elif event.type == "meeting_ended":
            self.meetings_ended.child(event.reason or "empty").inc()


class _Labelled:
    """A labelled metric whose children are cached in a plain dict: ``labels()`` takes a lock
    and builds a key each time, too much for a per-frame count. ``known`` label values are
    created at once, so they are exported as 0 before anything happens."""

    def __init__(self, metric: Any, known: Iterable[str] = ()) -> None:
        self.metric = metric
        self._children: dict[tuple[str, ...], Any] = {}
        for value in known:
            self.child(value)

    def child(self, *values: str) -> Any:
        found = self._children.get(values)
        if found is None:
            found = self._children[values] = self.metric.labels(*values)
        return found


class LiveCollector:
    """Gauges read from the server's state at scrape time."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        families = list(self._families())
        connections, online, rooms, seated, waiting = families
        state = self.state
        connections.add_metric([], len(state.connections))
        online.add_metric([], state.hub.online())
        counts = {"mesh": 0, "call": 0}
        members = {"mesh": 0, "call": 0}
        lobby = 0
        for room in list(state.hub.rooms.values()):
            mode = "mesh" if room.allowed is None else "call"
            if room.seats:
                counts[mode] += 1
                members[mode] += len(room.seats)
            lobby += len(room.waiting)
        for mode in ("mesh", "call"):
            rooms.add_metric([mode], counts[mode])
            seated.add_metric([mode], members[mode])
        waiting.add_metric([], lobby)
        return families

    @staticmethod
    def _families() -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("salon_websocket_connections", "WebSocket connections open.")
        yield GaugeMetricFamily(
            "salon_members_online", "Members greeted on this server (connected or away)."
        )
        yield GaugeMetricFamily(
            "salon_rooms",
            "Rooms with members seated, by mode: mesh (a meeting), call (a direct call).",
            labels=["mode"],
        )
        yield GaugeMetricFamily(
            "salon_room_members", "Members seated in rooms, by mode.", labels=["mode"]
        )
        yield GaugeMetricFamily("salon_lobby_waiting", "Members waiting in meetings' lobbies.")


class WebhookCollector:
    """Webhook delivery counts, read from the service at scrape time."""

    OUTCOMES: Final = ("delivered", "retried", "failed", "discarded")

    def __init__(self, webhooks: WebhookService) -> None:
        self.webhooks = webhooks

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        attempts, dropped = self._families()
        service = self.webhooks
        for outcome in self.OUTCOMES:
            count = service.discarded if outcome == "discarded" else service.attempts[outcome]
            attempts.add_metric([outcome], count)
        dropped.add_metric([], service.dropped)
        return [attempts, dropped]

    @staticmethod
    def _families() -> tuple[CounterMetricFamily, CounterMetricFamily]:
        return (
            CounterMetricFamily(
                "salon_webhook_deliveries",
                "Webhook delivery attempts by outcome: delivered; retried (failed, tried again "
                "later); failed (the last attempt failed); discarded (failed unsent: too many "
                "pending, or pending too long).",
                labels=["outcome"],
            ),
            CounterMetricFamily(
                "salon_webhook_events_dropped",
                "Meeting events dropped before being stored (the queue was full).",
            ),
        )


# ---------------------------------------------------------------------------- HTTP


def build_metrics_router(token: str | None) -> APIRouter:
    """``GET /metrics``: 404 without ``metrics_token`` set; 401 (``WWW-Authenticate: Bearer``)
    unless the request carries ``Authorization: Bearer <token>``; else the metrics, in the
    Prometheus text format (``text/plain; version=0.0.4``) or what ``Accept`` asks for."""
    router = APIRouter()
    expected = None if token is None else f"Bearer {token}".encode()

    @router.get("/metrics", include_in_schema=False, response_model=None)
    async def metrics(request: Request) -> Response:
        # async: the collectors read the hub's state, which only the event loop may touch.
        if expected is None:
            return PlainTextResponse("Not Found", status_code=404)
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            headers = {"WWW-Authenticate": 'Bearer realm="metrics"'}
            return PlainTextResponse("Unauthorized", status_code=401, headers=headers)
        state: ServerState = request.app.state.salon
        body, content_type = state.metrics.exposition(request.headers.get("accept", ""))
        return Response(body, headers={"Content-Type": content_type})

    return router


def route_template(scope: Scope) -> str:
    """The path template of the route that answered a request (``/r/{room}``, ``/assets``):
    routing leaves the route in ``scope["route"]``. :data:`UNMATCHED_ROUTE` when none did:
    a raw path never becomes a label."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


class HttpMetrics:
    """ASGI middleware counting HTTP answers by route template, method and status (the
    WebSocket is counted by its connections). Needs the lifespan's state; before it (or
    without it) nothing is counted."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0

        async def send_and_see(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_see)
        finally:
            self._count(scope, status or 500)

    @staticmethod
    def _count(scope: Scope, status: int) -> None:
        state = getattr(getattr(scope.get("app"), "state", None), "salon", None)
        if state is None:
            return
        method = scope["method"] if scope["method"] in HTTP_METHODS else "other"
        state.metrics.http.child(route_template(scope), method, str(status)).inc()
