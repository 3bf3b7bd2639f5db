"""``salon``: serve, print the protocol schema, print a coturn config."""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from salon.core.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


def _settings(**flags: Any) -> Settings:
    """The settings from ``SALON_*`` variables and ``flags``; invalid ones end the command
    (exit 2) with one line each, naming the setting but never echoing its value (it may be a
    secret: a token, a password in a database URL)."""
    from pydantic import ValidationError

    try:
        return Settings(**flags)
    except ValidationError as exc:
        problems = exc.errors(include_url=False, include_input=False, include_context=False)
        print("salon: invalid settings (SALON_* variables or flags):", file=sys.stderr)
        for problem in problems:
            where = "__".join(str(part) for part in problem["loc"]).upper() or "SETTINGS"
            print(f"  SALON_{where}: {problem['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


def _serve(args: argparse.Namespace) -> int:
    from salon.server.logs import configure_logging
    from salon.server.process import raise_fd_limit, tune_allocator
    from salon.server.runner import ConfigError, serving

    flags: dict[str, Any] = {
        k: v
        for k, v in {
            "host": args.host,
            "port": args.port,
            "data_dir": args.data_dir,
            "cert": args.cert,
            "key": args.key,
            "http": args.http or None,
        }.items()
        if v is not None
    }
    settings = _settings(**flags)
    if args.worker_of is not None:
        return _serve_worker(settings, args.worker_of)
    if args.workers > 1 and settings.redis_url is None:
        print(
            "salon: --workers 2 or more needs SALON_REDIS_URL (the processes share rooms "
            "over Redis; docs/SCALING.md)",
            file=sys.stderr,
        )
        return 2
    # Text on a terminal, JSON lines otherwise (SALON_LOG_FORMAT); uvicorn's lines too.
    configure_logging(settings.log_level, settings.log_format)
    turn = None
    if args.with_turn:
        from salon.server.coturn import CoturnError, start_local_turn

        # uvicorn re-raises SIGTERM after its graceful shutdown; as an exception it lets the
        # `finally` below stop coturn instead of killing us first.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        try:
            settings, turn = start_local_turn(settings)
        except CoturnError as exc:
            print(f"salon: {exc}", file=sys.stderr)
            return 2
        print(f"TURN relay (coturn, pid {turn.process.pid}): {' '.join(settings.turn_urls)}")
    sfu = None
    if args.with_sfu:
        from salon.server.janus import JanusError, start_local_sfu

        signal.signal(signal.SIGTERM, _exit_on_sigterm)  # as for --with-turn
        try:
            settings, sfu = start_local_sfu(settings)
        except JanusError as exc:
            print(f"salon: {exc}", file=sys.stderr)
            if turn is not None:
                turn.stop()
            return 2
        print(f"SFU (Janus, pid {sfu.running.process.pid}): API {settings.sfu_url}")
    # One descriptor per connection: 10,000 connections need more than the usual 1,024.
    raise_fd_limit()
    tune_allocator()
    try:
        if args.workers > 1:
            return _serve_workers(settings, args.workers)
        try:
            server = serving(settings)
        except ConfigError as exc:
            print(f"salon: {exc}", file=sys.stderr)
            return 2
        if not _database_reached(settings):
            return 3
        scheme = "http" if settings.http else "https"
        shown = "localhost" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104
        print(f"Salon serving {scheme}://{shown}:{settings.port}", flush=True)
        server.run()
    finally:
        if sfu is not None:
            sfu.stop()
        if turn is not None:
            turn.stop()
    return 0


def _serve_workers(settings: Settings, count: int) -> int:
    """``salon serve --workers N``: do here what must happen once (the self-signed
    certificate, the database check and migrations, the resume key; coturn was started by the
    caller), then run N workers (``salon serve --worker-of PID``) on the same port, each told
    these settings through its environment, until a signal (salon.server.process.Workers)."""
    import asyncio
    import os

    from salon.server.keys import resume_secret
    from salon.server.process import Workers, shared_port
    from salon.server.runner import ConfigError, tls_files

    try:
        tls = tls_files(settings)
    except ConfigError as exc:
        print(f"salon: {exc}", file=sys.stderr)
        return 2
    try:  # held, not listening, while the workers run: no other program takes the port
        reserved = shared_port(settings.host, settings.port, listen=False)
    except OSError as exc:
        print(f"salon: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        return 2
    with reserved:
        port = reserved.getsockname()[1]  # the one chosen for --port 0
        if not _database_reached(settings) or not _database_migrated(settings):
            return 3
        resume_secret(settings)  # data_dir/resume.key, unless SALON_RESUME_SECRET is set
        env = {
            **os.environ,
            "SALON_HOST": settings.host,
            "SALON_PORT": str(port),
            "SALON_DATA_DIR": str(settings.data_dir.resolve()),
            "SALON_HTTP": "true" if settings.http else "false",
            # --with-turn's coturn: its fresh secret and URLs
            "SALON_TURN_URLS": json.dumps(settings.turn_urls),
            "SALON_STUN_URLS": json.dumps(settings.stun_urls),
        }
        if settings.turn_secret is not None:
            env["SALON_TURN_SECRET"] = settings.turn_secret
        if settings.sfu_url is not None:  # --with-sfu's Janus, or the one configured
            env["SALON_SFU_URL"] = settings.sfu_url
        if settings.sfu_api_secret is not None:
            env["SALON_SFU_API_SECRET"] = settings.sfu_api_secret
        if settings.sfu_admin_key is not None:
            env["SALON_SFU_ADMIN_KEY"] = settings.sfu_admin_key
        if tls is not None:
            env["SALON_CERT"], env["SALON_KEY"] = (str(Path(f).resolve()) for f in tls)
        scheme = "http" if settings.http else "https"
        shown = "localhost" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104
        print(f"Salon serving {scheme}://{shown}:{port} with {count} processes", flush=True)
        command = [sys.executable, "-m", "salon", "serve", "--worker-of", str(os.getpid())]
        return asyncio.run(Workers(count, command, env).run())


def _serve_worker(settings: Settings, parent: int) -> int:
    """One of ``salon serve --workers``'s processes: the parent did the once-only work and
    passed the settings in the environment; listen on the shared port and serve."""
    from salon.server.logs import configure_logging
    from salon.server.process import raise_fd_limit, shared_port, tune_allocator
    from salon.server.runner import ConfigError, serving

    configure_logging(settings.log_level, settings.log_format)
    raise_fd_limit()
    tune_allocator()
    try:
        server = serving(settings, parent=parent)
        sock = shared_port(settings.host, settings.port, listen=True)
    except (ConfigError, OSError) as exc:
        print(f"salon: {exc}", file=sys.stderr)
        return 2
    server.run(sockets=[sock])
    return 0


def _database_migrated(settings: Settings) -> bool:
    """Bring the database to the newest schema (the workers then find nothing to do); if
    that fails, one line on stderr says why."""
    import asyncio

    from sqlalchemy.exc import SQLAlchemyError

    from salon.store.database import open_database

    async def migrate() -> None:
        engine = await open_database(settings.sqlalchemy_url())
        await engine.dispose()

    try:
        asyncio.run(migrate())
    except (SQLAlchemyError, OSError) as exc:
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"salon: the database could not be migrated: {why}", file=sys.stderr)
        return False
    return True


def _database_reached(settings: Settings) -> bool:
    """Whether the database answers, tried for up to ``store_start_seconds``; if not, one line
    on stderr says why (exit 3: a service manager sees a failed start, not a crash loop)."""
    import asyncio

    from salon.store.database import DatabaseUnreachable, wait_for_database

    url, timeout = settings.sqlalchemy_url(), settings.store_timeout_seconds
    try:
        asyncio.run(wait_for_database(url, timeout, settings.store_start_seconds))
    except DatabaseUnreachable as exc:
        print(f"salon: {exc}", file=sys.stderr)
        return False
    return True


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _turn_config(args: argparse.Namespace) -> int:
    from salon.core.turnconfig import PeerPolicy, TurnServerConfig, turnserver_conf
    from salon.server.coturn import interface_addresses, lan_address

    settings = _settings()
    if not settings.turn_secret:
        print(
            "salon: set SALON_TURN_SECRET first, for example to the output of\n"
            "  python3 -c 'import secrets; print(secrets.token_urlsafe(32))'",
            file=sys.stderr,
        )
        return 2
    try:
        text = turnserver_conf(
            TurnServerConfig(
                secret=settings.turn_secret,
                realm=args.realm or settings.turn_realm,
                listening_port=args.port or settings.turn_port,
                tls_listening_port=args.tls_port,
                min_port=args.min_port,
                max_port=args.max_port,
                listening_ips=tuple(args.listening_ip),
                # Pinned, so the one address relay-to-relay calls need stays allowed.
                relay_ips=tuple(args.relay_ip)
                or (() if args.listening_ip or args.any_host else (lan_address(),)),
                external_ip=args.external_ip,
                host_addresses=tuple(
                    args.host_address
                    if args.any_host
                    else args.host_address or interface_addresses()
                ),
                cert=args.cert,
                pkey=args.pkey,
                peers=PeerPolicy.LAN if args.lan else PeerPolicy.PUBLIC,
            )
        )
    except ValueError as exc:
        print(f"salon: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


def _schema(_args: argparse.Namespace) -> int:
    from salon.protocol.codec import json_schema

    print(json.dumps(json_schema(), indent=2, sort_keys=True))
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a whole number of at least 1: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="salon", description="Salon video-conferencing server")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the client and signaling over HTTPS")
    serve.add_argument("--host", help="address to listen on (default 0.0.0.0)")
    serve.add_argument("--port", type=int, help="port (default 8443)")
    serve.add_argument("--data-dir", type=Path, help="data folder (default ./data)")
    serve.add_argument("--cert", type=Path, help="TLS certificate (PEM); default self-signed")
    serve.add_argument("--key", type=Path, help="TLS private key (PEM)")
    serve.add_argument(
        "--http", action="store_true", help="plain HTTP, behind a TLS-terminating proxy"
    )
    serve.add_argument(
        "--with-turn",
        action="store_true",
        help="also start a local coturn (turnserver) with a generated secret; see docs/TURN.md",
    )
    serve.add_argument(
        "--with-sfu",
        action="store_true",
        help="also start a local Janus (the SFU of big rooms) with generated secrets, its API "
        "on 127.0.0.1 only; see docs/SFU.md",
    )
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        metavar="N",
        help="run N server processes on the one port, sharing rooms over Redis "
        "(SALON_REDIS_URL, needed for 2 or more); see docs/SCALING.md",
    )
    serve.add_argument("--worker-of", type=int, help=argparse.SUPPRESS)  # Workers' children
    serve.set_defaults(run=_serve)
    _add_turn_config(sub)
    _add_sfu_config(sub)
    _add_api_key(sub)
    _add_webhook(sub)
    _add_bot(sub)
    schema = sub.add_parser("schema", help="print the JSON Schema of every protocol message")
    schema.set_defaults(run=_schema)
    return parser


