"""The compiled decoders for a restart: native/src/restore.c through cffi, with the interface and
results of zkcore's pure-Python references (native/_pyrestore.py), whose checks and errors it
shares. C finds the records and their spans; this turns them into Python columns in bulk.

Importing this module raises ImportError when the extension was built without restore.c.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from itertools import accumulate, compress
from operator import add, not_
from typing import Any, Final

from native._zkpy_native import ffi, lib  # type: ignore[import-not-found,unused-ignore]
from zkcore import limits
from zkcore._restore import (
    REPLAY_OTHER,
    SnapshotNodes,
    TxnColumns,
    decode_acl_vector,
    payloads_check,
    snapshot_acl_error,
    snapshot_cut_error,
    snapshot_parent_error,
    snapshot_path_decode,
    snapshot_root_error,
    snapshot_scan_check,
    snapshot_twice_error,
)

if not hasattr(lib, "zk_txn_decode"):
    raise ImportError("native._zkpy_native was built without src/restore.c; rebuild it")

__all__ = ["decode_txns", "scan_snapshot_nodes"]

_new_uncleared = ffi.new_allocator(should_clear_after_alloc=False)
_SEPARATOR: Final = 0  # spans are joined by NUL, which no joined path holds

_TXN_ARRAYS: Final = (
    ("kinds", "uint8_t[]"), ("zxids", "int64_t[]"), ("times", "int64_t[]"), ("client_ids", "int64_t[]"),
    ("owners", "int64_t[]"), ("numbers", "int32_t[]"), ("path_starts", "uint64_t[]"),
    ("path_lens", "uint32_t[]"), ("data_starts", "uint64_t[]"), ("data_lens", "uint32_t[]"),
    ("acl_numbers", "int32_t[]"), ("acl_starts", "uint64_t[]"), ("acl_lens", "uint32_t[]"),
)  # fmt: skip
_SNAPSHOT_ARRAYS: Final = (
    ("acl_numbers", "int32_t[]"), ("parents", "int64_t[]"), ("path_starts", "uint64_t[]"),
    ("path_lens", "uint32_t[]"), ("name_offsets", "uint32_t[]"), ("data_starts", "uint64_t[]"),
    ("data_lens", "uint32_t[]"), ("child_counts", "int64_t[]"), ("child_name_starts", "uint64_t[]"),
    ("child_name_lens", "uint32_t[]"),
)  # fmt: skip


def _arrays(out: Any, layout: tuple[tuple[str, str], ...], n: int) -> list[Any]:
    """Give each array field of out n uncleared entries; the list keeps them alive."""
    owned = [_new_uncleared(ctype, max(n, 1)) for _, ctype in layout]
    for (name, _), arr in zip(layout, owned, strict=True):
        setattr(out, name, arr)
    return owned


def _join(buf: bytes, starts: Any, lens: Any, n: int, total: int) -> bytes:
    """Spans of buf joined by NUL: one decode and one split then give every string."""
    size = total + n - 1
    out = _new_uncleared("uint8_t[]", max(size, 1))
    written = lib.zk_spans_join(buf, starts, lens, n, _SEPARATOR, out, size)
    assert written == size, f"zk_spans_join wrote {written} bytes, expected {size}"
    return bytes(ffi.buffer(out, size))


def _int64s(values: Any, n: int) -> array[int]:
    """n C integers as an array of int64, copied in one go when they are int64 already."""
    if ffi.typeof(values).item.cname == "int64_t":
        column = array("q")
        column.frombytes(ffi.buffer(values, 8 * n))
        return column
    return array("q", ffi.unpack(values, n))


def _slices(buf: bytes, starts: list[int], lens: list[int]) -> list[bytes]:
    return list(map(buf.__getitem__, map(slice, starts, map(add, starts, lens))))


def decode_txns(payloads: Sequence[bytes]) -> TxnColumns:
    """Decode txn payloads into columns. Never raises on the bytes: a txn that Txn.decode would
    refuse, or that the fast path does not take, comes back as kind OTHER."""
    n = len(payloads_check(payloads))
    if n == 0:
        return TxnColumns([], [], [], [], [], [], [], [], [])
    buf = b"".join(payloads)
    ends = array("Q", accumulate(map(len, payloads)))
    out = ffi.new("zk_txn_columns *")
    keep = _arrays(out, _TXN_ARRAYS, n)
    rc = lib.zk_txn_decode(
        buf, ffi.from_buffer("uint64_t[]", ends), n, limits.frame_bytes_max, limits.vector_length_max,
        limits.ttl_ms_max, out,
    )  # fmt: skip
    if rc == lib.ZK_RESTORE_NOMEM:
        raise MemoryError(f"out of memory decoding {n} txns of {len(buf)} bytes")
    assert rc == lib.ZK_RESTORE_OK, f"zk_txn_decode returned {rc}"
    kinds: list[int] = ffi.unpack(out.kinds, n)
    owners: list[int] = ffi.unpack(out.owners, n)
    numbers: list[int] = ffi.unpack(out.numbers, n)
    paths, all_paths = _txn_paths(buf, out, n)
    datas = _slices(buf, ffi.unpack(out.data_starts, n), ffi.unpack(out.data_lens, n))
    acls, all_acls = _txn_acls(buf, out, n)
    for i in compress(range(n), map(not_, kinds)):
        datas[i] = payloads[i]
    if not (all_paths and all_acls):
        # Txn.decode refuses a path that is not UTF-8 or ACLs that do not decode: OTHER, then.
        for i in [
            i for i, (path, acl) in enumerate(zip(paths, acls, strict=True)) if path is None or acl is None
        ]:
            kinds[i], owners[i], numbers[i] = REPLAY_OTHER, 0, 0
            paths[i], datas[i], acls[i] = "", payloads[i], ()
    zxids, times, client_ids = (ffi.unpack(column, n) for column in (out.zxids, out.times, out.client_ids))
    del keep
    return TxnColumns(kinds, zxids, times, client_ids, owners, numbers, paths, datas, acls)  # type: ignore[arg-type]


def _txn_paths(buf: bytes, out: Any, n: int) -> tuple[list[str | None], bool]:
    """Every txn's path ("" for the kinds without one), None where it is not UTF-8; and
    whether they all are."""
    joined = _join(buf, out.path_starts, out.path_lens, n, out.path_bytes)
    try:
        return list(joined.decode("utf-8").split("\0")), True
    except UnicodeDecodeError:
        pass
    paths: list[str | None] = []
    for raw in _slices(buf, ffi.unpack(out.path_starts, n), ffi.unpack(out.path_lens, n)):
        try:
            paths.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            paths.append(None)
    return paths, False


def _txn_acls(buf: bytes, out: Any, n: int) -> tuple[list[tuple[Any, ...] | None], bool]:
    """Every txn's ACL vector (() for the kinds without one), None where it does not decode;
    and whether they all do."""
    count = out.acl_count
    spans = _slices(buf, ffi.unpack(out.acl_starts, count), ffi.unpack(out.acl_lens, count))
    table: list[tuple[Any, ...] | None] = [decode_acl_vector(raw) for raw in spans]
    table.append(())  # acl number -1, for the txns that carry none, indexes this
    return list(map(table.__getitem__, ffi.unpack(out.acl_numbers, n))), None not in table


def scan_snapshot_nodes(payload: bytes, pos: int, count: int, acl_count: int) -> SnapshotNodes:
    """Scan `count` node records from payload[pos:]. Every record must fit, name an ACL in
    [0, acl_count), and come after its parent (the root first) and only once; the first record
    that does not raises RemoteError. Then every path must be UTF-8 (surrogates allowed)."""
    snapshot_scan_check(payload, pos, count, acl_count)
    out = ffi.new("zk_snapshot_nodes *")
    keep = _arrays(out, _SNAPSHOT_ARRAYS, count)
    fields_array = _new_uncleared("int64_t[]", max(lib.ZK_SNAPSHOT_FIELDS * count, 1))
    out.fields = fields_array
    rc = lib.zk_snapshot_scan(payload, len(payload), pos, count, acl_count, out)
    if rc != lib.ZK_RESTORE_OK:
        raise _snapshot_error(rc, payload, out, acl_count)
    czxids, mzxids, ctimes, mtimes, versions, cversions, aversions, owners, pzxids = (
        _int64s(fields_array + k * count, count) for k in range(lib.ZK_SNAPSHOT_FIELDS)
    )
    paths, child_names = _snapshot_paths(payload, out, count)
    datas = _slices(payload, ffi.unpack(out.data_starts, count), ffi.unpack(out.data_lens, count))
    nodes = SnapshotNodes(
        paths, datas, _int64s(out.acl_numbers, count), _int64s(out.child_counts, count), child_names,
        czxids, mzxids, ctimes, mtimes, versions, cversions, aversions, owners, pzxids, out.end,
    )  # fmt: skip
    del keep
    return nodes


def _snapshot_paths(payload: bytes, out: Any, count: int) -> tuple[list[str], list[str]]:
    """Every record's path, and the child names grouped by parent."""
    if count == 0:
        return [], []
    children = count - 1
    if not out.has_nul:
        joined = _join(payload, out.path_starts, out.path_lens, count, out.path_bytes)
        try:
            paths = joined.decode("utf-8", "surrogatepass").split("\0")
        except UnicodeDecodeError:
            pass  # find and name the first bad one below
        else:
            if children == 0:
                return paths, []
            names = _join(payload, out.child_name_starts, out.child_name_lens, children, out.name_bytes)
            return paths, names.decode("utf-8", "surrogatepass").split("\0")
    spans = _slices(payload, ffi.unpack(out.path_starts, count), ffi.unpack(out.path_lens, count))
    paths = [snapshot_path_decode(raw, node) for node, raw in enumerate(spans)]
    raws = _slices(
        payload, ffi.unpack(out.child_name_starts, children), ffi.unpack(out.child_name_lens, children)
    )
    return paths, [raw.decode("utf-8", "surrogatepass") for raw in raws]


def _snapshot_error(rc: int, payload: bytes, out: Any, acl_count: int) -> Exception:
    node, offset = out.error_node, out.error_offset
    if rc == lib.ZK_RESTORE_NOMEM:
        return MemoryError(f"out of memory scanning snapshot node records at offset {offset}")
    if rc == lib.ZK_SNAPSHOT_CUT:
        return snapshot_cut_error(node, offset)
    if rc == lib.ZK_SNAPSHOT_ACL:
        return snapshot_acl_error(node, offset, out.error_value, acl_count)
    if rc == lib.ZK_SNAPSHOT_ROOT:
        return snapshot_root_error(node)
    start = out.path_starts[node]
    path = payload[start : start + out.path_lens[node]]
    if rc == lib.ZK_SNAPSHOT_PARENT:
        return snapshot_parent_error(path)
    assert rc == lib.ZK_SNAPSHOT_TWICE, f"zk_snapshot_scan returned {rc}"
    return snapshot_twice_error(path)
