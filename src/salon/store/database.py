"""The database: an async engine, migrated to the newest schema when opened."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from salon.core.errors import fail
from salon.protocol import ErrorCode

MIGRATIONS = Path(__file__).parent / "migrations"

STORE_TIMEOUT_SECONDS = 10.0
"""How long one unit of database work may take before it counts as the database being
unavailable (a hung server, a lost network): the caller gets ``store_unavailable``."""

WorkHook = Callable[[float, bool], None]
"""Told of each unit of database work: how long it took (seconds) and whether it went well
(False: it raised ``store_unavailable``). Called on the event loop; must return at once."""

# The hook of each engine (see ``watch_work``); an engine that is gone takes its hook along.
_hooks: weakref.WeakKeyDictionary[Engine, WorkHook] = weakref.WeakKeyDictionary()


def watch_work(engine: AsyncEngine, hook: WorkHook | None) -> None:
    """Report every unit of work of every :class:`GuardedEngine` over ``engine`` to ``hook``
    (None: stop reporting). The repositories build their own GuardedEngine from the engine,
    so the hook belongs to the engine."""
    if hook is None:
        _hooks.pop(engine.sync_engine, None)
    else:
        _hooks[engine.sync_engine] = hook


class GuardedEngine:
    """An engine whose trouble is a typed error. ``connect()`` and ``begin()`` work as the
    engine's; a database that refuses or drops the connection, fails the query for any other
    reason than a constraint, or takes longer than ``timeout`` seconds for the whole block
    raises :class:`~salon.core.errors.SalonError` ``store_unavailable`` instead (a rolled-back
    transaction: nothing changed, unless it committed just as the time ran out). An
    ``IntegrityError`` (a unique constraint) passes through unchanged: callers decide on it."""

    def __init__(self, engine: AsyncEngine, timeout: float = STORE_TIMEOUT_SECONDS) -> None:
        self.engine = engine
        self.timeout = timeout

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        async with self._guarded(), self.engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        async with self._guarded(), self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def _guarded(self) -> AsyncIterator[None]:
        hook = _hooks.get(self.engine.sync_engine)
        start = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                yield
        except IntegrityError:
            if hook is not None:
                hook(time.perf_counter() - start, True)  # the database answered: a constraint
            raise
        except (DBAPIError, OSError, TimeoutError) as exc:
            if hook is not None:
                hook(time.perf_counter() - start, False)
            raise fail(
                ErrorCode.STORE_UNAVAILABLE, "the database cannot be reached: try again soon"
            ) from exc
        except Exception:
            # The caller's own exception inside the block (a name taken, a bad value): the
            # database did its part.
            if hook is not None:
                hook(time.perf_counter() - start, True)
            raise
        if hook is not None:
            hook(time.perf_counter() - start, True)


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # WAL lets readers go on while a chat message is written; synchronous=NORMAL is durable
    # across application crashes, which is what WAL mode needs.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


async def open_database(url: str, on_work: WorkHook | None = None) -> AsyncEngine:
    """Create the engine and bring the schema to the newest revision. ``on_work``: see
    :func:`watch_work`."""
    if url.startswith("sqlite"):
        Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    # hide_parameters: an error's message never carries the statement's values (chat text,
    # password hashes) into a log line.
    engine = create_async_engine(url, hide_parameters=True)
    watch_work(engine, on_work)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)
    return engine


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
