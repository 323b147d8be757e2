"""Via `meltano run` into PostgreSQL: an empty or shrunken full refresh never erases the table."""

from __future__ import annotations

import pytest

from .test_full_refresh_postgres import DAYS, make_full_refresh_due, users_state
from .test_meltano_warehouses import postgres  # noqa: F401 - the fixture

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tap_spaaza_users.sandbox import Sandbox

    from .conftest import Meltano
    from .test_meltano_warehouses import Postgres


def live_ids(warehouse: Postgres) -> set[int]:
    """The ids of the table's rows not marked deleted."""
    rows = warehouse.query("SELECT id FROM {table} WHERE _sdc_deleted_at IS NULL")
    return {user_id for (user_id,) in rows}


@pytest.mark.parametrize("hard_delete", [False, True], ids=["soft-delete", "hard-delete"])
def test_empty_or_shrunken_full_refresh_keeps_every_user_and_fails_the_run(
    meltano: Meltano,
    sandbox: Sandbox,
    postgres: Postgres,  # noqa: F811
    hard_delete: bool,  # noqa: FBT001
) -> None:
    meltano.env["TARGET_POSTGRES_HARD_DELETE"] = "true" if hard_delete else "false"
    meltano.use_sandbox(sandbox, full_refresh_days=DAYS)
    meltano("run", "tap-spaaza-users", "target-postgres")
    everyone = {int(user["id"]) for user in sandbox.users()}
    assert live_ids(postgres) == everyone

    for kept in (0, 40):  # a header-only file, then one with 40 of the 300 users
        make_full_refresh_due(meltano)
        due = users_state(meltano)["last_full_refresh"]
        sandbox.inject("short_export", rows=kept)

        result = meltano("run", "tap-spaaza-users", "target-postgres", check=False)

        assert result.returncode != 0, "a refused full refresh must fail the run"
        assert "refused its ACTIVATE_VERSION" in result.stderr
        assert live_ids(postgres) == everyone
        ((rows,),) = postgres.query("SELECT count(*) FROM {table}")
        assert rows == len(everyone)
        state = users_state(meltano)
        assert state["last_full_refresh"] == due
        assert state["last_full_refresh_users"] == len(everyone)

    meltano("run", "tap-spaaza-users", "target-postgres")  # the fault has passed

    assert live_ids(postgres) == everyone
    assert users_state(meltano)["last_full_refresh"] > due