def _add_turn_config(sub: Any) -> None:
    tc = sub.add_parser(
        "turn-config",
        help="print a hardened turnserver.conf for SALON_TURN_SECRET and the realm",
        description="Print a coturn config for Salon's TURN credentials (use-auth-secret) that "
        "refuses to relay to loopback, private, link-local and other internal addresses. "
        "The secret comes from SALON_TURN_SECRET, never from the command line.",
    )
    tc.add_argument("--realm", help="coturn realm, usually the TURN host name (SALON_TURN_REALM)")
    tc.add_argument("--port", type=int, help="UDP and TCP listening port (default 3478)")
    tc.add_argument("--tls-port", type=int, default=5349, help="TLS port (default 5349)")
    tc.add_argument("--min-port", type=int, default=49152, help="first relay port (49152)")
    tc.add_argument("--max-port", type=int, default=65535, help="last relay port (65535)")
    tc.add_argument("--listening-ip", action="append", default=[], help="repeatable")
    tc.add_argument(
        "--relay-ip",
        action="append",
        default=[],
        help="repeatable (default: the listening IPs, else this machine's default-route address)",
    )
    tc.add_argument("--external-ip", help="public address, or public/private behind 1:1 NAT")
    tc.add_argument(
        "--host-address",
        action="append",
        default=[],
        help="an address of the TURN host, denied as a peer; repeatable. Replaces the default: "
        "every address of this machine's interfaces (give them when generating for another host)",
    )
    tc.add_argument(
        "--any-host",
        action="store_true",
        help="a template for hosts not known here (deploy/turnserver.conf): no relay IP pinned, "
        "no address of this machine denied; the ranges still apply",
    )
    tc.add_argument("--cert", help="PEM certificate for turns: (TLS); without it TLS is off")
    tc.add_argument("--pkey", help="PEM private key for --cert")
    tc.add_argument(
        "--lan", action="store_true", help="also relay to private (LAN) peers; not for the internet"
    )
    tc.set_defaults(run=_turn_config)


