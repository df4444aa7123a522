"""The prep stage: turn a client's write request into the txn the leader proposes, or into an
error txn, checking it against the tree plus every change still in flight (ZooKeeper's
PrepRequestProcessor with its outstanding change records).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zkcore import _acl, limits
from zkcore._datatree import SPECIAL_PATHS, DataTree, ephemeral_kind
from zkcore._errors import (
    BadArgumentsError,
    BadVersionError,
    Code,
    KeeperError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    SessionExpiredError,
    ThrottledOpError,
)
from zkcore._paths import split_path, validate_path
from zkcore._records import (
    ACL,
    CONTAINER_EPHEMERAL_OWNER,
    CREATE_MODES,
    MULTI_WRITE_OPS,
    CheckVersionTxn,
    CloseSessionTxn,
    CreateContainerTxn,
    CreateMode,
    CreateSessionTxn,
    CreateTTLTxn,
    CreateTxn,
    DeleteTxn,
    ErrorTxn,
    Id,
    JuteRecord,
    MultiOp,
    MultiTxn,
    OpCode,
    Perms,
    SetACLTxn,
    SetDataTxn,
    SubTxn,
    Txn,
    TxnHeader,
    ttl_to_ephemeral_owner,
)

# An enum member costs a lookup each time: these run for every setData and create.
_WRITE = int(Perms.WRITE)
_CREATE_PERM = int(Perms.CREATE)
_CREATE_TTL = int(OpCode.CREATE_TTL)
_CREATE_CONTAINER = int(OpCode.CREATE_CONTAINER)
_CONTAINER_MODE = int(CreateMode.CONTAINER)


@dataclass(slots=True)
class Request:
    """A write as the leader receives it. `body` is the decoded request record; for multi a list
    of (opcode, record); for createSession a CreateSessionTxn; for closeSession None. `raw`, when
    given, is the bytes `body` was decoded from, all of them (the request after its header).
    Not frozen: one is built per write (see zkcore._requests.ClientRequest)."""

    session_id: int
    cxid: int
    opcode: int
    body: Any
    auth_ids: tuple[Id, ...] = ()
    raw: bytes = b""


@dataclass(slots=True)
class ChangeRecord:
    """A node as it will be once every txn prepped so far has been applied; exists=False for
    a node that an in-flight txn deletes."""

    zxid: int
    path: str
    exists: bool
    acl: tuple[ACL, ...] = ()
    version: int = 0
    cversion: int = 0
    aversion: int = 0
    ephemeral_owner: int = 0
    child_count: int = 0

    def copy(self) -> ChangeRecord:
        # By hand: dataclasses.replace and copy.copy cost several times as much, once per write.
        return ChangeRecord(
            self.zxid, self.path, self.exists, self.acl, self.version, self.cversion, self.aversion,
            self.ephemeral_owner, self.child_count,
        )  # fmt: skip


def next_version(current: int, expected: int, path: str) -> int:
    """Check an expected version (-1 = any) and return the next one, skipping -1 on wrap."""
    if expected != -1 and expected != current:
        raise BadVersionError(f"version of {path!r} is {current}, not the expected {expected}", path)
    nxt = (current + 1 + 2**31) % 2**32 - 2**31
    return 0 if nxt == -1 else nxt


@dataclass(slots=True)
class _Ctx:
    zxid: int
    time: int
    session_id: int
    auth_ids: tuple[Id, ...]


class Prep:
    """Prepares txns in proposal order. Call `applied(zxid)` as txns are applied to the tree so
    change records the tree now reflects are dropped; `reset()` when leadership changes."""

    def __init__(
        self,
        tree: DataTree,
        data_bytes_max: int = limits.data_bytes_max,
        close_listed_bytes_max: int = limits.close_session_listed_bytes_max,
    ) -> None:
        self.tree = tree
        self.data_bytes_max = data_bytes_max
        self.close_listed_bytes_max = close_listed_bytes_max
        self._pending: dict[str, ChangeRecord] = {}
        self._order: deque[tuple[int, str]] = deque()
        self._sessions: dict[int, tuple[int, bool]] = {}  # id -> (zxid, alive) while in flight
        self._undo: list[tuple[str, ChangeRecord | None]] | None = None
        self._unbounded = False  # a closeSession is prepping: prep_pending_max does not refuse it
        # Sessions whose close is in flight -> its zxid: the ephemerals the tree holds for them
        # are gone as far as prep is concerned (no record each: a session may have millions).
        self._closing: dict[int, int] = {}

    # --- change records -------------------------------------------------------------------

    def record(self, path: str) -> ChangeRecord | None:
        pending = self._pending.get(path)
        if pending is not None:
            return pending if pending.exists else None
        return self._from_tree(path)

    def _from_tree(self, path: str) -> ChangeRecord | None:
        """A new record of the tree's node at path, or None if there is none."""
        fields = self.tree.change_fields(path)
        if fields is None or (self._closing and fields[5] in self._closing):
            return None
        return ChangeRecord(fields[0], path, True, *fields[1:])

    def _valid(self, path: str) -> str:
        """validate_path, skipped for a node that is being created: its path passed. (Whether
        a node exists costs a lookup in the tree's index, more than the check.)"""
        if path in self._pending:
            return path
        return validate_path(path)

    def _existing(self, path: str) -> ChangeRecord:
        rec = self.record(path)
        if rec is None:
            raise NoNodeError(f"no node at {path!r}", path)
        return rec

    def _changing(self, path: str, zxid: int) -> ChangeRecord:
        """The record of an existing node, as a txn at `zxid` starts to change it: a new one,
        never the pending one (a failed multi puts that back), for the handler to change and
        _add. One record per change: built from the pending one or from the tree's node."""
        pending = self._pending.get(path)
        if pending is None:
            rec = self._from_tree(path)  # no one else holds it
        else:
            rec = pending.copy() if pending.exists else None
        if rec is None:
            raise NoNodeError(f"no node at {path!r}", path)
        rec.zxid = zxid
        return rec

    def _changing_named(self, path: str, zxid: int, data: bytes) -> ChangeRecord:
        """_changing for the node a setData names, its checks in order: the path, the data, then
        NoNode. A node that exists needs no validate_path (its path passed when it was made),
        and looking it up costs less than the check."""
        try:
            rec = self._changing(path, zxid)
        except NoNodeError:
            validate_path(path)
            self._check_data(data, path)
            raise
        self._check_data(data, path)
        return rec

    def _add(self, rec: ChangeRecord) -> None:
        if (
            len(self._pending) >= limits.prep_pending_max
            and rec.path not in self._pending
            and not self._unbounded
        ):
            raise ThrottledOpError(f"more than prep_pending_max={limits.prep_pending_max} changes in flight")
        if self._undo is not None:
            self._undo.append((rec.path, self._pending.get(rec.path)))
        self._pending[rec.path] = rec
        self._order.append((rec.zxid, rec.path))

    def applied(self, zxid: int) -> None:
        order = self._order
        if order and order[-1][0] <= zxid:
            # Every change in flight is applied (a leader's group commit): each pending record
            # has its entry in the order (a rollback puts back only records whose entries are
            # still there), so none is left.
            order.clear()
            self._pending.clear()
        else:
            while order and order[0][0] <= zxid:
                rec_zxid, path = order.popleft()
                rec = self._pending.get(path)
                if rec is not None and rec.zxid == rec_zxid:
                    del self._pending[path]
        if self._sessions:  # a follower, and a leader between session changes, has none
            for session in [s for s, (z, _) in self._sessions.items() if z <= zxid]:
                del self._sessions[session]
        if self._closing:
            for session in [s for s, z in self._closing.items() if z <= zxid]:
                del self._closing[session]

    def reset(self) -> None:
        self._pending.clear()
        self._order.clear()
        self._sessions.clear()
        self._closing.clear()

    def session_alive(self, session_id: int) -> bool:
        pending = self._sessions.get(session_id)
        if pending is not None:
            return pending[1]
        return session_id in self.tree.sessions

    def _check_session(self, ctx: _Ctx) -> None:
        self._check_session_id(ctx.session_id)

    def _check_session_id(self, session_id: int) -> None:
        if not self.session_alive(session_id):
            raise SessionExpiredError(f"session {session_id:#x} is expired or closing")

    # --- entry point ----------------------------------------------------------------------

    def prep(self, req: Request, zxid: int, time: int) -> tuple[Txn, KeeperError | None]:
        """The txn for `req` at `zxid`; on failure an error txn plus the error (for the log)."""
        ctx = _Ctx(zxid, time, req.session_id, req.auth_ids)
        try:
            if req.opcode == OpCode.MULTI:
                body, error = self._prep_multi(req.body, ctx)
                return Txn(TxnHeader(req.session_id, req.cxid, zxid, time, OpCode.MULTI), body), error
            kind, single = self._prep_op(req.opcode, req.body, ctx)
            return Txn(TxnHeader(req.session_id, req.cxid, zxid, time, kind), single), None
        except KeeperError as e:
            header = TxnHeader(req.session_id, req.cxid, zxid, time, OpCode.ERROR)
            return Txn(header, ErrorTxn(int(e.code))), e

    def _prep_op(self, opcode: int, body: Any, ctx: _Ctx) -> tuple[int, Any]:
        handler = _PREP.get(opcode)
        if handler is None:
            raise BadArgumentsError(f"opcode {opcode} is not a write this server can prep")
        return opcode, handler(self, opcode, body, ctx)

    def _prep_multi(self, ops: list[MultiOp], ctx: _Ctx) -> tuple[MultiTxn, KeeperError | None]:
        self._check_session(ctx)
        subs: list[SubTxn] = []
        error: KeeperError | None = None
        self._undo = []
        try:
            for opcode, body in ops:
                if error is not None:
                    subs.append(SubTxn(OpCode.ERROR, ErrorTxn(Code.RUNTIME_INCONSISTENCY).encode()))
                    continue
                try:
                    if opcode not in MULTI_WRITE_OPS:
                        raise BadArgumentsError(f"opcode {opcode} cannot be part of a multi")
                    if opcode == OpCode.CREATE2:
                        opcode = OpCode.CREATE  # ZooKeeper reads create2 in a multi as create
                    kind, txn = self._prep_op(opcode, body, ctx)
                    subs.append(SubTxn(kind, txn.encode()))
                except KeeperError as e:
                    error = e
                    subs.append(SubTxn(OpCode.ERROR, ErrorTxn(int(e.code)).encode()))
                    self._rollback()
        finally:
            self._undo = None
        return MultiTxn(tuple(subs)), error

    def _rollback(self) -> None:
        assert self._undo is not None
        for path, previous in reversed(self._undo):
            if previous is None:
                self._pending.pop(path, None)
            else:
                self._pending[path] = previous
        self._undo.clear()

    # --- one handler per write ------------------------------------------------------------

    def _check_data(self, data: bytes, path: str) -> None:
        if len(data) > self.data_bytes_max:
            raise BadArgumentsError(
                f"data for {path!r} is {len(data)} bytes, over the limit of {self.data_bytes_max}", path
            )

    def _create_mode(self, opcode: int, flags: int, ttl: int, path: str) -> CreateMode:
        mode = CREATE_MODES.get(flags)
        if mode is None:
            raise BadArgumentsError(f"unknown create flags {flags} for {path!r}", path)
        is_ttl = mode.ttl
        if (opcode == _CREATE_TTL) != is_ttl:
            raise BadArgumentsError(
                f"TTL modes need createTTL and createTTL needs a TTL mode: {path!r}", path
            )
        if is_ttl and not 0 < ttl <= limits.ttl_ms_max:
            raise BadArgumentsError(f"ttl must be in 1..{limits.ttl_ms_max} ms, got {ttl}", path)
        if (opcode == _CREATE_CONTAINER) != (flags == _CONTAINER_MODE):
            raise BadArgumentsError(f"the container mode goes with createContainer only: {path!r}", path)
        return mode

    def _prep_create(self, opcode: int, body: Any, ctx: _Ctx) -> JuteRecord:
        # Checks run in ZooKeeper's order, so the same bad request gets the same error code:
        # mode, session, parent lookup, ACL, then the full path, then existence.
        path: str = body.path
        ttl = body.ttl if opcode == _CREATE_TTL else -1
        mode = self._create_mode(opcode, body.flags, ttl, path)
        self._check_session(ctx)
        parent_path = _parent_for_create(path)
        self._check_data(body.data, path)
        acl = _acl.fixup_acl(path, ctx.auth_ids, body.acl)
        parent = self._changing(parent_path, ctx.zxid)
        _acl.check_acl(parent.acl, _CREATE_PERM, ctx.auth_ids, path)
        if mode.sequential:
            path = f"{path}{parent.cversion:010d}"
        validate_path(path)
        if self.record(path) is not None:
            raise NodeExistsError(f"node {path!r} already exists", path)
        if ephemeral_kind(parent.ephemeral_owner) == "session":
            raise NoChildrenForEphemeralsError(f"ephemeral {parent_path!r} cannot have children", path)
        cversion = parent.cversion + 1
        txn: JuteRecord
        if opcode == _CREATE_CONTAINER:
            txn, owner = CreateContainerTxn(path, body.data, acl, cversion), CONTAINER_EPHEMERAL_OWNER
        elif opcode == _CREATE_TTL:
            txn, owner = CreateTTLTxn(path, body.data, acl, cversion, ttl), ttl_to_ephemeral_owner(ttl)
        else:
            ephemeral = mode.ephemeral
            owner = ctx.session_id if ephemeral else 0
            txn = CreateTxn(path, body.data, acl, ephemeral, cversion)
        parent.child_count += 1
        parent.cversion = cversion
        self._add(parent)
        self._add(ChangeRecord(ctx.zxid, path, True, acl, ephemeral_owner=owner))
        return txn

    def _remove(self, parent: ChangeRecord, path: str, ctx: _Ctx) -> None:
        """`parent` from _changing: it has a child fewer, and `path` is gone."""
        parent.child_count -= 1
        self._add(parent)
        self._add(ChangeRecord(ctx.zxid, path, False))

    def _prep_delete(self, opcode: int, body: Any, ctx: _Ctx) -> JuteRecord:
        self._check_session(ctx)
        path: str = body.path
        parent = self._changing(_parent_for_delete(path), ctx.zxid)
        _acl.check_acl(parent.acl, Perms.DELETE, ctx.auth_ids, path)
        node = self._existing(path)
        next_version(node.version, body.version, path)
        if node.child_count > 0:
            raise NotEmptyError(f"{path!r} has {node.child_count} children", path)
        self._remove(parent, path, ctx)
        return DeleteTxn(path)

    def _prep_delete_container(self, opcode: int, body: Any, ctx: _Ctx) -> JuteRecord:
        path: str = body.path
        parent_path = _parent_for_delete(path)
        node = self._existing(path)
        if node.child_count > 0:
            raise NotEmptyError(f"container {path!r} has {node.child_count} children", path)
        if ephemeral_kind(node.ephemeral_owner) not in ("container", "ttl"):
            raise BadArgumentsError(f"{path!r} is not a container or TTL node", path)
        self._remove(self._changing(parent_path, ctx.zxid), path, ctx)
        return DeleteTxn(path)

    def _prep_set_data(self, opcode: int, body: Any, ctx: _Ctx) -> JuteRecord:
        version = self.set_data(ctx.session_id, body.path, body.data, body.version, ctx.auth_ids, ctx.zxid)
        return SetDataTxn(body.path, body.data, version)

    def set_data(
        self, session_id: int, path: str, data: bytes, expected: int, auth_ids: tuple[Id, ...], zxid: int
    ) -> int:
        """setData's prep at `zxid`, its change recorded: the node's next version. Raises the
        KeeperError of its error txn, having recorded nothing. The server preps its own
        clients' setData (the most common write) through this alone, without a Txn."""
        self._check_session_id(session_id)
        node = self._changing_named(path, zxid, data)
        _acl.check_acl(node.acl, _WRITE, auth_ids, path)
        node.version = next_version(node.version, expected, path)
        self._add(node)
        return node.version

    def _prep_set_acl(self, opcode: int, body: Any, ctx: _Ctx) -> JuteRecord:
        self._check_session(ctx)
        path = self._valid(body.path)
        acl = _acl.fixup_acl(path, ctx.auth_ids, body.acl)
        node = self._changing(path, ctx.zxid)
        _acl.check_acl(node.acl, Perms.ADMIN, ctx.auth_ids, path)
        node.aversion = next_version(node.aversion, body.version, path)
        node.acl = acl
        self._add(node)
        return SetACLTxn(path, acl, node.aversion)

    def _prep_check(self, opcode: int, body: Any, ctx: _Ctx) -> JuteRecord:
        self._check_session(ctx)
        path = self._valid(body.path)
        node = self._existing(path)
        _acl.check_acl(node.acl, Perms.READ, ctx.auth_ids, path)
        return CheckVersionTxn(path, next_version(node.version, body.version, path))

    def _prep_create_session(self, opcode: int, body: Any, ctx: _Ctx) -> JuteRecord:
        assert isinstance(body, CreateSessionTxn)
        self._sessions[ctx.session_id] = (ctx.zxid, True)
        return body

    def _prep_close_session(self, opcode: int, body: Any, ctx: _Ctx) -> JuteRecord | None:
        """The session's ephemerals go with it, however many: a close is never refused, and its
        prep costs a record per parent, not per ephemeral (those the tree holds are gone for
        prep while the close is in flight; only those an in-flight txn touches get a record).
        The txn lists them, as ZooKeeper's CloseSessionTxn does, up to close_listed_bytes_max
        bytes; past that it lists none (ZooKeeper's older closeSession), and each server deletes
        those its tree holds for the session, the same set (every server applies the same txns
        before it). A list that outgrew a frame would stop the ensemble: no peer could take the
        proposal, and each new leader would propose it again (ZOOKEEPER-4306)."""
        session = ctx.session_id
        touched = [
            path for path, rec in self._pending.items() if rec.exists and rec.ephemeral_owner == session
        ]
        owned = list(touched)
        parents: dict[str, int] = {}  # -> how many of its children the tree holds for the session
        # A close already in flight for the session (its expiry, and the client's own close) has
        # taken those the tree holds: counting them again would free their parents twice.
        held = {} if session in self._closing else self.tree.ephemerals.get(session, {})
        for path in held:
            if path not in self._pending:  # else an in-flight txn deleted it, or touched it (above)
                owned.append(path)
                parent = split_path(path)[0]
                parents[parent] = parents.get(parent, 0) + 1
        self._unbounded = True
        try:
            for path in touched:
                self._remove(self._changing(split_path(path)[0], ctx.zxid), path, ctx)
            for parent, count in parents.items():
                rec = self._changing(parent, ctx.zxid)
                rec.child_count -= count
                self._add(rec)
        finally:
            self._unbounded = False
        self._closing[session] = ctx.zxid
        self._sessions[session] = (ctx.zxid, False)
        listed = 4 + sum(4 + len(path.encode()) for path in owned)
        return CloseSessionTxn(tuple(sorted(owned))) if listed <= self.close_listed_bytes_max else None


