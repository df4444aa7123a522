"""A client's requests and the server's replies, as bytes: decode a request frame, answer a read
from the tree (the slow path, with ACL checks), and turn an applied txn into the write's reply.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from zkcore import limits
from zkcore._acl import client_infos
from zkcore._datatree import ApplyResult, DataTree
from zkcore._errors import CODE_OK, Code, KeeperError, NoNodeError, RemoteError
from zkcore._jute import Buffer, Int, Long, Vector, Writer, as_bytes, expect_end, record
from zkcore._records import (
    MULTI_READ_OPS,
    REQUEST_TYPES,
    Create2Response,
    CreateResponse,
    CreateSessionTxn,
    GetACLResponse,
    GetChildren2Response,
    GetChildrenResponse,
    GetDataResponse,
    Id,
    IntResponse,
    JuteRecord,
    OpCode,
    OpResult,
    PathRequest,
    PathsResponse,
    RequestHeader,
    StatResponse,
    WhoAmIResponse,
    encode_multi_response,
    error_result,
    read_multi_request_at,
)

# Writes go through prep and Zab; everything else is answered by the server the client is on.
WRITE_OPS = frozenset(
    {
        OpCode.CREATE,
        OpCode.CREATE2,
        OpCode.CREATE_TTL,
        OpCode.CREATE_CONTAINER,
        OpCode.DELETE,
        OpCode.DELETE_CONTAINER,
        OpCode.SET_DATA,
        OpCode.SET_ACL,
        OpCode.CHECK,
        OpCode.MULTI,
        OpCode.CREATE_SESSION,
        OpCode.CLOSE_SESSION,
    }
)


class UnknownOpcodeError(RemoteError):
    """A request of a type this server does not implement: ZooKeeper answers Unimplemented and
    closes the connection."""

    code = Code.UNIMPLEMENTED


@dataclass(slots=True)
class ClientRequest:
    """One decoded request frame: its header and its body record (a list of ops for multi).
    Not frozen, like Request and Txn: one is built per request, and a frozen dataclass's
    __init__ costs 2-4x a plain one's (records stay frozen: ACLs and Ids are hashed)."""

    xid: int
    opcode: int
    body: Any


_REQUEST_HEADER = struct.Struct(">ii")  # RequestHeader: xid, type
_MULTI_OPS = frozenset({int(OpCode.MULTI), int(OpCode.MULTI_READ)})
_BODILESS_OPS = frozenset({int(OpCode.CLOSE_SESSION), int(OpCode.PING), int(OpCode.WHO_AM_I)})
# Refused whatever their body says, as ZooKeeper refuses them before it reads one: reconfig
# (ReconfigDisabled, this server has no dynamic reconfiguration).
_BODY_UNREAD_OPS = frozenset({int(OpCode.RECONFIG)})


def decode_request(frame: bytes | bytearray | memoryview) -> ClientRequest:
    """Decode RequestHeader + body; raises RemoteError for anything malformed or unknown."""
    buf = as_bytes(frame)
    end = len(buf)
    if end > limits.frame_bytes_max:
        raise RemoteError(f"request of {end} bytes exceeds frame_bytes_max {limits.frame_bytes_max}")
    if end < 8:
        RequestHeader.read_at(buf, 0, end)  # raises, saying what is missing
    xid, opcode = _REQUEST_HEADER.unpack_from(buf)
    pos = 8
    body: Any = None
    if opcode in _MULTI_OPS:
        body, pos = read_multi_request_at(buf, pos, end)
        if opcode == OpCode.MULTI_READ and any(op not in MULTI_READ_OPS for op, _ in body):
            raise RemoteError("multiRead may only hold getData and getChildren ops")
    elif opcode in _BODY_UNREAD_OPS:
        pos = end
    elif opcode not in _BODILESS_OPS:
        kind = REQUEST_TYPES.get(opcode)
        if kind is None:
            raise UnknownOpcodeError(f"unknown opcode {opcode}")
        body, pos = kind.read_at(buf, pos, end)
    expect_end(pos, end, "request opcode", opcode)
    return ClientRequest(xid, opcode, body)


@record
@dataclass(frozen=True, slots=True)
class ForwardedRequest(JuteRecord):
    """A write on its way to the leader: who sent it, with which identities, and its body bytes
    (the request frame after its RequestHeader). Zab's REQUEST message carries it."""

    session_id: Long
    xid: Int
    opcode: Int
    auth_ids: Vector[Id]
    body: Buffer


