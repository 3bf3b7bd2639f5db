"""Janus, the SFU of big rooms (docs/SFU.md): the child process ``salon serve --with-sfu``
starts, and the client Salon's server speaks the Janus API with.

The Janus API (https://janus.conf.meetecho.com/docs/rest.html) is JSON over a WebSocket of
subprotocol ``janus-protocol``: every request carries ``janus`` (the verb), a
``transaction`` echoed in its answer, and the ``apisecret``; an answer is ``success`` (or
``server_info``, ``pong``, ``ack``) or ``error {code, reason}``. Only Salon's server holds
the secret: no browser ever speaks to Janus (PROTOCOL.md has no message that carries it).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import connect as connect_sync
from websockets.typing import Subprotocol

from salon.core.janusconfig import JanusConfig, janus_configs
from salon.core.settings import Settings
from salon.server.child import Child, die_with_parent, write_private

log = logging.getLogger(__name__)

SUBPROTOCOL: Final = Subprotocol("janus-protocol")
REQUEST_SECONDS: Final = 5.0


class JanusError(RuntimeError):
    """Janus could not be started or reached, or answered a request with an error: ``code``
    is Janus's (403: wrong or missing secret; 458: no such session; 0: no answer)."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


class JanusTimeout(JanusError):
    """Janus did not answer a request within :data:`REQUEST_SECONDS`. It may still act on it:
    Janus takes a handle's requests in order, and its late answer, with no one waiting for
    the transaction, goes to the handle's event handler (:meth:`JanusApi.on_events`)."""


def find_janus() -> str | None:
    """The path of ``janus``, or None when it is not installed."""
    return shutil.which("janus") or next(
        (p for p in ("/usr/bin/janus", "/opt/janus/bin/janus") if os.access(p, os.X_OK)), None
    )


@dataclass
class JanusProcess(Child):
    """A running ``janus``, with the configuration it was started with."""

    config: JanusConfig
    folder: Path


