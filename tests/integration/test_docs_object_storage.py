"""docs/object-storage.md runs as written: BATCH files and Meltano's state in S3 (moto server)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import boto3
import pytest
import requests
import yaml
from support.docs_pages import command_lines, doc_block, doc_markers, untested_blocks
from support.ports import free_port

from tap_spaaza_users.sandbox import Sandbox

from .conftest import PROJECT_ROOT
from .docs_projects import merged_project, own_sys_dir
from .test_meltano_warehouses import postgres  # noqa: F401 - the PostgreSQL fixture

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from .conftest import Meltano
    from .test_meltano_warehouses import Postgres

PAGE = "object-storage.md"
BIN = PROJECT_ROOT / ".venv" / "bin"


def test_every_block_of_the_page_is_tested() -> None:
    assert untested_blocks(PAGE) == 0
    assert doc_markers(PAGE) == ["object-storage-yml", "object-storage-run", "object-storage-moto"]


@pytest.fixture
def s3_env() -> Iterator[dict[str, str]]:
    """The page's local S3 server (on a free port), its variables, and its bucket."""
    server, exports, create = command_lines(doc_block(PAGE, "object-storage-moto"))
    documented_port = shlex.split(server)[-2]
    port = str(free_port())
    argv = [str(BIN / "moto_server"), *shlex.split(server.rstrip(" &"))[1:]]
    argv[argv.index(documented_port)] = port
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        env = dict(item.split("=", 1) for item in shlex.split(exports)[1:])
        env["AWS_ENDPOINT_URL"] = env["AWS_ENDPOINT_URL"].replace(documented_port, port)
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(env["AWS_ENDPOINT_URL"], timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "moto_server did not start"
                time.sleep(0.1)
        python = [sys.executable, *shlex.split(create)[1:]]
        subprocess.run(python, env={**os.environ, **env}, check=True, timeout=60)
        yield env
    finally:
        process.terminate()
        process.wait(timeout=10)


def bucket_keys(env: dict[str, str], bucket: str) -> list[str]:
    """Every object key of a bucket of the local S3 server."""
    client = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return sorted(str(item["Key"]) for item in listed)


def read_object(env: dict[str, str], bucket: str, key: str) -> Any:
    """A JSON object of the local S3 server."""
    client = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    return json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())


def test_batch_files_in_s3_load_into_plain_target_postgres_and_state_moves_machines(
    meltano: Meltano,
    postgres: Postgres,  # noqa: F811 - the imported fixture
    s3_env: dict[str, str],
    tmp_path: Path,
) -> None:
    block = doc_block(PAGE, "object-storage-yml")
    config = yaml.safe_load(block)
    bucket = config["state_backend"]["uri"].removeprefix("s3://").split("/")[0]
    batches = config["plugins"]["extractors"][0]["config"]["batch_config"]["storage"]["root"]
    assert batches.startswith(f"s3://{bucket}/")
    meltano.project = merged_project(tmp_path, block, local_pip_url=True)
    first_machine = own_sys_dir(tmp_path / "machine-1")
    meltano.env.update(s3_env)
    meltano.env["MELTANO_SYS_DIR_ROOT"] = str(first_machine)
    _credentials, *installs, run = command_lines(doc_block(PAGE, "object-storage-run"))
    for command in installs:
        meltano(*shlex.split(command)[1:])

    with Sandbox(users=240, seed=9) as sandbox:
        meltano.use_sandbox(sandbox, poll_interval_seconds=1, poll_max_interval_seconds=1)
        meltano(*shlex.split(run)[1:])
        loaded = {r[0] for r in postgres.query("SELECT id FROM {table}")}
        assert loaded == {int(u["id"]) for u in sandbox.users()}
        keys = bucket_keys(s3_env, bucket)
        folder = batches.removeprefix(f"s3://{bucket}/")
        (first_file,) = [k for k in keys if k.startswith(folder)]
        assert first_file.endswith("-users-1.jsonl.gz")
        state_key = "meltano-state/prod:tap-spaaza-users--s3-to-target-postgres--plain/state.json"
        assert state_key in keys
        first_state = read_object(s3_env, bucket, state_key)
        bookmark = first_state["completed"]["singer_state"]["bookmarks"]["users"]
        assert bookmark["replication_key_value"]

        # Another machine: its own system database, no state of its own; S3 has the state.
        meltano.env["MELTANO_SYS_DIR_ROOT"] = str(
            own_sys_dir(tmp_path / "machine-2", first_machine)
        )
        sandbox.add_users(6)
        before = len(sandbox.requests)
        meltano(*shlex.split(run)[1:])
        created = [
            r for r in sandbox.requests[before:] if r.method == "POST" and r.path == "/tasks"
        ]
        (task,) = created
        rules = task.json["trigger"]["segment"]["rules"]
        assert [r["field_name"] for r in rules] == ["created_date"], "an incremental export"
        rows = postgres.query("SELECT id FROM {table}")
        assert sorted(r[0] for r in rows) == sorted(int(u["id"]) for u in sandbox.users())
        assert len(rows) == 246
    # The second sync deleted the file the first one's state proves loaded; its own file
    # waits for the next sync.
    (second_file,) = [k for k in bucket_keys(s3_env, bucket) if k.startswith(folder)]
    assert second_file != first_file
    second_state = read_object(s3_env, bucket, state_key)
    second_bookmark = second_state["completed"]["singer_state"]["bookmarks"]["users"]
    assert second_bookmark["replication_key_value"] > bookmark["replication_key_value"]
