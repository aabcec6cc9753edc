"""PostgreSQL's ``pgoutput`` logical replication messages, decoded (protocol version 1).

Only what the change listener needs: transaction bounds (``B``, ``C``), table
descriptions (``R``), row changes (``I``, ``U``, ``D``), ``TRUNCATE`` (``T``) and
logical decoding messages (``M``, sent with ``messages 'true'``); origin and type
messages are recognised and ignored. Column values arrive as text (PostgreSQL's
output functions), exactly as ``psql`` would print them; a value the server did
not send (an unchanged TOASTed column of an update) is ``UNCHANGED``.

The trap: an update or delete carries the old row only as far as the table's
``REPLICA IDENTITY`` says (the primary key by default, every column with
``FULL``); ``old`` is None when the server sent no old row.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
UNCHANGED = object()  # an unchanged TOASTed value the server did not send

Row = dict[str, object]  # column -> text value, None (NULL) or UNCHANGED


class ProtocolError(ValueError):
    """A message this decoder does not understand."""


@dataclass(frozen=True)
class Begin:
    final_lsn: int
    committed_at: datetime
    xid: int


@dataclass(frozen=True)
class Commit:
    commit_lsn: int
    end_lsn: int  # confirm this once the transaction is handled
    committed_at: datetime


@dataclass(frozen=True)
class Relation:
    relid: int
    schema: str
    table: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class RowChange:
    kind: Literal["insert", "update", "delete"]
    relid: int
    old: Row | None
    new: Row | None


@dataclass(frozen=True)
class Truncate:
    relids: tuple[int, ...]


@dataclass(frozen=True)
class Message:
    transactional: bool
    prefix: str
    content: bytes


@dataclass
class _Reader:
    data: bytes
    at: int = field(default=0)

    def take(self, fmt: str) -> tuple[int, ...]:
        values = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return values

    def number(self, fmt: str) -> int:
        return self.take(fmt)[0]

    def string(self) -> str:
        end = self.data.index(b"\0", self.at)
        value = self.data[self.at : end].decode()
        self.at = end + 1
        return value

    def raw(self, length: int) -> bytes:
        value = self.data[self.at : self.at + length]
        self.at += length
        return value

    def timestamp(self) -> datetime:
        return PG_EPOCH + timedelta(microseconds=self.number("!q"))


def _tuple(reader: _Reader, columns: tuple[str, ...]) -> Row:
    count = reader.number("!H")
    row: Row = {}
    for index in range(count):
        kind = reader.raw(1)
        name = columns[index] if index < len(columns) else str(index)
        if kind == b"n":
            row[name] = None
        elif kind == b"u":
            row[name] = UNCHANGED
        elif kind in (b"t", b"b"):
            row[name] = reader.raw(reader.number("!I")).decode()
        else:
            raise ProtocolError(f"unknown tuple value kind {kind!r}")
    return row


Decoded = Begin | Commit | Relation | RowChange | Truncate | Message | None


def decode(payload: bytes, relations: dict[int, Relation]) -> Decoded:
    """One pgoutput message; ``relations`` (filled from ``R`` messages) names row columns.

    None for messages the listener has no use for (origin, type).
    """
    reader = _Reader(bytes(payload), 1)
    kind = payload[:1]
    if kind == b"B":
        lsn, committed, xid = reader.take("!QqI")
        return Begin(lsn, PG_EPOCH + timedelta(microseconds=committed), xid)
    if kind == b"C":
        _flags, commit_lsn, end_lsn, committed = reader.take("!BQQq")
        return Commit(commit_lsn, end_lsn, PG_EPOCH + timedelta(microseconds=committed))
    if kind == b"R":
        relid = reader.number("!I")
        schema, table = reader.string(), reader.string()
        reader.number("!B")  # replica identity setting
        columns = []
        for _ in range(reader.number("!H")):
            reader.number("!B")  # flags (part of the key)
            columns.append(reader.string())
            reader.take("!Ii")  # type oid, modifier
        return Relation(relid, schema, table, tuple(columns))
    if kind in (b"I", b"U", b"D"):
        return _row_change(kind, reader, relations)
    if kind == b"T":
        count = reader.number("!I")
        reader.number("!B")  # options: cascade, restart identity
        return Truncate(reader.take(f"!{count}I"))
    if kind == b"M":
        flags = reader.number("!B")
        reader.number("!Q")  # the message's LSN
        prefix = reader.string()
        return Message(bool(flags & 1), prefix, reader.raw(reader.number("!I")))
    if kind in (b"O", b"Y"):
        return None
    raise ProtocolError(f"unknown pgoutput message {kind!r}")


def _row_change(kind: bytes, reader: _Reader, relations: dict[int, Relation]) -> RowChange:
    relid = reader.number("!I")
    relation = relations.get(relid)
    if relation is None:
        raise ProtocolError(f"row change for relation {relid} before its description")
    columns = relation.columns
    if kind == b"I":
        reader.raw(1)  # "N"
        return RowChange("insert", relid, None, _tuple(reader, columns))
    if kind == b"D":
        reader.raw(1)  # "K" (key) or "O" (old row)
        return RowChange("delete", relid, _tuple(reader, columns), None)
    marker = reader.raw(1)
    old = None
    if marker in (b"K", b"O"):
        old = _tuple(reader, columns)
        marker = reader.raw(1)
    if marker != b"N":
        raise ProtocolError(f"update without a new row ({marker!r})")
    return RowChange("update", relid, old, _tuple(reader, columns))
