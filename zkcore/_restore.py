"""Columns for a fast restart: logged txns decoded column by column for DataTree.replay, and a
snapshot's node records scanned into columns for tree_from_snapshot to build in bulk.

The decoders here are the reference: native/ runs C with the same results (native/_crestore.py)
and exports these as its pure-Python twin.
"""

from __future__ import annotations

import gc
import struct
from array import array
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import accumulate, islice
from typing import Final

from zkcore import limits
from zkcore._errors import LocalError, RemoteError
from zkcore._jute import VECTOR_READERS, as_bytes
from zkcore._records import (
    ACL,
    CONTAINER_EPHEMERAL_OWNER,
    CreateContainerTxn,
    CreateSessionTxn,
    CreateTTLTxn,
    CreateTxn,
    DeleteTxn,
    SetDataTxn,
    Txn,
    TxnHeader,
    ttl_to_ephemeral_owner,
)

# What DataTree.replay does with a txn: the fast kinds, or OTHER (decode it whole and apply it).
REPLAY_OTHER: Final = 0
REPLAY_CREATE: Final = 1
REPLAY_DELETE: Final = 2
REPLAY_SET_DATA: Final = 3
REPLAY_CREATE_SESSION: Final = 4

TXN_HEADER_BYTES: Final = 32
# A snapshot node record: path, data, then ACL number and the persisted Stat (see DataTree).
SNAPSHOT_NODE: Final = struct.Struct(">iqqqqiiiqq")
SNAPSHOT_NODE_BYTES_MIN: Final = 4 + 4 + SNAPSHOT_NODE.size
SNAPSHOT_NODE_FIELDS: Final = 10  # the ACL number and nine Stat fields

_INT = struct.Struct(">i")
_NO_ACL: tuple[ACL, ...] = ()


@contextmanager
def collector_paused() -> Iterator[None]:
    """Hold off the cyclic garbage collector while a restart builds a million long-lived
    objects: each collection would walk the whole growing tree, and none of it is garbage."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --- logged txns ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TxnColumns:
    """Txns decoded column by column, one row per txn. Header columns hold the TxnHeader's
    fields whenever the payload is long enough for one (else 0), whatever the kind. The rest
    are set for the fast kinds only: `owners` is a create's ephemeralOwner; `numbers` a create's
    parentCVersion, a setData's version or a createSession's timeout. A txn of kind OTHER has
    its whole payload in `datas`, for Txn.decode."""

    kinds: list[int]
    zxids: list[int]
    times: list[int]
    client_ids: list[int]
    owners: list[int]
    numbers: list[int]
    paths: list[str]
    datas: list[bytes]
    acls: list[tuple[ACL, ...]]

    def __len__(self) -> int:
        return len(self.kinds)

    def rows(self, lo: int, hi: int) -> TxnColumns:
        """Rows lo..hi-1 (all of them without a copy)."""
        if lo == 0 and hi == len(self.kinds):
            return self
        part = slice(lo, hi)
        return TxnColumns(
            self.kinds[part], self.zxids[part], self.times[part], self.client_ids[part], self.owners[part],
            self.numbers[part], self.paths[part], self.datas[part], self.acls[part],
        )  # fmt: skip


def payloads_check(payloads: Sequence[bytes]) -> Sequence[bytes]:
    """decode_txns' argument, or LocalError naming the first payload that is not bytes."""
    if not isinstance(payloads, list | tuple):
        raise LocalError(f"payloads must be a list or tuple of bytes, got {type(payloads).__name__}")
    if payloads and set(map(type, payloads)) != {bytes}:
        i, bad = next((i, p) for i, p in enumerate(payloads) if type(p) is not bytes)
        raise LocalError(f"payload {i} must be bytes, got {type(bad).__name__}")
    return payloads


def decode_txns(payloads: Sequence[bytes]) -> TxnColumns:
    """Decode txn payloads into columns. Never raises on the bytes: a txn that Txn.decode would
    refuse, or that the fast path does not take, comes back as kind OTHER."""
    columns = TxnColumns([], [], [], [], [], [], [], [], [])
    for payload in payloads_check(payloads):
        header = TxnHeader.decode(payload[:TXN_HEADER_BYTES]) if len(payload) >= TXN_HEADER_BYTES else None
        kind, owner, number, path, data, acl = _decode_txn_body(payload)
        columns.kinds.append(kind)
        columns.zxids.append(header.zxid if header else 0)
        columns.times.append(header.time if header else 0)
        columns.client_ids.append(header.client_id if header else 0)
        columns.owners.append(owner)
        columns.numbers.append(number)
        columns.paths.append(path)
        columns.datas.append(data)
        columns.acls.append(acl)
    return columns


