"""The snapshot format: a whole tree and its sessions as bytes, and back.

magic "ZKTREE02", long last zxid
int count, then each ACL list (vector<ACL>); nodes name theirs by number (DataTree.snapshot_records)
int count, then each node: ustring path, buffer data, int ACL number, the persisted Stat
  (czxid, mzxid, ctime, mtime, version, cversion, aversion, ephemeralOwner, pzxid),
  parents always before their children
int count, then each session: long id, int timeout (ms)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from zkcore._datatree import DataTree, ReadIndex
from zkcore._errors import RemoteError
from zkcore._jute import Reader, Writer, as_bytes
from zkcore._records import ACL
from zkcore._restore import SnapshotNodes, collector_paused, scan_snapshot_nodes

SNAPSHOT_MAGIC = b"ZKTREE02"
# Reads a snapshot's node records: scan_snapshot_nodes, or native's C version of it.
SnapshotScan = Callable[[bytes, int, int, int], SnapshotNodes]


# A chunk of a snapshot holds up to this many nodes, or fewer once it holds CHUNK_BYTES: 4,096
# znodes of 1 MB each in one chunk, copied twice on the way, took 11-12 GB in a snapshot's
# forked child of a server holding 2.2 GB of them, which the kernel killed for it.
CHUNK_NODES = 4096
CHUNK_BYTES = 16 * 1024 * 1024


def snapshot_chunks(
    tree: DataTree, chunk_nodes: int = CHUNK_NODES, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[bytes]:
    """The tree and its sessions in the snapshot format, a chunk of nodes at a time."""
    w = Writer()
    w.buf += SNAPSHOT_MAGIC
    w.long(tree.last_zxid)
    acls, records = tree.snapshot_records(chunk_nodes, chunk_bytes)
    w.int(len(acls))
    for acl in acls:
        w.int(len(acl))
        for entry in acl:
            entry.write(w)
    w.int(len(tree))
    buf = w.buf
    for chunk in records:
        buf += chunk
        yield bytes(buf)
        buf.clear()
    w.int(len(tree.sessions))
    for session, timeout in tree.sessions.items():
        w.long(session)
        w.int(timeout)
    yield bytes(w.buf)


def snapshot_bytes(tree: DataTree) -> bytes:
    """The whole snapshot_chunks() output as one bytes, as a SNAP carries it."""
    return b"".join(snapshot_chunks(tree))


def tree_from_snapshot(
    payload: bytes, index: ReadIndex | None = None, *, scan: SnapshotScan = scan_snapshot_nodes
) -> DataTree:
    """Rebuild a tree from snapshot_chunks() output; raises RemoteError on bad bytes. `scan`
    reads the node records: pass native.scan_snapshot_nodes to have C do it."""
    payload = as_bytes(payload)
    r, last_zxid, acl_lists, count = _read_header(payload)
    tree = DataTree(None, populate=False)
    tree.last_zxid = last_zxid
    acls = [tree.intern_acl(acl) for acl in acl_lists]
    with collector_paused():
        nodes = scan(payload, r.pos, count, len(acls))
        tree.load_columns(nodes, acls, for_index=index is not None)
    r.pos = nodes.end
    for _ in range(r.int()):
        session = r.long()
        tree.sessions[session] = r.int()
    r.expect_end("snapshot")
    if index is not None:
        tree.attach_loaded_index(index, nodes, acls)
    return tree


def snapshot_node_count(payload: bytes) -> int:
    """How many znodes a snapshot holds, read from its header alone; raises RemoteError on bad
    bytes."""
    return _read_header(payload)[3]


def _read_header(payload: bytes) -> tuple[Reader, int, list[tuple[ACL, ...]], int]:
    """A reader past the header, with what the header says: last zxid, ACL lists, node count."""
    r = Reader(payload)
    if bytes(r.buf[:8]) != SNAPSHOT_MAGIC:
        raise RemoteError("snapshot payload does not start with the tree magic")
    r.pos = 8
    last_zxid = r.long()
    acls = [tuple(ACL.read(r) for _ in range(r.vector_length())) for _ in range(r.vector_length())]
    return r, last_zxid, acls, r.int()
