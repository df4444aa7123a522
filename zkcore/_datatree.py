"""The znode tree and `apply(txn)`: every replica applies the same txns in zxid order and gets
the same tree, Stat for Stat. Reads for the slow path live here too; the hot read path is native.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from zkcore import _acl
from zkcore._errors import Code, NoNodeError, RemoteError
from zkcore._jute import Reader, Writer
from zkcore._paths import join_path, split_path
from zkcore._records import (
    ACL,
    CONTAINER_EPHEMERAL_OWNER,
    OPEN_ACL_UNSAFE,
    READ_ACL_UNSAFE,
    TTL_EPHEMERAL_MASK,
    CheckVersionTxn,
    CloseSessionTxn,
    Create2Response,
    CreateContainerTxn,
    CreateResponse,
    CreateSessionTxn,
    CreateTTLTxn,
    CreateTxn,
    DeleteTxn,
    ErrorTxn,
    Id,
    MultiTxn,
    OpCode,
    OpResult,
    Perms,
    SetACLTxn,
    SetDataTxn,
    Stat,
    StatResponse,
    Txn,
    TxnBody,
    TxnHeader,
    decode_sub_txn,
    ttl_to_ephemeral_owner,
)

# Watch event types (ZooKeeper's Watcher.Event.EventType).
NODE_CREATED = 1
NODE_DELETED = 2
NODE_DATA_CHANGED = 3
NODE_CHILDREN_CHANGED = 4

SYSTEM_NODES = (
    ("/zookeeper", OPEN_ACL_UNSAFE, 0),
    ("/zookeeper/quota", OPEN_ACL_UNSAFE, 0),
    ("/zookeeper/config", READ_ACL_UNSAFE, -1),
)
SPECIAL_PATHS = frozenset(["/", *(p for p, _, _ in SYSTEM_NODES)])

_STAT = struct.Struct(">qqqqiiiqiiq")
_INT = struct.Struct(">i")
# A snapshot's per-node record after path and data: ACL number, then the persisted stat.
_SNAPSHOT_NODE = struct.Struct(">iqqqqiiiqq")
_SNAPSHOT_MAGIC = b"ZKTREE02"


class ReadIndex(Protocol):
    """What the tree mirrors every change into: native.PathIndex or its Python twin."""

    def put(self, path: str, data: bytes, stat: bytes, readable: bool) -> None: ...

    def remove(self, path: str) -> None: ...

    def read_batch(self, requests: bytes, zxid: int) -> tuple[bytes, bytes]: ...


def ephemeral_kind(owner: int) -> str:
    """'', 'session', 'container' or 'ttl' for a node's ephemeralOwner (ZooKeeper's EphemeralType)."""
    if owner == 0:
        return ""
    if owner == CONTAINER_EPHEMERAL_OWNER:
        return "container"
    if owner & TTL_EPHEMERAL_MASK == TTL_EPHEMERAL_MASK:
        return "ttl"
    return "session"


@dataclass(slots=True, eq=False)
class Node:
    """A znode as the tree keeps it; `stat()` adds dataLength and numChildren."""

    data: bytes
    acl: tuple[ACL, ...]
    czxid: int
    mzxid: int
    ctime: int
    mtime: int
    version: int = 0
    cversion: int = 0
    aversion: int = 0
    ephemeral_owner: int = 0
    pzxid: int = 0
    children: dict[str, None] = field(default_factory=dict)

    def stat_fields(self) -> tuple[int, ...]:
        """Stat as clients see it. `cversion` is kept as the count of creates (it names the
        next sequential child) and reported as creates + deletes; ephemeralOwner is reported
        only for session ephemerals, as ZooKeeper does."""
        owner = self.ephemeral_owner if ephemeral_kind(self.ephemeral_owner) == "session" else 0
        children = len(self.children)
        return (
            self.czxid, self.mzxid, self.ctime, self.mtime, self.version,
            self.cversion * 2 - children, self.aversion, owner, len(self.data), children, self.pzxid,
        )  # fmt: skip

    def stat(self) -> Stat:
        return Stat(*self.stat_fields())

    def stat_bytes(self) -> bytes:
        return _STAT.pack(*self.stat_fields())


@dataclass(slots=True)
class ApplyResult:
    """What applying one txn did: ZooKeeper's ProcessTxnResult plus the watch events it fires."""

    zxid: int
    type: int
    err: int = 0
    path: str = ""
    node: Node | None = None  # the node a create, setData or setACL left; see `stat`
    multi: list[OpResult] | None = None
    events: list[tuple[int, str]] = field(default_factory=list)

    @property
    def stat(self) -> Stat | None:
        """The node's Stat. Read it before applying the next txn: most applies (a replay at
        startup) never ask, so it is built on demand."""
        return None if self.node is None else self.node.stat()


