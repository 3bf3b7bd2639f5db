from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from tests.integration.peer import Peer
from tests.integration.server import RunningServer, running_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """The real server with default limits, over TLS."""
    with running_server(tmp_path) as running:
        yield running


@pytest.fixture
def make_server(tmp_path: Path) -> Callable[..., AbstractContextManager[RunningServer]]:
    """A server with some limits changed: ``with make_server(max_room_members=3) as s``."""

    def make(**limits: Any) -> AbstractContextManager[RunningServer]:
        return running_server(tmp_path, **limits)

    return make


@pytest.fixture
async def peers(server: RunningServer) -> AsyncIterator[Callable[..., Any]]:
    """``await peers("alice", "bob")``: greeted peers, closed after the test."""
    opened: list[Peer] = []

    async def make(*names: str) -> list[Peer]:
        made = [await Peer.greeted(server, name) for name in names]
        opened.extend(made)
        return made

    yield make
    for peer in opened:
        await peer.close()
