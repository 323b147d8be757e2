"""Each API call as a Singer ``http_request_duration`` METRIC, tagged as SDK REST streams do."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

from singer_sdk import metrics

#: An id in a path, replaced by ``{id}`` in the ``endpoint`` tag of request metrics.
_PATH_ID = re.compile(r"/\d+(?=/|$)")


def log_request_duration(method: str, path: str, status: int | None, seconds: float) -> None:
    """Log one API call as a Singer ``http_request_duration`` METRIC, as SDK REST streams do.

    Tagged with the endpoint as a template (``/tasks/{id}``), the method, the HTTP status
    (none for a connection error or timeout) and ``succeeded``/``failed``.
    """
    tags: dict[str, Any] = {metrics.Tag.ENDPOINT: _PATH_ID.sub("/{id}", path), "method": method}
    if status is not None:
        tags[metrics.Tag.HTTP_STATUS_CODE] = status
    failed = status is None or status >= HTTPStatus.BAD_REQUEST
    tags[metrics.Tag.STATUS] = metrics.Status.FAILED if failed else metrics.Status.SUCCEEDED
    point = metrics.Point("timer", metrics.Metric.HTTP_REQUEST_DURATION, seconds, tags)
    metrics.log(metrics.get_metrics_logger(), point)
