"""`meltano run tap-spaaza-users target-postgres` whose loader fails mid-load, then a rerun.

The warehouse refuses rows once the users table passes a quota (a trigger raising on insert,
as a full disk, a revoked grant or a quota would): the loader's first batch of the run is
committed, the next one fails, and so does the run. Meltano keeps the state of the last good
run; the rerun, once the fault is removed, upserts every user, none twice, and adopts the
failed run's export task (which the tap kept: it had only handed the rows to the loader)
instead of exporting the same window again. Its clean-up deletes the last good run's task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from tap_spaaza_users.sandbox import Sandbox

from .test_meltano_warehouses import postgres  # noqa: F401 - the fixture

if TYPE_CHECKING:
    from .conftest import Meltano
    from .test_meltano_warehouses import Postgres

STATE_ID = "dev:tap-spaaza-users-to-target-postgres"
FIRST_USERS = 500
NEW_USERS = 12_000
#: The loader writes batches of this many rows: the failing run's first batch fits under the
#: quota, its second does not.
BATCH_ROWS = 5_000
QUOTA = FIRST_USERS + BATCH_ROWS
REFUSAL = "users table is full"


def task_creations(sandbox: Sandbox) -> int:
    """How many ``POST /tasks`` the sandbox received."""
    return sum(1 for r in sandbox.requests if r.method == "POST" and r.path == "/tasks")


def bookmark(meltano: Meltano) -> dict[str, Any]:
    """The users stream's bookmark in the state Meltano keeps."""
    users: dict[str, Any] = meltano.state(STATE_ID)["singer_state"]["bookmarks"]["users"]
    return users


def refuse_rows_past_quota(warehouse: Postgres) -> None:
    """Make the users table refuse any insert that leaves it with more than ``QUOTA`` rows."""
    schema = sql.Identifier(warehouse.schema)
    message = sql.Literal(f"{REFUSAL} ({QUOTA} rows)")
    with psycopg.connect(warehouse.dsn, autocommit=True) as connection:
        connection.execute(
            sql.SQL(
                "CREATE FUNCTION {schema}.refuse_rows_past_quota() RETURNS trigger "
                "LANGUAGE plpgsql AS $$ BEGIN "
                "IF (SELECT count(*) FROM {schema}.users) > {quota} THEN "
                "RAISE EXCEPTION {message}; END IF; RETURN NULL; END $$"
            ).format(schema=schema, quota=sql.Literal(QUOTA), message=message)
        )
        connection.execute(
            sql.SQL(
                "CREATE TRIGGER quota AFTER INSERT ON {schema}.users "
                "FOR EACH STATEMENT EXECUTE FUNCTION {schema}.refuse_rows_past_quota()"
            ).format(schema=schema)
        )


def remove_quota(warehouse: Postgres) -> None:
    """Let the users table take rows again."""
    with psycopg.connect(warehouse.dsn, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP TRIGGER quota ON {schema}.users").format(
                schema=sql.Identifier(warehouse.schema)
            )
        )


def test_postgres_failing_mid_load_keeps_the_state_and_the_rerun_loads_every_user_once(
    meltano: Meltano,
    postgres: Postgres,  # noqa: F811 - the fixture
) -> None:
    meltano.env["TARGET_POSTGRES_BATCH_SIZE_ROWS"] = str(BATCH_ROWS)
    with Sandbox(users=FIRST_USERS, seed=14) as sandbox:
        meltano.use_sandbox(sandbox)
        meltano("run", "tap-spaaza-users", "target-postgres")
        before = bookmark(meltano)
        assert postgres.query("SELECT count(*) FROM {table}") == [(FIRST_USERS,)]
        sandbox.add_users(NEW_USERS)
        refuse_rows_past_quota(postgres)

        failed = meltano("run", "tap-spaaza-users", "target-postgres", check=False)

        output = failed.stdout + failed.stderr
        assert failed.returncode != 0
        assert REFUSAL in output, output[-5000:]
        ((loaded,),) = postgres.query("SELECT count(*) FROM {table}")
        assert FIRST_USERS < loaded <= QUOTA  # a batch was committed, the next one refused
        after_failure = bookmark(meltano)
        for key in ("replication_key_value", "delivered_tasks"):
            assert after_failure.get(key) == before.get(key), key
        exported = task_creations(sandbox)
        assert exported == 2
        # Its clean-up deleted the last good run's task; it kept its own, delivered to a
        # loader that then failed.
        (first_task,) = before["delivered_tasks"]
        (failed_task,) = sandbox.tasks
        assert failed_task != first_task

        remove_quota(postgres)
        meltano("run", "tap-spaaza-users", "target-postgres")

        expected = {int(user["id"]) for user in sandbox.users()}
        ((rows, distinct),) = postgres.query("SELECT count(*), count(DISTINCT id) FROM {table}")
        assert (rows, distinct) == (len(expected), len(expected))
        assert {row[0] for row in postgres.query("SELECT id FROM {table}")} == expected
        after = bookmark(meltano)
        assert after["replication_key_value"] > before["replication_key_value"]
        assert task_creations(sandbox) == exported  # the failed run's task, adopted
        assert after["delivered_tasks"] == [first_task, failed_task]
        # Left: only the task the rerun delivered, kept for the next run's clean-up.
        assert set(sandbox.tasks) == {failed_task}
        assert sandbox.tasks[failed_task].code == "DONE"
