"""The database schema. Changing it means adding an Alembic revision under ``migrations/``."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

chat_messages = Table(
    "chat_messages",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("room", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("sender", String(64), nullable=False),
    Column("name", String(256), nullable=False),
    Column("text", Text, nullable=False),
    Column("client_id", String(64), nullable=True),  # the sender's id for it (chat.id)
    UniqueConstraint("room", "seq", name="uq_chat_messages_room_seq"),
    UniqueConstraint("room", "client_id", name="uq_chat_messages_room_client_id"),
    Index("ix_chat_messages_ts", "ts"),  # the retention sweep (migration 0009)
)

rooms = Table(
    "rooms",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("created_ms", BigInteger, nullable=False),
    # Unused since 0008 (always NULL): a room's password lives in memory with its meeting.
    Column("password_hash", String(200), nullable=True),
    Column("host_key_sha256", String(64), nullable=True),  # hex; NULL for rooms made before
    Column("creator_account", String(256), nullable=True),  # the creating account's username
    # A meeting with a password is under way (salon.core.passwords.RoomKeys.seal).
    Column("sealed", Boolean, nullable=False, server_default=false()),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("username", String(256), nullable=False, unique=True),
    Column("username_key", String(256), nullable=False, unique=True),  # NFC + casefold
    Column("display_name", String(256), nullable=False),
    Column("display_key", String(256), nullable=False, unique=True),
    # salon.core.names.name_key, ending in the UTS #39 skeleton; Text, as one character may
    # map to 18
    Column("username_skeleton", Text, nullable=False, index=True),
    Column("display_skeleton", Text, nullable=False, index=True),
    Column("password_hash", String(200), nullable=False),  # argon2id, PHC string
    Column("created_ms", BigInteger, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # sha256 hex of the cookie's token
    Column(
        "account_id",
        String(32),
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False, index=True),
)
