"""Debian's nginx with the shipped ``deploy/nginx/salon.conf.template`` in front of
``salon serve --http``, both started by the tests on free ports.

The template is rendered exactly as a user renders it (``envsubst`` of the six ``${NAME}``
placeholders); only ports, certificate paths and the upstream address differ. The main
``nginx.conf`` around it is the test's own: pid, logs and temp files in a temp folder.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from salon.server.tls import ensure_self_signed
from tests.support import stop_process

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "deploy" / "nginx" / "salon.conf.template"
SALON = REPO / ".venv" / "bin" / "salon"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
DOMAIN = "localhost"  # a name in the self-signed certificate that resolves here
STARTUP_SECONDS = 60  # generous: a loaded 2-core CI machine starts Salon slowly
PLACEHOLDER = re.compile(r"\$\{([A-Z_]+)\}")

MAIN_CONF = """\
{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    include {prefix}/salon.conf;
}}
"""


@dataclass
class Proxied:
    """Salon behind nginx: where each listens, and what to trust."""

    https_port: int
    http_port: int
    salon_port: int
    ca_file: Path  # the self-signed certificate nginx serves
    salon_log: Path
    prefix: Path

    @property
    def https_url(self) -> str:
        return f"https://{DOMAIN}:{self.https_port}"

    @property
    def salon_url(self) -> str:
        return f"http://127.0.0.1:{self.salon_port}"

    def tls_context(self) -> ssl.SSLContext:
        """Verify nginx's certificate for real, with the test's own certificate as the CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def render(template: str, values: dict[str, str]) -> str:
    """``envsubst`` with an explicit list: every placeholder must have a value."""
    names = set(PLACEHOLDER.findall(template))
    missing = names - values.keys()
    assert not missing, f"the template wants values for {sorted(missing)}"
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def _wait_for(
    url: str, context: ssl.SSLContext | None, proc: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            with urllib.request.urlopen(url, context=context, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{url} did not come up; {log}:\n{tail}")
        time.sleep(0.1)


@contextlib.contextmanager
def salon_behind_nginx(tmp: Path) -> Iterator[Proxied]:
    """Start Salon (``--http``) and nginx with the shipped template; stop both afterwards."""
    prefix = tmp / "nginx"
    (prefix / "tmp").mkdir(parents=True)
    cert, key = ensure_self_signed(tmp / "certs")
    proxied = Proxied(free_port(), free_port(), free_port(), cert, tmp / "salon.log", prefix)
    conf = render(
        TEMPLATE.read_text(),
        {
            "SALON_DOMAIN": DOMAIN,
            "SALON_UPSTREAM": f"127.0.0.1:{proxied.salon_port}",
            "NGINX_HTTPS_PORT": str(proxied.https_port),
            "NGINX_HTTP_PORT": str(proxied.http_port),
            "TLS_CERT": str(cert),
            "TLS_KEY": str(key),
        },
    )
    (prefix / "salon.conf").write_text(conf)
    # As root, workers must run as root to use the test's private temp folder.
    user = "user root;" if os.geteuid() == 0 else ""
    (prefix / "nginx.conf").write_text(MAIN_CONF.format(prefix=prefix, user=user))

    log = proxied.salon_log.open("w")
    salon = subprocess.Popen(
        [
            str(SALON),
            "serve",
            "--http",
            "--host",
            "127.0.0.1",
            "--port",
            str(proxied.salon_port),
            "--data-dir",
            str(tmp / "data"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        # Info level: uvicorn's access log shows the client address Salon believed.
        env={**os.environ, "SALON_LOG_LEVEL": "info", "SALON_FORWARDED_ALLOW_IPS": "127.0.0.1"},
    )
    nginx_log = (prefix / "stderr.log").open("w")
    nginx = subprocess.Popen(
        [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
        stdout=nginx_log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for(f"{proxied.salon_url}/api/v1/health", None, salon, proxied.salon_log)
        _wait_for(
            f"{proxied.https_url}/api/v1/health", proxied.tls_context(), nginx, prefix / "error.log"
        )
        yield proxied
    finally:
        stop_process(nginx)
        stop_process(salon)
        log.close()
        nginx_log.close()
