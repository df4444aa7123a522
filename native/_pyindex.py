"""The pure-Python twin of the path index: every znode's data, Stat and children by path, and the
batched read path that answers exists/getData/getChildren/getChildren2 from it in one call.

The argument checks and error messages at the bottom are shared with native/_cindex.py.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterator, Sequence

from zkcore import Code, OpCode, limits

STAT_BYTES = 68
# put_batch's Stat columns: czxid, mzxid, ctime, mtime, version, cversion, aversion,
# ephemeralOwner, pzxid (the Stat less dataLength and numChildren, which the index keeps).
STAT_FIELDS = 9
_STAT_INT_FIELDS = (4, 5, 6)  # version, cversion, aversion are jute ints
_STAT_PUT = struct.Struct(">qqqqiiiqiiq")
_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1
# The Stat fields the index keeps true itself, whatever the caller put.
_STAT_MZXID_OFFSET = 8
_STAT_MTIME_OFFSET = 24
_STAT_CVERSION_OFFSET = 36
_STAT_DATA_LENGTH_OFFSET = 52
_STAT_NUM_CHILDREN_OFFSET = 56
_STAT_PZXID_OFFSET = 60
_STAT_AVERSION_OFFSET = 40
_STAT_OWNER_OFFSET = 44
_UINT32_MAX = (1 << 32) - 1

# Per-frame status bytes of read_batch.
STATUS_ANSWERED = 0
STATUS_WATCH = 1
STATUS_SLOW = 2

_OP_EXISTS = int(OpCode.EXISTS)
_OP_GET_DATA = int(OpCode.GET_DATA)
_OP_GET_CHILDREN = int(OpCode.GET_CHILDREN)
_OP_GET_CHILDREN2 = int(OpCode.GET_CHILDREN2)
_READ_OPS = frozenset({_OP_EXISTS, _OP_GET_DATA, _OP_GET_CHILDREN, _OP_GET_CHILDREN2})
_ERR_NO_NODE = int(Code.NO_NODE)
_OK = bytes(4)  # a reply's err field when it succeeded

_INT = struct.Struct(">i")
_LONG = struct.Struct(">q")
_SET_DATA = struct.Struct(">qi")  # mtime, version
_FIELDS = struct.Struct(">8xq16xiiiq4xi8x")
# A snapshot record after its path and data: ACL number; czxid, mzxid, ctime, mtime, version as
# the Stat has them; creates; aversion and ephemeralOwner as the Stat has them; pzxid.
_WALK_TAIL = struct.Struct(
    ">I36si12s8s"
)  # the ACL number as C writes a uint32  # mzxid, version, cversion, aversion, owner, numChildren
_COUNTS = struct.Struct(">ii")  # dataLength, numChildren
_REQUEST = struct.Struct(">iii")  # RequestHeader (xid, type), then the path's length
_REQUEST_BYTES_MIN = _REQUEST.size + 1  # ... and the watch flag
_REPLY = struct.Struct(">iiqi")  # frame length, then ReplyHeader (xid, zxid, err)
_REPLY_DATA = struct.Struct(">iiqii")  # ... then getData's buffer length
_REPLY_HEADER_BYTES = 16
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1


class _Node:
    __slots__ = ("name", "data", "stat", "readable", "acl", "mark", "parent", "children", "pos")

    def __init__(self, name: bytes, parent: _Node | None) -> None:
        self.name = name
        self.data = b""
        self.stat = bytes(STAT_BYTES)
        self.readable = True
        self.acl = 0  # the tree's number for the node's ACL list
        self.mark = False  # a walk lists where marked nodes' records start
        self.parent = parent
        self.children: list[_Node] = []
        self.pos = 0  # where this node sits in parent.children

    def assign(self, data: bytes, stat: bytes, readable: bool, acl: int) -> None:
        self.data = data
        self.acl = acl
        self.stat = (
            stat[:_STAT_DATA_LENGTH_OFFSET]
            + _COUNTS.pack(len(data), len(self.children))
            + stat[_STAT_PZXID_OFFSET:]
        )
        self.readable = readable

    def patch_children(self) -> None:
        stat = self.stat
        self.stat = (
            stat[:_STAT_NUM_CHILDREN_OFFSET] + _INT.pack(len(self.children)) + stat[_STAT_PZXID_OFFSET:]
        )

    def creates(self, children: int) -> int:
        """How many creates this node's children have seen, from its Stat as it was with this
        many children: a Stat reports cversion as creates x 2 - children (creates + deletes)."""
        cversion: int = _INT.unpack_from(self.stat, _STAT_CVERSION_OFFSET)[0]
        return (cversion + children) // 2

    def patch_parent(self, creates: int, pzxid: int) -> None:
        """cversion from creates and the children now; pzxid."""
        stat = self.stat
        self.stat = (
            stat[:_STAT_CVERSION_OFFSET] + _INT.pack(_int32(creates * 2 - len(self.children)))
            + stat[_STAT_CVERSION_OFFSET + 4 : _STAT_PZXID_OFFSET] + _LONG.pack(pzxid)
        )  # fmt: skip


# A walk's chunks are bounded by their nodes alone unless told otherwise (a size_t in C).
WALK_BYTES_MAX = 2**63 - 1


class PathIndex:
    """Znodes by path: data, Stat (dataLength and numChildren kept true) and a readable flag.

    Children keep insertion order, except that a removal moves the last child into the hole.
    """

    __slots__ = ("_nodes", "_data_size")

    def __init__(self) -> None:
        self._nodes: dict[bytes, _Node] = {}
        self._data_size = 0

    def __len__(self) -> int:
        return len(self._nodes)

    def data_size(self) -> int:
        """The bytes of every node's path and data: ZooKeeper's approximate data size."""
        return self._data_size

    def __contains__(self, path: object) -> bool:
        return path_key(path) in self._nodes

    def put(self, path: str, data: bytes, stat: bytes, readable: bool, acl: int = 0) -> None:
        """The node at path as given, its Stat's dataLength and numChildren kept true, `acl` the
        tree's number for its ACL list; its parent must be in the index (or path is "/")."""
        key, data, stat = put_check(path, data, stat, readable, acl)
        node = self._nodes.get(key)
        if node is None:
            node = self._insert(path, key)
        self._data_size += len(data) - len(node.data)
        node.assign(data, stat, readable, acl)

    def put_batch(
        self, paths: Sequence[str], datas: Sequence[bytes], stats: Sequence[Sequence[int]], readable: bytes,
        acls: Sequence[int] | None = None,
    ) -> None:  # fmt: skip
        """put() for each node in order: stats holds STAT_FIELDS columns, readable one flag byte
        per node, acls one ACL number per node (0 for each when None). A failing put raises as
        put() would, with the ones before it done."""
        for i in range(put_batch_check(paths, datas, stats, readable, acls)):
            acl = 0 if acls is None else acls[i]
            self.put(paths[i], datas[i], put_batch_stat(stats, i), readable[i] != 0, acl)

    def _insert(self, path: str, key: bytes) -> _Node:
        if key == b"/":
            node = self._nodes[key] = _Node(b"", None)
            self._data_size += 1
            return node
        slash = key.rindex(b"/")
        parent = self._nodes.get(key[:slash] or b"/")
        if parent is None:
            raise parent_missing_error(path)
        node = self._nodes[key] = _Node(key[slash + 1 :], parent)
        self._data_size += len(key)
        node.pos = len(parent.children)
        parent.children.append(node)
        parent.patch_children()
        return node

    def remove(self, path: str) -> None:
        self._remove(path)

    def _remove(self, path: str) -> _Node:
        """remove(path); the parent the node left."""
        key = path_key(path)
        remove_check(path)
        node = self._nodes.get(key)
        if node is None:
            raise absent_error(path)
        if node.children:
            raise has_children_error(path)
        parent = node.parent
        assert parent is not None, "only the root has no parent"
        last = parent.children.pop()
        if last is not node:
            parent.children[node.pos] = last
            last.pos = node.pos
        parent.patch_children()
        del self._nodes[key]
        self._data_size -= len(key) + len(node.data)
        return parent

    # --- apply: a txn's whole change in one call, the Stat fields it changes set here ---------

    def set_data(self, path: str, data: bytes, mzxid: int, mtime: int, version: int) -> bytes:
        """setData's data, mzxid, mtime and version, the rest of the Stat kept: the new Stat."""
        data = set_data_check(path, data, mzxid, mtime, version)
        node = self._nodes.get(path_key(path))
        if node is None:
            raise absent_error(path)
        stat = node.stat
        self._data_size += len(data) - len(node.data)
        node.data = data
        node.stat = (
            stat[:_STAT_MZXID_OFFSET] + _LONG.pack(mzxid) + stat[_STAT_MZXID_OFFSET + 8 : _STAT_MTIME_OFFSET]
            + _SET_DATA.pack(mtime, version) + stat[_STAT_CVERSION_OFFSET:_STAT_DATA_LENGTH_OFFSET]
            + _INT.pack(len(data)) + stat[_STAT_NUM_CHILDREN_OFFSET:]
        )  # fmt: skip
        return node.stat

    def create(
        self, path: str, data: bytes, readable: bool, acl: int, zxid: int, time: int, owner: int,
        parent_creates: int,
    ) -> bytes:  # fmt: skip
        """A node with a create's Stat (czxid = mzxid = pzxid = zxid, ctime = mtime = time,
        versions 0, ephemeralOwner `owner`) under its parent: the new node's Stat. The parent
        counts its creates as a txn says (ZooKeeper's parentCVersion): when parent_creates is
        above what it has seen, it takes it and pzxid becomes zxid (a replayed create that is
        older than the parent's state changes neither)."""
        key, data = create_check(path, data, readable, acl, zxid, time, owner, parent_creates)
        if key in self._nodes:
            raise present_error(path)
        node = self._insert(path, key)
        self._data_size += len(data)
        node.assign(data, _STAT_PUT.pack(zxid, zxid, time, time, 0, 0, 0, owner, 0, 0, zxid), readable, acl)
        parent = node.parent
        assert parent is not None, "create_check refuses the root"
        creates = parent.creates(len(parent.children) - 1)
        if parent_creates > creates:
            parent.patch_parent(parent_creates, zxid)
        else:
            parent.patch_parent(creates, _LONG.unpack_from(parent.stat, _STAT_PZXID_OFFSET)[0])
        return node.stat

    def delete(self, path: str, zxid: int) -> int:
        """remove(path) as the txn at zxid: the parent's creates are kept (so its cversion, creates
        + deletes, goes up by one) and its pzxid becomes zxid if that is higher. Returns the
        ephemeralOwner the node's Stat had."""
        key = path_key(path)
        remove_check(path)
        delete_check(zxid)
        node = self._nodes.get(key)
        if node is None:
            raise absent_error(path)
        (owner,) = _LONG.unpack_from(node.stat, _STAT_OWNER_OFFSET)
        parent = self._remove(path)
        creates = parent.creates(len(parent.children) + 1)
        (pzxid,) = _LONG.unpack_from(parent.stat, _STAT_PZXID_OFFSET)
        parent.patch_parent(creates, max(pzxid, zxid))
        return int(owner)

    def set_acl(self, path: str, acl: int, readable: bool, aversion: int) -> bytes:
        """setACL's ACL number, readable flag and aversion, the rest kept: the new Stat."""
        set_acl_check(path, acl, readable, aversion)
        node = self._nodes.get(path_key(path))
        if node is None:
            raise absent_error(path)
        node.acl, node.readable = acl, readable
        stat = node.stat
        node.stat = stat[:_STAT_AVERSION_OFFSET] + _INT.pack(aversion) + stat[_STAT_AVERSION_OFFSET + 4 :]
        return node.stat

    def fields(self, path: str) -> tuple[int, ...] | None:
        """What the tree's prep reads of a node, or None: mzxid, version, creates (what the
        Stat's cversion, creates + deletes, is made of), aversion, ephemeralOwner, numChildren
        and the ACL number."""
        node = self._nodes.get(path_key(path))
        if node is None:
            return None
        mzxid, version, _, aversion, owner, children = _FIELDS.unpack(node.stat)
        return mzxid, version, node.creates(children), aversion, owner, children, node.acl

    def mark(self, path: str, mark: bool) -> None:
        """Set or clear the node's flag: a walk says where each marked node's record starts."""
        node = self._nodes.get(path_key(path))
        if node is None:
            raise absent_error(path)
        node.mark = bool(mark)

    def walk(self, nodes_max: int, bytes_max: int = WALK_BYTES_MAX) -> Iterator[tuple[bytes, list[int]]]:
        """The tree as a snapshot's node records (zkcore/_snapshot.py's format), parents before
        their children, each node's in the index's order, nodes_max records a chunk (fewer once
        a chunk holds bytes_max bytes, but at least one); with each chunk, where the records of
        marked nodes start in it. A node's cversion is written as its creates, its
        ephemeralOwner as its Stat reports it. The index must not change meanwhile."""
        walk_check(nodes_max, bytes_max)
        return self._walk(nodes_max, bytes_max)

    def _walk(self, nodes_max: int, bytes_max: int) -> Iterator[tuple[bytes, list[int]]]:
        root = self._nodes.get(b"/")
        if root is None:
            return
        out, marked, count = bytearray(), [], 0
        stack: list[tuple[bytes, _Node]] = [(b"/", root)]
        while stack:
            key, node = stack.pop()
            if node.mark:
                marked.append(len(out))
            stat = node.stat
            out += _INT.pack(len(key)) + key + _INT.pack(len(node.data)) + node.data
            out += _WALK_TAIL.pack(
                node.acl, stat[:_STAT_CVERSION_OFFSET], _int32(node.creates(len(node.children))),
                stat[_STAT_AVERSION_OFFSET:_STAT_DATA_LENGTH_OFFSET], stat[_STAT_PZXID_OFFSET:],
            )  # fmt: skip
            prefix = key if key == b"/" else key + b"/"
            stack += [(prefix + child.name, child) for child in reversed(node.children)]
            count += 1
            if count == nodes_max or len(out) >= bytes_max:
                yield bytes(out), marked
                out, marked, count = bytearray(), [], 0
        if count:
            yield bytes(out), marked

    def stat(self, path: str) -> tuple[bytes, int] | None:
        """The node's Stat and ACL number, or None: what the tree reads a node by."""
        node = self._nodes.get(path_key(path))
        return None if node is None else (node.stat, node.acl)

    def get(self, path: str) -> tuple[bytes, bytes] | None:
        node = self._nodes.get(path_key(path))
        return None if node is None else (node.data, node.stat)

    def children(self, path: str) -> list[str] | None:
        node = self._nodes.get(path_key(path))
        return None if node is None else [child.name.decode("utf-8") for child in node.children]

    def read_batch(self, requests: bytes, zxid: int) -> tuple[bytes, bytes]:
        """Answer the frames we can; status says per frame: answered, answered+watch, slow path."""
        buf = read_check(requests, zxid)
        if not isinstance(buf, bytes):
            buf = bytes(buf)  # dict keys must be bytes, and slices of a bytearray are not
        frames_max = limits.read_batch_max
        replies: list[bytes] = []
        status = bytearray()
        pos, end = 0, len(buf)
        while pos < end:
            if len(status) == frames_max:
                raise frames_max_error(len(status), pos)
            if end - pos < 4:
                raise frame_length_error(buf, len(status), pos)
            (length,) = _INT.unpack_from(buf, pos)
            if length < 0 or length > end - pos - 4:
                raise frame_length_error(buf, len(status), pos)
            status.append(self._read_frame(buf, pos + 4, length, zxid, replies))
            pos += 4 + length
        return b"".join(replies), bytes(status)

    def read_run(self, requests: bytes | bytearray, zxid: int) -> tuple[bytes, int, int]:
        """The plain reads that open a stream of frames, answered: (replies, frames, bytes taken).
        A frame is taken while it is complete, within frame_bytes_max, a read of a node that
        exists and is readable, without a watch and with a non-negative xid; the run stops
        before the first that is not, or after read_batch_max frames."""
        buf = read_check(requests, zxid)
        if not isinstance(buf, bytes):
            buf = bytes(buf)
        frames_max, frame_max = limits.read_batch_max, limits.frame_bytes_max
        replies: list[bytes] = []
        pos = frames = 0
        end = len(buf)
        while frames < frames_max and end - pos >= 4:
            (length,) = _INT.unpack_from(buf, pos)
            if length < 0 or length > frame_max or length > end - pos - 4:
                break
            mark = len(replies)
            status = self._read_frame(buf, pos + 4, length, zxid, replies)
            if (
                status != STATUS_ANSWERED
                or _INT.unpack_from(buf, pos + 4)[0] < 0
                or replies[mark][16:20] != _OK
            ):
                del replies[mark:]
                break
            pos += 4 + length
            frames += 1
        return b"".join(replies), frames, pos

    def _read_frame(self, buf: bytes, pos: int, length: int, zxid: int, replies: list[bytes]) -> int:
        if length < _REQUEST_BYTES_MIN:
            return STATUS_SLOW
        xid, opcode, path_len = _REQUEST.unpack_from(buf, pos)
        # The path and the watch flag must fill the body exactly: no shortfall, no trailing bytes.
        if opcode not in _READ_OPS or path_len != length - _REQUEST_BYTES_MIN:
            return STATUS_SLOW
        watch_at = pos + length - 1
        watch = buf[watch_at]
        if watch > 1:
            return STATUS_SLOW
        node = self._nodes.get(buf[pos + _REQUEST.size : watch_at])
        if node is None:
            replies.append(_REPLY.pack(_REPLY_HEADER_BYTES, xid, zxid, _ERR_NO_NODE))
            return watch
        if not node.readable:
            return STATUS_SLOW  # the slow path checks ACLs (exists' too)
        body_max = limits.frame_bytes_max - _REPLY_HEADER_BYTES
        if opcode == _OP_GET_DATA:
            data = node.data
            if 4 + len(data) + STAT_BYTES > body_max:
                return STATUS_SLOW
            head = _REPLY_DATA.pack(_REPLY_HEADER_BYTES + 4 + len(data) + STAT_BYTES, xid, zxid, 0, len(data))
            replies += (head, data, node.stat)
            return watch
        if opcode == _OP_EXISTS:
            body = node.stat
        else:
            body = read_children_body(node.children)
            if opcode == _OP_GET_CHILDREN2:
                body += node.stat
        if len(body) > body_max:
            return STATUS_SLOW  # too big for one frame: the slow path decides
        replies += (_REPLY.pack(_REPLY_HEADER_BYTES + len(body), xid, zxid, 0), body)
        return watch


