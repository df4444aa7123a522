"""The files on disk, like ZooKeeper's TxnLogToolkit, SnapshotFormatter and zkCleanup: print a
txn log or a snapshot, check a node's files for damage, purge old snapshots and log segments.
Read-only except `purge`; none of them takes the node's log lock, so they work on a live node.

    python -m cluster.toolkit log D/node1            # every txn: zxid, time, session, type, path
    python -m cluster.toolkit snapshot D/node1       # the newest snapshot (or a snapshot file)
    python -m cluster.toolkit check D/node1          # exit 1 if a segment or snapshot is damaged
    python -m cluster.toolkit purge D/node1 -n 3     # keep 3 snapshots and the log they need
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import native
from cluster.storage import DataDir, StorageError, list_snapshots, purge
from cluster.storage._segment import HEADER_BYTES, LogCodec, load_segment, scan_chunks
from cluster.storage._snapshot import _Broken, _check
from cluster.storage._txnlog import _lock, segment_paths
from zkcore import RemoteError, Txn, tree_from_snapshot
from zkcore._records import OpCode

CODEC = cast(LogCodec, native)


class InspectError(Exception):
    """The path given is not what the command reads (exit 2)."""


def _layout(path: Path) -> DataDir:
    """A node folder (D/node1, holding log/ and snap/) from a node folder or its log/ or snap/."""
    if not path.exists():
        raise InspectError(f"{path}: no such file or folder")
    if path.name in ("log", "snap") and path.is_dir():
        path = path.parent
    if not path.is_dir() or not ((path / "log").is_dir() or (path / "snap").is_dir()):
        raise InspectError(f"{path}: not a node folder (one holding log/ and snap/, like zkpy-data/node1)")
    return DataDir(path)


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) + f".{ms % 1000:03d}"


def describe_txn(payload: bytes) -> str:
    try:
        txn = Txn.decode(payload)
    except RemoteError as e:
        return f"undecodable txn: {e}"
    h = txn.header
    try:
        kind = OpCode(h.type).name.lower()
    except ValueError:
        kind = str(h.type)
    path = getattr(txn.body, "path", "")
    extra = ""
    data = getattr(txn.body, "data", None)
    if isinstance(data, bytes):
        extra = f" data={data[:40]!r}" + ("..." if len(data) > 40 else "")
    return f"{_when(h.time)} session:{h.client_id:#x} cxid:{h.cxid:#x} zxid:{h.zxid:#x} {kind} {path}{extra}".rstrip()


def log_records(log_dir: Path) -> Iterator[tuple[Path, int, bytes]]:
    """(segment, zxid, payload) of every record that scans cleanly, oldest first."""
    for _, path in segment_paths(log_dir):
        fd = os.open(path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            for chunk in scan_chunks(fd, HEADER_BYTES, size, CODEC):
                for zxid, payload in chunk.records:
                    yield path, zxid, payload
        finally:
            os.close(fd)


def cmd_log(args: argparse.Namespace) -> int:
    layout = _layout(Path(args.path))
    shown = 0
    for _, zxid, payload in log_records(layout.log_dir):
        if zxid < args.from_zxid:
            continue
        if args.limit and shown >= args.limit:
            print(f"... (--limit {args.limit})")
            break
        print(describe_txn(payload))
        shown += 1
    print(f"{shown} txns shown from {layout.log_dir}")
    return 0


def cmd_snapshot(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if path.is_dir():
        snapshots = list_snapshots(_layout(path).snap_dir)
        if not snapshots:
            raise InspectError(f"{path}: holds no snapshot")
        zxid, path = snapshots[-1]
    else:
        try:
            zxid = int(path.name.rsplit(".", 1)[-1], 16)
        except ValueError:
            raise InspectError(f"{path}: not a snapshot file (snapshot.<zxid in hex>)") from None
    try:
        payload = _check(path, zxid, keep_payload=True)
        assert payload is not None
        tree = tree_from_snapshot(payload, scan=native.scan_snapshot_nodes)
    except (_Broken, RemoteError, OSError) as e:
        print(f"{path}: damaged: {e}", file=sys.stderr)
        return 1
    print(f"{path}: zxid {zxid:#x}, {len(tree)} znodes, {len(tree.sessions)} sessions")
    shown = 0
    for znode in sorted(tree.nodes):
        if args.limit and shown >= args.limit:
            print(f"... (--limit {args.limit})")
            break
        node = tree.nodes[znode]
        owner = f" ephemeralOwner={node.ephemeral_owner:#x}" if node.ephemeral_owner else ""
        print(f"{znode}  czxid={node.czxid:#x} mzxid={node.mzxid:#x} version={node.version} "
              f"dataLength={len(node.data)}{owner}")  # fmt: skip
        shown += 1
    for session, timeout_ms in sorted(tree.sessions.items()):
        print(f"session {session:#x} timeout {timeout_ms} ms")
    return 0


def check_node(layout: DataDir) -> list[str]:
    """Every problem found in a node's log segments and snapshots, none repaired."""
    problems = []
    segments = segment_paths(layout.log_dir)
    after = 0
    for number, (first_zxid, path) in enumerate(segments):
        try:
            segment, damage = load_segment(path, first_zxid, after, number == len(segments) - 1, CODEC)
        except (StorageError, OSError) as e:
            problems.append(str(e))
            continue
        after = segment.last_zxid or after
        if damage is not None:
            problems.append(f"{damage.file} damaged at offset {damage.offset}: {damage.reason} "
                            "(the last segment: the node cuts it there when it opens the log)")  # fmt: skip
    for zxid, path in list_snapshots(layout.snap_dir):
        try:
            _check(path, zxid, keep_payload=False)
        except (_Broken, OSError) as e:
            problems.append(f"{path} damaged: {e}")
    return problems


