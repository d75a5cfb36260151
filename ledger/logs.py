"""Structured logging: one JSON object per line on stderr, events named `noun.verb`."""

import logging
import sys
from typing import TextIO, cast

import structlog

from ledger.settings import Settings


def configure(settings: Settings) -> None:
    """Route structlog to stderr at the configured level, as JSON lines or for a console."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[settings.log_level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, _Stderr())),
        cache_logger_on_first_use=True,
    )
    # kafka-python logs reconnect chatter at WARNING; it is noise beside our own structured lines.
    logging.getLogger("kafka").setLevel(logging.ERROR)


class _Stderr:
    """`sys.stderr` as it is when a line is written, not as it was when logging was configured: loggers
    are cached on first use, and a caller (a test calling `main`) may have swapped and closed it since."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()
