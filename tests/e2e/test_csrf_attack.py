"""CSRF from a real page on another origin: a signed-in victim visits an attacker's page.

The attacker's page is served by a separate HTTP server on another port, so it is another
origin to the browser. It tries (1) a credentialed cross-origin ``PATCH /api/v1/me`` to change
the victim's password and (2) an auto-submitting form that signs the browser in to the
attacker's account (login CSRF). Neither may take effect.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import Person, register, sign_in

pytestmark = pytest.mark.e2e

VICTIM, VICTIM_PASSWORD = "victim", "victim-password-1"
MALLORY, MALLORY_PASSWORD = "mallory", "mallory-password-1"

CHANGE_PASSWORD = """<!doctype html><title>prize</title><script>
fetch("{salon}/api/v1/me", {{
  method: "PATCH", credentials: "include",
  headers: {{"Content-Type": "application/json"}},
  body: JSON.stringify({{current_password: "{old}", new_password: "pwned-password-1"}}),
}}).then(r => {{ document.title = "patch:" + r.status; }},
         () => {{ document.title = "patch:blocked"; }});
</script>"""

LOGIN_FORM = """<!doctype html><title>prize</title>
<form id="f" method="POST" action="{salon}/api/v1/session">
<input name="username" value="{user}"><input name="password" value="{password}">
</form><script>document.getElementById("f").submit();</script>"""


@pytest.fixture
def attacker(server: str) -> Iterator[str]:
    """An HTTP server on another port: another origin, serving the two attack pages."""
    pages = {
        "/change-password": CHANGE_PASSWORD.format(salon=server, old=VICTIM_PASSWORD),
        "/login": LOGIN_FORM.format(salon=server, user=MALLORY, password=MALLORY_PASSWORD),
    }

    class Pages(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def me(page: Any) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(
        "fetch('/api/v1/me').then(async r => ({status: r.status, body: await r.json()}))"
    )
    return result


def test_cross_origin_pages_cannot_change_a_password_or_sign_the_victim_in(
    person: Person, attacker: str, server: str
) -> None:
    mallory = person()
    register(mallory, MALLORY, MALLORY_PASSWORD, "Mallory")
    victim = person()
    register(victim, VICTIM, VICTIM_PASSWORD, "Victim")
    assert me(victim)["body"]["username"] == VICTIM

    # (1) A credentialed cross-origin PATCH: the browser's CORS rules stop it (no CORS
    # headers, so the preflight fails) and the server's CSRF rule would refuse it anyway.
    victim.goto(f"{attacker}/change-password")
    victim.wait_for_function("document.title.startsWith('patch:')")
    assert victim.title() == "patch:blocked"

    # (2) Login CSRF: a cross-site form post to sign the browser in as mallory.
    with victim.expect_response(f"{server}/api/v1/session") as posted:
        victim.goto(f"{attacker}/login")
    response = posted.value
    assert response.status == 403
    assert json.loads(response.text())["detail"]["code"] == "csrf"

    # The victim is still the victim, and the password is still the old one.
    victim.goto("/")
    assert me(victim)["body"]["username"] == VICTIM
    fresh = person()  # another browser: the old password still opens the account
    sign_in(fresh, VICTIM, VICTIM_PASSWORD)
    assert me(fresh)["body"]["username"] == VICTIM
