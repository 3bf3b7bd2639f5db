"""API keys: ``salon api-key`` on the database a server uses, and the Bearer check of the server
API against the real server — a missing, wrong, revoked or cookie-borne key gets 401, a key
without the route's scope 403, a browser's session grants nothing, and no CSRF token is asked.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from salon.cli import main
from salon.core.clock import FakeClock
from salon.core.settings import Settings
from salon.server.apiauth import TOUCH_EVERY_MS, ApiKeyAuth
from salon.store.apikeys import MAX_NAME_CHARS, SCOPES, NewApiKey, SqlApiKeyRepository
from salon.store.database import open_database
from tests.integration.conftest import database_options
from tests.integration.postgres import Cluster
from tests.integration.rest import same_origin_headers
from tests.integration.server import RunningServer, running_server
from tests.integration.test_resume import account_headers

KEY = re.compile(r"salon_([A-Za-z0-9_-]{12})_([A-Za-z0-9_-]{43})")


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``salon ARGV``; its exit code, stdout and stderr."""
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def cli_in_thread(*argv: str) -> int:
    """``salon ARGV`` from an async test (it runs its own event loop)."""
    return await asyncio.to_thread(main, list(argv))


async def new_key(
    where: Path | RunningServer, name: str = "test", scopes: tuple[str, ...] = ()
) -> NewApiKey:
    """A key made straight in the database of a server, or of the one on a data folder."""
    settings = where.settings if isinstance(where, RunningServer) else Settings(data_dir=where)
    engine = await open_database(settings.sqlalchemy_url())
    try:
        return await SqlApiKeyRepository(engine).create(name, scopes, 1_700_000_000_000)
    finally:
        await engine.dispose()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ------------------------------------------------------------------------------ the CLI


