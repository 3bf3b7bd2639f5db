"""Webhook endpoints and their deliveries, in the ``webhooks`` and ``webhook_deliveries`` tables.

One delivery is one event for one endpoint: the exact body that is signed and POSTed, and how
its attempts went. A delivery is ``pending`` until a 2xx answer makes it ``delivered`` or its
last attempt makes it ``failed`` (or it is failed unsent, too old or one too many pending for
its endpoint: :meth:`SqlWebhookRepository.expire`, :meth:`SqlWebhookRepository.trim`).
Delivery ids sort in creation order (:class:`DeliveryIds`), so "the oldest pending delivery of
an endpoint" is the one with the smallest id: the dispatcher sends only that one per endpoint
(:meth:`SqlWebhookRepository.heads`), which keeps each endpoint's events in order even while
one of them is retried.

Removing an endpoint removes its deliveries too (by hand: SQLite enforces no foreign keys
here). Store trouble is ``store_unavailable`` (:class:`~salon.store.database.GuardedEngine`).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from salon.store.database import GuardedEngine
from salon.store.tables import webhook_deliveries as d
from salon.store.tables import webhooks as w

DeliveryStatus = Literal["pending", "delivered", "failed"]
DELIVERY_STATUSES: Final[tuple[DeliveryStatus, ...]] = get_args(DeliveryStatus)


class TooManyWebhooks(Exception):
    """Registering one more endpoint would pass ``webhooks.max_endpoints``."""


@dataclass(frozen=True, slots=True)
class Webhook:
    """A registered endpoint. ``secret``: ``whsec_<base64>``, the key its deliveries are signed
    with; ``events``: the event types it gets. Times are Unix milliseconds."""

    id: str
    url: str
    secret: str
    events: tuple[str, ...]
    created_ms: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one endpoint and how its attempts went. ``id`` is the ``webhook-id``
    header (the same on every attempt); ``payload`` the exact body sent; times are Unix
    milliseconds; ``last_error`` a short reason without secrets (``None`` after a 2xx)."""

    id: str
    webhook_id: str
    event_type: str
    payload: str
    created_ms: int
    status: DeliveryStatus
    attempts: int
    next_attempt_ms: int
    last_attempt_ms: int | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    delivered_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Due:
    """The oldest pending delivery of an endpoint, with what sending it needs."""

    delivery: Delivery
    url: str
    secret: str


_CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _base32(value: int, chars: int) -> str:
    out = []
    for _ in range(chars):
        value, digit = divmod(value, 32)
        out.append(_CROCKFORD[digit])
    return "".join(reversed(out))


class DeliveryIds:
    """Delivery ids ``msg_<26 characters>`` (a ULID: 48 bits of milliseconds, 80 random bits,
    Crockford base32), strictly increasing as strings even within one millisecond or when the
    clock steps back (the random part is then counted up): sorting by id sorts by creation."""

    def __init__(self) -> None:
        self._last_ms, self._last_rand = -1, 0

    def next(self, now_ms: int) -> str:
        """A new id for a delivery made at ``now_ms`` (Unix milliseconds)."""
        if now_ms <= self._last_ms:
            now_ms, rand = self._last_ms, self._last_rand + 1
        else:
            rand = secrets.randbits(79)  # leaves room to count up within the millisecond
        self._last_ms, self._last_rand = now_ms, rand
        return "msg_" + _base32(now_ms, 10) + _base32(rand, 16)


def _webhook(row: Any) -> Webhook:
    return Webhook(row.id, row.url, row.secret, tuple(row.events.split()), row.created_ms)


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        webhook_id=row.webhook_id,
        event_type=row.event_type,
        payload=row.payload,
        created_ms=row.created_ms,
        status=row.status,
        attempts=row.attempts,
        next_attempt_ms=row.next_attempt_ms,
        last_attempt_ms=row.last_attempt_ms,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        delivered_ms=row.delivered_ms,
    )


class SqlWebhookRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = GuardedEngine(engine)

    # ---------------------------------------------------------------- endpoints

    async def add(
        self, url: str, secret: str, events: Sequence[str], now_ms: int, max_endpoints: int
    ) -> Webhook:
        """Register an endpoint (``url`` and ``events`` already checked by the caller) under a
        fresh id ``wh_<12 URL-safe characters>``; :class:`TooManyWebhooks` when
        ``max_endpoints`` are registered already."""
        while True:
            hook = Webhook("wh_" + secrets.token_urlsafe(9), url, secret, tuple(events), now_ms)
            try:
                async with self._engine.begin() as conn:
                    count = (await conn.execute(select(func.count()).select_from(w))).scalar_one()
                    if count >= max_endpoints:
                        raise TooManyWebhooks(
                            f"at most {max_endpoints} webhook endpoints: remove one first"
                        )
                    values = {
                        "id": hook.id,
                        "url": url,
                        "secret": secret,
                        "events": " ".join(events),
                        "created_ms": now_ms,
                    }
                    await conn.execute(insert(w).values(**values))
            except IntegrityError:  # 72 random bits met an existing id: draw again
                continue
            return hook

    async def endpoints(self) -> list[Webhook]:
        """Every registered endpoint, oldest first."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(w).order_by(w.c.created_ms, w.c.id))
        return [_webhook(r) for r in rows]

    async def get(self, webhook_id: str) -> Webhook | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(w).where(w.c.id == webhook_id))).first()
        return None if row is None else _webhook(row)

    async def remove(self, webhook_id: str) -> bool:
        """Remove an endpoint and all its deliveries; False when there is no such endpoint."""
        async with self._engine.begin() as conn:
            await conn.execute(delete(d).where(d.c.webhook_id == webhook_id))
            return (await conn.execute(delete(w).where(w.c.id == webhook_id))).rowcount > 0

    # --------------------------------------------------------------- deliveries

    async def enqueue(self, deliveries: Sequence[Delivery]) -> None:
        """Store new deliveries in one transaction (all or none)."""
        if not deliveries:
            return
        rows = [
            {
                "id": x.id,
                "webhook_id": x.webhook_id,
                "event_type": x.event_type,
                "payload": x.payload,
                "created_ms": x.created_ms,
                "status": x.status,
                "attempts": x.attempts,
                "next_attempt_ms": x.next_attempt_ms,
            }
            for x in deliveries
        ]
        async with self._engine.begin() as conn:
            await conn.execute(insert(d), rows)

    async def heads(self) -> list[Due]:
        """The oldest pending delivery of each endpoint that has one (due or not), oldest
        first. One indexed look-up per endpoint (``ix_webhook_deliveries_pending``), however
        long its backlog: an endpoint that is down does not slow the others' dispatch."""
        head = (
            select(d.c.id)
            .where(d.c.status == "pending", d.c.webhook_id == w.c.id)
            .order_by(d.c.id)
            .limit(1)
            .correlate(w)
            .scalar_subquery()
        )
        heads = select(w.c.url, w.c.secret, head.label("head")).subquery()
        query = select(d, heads.c.url, heads.c.secret).join(heads, d.c.id == heads.c.head)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.order_by(d.c.id))).all()
        return [Due(_delivery(r), r.url, r.secret) for r in rows]

    async def claim(self, delivery_id: str, due_ms: int, until_ms: int) -> bool:
        """Take the next attempt of a pending delivery read as due at ``due_ms``, until
        ``until_ms``: whether it is this caller's. Several processes share one store
        (docs/SCALING.md) and may read the same head: one compare-and-set on
        ``next_attempt_ms`` gives the attempt to one of them; the others see it due only at
        ``until_ms``, when a process that died mid-attempt leaves it to the next."""
        return await self._move(delivery_id, due_ms, until_ms)

    async def release(self, delivery_id: str, until_ms: int, due_ms: int) -> None:
        """Undo :meth:`claim` (due at ``due_ms`` again) unless the attempt's outcome was
        stored meanwhile: a compare-and-set on the claim's ``until_ms``."""
        await self._move(delivery_id, until_ms, due_ms)

    async def _move(self, delivery_id: str, from_ms: int, to_ms: int) -> bool:
        """Set a pending delivery's ``next_attempt_ms`` to ``to_ms`` if it is still
        ``from_ms``, in one statement: whether it was (and is now moved)."""
        query = (
            update(d)
            .where(d.c.id == delivery_id, d.c.status == "pending", d.c.next_attempt_ms == from_ms)
            .values(next_attempt_ms=to_ms)
        )
        async with self._engine.begin() as conn:
            result = await conn.execute(query)
        return result.rowcount == 1

    async def delivered(self, delivery_id: str, now_ms: int, status_code: int) -> None:
        """An attempt got a 2xx answer."""
        values = {
            "status": "delivered",
            "attempts": d.c.attempts + 1,
            "last_attempt_ms": now_ms,
            "last_status_code": status_code,
            "last_error": None,
            "delivered_ms": now_ms,
        }
        async with self._engine.begin() as conn:
            await conn.execute(update(d).where(d.c.id == delivery_id).values(**values))

    async def attempt_failed(
        self,
        delivery_id: str,
        now_ms: int,
        status_code: int | None,
        error: str,
        next_attempt_ms: int | None,
    ) -> None:
        """An attempt failed (``status_code``: the answer's, None without one; ``error``: why,
        at most 300 characters). ``next_attempt_ms`` None: that was the last attempt, the
        delivery is ``failed``; else it stays ``pending`` until then."""
        values: dict[str, Any] = {
            "attempts": d.c.attempts + 1,
            "last_attempt_ms": now_ms,
            "last_status_code": status_code,
            "last_error": error[:300],
        }
        if next_attempt_ms is None:
            values["status"] = "failed"
        else:
            values["next_attempt_ms"] = next_attempt_ms
        # Still pending: one failed meanwhile (:meth:`trim`, :meth:`expire`) keeps its reason.
        query = update(d).where(d.c.id == delivery_id, d.c.status == "pending")
        async with self._engine.begin() as conn:
            await conn.execute(query.values(**values))

    async def deliveries(
        self, webhook_id: str, status: DeliveryStatus | None = None, limit: int = 50
    ) -> list[Delivery]:
        """An endpoint's deliveries, newest first, at most ``limit``; only those in ``status``
        when given."""
        query = select(d).where(d.c.webhook_id == webhook_id)
        if status is not None:
            query = query.where(d.c.status == status)
        query = query.order_by(d.c.id.desc()).limit(limit)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_delivery(r) for r in rows]

    async def pending_count(self, webhook_id: str) -> int:
        """How many deliveries of an endpoint are pending."""
        query = (
            select(func.count())
            .select_from(d)
            .where(d.c.status == "pending", d.c.webhook_id == webhook_id)
        )
        async with self._engine.connect() as conn:
            count: int = (await conn.execute(query)).scalar_one()
        return count

    async def trim(self, webhook_id: str, keep: int, error: str, batch: int = 2000) -> int:
        """Fail the pending deliveries of an endpoint but its newest ``keep``, oldest first,
        unsent (``last_error`` ``error``); how many. Indexed: it reads at most ``keep`` + 1
        index entries to find where to cut, then only the ones it fails."""
        pending = (d.c.status == "pending", d.c.webhook_id == webhook_id)
        cut = select(d.c.id).where(*pending).order_by(d.c.id.desc()).offset(keep).limit(1)
        async with self._engine.connect() as conn:
            newest_failed = (await conn.execute(cut)).scalar()
        if newest_failed is None:
            return 0
        return await self._fail_unsent((*pending, d.c.id <= newest_failed), error, batch)

    async def expire(self, before_ms: int, error: str, batch: int = 2000) -> int:
        """Fail every pending delivery created before ``before_ms``, unsent (``last_error``
        ``error``); how many. Endpoint by endpoint, on the index of pending deliveries; one
        whose oldest pending delivery is younger is passed over after one look-up."""
        async with self._engine.connect() as conn:
            endpoints = (await conn.scalars(select(w.c.id))).all()
            old = []
            for endpoint in endpoints:
                pending = (d.c.status == "pending", d.c.webhook_id == endpoint)
                head = select(d.c.created_ms).where(*pending).order_by(d.c.id).limit(1)
                oldest = (await conn.execute(head)).scalar()
                if oldest is not None and oldest < before_ms:
                    old.append((*pending, d.c.created_ms < before_ms))
        failed = 0
        for where in old:
            failed += await self._fail_unsent(where, error, batch)
        return failed

    async def _fail_unsent(self, where: tuple[Any, ...], error: str, batch: int) -> int:
        """Mark the pending deliveries ``where`` selects failed, ``batch`` per transaction."""
        some = select(d.c.id).where(*where).order_by(d.c.id).limit(batch)
        # Still pending when updated (an attempt may have ended meantime); "not in" rather
        # than "= 'pending'", so that SQLite finds the rows by id, not by scanning the index
        # of every pending delivery.
        still = d.c.status.not_in(("delivered", "failed"))
        values = {"status": "failed", "last_error": error[:300]}
        failed = 0
        while True:
            async with self._engine.begin() as conn:
                query = update(d).where(d.c.id.in_(some), still).values(**values)
                done = (await conn.execute(query)).rowcount
            failed += done
            if done < batch:
                return failed
            await asyncio.sleep(0)  # let other writers go between batches

    async def prune(self, before_ms: int, batch: int = 2000) -> int:
        """Delete delivered and failed deliveries created before ``before_ms``, in batches;
        how many went. Pending ones stay whatever their age."""
        done_statuses = ("delivered", "failed")
        oldest = (
            select(d.c.id)
            .where(d.c.status.in_(done_statuses), d.c.created_ms < before_ms)
            .limit(batch)
        )
        gone = 0
        while True:
            async with self._engine.begin() as conn:
                done = (await conn.execute(delete(d).where(d.c.id.in_(oldest)))).rowcount
            gone += done
            if done < batch:
                return gone
            await asyncio.sleep(0)  # let deliveries waiting for the lock go between batches
