"""Abusive clients, run as processes of their own so that their loops do not slow the test's
own clients (tests/integration/test_abuse.py). Each prints one JSON line with what it did.

``python -m tests.integration.abusers flood WS_URL CAFILE ROOM TARGET``: say hello, join
``ROOM`` and send frames as fast as the socket takes them (signals to member ``TARGET``,
chat, pings, in turn), reading everything the server sends, until the server closes.

``python -m tests.integration.abusers storm WS_URL CAFILE SECONDS WORKERS ADDRESS...``: for
``SECONDS``, ``WORKERS`` loops each open a WebSocket from one of the ``ADDRESS``es in turn,
say hello, join a room of its own and leave, again and again; refusals are counted.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import ssl
import time
from collections import Counter
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

FLOOD_SECONDS = 60.0
"""A flood the server never ends stops by itself after this long (and its test fails)."""


async def _drain(ws: ClientConnection) -> int | None:
    """Read until the server closes; its close code."""
    try:
        async for _ in ws:
            pass
    except ConnectionClosed:
        pass
    return ws.close_code


async def flood(url: str, context: ssl.SSLContext, room: str, target: str) -> dict[str, Any]:
    async with connect(url, ssl=context, max_queue=None) as ws:
        await ws.send(json.dumps({"type": "hello", "versions": [1], "name": "flooder"}))
        await ws.send(json.dumps({"type": "join", "room": room}))
        reader = asyncio.create_task(_drain(ws))
        frames = itertools.cycle(
            [
                json.dumps({"type": "signal", "to": target, "reset": {"reason": "ice_failed"}}),
                json.dumps({"type": "chat", "text": "x" * 1000}),
                json.dumps({"type": "ping", "ref": "p"}),
            ]
        )
        sent, started = 0, time.monotonic()
        try:
            while not reader.done() and time.monotonic() - started < FLOOD_SECONDS:
                await ws.send(next(frames))
                sent += 1
                if sent % 64 == 0:
                    await asyncio.sleep(0)  # a send into a socket with room never yields
        except ConnectionClosed:
            pass
        code = await asyncio.wait_for(reader, 10)
        return {"sent": sent, "seconds": time.monotonic() - started, "code": code}


async def _storm_worker(
    n: int, url: str, context: ssl.SSLContext, addresses: list[str], until: float
) -> Counter[str]:
    counts: Counter[str] = Counter()
    for i in itertools.count():
        if time.monotonic() >= until:
            return counts
        address = addresses[(n + i) % len(addresses)]
        try:
            async with (
                asyncio.timeout(10),
                connect(url, ssl=context, local_addr=(address, 0)) as ws,
            ):
                await ws.send(json.dumps({"type": "hello", "versions": [1], "name": f"s{n}"}))
                await ws.send(json.dumps({"type": "join", "room": f"storm-{n}"}))
                await ws.recv()  # welcome
                counts["joined" if "joined" in str(await ws.recv()) else "other"] += 1
        except InvalidStatus as refused:
            counts[f"http_{refused.response.status_code}"] += 1
            await asyncio.sleep(0.01)  # refused: try again soon, not in a hot loop
        except (OSError, ConnectionClosed, TimeoutError):
            counts["failed"] += 1
    return counts


async def storm(
    url: str, context: ssl.SSLContext, seconds: float, workers: int, addresses: list[str]
) -> dict[str, Any]:
    until = time.monotonic() + seconds
    results = await asyncio.gather(
        *(_storm_worker(n, url, context, addresses, until) for n in range(workers))
    )
    return dict(sum(results, Counter()))


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    flood_args = sub.add_parser("flood")
    storm_args = sub.add_parser("storm")
    for each in (flood_args, storm_args):
        each.add_argument("url")
        each.add_argument("cafile")
    flood_args.add_argument("room")
    flood_args.add_argument("target")
    storm_args.add_argument("seconds", type=float)
    storm_args.add_argument("workers", type=int)
    storm_args.add_argument("addresses", nargs="+")
    args = parser.parse_args()
    # The lowest priority: on a test machine the abuser shares the CPUs with the server, which
    # an abuser on a machine of its own does not; what it manages to send, it sends at once.
    os.nice(10)
    context = ssl.create_default_context(cafile=args.cafile)
    if args.mode == "flood":
        result = asyncio.run(flood(args.url, context, args.room, args.target))
    else:
        result = asyncio.run(storm(args.url, context, args.seconds, args.workers, args.addresses))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