def _decode_txn_body(payload: bytes) -> tuple[int, int, int, str, bytes, tuple[ACL, ...]]:
    """(kind, owner, number, path, data, acl) for one txn; OTHER carries the payload as data."""
    other = (REPLAY_OTHER, 0, 0, "", payload, _NO_ACL)
    try:
        txn = Txn.decode(payload)
    except RemoteError:
        return other
    body = txn.body
    if isinstance(body, CreateSessionTxn):
        return REPLAY_CREATE_SESSION, 0, body.timeout_ms, "", b"", _NO_ACL
    if isinstance(body, DeleteTxn | SetDataTxn | CreateTxn | CreateContainerTxn | CreateTTLTxn):
        # The fast path cuts paths at their last '/' and gets them joined by NULs.
        if body.path == "/" or "/" not in body.path or "\0" in body.path:
            return other
    if isinstance(body, DeleteTxn):
        return REPLAY_DELETE, 0, 0, body.path, b"", _NO_ACL
    if isinstance(body, SetDataTxn):
        return REPLAY_SET_DATA, 0, body.version, body.path, body.data, _NO_ACL
    if isinstance(body, CreateTxn):
        owner = txn.header.client_id if body.ephemeral else 0
    elif isinstance(body, CreateContainerTxn):
        owner = CONTAINER_EPHEMERAL_OWNER
    elif isinstance(body, CreateTTLTxn) and 0 < body.ttl <= limits.ttl_ms_max:
        owner = ttl_to_ephemeral_owner(body.ttl)
    else:
        return other
    return REPLAY_CREATE, owner, body.parent_cversion, body.path, body.data, body.acl


def decode_acl_vector(raw: bytes) -> tuple[ACL, ...] | None:
    """A create's ACL vector, exactly as Txn.decode reads it, or None when it does not decode."""
    raw = as_bytes(raw)
    try:
        acl: tuple[ACL, ...]
        acl, end = VECTOR_READERS[ACL](raw, 0, len(raw))
    except RemoteError:
        return None
    return acl if end == len(raw) else None


# --- snapshot node records --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SnapshotNodes:
    """A snapshot's node records column by column, in record order (the root first), with the
    persisted Stat fields as arrays of int64 (typecode "q"). `child_counts` says how many
    children each record has, and `child_names` holds their names: every record's but the
    root's, grouped by parent, parents in record order, each group in record order. `end` is
    the offset after the last record."""

    paths: list[str]
    datas: list[bytes]
    acl_numbers: array[int]
    child_counts: array[int]
    child_names: list[str]
    czxids: array[int]
    mzxids: array[int]
    ctimes: array[int]
    mtimes: array[int]
    versions: array[int]
    cversions: array[int]
    aversions: array[int]
    owners: array[int]
    pzxids: array[int]
    end: int

    def __len__(self) -> int:
        return len(self.paths)


def snapshot_scan_check(payload: bytes, pos: int, count: int, acl_count: int) -> None:
    """scan_snapshot_nodes' arguments: LocalError for the caller's mistakes, RemoteError for a
    node count the payload cannot hold."""
    if not isinstance(payload, bytes):
        raise LocalError(f"payload must be bytes, got {type(payload).__name__}")
    for name, value in (("pos", pos), ("count", count), ("acl_count", acl_count)):
        if not isinstance(value, int):
            raise LocalError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= pos <= len(payload):
        raise LocalError(f"pos must be within the payload of {len(payload)} bytes: {pos}")
    if acl_count < 0:
        raise LocalError(f"acl_count must not be negative: {acl_count}")
    left = len(payload) - pos
    if not 0 <= count <= left // SNAPSHOT_NODE_BYTES_MIN:
        raise RemoteError(f"snapshot claims {count} nodes, more than {left} bytes can hold")


def snapshot_cut_error(node: int, offset: int) -> RemoteError:
    return RemoteError(f"snapshot node {node} at offset {offset} runs past the end of the payload")


def snapshot_acl_error(node: int, offset: int, acl_number: int, acl_count: int) -> RemoteError:
    return RemoteError(
        f"snapshot node {node} at offset {offset} names ACL {acl_number}, but the table has {acl_count}"
    )


def snapshot_root_error(node: int) -> RemoteError:
    return RemoteError(f"snapshot lists the root again as node {node}")


def snapshot_parent_error(path: bytes) -> RemoteError:
    return RemoteError(f"snapshot lists {_shown(path)!r} before its parent")