def _add_sfu_config(sub: Any) -> None:
    sc = sub.add_parser(
        "sfu-config",
        help="write a hardened Janus configuration with fresh secrets into a folder",
        description="Write janus.jcfg, janus.transport.websockets.jcfg and "
        "janus.plugin.videoroom.jcfg (mode 0600) for a Janus that Salon's server drives: only "
        "the VideoRoom plugin and the WebSocket transport, the API on one address with a fresh "
        "api_secret, the Admin API off, rooms created only with the admin_key. Prints the "
        "SALON_SFU_URL, SALON_SFU_API_SECRET and SALON_SFU_ADMIN_KEY to give Salon. "
        "See docs/SFU.md.",
    )
    sc.add_argument("folder", type=Path, help="where to write (janus -F FOLDER)")
    sc.add_argument("--port", type=int, default=8188, help="Janus API port (default 8188)")
    sc.add_argument(
        "--api-ip",
        default="127.0.0.1",
        help="address the Janus API listens on and accepts (default 127.0.0.1: Salon on the "
        "same host); a private address when Salon runs elsewhere",
    )
    sc.add_argument("--rtp-ports", default="20000-40000", help="UDP media ports, MIN-MAX")
    sc.add_argument("--public-ip", help="the public address of a host behind 1:1 NAT (cloud VM)")
    sc.set_defaults(run=_sfu_config)


