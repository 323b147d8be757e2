"""The ``metrics_log_level`` setting: how loud the METRIC line of each status poll is.

While an export runs, the tap asks for the task's state again and again (``GET
/tasks/{id}``); each call is an ``http_request_duration`` METRIC, like every API call. A long
export so fills the log with one METRIC per poll. ``metrics_log_level`` sets the level of
those lines only: ``INFO`` (the default) logs them, ``DEBUG`` keeps them for a tap that logs
at DEBUG, ``NONE`` drops them. Every other METRIC stays at INFO: ``record_count``,
``sync_duration``, the duration of every other request, and of a failed status poll.
"""

from __future__ import annotations

import logging

from singer_sdk import metrics

#: The setting's values.
INFO, DEBUG, NONE = "INFO", "DEBUG", "NONE"
LEVELS = (INFO, DEBUG, NONE)
#: The endpoint tag of a status poll (ids are replaced by ``{id}`` in the tag).
POLLED_ENDPOINT = "/tasks/{id}"


class PollMetricsFilter(logging.Filter):
    """On the SDK's metrics logger: a successful status poll's METRIC at the chosen level."""

    def __init__(self, level: str) -> None:
        """Keep the level (``DEBUG`` or ``NONE``; ``INFO`` needs no filter)."""
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        """Lower a status poll's METRIC to DEBUG (dropped unless DEBUG is on), or drop it.

        Args:
            record: A record of the metrics logger.

        Returns:
            Whether the record is logged.
        """
        if not _is_status_poll(record):
            return True
        if self.level == NONE:
            return False
        if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            return False
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return True


def apply(level: str) -> None:
    """Install the filter for ``level`` on the metrics logger (replacing an earlier one).

    Args:
        level: ``INFO``, ``DEBUG`` or ``NONE`` (any letter case).
    """
    logger = metrics.get_metrics_logger()
    for old in [f for f in logger.filters if isinstance(f, PollMetricsFilter)]:
        logger.removeFilter(old)
    if level.upper() != INFO:
        logger.addFilter(PollMetricsFilter(level.upper()))


def _is_status_poll(record: logging.LogRecord) -> bool:
    """Whether a record is the METRIC of a successful ``GET /tasks/{id}``."""
    point = record.args[0] if isinstance(record.args, tuple) and record.args else None
    if not isinstance(point, metrics.Point) or point.metric != metrics.Metric.HTTP_REQUEST_DURATION:
        return False
    tags = point.tags
    return (
        tags.get(metrics.Tag.ENDPOINT) == POLLED_ENDPOINT
        and tags.get("method") == "GET"
        and tags.get(metrics.Tag.STATUS) == metrics.Status.SUCCEEDED
    )