def _parent_for_create(path: str) -> str:
    """The parent of a path to create, checked only as far as ZooKeeper checks it before looking
    the parent up (so '/a/b/' with no '/a/b' is NoNode, as there). The root is its own parent:
    creating it, like creating one of ZooKeeper's own nodes, is NodeExists, and a sequential
    create of '/' names a child of the root (all as ZooKeeper 3.8 answers them)."""
    if not isinstance(path, str) or "\0" in path or not path.startswith("/"):
        raise BadArgumentsError(f"cannot create at {path!r}: not an absolute path", None)
    return path[: path.rfind("/")] or "/"


def _parent_for_delete(path: str) -> str:
    """The parent of a path to delete, checked as _parent_for_create checks it; the root and
    ZooKeeper's own nodes cannot be deleted (BadArguments, as there)."""
    if path == "/":
        raise BadArgumentsError("cannot delete the root", None)
    if path in SPECIAL_PATHS:
        raise BadArgumentsError(f"{path!r} is a system node and cannot be created or deleted", path)
    return _parent_for_create(path)


_PREP: dict[int, Callable[[Prep, int, Any, _Ctx], JuteRecord | None]] = {  # None: a listless close
    OpCode.CREATE: Prep._prep_create,
    OpCode.CREATE2: Prep._prep_create,
    OpCode.CREATE_TTL: Prep._prep_create,
    OpCode.CREATE_CONTAINER: Prep._prep_create,
    OpCode.DELETE: Prep._prep_delete,
    OpCode.DELETE_CONTAINER: Prep._prep_delete_container,
    OpCode.SET_DATA: Prep._prep_set_data,
    OpCode.SET_ACL: Prep._prep_set_acl,
    OpCode.CHECK: Prep._prep_check,
    OpCode.CREATE_SESSION: Prep._prep_create_session,
    OpCode.CLOSE_SESSION: Prep._prep_close_session,
}
