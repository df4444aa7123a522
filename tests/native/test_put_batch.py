"""PathIndex.put_batch: one call that does what a put per node would, in the C build (in chunks)
and in the twin: the same index afterwards, and the same error at the same node, with the nodes
before it in."""

from __future__ import annotations

import struct
from array import array
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import native
from native import _cindex
from zkcore import limits

_COMPILED = native.compiled()
IMPLS = [native.python_twin().PathIndex] + ([_COMPILED.PathIndex] if _COMPILED is not None else [])
impls = pytest.mark.parametrize("impl", IMPLS, ids=["python", "native"][: len(IMPLS)])
STAT = struct.Struct(">qqqqiiiqiiq")


def stats_of(rows: list[tuple[int, ...]]) -> list[list[int]]:
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(9)]


def puts(
    impl: Any, paths: list[Any], datas: list[Any], rows: list[tuple[int, ...]], readable: bytes,
    acls: Any = None,
) -> Any:  # fmt: skip
    """The reference: one put per node; returns the index and what stopped it, if anything."""
    index = impl()
    try:
        for i, (path, data, row, flag) in enumerate(zip(paths, datas, rows, readable, strict=True)):
            acl = 0 if acls is None else acls[i]
            index.put(path, data, STAT.pack(*row[:8], 0, 0, row[8]), flag != 0, acl)
    except (TypeError, ValueError, KeyError, struct.error) as e:
        return index, e
    return index, None


def batch(
    impl: Any, paths: list[Any], datas: list[Any], rows: list[tuple[int, ...]], readable: bytes,
    acls: Any = None,
) -> Any:  # fmt: skip
    index = impl()
    try:
        if acls is None:
            index.put_batch(paths, datas, stats_of(rows), readable)  # acls left out
        else:
            index.put_batch(paths, datas, stats_of(rows), readable, acls)
    except (TypeError, ValueError, KeyError) as e:
        return index, e
    return index, None


def contents(index: Any, paths: list[Any]) -> list[Any]:
    seen = [p for p in dict.fromkeys(paths) if isinstance(p, str) and p in index]
    return [len(index)] + [(p, index.get(p), index.children(p), index.stat(p)) for p in seen]


ROW = (1, 2, 3, 4, 5, 6, 7, 8, 9)
GOOD = (["/", "/a", "/a/b", "/c", "/a"], [b"", b"x", b"yy", b"", b"z"], [ROW] * 5, b"\x01\x00\x01\x01\x00")
BAD = {
    "parent missing": (["/", "/a/b"], [b"", b""], [ROW] * 2, b"\x01\x01"),
    "bad path": (["/", "/a/"], [b"", b""], [ROW] * 2, b"\x01\x01"),
    "path too long": (["/", "/" + "a" * limits.path_bytes_max], [b"", b""], [ROW] * 2, b"\x01\x01"),
    "data too long": (["/", "/a"], [b"", bytes(limits.data_bytes_max + 1)], [ROW] * 2, b"\x01\x01"),
    "lone surrogate": (["/", "/a", "/\ud800"], [b""] * 3, [ROW] * 3, b"\x01\x01\x01"),
    "not a str": (["/", "/a", 7], [b""] * 3, [ROW] * 3, b"\x01\x01\x01"),
    "not bytes": (["/", "/a"], [b"", "x"], [ROW] * 2, b"\x01\x01"),
    "version too big": (["/", "/a"], [b"", b""], [ROW, (1, 2, 3, 4, 1 << 31, 0, 0, 0, 0)], b"\x01\x01"),
    "zxid too big": (["/", "/a"], [b"", b""], [ROW, (1 << 63, 2, 3, 4, 0, 0, 0, 0, 0)], b"\x01\x01"),
    "not an int": (["/", "/a"], [b"", b""], [ROW, (1, 2, 3, 4, 0.5, 0, 0, 0, 0)], b"\x01\x01"),
    "non-ASCII": (["/", "/é", "/é/ü"], [b"", b"\xc3", b""], [ROW] * 3, b"\x01\x01\x01"),
    "wide memoryview": (["/", "/a"], [b"", memoryview(b"abcd").cast("I")], [ROW] * 2, b"\x01\x01"),
}


class Number(int):
    """An int, to the checks, that is not one to type(): the C build's slower conversion."""


ACLS = [7, 0, (1 << 32) - 1, 1, 2]
# The ACL numbers of GOOD (and BAD, cut to length) as each form put_batch takes them.
ACL_FORMS = {
    "no acls": None,
    "list": ACLS,
    "tuple": tuple(ACLS),
    "array I": array("I", ACLS),
    "array q": array("q", ACLS),
    "array L": array("L", ACLS),
    "small array B": array("B", [7, 0, 255, 1, 2]),
    "int subclass": [Number(a) for a in ACLS],
}


@impls
@pytest.mark.parametrize("acls", ACL_FORMS.values(), ids=ACL_FORMS.keys())
@pytest.mark.parametrize("case", [GOOD, *BAD.values()], ids=["good", *BAD.keys()])
def test_put_batch_does_what_puts_do(impl: Any, case: Any, acls: Any) -> None:
    paths, datas, rows, readable = case
    if acls is not None:
        acls = acls[: len(paths)]
    expected, error = puts(impl, paths, datas, rows, readable, acls)
    index, got = batch(impl, paths, datas, rows, readable, acls)
    assert contents(index, paths) == contents(expected, paths)
    assert type(got) is (ValueError if isinstance(error, struct.error) else type(error))
    if error is not None and not isinstance(error, struct.error):
        assert str(got) == str(error)