def cmd_check(args: argparse.Namespace) -> int:
    layout = _layout(Path(args.path))
    problems = check_node(layout)
    segments, snapshots = len(segment_paths(layout.log_dir)), len(list_snapshots(layout.snap_dir))
    for problem in problems:
        print(problem)
    print(f"{layout.root}: {segments} log segments, {snapshots} snapshots: "
          + (f"{len(problems)} damaged" if problems else "no damage"))  # fmt: skip
    return 1 if problems else 0


def cmd_purge(args: argparse.Namespace) -> int:
    layout = _layout(Path(args.path))
    if args.keep < 3:
        raise InspectError(f"-n {args.keep}: keep at least 3 snapshots, as ZooKeeper's autopurge does")
    try:
        lock = _lock(layout.log_dir)  # a live node's log must not lose segments under it
    except StorageError:
        raise InspectError(
            f"{layout.root}: its node is running; stop it first, or let it purge itself "
            "(autopurge.snapRetainCount, autopurge.purgeInterval in the config)"
        ) from None
    try:
        removed = purge(layout.root, keep=args.keep)
    finally:
        if lock is not None:
            os.close(lock)
    for path in removed:
        print(f"removed {path}")
    print(
        f"{layout.root}: kept the {args.keep} newest snapshots and the log they need; removed {len(removed)} files"
    )
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m cluster.toolkit", description=(__doc__ or "").split("\n\n")[0]
    )
    sub = p.add_subparsers(dest="command", required=True)
    log = sub.add_parser("log", help="print every txn of a node's log")
    log.add_argument("path", help="a node folder, e.g. zkpy-data/node1")
    log.add_argument("--from-zxid", type=lambda x: int(x, 0), default=0, help="start here (0x100000001)")
    log.add_argument("--limit", type=int, default=0, help="print at most this many")
    snap = sub.add_parser("snapshot", help="print a snapshot's znodes and sessions")
    snap.add_argument("path", help="a snapshot file, or a node folder for its newest")
    snap.add_argument("--limit", type=int, default=0, help="print at most this many znodes")
    check = sub.add_parser("check", help="check a node's log and snapshots for damage (exit 1)")
    check.add_argument("path", help="a node folder")
    prune = sub.add_parser("purge", help="remove old snapshots and the log only they needed")
    prune.add_argument("path", help="a node folder (of a stopped node)")
    prune.add_argument("-n", "--keep", type=int, default=3, help="snapshots to keep (default 3, at least 3)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    handlers = {"log": cmd_log, "snapshot": cmd_snapshot, "check": cmd_check, "purge": cmd_purge}
    try:
        return handlers[args.command](args)
    except InspectError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
