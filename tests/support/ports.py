"""Loopback ports for tests: one that refuses connections, one a server can bind a moment later.

Picking a port by binding port 0 and closing the socket leaves a window in which another test
(under xdist) or an outgoing connection could take it. ``refusing_port`` keeps its socket
bound, unlistened, so nothing else can; ``free_port`` picks below the kernel's ephemeral range,
where outgoing connections never land.
"""

from __future__ import annotations

import contextlib
import random
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

#: Below Linux's default ephemeral range (32768-60999) and above the well-known ports.
_FIXED_PORTS = range(20000, 32768)


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    """A loopback port bound but not listening for the block: every connection is refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield int(held.getsockname()[1])


def free_port() -> int:
    """A loopback port below the ephemeral range that nothing is bound to now.

    Raises:
        RuntimeError: When 200 random ports in the range are all taken.
    """
    for port in random.sample(_FIXED_PORTS, 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    msg = f"no free port in {_FIXED_PORTS.start}-{_FIXED_PORTS.stop - 1}"
    raise RuntimeError(msg)
