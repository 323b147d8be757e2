"""The second line of defence for the access token: no log line or traceback can carry it.

The tap never puts the token's id or secret in a message, but a library might (requests
quotes a header it refuses; an error page may echo it). One filter, on the root logger and
each of its handlers, blanks both parts out of every record: its message and arguments, its
exception (message and chain, as any formatter would print them) and its stack. An uncaught
exception's traceback, which goes to stderr without logging, is scrubbed the same way.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

#: Parts shorter than this are not scrubbed: they would blank out ordinary words instead.
MIN_LENGTH = 6
#: What a scrubbed part becomes.
MASK = "***"


class SecretScrubFilter(logging.Filter):
    """Blanks the given secrets out of every log record it sees (in any letter case)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        """Scrub ``secrets`` (the token's id and secret)."""
        super().__init__()
        parts = sorted({s for s in secrets if len(s) >= MIN_LENGTH}, key=len, reverse=True)
        self.pattern = re.compile("|".join(map(re.escape, parts)), re.IGNORECASE) if parts else None

    def scrub(self, text: str) -> str:
        """The text without the secrets."""
        return text if self.pattern is None else self.pattern.sub(MASK, text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub the record in place; never drop it.

        Args:
            record: The log record.

        Returns:
            True: the record is logged, scrubbed.
        """
        if self.pattern is None:
            return True
        message = record.getMessage()
        if self.pattern.search(message):
            record.msg, record.args = self.scrub(message), ()
        if record.exc_info and record.exc_info[1] is not None:
            shown = "".join(traceback.format_exception(record.exc_info[1]))
            if self.pattern.search(shown):
                error = self._scrubbed(record.exc_info[1], set())
                record.exc_info = (type(error), error, record.exc_info[2])
                record.exc_text = None
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self.scrub(record.stack_info)
        return True

    def _scrubbed(self, error: BaseException, seen: set[int]) -> BaseException:
        """A stand-in for ``error``: same type name, scrubbed message, same frames and chain."""
        seen.add(id(error))
        kind = type(type(error).__name__, (Exception,), {"__module__": type(error).__module__})
        stand_in: BaseException = kind(self.scrub(str(error)))
        stand_in.__traceback__ = error.__traceback__
        for link in ("__cause__", "__context__"):
            linked = getattr(error, link)
            if linked is not None and id(linked) not in seen:
                setattr(stand_in, link, self._scrubbed(linked, seen))
        stand_in.__suppress_context__ = error.__suppress_context__
        return stand_in


def install(secrets: Iterable[str]) -> SecretScrubFilter:
    """Scrub ``secrets`` from every log record and uncaught traceback from now on.

    Replaces the filter a previous call installed (a second tap in the same process).

    Args:
        secrets: The token's id and secret.

    Returns:
        The filter.
    """
    scrubber = SecretScrubFilter(secrets)
    root = logging.getLogger()
    targets: list[logging.Filterer] = [root, *root.handlers]
    if logging.lastResort is not None:
        targets.append(logging.lastResort)
    for target in targets:
        for old in [f for f in target.filters if isinstance(f, SecretScrubFilter)]:
            target.removeFilter(old)
        target.addFilter(scrubber)

    def excepthook(
        kind: type[BaseException], error: BaseException, tb: TracebackType | None
    ) -> None:
        text = "".join(traceback.format_exception(kind, error, tb))
        sys.stderr.write(scrubber.scrub(text))

    sys.excepthook = excepthook
    return scrubber
