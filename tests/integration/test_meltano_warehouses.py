"""Into real warehouses: `meltano run tap-spaaza-users target-postgres` and `target-duckdb`."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import duckdb
import psycopg
import pytest
from support.requirements import require

from .conftest import Meltano, tricky_user

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox

BOOLEAN_COLUMNS = ("is_employee", "online_shopper", "opt_in_programme_programme_opted_in")
TEN_YEARS_OF_MINUTES = str(10 * 366 * 24 * 60)


class Warehouse(Protocol):
    """What the checks need from a loaded warehouse."""

    loader: str

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Run ``sql`` and return its rows."""

    def column_types(self) -> dict[str, str]:
        """Return the users table's column types, lower case, by column name."""


@dataclass
class Postgres:
    """The users table in a throwaway schema of the CI PostgreSQL server."""

    dsn: str
    schema: str
    loader: str = "target-postgres"

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Run ``sql`` (with `{table}` standing for the users table) and return its rows."""
        with psycopg.connect(self.dsn) as connection:
            return connection.execute(sql.format(table=f'"{self.schema}".users')).fetchall()

    def column_types(self) -> dict[str, str]:
        """Return the users table's column types, lower case, by column name."""
        sql = (
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 'users'"
        )
        with psycopg.connect(self.dsn) as connection:
            rows = connection.execute(sql, (self.schema,)).fetchall()
        return {name: kind.lower() for name, kind in rows}


@dataclass
class DuckDB:
    """The users table in a DuckDB file of the test's own."""

    path: Path
    loader: str = "target-duckdb"

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Run ``sql`` (with `{table}` standing for the users table) and return its rows."""
        with duckdb.connect(str(self.path), read_only=True) as connection:
            return connection.execute(sql.format(table="spaaza.users")).fetchall()

    def column_types(self) -> dict[str, str]:
        """Return the users table's column types, lower case, by column name."""
        sql = (
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'spaaza' AND table_name = 'users'"
        )
        return {name: kind.lower() for name, kind in self.query(sql)}


@pytest.fixture
def postgres(meltano: Meltano) -> Iterator[Postgres]:
    """Point target-postgres at a fresh schema of the test server; drop it afterwards."""
    prefix = "TAP_SPAAZA_USERS_TEST_POSTGRES_"
    require(
        bool(os.environ.get(prefix + "HOST")),
        f"PostgreSQL is not configured ({prefix}*)",
        "run `make test` as root, or `source scripts/start-postgres.sh` (as root) first",
    )
    settings = {
        name: os.environ.get(prefix + name.upper(), "")
        for name in ("host", "port", "user", "password", "database")
    }
    schema = f"it_{uuid.uuid4().hex[:10]}"
    meltano.env.update(
        {f"TARGET_POSTGRES_{name.upper()}": value for name, value in settings.items()}
    )
    meltano.env["TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA"] = schema
    dsn = (
        f"host={settings['host']} port={settings['port']} user={settings['user']} "
        f"password={settings['password']} dbname={settings['database']}"
    )
    yield Postgres(dsn=dsn, schema=schema)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def duckdb_file(meltano: Meltano, tmp_path: Path) -> DuckDB:
    """Point target-duckdb at a DuckDB file in the test's temp dir."""
    path = tmp_path / "warehouse.duckdb"
    meltano.env["TARGET_DUCKDB_FILEPATH"] = str(path)
    return DuckDB(path=path)


def check_full_load(warehouse: Warehouse, sandbox: Sandbox, tricky: dict[str, Any]) -> None:
    """The table holds each sandbox user once, typed, the tricky values byte for byte."""
    expected = {int(user["id"]) for user in sandbox.users()}
    ((rows, distinct),) = warehouse.query("SELECT count(*), count(DISTINCT id) FROM {table}")
    assert (rows, distinct) == (len(expected), len(expected)), "the loader dropped or doubled rows"
    assert {row[0] for row in warehouse.query("SELECT id FROM {table}")} == expected

    types = warehouse.column_types()
    assert types["id"] in {"bigint", "integer", "hugeint"}
    for column in BOOLEAN_COLUMNS:
        assert types[column] == "boolean", column
    assert types["created_date"].startswith("timestamp"), types["created_date"]

    values = {name: value for name, value in tricky.items() if name != "id"}
    columns = ", ".join(values)
    sql = f"SELECT {columns} FROM {{table}} WHERE id = {tricky['id']}"  # noqa: S608
    (loaded,) = warehouse.query(sql)
    assert dict(zip(values, loaded, strict=True)) == values


