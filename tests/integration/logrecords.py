"""What the server logs during a test: the records a test asserts there are none of."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

# Where the server's records come from; those that do not propagate to the root logger get
# the handler themselves.
SOURCES = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "websockets", "salon", "asyncio")


class LogRecords(logging.Handler):
    """Keeps the records at ``level`` or above, and those ``also`` picks from below it."""

    def __init__(self, level: int, also: Callable[[logging.LogRecord], bool] | None = None) -> None:
        super().__init__(logging.DEBUG if also is not None else level)
        self.threshold = level
        self.also = also
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= self.threshold or (self.also is not None and self.also(record)):
            self.records.append(record)

    def lines(self) -> list[str]:
        """One line a record: its logger, message and traceback, if any."""
        return [f"{r.name}: {r.getMessage()}\n{r.exc_text or ''}".strip() for r in self.records]


@contextlib.contextmanager
def recording(
    level: int = logging.ERROR, also: Callable[[logging.LogRecord], bool] | None = None
) -> Iterator[LogRecords]:
    """The records at ``level`` or above (and those ``also`` picks) from every logger while
    the block runs."""
    handler = LogRecords(level, also)
    handler.setFormatter(logging.Formatter())
    loggers = [
        logging.getLogger(name)
        for name in SOURCES
        if name == "" or not logging.getLogger(name).propagate
    ]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
