"""A stand-in for systemd and deploy/salon.service in the release tests (no systemd here).

``run STATE ROOT`` is the service manager: it starts nothing until told, then runs
``ROOT/current/venv/bin/salon serve`` as its child (with its own environment, as the unit's
``EnvironmentFile`` would give it), and reaps it. ``restart STATE`` is what release.sh's
``--restart`` runs over SSH, and it does what ``systemctl restart`` does for a ``Type=exec``
unit: SIGTERM to the running server, wait for it to exit (the drain), start the release that
``current`` points at *now*, and return once it is started, not once it is ready.

Standard library only: it runs with any Python 3.11.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

STOP_SECONDS = 55.0  # deploy/salon.service's TimeoutStopSec: then SIGKILL
SIGNALS = {signal.SIGHUP, signal.SIGTERM, signal.SIGCHLD}


def _log(state: Path, line: str) -> None:
    with (state / "standin.log").open("a") as log:
        log.write(f"{time.strftime('%H:%M:%S')} {line}\n")


def _stop(state: Path, child: subprocess.Popen[bytes] | None) -> None:
    if child is None or child.poll() is not None:
        return
    child.send_signal(signal.SIGTERM)
    try:
        code = child.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        child.kill()
        code = child.wait()
    _log(state, f"stopped pid {child.pid}: exit {code}")


def _start(state: Path, root: Path) -> subprocess.Popen[bytes]:
    release = (root / "current").resolve()
    with (state / "salon.log").open("ab") as out:
        child = subprocess.Popen(
            [str(release / "venv" / "bin" / "salon"), "serve"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=os.environ["SALON_DATA_DIR"],
            # The manager waits for signals with them blocked; the server must get them.
            preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS),
        )
    (state / "salon.pid").write_text(f"{child.pid}\n")
    _log(state, f"started pid {child.pid} from {release.name}")
    return child


def run(state: Path, root: Path) -> int:
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    (state / "manager.pid").write_text(f"{os.getpid()}\n")
    generation = 0
    child: subprocess.Popen[bytes] | None = None
    while True:
        received = signal.sigwaitinfo(SIGNALS)
        if received.si_signo == signal.SIGCHLD:
            if child is not None and child.poll() is not None:
                _log(state, f"pid {child.pid} exited by itself: {child.returncode}")
            continue
        _stop(state, child)
        if received.si_signo == signal.SIGTERM:
            return 0
        child = None
        try:
            child = _start(state, root)
        except OSError as error:  # no release yet, or not executable: a failed start
            _log(state, f"start failed: {error}")
        generation += 1
        (state / "generation.new").write_text(f"{generation}\n")
        (state / "generation.new").replace(state / "generation")


def restart(state: Path, timeout: float = 120.0) -> int:
    def generation() -> int:
        path = state / "generation"
        return int(path.read_text()) if path.exists() else 0

    before = generation()
    os.kill(int((state / "manager.pid").read_text()), signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while generation() == before:  # the manager's answer is a file: poll it
        if time.monotonic() > deadline:
            print("restart: the service manager did not answer", file=sys.stderr)
            return 1
        time.sleep(0.05)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "run":
        return run(Path(argv[1]), Path(argv[2]))
    if len(argv) == 2 and argv[0] == "restart":
        return restart(Path(argv[1]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
