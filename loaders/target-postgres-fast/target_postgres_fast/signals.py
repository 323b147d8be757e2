"""Stop signals held back while a batch changes hands, then handled as they came.

Between taking a full sink's records out and handing them to the worker, the records are in
neither place: a stop signal handled there (the SDK drains every sink, writes the last STATE
and exits) would write a STATE for records that are never loaded. SIGINT and SIGTERM that
arrive in that moment run their handler right after it instead.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def held_stop_signals() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the block; then restore their handlers and run them."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread handles signals (and may set handlers)
        return
    caught: list[tuple[int, FrameType | None]] = []
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda number, frame: caught.append((number, frame)))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for number, frame in caught:
            handler = previous[signal.Signals(number)]
            if callable(handler):
                handler(number, frame)
            elif handler != signal.SIG_IGN:
                signal.raise_signal(number)  # the default action, as if it came now