def check_upserting_rerun(meltano: Meltano, warehouse: Warehouse, sandbox: Sandbox) -> None:
    """A run that re-reads every user (huge lookback) upserts them: no duplicates, new values."""
    (user_id,) = {int(sandbox.users()[1]["id"])}
    sandbox.update_user(user_id, first_name="Renamed ✓")
    new_ids = sandbox.add_users(3)

    meltano(
        "run",
        "tap-spaaza-users",
        warehouse.loader,
        extra_env={"TAP_SPAAZA_USERS_LOOKBACK_MINUTES": TEN_YEARS_OF_MINUTES},
    )

    total = len(sandbox.users())
    ((rows, distinct),) = warehouse.query("SELECT count(*), count(DISTINCT id) FROM {table}")
    assert (rows, distinct) == (total, total), "a re-read user was duplicated or lost"
    found = warehouse.query(f"SELECT first_name FROM {{table}} WHERE id = {user_id}")  # noqa: S608
    assert found == [("Renamed ✓",)]
    ids = ", ".join(str(new_id) for new_id in new_ids)
    assert warehouse.query(f"SELECT count(*) FROM {{table}} WHERE id IN ({ids})") == [(3,)]  # noqa: S608
    check_final_state(meltano, warehouse)


def check_final_state(meltano: Meltano, warehouse: Warehouse) -> None:
    """Meltano kept the run's final bookmark: the newest created_date in the warehouse."""
    state = meltano.state(f"dev:tap-spaaza-users-to-{warehouse.loader}")
    bookmark = state["singer_state"]["bookmarks"]["users"]["replication_key_value"]
    ((newest,),) = warehouse.query("SELECT max(created_date) FROM {table}")
    assert bookmark[:19] == newest.isoformat()[:19]


def load_with_tricky_user(meltano: Meltano, warehouse: Warehouse, sandbox: Sandbox) -> None:
    """Run a first full load with a user whose fields break naive CSV and SQL handling."""
    user_id, values = tricky_user(sandbox)
    meltano.use_sandbox(sandbox)
    meltano("run", "tap-spaaza-users", warehouse.loader)
    check_full_load(warehouse, sandbox, {"id": user_id, **values})
    check_final_state(meltano, warehouse)


def test_postgres_gets_every_user_typed_and_reruns_upsert(
    meltano: Meltano, sandbox: Sandbox, postgres: Postgres
) -> None:
    load_with_tricky_user(meltano, postgres, sandbox)
    check_upserting_rerun(meltano, postgres, sandbox)


def test_duckdb_gets_every_user_typed_and_reruns_upsert(
    meltano: Meltano, sandbox: Sandbox, duckdb_file: DuckDB
) -> None:
    load_with_tricky_user(meltano, duckdb_file, sandbox)
    check_upserting_rerun(meltano, duckdb_file, sandbox)


def test_duckdb_keeps_the_final_state_when_the_last_batch_is_exactly_full(
    meltano: Meltano, sandbox: Sandbox, duckdb_file: DuckDB
) -> None:
    # target-duckdb itself emits no STATE after a flush that took the last record.
    third = len(sandbox.users()) // 3
    meltano.env["TARGET_DUCKDB_BATCH_SIZE_ROWS"] = str(third)
    meltano.use_sandbox(sandbox)

    meltano("run", "tap-spaaza-users", duckdb_file.loader)

    assert duckdb_file.query("SELECT count(*) FROM {table}") == [(3 * third,)]
    check_final_state(meltano, duckdb_file)
