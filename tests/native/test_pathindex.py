"""The path index and batched read path: tables of cases run against both implementations, then
differential tests that require the twin and the C module to agree byte for byte.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import native
from zkcore import limits
from zkcore._records import (
    GetChildren2Response,
    GetChildrenResponse,
    GetDataResponse,
    ReplyHeader,
    Stat,
    StatResponse,
)
from zkcore._restore import SNAPSHOT_NODE, scan_snapshot_nodes

_COMPILED = native.compiled()
_TWIN = native.python_twin().PathIndex
_NATIVE = None if _COMPILED is None else _COMPILED.PathIndex
needs_native = pytest.mark.skipif(_NATIVE is None, reason="native extension not built")

IMPLEMENTATIONS = [
    pytest.param(_TWIN, id="python"),
    pytest.param(_NATIVE, id="native", marks=needs_native),
]

EXISTS, GET_DATA, GET_CHILDREN, GET_CHILDREN2 = 3, 4, 8, 12
NO_NODE = -101
ZXID = 0x1_0000_002A


# --- helpers ----------------------------------------------------------------------------------


def stat_bytes(seed: int) -> bytes:
    """A Stat whose every byte is distinct from its neighbours, so patching shows."""
    return bytes((seed + i * 7) % 256 for i in range(68))


def patched(stat: bytes, data_length: int, num_children: int) -> bytes:
    record = dataclasses.replace(Stat.decode(stat), data_length=data_length, num_children=num_children)
    return record.encode()


def frame(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


def request(xid: int, opcode: int, path: bytes, watch: int = 0) -> bytes:
    return struct.pack(">iii", xid, opcode, len(path)) + path + bytes([watch])


def reply(xid: int, err: int, body: bytes = b"") -> bytes:
    return frame(ReplyHeader(xid, ZXID, err).encode() + body)


STAT_ROOT, STAT_A, STAT_B, STAT_C, STAT_E = (stat_bytes(s) for s in (1, 2, 3, 4, 5))


def small_tree(cls: Callable[[], Any]) -> Any:
    """/ -> a -> (b unreadable, c), and /é holding non-UTF-8 data."""
    index = cls()
    index.put("/", b"", STAT_ROOT, True)
    index.put("/a", b"hello", STAT_A, True)
    index.put("/a/b", b"secret", STAT_B, False)
    index.put("/a/c", b"", STAT_C, True)
    index.put("/é", b"\xff\x00", STAT_E, True)
    return index


@pytest.fixture(params=IMPLEMENTATIONS)
def impl(request: pytest.FixtureRequest) -> Callable[[], Any]:
    cls: Callable[[], Any] = request.param
    return cls


# --- put, remove, get, children ----------------------------------------------------------------

PUT_REJECTS = [
    ("parent missing", "/x/y", b"", STAT_A, True, KeyError),
    ("stat short", "/a/d", b"", bytes(67), True, ValueError),
    ("stat long", "/a/d", b"", bytes(69), True, ValueError),
    ("relative path", "a", b"", STAT_A, True, ValueError),
    ("empty path", "", b"", STAT_A, True, ValueError),
    ("trailing slash", "/a/", b"", STAT_A, True, ValueError),
    ("double slash", "/a//d", b"", STAT_A, True, KeyError),
    ("lone surrogate", "/\ud800", b"", STAT_A, True, ValueError),
    ("path over max", "/" + "p" * limits.path_bytes_max, b"", STAT_A, True, ValueError),
    ("data over max", "/a/d", bytes(limits.data_bytes_max + 1), STAT_A, True, ValueError),
    ("path not str", b"/a/d", b"", STAT_A, True, TypeError),
    ("data not bytes", "/a/d", "text", STAT_A, True, TypeError),
    ("readable not bool", "/a/d", b"", STAT_A, 1, TypeError),
]


@pytest.mark.parametrize(
    ("path", "data", "stat", "readable", "error"),
    [c[1:] for c in PUT_REJECTS],
    ids=[c[0] for c in PUT_REJECTS],
)
def test_put_rejects(
    impl: Callable[[], Any], path: Any, data: Any, stat: Any, readable: Any, error: type
) -> None:
    index = small_tree(impl)
    with pytest.raises(error):
        index.put(path, data, stat, readable)
    assert len(index) == 5
    assert index.children("/a") == ["b", "c"]


def test_put_needs_root_first(impl: Callable[[], Any]) -> None:
    index = impl()
    with pytest.raises(KeyError, match="parent of '/a'"):
        index.put("/a", b"", STAT_A, True)
    index.put("/", b"", STAT_ROOT, True)
    index.put("/a", b"", STAT_A, True)
    assert len(index) == 2


def test_put_replaces_and_keeps_children(impl: Callable[[], Any]) -> None:
    index = small_tree(impl)
    index.put("/a", b"bye", STAT_E, False)
    assert index.get("/a") == (b"bye", patched(STAT_E, 3, 2))
    assert index.children("/a") == ["b", "c"]
    assert len(index) == 5
    reqs = frame(request(1, GET_DATA, b"/a"))
    assert index.read_batch(reqs, ZXID) == (b"", b"\x02")


ACL_MAX = (1 << 32) - 1
ACL_REJECTS = [
    ("negative", -1, ValueError),
    ("2**32", 1 << 32, ValueError),
    ("huge", 1 << 64, ValueError),
    ("bool", True, TypeError),
    ("float", 1.0, TypeError),
    ("str", "1", TypeError),
    ("None", None, TypeError),
]
acl_rejects = pytest.mark.parametrize(
    ("acl", "error"), [c[1:] for c in ACL_REJECTS], ids=[c[0] for c in ACL_REJECTS]
)


def test_put_keeps_the_acl_number(impl: Callable[[], Any]) -> None:
    index = small_tree(impl)
    assert [index.stat(p)[1] for p in ("/", "/a", "/a/b")] == [0, 0, 0]  # the default
    for acl in (1, ACL_MAX, 0, 77):
        index.put("/a/d", b"d", STAT_C, True, acl)
        assert index.stat("/a/d") == (patched(STAT_C, 1, 0), acl)
    index.put("/a/d", b"d", STAT_C, True)
    assert index.stat("/a/d")[1] == 0  # a put without one puts 0
    index.put("/a", b"hello", STAT_A, True, 5)
    index.set_data("/a", b"new", 9, 9, 9)
    assert index.stat("/a")[1] == 5  # set_data keeps it
    assert index.children("/a") == ["b", "c", "d"]


@acl_rejects
def test_put_rejects_acl_numbers(impl: Callable[[], Any], acl: Any, error: type) -> None:
    index = small_tree(impl)
    with pytest.raises(error, match="acl"):
        index.put("/a/d", b"", STAT_A, True, acl)
    with pytest.raises(error, match="acl"):  # the ACL number is checked before the rest
        index.put(b"/a/d", "text", bytes(3), 1, acl)
    with pytest.raises(error, match="acl"):
        index.put("/a", b"", STAT_A, True, acl)
    assert len(index) == 5
    assert index.stat("/a") == (patched(STAT_A, 5, 2), 0)


def test_get_patches_data_length_and_num_children(impl: Callable[[], Any]) -> None:
    index = small_tree(impl)
    assert index.get("/") == (b"", patched(STAT_ROOT, 0, 2))
    assert index.get("/a") == (b"hello", patched(STAT_A, 5, 2))
    assert index.get("/a/b") == (b"secret", patched(STAT_B, 6, 0))
    assert index.get("/é") == (b"\xff\x00", patched(STAT_E, 2, 0))
    index.remove("/a/b")
    assert index.get("/a") == (b"hello", patched(STAT_A, 5, 1))


ABSENT_LOOKUPS = ["/nope", "/a/b/c", "", "a", "/a/", "/\ud800", "/A"]


@pytest.mark.parametrize("path", ABSENT_LOOKUPS)
def test_absent_lookups(impl: Callable[[], Any], path: str) -> None:
    index = small_tree(impl)
    assert index.get(path) is None
    assert index.children(path) is None
    assert index.stat(path) is None
    assert path not in index


@pytest.mark.parametrize("bad", [b"/a", None, 3])
def test_lookups_check_types(impl: Callable[[], Any], bad: Any) -> None:
    index = small_tree(impl)
    for call in (index.get, index.children, index.stat, index.remove, index.__contains__):
        with pytest.raises(TypeError, match="path must be str"):
            call(bad)


REMOVE_CASES = [
    ("leaf", "/a/c", None),
    ("unreadable leaf", "/a/b", None),
    ("has children", "/a", ValueError),
    ("root", "/", ValueError),
    ("absent", "/zz", KeyError),
    ("absent under leaf", "/a/c/d", KeyError),
]


@pytest.mark.parametrize(("path", "error"), [c[1:] for c in REMOVE_CASES], ids=[c[0] for c in REMOVE_CASES])
def test_remove(impl: Callable[[], Any], path: str, error: type | None) -> None:
    index = small_tree(impl)
    if error is not None:
        with pytest.raises(error):
            index.remove(path)
        assert len(index) == 5
        return
    index.remove(path)
    assert path not in index
    assert index.get(path) is None
    assert len(index) == 4
    with pytest.raises(KeyError):
        index.remove(path)


# --- set_data, create, delete: a txn's change in one call ------------------------------------


def stat_of(index: Any, path: str) -> Stat:
    return Stat.decode(index.get(path)[1])


def test_set_data_changes_data_mzxid_mtime_version_only(impl: Callable[[], Any]) -> None:
    index = small_tree(impl)
    before = stat_of(index, "/a")
    stat = index.set_data("/a", b"new data", 77, 5000, 9)
    after = dataclasses.replace(before, mzxid=77, mtime=5000, version=9, data_length=8)
    assert Stat.decode(stat) == after
    assert index.get("/a") == (b"new data", after.encode())
    assert index.children("/a") == ["b", "c"]
    assert index.set_data("/a", bytes(300), 78, 5001, 10)[52:56] == struct.pack(">i", 300)  # off-inline
    assert index.set_data("/a", b"", 79, 5002, 11)[52:56] == bytes(4)
    assert index.get("/a")[0] == b""
    assert index.get("/a/b") == (b"secret", patched(STAT_B, 6, 0))  # readable kept: only the slow path


def test_stat_is_gets_stat_and_the_acl_number(impl: Callable[[], Any]) -> None:
    index = small_tree(impl)
    index.put("/a/c", b"", STAT_C, True, 3)
    for path in ("/", "/a", "/a/b", "/a/c", "/é"):
        assert index.stat(path) == (index.get(path)[1], 3 if path == "/a/c" else 0), path


def test_fields_read_a_node_as_prep_does(impl: Callable[[], Any]) -> None:
    """fields: mzxid, version, creates, aversion, ephemeralOwner, numChildren, ACL number (prep's
    record), all from the node's Stat and ACL number."""
    index = small_tree(impl)
    index.put("/a/c", b"cc", STAT_C, True, 3)
    for path in ("/", "/a", "/a/b", "/a/c", "/é"):
        data, stat = index.get(path)
        acl = 3 if path == "/a/c" else 0
        assert index.stat(path) == (stat, acl), path
        s = Stat.decode(stat)
        creates = (s.cversion + s.num_children) // 2
        assert index.fields(path) == (
            s.mzxid,
            s.version,
            creates,
            s.aversion,
            s.ephemeral_owner,
            s.num_children,
            acl,
        )
    creates = index.fields("/a/c")[2]
    index.create("/a/c/x", b"", True, 5, 0x900, 77, 0x1234, creates + 1)
    assert index.fields("/a/c")[2] == creates + 1 and index.fields("/a/c")[5] == 1
    assert index.fields("/a/c/x") == (0x900, 0, 0, 0, 0x1234, 0, 5)
    assert index.stat("/nope") is None and index.fields("/nope") is None
    with pytest.raises(TypeError):
        index.fields(b"/a")


