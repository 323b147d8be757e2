"""BATCH gzip: ISA-L in a process of its own for a local file, in the thread elsewhere."""

from __future__ import annotations

import gzip
import json
from typing import TYPE_CHECKING

from upath import UPath

from tap_spaaza_users.sdk_hooks.batching import ENCODE_RECORDS, _OpenFile

if TYPE_CHECKING:
    from pathlib import Path

RECORDS = [{"id": n, "first_name": f"Zoë {n}", "spend": "12.50"} for n in range(ENCODE_RECORDS * 3)]


def write(path: UPath) -> _OpenFile:
    file = _OpenFile(path, path.name, compress=True)
    for record in RECORDS:
        file.records.append(record)
        if len(file.records) >= ENCODE_RECORDS:
            file.encode()
    file.close()
    return file


def test_a_local_file_is_gzipped_by_a_process_of_its_own(tmp_path: Path) -> None:
    file = write(UPath(tmp_path / "users.jsonl.gz"))

    assert file.process is not None
    assert file.process.returncode == 0
    lines = gzip.decompress((tmp_path / "users.jsonl.gz").read_bytes()).splitlines()
    assert [json.loads(line) for line in lines] == RECORDS


def test_a_file_without_a_descriptor_is_gzipped_in_the_thread() -> None:
    path = UPath("memory://batch-gzip-test/users.jsonl.gz")
    file = write(path)

    assert file.process is None
    lines = gzip.decompress(path.read_bytes()).splitlines()
    assert [json.loads(line) for line in lines] == RECORDS
    path.unlink()
