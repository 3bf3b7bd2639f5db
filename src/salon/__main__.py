"""``python -m salon``: the ``salon`` command (see :mod:`salon.cli`)."""

from __future__ import annotations

import signal
import sys


def _stop_starting_bot(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    if sys.argv[1:2] == ["bot"]:
        # The server runs its recorder this way and may stop it at once: a bot stopped while
        # it is still starting (imports take a second) has nothing to close, so it exits 0.
        signal.signal(signal.SIGTERM, _stop_starting_bot)

    from salon.cli import main

    raise SystemExit(main())