def test_data_size_counts_every_path_and_its_data(impl: Callable[[], Any]) -> None:
    """data_size: the bytes of each node's path and data (mntr's zk_approximate_data_size),
    kept through put, create, set_data, delete and remove."""
    index = impl()

    def counted() -> int:
        return sum(len(p.encode()) + len(index.get(p)[0]) for p in ("/", "/a", "/a/b", "/é") if p in index)

    index.put("/", b"", STAT_ROOT, True)
    assert index.data_size() == 1
    index.put("/a", b"hello", STAT_A, True)
    index.put("/a", b"hi", STAT_A, True)  # replaced
    index.create("/a/b", bytes(300), True, 0, 5, 5, 0, 1)
    index.put("/é", b"x", STAT_A, True)
    assert index.data_size() == counted() == 1 + 2 + 2 + 4 + 300 + 3 + 1  # "/é" is 3 bytes
    index.set_data("/a/b", b"ab", 6, 6, 1)
    assert index.data_size() == counted()
    index.delete("/a/b", 7)
    index.remove("/é")
    assert index.data_size() == counted() == 1 + 2 + 2


def test_walk_writes_snapshot_records_parents_first(impl: Callable[[], Any]) -> None:
    """walk: every node as a snapshot's record (scan_snapshot_nodes reads them back), parents
    before children in the index's order, nodes_max a chunk, marked nodes' records located."""
    index = small_tree(impl)
    index.put("/a/c", b"cc", STAT_C, True, 7)
    index.mark("/a/c", True)
    chunks = list(index.walk(2))
    assert [len(marked) for _, marked in chunks] == [0, 1, 0]
    records = b"".join(records for records, _ in chunks)
    scanned = scan_snapshot_nodes(records, 0, len(index), 8)
    assert scanned.paths == ["/", "/a", "/a/b", "/a/c", "/é"]
    for i, path in enumerate(scanned.paths):
        data, stat = index.get(path)
        acl = index.stat(path)[1]
        s = Stat.decode(stat)
        assert scanned.datas[i] == data and scanned.acl_numbers[i] == acl
        assert scanned.cversions[i] == (s.cversion + s.num_children) // 2  # creates, as persisted
        assert (scanned.czxids[i], scanned.mzxids[i], scanned.pzxids[i]) == (s.czxid, s.mzxid, s.pzxid)
        assert (scanned.versions[i], scanned.aversions[i], scanned.owners[i]) == (
            s.version,
            s.aversion,
            s.ephemeral_owner,
        )
    second, marked = chunks[1]
    assert second[marked[0] + 4 : marked[0] + 4 + 4] == b"/a/c"
    assert list(impl().walk(5)) == []  # no root, no records
    with pytest.raises(KeyError):
        index.mark("/nope", True)
    for bad, error in ((0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError)):
        with pytest.raises(error):
            index.walk(bad)
        with pytest.raises(error):
            index.walk(5, bad)
    with pytest.raises(ValueError):
        index.walk(5, 2**63)


