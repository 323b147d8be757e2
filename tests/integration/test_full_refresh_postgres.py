"""A periodic full refresh via `meltano run` into PostgreSQL: changes re-sent, deletions applied."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any, cast

from .test_meltano_warehouses import postgres  # noqa: F401 - the fixture

if TYPE_CHECKING:
    from tap_spaaza_users.sandbox import Sandbox

    from .conftest import Meltano
    from .test_meltano_warehouses import Postgres

STATE_ID = "dev:tap-spaaza-users-to-target-postgres"
DAYS = 7
CHANGES = {
    "loyalty_status_name": "Platinum (changed)",
    "opt_in_programme_programme_opted_in": False,
}


def run(meltano: Meltano) -> None:
    """`meltano run tap-spaaza-users target-postgres`, failing the test on a failed run."""
    meltano("run", "tap-spaaza-users", "target-postgres")


def users_state(meltano: Meltano) -> dict[str, Any]:
    """The users stream's state Meltano kept."""
    return cast("dict[str, Any]", meltano.state(STATE_ID)["singer_state"]["bookmarks"]["users"])


def make_full_refresh_due(meltano: Meltano) -> str:
    """Move the kept last_full_refresh a day past the period; return the value it had."""
    state = meltano.state(STATE_ID)
    stream = state["singer_state"]["bookmarks"]["users"]
    last = stream["last_full_refresh"]
    moment = dt.datetime.fromisoformat(last) - dt.timedelta(days=DAYS + 1)
    stream["last_full_refresh"] = moment.isoformat()
    meltano("state", "set", "--force", STATE_ID, json.dumps(state))
    return cast("str", last)


def row(warehouse: Postgres, user_id: int, columns: str) -> tuple[Any, ...]:
    """One user's row (the given columns)."""
    (found,) = warehouse.query(f"SELECT {columns} FROM {{table}} WHERE id = {user_id}")  # noqa: S608
    return found


def changed_and_deleted(sandbox: Sandbox) -> tuple[int, int]:
    """Change the loyalty tier and opt-in of one old user, delete another; return their ids."""
    oldest = sorted(sandbox.users(), key=lambda user: user["created_date"])
    changed, deleted = int(oldest[0]["id"]), int(oldest[1]["id"])
    sandbox.update_user(changed, **CHANGES)
    sandbox.delete_user(deleted)
    return changed, deleted


def test_full_refresh_soft_deletes_removed_users_and_resends_changed_ones(
    meltano: Meltano,
    sandbox: Sandbox,
    postgres: Postgres,  # noqa: F811
) -> None:
    meltano.use_sandbox(sandbox, full_refresh_days=DAYS, lookback_minutes=30)
    run(meltano)
    total = len(sandbox.users())
    assert postgres.query("SELECT count(*) FROM {table} WHERE _sdc_deleted_at IS NULL") == [
        (total,)
    ]
    changed, deleted = changed_and_deleted(sandbox)
    before = row(postgres, changed, "loyalty_status_name, opt_in_programme_programme_opted_in")

    run(meltano)  # not due: an increment, neither change nor deletion arrives

    assert row(postgres, changed, ", ".join(CHANGES)) == before
    assert row(postgres, deleted, "_sdc_deleted_at") == (None,)
    last = make_full_refresh_due(meltano)

    run(meltano)

    assert row(postgres, changed, ", ".join(CHANGES)) == tuple(CHANGES.values())
    assert row(postgres, changed, "_sdc_deleted_at") == (None,)
    assert row(postgres, deleted, "_sdc_deleted_at")[0] is not None
    live = postgres.query("SELECT id FROM {table} WHERE _sdc_deleted_at IS NULL")
    assert {user_id for (user_id,) in live} == {int(user["id"]) for user in sandbox.users()}
    state = users_state(meltano)
    assert state["last_full_refresh"] > last
    assert "full_refresh" not in state
    ((newest,),) = postgres.query("SELECT max(created_date) FROM {table}")
    assert state["replication_key_value"][:19] == newest.isoformat()[:19]

    (new_id,) = sandbox.add_users(1)
    run(meltano)  # the increment again: the new user arrives, nobody is deleted

    assert row(postgres, new_id, "_sdc_deleted_at") == (None,)
    assert postgres.query("SELECT count(*) FROM {table} WHERE _sdc_deleted_at IS NULL") == [
        (total,)
    ]
    assert users_state(meltano)["last_full_refresh"] == state["last_full_refresh"]


def test_full_refresh_with_hard_delete_removes_deleted_users(
    meltano: Meltano,
    sandbox: Sandbox,
    postgres: Postgres,  # noqa: F811
) -> None:
    meltano.env["TARGET_POSTGRES_HARD_DELETE"] = "true"
    meltano.use_sandbox(sandbox, full_refresh_days=DAYS)
    run(meltano)
    changed, deleted = changed_and_deleted(sandbox)
    make_full_refresh_due(meltano)

    run(meltano)

    assert postgres.query(f"SELECT id FROM {{table}} WHERE id = {deleted}") == []  # noqa: S608
    assert row(postgres, changed, ", ".join(CHANGES)) == tuple(CHANGES.values())
    ((rows, distinct),) = postgres.query("SELECT count(*), count(DISTINCT id) FROM {table}")
    assert rows == distinct == len(sandbox.users())