def test_create_prints_the_key_once_list_and_revoke(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ("--data-dir", str(tmp_path))
    code, out, err = cli(capsys, "api-key", "create", "LMS", *where)
    assert code == 0
    found = KEY.fullmatch(out.strip())
    assert found is not None, out
    key_id, secret = found[1], found[2]
    assert key_id in err and "shown this once" in err
    assert "meetings:read meetings:write webhooks:manage" in err  # all scopes by default

    code, out, _ = cli(capsys, "api-key", "list", *where)
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["ID", "NAME", "SCOPES", "CREATED", "LAST", "USED", "REVOKED"]
    cells = row.split()
    assert cells[:3] == [key_id, "LMS", ",".join(SCOPES)]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", cells[3])
    assert cells[4:] == ["-", "-"]  # never used, not revoked
    assert secret not in out

    code, out, _ = cli(capsys, "api-key", "revoke", key_id, *where)
    assert (code, out.strip()) == (0, f"revoked API key {key_id}")
    _, out, _ = cli(capsys, "api-key", "list", *where)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", out.splitlines()[1].split()[-1])

    code, _, err = cli(capsys, "api-key", "revoke", "nosuchkey123", *where)
    assert code == 2 and "no API key 'nosuchkey123'" in err


def test_a_command_run_in_the_wrong_place_makes_no_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """From the operators' review: a key made in a new, empty database nobody serves only
    gets 401 later. A data folder that does not exist is refused instead."""
    missing = tmp_path / "nowhere"
    for argv in (("api-key", "create", "LMS"), ("api-key", "list"), ("webhook", "list")):
        code, out, err = cli(capsys, *argv, "--data-dir", str(missing))
        assert (code, out) == (2, ""), (argv, out, err)
        assert f"no data folder at {missing}" in err
    assert not missing.exists()


def test_scopes_can_be_narrowed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    where = ("--data-dir", str(tmp_path))
    code, _, err = cli(capsys, "api-key", "create", "reader", "--scope", "meetings:read", *where)
    assert code == 0 and "(reader): meetings:read\n" in err
    args = ("--scope", "webhooks:manage", "--scope", "meetings:read", "--scope", "meetings:read")
    code, _, err = cli(capsys, "api-key", "create", "two", *args, *where)
    assert code == 0 and "(two): meetings:read webhooks:manage\n" in err
    with pytest.raises(SystemExit):  # argparse refuses an unknown scope
        main(["api-key", "create", "bad", "--scope", "meetings:delete", *where])


def test_a_name_is_at_most_100_characters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ("--data-dir", str(tmp_path))
    code, _, err = cli(capsys, "api-key", "create", "n" * (MAX_NAME_CHARS + 1), *where)
    assert code == 2
    assert err.strip() == "salon: an API key's name has at most 100 characters"
    code, _, err = cli(capsys, "api-key", "create", "   ", *where)
    assert (code, err.strip()) == (2, "salon: an API key needs a name")
    code, _, _ = cli(capsys, "api-key", "create", "n" * MAX_NAME_CHARS, *where)
    assert code == 0
    _, out, _ = cli(capsys, "api-key", "list", *where)
    assert [line.split()[1] for line in out.splitlines()[1:]] == ["n" * MAX_NAME_CHARS]


def test_an_unreachable_database_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SALON_DATABASE_URL", "postgresql+asyncpg://salon:hunter22@127.0.0.1:1/x")
    for argv in (("create", "x"), ("list",), ("revoke", "x")):
        code, out, err = cli(capsys, "api-key", *argv)
        assert (code, out) == (2, "")
        assert err.startswith("salon: the database cannot be reached: ") and err.endswith("\n")
        assert err.count("\n") == 1 and "hunter22" not in err


async def test_only_the_secrets_sha256_is_stored(tmp_path: Path) -> None:
    made = await new_key(tmp_path)
    secret = made.token[len("salon_") + 12 + 1 :]  # both parts may hold "_"
    assert made.token == f"salon_{made.key.id}_{secret}" and len(secret) == 43
    engine = await open_database(Settings(data_dir=tmp_path).sqlalchemy_url())
    try:
        async with engine.connect() as conn:
            rows = (await conn.exec_driver_sql("SELECT id, secret_sha256 FROM api_keys")).all()
    finally:
        await engine.dispose()
    assert [tuple(r) for r in rows] == [(made.key.id, hashlib.sha256(secret.encode()).hexdigest())]

    def database_bytes() -> bytes:
        return b"".join(p.read_bytes() for p in tmp_path.glob("salon.db*"))

    stored = await asyncio.to_thread(database_bytes)
    assert stored
    assert secret.encode() not in stored


async def test_last_used_is_written_at_most_once_a_minute(tmp_path: Path) -> None:
    made = await new_key(tmp_path)
    engine = await open_database(Settings(data_dir=tmp_path).sqlalchemy_url())
    try:
        keys = SqlApiKeyRepository(engine)
        clock = FakeClock()
        auth = ApiKeyAuth(keys, clock)

        async def last_used() -> int | None:
            (key,) = await keys.list_keys()
            return key.last_used_ms

        assert await last_used() is None
        first = clock.wall_ms()
        await auth.authenticate(made.token)
        assert await last_used() == first
        clock.advance(TOUCH_EVERY_MS / 1000 - 0.001)
        await auth.authenticate(made.token)
        assert await last_used() == first  # not a write per request
        clock.advance(0.001)
        await auth.authenticate(made.token)
        assert await last_used() == first + TOUCH_EVERY_MS
    finally:
        await engine.dispose()


# ------------------------------------------------------------------------------ the server


@pytest.fixture
async def server(tmp_path: Path, database_url: str | None) -> AsyncIterator[RunningServer]:
    """On SQLite and on PostgreSQL."""
    with running_server(tmp_path, options=database_options(database_url)) as running:
        yield running


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as client:
        yield client


async def refused(answer: httpx.Response, *, status: int = 401) -> dict[str, str]:
    assert answer.status_code == status, answer.text
    detail: dict[str, str] = answer.json()["detail"]
    code = "invalid_api_key" if status == 401 else "insufficient_scope"
    assert detail["code"] == code, detail
    assert answer.headers["WWW-Authenticate"].startswith('Bearer realm="salon"')
    return detail


async def test_a_live_key_with_its_scope_is_let_in(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    made = await new_key(server)
    answer = await http.get("/api/v1/meetings", headers=bearer(made.token))
    assert (answer.status_code, answer.json()) == (200, {"meetings": []})
    # Lower case "bearer" is the same scheme (RFC 7235 §2.1).
    answer = await http.get("/api/v1/meetings", headers={"authorization": f"bearer {made.token}"})
    assert answer.status_code == 200
    # Used: the store says when (once: the second request came within the minute).
    engine = await open_database(server.settings.sqlalchemy_url())
    try:
        (key,) = await SqlApiKeyRepository(engine).list_keys()
    finally:
        await engine.dispose()
    assert key.last_used_ms is not None and key.last_used_ms >= made.key.created_ms


async def test_missing_malformed_and_wrong_keys_get_401(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    made = await new_key(server)
    missing = await http.get("/api/v1/meetings")
    await refused(missing)
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="salon"'
    wrong_secret = made.token[:-1] + ("A" if made.token[-1] != "A" else "B")
    other_id = "salon_" + "x" * 12 + made.token[18:]
    for token in (wrong_secret, other_id, made.token + "x", "salon_", made.token[6:], "x"):
        answer = await http.get("/api/v1/meetings", headers=bearer(token))
        detail = await refused(answer)
        assert detail["message"] == "unknown or wrong API key"
        assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
    for header in (f"Basic {made.token}", made.token, f"Token {made.token}"):
        await refused(await http.get("/api/v1/meetings", headers={"Authorization": header}))


async def test_a_revoked_key_gets_401(
    server: RunningServer, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = await new_key(server)
    assert (await http.get("/api/v1/meetings", headers=bearer(made.token))).status_code == 200
    where = ("--data-dir", str(server.settings.data_dir))
    if server.settings.database_url:  # the CLI finds the database as the server does
        monkeypatch.setenv("SALON_DATABASE_URL", server.settings.database_url)
    assert await cli_in_thread("api-key", "revoke", made.key.id, *where) == 0
    detail = await refused(await http.get("/api/v1/meetings", headers=bearer(made.token)))
    assert detail["message"] == "this API key was revoked"
    body = {"mode": "mesh"}
    await refused(await http.post("/api/v1/meetings", json=body, headers=bearer(made.token)))


async def test_a_key_anywhere_but_the_header_does_nothing(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    made = await new_key(server)
    token = made.token
    for cookie in ("salon_session", "api_key", "Authorization", "token"):
        answer = await http.get("/api/v1/meetings", headers={"Cookie": f"{cookie}={token}"})
        await refused(answer)
    for query in ("api_key", "access_token", "key", "token"):
        await refused(await http.get(f"/api/v1/meetings?{query}={token}"))
    # A form body (RFC 6750 §2.2) is not read either.
    form = {"access_token": token}
    await refused(await http.post("/api/v1/meetings", data=form))


async def test_a_browser_session_grants_no_api_access(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    page = await account_headers(server, "alice")  # signed up: a live salon_session cookie
    async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as client:
        csrf = await same_origin_headers(client, server.base_url)
        cookies = f"{page['Cookie']}; salon_csrf={csrf['X-CSRF-Token']}"
        headers = {**csrf, "Cookie": cookies}
        assert (await client.get("/api/v1/me", headers=headers)).status_code == 200  # live
        await refused(await client.get("/api/v1/meetings", headers=headers))
        await refused(await client.post("/api/v1/meetings", json={}, headers=headers))


async def test_a_missing_scope_gets_403(server: RunningServer, http: httpx.AsyncClient) -> None:
    reader = await new_key(server, "reader", ("meetings:read",))
    writer = await new_key(server, "writer", ("meetings:write",))
    hooks = await new_key(server, "hooks", ("webhooks:manage",))
    assert (await http.get("/api/v1/meetings", headers=bearer(reader.token))).status_code == 200
    answer = await http.post("/api/v1/meetings", json={}, headers=bearer(reader.token))
    detail = await refused(answer, status=403)
    assert detail["message"] == "this key lacks meetings:write"
    assert (
        'error="insufficient_scope", scope="meetings:write"' in answer.headers["WWW-Authenticate"]
    )
    created = await http.post("/api/v1/meetings", json={}, headers=bearer(writer.token))
    assert created.status_code == 201
    await refused(await http.get("/api/v1/meetings", headers=bearer(writer.token)), status=403)
    for path in ("/api/v1/meetings", f"/api/v1/meetings/{created.json()['id']}"):
        await refused(await http.get(path, headers=bearer(hooks.token)), status=403)


async def test_no_csrf_token_is_asked_of_a_key(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    made = await new_key(server)
    # No cookie, no X-CSRF-Token, and an Origin of another site: a key is not ambient.
    headers = {**bearer(made.token), "Origin": "https://evil.example"}
    created = await http.post("/api/v1/meetings", json={}, headers=headers)
    assert created.status_code == 201, created.text
    room = created.json()["id"]
    assert (await http.post(f"/api/v1/meetings/{room}/links", headers=headers)).status_code == 201
    # The browser routes keep their guard: a key does not open them.
    answer = await http.post("/api/v1/rooms", headers=headers)
    assert (answer.status_code, answer.json()["detail"]["code"]) == (403, "csrf")


async def test_a_store_outage_is_503_never_a_refused_key(
    tmp_path: Path, cluster: tuple[Cluster, str]
) -> None:
    """A client told 401 would drop a good key: while the database is down the answer is 503
    ``store_unavailable``, and the key works again when it is back."""
    postgres, url = cluster
    with running_server(tmp_path, options={"database_url": url}) as server:
        engine = await open_database(url)
        try:
            made = await SqlApiKeyRepository(engine).create("outage", (), 1_700_000_000_000)
        finally:
            await engine.dispose()
        async with httpx.AsyncClient(
            base_url=server.base_url, verify=server.ssl_context, headers=bearer(made.token)
        ) as api:
            assert (await api.get("/api/v1/meetings")).status_code == 200
            postgres.stop()
            for answer in (await api.get("/api/v1/meetings"), await api.post("/api/v1/meetings")):
                assert answer.status_code == 503, answer.text
                assert answer.json()["detail"]["code"] == "store_unavailable"
            postgres.start()
            # The pool's connection from before the outage fails once and is dropped (a 503);
            # the key itself was never refused.
            statuses = [(await api.get("/api/v1/meetings")).status_code for _ in range(3)]
            assert statuses in ([200] * 3, [503, 200, 200]), statuses