def test_put_batch_sets_each_acl_number() -> None:
    for impl in IMPLS:
        index = impl()
        index.put_batch(*GOOD[:2], stats_of(GOOD[2]), GOOD[3], array("I", ACLS))
        assert [index.stat(p)[1] for p in ("/", "/a", "/a/b", "/c")] == [7, 2, (1 << 32) - 1, 1]  # /a twice
        index.put_batch(["/a"], [b""], stats_of([ROW]), b"\x01")
        assert index.stat("/a")[1] == 0  # no acls: 0


@pytest.mark.parametrize(
    "args",
    [
        ("/", [b""], [[0]] * 9, b"\x01"),
        (["/"], [b""], [[0]] * 8, b"\x01"),
        (["/"], [b""], [[0]] * 9, b"\x01\x01"),
        (["/"], [b""], [[0]] * 9, [True]),
        (["/"], [b"", b""], [[0]] * 9, b"\x01"),
        (["/"], [b""], [[0, 0]] * 9, b"\x01"),
        (["/"], [b""], [[0]] * 9, b"\x01", []),
        (["/"], [b""], [[0]] * 9, b"\x01", [0, 0]),
        (["/"], [b""], [[0]] * 9, b"\x01", b"\x00"),
        (["/"], [b""], [[0]] * 9, b"\x01", 0),
        (["/"], [b""], [[0]] * 9, b"\x01", {0: 0}),
        (["/"], [b""], [[0]] * 9, b"\x01", [-1]),
        (["/"], [b""], [[0]] * 9, b"\x01", [1 << 32]),
        (["/"], [b""], [[0]] * 9, b"\x01", (1 << 64,)),
        (["/"], [b""], [[0]] * 9, b"\x01", [True]),
        (["/"], [b""], [[0]] * 9, b"\x01", [1.0]),
        (["/"], [b""], [[0]] * 9, b"\x01", ["1"]),
        (["/"], [b""], [[0]] * 9, b"\x01", [None]),
        (["/"], [b""], [[0]] * 9, b"\x01", array("d", [1.0])),
        (["/"], [b""], [[0]] * 9, b"\x01", array("q", [-1])),
        (["/"], [b""], [[0]] * 9, b"\x01", array("Q", [1 << 32])),
        (["/"], [b""], [[0]] * 9, b"\x01", array("b", [-1])),
        (["/", "/a"], [b"", b""], [[0, 0]] * 9, b"\x01\x01", [0, -1]),  # the culprit named, none put
        (["/", "/a"], [b"", b""], [[0, 0]] * 9, b"\x01\x01", [2, 3, 4]),
        (["/", "/a"], [b""], [[0, 0]] * 9, b"\x01\x01", [-1, -1]),  # shape before ACL numbers
    ],
)
@impls
def test_put_batch_checks_its_shape_first(impl: Any, args: tuple[Any, ...]) -> None:
    errors = []
    for each in IMPLS:
        index = each()
        with pytest.raises((TypeError, ValueError)) as caught:
            index.put_batch(*args)
        assert len(index) == 0
        errors.append((type(caught.value), str(caught.value)))
    assert len(set(errors)) == 1


names = st.sampled_from(["a", "b", "c", "é"])


@st.composite
def trees(draw: Any) -> tuple[list[str], list[bytes], list[tuple[int, ...]], bytes, Any]:
    paths = ["/"]
    for _ in range(draw(st.integers(0, 60))):
        parent = draw(st.sampled_from(paths))
        paths.append((parent if parent != "/" else "") + "/" + draw(names))
    if draw(st.booleans()):
        paths.append("/missing/" + draw(names))
    datas = [draw(st.binary(max_size=5)) for _ in paths]
    field = st.integers(-(1 << 31), (1 << 31) - 1)
    rows = [tuple(draw(field) for _ in range(9)) for _ in paths]
    acl = st.integers(0, (1 << 32) - 1)
    form = draw(st.sampled_from(["none", "list", "array", "bad"]))
    acls: Any = None if form == "none" else [draw(acl) for _ in paths]
    if form == "array":
        acls = array("I", acls)
    elif form == "bad":
        acls[draw(st.integers(0, len(paths) - 1))] = draw(st.sampled_from([-1, 1 << 32, True, 0.0]))
    return paths, datas, rows, bytes(draw(st.integers(0, 1)) for _ in paths), acls


@pytest.mark.skipif(_COMPILED is None, reason="native extension not built")
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=trees(), chunk=st.sampled_from([1, 3, 65536]))
def test_native_batches_match_the_twin(case: Any, chunk: int) -> None:
    assert _COMPILED is not None
    saved = _cindex._PUT_BATCH_NODES
    _cindex._PUT_BATCH_NODES = chunk  # split into several C calls, as a big batch is
    try:
        native_index, native_error = batch(_COMPILED.PathIndex, *case)
    finally:
        _cindex._PUT_BATCH_NODES = saved
    twin_index, twin_error = batch(native.python_twin().PathIndex, *case)
    assert repr(native_error) == repr(twin_error)
    assert contents(native_index, case[0]) == contents(twin_index, case[0])
