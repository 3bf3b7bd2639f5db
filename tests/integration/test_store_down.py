"""The database goes away under a running server (RELIABILITY row 34): a real PostgreSQL
cluster of the test's own is stopped and started again. Chat sent meanwhile gets a typed
error and reaches nobody; REST answers 503; nothing crashes; when the database is back, chat
works again with its numbering unbroken."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.integration.peer import Peer
from tests.integration.postgres import Cluster
from tests.integration.rest import same_origin_headers
from tests.integration.server import running_server
from tests.integration.test_hosts import heard


async def test_chat_and_rest_say_the_store_is_unavailable_then_recover(
    tmp_path: Path, cluster: tuple[Cluster, str]
) -> None:
    postgres, url = cluster
    with running_server(tmp_path, options={"database_url": url}) as server:
        ann = await Peer.greeted(server, "ann")
        bob = await Peer.greeted(server, "bob")
        await ann.join("r")
        await bob.join("r")
        await ann.send(type="chat", text="before", id="m1")
        assert (await bob.expect("chat"))["seq"] == 1
        await heard(ann)

        postgres.stop()
        await ann.send(type="chat", text="while down", id="m2", ref="c2")
        error = await ann.expect("error")
        assert (error["code"], error["ref"]) == ("store_unavailable", "c2")
        assert await heard(bob) == []  # nobody got it
        async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as http:
            http.headers.update(await same_origin_headers(http, server.base_url))
            created = await http.post("/api/v1/rooms")
            assert created.status_code == 503
            assert created.json()["detail"]["code"] == "store_unavailable"
            assert created.headers["retry-after"] == "5"
            # The process is alive and serving what needs no database.
            assert (await http.get("/api/v1/health")).status_code == 200

            postgres.start()
            await ann.send(type="chat", text="while down", id="m2")  # the resend, same id
            again = await bob.expect("chat")
            assert (again["seq"], again["text"]) == (2, "while down")  # no gap, no repeat
            assert (await http.post("/api/v1/rooms")).status_code == 201
        await ann.close()
        await bob.close()
