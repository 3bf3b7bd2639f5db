"""``salon``: serve, print the protocol schema, print a coturn config."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from salon.core.settings import Settings


def _serve(args: argparse.Namespace) -> int:
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
    settings = Settings(**flags)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
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
    try:
        try:
            server = serving(settings)
        except ConfigError as exc:
            print(f"salon: {exc}", file=sys.stderr)
            return 2
        scheme = "http" if settings.http else "https"
        shown = "localhost" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104
        print(f"Salon serving {scheme}://{shown}:{settings.port}", flush=True)
        server.run()
    finally:
        if turn is not None:
            turn.stop()
    return 0


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _turn_config(args: argparse.Namespace) -> int:
    from salon.core.turnconfig import PeerPolicy, TurnServerConfig, turnserver_conf

    settings = Settings()
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
                relay_ips=tuple(args.relay_ip),
                external_ip=args.external_ip,
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
    serve.set_defaults(run=_serve)
    _add_turn_config(sub)
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
    tc.add_argument("--relay-ip", action="append", default=[], help="repeatable")
    tc.add_argument("--external-ip", help="public address, or public/private behind 1:1 NAT")
    tc.add_argument("--cert", help="PEM certificate for turns: (TLS); without it TLS is off")
    tc.add_argument("--pkey", help="PEM private key for --cert")
    tc.add_argument(
        "--lan", action="store_true", help="also relay to private (LAN) peers; not for the internet"
    )
    tc.set_defaults(run=_turn_config)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
