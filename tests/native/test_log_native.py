"""CRC-32C and txn log records: table tests run against the C build and the Python twin, and
differential tests that feed both the same random inputs and require the same results."""

from __future__ import annotations

import os
import struct
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from native import _pylog
from zkcore import limits
from zkcore._errors import LocalError

try:
    from native import _clog
except ImportError:  # the C extension is not built: the twin still gets tested
    _clog = None  # type: ignore[assignment]

needs_c = pytest.mark.skipif(_clog is None, reason="native extension not built")
IMPLEMENTATIONS = [pytest.param(_pylog, id="python"), pytest.param(_clog, id="native", marks=needs_c)]


@pytest.fixture(params=IMPLEMENTATIONS)
def impl(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]


def record(zxid: int, payload: bytes) -> bytes:
    """A record built by hand from the format, independent of both implementations."""
    length = struct.pack(">I", len(payload))
    zxid_bytes = struct.pack(">Q", zxid)
    crc = _pylog.crc32c(length + zxid_bytes + payload)
    return length + struct.pack(">I", crc) + zxid_bytes + payload


# --- crc32c -----------------------------------------------------------------------------------

# RFC 3720 (iSCSI) B.4 vectors, plus the usual check value.
CRC_CASES = [
    (b"", 0x00000000),
    (b"123456789", 0xE3069283),
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
    (b"a", 0xC1D04330),
]


@pytest.mark.parametrize(("data", "expected"), CRC_CASES)
def test_crc32c_vectors(impl: ModuleType, data: bytes, expected: int) -> None:
    assert impl.crc32c(data) == expected
    assert impl.crc32c(bytearray(data)) == expected
    assert impl.crc32c(memoryview(data)) == expected


@pytest.mark.parametrize(("data", "expected"), CRC_CASES)
def test_crc32c_continues(impl: ModuleType, data: bytes, expected: int) -> None:
    for cut in range(len(data) + 1):
        assert impl.crc32c(data[cut:], impl.crc32c(data[:cut])) == expected


@pytest.mark.parametrize("crc", [-1, 1 << 32, "0"])
def test_crc32c_rejects_bad_crc(impl: ModuleType, crc: object) -> None:
    with pytest.raises(LocalError, match="crc must be"):
        impl.crc32c(b"x", crc)


@needs_c
def test_c_software_and_hardware_agree() -> None:
    assert _clog is not None
    ffi, lib = _clog.ffi, _clog.lib
    data = os.urandom(4096)
    for start in range(9):  # every alignment
        for length in (0, 1, 7, 8, 9, 63, 64, 1000):
            chunk = data[start : start + length]
            expected = _pylog.crc32c(chunk)
            assert lib.zk_crc32c_sw(0, ffi.from_buffer(chunk), len(chunk)) == expected
            assert lib.zk_crc32c(0, ffi.from_buffer(chunk), len(chunk)) == expected


# --- log_encode ---------------------------------------------------------------------------------

ENCODE_CASES = [
    ([], []),
    ([1], [b"a"]),
    ([0x100000001, 0x100000002], [b"create /a", b"x" * 300]),
    ([(1 << 64) - 1], [bytes(range(256))]),
    ([5], [b"\x00" * 17]),
]


@pytest.mark.parametrize(("zxids", "payloads"), ENCODE_CASES)
def test_log_encode_matches_the_format(impl: ModuleType, zxids: list[int], payloads: list[bytes]) -> None:
    expected = b"".join(record(z, p) for z, p in zip(zxids, payloads, strict=True))
    assert impl.log_encode(zxids, payloads) == expected
    assert impl.log_encode(zxids, [bytearray(p) for p in payloads]) == expected


BAD_BATCHES = [
    ([1, 2], [b"a"], "pair up"),
    ([1], [b""], "must not be empty"),
    ([1], [b"x" * (limits.frame_bytes_max + 1)], "at most"),
    ([-1], [b"a"], "zxids must be ints"),
    ([1 << 64], [b"a"], "zxids must be ints"),
    (["1"], [b"a"], "zxids must be ints"),
    ([1], ["text"], "payloads must be bytes"),
]


@pytest.mark.parametrize(("zxids", "payloads", "message"), BAD_BATCHES)
def test_log_encode_rejects_bad_batches(impl: ModuleType, zxids: list, payloads: list, message: str) -> None:
    with pytest.raises(LocalError, match=message):
        impl.log_encode(zxids, payloads)