def test_a_walk_chunk_ends_once_it_holds_bytes_max(impl: Callable[[], Any]) -> None:
    """A chunk of big znodes ends once it holds bytes_max (a snapshot of 1 MB znodes, 4,096 a
    chunk, is gigabytes), after at least one record however big; nodes_max still bounds a chunk
    of small ones."""
    index = impl()
    index.put("/", b"", STAT_ROOT, True)
    sizes = [10, 3000, 20, 20, 5000, 10, 10, 10]
    for i, size in enumerate(sizes):
        index.create(f"/n{i}", bytes(size), True, 0, 2 + i, 2 + i, 0, 1)

    def record_paths(records: bytes) -> list[str]:
        paths, at = [], 0
        while at < len(records):
            (n,) = struct.unpack_from(">i", records, at)
            paths.append(records[at + 4 : at + 4 + n].decode())
            (d,) = struct.unpack_from(">i", records, at + 4 + n)
            at += 4 + n + 4 + d + SNAPSHOT_NODE.size
        assert at == len(records)
        return paths

    chunks = [record_paths(records) for records, _ in index.walk(3, 2000)]
    # "/", /n0 and /n1 (past 2000 with it); /n2, /n3, /n4 (nodes_max, and past 2000); the rest
    assert chunks == [["/", "/n0", "/n1"], ["/n2", "/n3", "/n4"], ["/n5", "/n6", "/n7"]]
    chunks = [record_paths(records) for records, _ in index.walk(100, 3000)]
    assert chunks == [["/", "/n0", "/n1"], ["/n2", "/n3", "/n4"], ["/n5", "/n6", "/n7"]]
    one_each = [record_paths(records) for records, _ in index.walk(100, 1)]
    assert one_each == [["/"]] + [[f"/n{i}"] for i in range(len(sizes))]
    records = b"".join(records for records, _ in index.walk(100, 1))
    assert records == b"".join(records for records, _ in index.walk(100))


def with_parent(impl: Callable[[], Any], cversion: int, children: int, pzxid: int = 0x700) -> Any:
    """/p with this Stat cversion and pzxid and children /p/k0 ... (and a root above it)."""
    index = impl()
    index.put("/", b"", STAT_ROOT, True)
    index.put("/p", b"data", Stat(1, 2, 3, 4, 5, cversion, 6, 0, 0, 0, pzxid).encode(), True, 9)
    for i in range(children):
        index.put(f"/p/k{i}", b"", STAT_C, True)
    return index


def test_create_builds_a_creates_stat_and_patches_the_parent(impl: Callable[[], Any]) -> None:
    index = with_parent(impl, 2, 2)  # two creates, no deletes
    stat = index.create("/p/d", b"xyz", True, 12, 0x800, 1234, 0x77, 3)
    assert Stat.decode(stat) == Stat(0x800, 0x800, 1234, 1234, 0, 0, 0, 0x77, 3, 0, 0x800)
    assert index.stat("/p/d") == (stat, 12)
    assert index.get("/p/d") == (b"xyz", stat)
    assert stat_of(index, "/p") == Stat(1, 2, 3, 4, 5, 3, 6, 0, 4, 3, 0x800)  # 3 creates, 0 deletes
    assert index.stat("/p")[1] == 9
    assert index.children("/p") == ["k0", "k1", "d"]
    assert index.get("/p")[0] == b"data"
    index.create("/p/u", b"", False, ACL_MAX, 0x801, 1235, 0, 4)
    assert index.stat("/p/u")[1] == ACL_MAX
    _, status = index.read_batch(frame(request(1, GET_DATA, b"/p/u")), ZXID)
    assert status == bytes([2])  # unreadable: the slow path


# (parent cversion, children, parent_creates, the parent's cversion after, whether pzxid is zxid)
PARENT_CREATES = [
    ("takes a higher count", 2, 2, 3, 3, True),
    ("skips ahead", 2, 2, 10, 17, True),
    ("keeps an equal count", 2, 2, 2, 1, False),
    ("keeps a higher count", 5, 1, 1, 4, False),  # 3 creates, 2 deletes: a replayed create
    ("root: -1 with one child", -1, 1, 1, 0, True),
    ("root: an older create", -1, 1, 0, -2, False),
    ("odd sum floors", 3, 0, 1, 1, False),  # creates = 1, not 2
    ("negative odd sum floors", -4, 1, -2, -6, False),  # creates = -2, not -1
    ("negative count", -6, 0, -4, -7, False),
    ("cversion wraps", (1 << 31) - 1, 1, (1 << 31) - 1, -4, True),
    ("kept count wraps", (1 << 31) - 1, 1, 0, (1 << 31) - 2, False),
    ("lowest cversion", -(1 << 31), 0, -(1 << 31), -(1 << 31) - 1 + (1 << 32), False),
]


@pytest.mark.parametrize(
    ("cversion", "children", "parent_creates", "after", "taken"),
    [c[1:] for c in PARENT_CREATES],
    ids=[c[0] for c in PARENT_CREATES],
)
def test_create_counts_the_parents_creates(
    impl: Callable[[], Any], cversion: int, children: int, parent_creates: int, after: int, taken: bool
) -> None:
    index = with_parent(impl, cversion, children)
    before = stat_of(index, "/p")
    index.create("/p/new", b"", True, 0, 0x900, 1, 0, parent_creates)
    expected = dataclasses.replace(
        before, cversion=after, pzxid=0x900 if taken else 0x700, num_children=children + 1
    )
    assert stat_of(index, "/p") == expected


def test_create_under_the_root(impl: Callable[[], Any]) -> None:
    """The root's Stat says cversion -1 with /zookeeper, its one child, there: no creates."""
    index = impl()
    index.put("/", b"", Stat(0, 0, 0, 0, 0, -1, 0, 0, 0, 1, 0).encode(), True)
    index.put("/zookeeper", b"", bytes(68), True)
    index.create("/a", b"", True, 0, 0x10, 1, 0, 1)
    assert (stat_of(index, "/").cversion, stat_of(index, "/").pzxid) == (0, 0x10)
    index.create("/b", b"", True, 0, 0x11, 1, 0, 2)
    assert (stat_of(index, "/").cversion, stat_of(index, "/").pzxid) == (1, 0x11)
    assert index.delete("/a", 0x12) == 0
    assert (stat_of(index, "/").cversion, stat_of(index, "/").pzxid) == (2, 0x12)
    assert index.delete("/zookeeper", 0x13) == 0
    assert (stat_of(index, "/").cversion, stat_of(index, "/").pzxid) == (3, 0x13)


