"""Debian's OpenSSH server on a free loopback port, for the release tests.

Everything is the test's own and lives in one temporary folder: a throwaway host key and user
key, ``authorized_keys``, the server's config (given with ``-f``) and the client's (given to
ssh with ``-F``, so ``~/.ssh`` is never read nor written). Nothing listens anywhere but
127.0.0.1. The one thing outside the folder is ``/run/sshd``, the privilege-separation folder
sshd insists on; it is made only when missing, and removed again if the test made it.

Sessions get this machine's settings for reaching package indexes (certificate authorities,
proxies; sshd's ``SetEnv``), as a real host would have them in its own configuration: the
release's ``uv pip install`` runs in such a session.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support import stop_process

SSHD = Path("/usr/sbin/sshd")
PRIVSEP = Path("/run/sshd")
ALIAS = "salon-test-host"
PASSED_ON = (
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "UV_NATIVE_TLS",
    "UV_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
    "https_proxy",
    "http_proxy",
    "no_proxy",
)

SERVER_CONFIG = """\
ListenAddress 127.0.0.1
Port {port}
HostKey {folder}/host_key
PidFile {folder}/sshd.pid
AuthorizedKeysFile {folder}/authorized_keys
AllowUsers {user}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowTcpForwarding no
X11Forwarding no
PermitTTY no
{setenv}"""

CLIENT_CONFIG = """\
Host {alias}
    HostName 127.0.0.1
    Port {port}
    User {user}
    IdentityFile {folder}/user_key
    IdentitiesOnly yes
    IdentityAgent none
    UserKnownHostsFile {folder}/known_hosts
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    BatchMode yes
"""


@dataclass
class Sshd:
    port: int
    client_config: Path  # ssh -F this, then the host is ALIAS
    log: Path
    alias: str = ALIAS

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def unavailable() -> str | None:
    """Why this machine cannot run the test's sshd, or None."""
    if not SSHD.exists():
        return f"{SSHD} is missing: install Debian's openssh-server (make test does, as root)"
    if not PRIVSEP.is_dir() and os.geteuid() != 0:
        return f"sshd needs {PRIVSEP}, which only root can make"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "salon-release-test", "-f", path],
        check=True,
        timeout=30,
    )


def _until_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while True:
        assert process.poll() is None, f"sshd exited:\n{log.read_text(errors='replace')}"
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        assert time.monotonic() < deadline, f"sshd is not listening:\n{log.read_text()}"
        time.sleep(0.05)  # a process that is starting: nothing to await but its port


@contextlib.contextmanager
def loopback_sshd(folder: Path) -> Iterator[Sshd]:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    port, user = _free_port(), getpass.getuser()
    _keygen(folder / "host_key")
    _keygen(folder / "user_key")
    (folder / "authorized_keys").write_text((folder / "user_key.pub").read_text())
    host_key = (folder / "host_key.pub").read_text().split()[:2]
    (folder / "known_hosts").write_text(f"[127.0.0.1]:{port} {' '.join(host_key)}\n")
    passed = [
        f"{n}={os.environ[n]}" for n in PASSED_ON if re.fullmatch(r"\S+", os.environ.get(n, ""))
    ]
    setenv = f"SetEnv {' '.join(passed)}\n" if passed else ""
    values = {"port": port, "folder": folder, "user": user, "alias": ALIAS, "setenv": setenv}
    (folder / "sshd_config").write_text(SERVER_CONFIG.format(**values))
    client_config = folder / "ssh_config"
    client_config.write_text(CLIENT_CONFIG.format(**values))
    made_privsep = not PRIVSEP.exists()
    if made_privsep:
        PRIVSEP.mkdir(mode=0o755)
    log = folder / "sshd.log"
    try:
        with log.open("wb") as out:
            process = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", folder / "sshd_config"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            _until_listening(port, process, log)
            yield Sshd(port, client_config, log)
        finally:
            stop_process(process)
    finally:
        if made_privsep:
            with contextlib.suppress(OSError):
                PRIVSEP.rmdir()