def write_janus_configs(config: JanusConfig, folder: Path) -> list[Path]:
    """Write :func:`~salon.core.janusconfig.janus_configs` into ``folder`` (mode 0700), each
    file readable by its owner only (they hold the secrets); the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    written = []
    for name, text in janus_configs(config).items():
        write_private(folder / name, text)
        written.append(folder / name)
    return written


def start_janus(config: JanusConfig, folder: Path, *, timeout: float = 15.0) -> JanusProcess:
    """Write the configuration into ``folder`` (its ``configs_folder`` must be ``folder``),
    start ``janus`` on it and wait until its API answers ``info`` at ``config.url``;
    raises :class:`JanusError` otherwise (and leaves nothing running). Its output goes to
    ``folder/janus.log``, its process id to ``folder/janus.pid``."""
    binary = find_janus()
    if binary is None:
        raise JanusError("Janus is not installed (Debian: apt install janus)")
    if config.configs_folder.resolve() != folder.resolve():
        raise JanusError(f"the configuration's configs_folder is not {folder}")
    write_janus_configs(config, folder)
    log_path = folder / "janus.log"
    pid_file = ["--pid-file", str(folder / "janus.pid")]
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - a fixed binary and our own config files
            [binary, *["-F", str(folder), "-C", str(folder / "janus.jcfg")], *pid_file],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us, and we stop Janus in order
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
    running = JanusProcess(process, log_path, config, folder)
    deadline = time.monotonic() + timeout
    try:
        # Ours, not another Janus already on the port (Debian's janus.service uses 8188): it
        # answers with the server name this configuration made up.
        while answers(config.url) != config.server_name:
            if process.poll() is not None or time.monotonic() > deadline:
                raise JanusError(f"janus did not start (is its port taken?); see {log_path}")
            time.sleep(0.1)
    except BaseException:  # also Ctrl-C while waiting: never leave it running
        running.stop()
        raise
    return running


class LocalSfu:
    """The Janus of ``salon serve --with-sfu``, started again with the same configuration (the
    same secrets, so Salon's settings stay right) whenever it exits while Salon runs: Salon
    then connects again and its members publish anew (docs/SFU.md). A Janus that fails to
    start is tried again every :data:`RESTART_SECONDS`."""

    def __init__(self, config: JanusConfig, folder: Path) -> None:
        self.config = config
        self.folder = folder
        self.running = start_janus(config, folder)
        self._stopping = threading.Event()
        # Janus is this thread's child: it gets SIGTERM when the thread ends (die_with_parent),
        # which is only at stop().
        self._watcher = threading.Thread(target=self._watch, name="salon-janus", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            code = self.running.process.poll()
            if code is None:
                continue
            log.warning(
                "Janus (pid %d) exited with %s: starting it again", self.running.process.pid, code
            )
            try:
                self.running = start_janus(self.config, self.folder)
            except JanusError as exc:
                log.error("Janus did not start again: %s", exc)
                self._stopping.wait(RESTART_SECONDS)

    def stop(self) -> None:
        self._stopping.set()
        self._watcher.join()
        self.running.stop()


RESTART_SECONDS: Final = 5.0


def start_local_sfu(settings: Settings) -> tuple[Settings, LocalSfu]:
    """``salon serve --with-sfu``: start Janus with fresh secrets, its API on
    127.0.0.1:``sfu_port``, media on UDP ``sfu_rtp_ports``, its files in
    ``data_dir/sfu``; return settings that point Salon at it."""
    folder = (settings.data_dir / "sfu").resolve()
    config = JanusConfig.fresh(
        ws_port=settings.sfu_port, rtp_ports=settings.sfu_rtp_ports, configs_folder=folder
    )
    running = LocalSfu(config, folder)
    update = {
        "sfu_url": config.url,
        "sfu_api_secret": config.api_secret,
        "sfu_admin_key": config.admin_key,
    }
    return settings.model_copy(update=update), running


def answers(url: str) -> str | None:
    """The server name of the Janus whose API at ``url`` answers ``info`` (which needs no
    secret) within 1 s; None when none does. Blocking: for starting Janus, before any event
    loop runs (or from inside one, without touching it)."""
    request = json.dumps({"janus": "info", "transaction": "salon-info"})
    try:
        with connect_sync(
            url, subprotocols=[SUBPROTOCOL], proxy=None, open_timeout=1, close_timeout=1
        ) as ws:
            ws.send(request)
            info = json.loads(ws.recv(timeout=1))
    except (OSError, TimeoutError, ValueError, InvalidHandshake, InvalidURI, ConnectionClosed):
        return None
    if not isinstance(info, dict) or info.get("janus") != "server_info":
        return None
    return str(info.get("server-name", ""))


JanusEvent = dict[str, Any]
"""A message Janus sends on its own: ``event`` (with ``plugindata`` and maybe ``jsep``),
``webrtcup``, ``media``, ``slowlink``, ``hangup``, ``detached``; ``sender`` is the handle."""


class JanusApi:
    """One WebSocket to the Janus API, shared by many requests at once: each answer finds its
    request by ``transaction``, and events Janus sends on its own go to the handler of their
    handle (:meth:`on_events`). Use as an async context manager::

        async with JanusApi(url, api_secret) as api:
            session = await api.create_session()

    When the socket closes, every pending request fails with :class:`JanusError` and
    :attr:`closed` is set."""

    def __init__(self, url: str, api_secret: str | None) -> None:
        self.url = url
        self._secret = api_secret
        self._ws: ClientConnection | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._handlers: dict[int, Callable[[JanusEvent], None]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()

    async def __aenter__(self) -> JanusApi:
        try:
            self._ws = await connect(
                self.url,
                subprotocols=[SUBPROTOCOL],
                proxy=None,  # never through an HTTP proxy from the environment
                open_timeout=5,
                close_timeout=1,
            )
        except (OSError, InvalidHandshake, InvalidURI) as exc:
            raise JanusError(f"cannot reach Janus at {self.url}: {exc}") from exc
        self._reader = asyncio.create_task(self._read(self._ws), name="salon-janus-reader")
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()
        self.closed.set()

    def on_events(self, handle: int, handler: Callable[[JanusEvent], None] | None) -> None:
        """Give the events of ``handle`` to ``handler`` (None: drop them from now on)."""
        if handler is None:
            self._handlers.pop(handle, None)
        else:
            self._handlers[handle] = handler

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                try:
                    message = json.loads(frame)
                except ValueError:
                    log.warning("Janus sent a frame that is not JSON")
                    continue
                if isinstance(message, dict):
                    self._route(message)
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()
            for queue in self._waiting.values():
                queue.put_nowait({"janus": "closed"})

    def _route(self, message: dict[str, Any]) -> None:
        queue = self._waiting.get(str(message.get("transaction")))
        if queue is not None:
            queue.put_nowait(message)
            return
        sender = message.get("sender")
        handler = self._handlers.get(sender) if type(sender) is int else None
        if handler is not None:
            try:
                handler(message)
            except Exception:  # one handle's bug must not stop the reader of every handle
                log.exception("an SFU event handler failed on %s", message.get("janus"))

    async def request(self, body: dict[str, Any], expect: str = "success") -> dict[str, Any]:
        """Send ``body`` with a transaction and the secret; the answer of type ``expect``,
        or :class:`JanusError` (Janus's ``error``, no answer within 5 s, a closed socket).
        With ``expect="event"``, an ``ack`` first is waited past: a plugin answers a
        ``message`` that way when it answers later."""
        if self._ws is None or self.closed.is_set():
            raise JanusError("not connected")
        transaction = f"salon-{next(self._ids)}"
        message = {**body, "transaction": transaction}
        if self._secret is not None:
            message["apisecret"] = self._secret
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._waiting[transaction] = queue
        try:
            async with asyncio.timeout(REQUEST_SECONDS):
                await self._ws.send(json.dumps(message))
                answer = await queue.get()
                while answer.get("janus") == "ack" and expect != "ack":
                    answer = await queue.get()
        except TimeoutError:
            raise JanusTimeout(f"Janus did not answer {body.get('janus')!r}") from None
        except (OSError, ConnectionClosed) as exc:
            raise JanusError(f"the connection to Janus failed: {exc}") from exc
        finally:
            del self._waiting[transaction]
        kind = answer.get("janus")
        if kind == "closed":
            raise JanusError("the connection to Janus closed")
        if kind == "error":
            error = answer.get("error")
            error = error if isinstance(error, dict) else {}
            code = error.get("code")
            raise JanusError(str(error.get("reason", "error")), code if type(code) is int else 0)
        if kind != expect:
            raise JanusError(f"Janus answered {kind!r}, not {expect!r}")
        return answer

    async def create_session(self) -> int:
        """``create``: a new Janus session's id (it lives while kept alive, §session_timeout)."""
        return _new_id(await self.request({"janus": "create"}), "create")

    async def destroy_session(self, session: int) -> None:
        await self.request({"janus": "destroy", "session_id": session})

    async def attach(self, session: int, plugin: str) -> int:
        """``attach``: a new handle on ``plugin`` in ``session``; its id."""
        body = {"janus": "attach", "session_id": session, "plugin": plugin}
        return _new_id(await self.request(body), "attach")

    async def message(
        self,
        session: int,
        handle: int,
        body: dict[str, Any],
        jsep: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """A plugin ``message`` and the plugin's answer: ``(plugindata.data, jsep)``, whether
        the plugin answered at once (``success``) or later (``ack`` then ``event``). A plugin
        error (``error_code``) raises :class:`JanusError` with that code."""
        request: dict[str, Any] = {
            "janus": "message",
            "session_id": session,
            "handle_id": handle,
            "body": body,
        }
        if jsep is not None:
            request["jsep"] = jsep
        synchronous = body.get("request") in SYNCHRONOUS_REQUESTS
        answer = await self.request(request, "success" if synchronous else "event")
        plugindata = answer.get("plugindata")
        data = plugindata.get("data") if isinstance(plugindata, dict) else None
        if not isinstance(data, dict):
            raise JanusError(f"Janus's answer to {body.get('request')!r} has no plugin data")
        code = data.get("error_code")
        if code is not None:
            raise JanusError(str(data.get("error", "error")), code if type(code) is int else 0)
        answer_jsep = answer.get("jsep")
        return data, answer_jsep if isinstance(answer_jsep, dict) else None

    async def trickle(self, session: int, handle: int, candidate: dict[str, Any] | None) -> None:
        """``trickle`` one candidate (RFC 8838) to ``handle``; None: ``completed``."""
        body: dict[str, Any] = {"janus": "trickle", "session_id": session, "handle_id": handle}
        body["candidate"] = candidate if candidate is not None else {"completed": True}
        await self.request(body, "ack")


# The VideoRoom requests the plugin answers at once, with ``success`` (the others: ``ack``,
# then an ``event``): https://janus.conf.meetecho.com/docs/videoroom.html
SYNCHRONOUS_REQUESTS: Final = frozenset(
    {
        "create",
        "destroy",
        "edit",
        "exists",
        "list",
        "allowed",
        "kick",
        "moderate",
        "listparticipants",
        "listforwarders",
        "enable_recording",
        "rtp_forward",
        "stop_rtp_forward",
    }
)


def _new_id(answer: dict[str, Any], verb: str) -> int:
    data = answer.get("data")
    new = data.get("id") if isinstance(data, dict) else None
    if type(new) is not int:
        raise JanusError(f"Janus's answer to {verb} has no id")
    return new


class SfuLink:
    """Salon's server's standing connection to the configured Janus (``sfu_url``): one Janus
    session, kept alive with ``keepalive`` every ``check_seconds`` (well inside Janus's 60 s
    ``session_timeout``). When Janus is down, restarted or answers nothing, the link says so
    (:attr:`healthy` false, ``GET /api/v1/health`` ``sfu: "unreachable"``) and tries again at
    the next check with a new connection and session: Janus's sessions do not outlive it.

    :attr:`healthy` is None until the first check ends."""

    def __init__(self, url: str, api_secret: str | None, check_seconds: float = 5.0) -> None:
        self.url = url
        self.check_seconds = check_seconds
        self.healthy: bool | None = None
        self.session: int | None = None
        self._secret = api_secret
        self._task: asyncio.Task[None] | None = None
        self._checked = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="salon-sfu-link")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def checked(self) -> None:
        """Wait for the next check to end (for tests)."""
        self._checked.clear()
        await self._checked.wait()

    async def _run(self) -> None:
        while True:
            try:
                async with JanusApi(self.url, self._secret) as api:
                    self.session = await api.create_session()
                    while True:
                        await api.request({"janus": "keepalive", "session_id": self.session}, "ack")
                        self._report(True)
                        await asyncio.sleep(self.check_seconds)
            except JanusError as exc:
                self.session = None
                self._report(False, str(exc))
                await asyncio.sleep(self.check_seconds)
            except Exception:  # a bug here must not end the link for good
                log.exception("the link to the SFU at %s failed", self.url)
                self.session = None
                self._report(False)
                await asyncio.sleep(self.check_seconds)

    def _report(self, healthy: bool, why: str = "") -> None:
        if healthy and self.healthy is not True:
            log.info("the SFU at %s answers (session %s)", self.url, self.session)
        elif not healthy and self.healthy is not False:
            log.warning("the SFU at %s is unreachable: %s", self.url, why)
        self.healthy = healthy
        self._checked.set()