def test_delete_removes_and_patches_the_parent(impl: Callable[[], Any]) -> None:
    index = with_parent(impl, 2, 2, pzxid=0x700)
    index.put("/p/e", b"", Stat(0, 0, 0, 0, 0, 0, 0, -0x1234, 0, 0, 0).encode(), True)
    index.create("/p/f", b"", True, 0, 0x800, 1, 0x99, 4)
    parent = stat_of(index, "/p")
    assert (parent.cversion, parent.num_children, parent.pzxid) == (4, 4, 0x800)
    assert index.delete("/p/f", 0x900) == 0x99  # the ephemeralOwner
    assert "/p/f" not in index
    assert stat_of(index, "/p") == dataclasses.replace(parent, cversion=5, pzxid=0x900, num_children=3)
    assert index.delete("/p/e", 0x850) == -0x1234  # a lower zxid: the pzxid stays
    assert stat_of(index, "/p") == dataclasses.replace(parent, cversion=6, pzxid=0x900, num_children=2)
    assert index.children("/p") == ["k0", "k1"]
    assert index.stat("/p")[1] == 9


# (parent cversion, children, the parent's cversion after deleting one)
PARENT_DELETES = [
    ("consistent", 2, 2, 3),
    ("root: -1 with one child", -1, 1, 0),
    ("odd sum floors", 4, 1, 4),  # creates = 2 (5 // 2), so 2 x 2 - 0: no change
    ("negative odd sum floors", -4, 1, -4),  # creates = -2, not -1
    ("wraps", (1 << 31) - 1, 1, -(1 << 31)),
]


@pytest.mark.parametrize(
    ("cversion", "children", "after"), [c[1:] for c in PARENT_DELETES], ids=[c[0] for c in PARENT_DELETES]
)
def test_delete_counts_the_parents_deletes(
    impl: Callable[[], Any], cversion: int, children: int, after: int
) -> None:
    index = with_parent(impl, cversion, children)
    index.delete("/p/k0", 1)
    assert (stat_of(index, "/p").cversion, stat_of(index, "/p").pzxid) == (after, 0x700)


def test_set_acl_changes_acl_readable_and_aversion_only(impl: Callable[[], Any]) -> None:
    index = small_tree(impl)
    before = stat_of(index, "/a/b")
    stat = index.set_acl("/a/b", 31, True, -7)
    after = dataclasses.replace(before, aversion=-7)
    assert Stat.decode(stat) == after
    assert index.stat("/a/b") == (after.encode(), 31)
    assert index.get("/a/b") == (b"secret", after.encode())
    replies, status = index.read_batch(frame(request(1, GET_DATA, b"/a/b")), ZXID)
    assert status == b"\x00" and replies.endswith(after.encode())  # readable now
    assert Stat.decode(index.set_acl("/a/b", ACL_MAX, False, 1 << 30)).aversion == 1 << 30
    assert index.stat("/a/b")[1] == ACL_MAX
    assert index.read_batch(frame(request(1, GET_DATA, b"/a/b")), ZXID)[1] == b"\x02"
    assert index.read_batch(frame(request(1, EXISTS, b"/a/b")), ZXID)[1] == b"\x02"
    index.set_acl("/", 4, True, 0)
    assert index.stat("/")[1] == 4
    assert index.children("/a") == ["b", "c"]
    assert len(index) == 5


APPLY_REJECTS = [
    ("set_data absent", "set_data", ("/zz", b"", 1, 1, 1), KeyError),
    ("set_data data over max", "set_data", ("/a", bytes(limits.data_bytes_max + 1), 1, 1, 1), ValueError),
    ("set_data data not bytes", "set_data", ("/a", "text", 1, 1, 1), TypeError),
    ("set_data path not str", "set_data", (b"/a", b"", 1, 1, 1), TypeError),
    ("set_data version over int32", "set_data", ("/a", b"", 1, 1, 1 << 31), ValueError),
    ("set_data mzxid over int64", "set_data", ("/a", b"", 1 << 63, 1, 1), ValueError),
    ("set_data mtime not int", "set_data", ("/a", b"", 1, 1.5, 1), TypeError),
    ("create present", "create", ("/a/c", b"", True, 0, 1, 1, 0, 1), KeyError),
    ("create parent missing", "create", ("/x/y", b"", True, 0, 1, 1, 0, 1), KeyError),
    ("create root", "create", ("/", b"", True, 0, 1, 1, 0, 1), ValueError),
    ("create trailing slash", "create", ("/a/", b"", True, 0, 1, 1, 0, 1), ValueError),
    ("create relative", "create", ("a", b"", True, 0, 1, 1, 0, 1), ValueError),
    ("create path over max", "create", ("/" + "p" * limits.path_bytes_max, b"", True, 0, 1, 1, 0, 1), ValueError),
    ("create readable not bool", "create", ("/a/d", b"", 1, 0, 1, 1, 0, 1), TypeError),
    ("create acl negative", "create", ("/a/d", b"", True, -1, 1, 1, 0, 1), ValueError),
    ("create acl over uint32", "create", ("/a/d", b"", True, 1 << 32, 1, 1, 0, 1), ValueError),
    ("create acl bool", "create", ("/a/d", b"", True, False, 1, 1, 0, 1), TypeError),
    ("create acl before path", "create", ("/", b"", True, -1, 1, 1, 0, 1), ValueError),
    ("create parent_creates over int32", "create", ("/a/d", b"", True, 0, 1, 1, 0, 1 << 31), ValueError),
    ("create parent_creates not int", "create", ("/a/d", b"", True, 0, 1, 1, 0, 1.0), TypeError),
    ("create owner under int64", "create", ("/a/d", b"", True, 0, 1, 1, -(1 << 63) - 1, 1), ValueError),
    ("create zxid over int64", "create", ("/a/d", b"", True, 0, 1 << 63, 1, 0, 1), ValueError),
    ("create time not int", "create", ("/a/d", b"", True, 0, 1, None, 0, 1), TypeError),
    ("delete absent", "delete", ("/zz", 1), KeyError),
    ("delete with children", "delete", ("/a", 1), ValueError),
    ("delete root", "delete", ("/", 1), ValueError),
    ("delete root bad zxid", "delete", ("/", None), ValueError),
    ("delete path not str", "delete", (b"/a/c", 1), TypeError),
    ("delete zxid over int64", "delete", ("/a/c", 1 << 63), ValueError),
    ("delete zxid not int", "delete", ("/a/c", None), TypeError),
    ("delete absent bad zxid", "delete", ("/zz", 1.5), TypeError),
    ("set_acl absent", "set_acl", ("/zz", 1, True, 1), KeyError),
    ("set_acl path not str", "set_acl", (b"/a", 1, True, 1), TypeError),
    ("set_acl acl negative", "set_acl", ("/a", -1, True, 1), ValueError),
    ("set_acl acl over uint32", "set_acl", ("/a", 1 << 32, True, 1), ValueError),
    ("set_acl acl bool", "set_acl", ("/a", True, True, 1), TypeError),
    ("set_acl acl not int", "set_acl", ("/a", "1", True, 1), TypeError),
    ("set_acl readable not bool", "set_acl", ("/a", 1, 1, 1), TypeError),
    ("set_acl aversion over int32", "set_acl", ("/a", 1, True, 1 << 31), ValueError),
    ("set_acl aversion under int32", "set_acl", ("/a", 1, True, -(1 << 31) - 1), ValueError),
    ("set_acl aversion not int", "set_acl", ("/a", 1, True, 1.0), TypeError),
    ("set_acl acl before absent", "set_acl", ("/zz", -1, True, 1), ValueError),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "args", "error"), [c[1:] for c in APPLY_REJECTS], ids=[c[0] for c in APPLY_REJECTS]
)
def test_apply_rejects_and_changes_nothing(
    impl: Callable[[], Any], method: str, args: tuple[Any, ...], error: type
) -> None:
    index = small_tree(impl)
    paths = ["/", "/a", "/a/b", "/a/c", "/é"]
    before = [(index.get(p), index.children(p), index.stat(p)) for p in paths]
    with pytest.raises(error):
        getattr(index, method)(*args)
    assert [(index.get(p), index.children(p), index.stat(p)) for p in paths] == before
    assert len(index) == 5


