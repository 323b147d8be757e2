"""A full refresh never erases the target: an empty or shrunken one gets no ACTIVATE_VERSION."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pytest
from test_full_refresh import DAYS, activations, made_due, record_versions, users_state

from tap_spaaza_users.errors import SpaazaFullRefreshRefusedError
from tap_spaaza_users.state.keys import LAST_FULL_REFRESH, LAST_FULL_REFRESH_USERS

if TYPE_CHECKING:
    from collections.abc import Callable

    from support.tap_cli import SyncOutput

    from tap_spaaza_users.sandbox import Sandbox

LOGGER = "tap-spaaza-users"


def refusal_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The WARNING lines that announce a refused full refresh."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "refused its ACTIVATE_VERSION" in r.getMessage()
    ]


@pytest.mark.parametrize(("kept", "reason"), [(0, "no user at all"), (40, "fewer than")])
def test_an_empty_or_shrunken_full_refresh_is_loaded_but_never_activated(  # noqa: PLR0913, PLR0917
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    sync: Callable[..., SyncOutput],
    caplog: pytest.LogCaptureFixture,
    kept: int,
    reason: str,
) -> None:
    config = {**fast_config, "full_refresh_days": DAYS}
    first = sync(config)
    assert users_state(first)[LAST_FULL_REFRESH_USERS] == len(small_sandbox.users()) == 120
    due = made_due(first)
    small_sandbox.inject("short_export", rows=kept)

    with caplog.at_level(logging.INFO, logger=LOGGER):
        refused = sync(config, state=due)

    assert isinstance(refused.error, SpaazaFullRefreshRefusedError)
    assert reason in str(refused.error)
    assert len(refused.records) == kept
    assert activations(refused) == []
    state = users_state(refused)
    assert state[LAST_FULL_REFRESH] == due["bookmarks"]["users"][LAST_FULL_REFRESH]
    assert state[LAST_FULL_REFRESH_USERS] == 120
    assert "full_refresh" not in state  # the next sync starts a new one, with a new version
    (warning,) = refusal_warnings(caplog)
    assert "full_refresh_min_ratio 0" in warning
    assert refused.messages[-1]["type"] == "STATE"

    retried = sync(config, state=refused.final_state)  # the fault was transient

    assert retried.error is None
    ((_, version),) = activations(retried)
    assert record_versions(retried) == {version}
    assert len(retried.records) == 120
    assert users_state(retried)[LAST_FULL_REFRESH] > state[LAST_FULL_REFRESH]


def test_a_real_shrink_is_accepted_with_full_refresh_min_ratio_0(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., SyncOutput]
) -> None:
    config = {**fast_config, "full_refresh_days": DAYS}
    first = sync(config)
    for user in small_sandbox.users()[:100]:
        small_sandbox.delete_user(int(user["id"]))

    refused = sync(config, state=made_due(first))
    accepted = sync({**config, "full_refresh_min_ratio": 0}, state=refused.final_state)

    assert isinstance(refused.error, SpaazaFullRefreshRefusedError)
    assert accepted.error is None
    assert len(activations(accepted)) == 1
    assert users_state(accepted)[LAST_FULL_REFRESH_USERS] == 20


def test_a_first_full_refresh_of_an_empty_export_sends_no_activate_version(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., SyncOutput]
) -> None:
    small_sandbox.inject("short_export", rows=0)

    output = sync({**fast_config, "full_refresh_days": DAYS})

    assert output.error is None  # nothing in the target to protect yet
    assert output.records == []
    assert activations(output) == []
    assert LAST_FULL_REFRESH_USERS not in users_state(output)