def _rtp_ports(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    try:
        ports = int(low), int(high)
    except ValueError:
        raise ValueError(f"--rtp-ports: not MIN-MAX: {text!r}") from None
    if not 1024 <= ports[0] < ports[1] <= 65535:
        raise ValueError(f"--rtp-ports: not 1024 <= MIN < MAX <= 65535: {text!r}")
    return ports


def _sfu_config(args: argparse.Namespace) -> int:
    from salon.core.janusconfig import JanusConfig
    from salon.server.janus import write_janus_configs

    try:
        config = JanusConfig.fresh(
            ws_port=args.port,
            ws_ip=args.api_ip,
            rtp_ports=_rtp_ports(args.rtp_ports),
            public_ip=args.public_ip,
            configs_folder=args.folder.resolve(),
        )
    except ValueError as exc:
        print(f"salon: {exc}", file=sys.stderr)
        return 2
    for path in write_janus_configs(config, args.folder):
        print(f"wrote {path}", file=sys.stderr)
    print(f"SALON_SFU_URL={config.url}")
    print(f"SALON_SFU_API_SECRET={config.api_secret}")
    print(f"SALON_SFU_ADMIN_KEY={config.admin_key}")
    return 0


def _store_settings(args: argparse.Namespace) -> Settings:
    return _settings() if args.data_dir is None else _settings(data_dir=args.data_dir)


class NoDataFolder(Exception):
    """The commands that work on the server's database found no data folder where they looked."""


@contextlib.asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The server's database (migrated), for ``api-key`` and ``webhook`` commands. With the
    default SQLite database, a data folder that does not exist is refused: run from the wrong
    place, a command would otherwise make a new, empty database nobody serves."""
    from salon.store.database import open_database

    if settings.database_url is None and not settings.data_dir.is_dir():
        raise NoDataFolder(
            f"no data folder at {settings.data_dir}: give the server's with --data-dir "
            "(or SALON_DATA_DIR), or set SALON_DATABASE_URL"
        )
    engine = await open_database(settings.sqlalchemy_url())
    try:
        yield engine
    finally:
        await engine.dispose()


def _print_table(rows: list[tuple[str, ...]]) -> None:
    """Columns padded to their widest cell; the last one is left as it is."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]))


def _api_key(args: argparse.Namespace) -> int:
    """``salon api-key create|list|revoke``, straight on the database the server uses."""
    import asyncio

    from sqlalchemy.exc import SQLAlchemyError

    from salon.core.errors import SalonError
    from salon.store.apikeys import InvalidKeyRequest

    try:
        code: int = asyncio.run(args.key_command(args, _store_settings(args)))
        return code
    except (InvalidKeyRequest, SalonError, NoDataFolder) as exc:
        print(f"salon: {exc}", file=sys.stderr)
        return 2
    except (SQLAlchemyError, OSError) as exc:  # opening the database: unreachable, refused
        print(f"salon: the database cannot be reached: {exc}", file=sys.stderr)
        return 2


async def _api_key_create(args: argparse.Namespace, settings: Settings) -> int:
    from salon.store.apikeys import SqlApiKeyRepository, check_name, check_scopes

    name, scopes = check_name(args.name), check_scopes(args.scope)  # before opening anything
    async with _database(settings) as engine:
        made = await SqlApiKeyRepository(engine).create(name, scopes, _now_ms())
    # The key alone on stdout (KEY=$(salon api-key create NAME)); the rest for a person.
    print(made.token)
    print(
        f"API key {made.key.id} ({made.key.name}): {' '.join(made.key.scopes)}\n"
        "It is shown this once: keep it now. Revoke it with: "
        f"salon api-key revoke {made.key.id}{_data_dir_flag(args)}",
        file=sys.stderr,
    )
    return 0


async def _api_key_list(_args: argparse.Namespace, settings: Settings) -> int:
    from salon.store.apikeys import SqlApiKeyRepository

    async with _database(settings) as engine:
        keys = await SqlApiKeyRepository(engine).list_keys()
    rows: list[tuple[str, ...]] = [("ID", "NAME", "SCOPES", "CREATED", "LAST USED", "REVOKED")]
    for key in keys:
        times = (key.created_ms, key.last_used_ms, key.revoked_ms)
        rows.append((key.id, key.name, ",".join(key.scopes), *map(_utc, times)))
    _print_table(rows)
    return 0


async def _api_key_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from salon.store.apikeys import SqlApiKeyRepository

    async with _database(settings) as engine:
        found = await SqlApiKeyRepository(engine).revoke(args.id, _now_ms())
    if not found:
        print(f"salon: no API key {args.id!r} (see salon api-key list)", file=sys.stderr)
        return 2
    print(f"revoked API key {args.id}")
    return 0


def _data_dir_flag(args: argparse.Namespace) -> str:
    """`` --data-dir DIR`` when the command was given one, for the hints it prints."""
    return "" if args.data_dir is None else f" --data-dir {shlex.quote(str(args.data_dir))}"


def _now_ms() -> int:
    import time

    return time.time_ns() // 1_000_000


def _utc(ms: int | None) -> str:
    import datetime

    if ms is None:
        return "-"
    moment = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _data_dir_parent() -> argparse.ArgumentParser:
    """``--data-dir``, for the commands that work on the server's database."""
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--data-dir", type=Path, help="the server's data folder (default ./data, SALON_DATA_DIR)"
    )
    return where


