"""Requests as the I/O thread carries them: a Call holds an op's opcode, its encoded body, how to
read the reply's body, and the watch it sets. Builders here check arguments and encode; readers
decode; nothing here does I/O. Paths in Calls are the server's (chroot added).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from zkclient._future import AsyncResult
from zkclient._watchers import Kind, WatchFunc, WatchRegistration
from zkclient.exceptions import exception_for_code
from zkclient.hosts import prefix_root, strip_root
from zkclient.states import ZnodeStat
from zkcore import limits
from zkcore._errors import BadArgumentsError, Code, KeeperError
from zkcore._jute import Reader
from zkcore._paths import path_problem
from zkcore._records import (
    ACL,
    AddWatchRequest,
    CheckVersionRequest,
    Create2Response,
    CreateMode,
    CreateRequest,
    CreateResponse,
    CreateTTLRequest,
    DeleteRequest,
    GetACLResponse,
    GetChildren2Response,
    GetChildrenResponse,
    GetDataResponse,
    IntResponse,
    JuteRecord,
    OpCode,
    OpResult,
    PathRequest,
    PathsResponse,
    PathWatchRequest,
    SetACLRequest,
    SetDataRequest,
    StatResponse,
    WatchTypeRequest,
    WhoAmIResponse,
    encode_multi_request,
    read_multi_response,
)

ReadBody = Callable[[Reader], Any]


@dataclass(eq=False, slots=True)
class Call:
    """One request from the application to the server and back."""

    opcode: int
    payload: bytes
    read: ReadBody | None  # the OK reply's body; None: the reply has none (result True)
    result: AsyncResult[Any]
    path: str | None = None  # the client's path, for error messages
    watch: WatchRegistration | None = None
    no_node_value: bool = False  # exists: NoNode is the result None, not an error
    accept_errors: frozenset[int] = frozenset()  # errors that count as success (result True)
    on_reply: Callable[[int], None] | None = None  # runs on the I/O thread before completion
    queued_at: float = field(default_factory=time.monotonic)
    xid: int = 0

    def outcome(self, err: int, r: Reader) -> tuple[Any, BaseException | None]:
        """(value, None) or (None, exception) for a reply with error `err` and body reader r."""
        if err == Code.OK:
            return (self.read(r) if self.read is not None else True), None
        if err == Code.NO_NODE and self.no_node_value:
            return None, None
        if err in self.accept_errors:
            return True, None
        return None, error(err, self.path)


def error(err: int, path: str | None) -> KeeperError:
    """The exception for err, worded like ZooKeeper's KeeperException."""
    try:
        name = "RolledBack" if err == Code.OK else Code(err).name.title().replace("_", "")
    except ValueError:
        name = f"error {err}"
    return exception_for_code(err, f"KeeperErrorCode = {name}" + (f" for {path}" if path else ""), path)


# --- argument checks ----------------------------------------------------------------------------


def check_path(path: str, sequential: bool = False) -> str:
    """Raise BadArgumentsError (naming the rule) for a path the server would refuse. A sequential
    create may end in '/': the server appends the counter."""
    if not isinstance(path, str):
        raise TypeError(f"path must be a str, got {type(path).__name__}")
    problem = path_problem(path + "0" if sequential and path.endswith("/") else path)
    if problem is not None:
        raise BadArgumentsError(problem, path)
    return path


def check_version(version: int) -> int:
    if not isinstance(version, int) or isinstance(version, bool):
        raise TypeError(f"version must be an int, got {type(version).__name__}")
    if version < -1:
        raise BadArgumentsError(f"version must be -1 (any) or >= 0, got {version}")
    return version


def check_data(value: bytes) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"value must be bytes, got {type(value).__name__}")
    data = bytes(value)
    if len(data) > limits.data_bytes_max:
        raise BadArgumentsError(f"value of {len(data)} bytes is over data_bytes_max={limits.data_bytes_max}")
    return data


