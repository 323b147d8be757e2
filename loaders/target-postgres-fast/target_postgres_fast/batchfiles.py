"""The records of a JSONL BATCH file, decoded a block of lines per msgspec call.

The SDK reads a BATCH file line by line (through ``GzipFile``'s line iterator when it is
compressed) and decodes each line with ``json.loads`` (numbers with a fraction as
``Decimal``): one Python call per record and per line. Here the file is decompressed a block
at a time by ISA-L's gzip reader (``isal``: the same bytes as ``gzip``'s, at about a third of
its CPU), the block is cut at its last newline and every whole line of it is decoded by one
``decode_lines`` call with the SDK's msgspec decoder, which gives the same values
(``Decimal`` for a number with a fraction, the same integers however large, the last of two
equal keys).

A block that does not decode into exactly one record per line (a blank or malformed line,
two values on one line, anything msgspec rejects) is decoded line by line with the SDK's own
``deserialize_json``, which returns what the SDK would or raises the SDK's own error.
"""

from __future__ import annotations

import io
from typing import IO, Any

import msgspec
from isal import igzip
from singer_sdk.contrib.msgspec import decoder
from singer_sdk.singerlib.json import deserialize_json

from target_postgres_fast.reader import whole_line_blocks

#: The most decompressed bytes decoded at once (plus the rest of a line cut at the end).
BLOCK_BYTES = 1 << 22


def read_records(file: IO[bytes], *, gzip: bool) -> list[dict[str, Any]]:
    """Every record of an open JSONL BATCH file, as the SDK reads them."""
    if gzip:
        with igzip.open(file) as source:
            return read_blocks(source)
    return read_blocks(file)


def read_blocks(source: IO[bytes]) -> list[dict[str, Any]]:
    """Every record of the (decompressed) lines, decoded a block at a time."""
    records: list[dict[str, Any]] = []
    for block in whole_line_blocks(source.read, BLOCK_BYTES):
        records += decode_block(block)
    return records


def decode_block(block: bytes) -> list[dict[str, Any]]:
    """The records of a block of whole lines (the last may lack its newline)."""
    lines = block.count(b"\n") + (not block.endswith(b"\n"))
    try:
        records: list[dict[str, Any]] = decoder.decode_lines(block)
    except msgspec.DecodeError:
        pass
    else:
        if len(records) == lines:
            return records
    return [deserialize_json(line) for line in io.BytesIO(block)]
