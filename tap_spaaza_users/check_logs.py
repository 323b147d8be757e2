"""The connection check's log lines on a terminal, formatted as Meltano prints its own."""

from __future__ import annotations

import datetime as dt
import logging
import sys

from singer_sdk.logging import StructuredFormatter

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override


class MeltanoStyleFormatter(logging.Formatter):
    """A log line as Meltano prints its own: ``<UTC time> [level    ] <plugin> <message>``."""

    def __init__(self, plugin: str) -> None:
        """Name the plugin the lines come from."""
        super().__init__()
        self.plugin = plugin

    @override
    def format(self, record: logging.LogRecord) -> str:
        when = dt.datetime.fromtimestamp(record.created, dt.timezone.utc)
        stamp = when.isoformat(timespec="microseconds").replace("+00:00", "Z")
        return f"{stamp} [{record.levelname.lower():<9}] {self.plugin} {record.getMessage()}"


def readable_check_logs(plugin: str) -> None:
    """On a terminal, log the connection check like Meltano's own lines instead of JSON.

    Meltano asks SDK taps for JSON logs and renders them when it reads them through a pipe
    (``meltano run``, ``meltano invoke``), but ``meltano test`` hands the terminal itself to
    a test command: its lines would show as raw JSON. There, the check logs its verdict the
    way Meltano logs, without the SDK's settings-parsing and METRIC chatter.

    Args:
        plugin: The name shown on each line.
    """
    if not sys.stderr.isatty():
        return
    logging.getLogger("singer_sdk.metrics").setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, StructuredFormatter):
            handler.setFormatter(MeltanoStyleFormatter(plugin))
    logging.getLogger("singer_sdk.configuration").setLevel(logging.WARNING)