SWAP_REMOVE_CASES = [
    ("first", ["c0"], ["c4", "c1", "c2", "c3"]),
    ("middle", ["c2"], ["c0", "c1", "c4", "c3"]),
    ("last", ["c4"], ["c0", "c1", "c2", "c3"]),
    ("two", ["c1", "c0"], ["c3", "c4", "c2"]),
    ("all", ["c0", "c1", "c2", "c3", "c4"], []),
]


@pytest.mark.parametrize(
    ("removed", "order"), [c[1:] for c in SWAP_REMOVE_CASES], ids=[c[0] for c in SWAP_REMOVE_CASES]
)
def test_children_order_is_insertion_then_swap_remove(
    impl: Callable[[], Any], removed: list[str], order: list[str]
) -> None:
    index = impl()
    index.put("/", b"", STAT_ROOT, True)
    for i in range(5):
        index.put(f"/c{i}", b"", STAT_A, True)
    for name in removed:
        index.remove("/" + name)
    assert index.children("/") == order
    index.put("/new", b"", STAT_A, True)
    assert index.children("/") == [*order, "new"]
    assert index.get("/") == (b"", patched(STAT_ROOT, 0, len(order) + 1))


# --- read_batch --------------------------------------------------------------------------------


def _children(names: list[str], stat: bytes | None = None) -> bytes:
    if stat is None:
        return GetChildrenResponse(tuple(names)).encode()
    return GetChildren2Response(tuple(names), Stat.decode(stat)).encode()


A_STAT = patched(STAT_A, 5, 2)
READ_CASES: list[tuple[str, bytes, bytes, int]] = [
    # (id, request body, expected reply frame or b"", expected status)
    (
        "getData",
        request(7, GET_DATA, b"/a"),
        reply(7, 0, GetDataResponse(b"hello", Stat.decode(A_STAT)).encode()),
        0,
    ),
    (
        "getData watch",
        request(7, GET_DATA, b"/a", 1),
        reply(7, 0, GetDataResponse(b"hello", Stat.decode(A_STAT)).encode()),
        1,
    ),
    (
        "getData empty data",
        request(-3, GET_DATA, b"/a/c"),
        reply(-3, 0, struct.pack(">i", 0) + patched(STAT_C, 0, 0)),
        0,
    ),
    (
        "getData utf-8 path",
        request(8, GET_DATA, "/é".encode()),
        reply(8, 0, struct.pack(">i", 2) + b"\xff\x00" + patched(STAT_E, 2, 0)),
        0,
    ),
    ("getData absent", request(9, GET_DATA, b"/zz"), reply(9, NO_NODE), 0),
    ("getData absent watch", request(9, GET_DATA, b"/zz", 1), reply(9, NO_NODE), 1),
    ("getData unreadable", request(9, GET_DATA, b"/a/b", 1), b"", 2),
    ("getData non-utf-8 path", request(9, GET_DATA, b"/\xff\xfe"), reply(9, NO_NODE), 0),
    ("getData empty path", request(9, GET_DATA, b""), reply(9, NO_NODE), 0),
    ("exists", request(1, EXISTS, b"/a"), reply(1, 0, StatResponse(Stat.decode(A_STAT)).encode()), 0),
    ("exists unreadable", request(1, EXISTS, b"/a/b", 1), b"", 2),  # READ checked, as ZooKeeper 3.8.4
    ("exists absent", request(1, EXISTS, b"/a/zz"), reply(1, NO_NODE), 0),
    ("exists absent watch", request(1, EXISTS, b"/a/zz", 1), reply(1, NO_NODE), 1),
    ("getChildren", request(2, GET_CHILDREN, b"/a", 1), reply(2, 0, _children(["b", "c"])), 1),
    ("getChildren root", request(2, GET_CHILDREN, b"/"), reply(2, 0, _children(["a", "é"])), 0),
    ("getChildren leaf", request(2, GET_CHILDREN, b"/a/c"), reply(2, 0, _children([])), 0),
    ("getChildren absent", request(2, GET_CHILDREN, b"/q"), reply(2, NO_NODE), 0),
    ("getChildren unreadable", request(2, GET_CHILDREN, b"/a/b"), b"", 2),
    ("getChildren2", request(3, GET_CHILDREN2, b"/a"), reply(3, 0, _children(["b", "c"], A_STAT)), 0),
    ("getChildren2 absent watch", request(3, GET_CHILDREN2, b"/q", 1), reply(3, NO_NODE), 1),
    ("getChildren2 unreadable", request(3, GET_CHILDREN2, b"/a/b"), b"", 2),
    ("setData", request(4, 5, b"/a"), b"", 2),
    ("create", request(4, 1, b"/a"), b"", 2),
    ("negative opcode", request(4, -11, b"/a"), b"", 2),
    ("empty body", b"", b"", 2),
    ("header only", struct.pack(">ii", 1, GET_DATA), b"", 2),
    ("no watch byte", request(1, GET_DATA, b"/a")[:-1], b"", 2),
    ("trailing byte", request(1, GET_DATA, b"/a") + b"\x00", b"", 2),
    ("path length -1", struct.pack(">iii", 1, GET_DATA, -1) + b"\x00", b"", 2),
    ("path length negative", struct.pack(">iii", 1, GET_DATA, -9) + b"/a\x00", b"", 2),
    ("path runs past body", struct.pack(">iii", 1, GET_DATA, 3) + b"/a\x00", b"", 2),
    ("path length huge", struct.pack(">iii", 1, EXISTS, 0x7FFFFFFF) + b"/a\x00", b"", 2),
    ("watch byte 2", request(1, EXISTS, b"/a", 2), b"", 2),
    ("watch byte 255", request(1, GET_DATA, b"/zz", 255), b"", 2),
]