def _int32(value: int) -> int:
    """value wrapped to a jute int, as C's int32_t arithmetic leaves it."""
    return (value + (1 << 31)) % (1 << 32) - (1 << 31)


def read_children_body(children: list[_Node]) -> bytes:
    parts = [_INT.pack(len(children))]
    for child in children:
        parts += (_INT.pack(len(child.name)), child.name)
    return b"".join(parts)


# --- checks and errors shared with native/_cindex.py -------------------------------------------

_BYTES_LIKE = (bytes, bytearray, memoryview)


def path_key(path: object) -> bytes:
    """The bytes a path is looked up by; a lone surrogate cannot match and is simply absent."""
    if not isinstance(path, str):
        raise TypeError(f"path must be str, got {type(path).__name__}")
    return path.encode("utf-8", "surrogatepass")


def put_check(
    path: str, data: bytes, stat: bytes, readable: bool, acl: int = 0
) -> tuple[bytes, bytes, bytes]:
    """put's arguments as (path key, data, stat) bytes, or TypeError/ValueError naming the rule."""
    acl_check(acl)
    if not isinstance(path, str):
        raise TypeError(f"path must be str, got {type(path).__name__}")
    if not isinstance(data, _BYTES_LIKE) or not isinstance(stat, _BYTES_LIKE):
        raise TypeError(f"data and stat must be bytes, got {type(data).__name__} and {type(stat).__name__}")
    if not isinstance(readable, bool):
        raise TypeError(f"readable must be bool, got {type(readable).__name__}")
    data, stat = bytes(data), bytes(stat)
    if len(stat) != STAT_BYTES:
        raise ValueError(f"stat must be {STAT_BYTES} bytes, got {len(stat)}")
    if path != "/" and (not path.startswith("/") or path.endswith("/")):
        raise ValueError(f"path must be '/' or start with '/' and not end with '/': {path!r}")
    key = path.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError, a ValueError
    if len(key) > limits.path_bytes_max:
        raise ValueError(f"path is {len(key)} bytes, over path_bytes_max={limits.path_bytes_max}")
    if len(data) > limits.data_bytes_max:
        raise ValueError(f"data is {len(data)} bytes, over data_bytes_max={limits.data_bytes_max}")
    return key, data, stat