class DataTree:
    """Path -> Node, the sessions that own ephemerals, and the highest zxid applied."""

    def __init__(self, index: ReadIndex | None = None, *, populate: bool = True) -> None:
        self.nodes: dict[str, Node] = {}
        self.ephemerals: dict[int, dict[str, None]] = {}
        self.containers: dict[str, None] = {}
        self.ttls: dict[str, None] = {}
        self.sessions: dict[int, int] = {}  # session id -> negotiated timeout in ms
        self.last_zxid = 0
        self._index = index
        self._acls: dict[tuple[ACL, ...], tuple[ACL, ...]] = {}
        self._readable: dict[tuple[ACL, ...], bool] = {}
        if not populate:  # from_snapshot brings every node, the root and system nodes too
            return
        self._insert("/", Node(b"", self._intern(OPEN_ACL_UNSAFE), 0, 0, 0, 0))
        # ZooKeeper's system nodes: added as children without counting as creates.
        for path, acl, aversion in SYSTEM_NODES:
            parent_path, name = split_path(path)
            self.nodes[parent_path].children[name] = None
            self._insert(path, Node(b"", self._intern(acl), 0, 0, 0, 0, aversion=aversion))
            self._mirror(parent_path, self.nodes[parent_path])

    # --- bookkeeping ----------------------------------------------------------------------

    def _intern(self, acl: tuple[ACL, ...]) -> tuple[ACL, ...]:
        return self._acls.setdefault(acl, acl)

    def _mirror(self, path: str, node: Node) -> None:
        if self._index is not None:
            readable = self._readable.get(node.acl)
            if readable is None:
                readable = self._readable[node.acl] = _acl.world_readable(node.acl)
            self._index.put(path, node.data, node.stat_bytes(), readable)

    def _insert(self, path: str, node: Node, mirror: bool = True) -> None:
        self.nodes[path] = node
        kind = ephemeral_kind(node.ephemeral_owner)
        if kind == "session":
            self.ephemerals.setdefault(node.ephemeral_owner, {})[path] = None
        elif kind == "container":
            self.containers[path] = None
        elif kind == "ttl":
            self.ttls[path] = None
        if mirror:
            self._mirror(path, node)

    @property
    def index(self) -> ReadIndex | None:
        """The native read index this tree keeps in step, if it has one."""
        return self._index

    def attach_index(self, index: ReadIndex) -> None:
        """Start keeping an empty index in step, filling it with every node now. A restarting
        server replays its log without an index and attaches one before it serves reads."""
        assert self._index is None, "this tree already has an index"
        self._index = index
        for path, node in self.nodes.items():
            self._mirror(path, node)

    def __len__(self) -> int:
        return len(self.nodes)

    def __contains__(self, path: object) -> bool:
        return path in self.nodes

    # --- reads (the slow path: ACL checks with the caller's ids) --------------------------

    def node(self, path: str) -> Node:
        node = self.nodes.get(path)
        if node is None:
            raise NoNodeError(f"no node at {path!r}", path)
        return node

    def exists(self, path: str) -> Stat | None:
        node = self.nodes.get(path)
        return None if node is None else node.stat()

    def get_data(self, path: str, auth_ids: Sequence[Id] = ()) -> tuple[bytes, Stat]:
        node = self.node(path)
        _acl.check_acl(node.acl, Perms.READ, auth_ids, path)
        return node.data, node.stat()

    def get_children(self, path: str, auth_ids: Sequence[Id] = ()) -> tuple[list[str], Stat]:
        node = self.node(path)
        _acl.check_acl(node.acl, Perms.READ, auth_ids, path)
        return list(node.children), node.stat()

    def get_acl(self, path: str) -> tuple[tuple[ACL, ...], Stat]:
        node = self.node(path)
        return node.acl, node.stat()

    def all_children_number(self, path: str, auth_ids: Sequence[Id] = ()) -> int:
        """Descendants of `path`, not counting itself (getAllChildrenNumber)."""
        node = self.node(path)
        _acl.check_acl(node.acl, Perms.READ, auth_ids, path)
        count, stack = 0, [path]
        while stack:
            here = stack.pop()
            for name in self.nodes[here].children:
                count += 1
                stack.append(join_path(here, name))
        return count

    def get_ephemerals(self, session_id: int, prefix: str = "/") -> list[str]:
        owned = self.ephemerals.get(session_id, {})
        return sorted(p for p in owned if prefix == "/" or p == prefix or p.startswith(prefix))

    def expired_candidates(self, now_ms: int) -> list[str]:
        """Empty containers that once had children and TTL nodes idle past their TTL: the leader
        proposes deleteContainer for each (ZooKeeper's ContainerManager)."""
        out = [p for p in self.containers if not self.nodes[p].children and self.nodes[p].cversion > 0]
        for p in self.ttls:
            node = self.nodes[p]
            ttl = node.ephemeral_owner & ~TTL_EPHEMERAL_MASK
            if not node.children and now_ms - node.mtime > ttl:
                out.append(p)
        return out

    # --- apply ----------------------------------------------------------------------------

    def apply(self, txn: Txn) -> ApplyResult:
        """Apply a txn in zxid order. Txns come from prep, so failures here mean a replayed
        txn that the state already reflects; they are reported, never raised."""
        header = txn.header
        result = ApplyResult(header.zxid, header.type)
        self._apply_one(header, txn.body, result)
        if header.zxid > self.last_zxid:
            self.last_zxid = header.zxid
        return result

    def _apply_one(self, header: TxnHeader, body: TxnBody, result: ApplyResult) -> None:
        handler = _APPLY.get(type(body))
        if handler is None:
            result.err = Code.MARSHALLING
            return
        handler(self, header, body, result)

    def _apply_create(self, header: TxnHeader, txn: Any, result: ApplyResult) -> None:
        if isinstance(txn, CreateContainerTxn):
            owner = CONTAINER_EPHEMERAL_OWNER
        elif isinstance(txn, CreateTTLTxn):
            owner = ttl_to_ephemeral_owner(txn.ttl)
        else:
            owner = header.client_id if txn.ephemeral else 0
        path = txn.path
        parent_path, name = split_path(path)
        parent = self.nodes.get(parent_path)
        if parent is None:
            result.err = Code.NO_NODE
            return
        if path in self.nodes:
            result.err = Code.NODE_EXISTS
            return
        zxid, now = header.zxid, header.time
        node = Node(txn.data, self._intern(txn.acl), zxid, zxid, now, now, ephemeral_owner=owner, pzxid=zxid)
        parent.children[name] = None
        # A replayed create may be older than the parent's state; never move cversion back.
        if txn.parent_cversion > parent.cversion:
            parent.cversion = txn.parent_cversion
            parent.pzxid = zxid
        self._insert(path, node)
        self._mirror(parent_path, parent)
        result.path = path
        result.node = node
        result.events += [(NODE_CREATED, path), (NODE_CHILDREN_CHANGED, parent_path)]

    def delete_node(self, path: str, zxid: int, result: ApplyResult) -> None:
        node = self.nodes.get(path)
        if node is None or path == "/":
            result.err = Code.NO_NODE
            return
        parent_path, name = split_path(path)
        parent = self.nodes[parent_path]
        del self.nodes[path]
        del parent.children[name]
        if zxid > parent.pzxid:
            parent.pzxid = zxid
        kind = ephemeral_kind(node.ephemeral_owner)
        if kind == "session":
            owned = self.ephemerals.get(node.ephemeral_owner)
            if owned is not None:
                owned.pop(path, None)
                if not owned:
                    del self.ephemerals[node.ephemeral_owner]
        elif kind == "container":
            self.containers.pop(path, None)
        elif kind == "ttl":
            self.ttls.pop(path, None)
        if self._index is not None:
            self._index.remove(path)
        self._mirror(parent_path, parent)
        result.events += [(NODE_DELETED, path), (NODE_CHILDREN_CHANGED, parent_path)]

    def _apply_delete(self, header: TxnHeader, txn: Any, result: ApplyResult) -> None:
        node = self.nodes.get(txn.path)
        if node is not None and node.children:
            result.err = Code.NOT_EMPTY
            return
        self.delete_node(txn.path, header.zxid, result)

    def _apply_set_data(self, header: TxnHeader, txn: Any, result: ApplyResult) -> None:
        node = self.nodes.get(txn.path)
        if node is None:
            result.err = Code.NO_NODE
            return
        node.data = txn.data
        node.mtime = header.time
        node.mzxid = header.zxid
        node.version = txn.version
        self._mirror(txn.path, node)
        result.path = txn.path
        result.node = node
        result.events.append((NODE_DATA_CHANGED, txn.path))

    def _apply_set_acl(self, header: TxnHeader, txn: Any, result: ApplyResult) -> None:
        node = self.nodes.get(txn.path)
        if node is None:
            result.err = Code.NO_NODE
            return
        node.acl = self._intern(txn.acl)
        node.aversion = txn.version
        self._mirror(txn.path, node)
        result.path = txn.path
        result.node = node

    def _apply_check(self, header: TxnHeader, txn: Any, result: ApplyResult) -> None:
        result.path = txn.path

    def _apply_error(self, header: TxnHeader, txn: Any, result: ApplyResult) -> None:
        result.err = txn.err

    def _apply_create_session(self, header: TxnHeader, txn: Any, result: ApplyResult) -> None:
        self.sessions[header.client_id] = txn.timeout_ms

    def _apply_close_session(self, header: TxnHeader, txn: Any, result: ApplyResult) -> None:
        session = header.client_id
        paths = txn.paths_to_delete if txn is not None else list(self.ephemerals.get(session, {}))
        # Children before parents cannot happen (ephemerals have no children), but a listed
        # path may already be gone or owned by someone else on replay: skip those.
        for path in paths:
            node = self.nodes.get(path)
            if node is not None and node.ephemeral_owner == session:
                self.delete_node(path, header.zxid, result)
        self.sessions.pop(session, None)

    def _apply_multi(self, header: TxnHeader, txn: Any, result: ApplyResult) -> None:
        subs = [(sub.type, decode_sub_txn(sub)) for sub in txn.txns]
        failed = any(kind == OpCode.ERROR for kind, _ in subs)
        result.multi = []
        if failed:
            seen_error = False
            for kind, body in subs:
                if kind == OpCode.ERROR:
                    seen_error = True
                    assert isinstance(body, ErrorTxn)
                    code = body.err
                else:
                    code = Code.RUNTIME_INCONSISTENCY if seen_error else Code.OK
                result.multi.append(OpResult(OpCode.ERROR, code))
            return
        for kind, body in subs:
            sub_header = TxnHeader(header.client_id, header.cxid, header.zxid, header.time, kind)
            sub = ApplyResult(header.zxid, kind)
            self._apply_one(sub_header, body, sub)
            assert sub.err == Code.OK, f"multi sub-txn failed on apply: {kind} {body} -> {sub.err}"
            result.events += sub.events
            result.multi.append(_multi_result(kind, sub))

    # --- snapshots ------------------------------------------------------------------------

    def snapshot_chunks(self, chunk_nodes: int = 4096) -> Iterator[bytes]:
        """The tree and sessions as bytes: a table of the distinct ACLs, then every node
        (path, data, ACL number, persisted stat), parents always before their children."""
        w = Writer()
        w.buf += _SNAPSHOT_MAGIC
        w.long(self.last_zxid)
        acl_numbers: dict[tuple[ACL, ...], int] = {}
        for node in self.nodes.values():
            acl_numbers.setdefault(node.acl, len(acl_numbers))
        w.int(len(acl_numbers))
        for acl in acl_numbers:
            w.int(len(acl))
            for entry in acl:
                entry.write(w)
        w.int(len(self.nodes))
        pack = _SNAPSHOT_NODE.pack
        for i, (path, node) in enumerate(self.nodes.items()):
            raw = path.encode("utf-8", "surrogatepass")
            w.buf += _INT.pack(len(raw)) + raw + _INT.pack(len(node.data)) + node.data
            w.buf += pack(
                acl_numbers[node.acl], node.czxid, node.mzxid, node.ctime, node.mtime, node.version,
                node.cversion, node.aversion, node.ephemeral_owner, node.pzxid,
            )  # fmt: skip
            if i % chunk_nodes == chunk_nodes - 1:
                yield bytes(w.buf)
                w.buf.clear()
        w.int(len(self.sessions))
        for session, timeout in self.sessions.items():
            w.long(session)
            w.int(timeout)
        yield bytes(w.buf)

    @classmethod
    def from_snapshot(cls, payload: bytes, index: ReadIndex | None = None) -> DataTree:
        """Rebuild a tree from snapshot_chunks() output; raises RemoteError on bad bytes."""
        r = Reader(payload)
        if bytes(r.buf[:8]) != _SNAPSHOT_MAGIC:
            raise RemoteError("snapshot payload does not start with the tree magic")
        r.pos = 8
        tree = cls(index, populate=False)
        tree.last_zxid = r.long()
        acls = [
            tree._intern(tuple(ACL.read(r) for _ in range(r.vector_length())))
            for _ in range(r.vector_length())
        ]
        try:
            tree._load_nodes(r, acls)
        except (struct.error, IndexError, UnicodeDecodeError) as e:
            raise RemoteError(f"snapshot node records are damaged: {e}") from e
        for _ in range(r.int()):
            session = r.long()
            tree.sessions[session] = r.int()
        r.expect_end("snapshot")
        # Mirror once every node has its children, so each reported Stat is final.
        for path, node in tree.nodes.items():
            tree._mirror(path, node)
        return tree

    def _load_nodes(self, r: Reader, acls: list[tuple[ACL, ...]]) -> None:
        """The node records of a snapshot, decoded inline: this loop is most of a restart."""
        buf, pos, end = r.buf, r.pos, r.end
        count = _INT.unpack_from(buf, pos)[0]
        pos += 4
        unpack_int, unpack_node, node_size = _INT.unpack_from, _SNAPSHOT_NODE.unpack_from, _SNAPSHOT_NODE.size
        nodes, insert = self.nodes, self._insert
        for _ in range(count):
            n = unpack_int(buf, pos)[0]
            if not 0 <= n <= end - pos - 4:
                raise RemoteError(f"snapshot path length {n} at offset {pos} runs past the end")
            path = str(buf[pos + 4 : pos + 4 + n], "utf-8", "surrogatepass")
            pos += 4 + n
            n = unpack_int(buf, pos)[0]
            if not 0 <= n <= end - pos - 4:
                raise RemoteError(f"snapshot data length {n} at offset {pos} runs past the end")
            data = bytes(buf[pos + 4 : pos + 4 + n])
            pos += 4 + n
            acl_no, czxid, mzxid, ctime, mtime, version, cversion, aversion, owner, pzxid = unpack_node(
                buf, pos
            )
            pos += node_size
            node = Node(
                data, acls[acl_no], czxid, mzxid, ctime, mtime, version, cversion, aversion, owner, pzxid
            )
            if path == "/":
                if nodes:
                    raise RemoteError("snapshot lists the root twice")
            else:
                cut = path.rfind("/")
                parent = nodes.get(path[:cut] or "/")
                if parent is None or path in nodes:
                    raise RemoteError(f"snapshot lists {path!r} before its parent or twice")
                parent.children[path[cut + 1 :]] = None
            insert(path, node, False)
        r.pos = pos

    def digest(self) -> str:
        """A hash of the whole state that does not depend on history, for comparing replicas."""
        h = hashlib.sha256()
        for path in sorted(self.nodes):
            node = self.nodes[path]
            h.update(path.encode("utf-8", "surrogatepass") + b"\0")
            h.update(node.stat_bytes())
            h.update(len(node.data).to_bytes(4, "big") + node.data)
            h.update(b"".join(entry.encode() for entry in node.acl))
        for session in sorted(self.sessions):
            h.update(session.to_bytes(8, "big", signed=True) + self.sessions[session].to_bytes(4, "big"))
        return h.hexdigest()


