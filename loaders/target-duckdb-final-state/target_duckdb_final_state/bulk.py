"""RECORD and BATCH messages loaded by DuckDB's own JSON reader into target-duckdb's tables.

target-duckdb decodes every message in Python, holds each batch as dicts, writes the batch to
a CSV file value by value and copies that file in. Here each RECORD line goes to a spool file
as it arrives, undecoded, and DuckDB reads the spool (its JSON reader, in C++) into a
temporary table; the files of a BATCH message (JSON Lines, gzipped or not) are read the same
way. Tables, column types and the merge (update the rows whose key is there, insert the
others, the last copy of a key in a batch winning) are target-duckdb's own (``DbSync``), and
values are converted as its CSV path converts them (an empty string is NULL), so the rows are
the ones target-duckdb loads.

The last STATE is emitted once every record before it is loaded: after each flush, when a
STATE arrives with nothing pending, and at the end.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from target_duckdb.db_sync import DbSync, column_type, safe_column_name

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    import duckdb

#: Settings that need target-duckdb's per-record path (metadata columns, validation, ...).
PER_RECORD_SETTINGS = (
    "validate_records",
    "add_metadata_columns",
    "hard_delete",
    "data_flattening_max_level",
    "flush_all_streams",
)
#: target-duckdb's column types that DuckDB reads from JSON as target-duckdb's CSV COPY does.
TYPED = {"double", "smallint", "integer", "bigint", "hugeint", "boolean"}
#: Read as text and cast, as COPY casts a CSV field (an offset is converted to UTC).
CAST = {"timestamp", "time", "date"}
RECORD_PREFIX = '{"type":"RECORD","stream":"'
JSON_LINES = "format='newline_delimited'"
#: Every key of a RECORD message: DuckDB's JSON reader takes a much slower path (about ten
#: times) when an object holds a key that ``columns`` does not name.
ENVELOPE = (
    "{'type': 'VARCHAR', 'stream': 'VARCHAR', 'record': 'STRUCT(FIELDS)', "
    "'version': 'BIGINT', 'time_extracted': 'VARCHAR'}"
)
DEFAULT_BATCH_SIZE_ROWS = 100_000
#: DuckDB's own default is 80% of the machine's memory, and its cache of the table's pages
#: grows with the table; beyond this it spills to its temporary directory (unless the
#: ``settings`` object of the configuration sets its own ``memory_limit``).
MEMORY_LIMIT = "600MB"


def handles(config: dict[str, Any]) -> bool:
    """Return whether the bulk path loads with this configuration (else target-duckdb's)."""
    return not any(config.get(name) for name in PER_RECORD_SETTINGS)


def _before_schema(what: str, message: dict[str, Any]) -> str:
    """The error of a message for a stream whose SCHEMA has not come yet (target-duckdb's)."""
    stream = message.get("stream")
    return f"{what} for stream {stream} was encountered before a corresponding schema"


def _literal(text: object) -> str:
    """Quote text (a path, a key) as a SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"


def _quoted(name: str) -> str:
    """Quote a JSON key as a DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


class Stream:
    """One stream: its table (created by target-duckdb) and its spool of RECORD lines."""

    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        config: dict[str, Any],
        message: Any,  # noqa: ANN401
    ) -> None:
        """Create the schema and table of a SCHEMA message, as target-duckdb does."""
        self.connection = connection
        self.sync = DbSync(connection, config, message)
        self.sync.create_schema_if_not_exists()
        self.sync.sync_table()
        self.keys = [safe_column_name(key) for key in message["key_properties"]]
        self.columns = [
            (name, column_type(spec)) for name, spec in self.sync.flatten_schema.items()
        ]
        self.pending = 0
        self._spool: IO[str] | None = None
        self._spool_path: Path | None = None

    def fields(self) -> str:
        """The JSON fields DuckDB reads, with their types."""
        return ", ".join(
            f"{_quoted(name)} {kind.upper() if kind in TYPED else 'VARCHAR'}"
            for name, kind in self.columns
        )

    def add(self, line: str, spool_dir: Path) -> None:
        """Spool one RECORD message line."""
        if self._spool is None:
            self._spool_path = spool_dir / f"{uuid.uuid4().hex}.jsonl"
            self._spool = self._spool_path.open("w", encoding="utf-8")
        self._spool.write(line if line.endswith("\n") else line + "\n")
        self.pending += 1

    def flush(self) -> None:
        """Load the spooled RECORD messages, then empty the spool."""
        if self._spool is None or self._spool_path is None or not self.pending:
            return
        self._spool.close()
        envelope = ENVELOPE.replace("FIELDS", self.fields().replace("'", "''"))
        source = f"read_json({_literal(self._spool_path)}, {JSON_LINES}, columns={envelope})"
        self._merge(source, "record.")
        self._spool_path.unlink()
        self._spool, self._spool_path, self.pending = None, None, 0

    def load_file(self, path: Path, compression: str) -> None:
        """Load one BATCH file of records (JSON Lines)."""
        columns = ", ".join(
            f"{_literal(name)}: '{kind.upper() if kind in TYPED else 'VARCHAR'}'"
            for name, kind in self.columns
        )
        source = (
            f"read_json({_literal(path)}, {JSON_LINES}, compression='{compression}', "
            f"columns={{{columns}}})"
        )
        self._merge(source, "")

    def _merge(self, source: str, prefix: str) -> None:
        """Read ``source`` into a temporary table and merge it as target-duckdb does."""
        select = ", ".join(
            f"{self._value(prefix + _quoted(name), kind)} AS {safe_column_name(name)}"
            for name, kind in self.columns
        )
        read, batch = f"tmp_{uuid.uuid4().hex}", f"tmp_{uuid.uuid4().hex}"
        execute = self.connection.execute
        # Names are quoted identifiers, paths and keys escaped literals: no value reaches the SQL.
        execute(f"CREATE TEMP TABLE {read} AS SELECT {select} FROM {source}")  # noqa: S608
        last = ""
        if self.keys:  # the last copy of a key wins, as in target-duckdb's batch
            keys = ", ".join(self.keys)
            last = f" QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY rowid DESC) = 1"
        execute(f"CREATE TEMP TABLE {batch} AS SELECT * FROM {read}{last}")  # noqa: S608
        execute(f"DROP TABLE {read}")
        if self.keys:
            update = self.sync.update_from_temp_table(batch)
            if update:
                execute(update)
        execute(self.sync.insert_from_temp_table(batch))
        execute(f"DROP TABLE {batch}")

    @staticmethod
    def _value(expression: str, kind: str) -> str:
        """A column's value as target-duckdb's CSV file would give it."""
        if kind in TYPED:
            return expression
        if kind in CAST:
            return f"CAST(NULLIF({expression}, '') AS {kind.upper()})"
        return f"NULLIF({expression}, '')"

    def close(self) -> None:
        """Drop an unloaded spool."""
        if self._spool is not None:
            self._spool.close()