def _add_api_key(sub: Any) -> None:
    from salon.store.apikeys import MAX_NAME_CHARS, SCOPES

    group = sub.add_parser(
        "api-key",
        help="create, list and revoke keys of the server API (/api/v1/meetings, webhooks)",
        description="Keys of the server API, kept in the database the server uses "
        "(SALON_DATABASE_URL, or the data folder's SQLite file). See docs/OPERATIONS.md.",
    )
    keys = group.add_subparsers(dest="key_command_name", required=True)
    where = _data_dir_parent()
    create = keys.add_parser(
        "create",
        parents=[where],
        help="make a key and print it (once)",
        description="Make an API key and print it on stdout, once: only its SHA-256 is kept.",
    )
    create.add_argument("name", help=f"what the key is for (at most {MAX_NAME_CHARS} chars)")
    create.add_argument(
        "--scope",
        action="append",
        default=[],
        choices=SCOPES,
        help="repeatable; default: all of " + ", ".join(SCOPES),
    )
    create.set_defaults(key_command=_api_key_create)
    listing = keys.add_parser(
        "list", parents=[where], help="every key: id, name, scopes, created, used, revoked"
    )
    listing.set_defaults(key_command=_api_key_list)
    revoke = keys.add_parser(
        "revoke", parents=[where], help="revoke a key: it gets 401 from now on"
    )
    revoke.add_argument("id", help="the key's id (salon api-key list)")
    revoke.set_defaults(key_command=_api_key_revoke)
    group.set_defaults(run=_api_key)