def _multi_result(kind: int, sub: ApplyResult) -> OpResult:
    """A multi's per-op result; TTL and container creates report as create2, as ZooKeeper does."""
    if kind in (OpCode.CREATE_TTL, OpCode.CREATE_CONTAINER):
        kind = OpCode.CREATE2
    return OpResult(kind, 0, _multi_result_body(kind, sub))


def _multi_result_body(kind: int, sub: ApplyResult) -> Any:
    if kind in (OpCode.CREATE, OpCode.CREATE_TTL, OpCode.CREATE_CONTAINER, OpCode.CREATE2):
        assert sub.stat is not None
        return Create2Response(sub.path, sub.stat) if kind != OpCode.CREATE else CreateResponse(sub.path)
    if kind == OpCode.SET_DATA:
        assert sub.stat is not None
        return StatResponse(sub.stat)
    return None


_APPLY: dict[type, Callable[[DataTree, TxnHeader, Any, ApplyResult], None]] = {
    CreateTxn: DataTree._apply_create,
    CreateTTLTxn: DataTree._apply_create,
    CreateContainerTxn: DataTree._apply_create,
    DeleteTxn: DataTree._apply_delete,
    SetDataTxn: DataTree._apply_set_data,
    SetACLTxn: DataTree._apply_set_acl,
    CheckVersionTxn: DataTree._apply_check,
    ErrorTxn: DataTree._apply_error,
    CreateSessionTxn: DataTree._apply_create_session,
    CloseSessionTxn: DataTree._apply_close_session,
    type(None): DataTree._apply_close_session,
    MultiTxn: DataTree._apply_multi,
}
