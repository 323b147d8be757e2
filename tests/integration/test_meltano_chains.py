"""Several chains, one warehouse: two inherited extractors into one PostgreSQL table."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

import pytest
import yaml
from support.doc_blocks import marked_text

from tap_spaaza_users.sandbox import Sandbox

from .conftest import PROJECT_ROOT
from .test_meltano_warehouses import postgres  # noqa: F401 - the PostgreSQL fixture

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .conftest import Meltano
    from .test_meltano_warehouses import Postgres


@pytest.fixture
def chains() -> Iterator[dict[str, Sandbox]]:
    """Two chains, each in a sandbox of its own: other users, overlapping ids, own tokens."""
    with (
        Sandbox(users=60, seed=1, chain_id=1234) as chain_a,
        Sandbox(users=40, seed=2, chain_id=5678) as chain_b,
    ):
        yield {"CHAIN_A": chain_a, "CHAIN_B": chain_b}


def test_readme_chain_extractors_are_meltano_ymls() -> None:
    project = yaml.safe_load((PROJECT_ROOT / "meltano.yml").read_text(encoding="utf-8"))
    declared = [
        p for p in project["plugins"]["extractors"] if p["name"].startswith("tap-spaaza-users--ch")
    ]
    assert yaml.safe_load(marked_text("chains-two-yml")) == declared
    for plugin in declared:
        config = plugin["config"]
        assert config["chain_id"] == config["stream_map_config"]["chain_id"]


def test_two_chains_load_complete_and_distinct_into_one_postgres_table(
    meltano: Meltano,
    chains: dict[str, Sandbox],
    postgres: Postgres,  # noqa: F811 - the imported fixture
) -> None:
    lines = [line for line in marked_text("chains-two").splitlines() if line.strip()]
    exports = [shlex.split(line)[1].split("=")[0] for line in lines if line.startswith("export ")]
    (command,) = [line for line in lines if line.startswith("meltano ")]
    for name, sandbox in chains.items():
        prefix = f"TAP_SPAAZA_USERS__{name}_"
        meltano.env[prefix + "ACCESS_TOKEN_ID"] = sandbox.token_id
        meltano.env[prefix + "ACCESS_TOKEN_SECRET"] = sandbox.token_secret
        meltano.env[prefix + "API_URL"] = sandbox.url  # the sandbox instead of Spaaza
        meltano.env[prefix + "POLL_INTERVAL_SECONDS"] = "1"
    tokens = {
        f"TAP_SPAAZA_USERS__{n}_ACCESS_TOKEN_{part}" for n in chains for part in ("ID", "SECRET")
    }
    assert set(exports) == tokens, "the docs set each chain's token under its own name"

    meltano(*shlex.split(command)[1:])

    rows = postgres.query("SELECT chain_id, id, username FROM {table}")
    for name, sandbox in chains.items():
        loaded = {(r[1], r[2]) for r in rows if r[0] == sandbox.chain_id}
        expected = {(int(u["id"]), u["username"] or None) for u in sandbox.users()}
        assert loaded == expected, f"{name} is not complete, or holds another chain's users"
    assert len(rows) == 60 + 40
    assert len({(r[0], r[1]) for r in rows}) == len(rows)
    shared_ids = {r[1] for r in rows if r[0] == 1234} & {r[1] for r in rows if r[0] == 5678}
    assert len(shared_ids) == 40, "the chains share ids 1..40: only chain_id keeps them apart"
    for name in ("chain-a", "chain-b"):
        state = meltano.state(f"prod:tap-spaaza-users--{name}-to-target-postgres")
        assert state["singer_state"]["bookmarks"]["users"]["replication_key_value"]