def put_batch_check(
    paths: Sequence[str], datas: Sequence[bytes], stats: Sequence[Sequence[int]], readable: bytes,
    acls: Sequence[int] | None = None,
) -> int:  # fmt: skip
    """The number of nodes in put_batch's arguments, or TypeError/ValueError naming the rule
    their shape breaks. Each node's Stat is checked with its put (put_batch_stat), and its path
    and data by put's own checks."""
    if not isinstance(paths, list | tuple) or not isinstance(datas, list | tuple):
        raise TypeError(
            f"paths and datas must be lists, got {type(paths).__name__} and {type(datas).__name__}"
        )
    if not isinstance(readable, bytes):
        raise TypeError(f"readable must be bytes (one flag per node), got {type(readable).__name__}")
    n = len(paths)
    if len(datas) != n or len(readable) != n:
        raise ValueError(f"paths, datas and readable must pair up: {n}, {len(datas)} and {len(readable)}")
    if not isinstance(stats, list | tuple) or len(stats) != STAT_FIELDS:
        raise ValueError(f"stats must be {STAT_FIELDS} columns")
    for k, column in enumerate(stats):
        if not isinstance(column, list | tuple | array) or len(column) != n:
            raise ValueError(f"stat column {k} must be a list of {n} values")
    if acls is not None:
        if not isinstance(acls, list | tuple | array) or len(acls) != n:
            raise ValueError(f"acls must be a list of {n} ACL numbers")
        for acl in acls:
            acl_check(acl)
    return n