def _webhook(args: argparse.Namespace) -> int:
    """``salon webhook add|list|remove``, straight on the database the server uses."""
    import asyncio

    from salon.core.errors import SalonError
    from salon.server.webhooks import InvalidWebhook
    from salon.store.webhooks import TooManyWebhooks

    try:
        code: int = asyncio.run(args.hook_command(args, _store_settings(args)))
        return code
    except (InvalidWebhook, TooManyWebhooks, SalonError, NoDataFolder) as exc:
        print(f"salon: {exc}", file=sys.stderr)
        return 2


async def _webhook_add(args: argparse.Namespace, settings: Settings) -> int:
    from salon.server.webhooks import check_events, check_url, new_secret
    from salon.store.webhooks import SqlWebhookRepository

    url, events = check_url(args.url), check_events(args.event or None)  # before opening
    secret = new_secret()
    async with _database(settings) as engine:
        store = SqlWebhookRepository(engine)
        hook = await store.add(url, secret, events, _now_ms(), settings.webhooks.max_endpoints)
    # The secret alone on stdout (SECRET=$(salon webhook add URL)); the rest for a person.
    print(secret)
    print(
        f"webhook {hook.id}: {' '.join(hook.events)} -> {hook.url}\n"
        "The signing secret is shown this once: keep it now. Remove the webhook with: "
        f"salon webhook remove {hook.id}{_data_dir_flag(args)}",
        file=sys.stderr,
    )
    return 0


async def _webhook_list(_args: argparse.Namespace, settings: Settings) -> int:
    from salon.store.webhooks import SqlWebhookRepository

    async with _database(settings) as engine:
        hooks = await SqlWebhookRepository(engine).endpoints()
    rows: list[tuple[str, ...]] = [("ID", "CREATED", "EVENTS", "URL")]
    rows += [(h.id, _utc(h.created_ms), ",".join(h.events), h.url) for h in hooks]
    _print_table(rows)
    return 0


async def _webhook_remove(args: argparse.Namespace, settings: Settings) -> int:
    from salon.store.webhooks import SqlWebhookRepository

    async with _database(settings) as engine:
        found = await SqlWebhookRepository(engine).remove(args.id)
    if not found:
        print(f"salon: no webhook {args.id!r} (see salon webhook list)", file=sys.stderr)
        return 2
    print(f"removed webhook {args.id}")
    return 0


def _add_webhook(sub: Any) -> None:
    from salon.server.webhooks import EVENT_TYPES

    group = sub.add_parser(
        "webhook",
        help="add, list and remove webhook endpoints (meeting events, signed)",
        description="Webhook endpoints, kept in the database the server uses "
        "(SALON_DATABASE_URL, or the data folder's SQLite file). See docs/OPERATIONS.md.",
    )
    hooks = group.add_subparsers(dest="hook_command_name", required=True)
    where = _data_dir_parent()
    add = hooks.add_parser(
        "add",
        parents=[where],
        help="register an endpoint and print its signing secret (once)",
        description="Register an endpoint (http:// or https://, at most 2000 characters) and "
        "print its signing secret (whsec_...) on stdout, once.",
    )
    add.add_argument("url", help="where to POST the events")
    add.add_argument(
        "--event",
        action="append",
        default=[],
        choices=EVENT_TYPES,
        help="repeatable; default: all of " + ", ".join(EVENT_TYPES),
    )
    add.set_defaults(hook_command=_webhook_add)
    listing = hooks.add_parser("list", parents=[where], help="every endpoint: id, events, URL")
    listing.set_defaults(hook_command=_webhook_list)
    remove = hooks.add_parser(
        "remove", parents=[where], help="remove an endpoint and its deliveries"
    )
    remove.add_argument("id", help="the webhook's id (salon webhook list)")
    remove.set_defaults(hook_command=_webhook_remove)
    group.set_defaults(run=_webhook)


