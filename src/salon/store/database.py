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
from sqlalchemy import Connection, Engine, event, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from salon.core.errors import fail
from salon.protocol import ErrorCode

MIGRATIONS = Path(__file__).parent / "migrations"

STORE_TIMEOUT_SECONDS = 10.0
"""How long one unit of database work may take before it counts as the database being
unavailable (a hung server, a lost network): the caller gets ``store_unavailable``. The
default of ``Settings.store_timeout_seconds``; :func:`open_database` sets an engine's own."""

WorkHook = Callable[[float, bool], None]
"""Told of each unit of database work: how long it took (seconds) and whether it went well
(False: it raised ``store_unavailable``). Called on the event loop; must return at once."""

# The hook of each engine (see ``watch_work``) and its timeout (see ``open_database``); an
# engine that is gone takes them along.
_hooks: weakref.WeakKeyDictionary[Engine, WorkHook] = weakref.WeakKeyDictionary()
_timeouts: weakref.WeakKeyDictionary[Engine, float] = weakref.WeakKeyDictionary()


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
    ``IntegrityError`` (a unique constraint) passes through unchanged: callers decide on it.
    ``timeout`` (seconds) defaults to the one :func:`open_database` gave the engine."""

    def __init__(self, engine: AsyncEngine, timeout: float | None = None) -> None:
        self.engine = engine
        if timeout is None:
            timeout = _timeouts.get(engine.sync_engine, STORE_TIMEOUT_SECONDS)
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


class DatabaseUnreachable(Exception):
    """The database could not be reached at start; the message says where (never with its
    password) and why."""


def _create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    # hide_parameters: an error's message never carries the statement's values (chat text,
    # password hashes) into a log line.
    engine = create_async_engine(url, hide_parameters=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


async def open_database(
    url: str, on_work: WorkHook | None = None, work_seconds: float = STORE_TIMEOUT_SECONDS
) -> AsyncEngine:
    """Create the engine and bring the schema to the newest revision (migrations take the
    time they need). ``on_work``: see :func:`watch_work`; ``work_seconds``: how long each
    unit of work of a :class:`GuardedEngine` over this engine may take."""
    engine = _create_engine(url)
    watch_work(engine, on_work)
    _timeouts[engine.sync_engine] = work_seconds
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)
    return engine


async def wait_for_database(url: str, try_seconds: float, within: float) -> None:
    """Connect to the database at ``url``, each try allowed ``try_seconds``, trying again
    each second for ``within`` seconds, the last try at its end (a database starting alongside
    the server); raise :class:`DatabaseUnreachable` saying why when no try succeeded."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    shown = make_url(url).render_as_string(hide_password=True)
    while True:
        try:
            engine = _create_engine(url)
        except OSError as exc:  # the SQLite file's folder cannot be made
            raise DatabaseUnreachable(f"the database {shown} cannot be opened: {exc}") from exc
        try:
            async with asyncio.timeout(try_seconds), engine.connect():
                return
        except (DBAPIError, OSError, TimeoutError) as exc:
            why = f"no answer within {try_seconds:g} s" if isinstance(exc, TimeoutError) else exc
            if loop.time() >= deadline:
                raise DatabaseUnreachable(
                    f"the database {shown} cannot be reached: {_first_line(why)}"
                ) from exc
        finally:
            await engine.dispose()
        await asyncio.sleep(min(1.0, deadline - loop.time()))  # the last try at the deadline


def _first_line(why: object) -> str:
    return str(why).strip().splitlines()[0] if str(why).strip() else type(why).__name__


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
