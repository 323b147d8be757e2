"""A TCP proxy in front of the sandbox API that resets or stalls its first connections."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from types import TracebackType

_BUFFER = 65536


class FlakyProxy:
    """Forward connections to ``target``; the first ones are reset or left unanswered.

    ``faults`` lists what happens to each new connection in turn: ``"reset"`` reads the
    request then closes with a TCP reset, ``"stall"`` reads it and never answers (until the
    proxy stops); connections past the list are forwarded untouched.
    """

    def __init__(self, target_url: str, faults: list[str]) -> None:
        """Listen on a free loopback port."""
        target = urlsplit(target_url)
        self.target = (target.hostname or "127.0.0.1", target.port or 80)
        self.faults = list(faults)
        self.seen: list[str] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # so the accept loop notices the stop
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        """The proxy's base URL."""
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> FlakyProxy:  # noqa: PYI034 - Self needs Python 3.11
        """Start accepting connections."""
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop accepting and release every stalled connection."""
        self._stopped.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            fault = self.faults.pop(0) if self.faults else "forward"
            self.seen.append(fault)
            threading.Thread(target=self._handle, args=(client, fault), daemon=True).start()

    def _handle(self, client: socket.socket, fault: str) -> None:
        with client:
            if fault == "forward":
                self._forward(client)
                return
            client.recv(_BUFFER)
            if fault == "stall":
                self._stopped.wait()
                return
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def _forward(self, client: socket.socket) -> None:
        with socket.create_connection(self.target) as upstream:
            pump = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
            pump.start()
            _pump(client, upstream)
            pump.join(timeout=5)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy bytes until ``source`` closes, then half-close ``sink``."""
    with contextlib.suppress(OSError):
        while data := source.recv(_BUFFER):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
