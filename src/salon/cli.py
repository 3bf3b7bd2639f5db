"""``salon``: serve, print the protocol schema."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from salon.core.settings import Settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from salon.server.runner import ConfigError, uvicorn_config

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
    try:
        config = uvicorn_config(settings)
    except ConfigError as exc:
        print(f"salon: {exc}", file=sys.stderr)
        return 2
    scheme = "http" if settings.http else "https"
    shown = "localhost" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104
    print(f"Salon serving {scheme}://{shown}:{settings.port}", flush=True)
    uvicorn.Server(config).run()
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
    serve.set_defaults(run=_serve)
    schema = sub.add_parser("schema", help="print the JSON Schema of every protocol message")
    schema.set_defaults(run=_schema)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
