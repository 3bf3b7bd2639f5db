from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from tests.integration.peer import Peer
from tests.integration.postgres import Cluster, Unavailable, find_bin_dir, throwaway_cluster
from tests.integration.server import RunningServer, running_server


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster | str]:
    """A throwaway PostgreSQL cluster for the whole run, or why there is none."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        yield "PostgreSQL is not installed (no initdb): `make test` installs it as root"
        return
    try:
        with throwaway_cluster(bin_dir) as cluster:
            yield cluster
    except Unavailable as e:
        yield str(e)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """Run the test on SQLite (None: the default file in the data folder) and on a fresh
    PostgreSQL database; the PostgreSQL run is skipped, with the reason, where there is none."""
    if request.param == "sqlite":
        return None
    cluster: Cluster | str = request.getfixturevalue("postgres")
    if isinstance(cluster, str):
        print(f"skipping the PostgreSQL run: {cluster}")
        pytest.skip(cluster)
    return cluster.new_database()


def database_options(database_url: str | None) -> dict[str, Any]:
    """``running_server`` options for a ``database_url`` fixture's value."""
    return {} if database_url is None else {"database_url": database_url}


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
    """``await peers("alice", "bob")``: greeted peers, closed after the test;
    ``reachable=True``: callable by name (as the call page says hello)."""
    opened: list[Peer] = []

    async def make(*names: str, reachable: bool = False) -> list[Peer]:
        made = [await Peer.greeted(server, name, reachable=reachable) for name in names]
        opened.extend(made)
        return made

    yield make
    for peer in opened:
        await peer.close()


@pytest.fixture
def cluster() -> Iterator[tuple[Cluster, str]]:
    """A PostgreSQL cluster for this test alone (it is stopped on purpose), and the URL of a
    fresh database in it; skipped where PostgreSQL is not installed."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        reason = "PostgreSQL is not installed (no initdb): `make test` installs it as root"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    try:
        with throwaway_cluster(bin_dir) as running:
            yield running, running.new_database()
    except Unavailable as e:
        print(f"SKIP: {e}")
        pytest.skip(str(e))


@pytest.fixture(autouse=True)
def every_peer_closed() -> Iterator[None]:
    """Fail the test that leaves a :class:`Peer` socket open: the garbage collector would
    report it during some later test (a ResourceWarning), failing that one instead."""
    before = set(map(id, Peer.live))
    yield
    left = [p for p in Peer.live if id(p) not in before and p.open_socket()]
    if left:
        pytest.fail(f"{len(left)} peer socket(s) left open: close them before the server stops")