def create_mode(ephemeral: bool, sequence: bool, container: bool, ttl: int) -> CreateMode:
    """The create flags for kazoo's keyword arguments, refusing combinations ZooKeeper refuses."""
    if not isinstance(ttl, int) or ttl < 0 or ttl > limits.ttl_ms_max:
        raise BadArgumentsError(f"ttl must be milliseconds in 0..{limits.ttl_ms_max}, got {ttl!r}")
    if container and (ephemeral or sequence or ttl):
        raise BadArgumentsError("a container cannot be ephemeral, sequential or have a ttl")
    if ttl and ephemeral:
        raise BadArgumentsError("a ttl applies to persistent nodes only, not ephemeral ones")
    if container:
        return CreateMode.CONTAINER
    if ttl:
        return CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL if sequence else CreateMode.PERSISTENT_WITH_TTL
    return CreateMode(int(ephemeral) | (int(sequence) << 1))


# --- readers ------------------------------------------------------------------------------------


def stat_of(r: Reader) -> ZnodeStat:
    return ZnodeStat.from_stat(StatResponse.read(r).stat)


def children_of(r: Reader) -> list[str]:
    return list(GetChildrenResponse.read(r).children)


def read_add_watch(r: Reader) -> None:
    """addWatch answers with ErrorResponse{0}; a server that sends no body is accepted too."""
    if r.remaining():
        IntResponse.read(r)


# --- builders -----------------------------------------------------------------------------------