@pytest.mark.parametrize(
    ("body", "expected", "status"), [c[1:] for c in READ_CASES], ids=[c[0] for c in READ_CASES]
)
def test_read_batch_one_frame(impl: Callable[[], Any], body: bytes, expected: bytes, status: int) -> None:
    index = small_tree(impl)
    assert index.read_batch(frame(body), ZXID) == (expected, bytes([status]))


def test_read_batch_all_frames_in_order(impl: Callable[[], Any]) -> None:
    index = small_tree(impl)
    requests = b"".join(frame(body) for _, body, _, _ in READ_CASES)
    replies, status = index.read_batch(requests, ZXID)
    assert replies == b"".join(expected for _, _, expected, _ in READ_CASES)
    assert status == bytes(s for _, _, _, s in READ_CASES)


@pytest.mark.parametrize("opcode", [EXISTS, GET_DATA, GET_CHILDREN, GET_CHILDREN2])
def test_read_batch_every_prefix_and_suffix_goes_slow(impl: Callable[[], Any], opcode: int) -> None:
    index = small_tree(impl)
    body = request(5, opcode, "/é".encode(), 1)
    for cut in range(len(body)):
        assert index.read_batch(frame(body[:cut]), ZXID) == (b"", b"\x02"), cut
    for tail in (b"\x00", b"\x01", b"/a\x00"):
        assert index.read_batch(frame(body + tail), ZXID) == (b"", b"\x02"), tail
    replies, status = index.read_batch(frame(body), ZXID)
    assert status == b"\x01" and replies[4:8] == struct.pack(">i", 5)


def test_read_batch_empty_and_bytes_like(impl: Callable[[], Any]) -> None:
    index = small_tree(impl)
    assert index.read_batch(b"", ZXID) == (b"", b"")
    requests = frame(request(1, GET_DATA, b"/a")) + frame(request(2, EXISTS, b"/x", 1))
    expected = index.read_batch(requests, ZXID)
    assert expected[1] == b"\x00\x01"
    assert index.read_batch(bytearray(requests), ZXID) == expected
    assert index.read_batch(memoryview(requests), ZXID) == expected


@pytest.mark.parametrize("zxid", [0, -1, (1 << 63) - 1, -(1 << 63)])
def test_read_batch_zxid_is_echoed(impl: Callable[[], Any], zxid: int) -> None:
    index = small_tree(impl)
    replies, _ = index.read_batch(frame(request(1, EXISTS, b"/zz")), zxid)
    assert replies == frame(ReplyHeader(1, zxid, NO_NODE).encode())


@pytest.mark.parametrize(
    ("requests", "zxid", "error"),
    [
        ("text", 0, TypeError),
        (b"", 1 << 63, ValueError),
        (b"", -(1 << 63) - 1, ValueError),
        (b"", "1", TypeError),
    ],
)
def test_read_batch_checks_arguments(impl: Callable[[], Any], requests: Any, zxid: Any, error: type) -> None:
    with pytest.raises(error):
        small_tree(impl).read_batch(requests, zxid)


GOOD = frame(request(1, GET_DATA, b"/a"))
FRAME_ERRORS = [
    ("negative length", struct.pack(">i", -1), r"frame 0 at offset 0: length -1 must be in \[0, 0\]"),
    (
        "length past end",
        struct.pack(">i", 16) + request(1, GET_DATA, b"/a"),
        r"length 16 must be in \[0, 15\]",
    ),
    ("stray byte", GOOD + b"\x00", r"frame 1 at offset 19: 1 bytes left, need 4"),
    ("stray three bytes", GOOD + GOOD + b"\x00\x00\x00", r"frame 2 at offset 38: 3 bytes left, need 4"),
    ("bad after good", GOOD + struct.pack(">i", -5) + b"xxxx", r"frame 1 at offset 19: length -5"),
]


