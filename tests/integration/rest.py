"""Helpers for REST calls the way the browser client makes them."""

from __future__ import annotations

import httpx


async def same_origin_headers(client: httpx.AsyncClient, origin: str) -> dict[str, str]:
    """Fetch the CSRF token (the client keeps the ``salon_csrf`` cookie) and return the headers
    a page of ``origin`` sends on a state-changing request."""
    response = await client.get("/api/v1/csrf")
    response.raise_for_status()
    return {"Origin": origin, "X-CSRF-Token": response.json()["token"]}
