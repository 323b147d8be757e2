"""BATCH files: who compresses them and who writes them.

gzip is ISA-L in a process of its own for a local file, in the writing thread elsewhere; a local
file is written by the reading thread, anything else by a writing thread.
"""

from __future__ import annotations

import gzip
import json
import sys
from typing import TYPE_CHECKING

from upath import UPath

from tap_spaaza_users.sdk_hooks.batching import ENCODE_RECORDS, _OpenFile

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

RECORDS = [{"id": n, "first_name": f"Zoë {n}", "spend": "12.50"} for n in range(ENCODE_RECORDS * 3)]


def write(path: UPath, *, compress: bool = True) -> _OpenFile:
    file = _OpenFile(path, path.name, compress=compress)
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
    assert file._thread is None  # the pipe into ISA-L is written by the reading thread
    lines = gzip.decompress((tmp_path / "users.jsonl.gz").read_bytes()).splitlines()
    assert [json.loads(line) for line in lines] == RECORDS


def test_a_file_without_a_descriptor_is_gzipped_in_the_thread() -> None:
    path = UPath("memory://batch-gzip-test/users.jsonl.gz")
    file = write(path)

    assert file.process is None
    assert file._thread is not None
    lines = gzip.decompress(path.read_bytes()).splitlines()
    assert [json.loads(line) for line in lines] == RECORDS
    path.unlink()


def test_without_an_interpreter_path_a_local_file_is_gzipped_in_the_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", "")  # as an embedding may leave it
    file = write(UPath(tmp_path / "users.jsonl.gz"))

    assert file.process is None
    assert file._thread is not None
    lines = gzip.decompress((tmp_path / "users.jsonl.gz").read_bytes()).splitlines()
    assert [json.loads(line) for line in lines] == RECORDS


def test_an_uncompressed_local_file_is_written_by_the_reading_thread(tmp_path: Path) -> None:
    file = write(UPath(tmp_path / "users.jsonl"), compress=False)

    assert file._thread is None
    lines = (tmp_path / "users.jsonl").read_bytes().splitlines()
    assert [json.loads(line) for line in lines] == RECORDS


def test_an_uncompressed_file_without_a_descriptor_is_written_by_a_thread() -> None:
    path = UPath("memory://batch-plain-test/users.jsonl")
    file = write(path, compress=False)

    assert file._thread is not None
    assert not file._thread.is_alive()
    lines = path.read_bytes().splitlines()
    assert [json.loads(line) for line in lines] == RECORDS
    path.unlink()