def forwarded_body(fwd: ForwardedRequest) -> Any:
    """The decoded body of a forwarded write, as prep takes it; raises RemoteError."""
    buf, opcode = fwd.body, fwd.opcode
    end, pos = len(buf), 0
    body: Any = None
    if opcode == OpCode.MULTI:
        body, pos = read_multi_request_at(buf, 0, end)
    elif opcode == OpCode.CREATE_SESSION:
        body, pos = CreateSessionTxn.read_at(buf, 0, end)
    elif opcode not in WRITE_OPS:
        raise RemoteError(f"opcode {opcode} is not a write")
    elif opcode != OpCode.CLOSE_SESSION:
        body, pos = REQUEST_TYPES[opcode].read_at(buf, 0, end)
    expect_end(pos, end, "forwarded opcode", opcode)
    return body


REPLY_HEADER = struct.Struct(">iqi")  # ReplyHeader: xid, zxid, err, packed as one (every write)
# What every write's reply is built from, as ints and sets rather than OpCode's members (see
# CODE_OK).
_MULTI = int(OpCode.MULTI)
_CREATE = int(OpCode.CREATE)
_STAT_REPLIES = frozenset({OpCode.SET_DATA, OpCode.SET_ACL})  # a StatResponse is its Stat alone
_CREATE2_REPLIES = frozenset({OpCode.CREATE2, OpCode.CREATE_TTL, OpCode.CREATE_CONTAINER})


def encode_reply(xid: int, zxid: int, err: int, body: JuteRecord | bytes | None = None) -> bytes:
    head = REPLY_HEADER.pack(xid, zxid, err)
    if err != CODE_OK or body is None:
        return head
    if isinstance(body, bytes):
        return head + body
    w = Writer()
    w.buf += head
    body.write(w)
    return w.bytes()


def write_reply_body(opcode: int, result: ApplyResult) -> tuple[int, JuteRecord | bytes | None]:
    """The error code and body a write's client gets once its txn is applied."""
    if opcode == _MULTI:
        assert result.multi is not None or result.err != CODE_OK
        if result.multi is None:
            return result.err, None
        return CODE_OK, encode_multi_response(result.multi)
    if result.err != CODE_OK:
        return result.err, None
    if opcode in _STAT_REPLIES:
        packed = result.stat_bytes()
        assert packed is not None
        return CODE_OK, packed
    if opcode == _CREATE:
        return CODE_OK, CreateResponse(result.path)
    if opcode in _CREATE2_REPLIES:
        stat = result.stat
        assert stat is not None
        return CODE_OK, Create2Response(result.path, stat)
    return CODE_OK, None


def read_reply_body(
    tree: DataTree, req: ClientRequest, auth_ids: tuple[Id, ...], session_id: int
) -> tuple[int, JuteRecord | bytes | None]:
    """Answer a read from the tree (the slow path): error code and reply body."""
    try:
        return Code.OK, _read(tree, req.opcode, req.body, auth_ids, session_id)
    except KeeperError as e:
        return int(e.code), None


def _read(
    tree: DataTree, opcode: int, body: Any, auth_ids: tuple[Id, ...], session_id: int
) -> JuteRecord | bytes:
    if opcode == OpCode.EXISTS:
        stat = tree.exists(body.path, auth_ids)
        if stat is None:
            raise _no_node(body.path)
        return StatResponse(stat)
    if opcode == OpCode.GET_DATA:
        return GetDataResponse(*tree.get_data(body.path, auth_ids))
    if opcode in (OpCode.GET_CHILDREN, OpCode.GET_CHILDREN2):
        children, stat = tree.get_children(body.path, auth_ids)
        if opcode == OpCode.GET_CHILDREN:
            return GetChildrenResponse(tuple(children))
        return GetChildren2Response(tuple(children), stat)
    if opcode == OpCode.GET_ACL:
        return GetACLResponse(*tree.get_acl(body.path, auth_ids))
    if opcode == OpCode.GET_ALL_CHILDREN_NUMBER:
        return IntResponse(tree.all_children_number(body.path, auth_ids))
    if opcode == OpCode.GET_EPHEMERALS:
        assert isinstance(body, PathRequest)
        return PathsResponse(tuple(tree.get_ephemerals(session_id, body.path or "/")))
    if opcode == OpCode.WHO_AM_I:
        return WhoAmIResponse(client_infos(auth_ids))
    if opcode == OpCode.MULTI_READ:
        return encode_multi_response([_multi_read_one(tree, op, sub, auth_ids) for op, sub in body])
    raise RemoteError(f"opcode {opcode} is not a read")


def _multi_read_one(tree: DataTree, opcode: int, body: Any, auth_ids: tuple[Id, ...]) -> OpResult:
    try:
        if opcode == OpCode.GET_DATA:
            return OpResult(opcode, 0, GetDataResponse(*tree.get_data(body.path, auth_ids)))
        children, _ = tree.get_children(body.path, auth_ids)
        return OpResult(opcode, 0, GetChildrenResponse(tuple(children)))
    except KeeperError as e:
        return error_result(e.code)


def _no_node(path: str) -> KeeperError:
    return NoNodeError(f"no node at {path!r}", path)
