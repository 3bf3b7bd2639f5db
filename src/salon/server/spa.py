"""Serving the built browser client: files under ``/assets``, the app shell for its routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from salon.core.validate import ROOM_ID
from salon.server import csrf

NOT_BUILT = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Salon</title></head><body><h1>Salon</h1><p>The browser client has not been built.
Run <code>make run</code>, which builds it, or <code>make web</code>.</p></body></html>"""

ROOM_ROUTE = "/r/{room}"
CLIENT_ROUTES = ("/", ROOM_ROUTE, "/call", "/login", "/register", "/account")
# Paths whose unknown names stay machine answers (JSON, or the file server's own 404).
_NOT_PAGES = ("/api/", "/assets/", "/ws")


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

    async def not_found(request: Request, exc: Exception) -> Response:
        """An unknown page gets the app shell with status 404 (the client shows "Page not
        found"); an unknown ``/api`` path, asset or other method keeps its plain answer."""
        assert isinstance(exc, HTTPException)
        path = request.url.path
        if (
            exc.status_code != 404
            or request.method not in ("GET", "HEAD")
            or path == "/api"
            or path.startswith(_NOT_PAGES)
        ):
            return await http_exception_handler(request, exc)
        response = await shell(request)
        if response.status_code == 200:
            response.status_code = 404
        return response

    app.add_exception_handler(HTTPException, not_found)

    async def room_page(request: Request) -> Response:
        """A meeting's page; for an id no room can have, the page (which says "This link is
        not a meeting") with status 404."""
        response = await shell(request)
        room = request.path_params["room"]
        if response.status_code == 200 and not ROOM_ID.fullmatch(room):
            response.status_code = 404
        return response

    for route in CLIENT_ROUTES:
        app.add_api_route(
            route,
            room_page if route == ROOM_ROUTE else shell,
            methods=["GET", "HEAD"],
            include_in_schema=False,
            response_model=None,
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
