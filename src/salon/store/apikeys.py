"""API keys of the server API: made by an operator (``salon api-key create``), shown once,
stored as the SHA-256 of their secret part, scoped, revocable.

A key reads ``salon_<id>_<secret>``: ``id`` is 12 URL-safe characters (72 random bits, the
public part that finds the row, never starting with ``-`` so that the CLI takes it as an
argument), ``secret`` 43 (``secrets.token_urlsafe(32)``: 256 random bits). Both parts may
contain ``_``; their fixed lengths tell them apart. With 256 random bits a slow hash buys
nothing, so the store keeps SHA-256 (hex) of the secret and a copy of the
database lets nobody in.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from salon.store.database import GuardedEngine
from salon.store.tables import api_keys as t

Scope = Literal["meetings:read", "meetings:write", "webhooks:manage"]
SCOPES: Final[tuple[Scope, ...]] = get_args(Scope)
"""Every scope, and a new key's scopes unless others are asked for."""

MAX_NAME_CHARS: Final = 100
"""An API key's name (what the operator calls it: "LMS", "room booking") is at most this long."""

KEY_PREFIX: Final = "salon_"
_KEY: Final = re.compile(r"salon_([A-Za-z0-9_-]{12})_([A-Za-z0-9_-]{43})")


class InvalidKeyRequest(ValueError):
    """A key that cannot be made as asked (its name or scopes); the message says why."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as the store knows it (never its secret). Times are Unix milliseconds."""

    id: str
    name: str
    scopes: tuple[Scope, ...]
    created_ms: int
    revoked_ms: int | None = None
    last_used_ms: int | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_ms is not None


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A key just made: ``token`` is the whole key, shown once and never stored."""

    key: ApiKey
    token: str


def secret_digest(secret: str) -> str:
    """What the store keeps of a key's secret part: SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_key(token: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed key, else None."""
    found = _KEY.fullmatch(token)
    return None if found is None else (found[1], found[2])


def check_name(name: str) -> str:
    """``name`` stripped; :class:`InvalidKeyRequest` when it is empty or over
    :data:`MAX_NAME_CHARS` characters."""
    name = name.strip()
    if not name:
        raise InvalidKeyRequest("an API key needs a name")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidKeyRequest(f"an API key's name has at most {MAX_NAME_CHARS} characters")
    return name


def check_scopes(scopes: Iterable[str]) -> tuple[Scope, ...]:
    """The known scopes asked for, in :data:`SCOPES` order, without repeats (all of them when
    none are asked for); :class:`InvalidKeyRequest` naming an unknown one."""
    asked = set(scopes)
    unknown = sorted(asked - set(SCOPES))
    if unknown:
        raise InvalidKeyRequest(f"unknown scope {unknown[0]!r}: one of {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in asked) if asked else SCOPES


def _scopes(stored: str) -> tuple[Scope, ...]:
    words = set(stored.split())
    return tuple(s for s in SCOPES if s in words)


class SqlApiKeyRepository:
    """API keys in the ``api_keys`` table. Store trouble is ``store_unavailable``
    (:class:`~salon.store.database.GuardedEngine`)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = GuardedEngine(engine)

    async def create(self, name: str, scopes: Iterable[str], now_ms: int) -> NewApiKey:
        """A new key named ``name`` (see :func:`check_name`) with ``scopes`` (see
        :func:`check_scopes`); raises :class:`InvalidKeyRequest` before storing anything."""
        key = ApiKey("", check_name(name), check_scopes(scopes), now_ms)
        while True:
            key_id = secrets.token_urlsafe(9)  # 12 characters
            if key_id.startswith("-"):
                continue  # `salon api-key revoke -x…` would read it as an option
            secret = secrets.token_urlsafe(32)  # 43 characters
            values = {
                "id": key_id,
                "name": key.name,
                "secret_sha256": secret_digest(secret),
                "scopes": " ".join(key.scopes),
                "created_ms": now_ms,
            }
            try:
                async with self._engine.begin() as conn:
                    await conn.execute(insert(t).values(**values))
            except IntegrityError:  # 72 random bits met an existing id: draw again
                continue
            made = ApiKey(key_id, key.name, key.scopes, now_ms)
            return NewApiKey(made, f"{KEY_PREFIX}{key_id}_{secret}")

    async def list_keys(self) -> list[ApiKey]:
        """Every key, revoked ones too, oldest first."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(t).order_by(t.c.created_ms, t.c.id))
        return [_key(row) for row in rows]

    async def revoke(self, key_id: str, now_ms: int) -> bool:
        """Revoke a key from now on; False when there is no such key. Revoking a revoked key
        keeps its first revocation time (and answers True)."""
        async with self._engine.begin() as conn:
            found = await conn.execute(select(t.c.revoked_ms).where(t.c.id == key_id))
            row = found.first()
            if row is None:
                return False
            if row.revoked_ms is None:
                await conn.execute(update(t).where(t.c.id == key_id).values(revoked_ms=now_ms))
        return True

    async def authenticate(self, token: str) -> ApiKey | None:
        """The key ``token`` is, revoked or not (the caller refuses a revoked one), or None
        when it is malformed, unknown or its secret is wrong (compared in constant time)."""
        parts = parse_key(token)
        if parts is None:
            return None
        key_id, secret = parts
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(t).where(t.c.id == key_id))).first()
        if row is None:
            return None
        if not hmac.compare_digest(secret_digest(secret).encode(), row.secret_sha256.encode()):
            return None
        return _key(row)

    async def touch(self, key_id: str, now_ms: int) -> None:
        """Record that the key was used at ``now_ms``."""
        async with self._engine.begin() as conn:
            await conn.execute(update(t).where(t.c.id == key_id).values(last_used_ms=now_ms))


def _key(row: Any) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        scopes=_scopes(row.scopes),
        created_ms=row.created_ms,
        revoked_ms=row.revoked_ms,
        last_used_ms=row.last_used_ms,
    )
