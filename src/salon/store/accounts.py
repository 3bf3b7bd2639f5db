"""Accounts and their sign-in sessions, and the argon2id hashing of account passwords.

A session's cookie carries an opaque random token; the database keeps only its SHA-256, so a
copy of the database does not sign anyone in.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from salon.core.names import name_key
from salon.store.database import GuardedEngine
from salon.store.tables import accounts as a
from salon.store.tables import sessions as s

# argon2id with OWASP's first recommended configuration (Password Storage Cheat Sheet):
# m=19 MiB, t=2, p=1.
ARGON2: Final = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


class Passwords:
    """argon2id in worker threads, at most ``concurrency`` hashes at once: each costs 19 MiB
    and tens of milliseconds of CPU, and the event loop never waits on one."""

    def __init__(self, concurrency: int) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(ARGON2.hash, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored``. With ``stored`` None (no such account) a
        dummy hash is checked instead, so the answer takes as long as for a wrong password."""
        if stored is None:
            if self._dummy is None:
                self._dummy = await self.hash(secrets.token_urlsafe(16))
            stored = self._dummy
        async with self._slots:
            return await asyncio.to_thread(_verify, stored, password)


def _verify(stored: str, password: str) -> bool:
    try:
        return ARGON2.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def token_id(token: str) -> str:
    """What the database keeps of a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    username: str
    display_name: str


@dataclass(frozen=True, slots=True)
class Credentials:
    account: Account
    password_hash: str


class NameTaken(Exception):
    """The username or display name (compared as keys) belongs to another account."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field  # "username" or "display_name"


async def _looks_taken(conn: AsyncConnection, keys: set[str], but: str | None) -> bool:
    """Whether an account other than ``but`` has a username or display name whose
    :func:`~salon.core.names.name_key` is one of ``keys``."""
    query = select(a.c.id).where(
        or_(a.c.username_skeleton.in_(keys), a.c.display_skeleton.in_(keys))
    )
    if but is not None:
        query = query.where(a.c.id != but)
    return (await conn.execute(query.limit(1))).first() is not None


class SqlAccountRepository:
    """Accounts and sessions; also the :class:`~salon.core.names.ReservedNames` of the hub.

    No two accounts' names look alike: a new username or display name is compared with every
    username and display name by :func:`~salon.core.names.name_key`, kept in the
    ``*_skeleton`` columns (the unique ``*_key`` columns, NFC and casefold, are the backstop
    should two sign-ups race)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = GuardedEngine(engine)  # trouble is store_unavailable

    async def reserved(self, key: str) -> bool:
        async with self._engine.connect() as conn:
            return await _looks_taken(conn, {key}, None)

    async def create(
        self,
        username: str,
        username_key: str,
        display_name: str,
        display_key: str,
        password_hash: str,
        created_ms: int,
    ) -> Account:
        """A new account; :class:`NameTaken` when either name is someone else's."""
        account_id = uuid.uuid4().hex
        username_shape, display_shape = name_key(username), name_key(display_name)
        row = {
            "id": account_id,
            "username": username,
            "username_key": username_key,
            "username_skeleton": username_shape,
            "display_name": display_name,
            "display_key": display_key,
            "display_skeleton": display_shape,
            "password_hash": password_hash,
            "created_ms": created_ms,
        }
        try:
            async with self._engine.begin() as conn:
                if await _looks_taken(conn, {username_shape}, None):
                    raise NameTaken("username")
                if await _looks_taken(conn, {display_shape}, None):
                    raise NameTaken("display_name")
                await conn.execute(insert(a).values(**row))
        except IntegrityError:
            async with self._engine.connect() as conn:
                query = select(a.c.id).where(a.c.username_key == username_key)
                taken = (await conn.execute(query)).first() is not None
            raise NameTaken("username" if taken else "display_name") from None
        return Account(account_id, username, display_name)

    async def credentials(self, username_key: str) -> Credentials | None:
        query = select(a).where(a.c.username_key == username_key)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return Credentials(Account(row.id, row.username, row.display_name), row.password_hash)

    async def password_hash(self, account_id: str) -> str | None:
        async with self._engine.connect() as conn:
            query = select(a.c.password_hash).where(a.c.id == account_id)
            found: str | None = (await conn.execute(query)).scalar()
        return found

    async def change(
        self,
        account_id: str,
        *,
        display: tuple[str, str] | None = None,
        password: tuple[str, str] | None = None,
    ) -> None:
        """Rename (``display``: the display name and its key) and/or set a new password
        (``password``: the new hash and the session token to keep: every other session of
        the account ends), in one transaction: all of it or, on any error, none.
        :class:`NameTaken` (``display_name``) when another account's name looks alike."""
        try:
            async with self._engine.begin() as conn:
                values: dict[str, str] = {}
                if display is not None:
                    display_name, display_key = display
                    shape = name_key(display_name)
                    if await _looks_taken(conn, {shape}, account_id):
                        raise NameTaken("display_name")
                    values.update(
                        display_name=display_name, display_key=display_key, display_skeleton=shape
                    )
                if password is not None:
                    values["password_hash"], keep_token = password
                    others = s.c.account_id == account_id, s.c.id != token_id(keep_token)
                    await conn.execute(delete(s).where(*others))
                if values:
                    await conn.execute(update(a).where(a.c.id == account_id).values(**values))
        except IntegrityError:
            raise NameTaken("display_name") from None

    async def set_password_hash(self, account_id: str, password_hash: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(a).where(a.c.id == account_id).values(password_hash=password_hash)
            )

    async def open_session(self, account_id: str, now_ms: int, expires_ms: int) -> str:
        """A new session; returns its token (for the cookie). Expired sessions are swept."""
        token = secrets.token_urlsafe(32)
        async with self._engine.begin() as conn:
            await conn.execute(delete(s).where(s.c.expires_ms <= now_ms))
            await conn.execute(
                insert(s).values(
                    id=token_id(token),
                    account_id=account_id,
                    created_ms=now_ms,
                    expires_ms=expires_ms,
                )
            )
        return token

    async def session_account(self, token: str, now_ms: int) -> Account | None:
        """The account a live session token signs in, or None."""
        query = (
            select(a.c.id, a.c.username, a.c.display_name)
            .join(s, s.c.account_id == a.c.id)
            .where(s.c.id == token_id(token), s.c.expires_ms > now_ms)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else Account(row.id, row.username, row.display_name)

    async def close_session(self, token: str) -> bool:
        """End the session of ``token``; whether there was one."""
        async with self._engine.begin() as conn:
            done = await conn.execute(delete(s).where(s.c.id == token_id(token)))
        return bool(done.rowcount)
