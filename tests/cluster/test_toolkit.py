"""The files-on-disk toolkit (cluster.toolkit, also `zkpy log|snapshot|check|purge`): it prints
a node's txns and snapshot, finds damage without repairing it, and purges only a stopped node."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster import toolkit
from cluster.storage import DataDir, TxnLog, write_snapshot
from tests.storage.helpers import flip_byte, segment_files
from zkcore import OPEN_ACL_UNSAFE, DataTree, OpCode, Txn, TxnHeader, snapshot_chunks
from zkcore._records import CreateTxn, SetDataTxn

E1 = 1 << 32


def make_node(root: Path, snapshots: int = 1) -> DataDir:
    """A node folder with 60 txns in small segments and `snapshots` snapshots of the tree."""
    data_dir = DataDir.create(root)
    tree = DataTree()
    with TxnLog(data_dir.log_dir, segment_bytes=2000, preallocate_bytes=4096) as log:
        for i in range(1, 61):
            header = TxnHeader(
                0x77, i, E1 + i, 1_700_000_000_000 + i, OpCode.CREATE if i % 2 else OpCode.SET_DATA
            )
            body = (
                CreateTxn(f"/n{i}", b"v", OPEN_ACL_UNSAFE, False, i)
                if i % 2
                else SetDataTxn(f"/n{i - 1}", b"w", 1)
            )
            txn = Txn(header, body)
            log.append([(txn.zxid, txn.encode())])
            tree.apply(txn)
            if i % (60 // snapshots) == 0:
                write_snapshot(data_dir.snap_dir, tree.last_zxid, snapshot_chunks(tree))
        log.fsync()
    return data_dir


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = toolkit.main(argv)
    out = capsys.readouterr()
    return code, out.out + out.err


def test_log_and_snapshot_print_what_is_there(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_node(tmp_path)
    code, text = run(["log", str(tmp_path), "--limit", "2"], capsys)
    assert code == 0
    lines = text.splitlines()
    assert "session:0x77 cxid:0x1 zxid:0x100000001 create /n1 data=b'v'" in lines[0]
    assert "zxid:0x100000002 set_data /n1 data=b'w'" in lines[1] and "--limit 2" in lines[2]
    code, text = run(["log", str(tmp_path / "log"), "--from-zxid", hex(E1 + 60)], capsys)
    assert code == 0 and text.count("zxid:") == 1 and "1 txns shown" in text
    code, text = run(["snapshot", str(tmp_path)], capsys)
    assert code == 0 and "zxid 0x10000003c, 34 znodes" in text
    assert "/n59  czxid=0x10000003b mzxid=0x10000003c version=1 dataLength=1" in text


def test_check_finds_damage_and_repairs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    node = make_node(tmp_path)
    code, text = run(["check", str(tmp_path)], capsys)
    assert code == 0 and "no damage" in text
    first = segment_files(node.log_dir)[0]
    flip_byte(first, first.stat().st_size - 10)
    snapshot = next(node.snap_dir.glob("snapshot.*"))
    flip_byte(snapshot, 40)
    before = first.read_bytes()
    code, text = run(["check", str(tmp_path)], capsys)
    assert code == 1 and "2 damaged" in text
    assert f"log segment {first} is damaged" in text and f"{snapshot} damaged: payload crc" in text
    assert first.read_bytes() == before
    code, text = run(["snapshot", str(snapshot)], capsys)
    assert code == 1 and "damaged" in text


def test_purge_keeps_n_and_refuses_a_live_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    node = make_node(tmp_path, snapshots=5)
    assert len(list(node.snap_dir.glob("snapshot.*"))) == 5
    with TxnLog(node.log_dir):  # the node is running
        code, text = run(["purge", str(tmp_path)], capsys)
    assert code == 2 and "its node is running; stop it first" in text
    code, text = run(["purge", str(tmp_path), "-n", "2"], capsys)
    assert code == 2 and "keep at least 3 snapshots" in text
    code, text = run(["purge", str(tmp_path), "-n", "3"], capsys)
    assert code == 0 and "kept the 3 newest snapshots" in text
    assert len(list(node.snap_dir.glob("snapshot.*"))) == 3
    code, text = run(["check", str(tmp_path)], capsys)
    assert code == 0