def test_log_encode_counts_bytes_not_items(impl: ModuleType) -> None:
    from array import array

    wide = memoryview(array("I", [1, 2, 3]))  # len() is 3 items, nbytes is 12
    assert impl.log_encode([1, 2], [b"ab", wide]) == record(1, b"ab") + record(2, wide.tobytes())


def test_log_encode_accepts_the_largest_payload(impl: ModuleType) -> None:
    payload = b"y" * limits.frame_bytes_max
    assert impl.log_encode([7], [payload]) == record(7, payload)


# --- log_append ---------------------------------------------------------------------------------


def test_log_append_writes_at_the_current_position(impl: ModuleType, tmp_path) -> None:
    path = tmp_path / "log"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        os.write(fd, b"HEAD")
        first = impl.log_append(fd, [1, 2], [b"one", b"two"])
        second = impl.log_append(fd, [3], [b"three" * 100])
        empty = impl.log_append(fd, [], [])
    finally:
        os.close(fd)
    expected = record(1, b"one") + record(2, b"two") + record(3, b"three" * 100)
    assert (first, second, empty) == (38, 516, 0)
    assert path.read_bytes() == b"HEAD" + expected


def test_log_append_raises_oserror_on_a_bad_fd(impl: ModuleType, tmp_path) -> None:
    fd = os.open(tmp_path / "log", os.O_RDONLY | os.O_CREAT)
    try:
        with pytest.raises(OSError) as caught:
            impl.log_append(fd, [1], [b"x"])
    finally:
        os.close(fd)
    assert caught.value.errno == 9  # EBADF: the fd is not open for writing


def test_log_append_checks_the_batch_before_writing(impl: ModuleType, tmp_path) -> None:
    fd = os.open(tmp_path / "log", os.O_RDWR | os.O_CREAT)
    try:
        with pytest.raises(LocalError):
            impl.log_append(fd, [1, 2], [b"x", b""])
    finally:
        os.close(fd)
    assert (tmp_path / "log").read_bytes() == b""


# --- log_scan -----------------------------------------------------------------------------------

R1, R2, R3 = record(1, b"first"), record(2, b"second" * 10), record(0x200000001, b"third")
GOOD = [(1, b"first"), (2, b"second" * 10), (0x200000001, b"third")]
ALL = R1 + R2 + R3


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x40]) + data[at + 1 :]


SCAN_CASES = [
    # buffer, offset, records, end, status
    (b"", 0, [], 0, "end"),
    (ALL, 0, GOOD, len(ALL), "end"),
    (ALL + bytes(16), 0, GOOD, len(ALL), "end"),
    (ALL + bytes(4096), 0, GOOD, len(ALL), "end"),
    (ALL + bytes(16) + R1, 0, GOOD, len(ALL), "end"),
    (ALL + bytes(5), 0, GOOD, len(ALL), "torn"),
    (ALL[:-1], 0, GOOD[:2], len(R1 + R2), "torn"),
    (R1 + R2[:16], 0, GOOD[:1], len(R1), "torn"),
    (R1 + R2[:15], 0, GOOD[:1], len(R1), "torn"),
    (ALL, len(R1), GOOD[1:], len(ALL), "end"),
    (ALL, len(ALL), [], len(ALL), "end"),
    (b"JUNK" + R1, 4, GOOD[:1], 4 + len(R1), "end"),
    (flip(ALL, len(R1) + 20), 0, GOOD[:1], len(R1), "corrupt"),  # payload byte
    (flip(ALL, len(R1) + 5), 0, GOOD[:1], len(R1), "corrupt"),  # crc byte
    (flip(ALL, len(R1) + 12), 0, GOOD[:1], len(R1), "corrupt"),  # zxid byte
    (R1 + struct.pack(">IIQ", 0, 1, 0), 0, GOOD[:1], len(R1), "corrupt"),  # empty, crc set
    (R1 + struct.pack(">IIQ", 0, 0, 9), 0, GOOD[:1], len(R1), "corrupt"),  # empty, zxid set
    (struct.pack(">IIQ", limits.frame_bytes_max + 1, 0, 1), 0, [], 0, "corrupt"),
    (struct.pack(">IIQ", 0xFFFFFFFF, 0, 1) + bytes(64), 0, [], 0, "corrupt"),
    (struct.pack(">IIQ", 64, 0, 1) + bytes(8), 0, [], 0, "torn"),
]


