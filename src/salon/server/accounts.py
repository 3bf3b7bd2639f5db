"""Accounts over REST: sign up, sign in (a new session each time), sign out, who am I, and
changing one's display name or password.

The session is the ``salon_session`` cookie: an opaque token, ``HttpOnly``, ``SameSite=Lax``,
``Secure`` over TLS, living ``session_days``. Every route that changes state sits behind the
CSRF rule (:mod:`salon.server.csrf`). Password guessing is slowed per client address and per
account name (429 with ``Retry-After``); an unknown name and a wrong password get the same
answer after the same work (a dummy hash is checked).

A session that ends — signed out, revoked by a new sign-in in the same browser, or by a
password change in another session — closes the WebSockets signed in with it (close code
4006, docs/PROTOCOL.md §6.2) through :class:`~salon.server.state.ServerState`.
"""

from __future__ import annotations

import hashlib
import math
import unicodedata
from dataclasses import dataclass
from typing import Final

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel
from starlette.requests import HTTPConnection

from salon.core import validate
from salon.core.addresses import client_key
from salon.core.errors import SalonError
from salon.core.settings import AccountSettings
from salon.core.throttle import KeyedThrottle
from salon.protocol.messages import IceServer, SignedInAccount
from salon.server import csrf
from salon.server.origins import OriginPolicy
from salon.server.state import ServerState, SignedSession
from salon.store.accounts import ARGON2, Account, NameTaken, Passwords, token_id

SESSION_COOKIE: Final = "salon_session"
DEVICE_COOKIE: Final = "salon_device"  # a known device of an account (salon.core.devices)


def device_cookie(account_key: str) -> str:
    """The name of the known-device cookie for one account (``salon_device_`` and 16 hex
    digits of the SHA-256 of its name key): a browser keeps one for each account it signed
    in to, so signing in to another account does not forget the first."""
    return f"{DEVICE_COOKIE}_{hashlib.sha256(account_key.encode()).hexdigest()[:16]}"


class SignUp(BaseModel):
    username: str
    password: str
    display_name: str | None = None  # default: the username


class SignIn(BaseModel):
    username: str
    password: str


class MeChange(BaseModel):
    """What ``PATCH /me`` changes: the display name, the password (with the current one), or
    both. The password is checked first, so a wrong one changes nothing."""

    display_name: str | None = None
    current_password: str | None = None
    new_password: str | None = None


class Me(BaseModel):
    id: str
    username: str
    display_name: str


class SessionInfo(BaseModel):
    """``GET /api/v1/session``: the signed-in account, or null for a guest."""

    account: Me | None


def problem(status: int, code: str, message: str, **headers: str) -> HTTPException:
    return HTTPException(status, detail={"code": code, "message": message}, headers=headers)


def _me(account: Account) -> Me:
    return Me(id=account.id, username=account.username, display_name=account.display_name)


class Accounts:
    """What the account routes share: settings, hashing slots and the sign-in throttles."""

    def __init__(self, settings: AccountSettings) -> None:
        self.settings = settings
        self.passwords = Passwords(settings.hash_concurrency)
        keys = settings.throttle_keys
        self.by_ip = KeyedThrottle(
            settings.ip_attempts_per_minute, settings.ip_attempts_burst, keys
        )
        # One account from one address, or from one known device: the same budget each.
        self.by_asker = KeyedThrottle(
            settings.account_attempts_per_minute, settings.account_attempts_burst, keys
        )
        self.by_device_ip = KeyedThrottle(
            settings.ip_attempts_per_minute, settings.ip_attempts_burst, keys
        )
        self.by_name = KeyedThrottle(
            settings.account_ceiling_per_minute, settings.account_ceiling_burst, keys
        )

    def throttle_sign_in(self, request: Request, account_key: str) -> None:
        """Spend the tries of a sign-in to ``account_key``, or refuse it (429). A known device
        of that account (``salon_device``) spends only its own budget; anyone else spends
        its address's, its address's for this account, and this account's ceiling."""
        state = _state(request)
        device = state.devices.device(request.cookies.get(device_cookie(account_key)), account_key)
        address = request_address(request)
        if device is not None:
            # Its own budget, and a pool per address for known devices only (each sign-in is
            # an argon2 check: cookies collected for one's own account buy no more of them).
            self.throttle(self.by_asker, f"device\n{device}", state)
            self.throttle(self.by_device_ip, address, state)
            return
        self.throttle(self.by_ip, address, state)
        self.throttle(self.by_asker, f"address\n{address}\n{account_key}", state)
        self.throttle(self.by_name, account_key, state)

    def throttle(self, throttle: KeyedThrottle, key: str, state: ServerState) -> None:
        spend(throttle, key, state)

    def throttle_ip(self, request: Request) -> None:
        self.throttle(self.by_ip, request_address(request), _state(request))

    def password(self, raw: str, *, new: bool) -> str:
        """Length checks come before any hashing; NFC so the same typed password matches."""
        limits = self.settings
        if len(raw) > limits.max_password_chars:
            raise problem(422, "invalid_password", f"at most {limits.max_password_chars} chars")
        if new and len(raw) < limits.min_password_chars:
            raise problem(422, "invalid_password", f"at least {limits.min_password_chars} chars")
        return unicodedata.normalize("NFC", raw)

    async def sign_in(self, request: Request, response: Response, account: Account) -> None:
        """A fresh session for ``account``; the request's old one, if any, is revoked, so a
        session id planted before sign-in is never the signed-in one (session fixation)."""
        state = _state(request)
        old = request.cookies.get(SESSION_COOKIE)
        if old and await state.accounts.close_session(old):
            state.session_ended(token_id(old))
        now = state.clock.wall_ms()
        lifetime_ms = int(self.settings.session_days * 86_400_000)
        token = await state.accounts.open_session(account.id, now, now + lifetime_ms)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=max(1, lifetime_ms // 1000),
            path="/",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="lax",
        )
        key = validate.account_key(account.username)
        cookie = device_cookie(key)
        if state.devices.device(request.cookies.get(cookie), key) is None:
            response.set_cookie(
                cookie,
                state.devices.issue(key),
                max_age=max(1, int(self.settings.known_device_days * 86_400)),
                path="/api/v1/session",  # only the sign-in needs it
                secure=request.url.scheme == "https",
                httponly=True,
                samesite="strict",
            )