def walk_check(nodes_max: int, bytes_max: int = WALK_BYTES_MAX) -> None:
    """TypeError/ValueError unless nodes_max and bytes_max are a walk's chunk size: ints of at
    least 1 (bytes_max at most WALK_BYTES_MAX)."""
    for name, value, most in (("nodes_max", nodes_max, None), ("bytes_max", bytes_max, WALK_BYTES_MAX)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < 1 or (most is not None and value > most):
            raise ValueError(f"{name} must be at least 1{f' and at most {most}' if most else ''}: {value}")


def acl_check(acl: int) -> None:
    """TypeError/ValueError unless acl is an ACL number: an int in [0, 2**32)."""
    if not isinstance(acl, int) or isinstance(acl, bool):
        raise TypeError(f"acl must be an int (the tree's number for an ACL list), got {type(acl).__name__}")
    if not 0 <= acl <= _UINT32_MAX:
        raise ValueError(f"acl must be in [0, 2**32): {acl}")


def put_batch_stat(stats: Sequence[Sequence[int]], i: int) -> bytes:
    """The Stat put_batch puts for node i, or ValueError when its fields are not jute longs and
    ints (version, cversion and aversion are ints)."""
    row = [column[i] for column in stats]
    try:
        if not all(_INT32_MIN <= row[k] <= _INT32_MAX for k in _STAT_INT_FIELDS):
            raise struct.error("int field out of range")
        return _STAT_PUT.pack(*row[:8], 0, 0, row[8])
    except (struct.error, TypeError):
        raise ValueError(f"the Stat fields of node {i} must be jute longs and ints: {row!r}"[:300]) from None


def _fields_check(longs: Sequence[int], ints: Sequence[int]) -> None:
    """TypeError/ValueError unless longs are jute longs and ints jute ints."""
    for value in (*longs, *ints):
        if not isinstance(value, int):
            raise TypeError(f"Stat fields must be int, got {type(value).__name__}")
    if not all(_INT64_MIN <= value <= _INT64_MAX for value in longs):
        raise ValueError(f"Stat fields {longs!r} must fit in a signed 64-bit long")
    if not all(_INT32_MIN <= value <= _INT32_MAX for value in ints):
        raise ValueError(f"Stat fields {ints!r} must fit in a signed 32-bit int")


def set_data_check(path: str, data: bytes, mzxid: int, mtime: int, version: int) -> bytes:
    """set_data's data as bytes, or TypeError/ValueError naming the rule it breaks."""
    path_key(path)
    if not isinstance(data, _BYTES_LIKE):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    if len(data) > limits.data_bytes_max:
        raise ValueError(f"data is {len(data)} bytes, over data_bytes_max={limits.data_bytes_max}")
    _fields_check((mzxid, mtime), (version,))
    return bytes(data)


def create_check(
    path: str, data: bytes, readable: bool, acl: int, zxid: int, time: int, owner: int, parent_creates: int
) -> tuple[bytes, bytes]:
    """create's path key and data as bytes, or TypeError/ValueError naming the rule."""
    key, data, _ = put_check(path, data, bytes(STAT_BYTES), readable, acl)
    _fields_check((zxid, time, owner), (parent_creates,))
    if key == b"/":
        raise ValueError("the root '/' is never created, only put")
    return key, data


def delete_check(zxid: int) -> None:
    _fields_check((zxid,), ())


def set_acl_check(path: str, acl: int, readable: bool, aversion: int) -> None:
    """TypeError/ValueError naming the rule set_acl's arguments break."""
    path_key(path)
    acl_check(acl)
    if not isinstance(readable, bool):
        raise TypeError(f"readable must be bool, got {type(readable).__name__}")
    _fields_check((), (aversion,))


def remove_check(path: str) -> None:
    if path == "/":
        raise ValueError("the root '/' cannot be removed")


def read_check(requests: bytes | bytearray, zxid: int) -> bytes | bytearray:
    """read_batch's requests as bytes or bytearray, or TypeError/ValueError naming the rule."""
    if not isinstance(requests, _BYTES_LIKE):
        raise TypeError(f"requests must be bytes, got {type(requests).__name__}")
    if not isinstance(zxid, int):
        raise TypeError(f"zxid must be int, got {type(zxid).__name__}")
    if not _INT64_MIN <= zxid <= _INT64_MAX:
        raise ValueError(f"zxid must fit in a signed 64-bit long: {zxid}")
    return bytes(requests) if isinstance(requests, memoryview) else requests


def parent_missing_error(path: str) -> KeyError:
    return KeyError(f"parent of {path!r} is not in the index")


def present_error(path: str) -> KeyError:
    return KeyError(f"{path!r} is already in the index")


def absent_error(path: str) -> KeyError:
    return KeyError(f"{path!r} is not in the index")


def has_children_error(path: str) -> ValueError:
    return ValueError(f"{path!r} has children and cannot be removed")


def frames_max_error(frame: int, offset: int) -> ValueError:
    return ValueError(f"frame {frame} at offset {offset} is over read_batch_max={limits.read_batch_max}")


def frame_length_error(buf: bytes | bytearray, frame: int, offset: int) -> ValueError:
    left = len(buf) - offset - 4
    if left < 0:
        return ValueError(f"frame {frame} at offset {offset}: {left + 4} bytes left, need 4 for its length")
    (length,) = _INT.unpack_from(buf, offset)
    return ValueError(f"frame {frame} at offset {offset}: length {length} must be in [0, {left}]")