@pytest.mark.parametrize(("buf", "offset", "records", "end", "status"), SCAN_CASES)
def test_log_scan_cases(
    impl: ModuleType, buf: bytes, offset: int, records: list, end: int, status: str
) -> None:
    for kind in (bytes, bytearray, memoryview):
        result = impl.log_scan(kind(buf), offset)
        assert result == _pylog.ScanResult(records, end, status)
        assert all(type(payload) is bytes for _, payload in result.records)


def test_log_scan_every_prefix_stops_at_the_last_whole_record(impl: ModuleType) -> None:
    boundaries = {0: 0, len(R1): 1, len(R1 + R2): 2, len(ALL): 3}
    for cut in range(len(ALL) + 1):
        result = impl.log_scan(ALL[:cut])
        whole = max(b for b in boundaries if b <= cut)
        assert result.records == GOOD[: boundaries[whole]]
        assert result.end == whole
        assert result.status == ("end" if cut == whole else "torn")


def test_log_scan_reports_many_records_past_one_c_call(impl: ModuleType) -> None:
    payloads = [b"p%d" % i for i in range(10_000)]  # more than _clog scans per call
    buf = impl.log_encode(range(1, 10_001), payloads)
    result = impl.log_scan(buf)
    assert result.status == "end" and result.end == len(buf)
    assert result.records == list(zip(range(1, 10_001), payloads, strict=True))


@pytest.mark.parametrize("offset", [-1, 4, 1.5])
def test_log_scan_rejects_offsets_outside_the_buffer(impl: ModuleType, offset: object) -> None:
    with pytest.raises(LocalError, match="offset must be within"):
        impl.log_scan(b"abc", offset)


# --- differential -------------------------------------------------------------------------------

batches = st.lists(st.tuples(st.integers(0, (1 << 64) - 1), st.binary(min_size=1, max_size=200)), max_size=12)
fast = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@needs_c
@fast
@given(data=st.binary(max_size=600), seed=st.integers(0, 0xFFFFFFFF), cut=st.integers(0, 600))
def test_differential_crc32c(data: bytes, seed: int, cut: int) -> None:
    assert _clog is not None
    assert _clog.crc32c(data) == _pylog.crc32c(data)
    assert _clog.crc32c(data, seed) == _pylog.crc32c(data, seed)
    assert _clog.crc32c(data[cut:], _clog.crc32c(data[:cut])) == _pylog.crc32c(data)


@needs_c
@fast
@given(batch=batches)
def test_differential_encode_and_scan(batch: list[tuple[int, bytes]]) -> None:
    assert _clog is not None
    zxids, payloads = [z for z, _ in batch], [p for _, p in batch]
    encoded = _pylog.log_encode(zxids, payloads)
    assert _clog.log_encode(zxids, payloads) == encoded
    assert (
        _clog.log_scan(encoded) == _pylog.log_scan(encoded) == _pylog.ScanResult(batch, len(encoded), "end")
    )


@needs_c
@fast
@given(batch=batches, data=st.data())
def test_differential_scan_of_damaged_buffers(batch: list[tuple[int, bytes]], data: st.DataObject) -> None:
    assert _clog is not None
    buf = bytearray(_pylog.log_encode([z for z, _ in batch], [p for _, p in batch]) + bytes(32))
    for _ in range(data.draw(st.integers(0, 3), label="flips")):
        at = data.draw(st.integers(0, len(buf) - 1), label="at")
        buf[at] ^= data.draw(st.integers(1, 255), label="mask")
    cut = data.draw(st.integers(0, len(buf)), label="cut")
    offset = data.draw(st.integers(0, cut), label="offset")
    damaged = bytes(buf[:cut])
    assert _clog.log_scan(damaged, offset) == _pylog.log_scan(damaged, offset)


@needs_c
@fast
@given(garbage=st.binary(max_size=300))
def test_differential_scan_of_garbage(garbage: bytes) -> None:
    assert _clog is not None
    assert _clog.log_scan(garbage) == _pylog.log_scan(garbage)
    assert _clog.log_scan(record(3, b"ok") + garbage) == _pylog.log_scan(record(3, b"ok") + garbage)
