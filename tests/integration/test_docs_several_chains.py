"""docs/several-chains.md runs as written: three chains in parallel into one PostgreSQL table."""

from __future__ import annotations

import os
import shlex
import subprocess
from typing import TYPE_CHECKING

import yaml
from support.docs_pages import command_lines, doc_block, doc_markers, untested_blocks

from tap_spaaza_users.sandbox.chains import ChainsSandbox
from tap_spaaza_users.sandbox.cli import build_parser

from .conftest import MELTANO_TIMEOUT_SECONDS
from .docs_projects import merged_project
from .test_meltano_warehouses import postgres  # noqa: F401 - the PostgreSQL fixture

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import Meltano
    from .test_meltano_warehouses import Postgres

PAGE = "several-chains.md"
USERS = 150


def test_every_block_of_the_page_is_tested() -> None:
    assert untested_blocks(PAGE) == 0
    assert doc_markers(PAGE) == [
        "chains-yml",
        "chains-sandbox",
        "chains-env",
        "chains-first",
        "chains-run",
        "chains-sql",
    ]


def test_each_extractor_names_its_chain_twice_alike() -> None:
    extractors = yaml.safe_load(doc_block(PAGE, "chains-yml"))["plugins"]["extractors"]
    assert len(extractors) == 3
    for plugin in extractors:
        config = plugin["config"]
        assert plugin["name"] == f"tap-spaaza-users--chain-{config['chain_id']}"
        assert plugin["inherit_from"] == "tap-spaaza-users"
        assert config["chain_id"] == config["stream_map_config"]["chain_id"]
        assert config["stream_maps"]["users"]["__key_properties__"] == ["chain_id", "id"]


def test_three_chains_in_parallel_load_each_user_once_into_one_table(
    meltano: Meltano,
    postgres: Postgres,  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    (sandbox_line,) = command_lines(doc_block(PAGE, "chains-sandbox"))
    args = build_parser().parse_args(shlex.split(sandbox_line)[1:])
    env_lines = dict(line.split("=", 1) for line in command_lines(doc_block(PAGE, "chains-env")))
    documented_url = env_lines.pop("TAP_SPAAZA_USERS_API_URL")
    assert documented_url == f"http://{args.host}:{args.port}"
    meltano.project = merged_project(tmp_path, doc_block(PAGE, "chains-yml"))

    with ChainsSandbox(
        args.chains, seed=args.seed, users=USERS, task_base_seconds=0.5, task_seconds_per_1k_users=0
    ) as sandbox:
        tokens = {}
        for chain in sandbox.chains:
            prefix = f"TAP_SPAAZA_USERS__CHAIN_{chain.chain_id}_ACCESS_TOKEN_"
            tokens[prefix + "ID"], tokens[prefix + "SECRET"] = chain.token_id, chain.token_secret
        assert env_lines == tokens, "the page shows the sandbox's demo tokens"
        dotenv = {**env_lines, "TAP_SPAAZA_USERS_API_URL": sandbox.url}
        env_file = "".join(f"{name}={value}\n" for name, value in dotenv.items())
        (meltano.project / ".env").write_text(env_file, encoding="utf-8")

        (first,) = command_lines(doc_block(PAGE, "chains-first"))
        meltano(*shlex.split(first)[1:])
        for chain in sandbox.chains:
            chain.add_users(7)  # new users for every chain, the first one's too
        (parallel,) = command_lines(doc_block(PAGE, "chains-run"))
        path = f"{meltano.executable.parent}{os.pathsep}{meltano.env.get('PATH', '')}"
        result = subprocess.run(
            ["bash", "-c", parallel],
            cwd=meltano.project,
            env={**meltano.env, "PATH": path},
            capture_output=True,
            text=True,
            timeout=MELTANO_TIMEOUT_SECONDS,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-5000:]
        creates = {c.chain_id: [r for r in c.requests if r.path == "/tasks" and r.method == "POST"]
                   for c in sandbox.chains}  # fmt: skip
        expected = {
            chain.chain_id: {(int(u["id"]), u["last_name"] or None) for u in chain.users()}
            for chain in sandbox.chains
        }

    assert {chain: len(posts) for chain, posts in creates.items()} == {1234: 2, 5678: 1, 9012: 1}
    rows = postgres.query("SELECT chain_id, id, last_name FROM {table}")
    for chain_id, users in expected.items():
        assert {(r[1], r[2]) for r in rows if r[0] == chain_id} == users, f"chain {chain_id}"
        assert len(users) == USERS + 7
    assert len(rows) == 3 * (USERS + 7), "each user of each chain once"
    sql = doc_block(PAGE, "chains-sql").replace("spaaza.users", "{table}")
    assert postgres.query(sql) == [(chain_id, USERS + 7) for chain_id in (1234, 5678, 9012)]
    for chain_id in (1234, 5678, 9012):
        state = meltano.state(f"prod:tap-spaaza-users--chain-{chain_id}-to-target-postgres")
        assert state["singer_state"]["bookmarks"]["users"]["chain_id"] == chain_id