def _bot(args: argparse.Namespace) -> int:
    """``salon bot echo|record|play``: the bots need the ``client`` extra (aiortc, PyAV),
    imported only here so that the server runs without it."""
    # A stop asked for while the bot is still starting (importing aiortc takes a second) has
    # nothing to close yet: exit 0 at once. The bot puts its own handler in place later.
    signal.signal(signal.SIGTERM, _stop_starting_bot)  # (python -m salon does it earlier)
    try:
        from salon.bots.command import run_command
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] not in ("aiortc", "av"):
            raise
        print(
            "salon: the bots need aiortc and PyAV: install salon[client] "
            "(pip install 'salon[client]')",
            file=sys.stderr,
        )
        return 2
    return run_command(args)


def _stop_starting_bot(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


BOT_EPILOG = """\
LINK is a meeting link, https://host:port/r/ROOM (an #invite= in it is used), or - to read it
as one line from stdin (within 10 s; the end of stdin afterwards stops the bot, as SIGTERM
does). For direct calls give --server https://host:port --answer NAME instead: the bot goes
online as NAME and accepts every call. Exit status: 0 stopped cleanly, 1 connection lost,
2 could not start.
"""


def _add_bot(sub: Any) -> None:
    group = sub.add_parser(
        "bot",
        help="run a bot in a room or for direct calls: echo, record, play (salon[client])",
        description="Bots built on the Python SDK (docs/SDK.md); they need the client extra "
        "(aiortc and PyAV): pip install 'salon[client]'.",
    )
    bots = group.add_subparsers(dest="bot", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", help="the server's address, with --answer")
    common.add_argument("--answer", metavar="NAME", help="answer direct calls to NAME")
    common.add_argument("--name", help="display name in the room")
    common.add_argument("--password", help="the room's password, if it has one")
    common.add_argument(
        "--insecure", action="store_true", help="accept any certificate (self-signed server)"
    )
    common.add_argument("--cafile", metavar="PEM", help="trust the CA certificates in PEM")
    common.add_argument("-v", "--verbose", action="store_true", help="log the details")
    kinds = argparse.RawDescriptionHelpFormatter
    echo = bots.add_parser(
        "echo",
        parents=[common],
        formatter_class=kinds,
        epilog=BOT_EPILOG,
        help="send each person's audio and video back to them; answer chat",
    )
    echo.add_argument("link", nargs="?", metavar="LINK")
    record = bots.add_parser(
        "record",
        parents=[common],
        formatter_class=kinds,
        epilog=BOT_EPILOG,
        help="record everyone's audio and video (WebM) and the chat (JSON Lines)",
    )
    record.add_argument("link", nargs="?", metavar="LINK")
    record.add_argument("--out", required=True, metavar="DIR", help="folder for the files")
    record.add_argument(
        "--max-bytes", type=int, metavar="N", help="stop once DIR's files exceed N bytes"
    )
    record.add_argument(
        "--video-size",
        metavar="WxH",
        help="every participant's video at this size, aspect kept with black bars "
        "(default 640x480, at most 1920x1080)",
    )
    play = bots.add_parser(
        "play",
        parents=[common],
        formatter_class=kinds,
        epilog=BOT_EPILOG,
        help="play a media file (anything FFmpeg reads) to everyone",
    )
    play.add_argument("link", nargs="?", metavar="LINK")
    play.add_argument("file", metavar="FILE", help="the file to play")
    play.add_argument("--loop", action="store_true", help="play it again and again")
    group.set_defaults(run=_bot)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
