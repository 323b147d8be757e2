"""RECORD messages as the SDK writes them: field selection and stream maps, decided per sync."""

from __future__ import annotations

import datetime as dt
import weakref
from typing import TYPE_CHECKING, Any

from singer_sdk.mapper import RemoveRecordTransform, SameRecordTransform
from singer_sdk.singerlib.messages import RecordMessage

from tap_spaaza_users.contract import users_json_schema

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from singer_sdk import Stream

Record = dict[str, Any]

_SHAPERS: weakref.WeakKeyDictionary[Stream, RecordShaper] = weakref.WeakKeyDictionary()


def deselected_properties(stream: Stream) -> tuple[str, ...]:
    """The top-level properties the catalog deselects (the users records are flat).

    Args:
        stream: The stream.

    Returns:
        Their names; a property the mask does not mention follows the stream's selection,
        as in the SDK.
    """
    names = dict.fromkeys(stream.schema.get("properties", {}))
    names.update(dict.fromkeys(stream.effective_schema.get("properties", {})))
    mask = stream.mask
    return tuple(name for name in names if not mask["properties", name])


class RecordShaper:
    """Does to a record what the SDK's RECORD path does: drop deselected fields, map it.

    The SDK walks the selection mask of every field of every record; here the deselected
    fields are found once and the stream maps that drop everything are left out.
    """

    def __init__(self, stream: Stream) -> None:
        """Read the stream's selection and maps.

        Args:
            stream: The stream whose records are shaped.
        """
        self.deselected = deselected_properties(stream)
        self.maps: list[tuple[str, Callable[[Record], Record | None]]] = [
            (stream_map.stream_alias, stream_map.transform)
            for stream_map in stream.stream_maps
            if not isinstance(stream_map, RemoveRecordTransform)
        ]
        self.aliases = [alias for alias, _ in self.maps]

    @classmethod
    def of(cls, stream: Stream) -> RecordShaper:
        """The shaper of a stream, built on first use.

        Args:
            stream: The stream.

        Returns:
            Its shaper.
        """
        shaper = _SHAPERS.get(stream)
        if shaper is None:
            shaper = _SHAPERS[stream] = cls(stream)
        return shaper

    def shape(self, record: Record) -> Iterator[tuple[str, Record]]:
        """Drop the deselected fields (in place), then yield (alias, record) per stream map.

        Args:
            record: A typed record.

        Yields:
            Each stream map's alias and its record; maps that filter the record out yield
            nothing.
        """
        for name in self.deselected:
            record.pop(name, None)
        for alias, transform in self.maps:
            mapped = transform(record)
            if mapped is not None:
                yield alias, mapped


def record_messages(
    stream: Stream, record: Record, *, version: int | None = None
) -> Iterator[RecordMessage]:
    """The RECORD messages of a record, as the SDK would write them.

    Args:
        stream: The stream.
        record: A typed record (the users stream types its own values, so no conformance).
        version: The stream version for ACTIVATE_VERSION, if any.

    Yields:
        One message per stream map that keeps the record.
    """
    extracted = dt.datetime.now(dt.timezone.utc)
    for alias, mapped in RecordShaper.of(stream).shape(record):
        yield RecordMessage(stream=alias, record=mapped, version=version, time_extracted=extracted)


def plain_alias(stream: Stream, shaper: RecordShaper) -> str | None:
    """The stream's one alias when its records go out as they are, else None.

    That is: no field deselected, and one stream map that passes records through unchanged
    (no flattening).
    """
    maps = stream.stream_maps
    if shaper.deselected or len(maps) != 1 or type(maps[0]) is not SameRecordTransform:
        return None
    if maps[0].flattening_options and maps[0].flattening_enabled:
        return None
    return maps[0].stream_alias


class RecordMessageMaker:
    """RECORD messages as ``RecordMessage.to_dict`` gives them, built without the object.

    ``add`` appends a record's messages (one per stream map that keeps it) to a list the
    writer encodes a block at a time; a stream without field deselection or maps that
    change records appends ``{"type", "stream", "record", ...}`` with no call per record.
    """

    def __init__(self, stream: Stream) -> None:
        """Read the stream's selection and maps, and the time for ``time_extracted``."""
        self.stream = stream
        self.shaper = RecordShaper.of(stream)
        #: The one alias when records go out as they are (nothing deselected, no map that
        #: changes them): the caller may then build the message itself.
        self.plain_alias = plain_alias(stream, self.shaper)
        self.tick()

    def tick(self) -> None:
        """Read the clock again for ``time_extracted``."""
        self.extracted = dt.datetime.now(dt.timezone.utc)

    def add(self, record: Record, messages: list[dict[str, Any]]) -> None:
        """Append the record's RECORD messages to ``messages``."""
        extracted = self.extracted
        version = self.stream._stream_version  # noqa: SLF001 - a full refresh's table version
        for alias, mapped in self.shaper.shape(record):
            message: dict[str, Any] = {"type": "RECORD", "stream": alias, "record": mapped}
            if version is not None:
                message["version"] = version
            message["time_extracted"] = extracted
            messages.append(message)


def add_string_columns(stream: Stream, names: list[str]) -> None:
    """Declare a file's unknown columns (nullable strings) in the stream's schemas.

    The stream's own schema and every stream map that passes records through unchanged
    learn them, so the next SCHEMA message announces them before the first record.

    Args:
        stream: The stream.
        names: The columns the file has and the column list does not.
    """
    fragment = users_json_schema(names)["properties"]
    schemas = [stream.schema, stream._input_schema] + [  # noqa: SLF001 - the SDK's copy
        stream_map.transformed_schema
        for stream_map in stream.stream_maps
        if isinstance(stream_map, SameRecordTransform)
    ]
    for schema in schemas:
        if schema is not None:
            for name in names:
                schema.setdefault("properties", {}).setdefault(name, dict(fragment[name]))
    stream.logger.info("Schema extended with the file's extra columns: %s", names)
