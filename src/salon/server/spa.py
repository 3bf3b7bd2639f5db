"""Serving the built browser client: files under ``/assets``, the app shell for its routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from salon.server import csrf

NOT_BUILT = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Salon</title></head><body><h1>Salon</h1><p>The browser client has not been built.
Run <code>make run</code>, which builds it, or <code>make web</code>.</p></body></html>"""

CLIENT_ROUTES = ("/", "/r/{room}", "/call", "/login", "/register", "/account")


def mount_client(app: FastAPI, static_dir: Path) -> None:
    index = static_dir / "index.html"
    if (static_dir / "assets").is_dir():
        app.mount("/assets", StaticFiles(directory=static_dir / "assets"), name="assets")

    async def shell(request: Request) -> Response:
        response: Response
        if index.is_file():
            response = FileResponse(index, headers={"Cache-Control": "no-cache"})
        else:
            response = HTMLResponse(NOT_BUILT, status_code=503)
        csrf.ensure_cookie(request, response)  # the page can make state changes at once
        return response

    for route in CLIENT_ROUTES:
        app.add_api_route(
            route, shell, methods=["GET", "HEAD"], include_in_schema=False, response_model=None
        )

    for name in ("favicon.svg", "robots.txt"):
        if (static_dir / name).is_file():
            app.add_api_route(
                f"/{name}", _file(static_dir / name), methods=["GET"], include_in_schema=False
            )


def _file(path: Path) -> Callable[[], Awaitable[FileResponse]]:
    async def serve() -> FileResponse:
        return FileResponse(path)

    return serve