def spend(throttle: KeyedThrottle, key: str, state: ServerState) -> None:
    """Spend one try of ``key`` from ``throttle``, or refuse the request: HTTP 429
    ``rate_limited`` with ``Retry-After`` (whole seconds, RFC 9110 §10.2.3)."""
    wait = throttle.take(key, state.clock.monotonic())
    if wait > 0:
        retry = str(max(1, math.ceil(wait)))
        message = f"too many attempts: try again in {retry} s"
        raise problem(429, "rate_limited", message, **{"Retry-After": retry})


def request_address(request: Request) -> str:
    """The client address the throttles count by (an IPv6 client by its /64)."""
    return client_key(request.client.host) if request.client else "unknown"


def _state(request: HTTPConnection) -> ServerState:
    state: ServerState = request.app.state.salon
    return state


async def session_account(conn: HTTPConnection) -> Account | None:
    """The account the request's ``salon_session`` cookie signs in, if it is live."""
    state = _state(conn)
    token = conn.cookies.get(SESSION_COOKIE)
    return await state.accounts.session_account(token, state.clock.wall_ms()) if token else None


@dataclass(frozen=True, slots=True)
class HandshakeSession:
    """Who a WebSocket handshake is signed in as, with which session, and how many sessions
    had ended (:attr:`ServerState.revocations`) when that session was looked up."""

    account: SignedInAccount
    session: SignedSession
    revocations: int


async def signed_in(
    conn: HTTPConnection, state: ServerState, origins: OriginPolicy
) -> HandshakeSession | None:
    """For the WebSocket handshake: who the connection is signed in as, None for a guest.

    Only a handshake naming one of our origins is signed in. Browsers always send ``Origin``
    on a WebSocket handshake, and the origin rule (:meth:`OriginPolicy.permits_websocket`)
    lets one without it through for bots; such a handshake that carries the session cookie
    anyway is not a page of ours, so the cookie does not make it the account's."""
    if origins.check(conn) is not True:
        return None
    revocations = state.revocations
    token = conn.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    account = await state.accounts.session_account(token, state.clock.wall_ms())
    if account is None:
        return None
    return HandshakeSession(
        SignedInAccount(username=account.username, display_name=account.display_name),
        SignedSession(account.id, token_id(token)),
        revocations,
    )


async def still_signed_in(
    conn: HTTPConnection, state: ServerState, origins: OriginPolicy, signed: HandshakeSession
) -> bool:
    """Whether the handshake's session is still live, checked again only when some session
    ended since it was looked up (it may have been this one, and its connection was not yet
    there to be closed). Nothing awaits between a True and the caller registering the
    connection in :attr:`ServerState.signed`, so no ending is missed."""
    while state.revocations != signed.revocations:
        again = await signed_in(conn, state, origins)
        if again is None or again.session != signed.session:
            return False
        signed = again
    return True


async def _signed_in_or_401(request: Request) -> Account:
    account = await session_account(request)
    if account is None:
        raise problem(401, "not_signed_in", "no live session")
    return account


def _name(raw: str, max_chars: int, code: str) -> str:
    try:
        return validate.display_name(raw, max_chars)
    except SalonError as e:
        raise problem(422, code, e.message) from None


