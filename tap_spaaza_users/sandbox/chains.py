"""Several chains on one API port, as Spaaza serves them: the bearer token picks the chain.

Each chain is a ``Sandbox`` of its own (its users, tasks, storage port and demo token; seed
``seed + n`` for the n-th chain, so the chains hold different users with overlapping ids). A
front server on the API port hands each request to the chain whose token it carries; a
request without a known token goes to the first chain, which answers it as Spaaza would
(401). The ``/_sandbox`` control namespace goes to the chain named in the ``X-Sandbox-Chain``
header (the first chain without it).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from tap_spaaza_users.sandbox.core import CONTROL_PREFIX, Sandbox
from tap_spaaza_users.sandbox.server import ServerThread

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from types import TracebackType

    from _typeshed.wsgi import StartResponse, WSGIEnvironment

#: The control header naming the chain a ``/_sandbox`` request is about.
CHAIN_HEADER = "X-Sandbox-Chain"
_TOKEN_ID = re.compile(r"^Bearer\s+([^:\s]+):")
LOGGER = logging.getLogger(__name__)


class ChainsSandbox:
    """Sandboxes of several chains behind one API port."""

    def __init__(
        self, chain_ids: Sequence[int], *, seed: int = 1, host: str = "127.0.0.1", port: int = 0,
        **options: Any,  # noqa: ANN401 - Sandbox's keywords
    ) -> None:  # fmt: skip
        """Prepare one sandbox per chain (``options`` go to each) and the front server.

        Raises:
            ValueError: When no chain, or a chain twice, is given.
        """
        if not chain_ids or len(set(chain_ids)) != len(chain_ids):
            msg = f"--chains needs distinct chain ids, not {list(chain_ids)}"
            raise ValueError(msg)
        self.chains: list[Sandbox] = []
        try:  # a port in use: stop the chains already made (their work directories go)
            for n, chain in enumerate(chain_ids):
                self.chains.append(Sandbox(seed=seed + n, chain_id=chain, host=host, **options))
            self._front = ServerThread(self._dispatch, host, port)
        except BaseException:
            for sandbox in self.chains:
                sandbox.stop()
            raise
        self._by_token = {s.token_id: s for s in self.chains}
        self._by_chain = {str(s.chain_id): s for s in self.chains}

    def _dispatch(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Hand a request to its chain's sandbox."""
        return self.chain_of(environ).api_app(environ, start_response)

    def chain_of(self, environ: WSGIEnvironment) -> Sandbox:
        """The sandbox a request is for: by its token, or its control header, else the first."""
        path = str(environ.get("PATH_INFO", ""))
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            named = str(environ.get("HTTP_" + CHAIN_HEADER.upper().replace("-", "_"), ""))
            return self._by_chain.get(named.strip(), self.chains[0])
        token = _TOKEN_ID.match(str(environ.get("HTTP_AUTHORIZATION", "")).strip())
        return self._by_token.get(token.group(1) if token else "", self.chains[0])

    @property
    def url(self) -> str:
        """The API base URL every chain is served at."""
        return self._front.url

    def describe(self) -> dict[str, Any]:
        """The first chain's description at the front's URL, and every chain's credentials."""
        chains = [
            {"chain_id": s.chain_id, "token_id": s.token_id, "token_secret": s.token_secret}
            for s in self.chains
        ]
        return {**self.chains[0].describe(), "url": self.url, "chains": chains}

    def start(self) -> ChainsSandbox:
        """Start every chain, then the front."""
        for sandbox in self.chains:
            sandbox.start()
        self._front.start()
        chains = ", ".join(str(s.chain_id) for s in self.chains)
        LOGGER.info("Chains %s served together at %s (use this URL)", chains, self.url)
        return self

    def stop(self) -> None:
        """Stop the front, then every chain."""
        self._front.stop()
        for sandbox in self.chains:
            sandbox.stop()

    def __enter__(self) -> ChainsSandbox:  # noqa: PYI034 - Self needs Python 3.11
        """Start serving."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop serving."""
        self.stop()