class Ops:
    """Builds Calls for one client: knows its chroot and where results are delivered."""

    def __init__(self, chroot: str, new_result: Callable[[], AsyncResult[Any]]) -> None:
        self.chroot = chroot
        self.new_result = new_result

    def full(self, path: str) -> str:
        return prefix_root(self.chroot, path)

    def short(self, path: str) -> str:
        return strip_root(self.chroot, path)

    def call(self, opcode: int, body: JuteRecord | bytes, read: ReadBody | None, path: str | None,
             **kw: Any) -> Call:  # fmt: skip
        payload = body if isinstance(body, bytes) else body.encode()
        return Call(opcode, payload, read, self.new_result(), path, **kw)

    def create_request(self, path: str, value: bytes, acl: Sequence[ACL], mode: CreateMode, ttl: int,
                       include_data: bool) -> tuple[int, JuteRecord]:  # fmt: skip
        check_path(path, mode.sequential)
        full, data, acl = self.full(path), check_data(value), tuple(acl)
        if mode.ttl:
            return OpCode.CREATE_TTL, CreateTTLRequest(full, data, acl, int(mode), ttl)
        if mode == CreateMode.CONTAINER:
            return OpCode.CREATE_CONTAINER, CreateRequest(full, data, acl, int(mode))
        return (OpCode.CREATE2 if include_data else OpCode.CREATE), CreateRequest(full, data, acl, int(mode))

    def create(self, path: str, value: bytes, acl: Sequence[ACL], mode: CreateMode, ttl: int,
               include_data: bool) -> Call:  # fmt: skip
        opcode, body = self.create_request(path, value, acl, mode, ttl, include_data)
        if opcode == OpCode.CREATE:
            return self.call(opcode, body, lambda r: self.short(CreateResponse.read(r).path), path)

        def read(r: Reader) -> Any:
            resp = Create2Response.read(r)
            short = self.short(resp.path)
            return (short, ZnodeStat.from_stat(resp.stat)) if include_data else short

        return self.call(opcode, body, read, path)

    def delete(self, path: str, version: int) -> Call:
        return self.call(
            OpCode.DELETE, DeleteRequest(self.full(check_path(path)), check_version(version)), None, path
        )

    def exists(self, path: str, watch: WatchFunc | None) -> Call:
        full = self.full(check_path(path))
        reg = None if watch is None else WatchRegistration(full, watch, Kind.DATA, Kind.EXIST)
        return self.call(OpCode.EXISTS, PathWatchRequest(full, reg is not None), stat_of, path, watch=reg,
                         no_node_value=True)  # fmt: skip

    def get(self, path: str, watch: WatchFunc | None) -> Call:
        full = self.full(check_path(path))
        reg = None if watch is None else WatchRegistration(full, watch, Kind.DATA)

        def read(r: Reader) -> tuple[bytes, ZnodeStat]:
            resp = GetDataResponse.read(r)
            return resp.data, ZnodeStat.from_stat(resp.stat)

        return self.call(OpCode.GET_DATA, PathWatchRequest(full, reg is not None), read, path, watch=reg)

    def get_children(self, path: str, watch: WatchFunc | None, include_data: bool) -> Call:
        full = self.full(check_path(path))
        reg = None if watch is None else WatchRegistration(full, watch, Kind.CHILD)
        body = PathWatchRequest(full, reg is not None)
        if not include_data:
            return self.call(OpCode.GET_CHILDREN, body, children_of, path, watch=reg)

        def read(r: Reader) -> tuple[list[str], ZnodeStat]:
            resp = GetChildren2Response.read(r)
            return list(resp.children), ZnodeStat.from_stat(resp.stat)

        return self.call(OpCode.GET_CHILDREN2, body, read, path, watch=reg)

    def set(self, path: str, value: bytes, version: int) -> Call:
        body = SetDataRequest(self.full(check_path(path)), check_data(value), check_version(version))
        return self.call(OpCode.SET_DATA, body, stat_of, path)

    def get_acls(self, path: str) -> Call:
        def read(r: Reader) -> tuple[list[ACL], ZnodeStat]:
            resp = GetACLResponse.read(r)
            return list(resp.acl), ZnodeStat.from_stat(resp.stat)

        return self.call(OpCode.GET_ACL, PathRequest(self.full(check_path(path))), read, path)

    def set_acls(self, path: str, acl: Sequence[ACL], version: int) -> Call:
        body = SetACLRequest(self.full(check_path(path)), tuple(acl), check_version(version))
        return self.call(OpCode.SET_ACL, body, stat_of, path)

    def sync(self, path: str) -> Call:
        read: ReadBody = lambda r: self.short(PathRequest.read(r).path)  # noqa: E731
        return self.call(OpCode.SYNC, PathRequest(self.full(check_path(path))), read, path)

    def get_ephemerals(self, prefix: str) -> Call:
        if not isinstance(prefix, str) or not prefix.startswith("/"):
            raise BadArgumentsError(f"prefix must start with '/': {prefix!r}")
        read: ReadBody = lambda r: sorted(self.short(p) for p in PathsResponse.read(r).paths)  # noqa: E731
        return self.call(OpCode.GET_EPHEMERALS, PathRequest(self.full(prefix)), read, prefix)

    def whoami(self) -> Call:
        def read(r: Reader) -> list[tuple[str, str]]:
            return [(info.auth_scheme, info.user) for info in WhoAmIResponse.read(r).client_info]

        return self.call(OpCode.WHO_AM_I, b"", read, None)

    def get_all_children_number(self, path: str) -> Call:
        read: ReadBody = lambda r: IntResponse.read(r).value  # noqa: E731
        return self.call(OpCode.GET_ALL_CHILDREN_NUMBER, PathRequest(self.full(check_path(path))), read, path)

    def add_watch(self, path: str, func: WatchFunc, mode: int) -> Call:
        full = self.full(check_path(path))
        kind = {0: Kind.PERSISTENT, 1: Kind.RECURSIVE}.get(mode)
        if kind is None:
            raise BadArgumentsError(
                f"add_watch mode must be 0 (persistent) or 1 (persistent recursive), got {mode}"
            )
        reg = WatchRegistration(full, func, kind)
        return self.call(OpCode.ADD_WATCH, AddWatchRequest(full, mode), read_add_watch, path, watch=reg)

    def watch_op(self, opcode: int, path: str, watcher_type: int, on_reply: Callable[[int], None] | None = None,
                 accept_errors: frozenset[int] = frozenset()) -> Call:  # fmt: skip
        """removeWatches or checkWatches."""
        body = WatchTypeRequest(self.full(check_path(path)), int(watcher_type))
        return self.call(opcode, body, None, path, on_reply=on_reply, accept_errors=accept_errors)

    def multi(self, ops: list[tuple[int, JuteRecord]], read: Callable[[list[OpResult]], Any],
              opcode: int = OpCode.MULTI) -> Call:  # fmt: skip
        if len(ops) > limits.multi_ops_max:
            raise BadArgumentsError(f"{len(ops)} ops is over multi_ops_max={limits.multi_ops_max}")
        return self.call(opcode, encode_multi_request(ops), lambda r: read(read_multi_response(r)), None)

    def check_request(self, path: str, version: int) -> CheckVersionRequest:
        return CheckVersionRequest(self.full(check_path(path)), check_version(version))

    def close_session(self) -> Call:
        return self.call(OpCode.CLOSE_SESSION, b"", None, None)
