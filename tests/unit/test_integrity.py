"""What makes a downloaded file whole: an MD5 ETag, and a gzip stream whole to its end."""

from __future__ import annotations

import gzip
import hashlib

import pytest

from tap_spaaza_users.download.integrity import BodyCheck, md5_of_etag

CSV = b"id,name\n" + b"".join(b"%d,user %d\n" % (i, i) for i in range(5000))
PACKED = gzip.compress(CSV, mtime=0)


def problem(data: bytes) -> str | None:
    """What a BodyCheck finds in a whole gzip file fed in one piece."""
    check = BodyCheck()
    check.feed(data)
    return check.problem(declared_gzip=True)


def test_whole_gzip_has_no_problem_with_several_members_and_zero_padding() -> None:
    assert problem(PACKED) is None
    assert problem(PACKED + gzip.compress(b"more\n") + b"\x00" * 512) is None


def test_truncated_gzip_ends_early() -> None:
    assert (
        problem(PACKED[: len(PACKED) // 2]) == "its gzip stream ends early (the file is truncated)"
    )


def test_bad_crc_and_bad_length_are_named() -> None:
    crc_spoiled = PACKED[:-8] + bytes(b ^ 0xFF for b in PACKED[-8:-4]) + PACKED[-4:]
    assert problem(crc_spoiled) == "its gzip checksum (CRC-32) does not match its content"
    length_spoiled = PACKED[:-4] + b"\x00\x00\x00\x00"
    assert problem(length_spoiled) == "its gzip length check does not match its content"


def test_bytes_after_the_stream_and_a_damaged_body_are_named() -> None:
    assert problem(PACKED + b"garbage") == "it has bytes that are not gzip after its gzip stream"
    damaged = bytearray(PACKED)
    damaged[len(damaged) // 2 : len(damaged) // 2 + 64] = bytes(64)
    assert problem(bytes(damaged)) is not None


def test_a_highly_compressed_file_is_checked_to_its_end() -> None:
    packed = gzip.compress(bytes(50_000_000), compresslevel=9, mtime=0)
    assert problem(packed) is None
    assert problem(packed[:-1]) == "its gzip stream ends early (the file is truncated)"


@pytest.mark.parametrize(
    ("etag", "md5"),
    [
        (
            '"' + hashlib.md5(b"x", usedforsecurity=False).hexdigest() + '"',
            "9dd4e461268c8034f5c8564e155c67a6",
        ),
        ('"9DD4E461268C8034F5C8564E155C67A6"', "9dd4e461268c8034f5c8564e155c67a6"),
        ('"9dd4e461268c8034f5c8564e155c67a6-3"', None),  # multipart: no MD5 of the whole
        ('W/"9dd4e461268c8034f5c8564e155c67a6"', None),  # weak
        ('"v1"', None),
        (None, None),
    ],
)
def test_only_a_plain_s3_etag_states_an_md5(etag: str | None, md5: str | None) -> None:
    assert md5_of_etag(etag) == md5


def fed_in_pieces(data: bytes, size: int, *, declared_gzip: bool = False) -> str | None:
    """What a BodyCheck fed ``data`` ``size`` bytes at a time finds."""
    check = BodyCheck()
    for start in range(0, len(data), size):
        check.feed(data[start : start + size])
    return check.problem(declared_gzip=declared_gzip)


@pytest.mark.parametrize("size", [1, 7, 65536])
def test_body_check_fed_as_the_bytes_arrive_finds_what_a_whole_pass_finds(size: int) -> None:
    crc_spoiled = PACKED[:-8] + bytes(b ^ 0xFF for b in PACKED[-8:-4]) + PACKED[-4:]
    for data in (PACKED, PACKED[: len(PACKED) // 2], crc_spoiled, PACKED + b"garbage"):
        assert fed_in_pieces(data, size) == problem(data)
    assert fed_in_pieces(CSV, size) is None, "a plain file has no gzip to check"
    assert fed_in_pieces(CSV, size, declared_gzip=True) == (
        "storage declared it gzip (Content-Encoding) but it is not"
    )


def test_body_check_forgets_a_body_that_starts_over() -> None:
    check = BodyCheck()
    check.feed(PACKED[:100] + b"broken")
    check.restart()
    check.feed(PACKED)
    assert check.problem(declared_gzip=True) is None