class BulkLoader:
    """Reads Singer messages and loads them through DuckDB's JSON reader."""

    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        config: dict[str, Any],
        emit: Callable[[Any], None],
    ) -> None:
        """Load into ``connection``; ``emit`` writes a STATE value to standard output."""
        self.connection = connection
        self.config = config
        self.emit = emit
        self.batch_size = int(config.get("batch_size_rows") or DEFAULT_BATCH_SIZE_ROWS)
        if "memory_limit" not in (config.get("settings") or {}):
            connection.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        self.streams: dict[str, Stream] = {}
        self.state: Any = None
        self.state_pending = False

    def run(self, lines: Iterable[str]) -> None:
        """Load every message; emit the last STATE once everything is loaded."""
        spool_dir = Path(tempfile.mkdtemp(prefix="target-duckdb-", dir=self.config.get("temp_dir")))
        try:
            for line in lines:
                if line.startswith(RECORD_PREFIX):
                    end = line.find('"', len(RECORD_PREFIX))
                    name = line[len(RECORD_PREFIX) : end]
                    if end > 0 and "\\" not in name and name in self.streams:
                        self._record(name, line, spool_dir)
                        continue
                if line.strip():
                    self._message(json.loads(line), line, spool_dir)
            for stream in self.streams.values():
                stream.flush()
            if self.state_pending:
                self.emit(self.state)
        finally:
            for stream in self.streams.values():
                stream.close()
            shutil.rmtree(spool_dir, ignore_errors=True)

    def _record(self, name: str, line: str, spool_dir: Path) -> None:
        stream = self.streams[name]
        stream.add(line, spool_dir)
        if stream.pending >= self.batch_size:
            stream.flush()
            self._emit_if_loaded()

    def _message(self, message: dict[str, Any], line: str, spool_dir: Path) -> None:
        kind = message.get("type")
        if kind == "RECORD":
            if message.get("stream") not in self.streams:
                raise ValueError(_before_schema("A record", message))
            self._record(message["stream"], line, spool_dir)
        elif kind == "SCHEMA":
            self._schema(message)
        elif kind == "STATE":
            self.state, self.state_pending = message.get("value"), True
            self._emit_if_loaded()
        elif kind == "BATCH":
            self._batch(message)
        elif kind != "ACTIVATE_VERSION":  # target-duckdb ignores ACTIVATE_VERSION too
            msg = f"Unknown message type {kind} in message {message}"
            raise ValueError(msg)

    def _schema(self, message: dict[str, Any]) -> None:
        if "key_properties" not in message:
            msg = "key_properties field is required"
            raise ValueError(msg)
        if self.config.get("primary_key_required", True) and not message["key_properties"]:
            stream = message["stream"]
            msg = f"Primary key is set to mandatory but not defined in the [{stream}] stream"
            raise ValueError(msg)
        previous = self.streams.get(message["stream"])
        if previous is not None:
            previous.flush()
        self.streams[message["stream"]] = Stream(self.connection, self.config, message)

    def _batch(self, message: dict[str, Any]) -> None:
        stream = self.streams.get(message.get("stream", ""))
        if stream is None:
            raise ValueError(_before_schema("A BATCH", message))
        encoding = message.get("encoding") or {}
        if encoding.get("format") != "jsonl":
            msg = f"BATCH files of format {encoding.get('format')!r} cannot be loaded: use jsonl"
            raise ValueError(msg)
        # DuckDB's names: "none" is not one of them (it fails on every file).
        compression = "gzip" if encoding.get("compression") == "gzip" else "uncompressed"
        stream.flush()  # records before the BATCH are loaded first
        for url in message.get("manifest", []):
            parsed = urlparse(url)
            if parsed.scheme not in ("", "file"):
                msg = f"BATCH file {url} is not on local disk: this loader reads file:// URLs only"
                raise ValueError(msg)
            stream.load_file(Path(unquote(parsed.path)), compression)
        self._emit_if_loaded()

    def _emit_if_loaded(self) -> None:
        """Emit the last STATE if no record received before it still waits to be loaded."""
        if self.state_pending and not any(stream.pending for stream in self.streams.values()):
            self.emit(self.state)
            self.state_pending = False
