"""The schema migrations: a database made by an older Salon upgrades in place."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, create_engine, inspect, text

from salon.core.names import name_key, skeleton
from salon.store.accounts import SqlAccountRepository
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
        assert version == "0012"
        assert await SqlRoomRepository(engine).lookup("kept") is not None
    finally:
        await engine.dispose()


async def test_a_0003_database_gains_name_skeletons_for_its_accounts(tmp_path: Path) -> None:
    path = tmp_path / "salon.db"
    old = create_engine(f"sqlite:///{path}")
    with old.begin() as conn:
        _upgrade_to(conn, "0003")
        conn.execute(
            text(
                "INSERT INTO accounts (id, username, username_key, display_name, display_key,"
                " password_hash, created_ms) VALUES ('a1', 'Alice', 'alice', 'Alice L',"
                " 'alice l', 'x', 1)"
            )
        )
    old.dispose()

    engine = await open_database(f"sqlite+aiosqlite:///{path}")
    try:
        accounts = SqlAccountRepository(engine)
        assert await accounts.reserved(name_key("\u0430lice"))  # Cyrillic a
        assert await accounts.reserved(name_key("ALICE L"))
        assert not await accounts.reserved(name_key("bob"))
    finally:
        await engine.dispose()


async def test_a_0005_database_compares_account_names_by_the_full_key(tmp_path: Path) -> None:
    path = tmp_path / "salon.db"
    old = create_engine(f"sqlite:///{path}")
    with old.begin() as conn:
        _upgrade_to(conn, "0005")
        # As 0005's sign-up stored them: the bare skeleton keeps joiners and fillers.
        conn.execute(
            text(
                "INSERT INTO accounts (id, username, username_key, display_name, display_key,"
                " username_skeleton, display_skeleton, password_hash, created_ms)"
                " VALUES ('c1', :username, :username, :display, :display, :username_skeleton,"
                " :display_skeleton, 'x', 1)"
            ),
            {
                "username": "carla\u200d",
                "display": "Jo\u3164",
                "username_skeleton": skeleton("carla\u200d"),
                "display_skeleton": skeleton("Jo\u3164"),
            },
        )
    old.dispose()

    engine = await open_database(f"sqlite+aiosqlite:///{path}")
    try:
        accounts = SqlAccountRepository(engine)
        assert await accounts.reserved(name_key("carla"))
        assert await accounts.reserved(name_key("Jo"))
        assert not await accounts.reserved(name_key("carl"))
    finally:
        await engine.dispose()


async def test_a_0006_database_forgets_room_passwords_seals_their_rooms_and_gains_host_keys(
    tmp_path: Path,
) -> None:
    path = tmp_path / "salon.db"
    old = create_engine(f"sqlite:///{path}")
    with old.begin() as conn:
        _upgrade_to(conn, "0006")
        # As v1 stored it: whoever joined the empty room first gave it this password.
        conn.execute(
            text("INSERT INTO rooms (id, created_ms, password_hash) VALUES ('v1', 1, 'scrypt$x')")
        )
    old.dispose()

    engine = await open_database(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.connect() as conn:
            hashes = (await conn.execute(text("SELECT password_hash FROM rooms"))).all()
        assert hashes == [(None,)]
        rooms = SqlRoomRepository(engine)
        kept = await rooms.lookup("v1")
        assert kept is not None and kept.creator is None  # made before host keys
        assert kept.sealed  # its chat, shared under that password, goes before anyone reads it
        await rooms.create("new", 2, "ab" * 32, "olga")
        new = await rooms.lookup("new")
        assert new is not None and not new.sealed and new.creator is not None
        assert (new.creator.key_sha256, new.creator.account) == ("ab" * 32, "olga")
    finally:
        await engine.dispose()