def snapshot_twice_error(path: bytes) -> RemoteError:
    return RemoteError(f"snapshot lists {_shown(path)!r} twice")


def _shown(path: bytes) -> str:
    return path.decode("utf-8", "backslashreplace")


def snapshot_path_decode(raw: bytes, node: int) -> str:
    """A snapshot path as the tree keys it; RemoteError when it is not UTF-8."""
    try:
        return raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise RemoteError(f"snapshot node {node} has a path that is not UTF-8: {raw[:80]!r}") from None


def scan_snapshot_nodes(payload: bytes, pos: int, count: int, acl_count: int) -> SnapshotNodes:
    """Scan `count` node records from payload[pos:]. Every record must fit, name an ACL in
    [0, acl_count), and come after its parent (the root first) and only once; the first record
    that does not raises RemoteError. Then every path must be UTF-8 (surrogates allowed)."""
    snapshot_scan_check(payload, pos, count, acl_count)
    raw_paths: list[bytes] = []
    datas: list[bytes] = []
    parents: list[int] = []
    records: list[tuple[int, ...]] = []
    seen: dict[bytes, int] = {}
    unpack_int, unpack_node, end = _INT.unpack_from, SNAPSHOT_NODE.unpack_from, len(payload)
    for node in range(count):  # one record at a time: the C version is the fast one
        offset = pos
        n = unpack_int(payload, pos)[0] if end - pos >= 4 else -1
        if not 0 <= n <= end - pos - 4:
            raise snapshot_cut_error(node, offset)
        path = payload[pos + 4 : pos + 4 + n]
        pos += 4 + n
        n = unpack_int(payload, pos)[0] if end - pos >= 4 else -1
        if not 0 <= n <= end - pos - 4 - SNAPSHOT_NODE.size:
            raise snapshot_cut_error(node, offset)
        datas.append(payload[pos + 4 : pos + 4 + n])
        record = unpack_node(payload, pos + 4 + n)
        pos += 4 + n + SNAPSHOT_NODE.size
        if not 0 <= record[0] < acl_count:
            raise snapshot_acl_error(node, offset, record[0], acl_count)
        parents.append(_scan_snapshot_parent(seen, path, node))
        seen[path] = node
        raw_paths.append(path)
        records.append(record)
    paths = _snapshot_paths(raw_paths)
    child_counts, child_names = _snapshot_children(paths, parents)
    columns = list(zip(*records, strict=True)) if records else [()] * SNAPSHOT_NODE_FIELDS
    acls, czxids, mzxids, ctimes, mtimes, versions, cversions, aversions, owners, pzxids = (
        array("q", column) for column in columns
    )
    return SnapshotNodes(
        paths, datas, acls, child_counts, child_names, czxids, mzxids, ctimes, mtimes, versions, cversions,
        aversions, owners, pzxids, pos,
    )  # fmt: skip


def _scan_snapshot_parent(seen: dict[bytes, int], path: bytes, node: int) -> int:
    """The record number of path's parent; RemoteError when it is not listed yet."""
    if path == b"/":
        if node != 0:
            raise snapshot_root_error(node)
        return -1
    cut = path.rfind(b"/")
    parent = seen.get(path[:cut] or b"/") if cut >= 0 else None
    if parent is None:
        raise snapshot_parent_error(path)
    if path in seen:
        raise snapshot_twice_error(path)
    return parent


def _snapshot_paths(raw_paths: list[bytes]) -> list[str]:
    """The paths decoded, all at once when none holds a NUL; RemoteError names the first that
    is not UTF-8."""
    try:
        paths = b"\0".join(raw_paths).decode("utf-8", "surrogatepass").split("\0")
    except UnicodeDecodeError:
        paths = []
    if len(paths) == len(raw_paths):
        return paths
    return [snapshot_path_decode(raw, node) for node, raw in enumerate(raw_paths)]


def _snapshot_children(paths: list[str], parents: list[int]) -> tuple[array[int], list[str]]:
    """Each record's number of children, and the children's names grouped by parent (parents in
    record order, each group in record order): a counting sort on the parent numbers."""
    counts = array("q", bytes(8 * len(paths)))
    for parent in islice(parents, 1, None):
        counts[parent] += 1
    slots = list(accumulate(counts, initial=0))
    names = [""] * max(len(paths) - 1, 0)
    for path, parent in islice(zip(paths, parents, strict=True), 1, None):
        names[slots[parent]] = path[path.rfind("/") + 1 :]
        slots[parent] += 1
    return counts, names
