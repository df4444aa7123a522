"""The znode tree and `apply(txn)`: every replica applies the same txns in zxid order and gets
the same tree, Stat for Stat. Reads for the slow path live here too; the hot read path is native.
"""

from __future__ import annotations

import hashlib
import struct
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import attrgetter, ne
from typing import Any, Protocol

from zkcore import _acl
from zkcore._errors import Code, NoNodeError
from zkcore._paths import split_path
from zkcore._records import (
    ACL,
    CONTAINER_EPHEMERAL_OWNER,
    OPEN_ACL_UNSAFE,
    READ_ACL_UNSAFE,
    SET_DATA_OPCODE,
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
from zkcore._restore import (
    REPLAY_CREATE,
    REPLAY_CREATE_SESSION,
    REPLAY_DELETE,
    REPLAY_SET_DATA,
    SNAPSHOT_NODE,
    SnapshotNodes,
    TxnColumns,
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
_LONG = struct.Struct(">q")
# Where ephemeralOwner sits in SNAPSHOT_NODE: after the ACL number, czxid, mzxid, ctime, mtime,
# version, cversion and aversion.
_SNAPSHOT_OWNER_OFFSET = 48


class ReadIndex(Protocol):
    """The store a tree with an index keeps its znodes in: native.PathIndex or its Python twin.
    It holds each node's data, Stat (as clients see it: cversion is creates + deletes,
    ephemeralOwner only a session's), children and ACL number; apply, replay and the slow
    reads go through it, and the native read path answers from it."""

    def __len__(self) -> int: ...

    def __contains__(self, path: object) -> bool: ...

    def data_size(self) -> int: ...

    def put_batch(
        self, paths: list[str], datas: list[bytes], stats: Sequence[Sequence[int]], readable: bytes,
        acls: Sequence[int] | None = None,
    ) -> None: ...  # fmt: skip

    def get(self, path: str) -> tuple[bytes, bytes] | None: ...

    def stat(self, path: str) -> tuple[bytes, int] | None: ...

    def fields(self, path: str) -> tuple[int, ...] | None: ...

    def mark(self, path: str, mark: bool) -> None: ...

    def walk(self, nodes_max: int, bytes_max: int = ...) -> Iterator[tuple[bytes, list[int]]]: ...

    def children(self, path: str) -> list[str] | None: ...

    def set_data(self, path: str, data: bytes, mzxid: int, mtime: int, version: int) -> bytes: ...

    def create(
        self, path: str, data: bytes, readable: bool, acl: int, zxid: int, time: int, owner: int,
        parent_creates: int,
    ) -> bytes: ...  # fmt: skip

    def delete(self, path: str, zxid: int) -> int: ...

    def set_acl(self, path: str, acl: int, readable: bool, aversion: int) -> bytes: ...

    def read_batch(self, requests: bytes, zxid: int) -> tuple[bytes, bytes]: ...

    def read_run(self, requests: bytes | bytearray, zxid: int) -> tuple[bytes, int, int]: ...


def ephemeral_kind(owner: int) -> str:
    """'', 'session', 'container' or 'ttl' for a node's ephemeralOwner (ZooKeeper's EphemeralType)."""
    if owner == 0:
        return ""
    if owner == CONTAINER_EPHEMERAL_OWNER:
        return "container"
    if owner & TTL_EPHEMERAL_MASK == TTL_EPHEMERAL_MASK:
        return "ttl"
    return "session"


def reported_owner(owner: int) -> int:
    """A node's ephemeralOwner as its Stat reports it: only a session's, as ZooKeeper does."""
    return owner if not owner or ephemeral_kind(owner) == "session" else 0


class _NoChildren(dict[str, None]):
    """The empty children dict that every leaf shares (a dict of its own costs a leaf 64 bytes,
    most of a tree's nodes are leaves). It refuses writes: a node gets its own dict with its first
    child (Node.add_child)."""

    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> Any:
        raise TypeError("a leaf's children are the shared NO_CHILDREN: add one with Node.add_child")

    __setitem__ = __delitem__ = setdefault = update = pop = popitem = clear = __ior__ = _refuse

    def __reduce__(self) -> str:
        return "NO_CHILDREN"  # pickle and copy keep the one shared instance


NO_CHILDREN: dict[str, None] = _NoChildren()


def _no_children() -> dict[str, None]:
    return NO_CHILDREN


class InIndex:
    """What a Node built from a tree's index holds where the index keeps the real thing: how
    many there are. Node.data: the length of the data (DataTree.node_data gives the bytes);
    Node.children: how many children (DataTree.child_names gives their names). len() and truth
    work on it as on what it stands for; it cannot be iterated."""

    __slots__ = ("length",)

    def __init__(self, length: int) -> None:
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        return f"InIndex({self.length})"

    def __reduce__(self) -> tuple[Any, tuple[int]]:
        return in_index, (self.length,)  # pickle and copy keep the interned instances


_INTERNED_LENGTHS = 4096  # lengths below it share one InIndex each: most data is small
_IN_INDEX: dict[int, InIndex] = {}


def in_index(length: int) -> InIndex:
    if length >= _INTERNED_LENGTHS:
        return InIndex(length)
    marker = _IN_INDEX.get(length)
    if marker is None:
        marker = _IN_INDEX[length] = InIndex(length)
    return marker


@dataclass(slots=True, eq=False)
class Node:
    """A znode as a tree without index keeps it, or as a tree with one shows it: DataTree.nodes
    builds it from the index, its data and children InIndex (DataTree.node_data and child_names
    read either), and changing it changes nothing. `stat()` adds dataLength and numChildren."""

    data: bytes | InIndex
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
    children: dict[str, None] | InIndex = field(default_factory=_no_children)

    def add_child(self, name: str) -> None:
        children = self.children
        assert not isinstance(children, InIndex), "a node built from the index does not change"
        if children:
            children[name] = None
        else:  # NO_CHILDREN, a copy of it, or a dict its children all left
            self.children = {name: None}

    def drop_child(self, name: str) -> None:
        children = self.children
        assert not isinstance(children, InIndex), "a node built from the index does not change"
        del children[name]

    def stat_fields(self) -> tuple[int, ...]:
        """Stat as clients see it. `cversion` is kept as the count of creates (it names the
        next sequential child) and reported as creates + deletes; ephemeralOwner is reported
        only for session ephemerals, as ZooKeeper does."""
        children = len(self.children)
        return (
            self.czxid, self.mzxid, self.ctime, self.mtime, self.version,
            self.cversion * 2 - children, self.aversion, reported_owner(self.ephemeral_owner),
            len(self.data), children, self.pzxid,
        )  # fmt: skip

    def reported_cversion(self) -> int:
        return self.cversion * 2 - len(self.children)

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
    node: Node | None = None  # the node a create, setData or setACL left, in a tree without index
    multi: list[OpResult] | None = None
    events: list[tuple[int, str]] = field(default_factory=list)
    stat_packed: bytes | None = None  # that node's Stat as the index packed it, in a tree with one
    # The ACLs of the nodes it deleted, by path: whom their events may reach (kept by apply()
    # when asked, as a server with a watch set asks; None otherwise, and a delete looks up none).
    deleted_acls: dict[str, tuple[ACL, ...]] | None = None

    @property
    def stat(self) -> Stat | None:
        """The node's Stat. Read it before applying the next txn: most applies (a replay at
        startup) never ask, so it is built on demand."""
        if self.stat_packed is not None:
            return Stat.decode(self.stat_packed)
        return None if self.node is None else self.node.stat()

    def stat_bytes(self) -> bytes | None:
        """The node's Stat, packed."""
        if self.stat_packed is not None:
            return self.stat_packed
        return None if self.node is None else self.node.stat_bytes()


class DataTree:
    """Path -> Node, the sessions that own ephemerals, and the highest zxid applied.

    A tree keeps its znodes in one of two stores. Without an index, `nodes` is a dict of Node.
    With one (a server's tree: native.PathIndex, or its Python twin), the index is the only store
    of every znode: data, Stat, children and ACL number, and `nodes` is a read-only view that
    builds a Node from it on demand; the tree adds only the ACL lists by number and the owners
    the Stat does not report (containers, TTL nodes). attach_index moves a tree to its index."""

    def __init__(self, index: ReadIndex | None = None, *, populate: bool = True) -> None:
        self.nodes: Mapping[str, Node] = {}
        self.ephemerals: dict[int, dict[str, None]] = {}
        self.containers: dict[str, None] = {}
        self.ttls: dict[str, int] = {}  # path -> the TTL node's ephemeralOwner (its TTL inside)
        self.sessions: dict[int, int] = {}  # session id -> negotiated timeout in ms
        self.last_zxid = 0
        self._index: ReadIndex | None = None
        self._acls: dict[tuple[ACL, ...], tuple[ACL, ...]] = {}
        self._acl_list: list[tuple[ACL, ...]] = []  # the index's ACL numbers: interning order
        self._acl_numbers: dict[int, int] = {}  # id of an interned list -> its number
        self._readable: dict[tuple[ACL, ...], bool] = {}
        # The ACL list last interned and last judged, and the answers: a tree mostly has one or
        # two, and hashing one runs the dataclass __hash__ of each entry and its Id in Python.
        self._last_acl: tuple[tuple[ACL, ...], tuple[ACL, ...]] | None = None
        self._last_readable: tuple[tuple[ACL, ...], bool] | None = None
        if populate:  # from_snapshot brings every node, the root and system nodes too
            nodes: dict[str, Node] = {"/": Node(b"", self.intern_acl(OPEN_ACL_UNSAFE), 0, 0, 0, 0)}
            # ZooKeeper's system nodes: added as children without counting as creates.
            for path, acl, aversion in SYSTEM_NODES:
                parent_path, name = split_path(path)
                nodes[parent_path].add_child(name)
                nodes[path] = Node(b"", self.intern_acl(acl), 0, 0, 0, 0, aversion=aversion)
            self.nodes = nodes
        if index is not None:
            self.attach_index(index)

    # --- bookkeeping ----------------------------------------------------------------------

    def intern_acl(self, acl: tuple[ACL, ...]) -> tuple[ACL, ...]:
        last = self._last_acl
        if last is not None and last[0] is acl:  # decoding shares the tuple of a repeated ACL
            return last[1]
        interned = self._acls.setdefault(acl, acl)
        if interned is acl and id(acl) not in self._acl_numbers:
            self._acl_numbers[id(acl)] = len(self._acl_list)
            self._acl_list.append(acl)
        self._last_acl = (acl, interned)
        return interned

    def _world_readable(self, acl: tuple[ACL, ...]) -> bool:
        last = self._last_readable
        if last is not None and last[0] is acl:
            return last[1]
        readable = self._readable.get(acl)
        if readable is None:
            readable = self._readable[acl] = _acl.world_readable(acl)
        self._last_readable = (acl, readable)
        return readable

    def _hidden_owner(self, path: str) -> int:
        """The ephemeralOwner of a node whose Stat reports 0: a container's or TTL node's, else 0."""
        if path in self.containers:
            return CONTAINER_EPHEMERAL_OWNER
        return self.ttls.get(path, 0)

    def _node_from(self, path: str, stat: bytes, acl: int) -> Node:
        """A Node as the index holds it (its data and children InIndex): what `nodes` gives
        in a tree with an index. Changing it changes nothing in the tree."""
        czxid, mzxid, ctime, mtime, version, cversion, aversion, owner, length, children, pzxid = (
            _STAT.unpack(stat)
        )
        if not owner and (self.containers or self.ttls):
            owner = self._hidden_owner(path)
        return Node(
            in_index(length), self._acl_list[acl], czxid, mzxid, ctime, mtime, version,
            (cversion + children) // 2, aversion, owner, pzxid, in_index(children),
        )  # fmt: skip

    def change_fields(self, path: str) -> tuple[int, tuple[ACL, ...], int, int, int, int, int] | None:
        """What prep reads of the node at path, None if there is none: mzxid, ACL, version,
        creates (Node.cversion), aversion, ephemeralOwner and number of children; once per
        write, so without building a Node."""
        index = self._index
        if index is None:
            node = self.nodes.get(path)
            if node is None:
                return None
            return (
                node.mzxid, node.acl, node.version, node.cversion, node.aversion, node.ephemeral_owner,
                len(node.children),
            )  # fmt: skip
        fields = index.fields(path)
        if fields is None:
            return None
        mzxid, version, creates, aversion, owner, children, acl = fields
        if not owner and (self.containers or self.ttls):
            owner = self._hidden_owner(path)
        return mzxid, self._acl_list[acl], version, creates, aversion, owner, children

    def child_names(self, path: str, node: Node) -> list[str]:
        """The names of the children of the node at path, from the node or from the index."""
        children = node.children
        if not isinstance(children, InIndex):
            return list(children)
        if not children:
            return []
        assert self._index is not None, f"{path!r} has its children in an index this tree does not have"
        names = self._index.children(path)
        assert names is not None, f"{path!r} is in the tree but not in its index"
        return names

    def node_data(self, path: str, node: Node) -> bytes:
        """The data of the node at path, from the node or from the index that keeps it."""
        data = node.data
        if isinstance(data, bytes):
            return data
        assert self._index is not None, f"{path!r} has its data in an index this tree does not have"
        got = self._index.get(path)
        assert got is not None, f"{path!r} is in the tree but not in its index"
        return got[0]

    def _insert(self, path: str, node: Node) -> None:
        """Add a node to a tree without index."""
        assert isinstance(self.nodes, dict), "a tree with an index changes through it"
        self.nodes[path] = node
        if node.ephemeral_owner:
            self._own(path, node.ephemeral_owner)

    def _own(self, path: str, owner: int) -> None:
        """Note that the node at path has this ephemeralOwner: a session, container or TTL."""
        kind = ephemeral_kind(owner)
        if kind == "session":
            self.ephemerals.setdefault(owner, {})[path] = None
        elif kind == "container":
            self.containers[path] = None
        elif kind == "ttl":
            self.ttls[path] = owner

    def _disown(self, path: str, reported: int) -> None:
        """Forget the owner of a node that is gone, from the ephemeralOwner its Stat reported."""
        if reported:
            owned = self.ephemerals.get(reported)
            if owned is not None:
                owned.pop(path, None)
                if not owned:
                    del self.ephemerals[reported]
        elif self.containers or self.ttls:
            self.containers.pop(path, None)
            self.ttls.pop(path, None)

    @property
    def index(self) -> ReadIndex | None:
        """The index this tree keeps its znodes in, if it has one."""
        return self._index

    def attach_index(self, index: ReadIndex) -> None:
        """Move every node into an empty index, which is the tree's store from then on. A
        restarting server replays its log without an index and attaches one before it serves."""
        assert self._index is None, "this tree already has an index"
        nodes = list(self.nodes.values())
        acls = list(map(attrgetter("acl"), nodes))
        # Nodes share the few interned ACL lists: find each one's flag and number by identity.
        readable = {id(acl): self._world_readable(acl) for acl in self._acl_list}
        numbers = self._acl_numbers
        if not readable.keys() >= set(map(id, acls)):
            readable.update((id(acl), self._world_readable(acl)) for acl in acls)
            numbers = {id(acl): numbers[id(self.intern_acl(acl))] for acl in acls} | numbers
        ids = list(map(id, acls))
        flags = bytes(map(readable.__getitem__, ids))
        datas = [self.node_data(path, node) for path, node in zip(self.nodes, nodes, strict=True)]
        index.put_batch(
            list(self.nodes), datas, _stat_columns(nodes), flags, array("I", map(numbers.__getitem__, ids))
        )
        self._index = index
        self.nodes = _IndexedNodes(self, index)

    def __len__(self) -> int:
        return len(self.nodes)

    def __contains__(self, path: object) -> bool:
        return path in self.nodes

    def approximate_data_size(self) -> int:
        """The bytes of every node's path (UTF-8) and data, as ZooKeeper's mntr reports its
        tree's size: kept by the index as it changes; counted here for a tree without one."""
        if self._index is not None:
            return self._index.data_size()
        return sum(
            len(path.encode("utf-8", "surrogatepass")) + len(self.node_data(path, node))
            for path, node in self.nodes.items()
        )

    def _child_names_at(self, path: str) -> list[str]:
        """The names of the children of the node at path, which is in the tree."""
        if self._index is not None:
            return self._index.children(path) or []
        return self.child_names(path, self.nodes[path])

    # --- reads (the slow path: ACL checks with the caller's ids) --------------------------

    def node(self, path: str) -> Node:
        node = self.nodes.get(path)
        if node is None:
            raise NoNodeError(f"no node at {path!r}", path)
        return node

    def exists(self, path: str, auth_ids: Sequence[Id] | None = None) -> Stat | None:
        """The node's Stat, None if there is none. Given the caller's ids, a node it may not
        READ is NoAuth (ZooKeeper's exists since 3.8.4 and 3.9.2; a missing one stays None)."""
        node = self.nodes.get(path)
        if node is None:
            return None
        if auth_ids is not None:
            _acl.check_acl(node.acl, Perms.READ, auth_ids, path)
        return node.stat()

    def get_data(self, path: str, auth_ids: Sequence[Id] = ()) -> tuple[bytes, Stat]:
        node = self.node(path)
        _acl.check_acl(node.acl, Perms.READ, auth_ids, path)
        return self.node_data(path, node), node.stat()

    def get_children(self, path: str, auth_ids: Sequence[Id] = ()) -> tuple[list[str], Stat]:
        node = self.node(path)
        _acl.check_acl(node.acl, Perms.READ, auth_ids, path)
        return self.child_names(path, node), node.stat()

    def get_acl(self, path: str, auth_ids: Sequence[Id] = ()) -> tuple[tuple[ACL, ...], Stat]:
        """A node's ACL, for a caller who may READ or ADMIN it; without ADMIN, each digest
        entry's password hash hidden (`user:x`), as ZooKeeper's getACL has it since 3.6."""
        node = self.node(path)
        acl = node.acl
        _acl.check_acl(acl, Perms.READ | Perms.ADMIN, auth_ids, path)
        if not _acl.allows(acl, Perms.ADMIN, auth_ids):
            acl = _acl.without_digest_hashes(acl)
        return acl, node.stat()

    def all_children_number(self, path: str, auth_ids: Sequence[Id] = ()) -> int:
        """Descendants of `path`, not counting itself (getAllChildrenNumber)."""
        node = self.node(path)
        _acl.check_acl(node.acl, Perms.READ, auth_ids, path)
        return sum(1 for _ in _descendants(self._child_names_at, path)) - 1

    def get_ephemerals(self, session_id: int, prefix: str = "/") -> list[str]:
        owned = self.ephemerals.get(session_id, {})
        return sorted(p for p in owned if prefix == "/" or p == prefix or p.startswith(prefix))

    def expired_candidates(self, now_ms: int) -> list[str]:
        """Empty containers that once had children and TTL nodes idle past their TTL: the leader
        proposes deleteContainer for each (ZooKeeper's ContainerManager)."""
        out = []
        for p in self.containers:
            node = self.nodes[p]
            if not node.children and node.cversion > 0:
                out.append(p)
        for p, owner in self.ttls.items():
            node = self.nodes[p]
            if not node.children and now_ms - node.mtime > owner & ~TTL_EPHEMERAL_MASK:
                out.append(p)
        return out

    # --- apply ----------------------------------------------------------------------------

    def apply(self, txn: Txn, deleted_acls: bool = False) -> ApplyResult:
        """Apply a txn in zxid order. Txns come from prep, so failures here mean a replayed
        txn that the state already reflects; they are reported, never raised. `deleted_acls`:
        keep the ACL of each node it deletes in the result (for whom its events may reach)."""
        header = txn.header
        result = ApplyResult(header.zxid, header.type, deleted_acls={} if deleted_acls else None)
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
        parent_path, _ = split_path(path)
        if not self._create(path, txn.data, self.intern_acl(txn.acl), header.zxid, header.time, owner,
                            txn.parent_cversion, result):  # fmt: skip
            return
        result.path = path
        result.events += [(NODE_CREATED, path), (NODE_CHILDREN_CHANGED, parent_path)]

    def _create(
        self, path: str, data: bytes, acl: tuple[ACL, ...], zxid: int, now: int, owner: int, parent_creates: int,
        result: ApplyResult,
    ) -> bool:  # fmt: skip
        """Create the node at path (one with a parent; acl interned) as the txn at zxid, if its
        parent is there and it is not: whether it did. result gets the error, or the node (its Stat)."""
        index = self._index
        if index is not None:
            try:
                result.stat_packed = index.create(
                    path, data, self._world_readable(acl), self._acl_numbers[id(acl)], zxid, now,
                    reported_owner(owner), parent_creates,
                )  # fmt: skip
            except KeyError:  # the parent is missing, or the node is there
                result.err = Code.NODE_EXISTS if path in index else Code.NO_NODE
                return False
            if owner:
                self._own(path, owner)
            return True
        nodes = self.nodes
        assert isinstance(nodes, dict)
        cut = path.rfind("/")
        parent = nodes.get(path[:cut] or "/")
        if parent is None:
            result.err = Code.NO_NODE
            return False
        if path in nodes:
            result.err = Code.NODE_EXISTS
            return False
        node = Node(data, acl, zxid, zxid, now, now, ephemeral_owner=owner, pzxid=zxid)
        parent.add_child(path[cut + 1 :])
        # A replayed create may be older than the parent's state; never move cversion back.
        if parent_creates > parent.cversion:
            parent.cversion = parent_creates
            parent.pzxid = zxid
        self._insert(path, node)
        result.node = node
        return True

    def delete_node(self, path: str, zxid: int, result: ApplyResult) -> None:
        if path == "/":
            result.err = Code.NO_NODE
            return
        index = self._index
        if result.deleted_acls is not None:
            fields = self.change_fields(path)
            if fields is not None:
                result.deleted_acls[path] = fields[1]
        if index is not None:
            try:
                reported = index.delete(path, zxid)
            except KeyError:
                result.err = Code.NO_NODE
                return
            except ValueError:  # never from prep (ephemerals have no children); a replayed txn may
                result.err = Code.NOT_EMPTY
                return
        else:
            nodes = self.nodes
            assert isinstance(nodes, dict)
            node = nodes.get(path)
            if node is None:
                result.err = Code.NO_NODE
                return
            if node.children:
                result.err = Code.NOT_EMPTY
                return
            parent = nodes[path[: path.rfind("/")] or "/"]
            del nodes[path]
            parent.drop_child(path[path.rfind("/") + 1 :])
            if zxid > parent.pzxid:
                parent.pzxid = zxid
            reported = reported_owner(node.ephemeral_owner)
        self._disown(path, reported)
        result.events += [(NODE_DELETED, path), (NODE_CHILDREN_CHANGED, path[: path.rfind("/")] or "/")]

    def _apply_delete(self, header: TxnHeader, txn: Any, result: ApplyResult) -> None:
        self.delete_node(txn.path, header.zxid, result)

    def _apply_set_data(self, header: TxnHeader, txn: Any, result: ApplyResult) -> None:
        self._set_data(txn.path, txn.data, header.zxid, header.time, txn.version, result)

    def apply_set_data(self, zxid: int, time: int, path: str, data: bytes, version: int) -> ApplyResult:
        """apply() of a SetDataTxn stamped zxid and time, from its fields (the server's own
        clients' setData, prepped without a Txn)."""
        result = ApplyResult(zxid, SET_DATA_OPCODE)
        self._set_data(path, data, zxid, time, version, result)
        if zxid > self.last_zxid:
            self.last_zxid = zxid
        return result

    def set_data_stat(self, zxid: int, time: int, path: str, data: bytes, version: int) -> bytes | None:
        """setData on the node at path, if it is there: its Stat now, packed, or None (nothing
        applied) when there is none. apply_set_data without its ApplyResult, for a server that
        no watch waits on."""
        index = self._index
        if index is not None:
            try:
                stat = index.set_data(path, data, zxid, time, version)
            except KeyError:
                return None
        else:
            node = self.nodes.get(path)
            if node is None:
                return None
            node.data, node.mtime, node.mzxid, node.version = data, time, zxid, version
            stat = node.stat_bytes()
        if zxid > self.last_zxid:
            self.last_zxid = zxid
        return stat

    def _set_data(
        self, path: str, data: bytes, zxid: int, now: int, version: int, result: ApplyResult
    ) -> None:
        """set_data_stat, told in result: the error, or the node's Stat, its path and the event."""
        stat = self.set_data_stat(zxid, now, path, data, version)
        if stat is None:
            result.err = Code.NO_NODE
            return
        result.stat_packed, result.path = stat, path
        result.events.append((NODE_DATA_CHANGED, path))

    def _apply_set_acl(self, header: TxnHeader, txn: Any, result: ApplyResult) -> None:
        acl = self.intern_acl(txn.acl)
        index = self._index
        if index is not None:
            try:
                result.stat_packed = index.set_acl(
                    txn.path, self._acl_numbers[id(acl)], self._world_readable(acl), txn.version
                )
            except KeyError:
                result.err = Code.NO_NODE
                return
        else:
            node = self.nodes.get(txn.path)
            if node is None:
                result.err = Code.NO_NODE
                return
            node.acl = acl
            node.aversion = txn.version
            result.node = node
        result.path = txn.path

    def _apply_check(self, header: TxnHeader, txn: Any, result: ApplyResult) -> None:
        result.path = txn.path

    def _apply_error(self, header: TxnHeader, txn: Any, result: ApplyResult) -> None:
        result.err = txn.err

    def _apply_create_session(self, header: TxnHeader, txn: Any, result: ApplyResult) -> None:
        self.sessions[header.client_id] = txn.timeout_ms

    def _apply_close_session(self, header: TxnHeader, txn: Any, result: ApplyResult) -> None:
        session = header.client_id
        owned = self.ephemerals.get(session, {})
        paths = txn.paths_to_delete if txn is not None else sorted(owned)
        # Children before parents cannot happen (ephemerals have no children), but a listed
        # path may already be gone or owned by someone else on replay: skip those.
        for path in paths:
            if path in owned:
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
            sub = ApplyResult(header.zxid, kind, deleted_acls=result.deleted_acls)
            self._apply_one(sub_header, body, sub)
            assert sub.err == Code.OK, f"multi sub-txn failed on apply: {kind} {body} -> {sub.err}"
            result.events += sub.events
            result.multi.append(_multi_result(kind, sub))

    # --- replay ---------------------------------------------------------------------------

    def replay(self, txns: TxnColumns) -> None:
        """Apply decoded txns in zxid order, leaving exactly the tree that apply() would, but
        without results or watch events: how a restarting server catches up on its log.
        Creates, deletes, setData and createSession run inline; other txns go through apply()."""
        last = self.last_zxid
        scratch = ApplyResult(0, OpCode.DELETE)
        given: tuple[ACL, ...] | None = None  # the last create's ACL as decoded, and interned
        acl: tuple[ACL, ...] = OPEN_ACL_UNSAFE
        rows = zip(
            txns.kinds, txns.zxids, txns.times, txns.client_ids, txns.owners, txns.numbers, txns.paths,
            txns.datas, txns.acls, strict=True,
        )  # fmt: skip
        create, set_data, delete = self._create, self._set_data, self.delete_node
        try:
            for kind, zxid, now, client_id, owner, number, path, data, txn_acl in rows:
                if kind == REPLAY_CREATE:
                    if txn_acl is not given:
                        given, acl = txn_acl, self.intern_acl(txn_acl)
                    create(path, data, acl, zxid, now, owner, number, scratch)
                elif kind == REPLAY_SET_DATA:
                    set_data(path, data, zxid, now, number, scratch)
                elif kind == REPLAY_DELETE:
                    delete(path, zxid, scratch)
                    scratch.events.clear()
                elif kind == REPLAY_CREATE_SESSION:
                    self.sessions[client_id] = number
                else:
                    self.last_zxid = last
                    self.apply(Txn.decode(data))
                    last = self.last_zxid
                if zxid > last:
                    last = zxid
        finally:
            self.last_zxid = last

    # --- bulk loading (zkcore/_snapshot.py reads the format) -------------------------------

    def load_columns(
        self, columns: SnapshotNodes, acls: list[tuple[ACL, ...]], *, for_index: bool = False
    ) -> None:
        """Build a snapshot's nodes in bulk, from records the scan has checked (each parent
        before its children, no path twice): this is most of a restart from a snapshot. With
        for_index, no Node is built: attach_loaded_index (next, and before anything else) puts
        the nodes in the index straight from the columns."""
        for i in compress(range(len(columns)), columns.owners):
            self._own(columns.paths[i], columns.owners[i])
        if for_index:
            return
        # A node's zxids and times mostly repeat (czxid = mzxid = pzxid for a leaf never written
        # since): share those ints, as a node built by apply() does, rather than make new ones.
        czxids, ctimes = columns.czxids.tolist(), columns.ctimes.tolist()
        built = list(
            map(
                Node, columns.datas, map(acls.__getitem__, columns.acl_numbers), czxids,
                _reusing(czxids, columns.mzxids, columns.czxids), ctimes,
                _reusing(ctimes, columns.mtimes, columns.ctimes), columns.versions, columns.cversions,
                columns.aversions, columns.owners, _reusing(czxids, columns.pzxids, columns.czxids),
                repeat(NO_CHILDREN),
            )
        )  # fmt: skip
        self.nodes = dict(zip(columns.paths, built, strict=True))
        counts, names, start = columns.child_counts, columns.child_names, 0
        for i, count in zip(compress(range(len(built)), counts), filter(None, counts), strict=True):
            built[i].children = dict.fromkeys(names[start : start + count])
            start += count

    def attach_loaded_index(
        self, index: ReadIndex, columns: SnapshotNodes, acls: list[tuple[ACL, ...]]
    ) -> None:
        """attach_index for a tree just loaded from these columns with for_index, straight from
        them: the Stat as clients see it, where only the few parents and ephemerals differ from
        what was persisted. Once every node has its children, so each Stat is final."""
        assert self._index is None, "this tree already has an index"
        n, counts = len(columns), columns.child_counts
        cversions, owners = columns.cversions, columns.owners
        changed = list(compress(range(n), map(ne, cversions, counts)))  # creates != children
        if changed:
            cversions = array("q", cversions)
            for i in changed:
                cversions[i] = cversions[i] * 2 - counts[i]
        hidden = [i for i in compress(range(n), owners) if ephemeral_kind(owners[i]) != "session"]
        if hidden:
            owners = array("q", owners)
            for i in hidden:
                owners[i] = 0
        table = bytes(map(self._world_readable, acls))
        numbers: Sequence[int] = columns.acl_numbers
        mine = [self._acl_numbers[id(acl)] for acl in acls]  # tree_from_snapshot interned them
        if mine != list(range(len(acls))):  # the snapshot's numbers are not this tree's
            numbers = array("I", map(mine.__getitem__, numbers))
        stats = [columns.czxids, columns.mzxids, columns.ctimes, columns.mtimes, columns.versions, cversions]
        stats += [columns.aversions, owners, columns.pzxids]
        index.put_batch(
            columns.paths, columns.datas, stats, bytes(map(table.__getitem__, columns.acl_numbers)), numbers
        )
        self._index = index
        self.nodes = _IndexedNodes(self, index)

    def snapshot_records(
        self, chunk_nodes: int, chunk_bytes: int
    ) -> tuple[list[tuple[ACL, ...]], Iterator[bytes]]:
        """What a snapshot holds of the nodes: the ACL lists they name by number, and their
        records (zkcore/_snapshot.py's format: path, data, ACL number, the persisted Stat with
        cversion as creates and a container's or TTL node's ephemeralOwner too), parents before
        their children, chunk_nodes records at a time (fewer once a chunk holds chunk_bytes, but
        at least one). A tree with an index has the index write them (native: in C) and numbers
        the lists as it does, every list it has interned; one without numbers the lists its
        nodes use."""
        if self._index is None:
            return self._snapshot_nodes(chunk_nodes, chunk_bytes)
        return list(self._acl_list), self._snapshot_index(self._index, chunk_nodes, chunk_bytes)

    def _snapshot_nodes(
        self, chunk_nodes: int, chunk_bytes: int
    ) -> tuple[list[tuple[ACL, ...]], Iterator[bytes]]:
        # ACL lists numbered by identity: nodes share the tree's interned lists, and hashing one
        # by value runs the dataclass __hash__ of each entry in Python, twice a node.
        numbers: dict[int, int] = {}
        acls: list[tuple[ACL, ...]] = []
        for node in self.nodes.values():
            if id(node.acl) not in numbers:
                numbers[id(node.acl)] = len(acls)
                acls.append(node.acl)

        def chunks() -> Iterator[bytes]:
            buf, pack, int_pack, count = bytearray(), SNAPSHOT_NODE.pack, _INT.pack, 0
            for path, node in self.nodes.items():
                raw = path.encode("utf-8", "surrogatepass")
                data = self.node_data(path, node)
                buf += int_pack(len(raw))
                buf += raw
                buf += int_pack(len(data))
                buf += data
                buf += pack(
                    numbers[id(node.acl)], node.czxid, node.mzxid, node.ctime, node.mtime, node.version,
                    node.cversion, node.aversion, node.ephemeral_owner, node.pzxid,
                )  # fmt: skip
                count += 1
                if count == chunk_nodes or len(buf) >= chunk_bytes:
                    yield bytes(buf)
                    buf.clear()
                    count = 0
            if buf:
                yield bytes(buf)

        return acls, chunks()

    def _snapshot_index(self, index: ReadIndex, chunk_nodes: int, chunk_bytes: int) -> Iterator[bytes]:
        """The index's walk, with the ephemeralOwner its Stats leave out (containers', TTL
        nodes') patched into the records of the nodes marked for it."""
        for path in (*self.containers, *self.ttls):
            index.mark(path, True)
        for records, marked in index.walk(chunk_nodes, chunk_bytes):
            if marked:
                buf = bytearray(records)
                for at in marked:
                    (length,) = _INT.unpack_from(buf, at)
                    path = buf[at + 4 : at + 4 + length].decode("utf-8", "surrogatepass")
                    (data_length,) = _INT.unpack_from(buf, at + 4 + length)
                    owner_at = at + 4 + length + 4 + data_length + _SNAPSHOT_OWNER_OFFSET
                    _LONG.pack_into(buf, owner_at, self._hidden_owner(path))
                records = bytes(buf)
            yield records

    def digest(self) -> str:
        """A hash of the whole state that does not depend on history, for comparing replicas."""
        h = hashlib.sha256()
        for path in sorted(self.nodes):
            node = self.nodes[path]
            h.update(path.encode("utf-8", "surrogatepass") + b"\0")
            h.update(node.stat_bytes())
            data = self.node_data(path, node)
            h.update(len(data).to_bytes(4, "big") + data)
            h.update(b"".join(entry.encode() for entry in node.acl))
        for session in sorted(self.sessions):
            h.update(session.to_bytes(8, "big", signed=True) + self.sessions[session].to_bytes(4, "big"))
        return h.hexdigest()


class _IndexedNodes(Mapping[str, Node]):
    """The nodes of a tree with an index, read-only: each one built from the index when asked,
    in order parents before children (each node's children in the index's order)."""

    __slots__ = ("_tree", "_index")

    def __init__(self, tree: DataTree, index: ReadIndex) -> None:
        self._tree = tree
        self._index = index

    def get(self, path: str, default: Any = None) -> Any:
        found = self._index.stat(path) if isinstance(path, str) else None
        return default if found is None else self._tree._node_from(path, *found)

    def __getitem__(self, path: str) -> Node:
        node: Node | None = self.get(path)
        if node is None:
            raise KeyError(path)
        return node

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and path in self._index

    def __len__(self) -> int:
        return len(self._index)

    def __iter__(self) -> Iterator[str]:
        return _descendants(self._tree._child_names_at, "/") if "/" in self._index else iter(())


def _descendants(child_names: Callable[[str], list[str]], top: str) -> Iterator[str]:
    """top and every path under it, each parent before its children."""
    stack = [top]
    while stack:
        path = stack.pop()
        yield path
        prefix = path if path == "/" else path + "/"
        stack.extend(prefix + name for name in reversed(child_names(path)))


def _reusing(shared: list[int], values: array[int], shared_values: array[int]) -> list[int]:
    """values as a list of ints that are the ones in `shared` (whose values are shared_values)
    wherever the two agree."""
    if values == shared_values:
        return shared
    out = list(shared)
    for i in compress(range(len(values)), map(ne, values, shared_values)):
        out[i] = values[i]
    return out


def _stat_columns(nodes: list[Node]) -> list[list[int]]:
    """The Stat fields of nodes as columns, as Node.stat_fields gives them, less dataLength and
    numChildren (which the index keeps itself)."""
    cversions = list(map(Node.reported_cversion, nodes))
    owners = list(map(reported_owner, map(attrgetter("ephemeral_owner"), nodes)))
    columns = [list(map(attrgetter(name), nodes)) for name in ("czxid", "mzxid", "ctime", "mtime")]
    columns += [list(map(attrgetter("version"), nodes)), cversions, list(map(attrgetter("aversion"), nodes))]
    return [*columns, owners, list(map(attrgetter("pzxid"), nodes))]


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
