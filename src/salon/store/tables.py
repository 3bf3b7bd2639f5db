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
    # A meeting's password lives in memory with the meeting; this is the standing password
    # (scrypt) of a room created through the server API with one (0010), else NULL.
    Column("password_hash", String(200), nullable=True),
    Column("host_key_sha256", String(64), nullable=True),  # hex; NULL for rooms made before
    Column("creator_account", String(256), nullable=True),  # the creating account's username
    # A meeting with a password is under way (salon.core.passwords.RoomKeys.seal).
    Column("sealed", Boolean, nullable=False, server_default=false()),
    # Standing settings of a room created through the server API (0010): every meeting in it
    # starts with them. host_accounts: a JSON list of usernames that are hosts by right.
    Column("lobby", Boolean, nullable=False, server_default=false()),
    Column("locked", Boolean, nullable=False, server_default=false()),
    Column("host_accounts", Text, nullable=True),
    # Created as a large meeting (0012): on the SFU from its first member on.
    Column("large", Boolean, nullable=False, server_default=false()),
    # Whom the meeting under way removed (0011): JSON, salon.core.passwords.Removed; NULL for
    # nobody. Kept so that a restart does not seat them again by their resume tokens.
    Column("removed", Text, nullable=True),
    Column("removed_until_ms", BigInteger, nullable=True),  # when "removed" may be dropped
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),  # the key's public part
    Column("name", String(100), nullable=False),
    Column("secret_sha256", String(64), nullable=False),  # hex SHA-256 of the secret part
    Column("scopes", String(200), nullable=False),  # space-separated
    Column("created_ms", BigInteger, nullable=False),
    Column("revoked_ms", BigInteger, nullable=True),
    Column("last_used_ms", BigInteger, nullable=True),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("url", Text, nullable=False),
    Column("secret", String(100), nullable=False),  # the signing secret, whsec_<base64>
    Column("events", String(200), nullable=False),  # space-separated event types
    Column("created_ms", BigInteger, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(32), primary_key=True),  # the webhook-id header (Standard Webhooks)
    Column(
        "webhook_id",
        String(32),
        ForeignKey("webhooks.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("event_type", String(32), nullable=False),
    Column("payload", Text, nullable=False),  # the exact body that is signed and sent
    Column("created_ms", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # pending, delivered, failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("last_attempt_ms", BigInteger, nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", String(300), nullable=True),
    Column("delivered_ms", BigInteger, nullable=True),
    # The dispatcher's query: each endpoint's oldest pending delivery (ids grow with time).
    Index("ix_webhook_deliveries_pending", "status", "webhook_id", "id"),
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
