"""Histories: what the clients of a run did, one `Op` per request, and the JSON-lines file that
holds them. The checks read nothing else.

One line of the file is one JSON object. Completed-op records carry the whole request:

    {"process": 3, "session": 81, "kind": "write", "key": "/r/0", "status": "ok",
     "start": 1.25, "end": 1.31, "value": "3-17", "version": 5, "zxid": 4294967302}

Raw pairs are accepted too: a record with `"status": "invoke"` opens a request of its process and
the next ok/fail/info record of the same process and kind completes it (each may give `time`
instead of `start`/`end`). An invoke that is never completed has an unknown outcome.

Fields (all but process, kind, status and start may be left out):

    process           int    the client thread; its ops are in program order by start
    session           int    the ZooKeeper session the op ran in
    kind              str    one of `Kind`
    key               str    the znode path ("" for session ops)
    status            str    ok | fail (definitely had no effect) | info (outcome unknown)
    start, end        float  seconds; an info op ends at +inf (null in the file)
    value             str    data written (write, cas, create*), or data read (read)
    version           int    read: the version read; write, cas, create: the version after it
    expected_version  int    cas: the version it required
    zxid              int    a change: its txn's zxid; a read: the zxid of the state that served it
    mzxid             int    read, exists: the zxid of the txn that last changed the znode
    path              str    create_seq, create_ephemeral: the name the server created
    exists            bool   exists: whether the znode was there
    owner             int    read, exists: the ephemeralOwner session (0 when not ephemeral)
    children          [str]  read_children: the names listed
    watch             bool   read, exists, read_children: the request left a watch
    sync              bool   read, exists, read_children: a sync(key) went just before, so the
                             read is linearizable (plain ZooKeeper reads may be stale)
    event             str    watch_event: the event type, e.g. "NodeDataChanged"
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

INF = math.inf


class HistoryError(ValueError):
    """A history that cannot be read: names the file and line, the value and the rule."""


class Status(StrEnum):
    """How an op ended: it took effect, it definitely did not, or nobody knows."""

    OK = "ok"
    FAIL = "fail"
    UNKNOWN = "info"


class Kind(StrEnum):
    """What an op asked the service to do."""

    READ = "read"  # getData
    WRITE = "write"  # setData with no expected version
    CAS = "cas"  # setData with an expected version
    CREATE = "create"  # a persistent znode: the register's first value, version 0
    CREATE_SEQ = "create_seq"  # a sequential znode; key is the requested prefix
    CREATE_EPHEMERAL = "create_ephemeral"
    EXISTS = "exists"
    READ_CHILDREN = "read_children"  # getChildren; key is the parent
    WATCH_EVENT = "watch_event"  # a watch event delivered to the client
    SESSION_EXPIRED = "session_expired"  # the client learnt that its session expired
    CLOSE_SESSION = "close_session"


READ_KINDS = frozenset({Kind.READ, Kind.EXISTS, Kind.READ_CHILDREN})
REGISTER_KINDS = frozenset({Kind.READ, Kind.WRITE, Kind.CAS, Kind.CREATE})
CHANGE_KINDS = frozenset(
    {Kind.WRITE, Kind.CAS, Kind.CREATE, Kind.CREATE_SEQ, Kind.CREATE_EPHEMERAL, Kind.CLOSE_SESSION}
)
SESSION_END_KINDS = frozenset({Kind.SESSION_EXPIRED, Kind.CLOSE_SESSION})

# Fields an op of this kind needs whatever its outcome (its arguments) ...
_ARGUMENTS: dict[Kind, tuple[str, ...]] = {
    Kind.WRITE: ("value",),
    Kind.CAS: ("value", "expected_version"),
    Kind.CREATE_EPHEMERAL: ("session",),
    Kind.SESSION_EXPIRED: ("session",),
    Kind.CLOSE_SESSION: ("session",),
}
# ... and the results an ok op of this kind must carry.
_RESULTS: dict[Kind, tuple[str, ...]] = {
    Kind.READ: ("value",),
    Kind.CREATE_SEQ: ("path",),
    Kind.EXISTS: ("exists",),
    Kind.READ_CHILDREN: ("children",),
}


@dataclass(frozen=True, slots=True)
class Op:
    """One request a client made, the real-time interval it was outstanding, and its outcome.

    `index` is the op's position in its history; `load` and `number` set it.
    """

    process: int
    kind: Kind
    key: str
    status: Status
    start: float
    end: float = INF
    session: int | None = None
    value: str | None = None
    version: int | None = None
    expected_version: int | None = None
    zxid: int | None = None
    mzxid: int | None = None
    path: str | None = None
    exists: bool | None = None
    owner: int | None = None
    children: tuple[str, ...] | None = None
    watch: bool = False
    sync: bool = False
    event: str | None = None
    index: int = -1

    def __post_init__(self) -> None:
        for name, value in _typed_fields(self):
            _check_type(name, value)
        if not math.isfinite(self.start):
            raise HistoryError(f"start must be a finite number of seconds: {self.start!r}")
        if self.status is Status.UNKNOWN:
            object.__setattr__(self, "end", INF)  # it may take effect at any time after its start
        elif not self.end < INF:
            raise HistoryError(
                f"an op with status {self.status.value!r} needs an end; only info ops never end"
            )
        elif not self.start <= self.end:
            raise HistoryError(f"an op must not end before it starts: start={self.start}, end={self.end}")
        for name in _ARGUMENTS.get(self.kind, ()):
            if getattr(self, name) is None:
                raise HistoryError(f"a {self.kind} op needs {name!r}")
        if self.status is Status.OK:
            for name in _RESULTS.get(self.kind, ()):
                if getattr(self, name) is None:
                    raise HistoryError(f"an ok {self.kind} op needs its result {name!r}")
        if self.kind is Kind.WATCH_EVENT and self.status is not Status.OK:
            raise HistoryError(f"a watch_event is something that happened, its status is ok: {self.status!r}")

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    @property
    def unknown(self) -> bool:
        return self.status is Status.UNKNOWN

    @property
    def client(self) -> tuple[int, int | None]:
        """Whose guarantees these are: ZooKeeper promises order within one session of one client."""
        return (self.process, self.session)

    @property
    def created(self) -> str:
        """The znode a create made: the name the server returned, else the path asked for."""
        return self.path if self.path is not None else self.key


_TYPES: dict[str, tuple[type, ...]] = {
    "process": (int,),
    "kind": (Kind,),
    "status": (Status,),
    "key": (str,),
    "start": (int, float),
    "end": (int, float),
    "session": (int, type(None)),
    "value": (str, type(None)),
    "version": (int, type(None)),
    "expected_version": (int, type(None)),
    "zxid": (int, type(None)),
    "mzxid": (int, type(None)),
    "path": (str, type(None)),
    "exists": (bool, type(None)),
    "owner": (int, type(None)),
    "children": (tuple, type(None)),
    "watch": (bool,),
    "sync": (bool,),
    "event": (str, type(None)),
    "index": (int,),
}
_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(Op))


def _typed_fields(op: Op) -> Iterable[tuple[str, object]]:
    return ((name, getattr(op, name)) for name in _TYPES)


def _check_type(name: str, value: object) -> None:
    allowed = _TYPES[name]
    is_bool = isinstance(value, bool)
    if not isinstance(value, allowed) or (is_bool and bool not in allowed):
        names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
        raise HistoryError(f"{name} must be {names}: {value!r}")
    if name == "children" and value is not None:
        assert isinstance(value, tuple)
        if not all(isinstance(child, str) for child in value):
            raise HistoryError(f"children must be a list of names: {list(value)!r}")


def op_from_record(record: Mapping[str, Any]) -> Op:
    """An `Op` from one completed-op record (a JSON object); raises HistoryError naming the field."""
    if not isinstance(record, Mapping):
        raise HistoryError(f"a record must be a JSON object: {record!r}")
    fields = dict(record)
    if "kind" not in fields and "f" in fields:
        fields["kind"] = fields.pop("f")  # the Jepsen spelling
    unknown = sorted(set(fields) - set(_FIELD_NAMES) - {"time", "error"})
    if unknown:
        raise HistoryError(f"unknown field {unknown[0]!r} (fields are {', '.join(_FIELD_NAMES[:-1])})")
    for name in ("process", "kind", "status", "start"):
        if name not in fields:
            raise HistoryError(f"a record needs {name!r}")
    fields.pop("time", None)
    fields.pop("error", None)
    try:
        fields["kind"] = Kind(fields["kind"])
    except ValueError:
        raise HistoryError(f"kind must be one of {', '.join(Kind)}: {fields['kind']!r}") from None
    try:
        fields["status"] = Status(fields["status"])
    except ValueError:
        raise HistoryError(f"status must be ok, fail or info: {fields['status']!r}") from None
    fields.setdefault("key", "")
    if fields.get("end") is None:
        fields["end"] = INF
    if isinstance(fields.get("children"), list):
        fields["children"] = tuple(fields["children"])
    return Op(**fields)


def op_to_record(op: Op) -> dict[str, Any]:
    """The JSON object for an op: fields left at their defaults are left out."""
    record: dict[str, Any] = {}
    for field in dataclasses.fields(Op):
        value = getattr(op, field.name)
        if field.name == "index" or (field.name != "key" and value == field.default):
            continue
        if isinstance(value, StrEnum):
            value = value.value
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, float) and math.isinf(value):
            value = None
        record[field.name] = value
    return record


def number(ops: Iterable[Op]) -> list[Op]:
    """The ops with `index` set to their position, so counterexamples can name them."""
    out = []
    for i, op in enumerate(ops):
        if not isinstance(op, Op):
            raise HistoryError(f"a history holds Op records: {op!r}")
        out.append(op if op.index == i else dataclasses.replace(op, index=i))
    return out


def from_pairs(records: Iterable[Mapping[str, Any]]) -> list[Op]:
    """Completed ops from records that may be invoke/complete pairs; records already complete pass.

    An invoke's fields are the arguments and its time the start; the completion adds the results
    and the end. Ops come out in the order they were invoked; errors name the record's number.
    """
    return _from_pairs(enumerate(records, 1), "record ")


def _from_pairs(records: Iterable[tuple[int, Mapping[str, Any]]], where: str) -> list[Op]:
    slots: list[tuple[int, dict[str, Any]]] = []
    pending: dict[tuple[Any, Any], list[int]] = {}  # (process, kind) -> open invokes, oldest first
    for n, raw in records:
        if not isinstance(raw, Mapping):
            raise HistoryError(f"{where}{n}: a record must be a JSON object: {raw!r}")
        record = dict(raw)
        who = (record.get("process"), record.get("kind", record.get("f")))
        if record.get("status") == "invoke":
            record["start"] = record.pop("time", record.get("start"))
            record["status"] = Status.UNKNOWN.value
            pending.setdefault(who, []).append(len(slots))
            slots.append((n, record))
        elif pending.get(who):
            opened = slots[pending[who].pop(0)][1]
            opened.update({k: v for k, v in record.items() if k not in ("start", "time")})
            opened["end"] = record.get("time", record.get("end"))
        else:
            slots.append((n, record))
    ops = []
    for n, record in slots:
        try:
            ops.append(op_from_record(record))
        except (HistoryError, TypeError) as e:
            raise HistoryError(f"{where}{n}: {e}") from None
    return number(ops)


def load(path: str | Path) -> list[Op]:
    """Read a JSON-lines history; raises HistoryError naming the file and line of a bad record."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise HistoryError(f"{path}: cannot read the history: {e}") from None
    records: list[tuple[int, dict[str, Any]]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise HistoryError(f"{path}:{lineno}: not JSON: {e.msg} at column {e.colno}") from None
        if not isinstance(record, dict):
            raise HistoryError(f"{path}:{lineno}: a record must be a JSON object: {line.strip()[:80]}")
        records.append((lineno, record))
    if any(record.get("status") == "invoke" for _, record in records):
        return _from_pairs(records, f"{path}:")
    ops = []
    for lineno, record in records:
        try:
            ops.append(op_from_record(record))
        except (HistoryError, TypeError) as e:
            raise HistoryError(f"{path}:{lineno}: {e}") from None
    return number(ops)


def save(history: Sequence[Op], path: str | Path) -> None:
    """Write a history as JSON lines, one completed op per line."""
    with Path(path).open("w", encoding="utf-8") as f:
        for op in history:
            f.write(json.dumps(op_to_record(op), allow_nan=False) + "\n")
