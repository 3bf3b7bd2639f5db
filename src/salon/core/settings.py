"""Every setting of a Salon server in one object: network, storage, ICE servers and limits.

Values come from CLI flags, ``SALON_*`` environment variables, or the constructor (tests).
The object is built once by the CLI or a test and passed down explicitly: nothing reads it
from a global.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from salon.core.origin import normalize_origin

REDIS_SCHEMES = ("redis", "rediss", "unix")


class LimitSettings(BaseModel):
    """Every limit of the signaling server. Each has a test that proves it."""

    model_config = ConfigDict(frozen=True)

    max_frame_bytes: int = Field(64 * 1024, ge=1024)
    # At most 64: a resume token carries the name and the account's (4 bytes a character at
    # worst), and hello.resume takes at most 1024 characters (tests/unit/test_resume.py).
    max_name_chars: int = Field(64, ge=1, le=64)
    max_chat_chars: int = Field(4000, ge=1)
    max_room_members: int = Field(8, ge=2)
    max_password_chars: int = Field(128, ge=1)
    # Relayed WebRTC strings, in characters: the description.sdp of signal, sfu_publish and
    # sfu_subscribe, and each of the candidate's candidate, sdpMid and usernameFragment of
    # signal and sfu_candidate; longer gets bad_message. Chromium's
    # offer for audio, simulcast camera, screen and its audio is about 11,000 (2026).
    max_sdp_chars: int = Field(32_768, ge=1024)
    max_candidate_chars: int = Field(1024, ge=256)
    outbox_messages: int = Field(256, ge=8)
    rate_per_second: float = Field(50.0, gt=0)
    rate_burst: int = Field(200, ge=1)
    rate_strikes_before_close: int = Field(50, ge=1)
    handshake_seconds: float = Field(10.0, gt=0)
    # A greeted connection that is in no room, waits in no lobby, is in no call, is not
    # reachable by name and watches no presence is closed (4000) after this long idle.
    idle_greeted_seconds: float = Field(120.0, gt=0)
    # Before the WebSocket exists (slow-loris): from TCP accept to the end of the TLS
    # handshake, and for each HTTP request, head and body (after TLS, or after the accept
    # with --http; again after each response on a keep-alive connection). Past either the
    # socket is aborted.
    tls_handshake_seconds: float = Field(10.0, gt=0)
    request_seconds: float = Field(10.0, gt=0)
    ping_after_seconds: float = Field(20.0, gt=0)
    dead_after_seconds: float = Field(45.0, gt=0)
    ring_seconds: float = Field(30.0, gt=0)
    history_on_join: int = Field(50, ge=0)
    history_page: int = Field(200, ge=1)
    max_rooms: int = Field(10_000, ge=1)
    # A member whose connection is lost keeps its place (room, call, name) this long.
    resume_grace_seconds: float = Field(60.0, gt=0)
    # What is kept for a member while it is away, in encoded bytes (and at most
    # outbox_messages - 8 messages, salon.core.place.kept_bound); past either, it is told it
    # missed messages.
    resume_keep_bytes: int = Field(1024 * 1024, ge=64 * 1024)
    # How long a resume token is valid; members get a fresh one at half this.
    resume_token_seconds: float = Field(600.0, ge=10)
    # What a meeting remembers, each oldest first forgotten: the member ids, accounts and
    # client addresses its hosts removed (each up to this many), and the accounts that were
    # its hosts. (At most max_room_members wait in a room's lobby.)
    max_room_removed: int = Field(100, ge=1)
    max_room_host_accounts: int = Field(100, ge=1)
    # Room password guesses: each client address (member id without one) may try this many
    # in a row on one room, then one more every password_retry_seconds; more get rate_limited
    # before any check. A room keeps the counts of at most max_room_guessers addresses.
    password_guesses: int = Field(5, ge=1)
    password_retry_seconds: float = Field(10.0, gt=0)
    max_room_guessers: int = Field(256, ge=1)
    # And all addresses together may try room_password_guess_burst on one room at once, then
    # room_password_guesses_per_minute (rate_limited before any check): many addresses
    # guessing in parallel gain nothing. An address with a member in the room is exempt
    # (its own budget above still holds), so strangers cannot lock out the members' office.
    room_password_guesses_per_minute: float = Field(30.0, gt=0)
    room_password_guess_burst: int = Field(60, ge=1)
    # WebSocket connections one client address may hold at once, and open: this many at
    # once, then handshakes_per_minute; more are refused with HTTP 429 before the upgrade.
    # (Behind a proxy the address is X-Forwarded-For's, from forwarded_allow_ips only.)
    max_connections_per_address: int = Field(100, ge=1)
    # WebSocket connections the server holds in all; the next handshake gets HTTP 503 with
    # Retry-After before the upgrade (about 20 KB of memory each when idle).
    max_connections: int = Field(20_000, ge=1)
    handshakes_per_minute: float = Field(120.0, gt=0)
    handshake_burst: int = Field(60, ge=1)
    # Rooms created over REST (POST /api/v1/rooms) by one signed-in account, or without an
    # account from one client address (an IPv6 client by its /64; people behind one NAT
    # share it): this many at once, then room_creations_per_minute; more get HTTP 429
    # rate_limited with Retry-After, and nothing is stored.
    room_creations_per_minute: float = Field(30.0, gt=0)
    room_creation_burst: int = Field(60, ge=1)
    # Joins of one room (a knock counts, a resume does not): this many at once, then
    # room_joins_per_minute; more get rate_limited, and the room hears nothing.
    room_joins_per_minute: float = Field(120.0, gt=0)
    room_join_burst: int = Field(50, ge=1)
    # Chat storage: each member may send chat_burst messages at once, then chat_per_minute
    # (more get rate_limited and are not stored); a room keeps its newest
    # max_room_chat_messages (older ones are deleted as new ones come); and every message is
    # deleted chat_retention_days after it was sent (a sweep once an hour).
    chat_per_minute: float = Field(30.0, gt=0)
    chat_burst: int = Field(20, ge=1)
    # Chat from one client address, all its members together (a new connection is no new
    # budget): this many at once, then address_chat_per_minute; more get rate_limited and
    # are not stored. Sized for an office of ~30 people behind one NAT chatting briskly.
    address_chat_per_minute: float = Field(180.0, gt=0)
    address_chat_burst: int = Field(120, ge=1)
    max_room_chat_messages: int = Field(10_000, ge=1)
    chat_retention_days: float = Field(30.0, gt=0)
    # Reactions (👍, 👏, …): each member may send this many a second, in bursts of up to
    # reaction_burst; more get rate_limited and reach nobody.
    reaction_rate_per_second: float = Field(1.0, gt=0)
    reaction_burst: int = Field(5, ge=1)
    # Recordings one room may start (v2 ``record {on: true}``; each runs a recorder process):
    # record_burst at once, then records_per_hour; more get rate_limited. Stopping is free.
    record_burst: int = Field(3, ge=1)
    records_per_hour: float = Field(12.0, gt=0)

    @model_validator(mode="after")
    def _dead_after_ping(self) -> LimitSettings:
        if self.dead_after_seconds <= self.ping_after_seconds:
            raise ValueError("dead_after_seconds must be longer than ping_after_seconds")
        if self.resume_token_seconds <= self.resume_grace_seconds:
            raise ValueError("resume_token_seconds must be longer than resume_grace_seconds")
        if self.max_room_chat_messages < self.history_on_join:
            raise ValueError("max_room_chat_messages must be at least history_on_join")
        return self


class AccountSettings(BaseModel):
    """Accounts and sign-in sessions: password lengths, session life, guessing throttles."""

    model_config = ConfigDict(frozen=True)

    min_password_chars: int = Field(8, ge=1)
    max_password_chars: int = Field(1024, ge=8)  # longer is refused before any hashing
    session_days: float = Field(30.0, gt=0)
    hash_concurrency: int = Field(2, ge=1)  # argon2id hashes at once (19 MiB each)
    ip_attempts_per_minute: float = Field(10.0, gt=0)  # sign-ins and sign-ups per address
    ip_attempts_burst: int = Field(10, ge=1)
    # Sign-ins to one account name from one client address, or from one known device (a
    # browser that signed in to that account before, salon_device cookie): each has its own
    # budget, so a stranger's guesses elsewhere never lock the owner out.
    account_attempts_per_minute: float = Field(2.0, gt=0)
    account_attempts_burst: int = Field(5, ge=1)
    # The ceiling for one account name over all addresses together; known devices are exempt.
    account_ceiling_per_minute: float = Field(30.0, gt=0)
    account_ceiling_burst: int = Field(100, ge=1)
    known_device_days: float = Field(365.0, gt=0)  # how long a known-device cookie lasts
    throttle_keys: int = Field(100_000, ge=100)  # addresses and names remembered


class WebhookSettings(BaseModel):
    """Webhook delivery (docs/OPERATIONS.md): how long one POST may take, how many run at once,
    and how long a failing endpoint is retried (backoff doubling from 1 s up to
    ``max_backoff_seconds``, at most ``max_attempts`` tries in all)."""

    model_config = ConfigDict(frozen=True)

    timeout_seconds: float = Field(10.0, gt=0)
    concurrency: int = Field(4, ge=1)
    max_attempts: int = Field(16, ge=1)
    max_backoff_seconds: float = Field(3600.0, gt=0)
    # Events waiting to be stored (the database is slow or down); past it the oldest are
    # dropped, counted and logged: a meeting never waits for its webhooks.
    queue_events: int = Field(10_000, ge=10)
    max_endpoints: int = Field(20, ge=1)
    retention_days: float = Field(7.0, gt=0)  # delivered and failed deliveries are kept so long
    # The backlog of an endpoint that is down: past max_pending pending deliveries its oldest
    # are failed unsent, and so is one still pending max_pending_hours after its event.
    max_pending: int = Field(10_000, ge=10)
    max_pending_hours: float = Field(72.0, gt=0)


class RecordingSettings(BaseModel):
    """Recording meetings (docs/PROTOCOL.md §3.9, docs/OPERATIONS.md): the server runs a
    recorder (``salon bot record``) per recorded room, in a child process, writing into
    ``data_dir/recordings``."""

    model_config = ConfigDict(frozen=True)

    # Off: every ``record`` gets recording_unavailable. On, it also needs the client extra
    # (aiortc) installed.
    enabled: bool = True
    # All recordings together, in bytes: a new one is refused (recording_unavailable) once
    # they reach it. Each recorder stops when its share is spent: max_bytes / max_active, or
    # what is left of max_bytes (less the shares of the others running) when that is less.
    max_bytes: int = Field(2 * 1024**3, ge=1024**2)
    max_active: int = Field(4, ge=1)  # recorders running at once, on this process
    # Who may record: "anyone" (any host, a guest who opened an empty room included) or
    # "signed_in" (hosts signed in to an account). Public servers with accounts want the
    # latter: a guest host can otherwise spend the whole budget, for retention_days.
    hosts: Literal["anyone", "signed_in"] = "anyone"
    retention_days: float = Field(30.0, gt=0)  # a recording is deleted so long after it started
    # A stopped recorder has this long to finish its files after SIGTERM; then SIGKILL.
    stop_seconds: float = Field(10.0, gt=0)


class Settings(BaseSettings):
    """A Salon server's configuration. Environment: ``SALON_<NAME>``; nested limits:
    ``SALON_LIMITS__MAX_ROOM_MEMBERS=12``."""

    model_config = SettingsConfigDict(
        env_prefix="SALON_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    host: str = "0.0.0.0"  # noqa: S104 - a meeting server listens on the LAN by default
    port: int = Field(8443, ge=0, le=65535)
    data_dir: Path = Path("data")
    http: bool = False  # plain HTTP, for running behind a TLS-terminating proxy
    cert: Path | None = None
    key: Path | None = None
    database_url: str | None = None  # default: SQLite file in data_dir
    # One unit of database work (a connection, a transaction) taking longer than this counts
    # as the database being unavailable: store_unavailable on the wire, 503 over REST. At
    # start, `salon serve` tries to reach the database for up to store_start_seconds, then
    # exits with status 3 saying why (the migrations that follow are not timed).
    store_timeout_seconds: float = Field(10.0, gt=0)
    store_start_seconds: float = Field(30.0, ge=0)
    forwarded_allow_ips: str = "127.0.0.1"  # proxies whose X-Forwarded-* headers are trusted
    public_url: str | None = None  # base of room links; default: from the request
    # Web origins besides the server's own whose pages may open /ws and change state over
    # REST, e.g. ["https://meet.example.org"] when a proxy rewrites Host.
    allowed_origins: list[str] = Field(default_factory=list)
    stun_urls: list[str] = Field(default_factory=list)
    turn_urls: list[str] = Field(default_factory=list)
    turn_secret: str | None = None
    turn_ttl_seconds: int = Field(6 * 3600, ge=60)
    turn_realm: str = "salon"  # coturn's realm: `salon turn-config`, `serve --with-turn`
    turn_port: int = Field(3478, ge=1, le=65535)  # the coturn that `serve --with-turn` starts
    static_dir: Path | None = None  # the built client; default: the package's static folder
    log_level: str = "info"
    # auto: plain text when stderr is a terminal, one JSON object per line otherwise.
    log_format: Literal["auto", "text", "json"] = "auto"
    # /metrics (Prometheus text) answers only to ``Authorization: Bearer <metrics_token>``;
    # without a token set it is off (404).
    metrics_token: str | None = Field(None, min_length=16)
    # The longest life of a join link minted through the server API, in seconds.
    invite_max_seconds: int = Field(30 * 86400, ge=60)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    # Only signed-in members may join rooms (over /ws) and create them (REST); guests may
    # still connect, say hello and sign in.
    require_sign_in: bool = False
    # REST request bodies (under /api/) larger than this are refused with 413 before parsing.
    max_body_bytes: int = Field(16 * 1024, ge=1024)
    # Signs resume tokens (HMAC-SHA256); default: a random key kept in data_dir/resume.key.
    # Processes that must honour each other's tokens share it.
    resume_secret: str | None = Field(None, min_length=32)
    # SIGTERM: members are told and closed (1012) spread over drain_spread_seconds; the
    # process exits when none is left, or after drain_seconds at the latest.
    drain_seconds: float = Field(30.0, gt=0)
    drain_spread_seconds: float = Field(5.0, ge=0)
    # Several processes (docs/SCALING.md): the Redis they share rooms over, redis://,
    # rediss:// (TLS) or unix://; a password goes in the URL (redis://:pw@host:6379/0). None:
    # one process, no Redis. `salon serve --workers N` with N >= 2 needs it.
    redis_url: str | None = None
    # How often each process writes its keys to Redis; one that stays silent 3 heartbeats is
    # taken for dead (its rooms and places are taken over, its piped members resume).
    bus_heartbeat_seconds: float = Field(1.0, gt=0, le=10)
    # The SFU of big rooms (docs/SFU.md): the Janus API's WebSocket URL (ws:// or wss://) and
    # the api_secret its requests carry. None: no SFU. `salon serve --with-sfu` starts a local
    # Janus (its API on 127.0.0.1:sfu_port, media on UDP sfu_rtp_ports) and sets both.
    sfu_url: str | None = None
    sfu_api_secret: str | None = None
    sfu_port: int = Field(8188, ge=1, le=65535)
    sfu_rtp_ports: tuple[int, int] = (20000, 40000)
    sfu_check_seconds: float = Field(5.0, gt=0, le=30)  # keepalive, and retry when down
    # The VideoRoom admin_key, which creating a room on that Janus needs (salon sfu-config
    # prints it; --with-sfu sets it). None: that Janus lets anyone create rooms.
    sfu_admin_key: str | None = None
    # A mesh room whose next member would make it larger than this moves to the SFU (when one
    # is configured and answers). Four: on two cores a 4th person's mesh takes 1.4 s to set
    # up, a 6th one's 9 s (docs/BENCHMARKS.md); each browser uploads one copy per peer.
    sfu_mesh_limit: int = Field(4, ge=1)
    sfu_max_room_members: int = Field(50, ge=2, le=1000)  # the most a room on the SFU holds
    limits: LimitSettings = Field(default_factory=LimitSettings)
    accounts: AccountSettings = Field(default_factory=AccountSettings)
    recordings: RecordingSettings = Field(default_factory=RecordingSettings)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        normalized = []
        for value in values:
            origin = normalize_origin(value)
            if origin is None:
                raise ValueError(f"not a web origin (scheme://host[:port]): {value!r}")
            normalized.append(origin)
        return normalized

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        # Empty is unset (SALON_REDIS_URL= in an env file). The message never echoes the
        # URL: it may carry a password.
        if not value:
            return None
        if value.partition("://")[0] not in REDIS_SCHEMES:
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    def sqlalchemy_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'salon.db').resolve()}"
