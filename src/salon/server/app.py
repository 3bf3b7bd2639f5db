"""``create_app(settings)``: the whole server, built from explicit settings."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version as package_version
from pathlib import Path

from fastapi import FastAPI, Request, WebSocket
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from salon.core.addresses import client_key
from salon.core.clock import Clock, SystemClock
from salon.core.devices import KnownDevices
from salon.core.errors import SalonError
from salon.core.hub import Hub
from salon.core.observe import Observer, Observers
from salon.core.recordings import DownloadKeys
from salon.core.resume import ResumeTokens
from salon.core.session import Session
from salon.core.settings import Settings
from salon.protocol import CloseCode, ErrorCode
from salon.server.accounts import build_account_router, signed_in, still_signed_in
from salon.server.api import MeetingDesk, build_api_router
from salon.server.bodylimit import BodyLimit
from salon.server.bus import Bus, LocalBus, RedisBus
from salon.server.connection import Connection, Receiver
from salon.server.headers import HeadAsGet, SecurityHeaders
from salon.server.janus import SfuLink
from salon.server.keys import resume_secret
from salon.server.logs import RequestIds
from salon.server.metrics import HttpMetrics, Metrics, build_metrics_router
from salon.server.origins import OriginPolicy
from salon.server.pipes import Pipes
from salon.server.recorder import Recorders, local_base_url
from salon.server.recording_api import build_recordings_router
from salon.server.rest import build_router
from salon.server.sfu import JanusRouter
from salon.server.spa import mount_client
from salon.server.state import DRAIN_RETRY_AFTER_MS, ServerState
from salon.server.webhook_api import build_webhook_router
from salon.server.webhooks import WebhookService
from salon.store.accounts import SqlAccountRepository
from salon.store.chat import SqlChatRepository
from salon.store.database import open_database
from salon.store.rooms import SqlRoomRepository
from salon.store.webhooks import SqlWebhookRepository

log = logging.getLogger(__name__)

PACKAGE_STATIC = Path(__file__).resolve().parent.parent / "static"


def store_refusal(exc: SalonError) -> Response:
    """The answer when the database is down or too slow (GuardedEngine), or the other server
    processes cannot be asked (the server API's meetings, :class:`~salon.server.api.
    MeetingDesk`): 503 ``{"detail": {"code", "message"}}`` with ``Retry-After: 5`` (500 for
    any other error)."""
    unavailable = exc.code in (ErrorCode.STORE_UNAVAILABLE, ErrorCode.BUS_UNAVAILABLE)
    status = 503 if unavailable else 500
    detail = {"code": exc.code.value, "message": exc.message}
    return JSONResponse({"detail": detail}, status_code=status, headers={"Retry-After": "5"})


class SalonApp(FastAPI):
    """FastAPI with one way around it: the signaling socket (``/ws``) goes straight to
    :attr:`signaling`, without Starlette's routing, exception and error middleware or the HTTP
    middleware (body limit, HTTP metrics, HEAD). Those pass a WebSocket through untouched, but
    each keeps a coroutine frame, and the exception middleware a wrapper around ``send``,
    alive for the connection's whole life, and each frame the server writes goes through
    every wrapper. Everything else, the lifespan included, goes through FastAPI."""

    signaling: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == "/ws" and self.signaling:
            scope["app"] = self  # what Starlette sets: ``WebSocket.app`` reads it
            await self.signaling(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, clock: Clock | None = None) -> SalonApp:
    clock = clock or SystemClock()
    version = package_version("salon")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        metrics = Metrics()  # this app's own registry, served at /metrics
        url, timeout = settings.sqlalchemy_url(), settings.store_timeout_seconds
        engine = await open_database(url, metrics.database_work, timeout)
        rooms = SqlRoomRepository(engine, settings.accounts.hash_concurrency)
        accounts = SqlAccountRepository(engine)
        secret = resume_secret(settings)
        tokens = ResumeTokens(secret)
        # Several processes share rooms over Redis (docs/SCALING.md); one alone needs nothing.
        bus: Bus = LocalBus()
        if settings.redis_url:
            bus = RedisBus(settings.redis_url, settings.bus_heartbeat_seconds)
        chats = SqlChatRepository(engine)
        hub = Hub(settings.limits, clock, chats, rooms, accounts, tokens, directory=bus.directory)
        devices = KnownDevices(secret)
        state = ServerState(
            settings, clock, engine, hub, rooms, accounts, devices, metrics=metrics, bus=bus
        )
        state.pipes = Pipes(state, bus)
        app.state.meetings = MeetingDesk(state)  # the server API's meetings, on any process
        metrics.watch(state)
        recorders = Recorders(settings, clock, hub, DownloadKeys(secret))
        recorders.open()  # the recordings folder; the retention sweep runs with the watchdog
        hub.recorder = state.recorders = recorders
        app.state.salon = state
        hooks = SqlWebhookRepository(engine)
        webhooks = WebhookService(hooks, settings.webhooks, clock, f"Salon/{version}")
        app.state.webhooks = webhooks
        metrics.watch_webhooks(webhooks)
        observers: list[Observer] = [metrics, webhooks]
        hub.observer = Observers(*observers)
        if settings.sfu_url:
            state.sfu = SfuLink(
                settings.sfu_url, settings.sfu_api_secret, settings.sfu_check_seconds
            )
            state.sfu.start()
            state.router = JanusRouter(
                settings.sfu_url,
                settings.sfu_api_secret,
                settings.sfu_admin_key,
                state.sfu,
                mesh_limit=settings.sfu_mesh_limit,
                max_members=settings.sfu_max_room_members,
                check_seconds=settings.sfu_check_seconds,
            )
            state.router.start()
            hub.sfu = state.router
        state.start()
        webhooks.start()
        await state.pipes.start()  # subscribed (or Redis known to be down) before serving
        try:
            yield
        finally:
            if state.router is not None:
                await state.router.stop()
            if state.sfu is not None:
                await state.sfu.stop()
            await webhooks.stop()  # stores what is queued while the database is open
            await state.stop()

    # No /docs or /redoc: their pages load scripts from a CDN, which Salon's CSP refuses (and an
    # offline server cannot reach). /openapi.json is the document; any OpenAPI viewer reads it.
    app = SalonApp(title="Salon", version=version, lifespan=lifespan, docs_url=None, redoc_url=None)
    origins = OriginPolicy(settings.allowed_origins)
    app.include_router(build_router(version, origins))
    app.include_router(build_account_router(settings.accounts, origins))
    app.include_router(build_metrics_router(settings.metrics_token))  # 404 without a token
    app.include_router(build_api_router())  # API keys, no CSRF guard: salon.server.apiauth
    app.include_router(build_webhook_router())  # API keys too
    app.include_router(build_recordings_router())  # a signed key per file: recording_api

    async def signaling(ws: WebSocket) -> None:
        upgraded_at = time.perf_counter()  # the handshake's duration runs until welcome
        state: ServerState = ws.app.state.salon
        if not origins.permits_websocket(ws):
            # A close before the accept refuses the handshake: HTTP 403 (with the security
            # headers: SecurityHeaders), no upgrade, so a page on another site cannot ride
            # the user's connection.
            log.info("refused /ws from origin %r", ws.headers.get("origin"))
            await ws.close(code=1008)
            return
        if state.draining:
            # HTTP 503 instead of the upgrade (the ASGI websocket.http.response extension):
            # this process is going away; the client retries, reaching the next one.
            retry = str(max(1, DRAIN_RETRY_AFTER_MS // 1000))
            await ws.send_denial_response(
                PlainTextResponse("draining", status_code=503, headers={"Retry-After": retry})
            )
            return
        # Behind a proxy uvicorn puts the X-Forwarded-For address here, from the proxies in
        # forwarded_allow_ips only (with --http), as for the sign-in throttle. Counted by its
        # key: an IPv6 client by its /64.
        address = client_key(ws.client.host) if ws.client else None
        refusal = state.admit(address or "unknown")
        if refusal is not None:
            # HTTP 429 (one address holds or opens too many sockets) or 503 (the server holds
            # max_connections) instead of the upgrade.
            wait = {"Retry-After": str(refusal.retry_after)}
            denial = PlainTextResponse(refusal.reason, refusal.status, wait)
            await ws.send_denial_response(denial)
            return
        try:
            try:
                signed = await signed_in(ws, state, origins)
            except SalonError as exc:
                # The session cookie needs the database (GuardedEngine): HTTP 503 with
                # Retry-After instead of the upgrade, as for any call that needs it.
                log.warning("refused /ws: %s", exc.message)
                await ws.send_denial_response(store_refusal(exc))
                return
            account = None if signed is None else signed.account
            if account is None and settings.require_sign_in:
                # HTTP 401 instead of the upgrade: on this server only accounts get a socket.
                denial = PlainTextResponse("sign in required", status_code=401)
                await ws.send_denial_response(denial)
                return
            await ws.accept()
            try:
                live = signed is None or await still_signed_in(ws, state, origins, signed)
            except SalonError as exc:
                # Checked again after the upgrade (a session ended meanwhile), and the
                # database failed: nothing is seated; the client reconnects with backoff.
                log.warning("closed /ws after the upgrade: %s", exc.message)
                await ws.close(CloseCode.INTERNAL_ERROR, "the database is unavailable")
                return
            if not live:
                # Signed out while the handshake went on: as if it had been open (row 13).
                await ws.close(CloseCode.SIGNED_OUT, "the session was signed out")
                return
            limit = settings.limits.outbox_messages
            conn = Connection(ws, limit, clock.monotonic(), state.metrics, upgraded_at)
            session = Session(
                state.hub,
                conn,
                state.ice_servers,
                account=account,
                guests_may_join=not settings.require_sign_in,
                address=address,
                base_url=local_base_url(ws.scope.get("server"), settings.http),
            )
            max_bytes = settings.limits.max_frame_bytes
            if signed is not None:  # no await since still_signed_in: no sign-out missed
                state.signed[conn] = signed.session
            receiver: Receiver = session
            if state.bus.enabled and state.pipes is not None:
                # Several processes: the front routes each frame (salon.server.front).
                signed_session = None if signed is None else signed.session.session_id
                receiver = state.pipes.front(conn, session, signed_session)
            await conn.run(receiver, clock, max_bytes, state.opened, state.ended)
        finally:
            state.release(address or "unknown")

    async def signaling_app(scope: Scope, receive: Receive, send: Send) -> None:
        await signaling(WebSocket(scope, receive, send))

    # Not a route (SalonApp): the security headers on a refused handshake and the request id
    # in its log lines are all the signaling socket needs of the middleware.
    app.signaling = SecurityHeaders(RequestIds(signaling_app), hsts=not settings.http)

    async def store_unavailable(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SalonError)
        return store_refusal(exc)

    app.add_exception_handler(SalonError, store_unavailable)
    mount_client(app, settings.static_dir or PACKAGE_STATIC)
    app.add_middleware(HeadAsGet)  # innermost: routes see GET, logs and metrics HEAD
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(HttpMetrics)  # outside BodyLimit: its 413s are counted too
    app.add_middleware(RequestIds)  # X-Request-ID; the access log line carries it
    app.add_middleware(SecurityHeaders, hsts=not settings.http)  # outermost: on every answer
    return app
