"""ZooKeeper's records, opcodes and txn types: one codec for the wire, the log and snapshots.

Layouts follow zookeeper.jute field for field. Multi requests and replies, whose layout is a
sequence of MultiHeader-tagged records rather than a plain record, are coded by hand below.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zkcore import limits
from zkcore._errors import Code, RemoteError
from zkcore._jute import (
    VECTOR_READERS,
    Bool,
    Buffer,
    Int,
    JuteRecord,
    Long,
    Reader,
    UString,
    Vector,
    Writer,
    as_bytes,
    expect_end,
    read_at_from,
    record,
)

__all__ = ["JuteRecord"]  # the rest is public by name; JuteRecord is re-exported on purpose


class OpCode(enum.IntEnum):
    NOTIFICATION = 0
    CREATE = 1
    DELETE = 2
    EXISTS = 3
    GET_DATA = 4
    SET_DATA = 5
    GET_ACL = 6
    SET_ACL = 7
    GET_CHILDREN = 8
    SYNC = 9
    PING = 11
    GET_CHILDREN2 = 12
    CHECK = 13
    MULTI = 14
    CREATE2 = 15
    RECONFIG = 16
    CHECK_WATCHES = 17
    REMOVE_WATCHES = 18
    CREATE_CONTAINER = 19
    DELETE_CONTAINER = 20
    CREATE_TTL = 21
    MULTI_READ = 22
    AUTH = 100
    SET_WATCHES = 101
    SASL = 102
    GET_EPHEMERALS = 103
    GET_ALL_CHILDREN_NUMBER = 104
    SET_WATCHES2 = 105
    ADD_WATCH = 106
    WHO_AM_I = 107
    CREATE_SESSION = -10
    CLOSE_SESSION = -11
    ERROR = -1


class Perms(enum.IntFlag):
    READ = 1
    WRITE = 2
    CREATE = 4
    DELETE = 8
    ADMIN = 16
    ALL = 31


class CreateMode(enum.IntEnum):
    PERSISTENT = 0
    EPHEMERAL = 1
    PERSISTENT_SEQUENTIAL = 2
    EPHEMERAL_SEQUENTIAL = 3
    CONTAINER = 4
    PERSISTENT_WITH_TTL = 5
    PERSISTENT_SEQUENTIAL_WITH_TTL = 6

    # Sets of plain ints: an enum member costs a lookup each time, and prep asks each create.
    @property
    def ephemeral(self) -> bool:
        return self in _EPHEMERAL_MODES

    @property
    def sequential(self) -> bool:
        return self in _SEQUENTIAL_MODES

    @property
    def ttl(self) -> bool:
        return self in _TTL_MODES


_EPHEMERAL_MODES = frozenset({int(CreateMode.EPHEMERAL), int(CreateMode.EPHEMERAL_SEQUENTIAL)})
_SEQUENTIAL_MODES = frozenset({int(m) for m in CreateMode if "SEQUENTIAL" in m.name})
_TTL_MODES = frozenset({int(m) for m in CreateMode if m.name.endswith("_WITH_TTL")})
# CreateMode(flags) without enum's call (a create's flags are looked up for each create).
CREATE_MODES: dict[int, CreateMode] = {int(mode): mode for mode in CreateMode}


# Special xids (RequestHeader.xid / ReplyHeader.xid).
XID_NOTIFICATION = -1
XID_PING = -2
XID_AUTH = -4
XID_SET_WATCHES = -8

# ephemeralOwner values that are not sessions (ZooKeeper's EphemeralType).
CONTAINER_EPHEMERAL_OWNER = -(1 << 63)
TTL_EPHEMERAL_MASK = -(1 << 56)  # 0xff00000000000000 as a signed long


def ttl_to_ephemeral_owner(ttl_ms: int) -> int:
    assert 0 < ttl_ms <= limits.ttl_ms_max
    return TTL_EPHEMERAL_MASK | ttl_ms


# --- data -------------------------------------------------------------------------------------


@record
@dataclass(frozen=True, slots=True)
class Id(JuteRecord):
    scheme: UString
    id: UString


@record
@dataclass(frozen=True, slots=True)
class ACL(JuteRecord):
    perms: Int
    id: Id


_BE_INT = struct.Struct(">i")


_VECTORS_MAX = 4096  # distinct vectors a cache holds
_VECTOR_CACHED_BYTES_MAX = 4096  # an ACL of up to ~100 digest entries (acl_entries_max is 64)
_VECTORS_BYTES_MAX = 4 * 1024 * 1024  # what a cache may hold in all: it never pins much


def _cached_vectors(
    kind: type[JuteRecord], ints: int, entries_max: int, what: str
) -> Callable[[bytes, int, int], tuple[tuple[Any, ...], int]]:
    """A reader of vectors of `kind` that decodes each distinct span of bytes once: nearly every
    node carries one of a few ACL lists, and a follower's clients forward their writes with one
    of a few identity lists, so finding a vector's span and looking it up beats decoding it again
    (and the one read last, most often the same, is taken without finding the span). Each entry
    is `ints` ints, then two ustrings; at most `entries_max` of them (else RemoteError)."""
    vectors: dict[bytes, tuple[Any, ...]] = {}
    skip = 4 * ints
    cached_bytes = 0
    last: tuple[bytes, tuple[Any, ...]] | None = None  # the span and vector of the last hit

    def read(buf: bytes, start: int, end: int) -> tuple[tuple[Any, ...], int]:
        nonlocal last, cached_bytes
        if last is not None and buf.startswith(last[0], start, end):
            return last[1], start + len(last[0])
        pos = start + 4
        if pos <= end:
            count = _BE_INT.unpack_from(buf, start)[0]
            if count == 0:  # an empty list: no identity (or an ACL about to be refused)
                return (), pos
            for _ in range(count if 0 < count <= entries_max else 0):
                pos += skip
                for _field in (0, 1):  # two ustrings
                    if pos + 4 > end:
                        break
                    pos += 4 + max(0, _BE_INT.unpack_from(buf, pos)[0])
            if 0 < count <= entries_max and pos <= end:
                span = buf[start:pos]
                cached = vectors.get(span)
                if cached is not None:
                    last = span, cached
                    return cached, pos
        r = Reader(buf, start, end)
        count = r.vector_length()
        if count > entries_max:
            raise RemoteError(f"{what} of {count} entries is over its limit of {entries_max}")
        vector = tuple(kind.read(r) for _ in range(count))
        size = r.pos - start
        if (
            len(vectors) < _VECTORS_MAX
            and size <= _VECTOR_CACHED_BYTES_MAX
            and cached_bytes + size <= _VECTORS_BYTES_MAX
        ):
            vectors[buf[start : r.pos]] = vector
            cached_bytes += size
        return vector, r.pos

    return read


VECTOR_READERS[ACL] = _cached_vectors(ACL, 1, limits.acl_entries_max, "an ACL (acl_entries_max)")
# A follower's forwarded writes carry their session's identities (its ip, then digests).
VECTOR_READERS[Id] = _cached_vectors(Id, 0, limits.auth_ids_max, "a list of identities (auth_ids_max)")


@record
@dataclass(frozen=True, slots=True)
class Stat(JuteRecord):
    czxid: Long
    mzxid: Long
    ctime: Long
    mtime: Long
    version: Int
    cversion: Int
    aversion: Int
    ephemeral_owner: Long
    data_length: Int
    num_children: Int
    pzxid: Long


STAT_BYTES = 68
OPEN_ACL_UNSAFE = (ACL(Perms.ALL, Id("world", "anyone")),)
READ_ACL_UNSAFE = (ACL(Perms.READ, Id("world", "anyone")),)
CREATOR_ALL_ACL = (ACL(Perms.ALL, Id("auth", "")),)


# --- headers ----------------------------------------------------------------------------------


@record
@dataclass(frozen=True, slots=True)
class RequestHeader(JuteRecord):
    xid: Int
    type: Int


@record
@dataclass(frozen=True, slots=True)
class ReplyHeader(JuteRecord):
    xid: Int
    zxid: Long
    err: Int


@record
@dataclass(frozen=True, slots=True)
class MultiHeader(JuteRecord):
    type: Int
    done: Bool
    err: Int


@record
@dataclass(frozen=True, slots=True)
class ConnectRequest(JuteRecord):
    protocol_version: Int
    last_zxid_seen: Long
    timeout_ms: Int
    session_id: Long
    passwd: Buffer
    read_only: Bool


@record
@dataclass(frozen=True, slots=True)
class ConnectResponse(JuteRecord):
    protocol_version: Int
    timeout_ms: Int
    session_id: Long
    passwd: Buffer
    read_only: Bool


@record
@dataclass(frozen=True, slots=True)
class WatcherEvent(JuteRecord):
    type: Int
    state: Int
    path: UString


# --- requests ---------------------------------------------------------------------------------


@record
@dataclass(frozen=True, slots=True)
class CreateRequest(JuteRecord):
    path: UString
    data: Buffer
    acl: Vector[ACL]
    flags: Int


@record
@dataclass(frozen=True, slots=True)
class CreateTTLRequest(JuteRecord):
    path: UString
    data: Buffer
    acl: Vector[ACL]
    flags: Int
    ttl: Long


@record
@dataclass(frozen=True, slots=True)
class DeleteRequest(JuteRecord):
    path: UString
    version: Int


@record
@dataclass(frozen=True, slots=True)
class SetDataRequest(JuteRecord):
    path: UString
    data: Buffer
    version: Int


@record
@dataclass(frozen=True, slots=True)
class CheckVersionRequest(JuteRecord):
    path: UString
    version: Int


@record
@dataclass(frozen=True, slots=True)
class SetACLRequest(JuteRecord):
    path: UString
    acl: Vector[ACL]
    version: Int


@record
@dataclass(frozen=True, slots=True)
class PathWatchRequest(JuteRecord):
    """exists, getData, getChildren and getChildren2 share this layout."""

    path: UString
    watch: Bool


@record
@dataclass(frozen=True, slots=True)
class PathRequest(JuteRecord):
    """sync, getACL, getAllChildrenNumber and getEphemerals share this layout."""

    path: UString


@record
@dataclass(frozen=True, slots=True)
class AuthPacket(JuteRecord):
    type: Int
    scheme: UString
    auth: Buffer


@record
@dataclass(frozen=True, slots=True)
class AddWatchRequest(JuteRecord):
    path: UString
    mode: Int


@record
@dataclass(frozen=True, slots=True)
class WatchTypeRequest(JuteRecord):
    """checkWatches and removeWatches."""

    path: UString
    type: Int


@record
@dataclass(frozen=True, slots=True)
class SetWatches(JuteRecord):
    """setWatches (101): the one-shot watches a reconnecting client still holds."""

    relative_zxid: Long
    data_watches: Vector[UString]
    exist_watches: Vector[UString]
    child_watches: Vector[UString]


@record
@dataclass(frozen=True, slots=True)
class SetWatches2(JuteRecord):
    relative_zxid: Long
    data_watches: Vector[UString]
    exist_watches: Vector[UString]
    child_watches: Vector[UString]
    persistent_watches: Vector[UString]
    persistent_recursive_watches: Vector[UString]


# --- responses --------------------------------------------------------------------------------


@record
@dataclass(frozen=True, slots=True)
class CreateResponse(JuteRecord):
    path: UString


@record
@dataclass(frozen=True, slots=True)
class Create2Response(JuteRecord):
    path: UString
    stat: Stat


@record
@dataclass(frozen=True, slots=True)
class StatResponse(JuteRecord):
    """exists, setData and setACL replies."""

    stat: Stat


@record
@dataclass(frozen=True, slots=True)
class GetDataResponse(JuteRecord):
    data: Buffer
    stat: Stat


@record
@dataclass(frozen=True, slots=True)
class GetChildrenResponse(JuteRecord):
    children: Vector[UString]


@record
@dataclass(frozen=True, slots=True)
class GetChildren2Response(JuteRecord):
    children: Vector[UString]
    stat: Stat


@record
@dataclass(frozen=True, slots=True)
class GetACLResponse(JuteRecord):
    acl: Vector[ACL]
    stat: Stat


@record
@dataclass(frozen=True, slots=True)
class IntResponse(JuteRecord):
    """getAllChildrenNumber's totalNumber and ErrorResponse's err."""

    value: Int


@record
@dataclass(frozen=True, slots=True)
class PathsResponse(JuteRecord):
    """getEphemerals."""

    paths: Vector[UString]


@record
@dataclass(frozen=True, slots=True)
class ClientInfo(JuteRecord):
    """One identity of a connection, as whoAmI tells it: its scheme and its user (a digest's
    user name, an ip's address)."""

    auth_scheme: UString
    user: UString


@record
@dataclass(frozen=True, slots=True)
class WhoAmIResponse(JuteRecord):
    client_info: Vector[ClientInfo]


# --- txns -------------------------------------------------------------------------------------


@record
@dataclass(frozen=True, slots=True)
class TxnHeader(JuteRecord):
    client_id: Long
    cxid: Int
    zxid: Long
    time: Long
    type: Int


@record
@dataclass(frozen=True, slots=True)
class CreateTxn(JuteRecord):
    path: UString
    data: Buffer
    acl: Vector[ACL]
    ephemeral: Bool
    parent_cversion: Int


@record
@dataclass(frozen=True, slots=True)
class CreateTTLTxn(JuteRecord):
    path: UString
    data: Buffer
    acl: Vector[ACL]
    parent_cversion: Int
    ttl: Long


@record
@dataclass(frozen=True, slots=True)
class CreateContainerTxn(JuteRecord):
    path: UString
    data: Buffer
    acl: Vector[ACL]
    parent_cversion: Int


@record
@dataclass(frozen=True, slots=True)
class DeleteTxn(JuteRecord):
    path: UString


@record
@dataclass(frozen=True, slots=True)
class SetDataTxn(JuteRecord):
    path: UString
    data: Buffer
    version: Int


@record
@dataclass(frozen=True, slots=True)
class CheckVersionTxn(JuteRecord):
    path: UString
    version: Int


@record
@dataclass(frozen=True, slots=True)
class SetACLTxn(JuteRecord):
    path: UString
    acl: Vector[ACL]
    version: Int


@record
@dataclass(frozen=True, slots=True)
class CreateSessionTxn(JuteRecord):
    timeout_ms: Int


@record
@dataclass(frozen=True, slots=True)
class CloseSessionTxn(JuteRecord):
    paths_to_delete: Vector[UString]


@record
@dataclass(frozen=True, slots=True)
class ErrorTxn(JuteRecord):
    err: Int


@record
@dataclass(frozen=True, slots=True)
class SubTxn(JuteRecord):
    """One op of a MultiTxn: its type and its encoded txn body."""

    type: Int
    data: Buffer


@record
@dataclass(frozen=True, slots=True)
class MultiTxn(JuteRecord):
    txns: Vector[SubTxn]


TxnBody = (
    CreateTxn
    | CreateTTLTxn
    | CreateContainerTxn
    | DeleteTxn
    | SetDataTxn
    | CheckVersionTxn
    | SetACLTxn
    | CreateSessionTxn
    | CloseSessionTxn
    | ErrorTxn
    | MultiTxn
    | None
)

TXN_TYPES: dict[int, type[JuteRecord]] = {
    OpCode.CREATE: CreateTxn,
    OpCode.CREATE2: CreateTxn,
    OpCode.CREATE_TTL: CreateTTLTxn,
    OpCode.CREATE_CONTAINER: CreateContainerTxn,
    OpCode.DELETE: DeleteTxn,
    OpCode.DELETE_CONTAINER: DeleteTxn,
    OpCode.SET_DATA: SetDataTxn,
    OpCode.CHECK: CheckVersionTxn,
    OpCode.SET_ACL: SetACLTxn,
    OpCode.CREATE_SESSION: CreateSessionTxn,
    OpCode.CLOSE_SESSION: CloseSessionTxn,
    OpCode.ERROR: ErrorTxn,
    OpCode.MULTI: MultiTxn,
}


@dataclass(slots=True)
class Txn:
    """A txn as it is logged and replicated: TxnHeader then the body for its type. Not frozen:
    one is built per write (see ClientRequest)."""

    header: TxnHeader
    body: TxnBody

    @property
    def zxid(self) -> int:
        return self.header.zxid

    def encode(self) -> bytes:
        w = Writer()
        self.header.write(w)
        if self.body is not None:
            self.body.write(w)
        return w.bytes()

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> Txn:
        buf = as_bytes(data)
        end = len(buf)
        header, pos = TxnHeader.read_at(buf, 0, end)
        kind = TXN_TYPES.get(header.type)
        if kind is None:
            # closeSession from older writers may carry no body; anything else is garbage.
            raise RemoteError(f"unknown txn type {header.type} at zxid {header.zxid:#x}")
        body = None
        if header.type != OpCode.CLOSE_SESSION or pos != end:
            body, pos = kind.read_at(buf, pos, end)
        expect_end(pos, end, "txn")
        return cls(header, body)  # type: ignore[arg-type]


_TXN_HEADER = struct.Struct(">qiqqi")  # TxnHeader: client_id, cxid, zxid, time, type
SET_DATA_OPCODE = int(OpCode.SET_DATA)  # as an int, for the write path (see CODE_OK)


def encode_set_data_txn(
    client_id: int, cxid: int, zxid: int, time: int, request: bytes, version: int
) -> bytes | None:
    """Txn(TxnHeader(client_id, cxid, zxid, time, SET_DATA), SetDataTxn(path, data, version))
    .encode(), from the bytes of the setData request it was prepped from (exactly the
    SetDataRequest(path, data, expected version) that decoded to its path and data): the two
    records share their layout up to the last int. None when the request's path or data is the
    null buffer (length -1), which the txn writes empty."""
    (path_length,) = _BE_INT.unpack_from(request, 0)
    if path_length < 0 or _BE_INT.unpack_from(request, 4 + path_length)[0] < 0:
        return None
    return (
        _TXN_HEADER.pack(client_id, cxid, zxid, time, SET_DATA_OPCODE) + request[:-4] + _BE_INT.pack(version)
    )


def decode_sub_txn(sub: SubTxn) -> TxnBody:
    kind = TXN_TYPES.get(sub.type)
    if kind is None or sub.type in (OpCode.MULTI, OpCode.CREATE_SESSION, OpCode.CLOSE_SESSION):
        raise RemoteError(f"txn type {sub.type} cannot appear inside a multi")
    return kind.decode(sub.data)  # type: ignore[return-value]


# --- requests by opcode -----------------------------------------------------------------------

REQUEST_TYPES: dict[int, type[JuteRecord]] = {
    OpCode.CREATE: CreateRequest,
    OpCode.CREATE2: CreateRequest,
    OpCode.CREATE_CONTAINER: CreateRequest,
    OpCode.CREATE_TTL: CreateTTLRequest,
    OpCode.DELETE: DeleteRequest,
    OpCode.DELETE_CONTAINER: PathRequest,
    OpCode.EXISTS: PathWatchRequest,
    OpCode.GET_DATA: PathWatchRequest,
    OpCode.SET_DATA: SetDataRequest,
    OpCode.GET_ACL: PathRequest,
    OpCode.SET_ACL: SetACLRequest,
    OpCode.GET_CHILDREN: PathWatchRequest,
    OpCode.GET_CHILDREN2: PathWatchRequest,
    OpCode.SYNC: PathRequest,
    OpCode.CHECK: CheckVersionRequest,
    OpCode.GET_ALL_CHILDREN_NUMBER: PathRequest,
    OpCode.GET_EPHEMERALS: PathRequest,
    OpCode.ADD_WATCH: AddWatchRequest,
    OpCode.CHECK_WATCHES: WatchTypeRequest,
    OpCode.REMOVE_WATCHES: WatchTypeRequest,
    OpCode.SET_WATCHES: SetWatches,
    OpCode.SET_WATCHES2: SetWatches2,
    OpCode.AUTH: AuthPacket,
}

# Ops allowed inside multi (writes) and multiRead (reads).
MULTI_WRITE_OPS = frozenset(
    {
        OpCode.CREATE,
        OpCode.CREATE2,
        OpCode.CREATE_TTL,
        OpCode.CREATE_CONTAINER,
        OpCode.DELETE,
        OpCode.SET_DATA,
        OpCode.CHECK,
    }
)
MULTI_READ_OPS = frozenset({OpCode.GET_CHILDREN, OpCode.GET_DATA})

MultiOp = tuple[int, JuteRecord]


def encode_multi_request(ops: list[MultiOp] | tuple[MultiOp, ...]) -> bytes:
    w = Writer()
    for opcode, req in ops:
        MultiHeader(opcode, False, -1).write(w)
        req.write(w)
    MultiHeader(-1, True, -1).write(w)
    return w.bytes()


def read_multi_request(r: Reader) -> list[MultiOp]:
    ops: list[MultiOp] = []
    while True:
        h = MultiHeader.read(r)
        if h.done:
            return ops
        if h.type not in MULTI_WRITE_OPS and h.type not in MULTI_READ_OPS:
            raise RemoteError(f"opcode {h.type} is not allowed inside multi")
        if len(ops) >= limits.multi_ops_max:
            raise RemoteError(f"multi has more than multi_ops_max={limits.multi_ops_max} ops")
        ops.append((h.type, REQUEST_TYPES[h.type].read(r)))


read_multi_request_at = read_at_from(read_multi_request)  # the form the request decoders use


@dataclass(frozen=True, slots=True)
class OpResult:
    """One result of a multi: `type` is the op's opcode, or OpCode.ERROR with `err` set."""

    type: int
    err: int = 0
    body: JuteRecord | None = None


_MULTI_RESULT_BODIES: dict[int, type[JuteRecord] | None] = {
    OpCode.CREATE: CreateResponse,
    OpCode.CREATE2: Create2Response,
    OpCode.DELETE: None,
    OpCode.CHECK: None,
    OpCode.SET_DATA: StatResponse,
    OpCode.GET_CHILDREN: GetChildrenResponse,
    OpCode.GET_DATA: GetDataResponse,
}


def encode_multi_response(results: list[OpResult] | tuple[OpResult, ...]) -> bytes:
    w = Writer()
    for res in results:
        MultiHeader(res.type, False, res.err).write(w)
        if res.type == OpCode.ERROR:
            w.int(res.err)
        elif res.body is not None:
            res.body.write(w)
    MultiHeader(-1, True, -1).write(w)
    return w.bytes()


def read_multi_response(r: Reader) -> list[OpResult]:
    results: list[OpResult] = []
    while True:
        h = MultiHeader.read(r)
        if h.done:
            return results
        if h.type == OpCode.ERROR:
            results.append(OpResult(OpCode.ERROR, r.int()))
            continue
        if h.type not in _MULTI_RESULT_BODIES:
            raise RemoteError(f"opcode {h.type} cannot appear in a multi response")
        kind = _MULTI_RESULT_BODIES[h.type]
        results.append(OpResult(h.type, 0, kind.read(r) if kind is not None else None))


def error_result(code: Code | int) -> OpResult:
    return OpResult(OpCode.ERROR, int(code))
