from __future__ import annotations

import httpx

from tests.integration.peer import Peer
from tests.integration.server import RunningServer


async def test_health_over_verified_tls(server: RunningServer) -> None:
    async with httpx.AsyncClient(verify=server.ssl_context) as client:
        response = await client.get(f"{server.base_url}/api/v1/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_hello_over_wss(server: RunningServer) -> None:
    peer = await Peer.greeted(server, "alice")
    assert peer.welcome["version"] == 1
    assert peer.welcome["name"] == "alice"
    await peer.close()