def build_account_router(settings: AccountSettings, origins: OriginPolicy) -> APIRouter:
    router = APIRouter(
        prefix="/api/v1", tags=["accounts"], dependencies=[Depends(csrf.CsrfGuard(origins))]
    )
    accounts = Accounts(settings)

    @router.post("/accounts", status_code=201)
    async def sign_up(request: Request, response: Response, body: SignUp) -> Me:
        """Create an account and sign it in."""
        state = _state(request)
        accounts.throttle_ip(request)
        max_chars = state.settings.limits.max_name_chars
        username = _name(body.username, max_chars, "invalid_username")
        display = _name(body.display_name or username, max_chars, "invalid_name")
        hashed = await accounts.passwords.hash(accounts.password(body.password, new=True))
        try:
            account = await state.accounts.create(
                username,
                validate.account_key(username),
                display,
                validate.account_key(display),
                hashed,
                state.clock.wall_ms(),
            )
        except NameTaken as e:
            raise problem(409, f"{e.field}_taken", f"that {e.field} is taken") from None
        await accounts.sign_in(request, response, account)
        return _me(account)

    @router.post("/session")
    async def sign_in(request: Request, response: Response, body: SignIn) -> Me:
        """Sign in with username and password: a new session cookie."""
        state = _state(request)
        metrics = state.metrics
        try:
            password = accounts.password(body.password, new=False)
            max_chars = state.settings.limits.max_name_chars
            username = _name(body.username, max_chars, "invalid_username")
        except HTTPException:
            metrics.sign_in("invalid")
            raise
        key = validate.account_key(username)
        try:
            accounts.throttle_sign_in(request, key)
        except HTTPException:
            metrics.sign_in("throttled")
            raise
        found = await state.accounts.credentials(key)
        stored = found.password_hash if found else None
        if not await accounts.passwords.verify(stored, password) or found is None:
            metrics.sign_in("unknown_account" if found is None else "wrong_password")
            raise problem(401, "bad_credentials", "wrong username or password")
        if ARGON2.check_needs_rehash(found.password_hash):
            new_hash = await accounts.passwords.hash(password)
            await state.accounts.set_password_hash(found.account.id, new_hash)
        await accounts.sign_in(request, response, found.account)
        metrics.sign_in("ok")
        return _me(found.account)

    @router.get("/session")
    async def who(request: Request) -> SessionInfo:
        """Who this browser is: ``{"account": …}`` as ``GET /me`` gives it, or
        ``{"account": null}`` for a guest. 200 either way, so a guest's page asks without
        an error (``/me`` answers a guest 401, as an API client expects)."""
        account = await session_account(request)
        return SessionInfo(account=None if account is None else _me(account))

    @router.delete("/session", status_code=204)
    async def sign_out(request: Request, response: Response) -> None:
        """Revoke this session and drop its cookie."""
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            state = _state(request)
            # Its open sockets close with 4006; a made-up cookie ends nothing and costs the
            # server no look at every signed-in connection.
            if await state.accounts.close_session(token):
                state.session_ended(token_id(token))
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")

    @router.get("/me")
    async def me(request: Request) -> Me:
        """The signed-in account; 401 without a live session."""
        return _me(await _signed_in_or_401(request))

    @router.get("/ice-servers")
    async def ice_servers(request: Request, response: Response) -> list[IceServer]:
        """STUN/TURN servers with fresh TURN credentials, for a signed-in member; 401 for
        anyone else. Connected members can also ask over the WebSocket (``ice_refresh``)."""
        account = await _signed_in_or_401(request)
        state: ServerState = request.app.state.salon
        response.headers["Cache-Control"] = "no-store"  # fresh credentials: never cached
        return state.ice_servers(f"account.{account.username}")

    @router.patch("/me")
    async def change_me(request: Request, body: MeChange) -> Me:
        """Change the display name and/or the password (which needs the current one; other
        sessions of the account are then signed out), all or nothing: a taken name or a
        wrong current password changes neither. Members online keep their old name until
        they reconnect."""
        account = await _signed_in_or_401(request)
        if body.display_name is None and body.new_password is None:
            raise problem(422, "nothing_to_change", "give display_name or new_password")
        state = _state(request)
        display = None
        if body.display_name is not None:
            name = _name(body.display_name, state.settings.limits.max_name_chars, "invalid_name")
            display = (name, validate.account_key(name))
        password = None
        if body.new_password is not None:
            password = (await new_password(request, account, body), request.cookies[SESSION_COOKIE])
        try:
            await state.accounts.change(account.id, display=display, password=password)
        except NameTaken:
            raise problem(409, "display_name_taken", "that display_name is taken") from None
        if password is not None:
            state.sessions_ended(account.id, keep=token_id(password[1]))  # their sockets: 4006
        return _me(
            Account(account.id, account.username, display[0] if display else account.display_name)
        )

    async def new_password(request: Request, account: Account, body: MeChange) -> str:
        """The hash of ``body.new_password`` once ``body.current_password`` is proven right."""
        state = _state(request)
        new = accounts.password(body.new_password or "", new=True)
        current = accounts.password(body.current_password or "", new=False)
        accounts.throttle_ip(request)
        # Only a signed-in session gets here: the account's strict budget, from any address
        # (5, then 2 a minute), not the sign-in ceiling that spares the owner's device.
        key = validate.account_key(account.username)
        accounts.throttle(accounts.by_asker, f"current\n{key}", state)
        stored = await state.accounts.password_hash(account.id)
        if not await accounts.passwords.verify(stored, current):
            raise problem(401, "bad_credentials", "the current password is wrong")
        return await accounts.passwords.hash(new)

    return router