@pytest.mark.parametrize(
    ("requests", "message"), [c[1:] for c in FRAME_ERRORS], ids=[c[0] for c in FRAME_ERRORS]
)
def test_read_batch_rejects_bad_frame_lengths(impl: Callable[[], Any], requests: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        small_tree(impl).read_batch(requests, ZXID)


def test_read_batch_frames_max(impl: Callable[[], Any]) -> None:
    index = small_tree(impl)
    empty = frame(b"")
    replies, status = index.read_batch(empty * limits.read_batch_max, ZXID)
    assert replies == b"" and status == b"\x02" * limits.read_batch_max
    with pytest.raises(ValueError, match=f"frame {limits.read_batch_max} at offset .* read_batch_max"):
        index.read_batch(empty * (limits.read_batch_max + 1), ZXID)


def test_read_batch_reply_over_frame_bytes_max_goes_slow(
    impl: Callable[[], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    index = impl()
    index.put("/", b"", STAT_ROOT, True)
    for name in ("x" * 30, "y" * 30, "z" * 30):
        index.put("/" + name, b"12345", STAT_A, True)
    children_bytes = 4 + 3 * (4 + 30)
    data_bytes = 4 + 5 + 68
    batch = b"".join(frame(request(1, op, b"/")) for op in (GET_CHILDREN, GET_CHILDREN2, EXISTS))
    batch += frame(request(2, GET_DATA, b"/" + b"x" * 30))
    for body_max, status in [
        (children_bytes + 68, b"\x00\x00\x00\x00"),
        (children_bytes + 67, b"\x00\x02\x00\x00"),
        (children_bytes, b"\x00\x02\x00\x00"),
        (children_bytes - 1, b"\x02\x02\x00\x00"),
        (data_bytes, b"\x02\x02\x00\x00"),
        (data_bytes - 1, b"\x02\x02\x00\x02"),
        (67, b"\x02\x02\x02\x02"),
    ]:
        monkeypatch.setattr(limits, "frame_bytes_max", 16 + body_max)
        assert index.read_batch(batch, ZXID)[1] == status, body_max


# --- read_run: the plain reads that open a stream ----------------------------------------------


def _plain(expected: bytes, status: int) -> bool:
    """Whether read_run takes a READ_CASES frame: answered, no watch, found, xid not negative."""
    (xid,), (err,) = struct.unpack_from(">i", expected, 4), struct.unpack_from(">i", expected, 16)
    return status == 0 and err == 0 and xid >= 0


@pytest.mark.parametrize(
    ("body", "expected", "status"), [c[1:] for c in READ_CASES], ids=[c[0] for c in READ_CASES]
)
def test_read_run_stops_before_what_is_not_a_plain_read(
    impl: Callable[[], Any], body: bytes, expected: bytes, status: int
) -> None:
    index = small_tree(impl)
    good_reply = index.read_batch(GOOD, ZXID)[0]
    replies, frames, taken = index.read_run(GOOD + frame(body) + GOOD, ZXID)
    if expected and _plain(expected, status):
        assert (replies, frames, taken) == (
            good_reply + expected + good_reply,
            3,
            2 * len(GOOD) + 4 + len(body),
        )
    else:
        assert (replies, frames, taken) == (good_reply, 1, len(GOOD))


def test_read_run_takes_whole_frames_only(impl: Callable[[], Any]) -> None:
    index = small_tree(impl)
    other = frame(request(2, GET_CHILDREN, b"/a"))
    stream = GOOD + other
    expected = index.read_batch(stream, ZXID)[0]
    for cut in range(len(stream) + 1):
        whole = 2 if cut == len(stream) else 1 if cut >= len(GOOD) else 0
        replies, frames, taken = index.read_run(bytearray(stream[:cut]), ZXID)
        assert frames == whole and taken == (0, len(GOOD), len(stream))[whole], cut
        assert replies == (b"", index.read_batch(GOOD, ZXID)[0], expected)[whole], cut


@pytest.mark.parametrize(
    "bad",
    [struct.pack(">i", -1) + bytes(4), struct.pack(">i", 1 << 30) + bytes(4), frame(b""), frame(b"\x00" * 3)],
    ids=["negative length", "length over frame_bytes_max", "empty frame", "short frame"],
)
def test_read_run_leaves_bad_frames_to_the_caller(impl: Callable[[], Any], bad: bytes) -> None:
    index = small_tree(impl)
    assert index.read_run(GOOD + bad + GOOD, ZXID)[1:] == (1, len(GOOD))
    assert index.read_run(bad, ZXID) == (b"", 0, 0)


def test_read_run_frames_max(impl: Callable[[], Any]) -> None:
    index = small_tree(impl)
    replies, frames, taken = index.read_run(GOOD * (limits.read_batch_max + 3), ZXID)
    assert (frames, taken) == (limits.read_batch_max, len(GOOD) * limits.read_batch_max)
    assert replies == index.read_batch(GOOD * limits.read_batch_max, ZXID)[0]


def test_read_run_checks_arguments(impl: Callable[[], Any]) -> None:
    index = small_tree(impl)
    with pytest.raises(TypeError):
        index.read_run("text", ZXID)
    with pytest.raises(ValueError):
        index.read_run(GOOD, 1 << 63)


# --- differential: the twin and the C module agree --------------------------------------------

NAMES = ["a", "é", "中 z"]
PATHS = st.lists(st.sampled_from(NAMES), max_size=3).map(lambda parts: "/" + "/".join(parts))
ODD_PATHS = st.sampled_from(["", "a", "/a/", "/a//b", "/\ud800", "/" + "q" * 5000])
STATS = st.binary(min_size=68, max_size=68)
READABLE = st.sampled_from([True, True, True, False])
# ACL numbers, small ones (as a tree numbers its lists) and any; one time in twenty one that is not.
ACLS = st.tuples(
    st.integers(0, 19),
    st.one_of(st.integers(0, 3), st.integers(0, ACL_MAX)),
    st.sampled_from([-1, 1 << 32, True]),
).map(lambda drawn: drawn[2] if drawn[0] == 0 else drawn[1])

PUT = st.tuples(st.just("put"), PATHS, st.binary(max_size=40), STATS, READABLE, ACLS)
BAD_PUT = st.tuples(
    st.just("put"), st.one_of(PATHS, ODD_PATHS), st.binary(max_size=4), st.binary(max_size=70), st.booleans(),
    ACLS,
)  # fmt: skip
STAT_STEP = st.tuples(st.just("stat"), st.one_of(PATHS, ODD_PATHS))
REMOVE = st.tuples(st.just("remove"), st.one_of(PATHS, ODD_PATHS))
# Resolved when run to the n-th present leaf, so that removals mostly succeed.
REMOVE_LEAF = st.tuples(st.just("remove leaf"), st.integers(0, 100))
INT32 = st.integers(-(1 << 31), (1 << 31) - 1)
# None draws from the wider range; repeats weight the draw (one_of would not).
OPCODES = st.sampled_from([EXISTS, GET_DATA, GET_CHILDREN, GET_CHILDREN2] * 3 + [None])
PATH_BYTES = st.one_of(
    PATHS.map(str.encode), st.binary(max_size=8), st.sampled_from([b"/\xff", b"/\xc3", b"/a\x00"])
)
WATCHES = st.sampled_from([0, 1] * 10 + [2, None])
MUTATIONS = st.sampled_from(["none"] * 12 + ["cut", "tail", "path length", "random"])


ALL_PATHS = ["/" + "/".join(p) for depth in range(1, 4) for p in itertools.product(NAMES, repeat=depth)]


def ancestors(path: str) -> list[str]:
    parts = path.split("/")[1:] if path != "/" else []
    return ["/" + "/".join(parts[:depth]) for depth in range(len(parts) + 1)]


@st.composite
def trees(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    """Puts that build a random tree, every parent before its children."""
    kept = draw(st.lists(st.booleans(), min_size=len(ALL_PATHS), max_size=len(ALL_PATHS)))
    paths = {a for path, keep in zip(ALL_PATHS, kept, strict=True) if keep for a in ancestors(path)} - {"/"}
    ordered = sorted(draw(st.permutations(sorted(paths))), key=lambda p: p.count("/"))
    return [
        ("put", p, draw(st.binary(max_size=40)), draw(STATS), draw(READABLE), draw(st.integers(0, ACL_MAX)))
        for p in ordered
    ]


@st.composite
def request_bodies(draw: st.DrawFn) -> bytes:
    opcode, watch = draw(OPCODES), draw(WATCHES)
    opcode = draw(INT32) if opcode is None else opcode
    watch = draw(st.integers(0, 255)) if watch is None else watch
    path = draw(PATHS).encode() if draw(st.integers(0, 3)) else draw(PATH_BYTES)
    body = request(draw(INT32), opcode, path, watch)
    mutation = draw(MUTATIONS)
    if mutation == "cut":
        return body[: draw(st.integers(0, len(body)))]
    if mutation == "tail":
        return body + draw(st.binary(min_size=1, max_size=4))
    if mutation == "path length":
        return body[:8] + struct.pack(">i", draw(st.one_of(st.just(-1), INT32))) + body[12:]
    if mutation == "random":
        return draw(st.binary(max_size=24))
    return body


@st.composite
def batches(draw: st.DrawFn) -> tuple[str, bytes, int]:
    requests = b"".join(frame(body) for body in draw(st.lists(request_bodies(), max_size=16)))
    if draw(st.integers(0, 9)) == 0:
        requests += draw(st.sampled_from([b"\x00", struct.pack(">i", -2), struct.pack(">i", 9) + b"abc"]))
    return "read", requests, draw(st.integers(-(1 << 63), (1 << 63) - 1))


def mostly(values: st.SearchStrategy[int], bad: int) -> st.SearchStrategy[int]:
    """values, and one time in twenty `bad` (one_of would draw it about half the time)."""
    return st.tuples(st.integers(0, 19), values).map(lambda drawn: bad if drawn[0] == 0 else drawn[1])


LONGS = mostly(st.integers(-(1 << 63), (1 << 63) - 1), 1 << 63)
INTS = mostly(INT32, -(1 << 31) - 1)
SET_DATA = st.tuples(
    st.just("set_data"), st.one_of(PATHS, ODD_PATHS), st.binary(max_size=40), LONGS, LONGS, INTS
)
# A txn's parent creates: any int, or one near what the parent has seen (above it, equal or below).
PARENT_CREATES = st.one_of(INTS, st.integers(-3, 12))
CREATE = st.tuples(
    st.just("create"), st.one_of(PATHS, PATHS, ODD_PATHS), st.binary(max_size=40), st.booleans(), ACLS, LONGS,
    LONGS, LONGS, PARENT_CREATES,
)  # fmt: skip
DELETE = st.tuples(st.just("delete"), st.one_of(PATHS, ODD_PATHS), LONGS)
# Resolved when run to a new child of the n-th present node, so that creates mostly succeed.
CREATE_CHILD = st.tuples(
    st.just("create child"), st.integers(0, 100), st.binary(max_size=40), st.booleans(), ACLS, LONGS, LONGS,
    LONGS, PARENT_CREATES,
)  # fmt: skip
# Resolved when run to the n-th present leaf, like REMOVE_LEAF.
DELETE_LEAF = st.tuples(st.just("delete leaf"), st.integers(0, 100), LONGS)
SET_ACL = st.tuples(
    st.just("set_acl"), st.one_of(PATHS, ODD_PATHS), ACLS, st.sampled_from([True, False] * 5 + [1]), INTS
)
# Resolved when run to the n-th present node, so that set_acl mostly succeeds.
SET_ACL_NODE = st.tuples(st.just("set_acl node"), st.integers(0, 100), ACLS, st.booleans(), INTS)
STEPS = st.tuples(
    trees(),
    st.lists(
        st.one_of(
            PUT,
            BAD_PUT,
            REMOVE,
            REMOVE_LEAF,
            SET_DATA,
            CREATE,
            CREATE_CHILD,
            DELETE,
            DELETE_LEAF,
            SET_ACL,
            SET_ACL_NODE,
            STAT_STEP,
            batches(),
            batches(),
        ),
        max_size=40,
    ),
)


def outcome(method: Callable[..., Any], *args: Any) -> Any:
    try:
        return ("ok", method(*args))
    except (KeyError, ValueError, TypeError) as e:
        return (type(e).__name__, str(e))


def assert_same_state(twin: Any, compiled: Any, paths: list[str]) -> None:
    assert len(twin) == len(compiled)
    assert twin.data_size() == compiled.data_size()
    for path in paths:
        assert (path in twin) == (path in compiled), path
        assert twin.get(path) == compiled.get(path), path
        assert twin.children(path) == compiled.children(path), path
        assert twin.stat(path) == compiled.stat(path), path
        assert twin.fields(path) == compiled.fields(path), path
    for chunk in (1, 3, 1000):
        assert list(twin.walk(chunk)) == list(compiled.walk(chunk))
        assert list(twin.walk(chunk, 200)) == list(compiled.walk(chunk, 200))
    for path in sorted(set(paths))[::2]:
        if path in twin:
            twin.mark(path, True)
            compiled.mark(path, True)
    assert list(twin.walk(2)) == list(compiled.walk(2))


def parent_of(path: str) -> str:
    return path.rpartition("/")[0] or "/"


@needs_native
@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree_and_steps=STEPS)
def test_differential_random_trees_and_batches(tree_and_steps: tuple[list[Any], list[Any]]) -> None:
    assert _NATIVE is not None
    twin, compiled = _TWIN(), _NATIVE()
    twin.put("/", b"root", STAT_ROOT, True)
    compiled.put("/", b"root", STAT_ROOT, True)
    seen = ["/"]
    for kind, *args in tree_and_steps[0] + tree_and_steps[1]:
        if kind == "read":
            assert outcome(twin.read_batch, *args) == outcome(compiled.read_batch, *args)
            assert outcome(twin.read_run, *args) == outcome(compiled.read_run, *args)
            continue
        if kind in ("remove leaf", "delete leaf"):
            leaves = [p for p in dict.fromkeys(seen) if twin.children(p) == [] and p != "/"]
            if not leaves:
                continue
            kind, args = kind.split()[0], [leaves[args[0] % len(leaves)], *args[1:]]
        elif kind == "create child":
            present = [p for p in dict.fromkeys(seen) if p in twin]
            kind, args = "create", [f"{present[args[0] % len(present)].rstrip('/')}/k{len(seen)}", *args[1:]]
        elif kind == "set_acl node":
            present = [p for p in dict.fromkeys(seen) if p in twin]
            kind, args = "set_acl", [present[args[0] % len(present)], *args[1:]]
        seen.append(args[0])
        assert outcome(getattr(twin, kind), *args) == outcome(getattr(compiled, kind), *args)
        for path in (args[0], parent_of(args[0])):  # what a step changes, compared as it happens
            assert twin.stat(path) == compiled.stat(path), (kind, path)
    assert_same_state(twin, compiled, seen)


def churn(index: Any, rng: random.Random, steps: int) -> tuple[list[str], list[Any]]:
    """Grow and shrink a wide, deep tree so the C table resizes and shifts probe runs back, through
    put and remove and through the apply calls: the paths left and what the apply calls returned."""
    paths = ["/"]
    returned: list[Any] = []
    index.put("/", b"", STAT_ROOT, True)
    for step in range(steps):
        roll = rng.random()
        if roll < 0.35 and len(paths) > 1:
            victim = paths[rng.randrange(1, len(paths))]
            if index.children(victim):
                continue
            if rng.random() < 0.5:
                index.remove(victim)
            else:
                returned.append(index.delete(victim, rng.randrange(-(1 << 63), 1 << 63)))
            paths.remove(victim)
        elif roll < 0.45:
            aversion = rng.randrange(-(1 << 31), 1 << 31)
            returned.append(
                index.set_acl(rng.choice(paths), rng.randrange(1 << 32), rng.random() < 0.8, aversion)
            )
        else:
            path = f"{rng.choice(paths).rstrip('/')}/n{step}"
            data, readable, acl = (
                rng.randbytes(rng.randrange(0, 50)),
                rng.random() < 0.8,
                rng.randrange(1 << 32),
            )
            if rng.random() < 0.5:
                index.put(path, data, rng.randbytes(68), readable, acl)
            else:
                creates = rng.randrange(-(1 << 31), 1 << 31) if rng.random() < 0.2 else rng.randrange(-2, 40)
                owner = rng.randrange(-(1 << 63), 1 << 63)
                returned.append(index.create(path, data, readable, acl, step, step * 1000, owner, creates))
            paths.append(path)
    return paths, returned


@needs_native
@pytest.mark.parametrize("seed", range(4))
def test_differential_seeded_churn(seed: int) -> None:
    assert _NATIVE is not None
    twin, compiled = _TWIN(), _NATIVE()
    paths, returned = churn(twin, random.Random(seed), 6000)
    assert churn(compiled, random.Random(seed), 6000) == (paths, returned)
    assert_same_state(twin, compiled, paths)
    rng = random.Random(seed)
    ops = [EXISTS, GET_DATA, GET_CHILDREN, GET_CHILDREN2]
    for start in range(0, len(paths), limits.read_batch_max):
        chunk = paths[start : start + limits.read_batch_max]
        requests = b"".join(
            frame(request(i, rng.choice(ops), p.encode(), i & 1)) for i, p in enumerate(chunk)
        )
        assert twin.read_batch(requests, seed) == compiled.read_batch(requests, seed)
        assert twin.read_run(requests, seed) == compiled.read_run(requests, seed)
