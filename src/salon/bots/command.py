"""``salon bot echo|record|play``: the bots on the command line (parsed in ``salon.cli``).

Exit status: 0 when the bot stopped as it should (a signal, the room emptied, the file
ended, the size limit, stdin closed after a link read from it), 2 with one line on stderr
when it could not start (a bad link, a refused join, a file that cannot be read, a folder
that cannot be written, no link on stdin in time), 1 when the connection was lost for good
while it ran.

LINK ``-`` reads the meeting link as one line from stdin, so that it (with its one-use
invitation) never shows in the process list: the server starts its recorder that way and
keeps the pipe open for the child's whole life. End of file on stdin afterwards means the
parent is gone: the bot stops as on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import select
import ssl
import sys
import threading
import time
from pathlib import Path

from salon.bots.base import Bot, BotError, Target, run_bot
from salon.client import ConnectionLost, ssl_context

log = logging.getLogger("salon.bots")

STDIN_LINK = "-"
LINK_SECONDS = 10.0  # how long LINK "-" waits for its line
MAX_LINK_BYTES = 8192
LINGER_SECONDS = 2.0  # after the bot stopped, how long the process waits for stray threads


def run_command(args: argparse.Namespace) -> int:
    """Run the bot that ``args`` (from ``salon bot …``) describe; returns the exit status."""
    from_stdin = args.link == STDIN_LINK
    try:
        link = read_link(sys.stdin.fileno()) if from_stdin else args.link
        target = Target.parse(link, server=args.server, answer=args.answer, password=args.password)
        tls = _tls(args)
        bot = make_bot(args)
    except BotError as exc:
        return _fail(str(exc))
    _configure_logging(verbose=args.verbose)
    watch = sys.stdin.fileno() if from_stdin else None
    try:
        reason = asyncio.run(_run(bot, target, name=args.name, ssl=tls, watch=watch))
    except BotError as exc:
        return _leave(_fail(str(exc)))
    except ConnectionLost as exc:
        print(f"salon bot: the connection was lost: {exc}", file=sys.stderr)
        return _leave(1)
    except KeyboardInterrupt:  # a second Ctrl-C while closing
        return 130
    log.info("stopped: %s", reason)
    return _leave(0)


def read_link(fd: int, timeout: float = LINK_SECONDS) -> str:
    """The first line of ``fd`` (stdin), without its end of line; :class:`BotError` when
    none comes within ``timeout`` seconds, the input ends first, or the line is empty or
    longer than ``MAX_LINK_BYTES``. Reads nothing more than it must wait for."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            raise BotError(f"no meeting link on stdin within {timeout:.0f} s (LINK - reads one)")
        try:
            ready, _, _ = select.select([fd], [], [], left)
            chunk = os.read(fd, 4096) if ready else None
        except OSError as exc:
            raise BotError(f"cannot read the meeting link from stdin: {exc}") from None
        if chunk == b"":
            raise BotError("stdin ended before a meeting link (LINK - reads one line)")
        data += chunk or b""
        if len(data.split(b"\n", 1)[0]) > MAX_LINK_BYTES:
            raise BotError(f"the line on stdin is longer than {MAX_LINK_BYTES} bytes")
    line = data.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip()
    if not line:
        raise BotError("the line on stdin is empty: expected a meeting link")
    return line


async def _run(
    bot: Bot, target: Target, *, name: str | None, ssl: ssl.SSLContext | None, watch: int | None
) -> str:
    if watch is not None:
        _stop_at_end_of(watch, bot, asyncio.get_running_loop())
    return await run_bot(bot, target, name=name, ssl=ssl)


def _stop_at_end_of(fd: int, bot: Bot, loop: asyncio.AbstractEventLoop) -> None:
    """Stop ``bot`` (as SIGTERM does) when ``fd`` ends: the parent holding the pipe is gone.
    What else arrives on it is read and dropped."""

    def watch() -> None:
        with contextlib.suppress(OSError):
            while os.read(fd, 4096):
                pass
        with contextlib.suppress(RuntimeError):  # a closed loop: the bot has stopped already
            loop.call_soon_threadsafe(bot.stop, "stdin closed (the parent is gone)")

    threading.Thread(target=watch, name="stdin", daemon=True).start()


def make_bot(args: argparse.Namespace) -> Bot:
    """The bot named by ``args.bot`` with its own options; :class:`BotError` on bad ones."""
    if args.bot == "echo":
        from salon.bots.echo import EchoBot

        return EchoBot()
    if args.bot == "record":
        from salon.bots.record import RecorderBot
        from salon.bots.webm import DEFAULT_VIDEO_SIZE, parse_video_size

        if args.max_bytes is not None and args.max_bytes <= 0:
            raise BotError("--max-bytes must be a positive number of bytes")
        try:
            size = (
                DEFAULT_VIDEO_SIZE if args.video_size is None else parse_video_size(args.video_size)
            )
        except ValueError as exc:
            raise BotError(str(exc)) from None
        return RecorderBot(Path(args.out), max_bytes=args.max_bytes, video_size=size)
    if args.bot == "play":
        from salon.bots.play import PlayBot

        return PlayBot(Path(args.file), loop=args.loop)
    raise BotError(f"no bot called {args.bot!r}")


def _tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    try:
        return ssl_context(insecure=args.insecure, cafile=args.cafile)
    except ValueError as exc:
        raise BotError(str(exc)) from None
    except OSError as exc:  # ssl.SSLError too: a file with no certificate in it
        raise BotError(f"cannot use --cafile {args.cafile}: {exc}") from None


def _fail(message: str) -> int:
    print(f"salon bot: {message}", file=sys.stderr)
    return 2


def _leave(code: int) -> int:
    """``code``, once the threads that would keep the process alive have ended; if one has
    not within ``LINGER_SECONDS`` (aiortc's decoders of a connection whose close was given
    up on), the process exits at once: everything the bot wrote is closed by now."""
    deadline = time.monotonic() + LINGER_SECONDS
    for thread in threading.enumerate():
        if thread is threading.current_thread() or thread.daemon:
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            log.warning("a thread (%s) did not end: exiting without it", thread.name)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return code


def _configure_logging(*, verbose: bool) -> None:
    """``salon bot: …`` lines on stderr: the bot's steps, and everyone's warnings (with
    ``--verbose``, the SDK's and aiortc's details too)."""
    handler = logging.StreamHandler(sys.stderr)
    detail = "%(relativeCreated)6.0f ms %(name)s: " if verbose else ""
    handler.setFormatter(logging.Formatter(f"salon bot: {detail}%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
