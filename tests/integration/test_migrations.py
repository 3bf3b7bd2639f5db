"""The schema migrations: a database made by an older Salon upgrades in place."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, create_engine, inspect, text

from salon.store.database import MIGRATIONS, open_database
from salon.store.rooms import SqlRoomRepository


def _upgrade_to(connection: Connection, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def test_a_0002_database_gains_accounts_and_keeps_its_rooms(tmp_path: Path) -> None:
    path = tmp_path / "salon.db"
    old = create_engine(f"sqlite:///{path}")
    with old.begin() as conn:
        _upgrade_to(conn, "0002")
        conn.execute(text("INSERT INTO rooms (id, created_ms) VALUES ('kept', 1)"))
    old.dispose()

    engine = await open_database(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        assert {"accounts", "sessions", "rooms", "chat_messages"} <= tables
        assert version == "0003"
        assert await SqlRoomRepository(engine).lookup("kept") is not None
    finally:
        await engine.dispose()
