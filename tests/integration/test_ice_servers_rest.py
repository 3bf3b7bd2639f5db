"""GET /api/v1/ice-servers: fresh TURN credentials for a signed-in member, 401 for others."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from pathlib import Path

import httpx

from tests.integration.server import running_server
from tests.integration.test_accounts import browser, sign_up

SECRET = "shared-with-coturn"
TURN = ["turn:turn.example.org:3478?transport=udp"]


async def test_signed_in_members_get_fresh_turn_credentials(tmp_path: Path) -> None:
    options = {"turn_urls": TURN, "turn_secret": SECRET, "stun_urls": ["stun:stun.example.org"]}
    with running_server(tmp_path, options=options) as server:
        async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as anon:
            refused = await anon.get("/api/v1/ice-servers")
            assert refused.status_code == 401
            assert refused.json()["detail"]["code"] == "not_signed_in"
        async with browser(server) as page:
            assert (await sign_up(page, "alice")).status_code == 201
            answer = await page.get("/api/v1/ice-servers")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    stun, turn = answer.json()
    assert stun["urls"] == ["stun:stun.example.org"]
    assert turn["urls"] == TURN
    expiry, user = turn["username"].split(":", 1)
    assert user == "account.alice"
    assert abs(int(expiry) - (time.time() + 6 * 3600)) < 60  # the default lifetime
    digest = hmac.new(SECRET.encode(), turn["username"].encode(), hashlib.sha1).digest()
    assert turn["credential"] == base64.b64encode(digest).decode()
