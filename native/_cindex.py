"""The compiled path index: native/src/pathindex.c through cffi, with the interface and results of
its twin native/_pyindex.py, whose argument checks and error messages it shares.

Importing this module raises ImportError when the extension is missing or was built without
pathindex.c; native/__init__.py then falls back to the twin.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterator, Sequence
from typing import Any

from native._pyindex import (
    STAT_BYTES,
    WALK_BYTES_MAX,
    absent_error,
    create_check,
    delete_check,
    frame_length_error,
    frames_max_error,
    has_children_error,
    parent_missing_error,
    path_key,
    present_error,
    put_batch_check,
    put_batch_stat,
    put_check,
    read_check,
    remove_check,
    set_acl_check,
    set_data_check,
    walk_check,
)
from native._zkpy_native import ffi, lib  # type: ignore[import-not-found,unused-ignore]
from zkcore import limits

# Nodes one zk_index_put_batch call takes: bounds the joined copies put_batch makes.
_PUT_BATCH_NODES = 65536
_FIELDS = struct.Struct(f"={lib.ZK_INDEX_FIELDS}q")  # zk_index_fields' int64s, in native order
_ACL_MAX = (1 << 32) - 1  # ACL numbers are uint32s
_ACL_ARRAYS = frozenset("BHI")  # array typecodes whose every item is an ACL number

if not hasattr(lib, "zk_index_set_acl"):
    raise ImportError("native._zkpy_native was built without (this) src/pathindex.c; rebuild it")


def _raise(rc: int, path: str) -> None:
    if rc == lib.ZK_INDEX_NOMEM:
        raise MemoryError(f"out of memory in the path index at {path!r}")
    if rc == lib.ZK_INDEX_NOT_FOUND:
        raise absent_error(path)
    if rc == lib.ZK_INDEX_NO_PARENT:
        raise parent_missing_error(path)
    if rc == lib.ZK_INDEX_HAS_CHILDREN:
        raise has_children_error(path)
    if rc == lib.ZK_INDEX_EXISTS:
        raise present_error(path)
    # BAD_PATH and BAD_SIZE mean the Python-side checks let something through: our bug.
    raise AssertionError(f"path index returned {rc} for {path!r}")


def _plain(path: object, data: object, readable: object, acl: object) -> bool:
    """Whether put's and create's path, data, flag and ACL number pass the twin's checks as they
    are: an ASCII path that starts with '/' and does not end with one (unless it is "/"), within
    path_bytes_max; bytes within data_bytes_max; a bool; an int in [0, 2**32). The tree mirrors
    every change through those two, so well-formed arguments go straight through and anything
    unusual to the checks, for their exact errors."""
    return (
        type(path) is str
        and type(data) is bytes
        and type(readable) is bool
        and type(acl) is int
        and 0 <= acl <= _ACL_MAX
        and len(data) <= limits.data_bytes_max
        and path[:1] == "/"
        and (path == "/" or path[-1] != "/")
        and path.isascii()
        and len(path) <= limits.path_bytes_max
    )


def _acl_column(
    paths: Sequence[str], datas: Sequence[bytes], stats: Sequence[Sequence[int]], readable: bytes,
    acls: Sequence[int], n: int,
) -> array[int]:  # fmt: skip
    """put_batch's ACL numbers as a uint32 array, the shape before them already checked: an array
    of small unsigned items or a list of plain ints converts as it is, anything else (or what does
    not convert) goes through the twin's check first, for its exact error."""
    if type(acls) is array and acls.typecode in _ACL_ARRAYS and len(acls) == n:
        return acls if acls.typecode == "I" else array("I", acls)
    if type(acls) in (list, tuple) and len(acls) == n and bool not in set(map(type, acls)):
        try:
            return array("I", acls)
        except (TypeError, OverflowError):  # not an int, or outside [0, 2**32)
            pass
    put_batch_check(paths, datas, stats, readable, acls)
    return array("I", acls)


