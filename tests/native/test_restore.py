"""A restart's decoders (decode_txns, scan_snapshot_nodes): tables of cases run against the C
build and the Python twin, then differential tests that feed both the same random, truncated
and corrupted bytes and require equal columns or the same error."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import native
from tests.zkcore.test_replay import IMPLS, tree_state, txn_payloads
from zkcore import DataTree, limits, snapshot_chunks, tree_from_snapshot
from zkcore import _records as rec
from zkcore._errors import KeeperError, LocalError, RemoteError
from zkcore._jute import Reader
from zkcore._restore import (
    REPLAY_CREATE,
    REPLAY_CREATE_SESSION,
    REPLAY_DELETE,
    REPLAY_OTHER,
    REPLAY_SET_DATA,
    SNAPSHOT_NODE,
)

_COMPILED = native.compiled()
_TWIN = native.python_twin()
needs_native = pytest.mark.skipif(_COMPILED is None, reason="native extension not built")
impls = pytest.mark.parametrize("impl", IMPLS, ids=lambda impl: impl.name)
OP = rec.OpCode
OPEN = rec.OPEN_ACL_UNSAFE


def txn(kind: int, body: Any, client: int = 0x55) -> bytes:
    return rec.Txn(rec.TxnHeader(client, 3, 0x1_0000_0007, 1234, kind), body).encode()


def outcome(fn: Any, *args: Any) -> Any:
    """What a call returns, or the type and message of what it raises."""
    try:
        return fn(*args)
    except (KeeperError, TypeError, ValueError) as e:
        return type(e), str(e)


# --- decode_txns: cases -----------------------------------------------------------------------

CREATE = rec.CreateTxn("/a/b", b"data", OPEN, False, 4)
FAST = {
    "create": (txn(OP.CREATE, CREATE), REPLAY_CREATE, 0, 4),
    "create2 ephemeral": (txn(OP.CREATE2, rec.CreateTxn("/e", b"", OPEN, True, 1)), REPLAY_CREATE, 0x55, 1),
    "container": (
        txn(OP.CREATE_CONTAINER, rec.CreateContainerTxn("/c", b"", OPEN, 2)), REPLAY_CREATE,
        rec.CONTAINER_EPHEMERAL_OWNER, 2,
    ),
    "ttl": (
        txn(OP.CREATE_TTL, rec.CreateTTLTxn("/t", b"", OPEN, 2, 60)), REPLAY_CREATE,
        rec.ttl_to_ephemeral_owner(60), 2,
    ),
    "delete": (txn(OP.DELETE, rec.DeleteTxn("/a")), REPLAY_DELETE, 0, 0),
    "deleteContainer": (txn(OP.DELETE_CONTAINER, rec.DeleteTxn("/a")), REPLAY_DELETE, 0, 0),
    "setData": (txn(OP.SET_DATA, rec.SetDataTxn("/a", b"x", 9)), REPLAY_SET_DATA, 0, 9),
    "createSession": (txn(OP.CREATE_SESSION, rec.CreateSessionTxn(4000)), REPLAY_CREATE_SESSION, 0, 4000),
}  # fmt: skip


@impls
@pytest.mark.parametrize(("payload", "kind", "owner", "number"), FAST.values(), ids=FAST.keys())
def test_fast_kinds_decode(impl: Any, payload: bytes, kind: int, owner: int, number: int) -> None:
    columns = impl.decode_txns([payload])
    decoded = rec.Txn.decode(payload)
    assert (columns.kinds, columns.owners, columns.numbers) == ([kind], [owner], [number])
    assert (columns.zxids, columns.times, columns.client_ids) == ([0x1_0000_0007], [1234], [0x55])
    body: Any = decoded.body
    assert columns.paths == [getattr(body, "path", "")]
    assert columns.datas == [getattr(body, "data", b"")]
    assert columns.acls == [getattr(body, "acl", ())]


def with_path_bytes(path: bytes) -> bytes:
    """A create whose path is these raw bytes."""
    return txn(OP.CREATE, rec.CreateTxn("/p", b"", OPEN, False, 1)).replace(
        b"\x00\x00\x00\x02/p", struct.pack(">i", len(path)) + path
    )


def with_acl_bytes(acl: bytes) -> bytes:
    return txn(OP.CREATE, rec.CreateTxn("/p", b"", (), False, 1)).replace(
        b"\x00\x00\x00\x00\x00\x00\x00\x00\x01", acl + b"\x00\x00\x00\x00\x01"
    )


OTHER = {
    "short": b"\x01" * 31,
    "unknown type": txn(99, rec.DeleteTxn("/a")),
    "trailing byte": txn(OP.CREATE, CREATE) + b"\x00",
    "bool 2": txn(OP.CREATE, CREATE)[:-5] + b"\x02" + txn(OP.CREATE, CREATE)[-4:],
    "ttl 0": txn(OP.CREATE_TTL, rec.CreateTTLTxn("/t", b"", OPEN, 2, 0)),
    "ttl too long": txn(OP.CREATE_TTL, rec.CreateTTLTxn("/t", b"", OPEN, 2, limits.ttl_ms_max + 1)),
    "root": txn(OP.SET_DATA, rec.SetDataTxn("/", b"", 1)),
    "no slash": txn(OP.DELETE, rec.DeleteTxn("a")),
    "NUL in path": txn(OP.DELETE, rec.DeleteTxn("/a\0b")),
    "path not UTF-8": with_path_bytes(b"/\xff"),
    "path length -2": with_path_bytes(b"")[:32] + struct.pack(">i", -2) + with_path_bytes(b"")[36:],
    "ACL id not UTF-8": with_acl_bytes(b"\x00\x00\x00\x01\x00\x00\x00\x1f\x00\x00\x00\x01\xff\x00\x00\x00\x00"),
    "ACL count too big": with_acl_bytes(struct.pack(">i", limits.vector_length_max + 1)),
    "data too long": txn(OP.SET_DATA, rec.SetDataTxn("/a", b"", 1))[:38] + struct.pack(">i", limits.frame_bytes_max + 1),
    "setACL": txn(OP.SET_ACL, rec.SetACLTxn("/a", OPEN, 1)),
    "check": txn(OP.CHECK, rec.CheckVersionTxn("/a", 1)),
    "error": txn(OP.ERROR, rec.ErrorTxn(-101)),
    "closeSession": txn(OP.CLOSE_SESSION, rec.CloseSessionTxn(("/e",))),
    "closeSession, no body": txn(OP.CLOSE_SESSION, None),
    "multi": txn(OP.MULTI, rec.MultiTxn((rec.SubTxn(OP.DELETE, rec.DeleteTxn("/a").encode()),))),
}  # fmt: skip


@impls
@pytest.mark.parametrize("payload", OTHER.values(), ids=OTHER.keys())
def test_other_txns_carry_their_payload(impl: Any, payload: bytes) -> None:
    columns = impl.decode_txns([payload, FAST["create"][0]])
    assert columns.kinds == [REPLAY_OTHER, REPLAY_CREATE]
    assert (columns.paths[0], columns.datas[0], columns.acls[0]) == ("", payload, ())
    assert (columns.owners[0], columns.numbers[0]) == (0, 0)
    header = (columns.zxids[0], columns.times[0], columns.client_ids[0])
    assert header == ((0, 0, 0) if len(payload) < 32 else (0x1_0000_0007, 1234, 0x55))


@impls
def test_acl_vectors_of_minus_one_and_buffers_of_minus_one_are_empty(impl: Any) -> None:
    payload = with_acl_bytes(struct.pack(">i", -1))
    data_minus_one = txn(OP.SET_DATA, rec.SetDataTxn("/a", b"", 1))
    data_minus_one = data_minus_one[:38] + struct.pack(">i", -1) + data_minus_one[42:]
    columns = impl.decode_txns([payload, data_minus_one])
    assert columns.kinds == [REPLAY_CREATE, REPLAY_SET_DATA]
    assert columns.acls[0] == () and columns.datas[1] == b""


@impls
@pytest.mark.parametrize("name", FAST.keys())
def test_every_cut_of_a_fast_txn_is_other(impl: Any, name: str) -> None:
    payload = FAST[name][0]
    cuts = [payload[:n] for n in range(len(payload))]
    assert impl.decode_txns(cuts).kinds == [REPLAY_OTHER] * len(cuts)
    assert impl.decode_txns(cuts) == _TWIN.decode_txns(cuts)


BAD_ARGUMENTS = [b"abc", [b"ok", "str"], [bytearray(b"x")], None]


@impls
@pytest.mark.parametrize("payloads", BAD_ARGUMENTS, ids=range(len(BAD_ARGUMENTS)))
def test_decode_txns_rejects_what_is_not_a_list_of_bytes(impl: Any, payloads: Any) -> None:
    with pytest.raises(LocalError) as caught:
        impl.decode_txns(payloads)
    assert outcome(_TWIN.decode_txns, payloads) == (LocalError, str(caught.value))


# --- decode_txns: differential ----------------------------------------------------------------


@st.composite
def mutated(draw: Any, payloads: list[bytes]) -> list[bytes]:
    out = []
    for payload in payloads:
        how = draw(st.sampled_from(["keep", "keep", "cut", "flip", "append"]))
        if how == "cut" and payload:
            payload = payload[: draw(st.integers(0, len(payload) - 1))]
        elif how == "flip" and payload:
            at = draw(st.integers(0, len(payload) - 1))
            payload = payload[:at] + bytes([payload[at] ^ draw(st.integers(1, 255))]) + payload[at + 1 :]
        elif how == "append":
            payload += draw(st.binary(min_size=1, max_size=4))
        out.append(payload)
    return out


@needs_native
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), payloads=txn_payloads(garbage=True))
def test_decoders_agree_on_random_and_damaged_txns(data: Any, payloads: list[bytes]) -> None:
    assert _COMPILED is not None
    damaged = data.draw(mutated(payloads))
    twin = _TWIN.decode_txns(damaged)
    assert _COMPILED.decode_txns(damaged) == twin
    # And the twin agrees with Txn.decode wherever it took the fast path.
    for i, payload in enumerate(damaged):
        if twin.kinds[i] != REPLAY_OTHER:
            body: Any = rec.Txn.decode(payload).body
            assert twin.paths[i] == getattr(body, "path", "") and twin.datas[i] == getattr(body, "data", b"")


# --- scan_snapshot_nodes ----------------------------------------------------------------------


def node_region(snapshot: bytes) -> tuple[int, int, int]:
    """(offset of the node records, node count, ACL count) of a tree snapshot."""
    r = Reader(snapshot)
    r.pos = 16
    acl_count = r.vector_length()
    for _ in range(acl_count):
        tuple(rec.ACL.read(r) for _ in range(r.vector_length()))
    count = r.int()
    return r.pos, count, acl_count


def record(
    path: bytes, data: bytes = b"", acl: int = 0, fields: tuple[int, ...] = (1, 2, 3, 4, 0, 0, 0, 0, 5)
) -> bytes:
    return (
        struct.pack(">i", len(path))
        + path
        + struct.pack(">i", len(data))
        + data
        + SNAPSHOT_NODE.pack(acl, *fields)
    )


ROOT = record(b"/")
SCANS = {
    "root and a child": ([ROOT, record(b"/a", b"xy")], None),
    "no records": ([], None),
    "root not first": ([record(b"/a"), ROOT], (RemoteError, "snapshot lists '/a' before its parent")),
    "root twice": ([ROOT, record(b"/a"), ROOT], (RemoteError, "snapshot lists the root again as node 2")),
    "twice": ([ROOT, record(b"/a"), record(b"/a")], (RemoteError, "snapshot lists '/a' twice")),
    "before its parent": ([ROOT, record(b"/a/b"), record(b"/a")], (RemoteError, "snapshot lists '/a/b' before its parent")),
    "no slash": ([ROOT, record(b"a")], (RemoteError, "snapshot lists 'a' before its parent")),
    "ACL out of range": ([ROOT, record(b"/a", acl=1)], (RemoteError, "snapshot node 1 at offset 77 names ACL 1, but the table has 1")),
    "negative ACL": ([ROOT, record(b"/a", acl=-1)], (RemoteError, "snapshot node 1 at offset 77 names ACL -1, but the table has 1")),
    "path not UTF-8": ([ROOT, record(b"/\xff")], (RemoteError, "snapshot node 1 has a path that is not UTF-8: b'/\\xff'")),
    "NUL in a name": ([ROOT, record(b"/a\0b"), record(b"/a\0b/c")], None),
    "surrogates pass": ([ROOT, record("/\ud800".encode("utf-8", "surrogatepass"))], None),
}  # fmt: skip


@impls
@pytest.mark.parametrize(("records", "error"), SCANS.values(), ids=SCANS.keys())
def test_scan_cases(impl: Any, records: list[bytes], error: Any) -> None:
    payload = b"head" + b"".join(records) + b"tail"
    got = outcome(impl.scan_snapshot_nodes, payload, 4, len(records), 1)
    assert got == outcome(_TWIN.scan_snapshot_nodes, payload, 4, len(records), 1)
    if error is not None:
        assert got == error
        return
    assert got.end == len(payload) - 4 and len(got) == len(records)


@impls
def test_scan_columns(impl: Any) -> None:
    payload = b"".join(
        [ROOT, record(b"/b", b"1"), record(b"/a", b"22"), record(b"/b/x"), record(b"/a/y"), record(b"/b/z")]
    )
    nodes = impl.scan_snapshot_nodes(payload, 0, 6, 1)
    assert nodes.paths == ["/", "/b", "/a", "/b/x", "/a/y", "/b/z"]
    assert nodes.datas == [b"", b"1", b"22", b"", b"", b""]
    assert list(nodes.child_counts) == [2, 2, 1, 0, 0, 0]
    assert nodes.child_names == ["b", "a", "x", "z", "y"]
    assert list(nodes.czxids) == [1] * 6 and list(nodes.pzxids) == [5] * 6


@impls
def test_every_cut_of_the_records_is_a_remote_error(impl: Any) -> None:
    payload = b"".join([ROOT, record(b"/a", b"data"), record(b"/a/b")])
    for n in range(len(payload)):
        got = outcome(impl.scan_snapshot_nodes, payload[:n], 0, 3, 1)
        assert got == outcome(_TWIN.scan_snapshot_nodes, payload[:n], 0, 3, 1)
        assert got[0] is RemoteError, n


SCAN_ARGUMENTS = [
    (bytearray(b"x"), 0, 0, 0, LocalError),
    (b"x", 2, 0, 0, LocalError),
    (b"x", -1, 0, 0, LocalError),
    (b"x", 0, 0, -1, LocalError),
    (b"x", 0, -1, 0, RemoteError),
    (b"x" * 200, 0, 3, 0, RemoteError),  # more records than the bytes could hold
    (b"x", "0", 0, 0, LocalError),
]


@impls
@pytest.mark.parametrize("args", SCAN_ARGUMENTS, ids=range(len(SCAN_ARGUMENTS)))
def test_scan_checks_its_arguments(impl: Any, args: tuple[Any, ...]) -> None:
    *call, kind = args
    got = outcome(impl.scan_snapshot_nodes, *call)
    assert got == outcome(_TWIN.scan_snapshot_nodes, *call) and got[0] is kind


@needs_native
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), payloads=txn_payloads())
def test_scanners_agree_on_random_and_damaged_snapshots(data: Any, payloads: list[bytes]) -> None:
    assert _COMPILED is not None
    tree = DataTree()
    for payload in payloads:
        try:
            tree.apply(rec.Txn.decode(payload))
        except KeeperError:
            pass
    snapshot = b"".join(snapshot_chunks(tree))
    pos, count, acl_count = node_region(snapshot)
    damaged = data.draw(mutated([snapshot]))[0]
    count = data.draw(st.sampled_from([count, count, count - 1, count + 1]))
    got = outcome(_COMPILED.scan_snapshot_nodes, damaged, min(pos, len(damaged)), count, acl_count)
    assert got == outcome(_TWIN.scan_snapshot_nodes, damaged, min(pos, len(damaged)), count, acl_count)
    if damaged == snapshot:
        copy = tree_from_snapshot(snapshot, scan=_COMPILED.scan_snapshot_nodes)
        assert tree_state(copy)[:-1] == tree_state(tree)[:-1]