class PathIndex:
    """Znodes by path: data, Stat (dataLength and numChildren kept true) and a readable flag.

    Children keep insertion order, except that a removal moves the last child into the hole.
    One thread at a time: calls release the GIL and share buffers owned by the index.
    """

    __slots__ = ("_index", "_view", "_stat", "_result", "_run", "_owner", "_fields", "_fields_bytes")

    def __init__(self) -> None:
        index = lib.zk_index_new()
        if index == ffi.NULL:
            raise MemoryError("out of memory creating the path index")
        self._index: Any = ffi.gc(index, lib.zk_index_free)
        self._view: Any = ffi.new("zk_index_view *")
        self._stat: Any = ffi.buffer(self._view.stat)  # the Stat a call left in the view
        self._result: Any = ffi.new("zk_read_result *")
        self._run: Any = ffi.new("zk_run_result *")
        self._owner: Any = ffi.new("int64_t *")  # delete's ephemeralOwner
        self._fields: Any = ffi.new("int64_t[]", lib.ZK_INDEX_FIELDS)
        self._fields_bytes: Any = ffi.buffer(self._fields)  # read by struct: a third of ffi.unpack's cost

    def __len__(self) -> int:
        return int(lib.zk_index_len(self._index))

    def data_size(self) -> int:
        return int(lib.zk_index_data_size(self._index))

    def __contains__(self, path: object) -> bool:
        key = path_key(path)
        return bool(lib.zk_index_contains(self._index, key, len(key)))

    def put(self, path: str, data: bytes, stat: bytes, readable: bool, acl: int = 0) -> None:
        if _plain(path, data, readable, acl) and type(stat) is bytes and len(stat) == STAT_BYTES:
            key = path.encode("ascii")
        else:
            key, data, stat = put_check(path, data, stat, readable, acl)
        rc = lib.zk_index_put(self._index, key, len(key), data, len(data), stat, len(stat), readable, acl)
        if rc != lib.ZK_INDEX_OK:
            _raise(rc, path)

    def put_batch(
        self, paths: Sequence[str], datas: Sequence[bytes], stats: Sequence[Sequence[int]], readable: bytes,
        acls: Sequence[int] | None = None,
    ) -> None:  # fmt: skip
        """put() for each node in order: stats holds STAT_FIELDS columns, readable one flag byte
        per node, acls one ACL number per node (0 for each when None). A failing put raises as
        put() would, with the ones before it done."""
        n = put_batch_check(paths, datas, stats, readable)
        column = None if acls is None else _acl_column(paths, datas, stats, readable, acls, n)
        for start in range(0, n, _PUT_BATCH_NODES):
            self._put_chunk(paths, datas, stats, readable, column, start, min(n, start + _PUT_BATCH_NODES))

    def _put_chunk(
        self, paths: Sequence[str], datas: Sequence[bytes], stats: Sequence[Sequence[int]], readable: bytes,
        acls: array[int] | None, lo: int, hi: int,
    ) -> None:  # fmt: skip
        chunk_paths = paths[lo:hi]
        try:
            path_bytes = "".join(chunk_paths).encode("utf-8")
            data_bytes = b"".join(datas[lo:hi])
            fields = array("q")
            for column in stats:
                fields.extend(array("q", column[lo:hi]))
        except (TypeError, UnicodeEncodeError, OverflowError):
            return self._put_each(paths, datas, stats, readable, acls, lo, hi)  # put names the culprit
        # All-ASCII paths encode to one byte a character; otherwise measure each.
        path_lens = array("I", map(len, chunk_paths))
        if sum(path_lens) != len(path_bytes):
            path_lens = array("I", (len(path.encode("utf-8")) for path in chunk_paths))
        data_lens = array("I", map(len, datas[lo:hi]))
        if sum(data_lens) != len(data_bytes):  # a memoryview of wider items: len() counts items
            return self._put_each(paths, datas, stats, readable, acls, lo, hi)
        acl_pointer = ffi.NULL if acls is None else ffi.from_buffer("uint32_t[]", acls[lo:hi])
        done = ffi.new("size_t *")
        rc = lib.zk_index_put_batch(
            self._index, path_bytes, ffi.from_buffer("uint32_t[]", path_lens), data_bytes,
            ffi.from_buffer("uint32_t[]", data_lens), ffi.from_buffer("int64_t[]", fields), readable[lo:hi],
            acl_pointer, hi - lo, limits.path_bytes_max, limits.data_bytes_max, done,
        )  # fmt: skip
        if rc == lib.ZK_INDEX_OK:
            return None
        i = lo + done[0]
        if rc in (lib.ZK_INDEX_BAD_PATH, lib.ZK_INDEX_BAD_SIZE):  # raise what the twin's put would
            put_batch_stat(stats, i)
            put_check(paths[i], datas[i], bytes(STAT_BYTES), readable[i] != 0, 0 if acls is None else acls[i])
        _raise(rc, paths[i])
        return None

    def _put_each(
        self, paths: Sequence[str], datas: Sequence[bytes], stats: Sequence[Sequence[int]], readable: bytes,
        acls: array[int] | None, lo: int, hi: int,
    ) -> None:  # fmt: skip
        for i in range(lo, hi):
            acl = 0 if acls is None else acls[i]
            self.put(paths[i], datas[i], put_batch_stat(stats, i), readable[i] != 0, acl)

    def remove(self, path: str) -> None:
        key = path_key(path)
        remove_check(path)
        rc = lib.zk_index_remove(self._index, key, len(key))
        if rc != lib.ZK_INDEX_OK:
            _raise(rc, path)

    # --- apply: a txn's whole change in one call (the twin says what each does) --------------

    def set_data(self, path: str, data: bytes, mzxid: int, mtime: int, version: int) -> bytes:
        if type(path) is str and type(data) is bytes and len(data) <= limits.data_bytes_max:
            key = path.encode("utf-8", "surrogatepass")
        else:
            key, data = path_key(path), set_data_check(path, data, mzxid, mtime, version)
        view = self._view
        try:
            rc = lib.zk_index_set_data(
                self._index, key, len(key), data, len(data), mzxid, mtime, version, view
            )
        except (OverflowError, TypeError):  # cffi's words for a field that is not a jute long or int
            set_data_check(path, data, mzxid, mtime, version)
            raise
        if rc != lib.ZK_INDEX_OK:
            _raise(rc, path)
        return self._stat[:]  # type: ignore[no-any-return]

    def create(
        self, path: str, data: bytes, readable: bool, acl: int, zxid: int, time: int, owner: int,
        parent_creates: int,
    ) -> bytes:  # fmt: skip
        if _plain(path, data, readable, acl) and path != "/":
            key = path.encode("ascii")
        else:
            key, data = create_check(path, data, readable, acl, zxid, time, owner, parent_creates)
        view = self._view
        try:
            rc = lib.zk_index_create(
                self._index, key, len(key), data, len(data), readable, acl, zxid, time, owner, parent_creates,
                view,
            )  # fmt: skip
        except (OverflowError, TypeError):
            create_check(path, data, readable, acl, zxid, time, owner, parent_creates)
            raise
        if rc != lib.ZK_INDEX_OK:
            _raise(rc, path)
        return self._stat[:]  # type: ignore[no-any-return]

    def delete(self, path: str, zxid: int) -> int:
        key = path_key(path)
        if path == "/":
            remove_check(path)
        owner = self._owner
        try:
            rc = lib.zk_index_delete(self._index, key, len(key), zxid, owner)
        except (OverflowError, TypeError):
            delete_check(zxid)
            raise
        if rc != lib.ZK_INDEX_OK:
            _raise(rc, path)
        return int(owner[0])

    def set_acl(self, path: str, acl: int, readable: bool, aversion: int) -> bytes:
        if type(path) is str and type(acl) is int and type(readable) is bool:
            key = path.encode("utf-8", "surrogatepass")
        else:
            set_acl_check(path, acl, readable, aversion)
            key = path_key(path)
        view = self._view
        try:
            rc = lib.zk_index_set_acl(self._index, key, len(key), acl, readable, aversion, view)
        except (OverflowError, TypeError):  # an ACL number outside uint32, an aversion outside int32
            set_acl_check(path, acl, readable, aversion)
            raise
        if rc != lib.ZK_INDEX_OK:
            _raise(rc, path)
        return self._stat[:]  # type: ignore[no-any-return]

    def stat(self, path: str) -> tuple[bytes, int] | None:
        key = path_key(path)
        view = self._view
        if lib.zk_index_get(self._index, key, len(key), view) != lib.ZK_INDEX_OK:
            return None
        return self._stat[:], int(view.acl)

    def fields(self, path: str) -> tuple[int, ...] | None:
        key = path.encode("utf-8", "surrogatepass") if type(path) is str else path_key(path)
        if lib.zk_index_fields(self._index, key, len(key), self._fields) != lib.ZK_INDEX_OK:
            return None
        return _FIELDS.unpack(self._fields_bytes)

    def mark(self, path: str, mark: bool) -> None:
        key = path_key(path)
        if lib.zk_index_mark(self._index, key, len(key), bool(mark)) != lib.ZK_INDEX_OK:
            raise absent_error(path)

    def walk(self, nodes_max: int, bytes_max: int = WALK_BYTES_MAX) -> Iterator[tuple[bytes, list[int]]]:
        walk_check(nodes_max, bytes_max)
        return self._walk(nodes_max, bytes_max)

    def _walk(self, nodes_max: int, bytes_max: int) -> Iterator[tuple[bytes, list[int]]]:
        walk = ffi.gc(lib.zk_walk_new(self._index), lib.zk_walk_free)
        if walk == ffi.NULL:
            raise MemoryError("out of memory starting a walk of the path index")
        result = ffi.new("zk_walk_result *")
        while True:
            if lib.zk_walk_next(walk, nodes_max, bytes_max, result) != lib.ZK_INDEX_OK:
                raise MemoryError("out of memory walking the path index")
            if result.count == 0:
                return
            marked = ffi.unpack(result.marked, result.marked_count) if result.marked_count else []
            yield ffi.unpack(result.bytes, result.bytes_len), marked

    def get(self, path: str) -> tuple[bytes, bytes] | None:
        key = path_key(path)
        view = self._view
        if lib.zk_index_get(self._index, key, len(key), view) != lib.ZK_INDEX_OK:
            return None
        data = ffi.unpack(view.bytes, view.bytes_len) if view.bytes_len else b""
        return data, self._stat[:]

    def children(self, path: str) -> list[str] | None:
        key = path_key(path)
        view = self._view
        rc = lib.zk_index_children(self._index, key, len(key), view)
        if rc == lib.ZK_INDEX_NOT_FOUND:
            return None
        if rc != lib.ZK_INDEX_OK:
            _raise(rc, path)
        if view.count == 0:
            return []
        # Names never contain '/', so the C side hands them over joined by it.
        names: list[str] = ffi.unpack(view.bytes, view.bytes_len).decode("utf-8").split("/")
        assert len(names) == view.count
        return names

    def read_batch(self, requests: bytes, zxid: int) -> tuple[bytes, bytes]:
        """Answer the frames we can; status says per frame: answered, answered+watch, slow path."""
        buf = read_check(requests, zxid)
        pointer = buf if isinstance(buf, bytes) else ffi.from_buffer(buf)
        result = self._result
        rc = lib.zk_read_batch(
            self._index, pointer, len(buf), zxid, limits.read_batch_max, limits.frame_bytes_max, result
        )
        if rc == lib.ZK_READ_FRAME_LENGTH:
            raise frame_length_error(buf, result.error_frame, result.error_offset)
        if rc == lib.ZK_READ_FRAMES_MAX:
            raise frames_max_error(result.error_frame, result.error_offset)
        if rc == lib.ZK_INDEX_NOMEM:
            raise MemoryError(f"out of memory answering a read batch of {len(buf)} bytes")
        assert rc == lib.ZK_INDEX_OK, f"zk_read_batch returned {rc}"
        replies = ffi.buffer(result.replies, result.replies_len)[:] if result.replies_len else b""
        status = ffi.buffer(result.status, result.status_len)[:] if result.status_len else b""
        return replies, status

    def read_run(self, requests: bytes | bytearray, zxid: int) -> tuple[bytes, int, int]:
        """The plain reads that open a stream of frames, answered: (replies, frames, bytes taken)."""
        buf = read_check(requests, zxid)
        pointer = buf if isinstance(buf, bytes) else ffi.from_buffer(buf)
        run = self._run
        rc = lib.zk_read_run(
            self._index, pointer, len(buf), zxid, limits.read_batch_max, limits.frame_bytes_max, run
        )
        del pointer  # a bytearray may not be resized while a buffer of it is held
        if rc == lib.ZK_INDEX_NOMEM:
            raise MemoryError(f"out of memory answering a read run of {len(buf)} bytes")
        assert rc == lib.ZK_INDEX_OK, f"zk_read_run returned {rc}"
        replies = ffi.buffer(run.replies, run.replies_len)[:] if run.replies_len else b""
        return replies, run.frames, run.consumed
