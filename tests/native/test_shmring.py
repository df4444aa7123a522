"""The shared-memory ring: table and scenario tests run against the C build and the Python twin,
every writer twin against every reader twin (they share one file layout), and a differential
test that drives both with the same seeded random pushes and pops and requires the same
results and the same bytes in the file. No processes: a writer's death is its close(), which
releases the same flock and file descriptors the kernel releases on kill -9."""

from __future__ import annotations

import os
import random
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from native import _pyshm
from zkcore._errors import LocalError, RemoteError

try:
    from native import _cshm
except ImportError:  # the C extension is not built: the twin still gets tested
    _cshm = None  # type: ignore[assignment]

Ring = type[_pyshm.ShmRing]
needs_c = pytest.mark.skipif(_cshm is None, reason="native extension not built")
TWINS = [pytest.param(_pyshm.ShmRing, id="python"),
         pytest.param(getattr(_cshm, "ShmRing", None), id="native", marks=needs_c)]  # fmt: skip
PAIRS = [
    pytest.param((w.values[0], r.values[0]), id=f"{w.id}-writes-{r.id}-reads", marks=w.marks + r.marks)
    for w in TWINS
    for r in TWINS
]
CAPACITY = 4096
S = _pyshm.ShmRing


@pytest.fixture(params=TWINS)
def impl(request: pytest.FixtureRequest) -> Ring:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "ring")


@pytest.fixture
def pair(request: pytest.FixtureRequest, path: str) -> Iterator[tuple[_pyshm.ShmRing, _pyshm.ShmRing]]:
    writer_impl, reader_impl = request.param
    reader = reader_impl.create(path, CAPACITY)
    writer = writer_impl.attach(path)
    yield writer, reader
    writer.close()
    reader.close()


def messages(reader: _pyshm.ShmRing) -> list[bytes]:
    status, records, skipped = reader.pop()
    assert status == S.END and skipped == 0
    return [payload for payload, _ in records]


# --- pushes and pops ------------------------------------------------------------------------

CASES = [
    ("one", [b"zab"]),
    ("empty payload", [b""]),
    ("several, kept in order", [b"a", b"bb", b"ccc", b"dddd" * 10]),
    ("exactly 8 bytes, no padding", [b"12345678", b"87654321"]),
    ("binary", [bytes(range(256))]),
]


@pytest.mark.parametrize("pair", PAIRS, indirect=True)
@pytest.mark.parametrize(("name", "sent"), CASES, ids=[c[0] for c in CASES])
def test_messages_arrive_whole_and_in_order(pair: tuple[_pyshm.ShmRing, _pyshm.ShmRing], name: str,
                                            sent: list[bytes]) -> None:  # fmt: skip
    writer, reader = pair
    assert [writer.push(m) for m in sent] == [S.OK] * len(sent)
    assert messages(reader) == sent
    assert messages(reader) == []
    assert reader.pending_bytes() == 0


@pytest.mark.parametrize("pair", PAIRS, indirect=True)
def test_wrap_around_splits_payloads_across_the_end(pair: tuple[_pyshm.ShmRing, _pyshm.ShmRing]) -> None:
    writer, reader = pair
    rng = random.Random(7)
    for i in range(500):  # ~50 laps of a 4 KiB ring, each size landing the next record elsewhere
        sent = [rng.randbytes(rng.randrange(0, 300)) for _ in range(rng.randrange(1, 6))]
        assert [writer.push(m) for m in sent] == [S.OK] * len(sent), i
        assert messages(reader) == sent, i


@pytest.mark.parametrize("pair", PAIRS, indirect=True)
def test_full_ring_refuses_until_the_reader_takes(pair: tuple[_pyshm.ShmRing, _pyshm.ShmRing]) -> None:
    writer, reader = pair
    record = b"x" * 1016  # 1024 bytes with its header: four fill the ring
    assert [writer.push(record) for _ in range(5)] == [S.OK] * 4 + [S.FULL]
    assert writer.push(b"") == S.FULL  # not even a header's room
    status, records, _ = reader.pop(records_max=1)
    assert status == S.MORE and [p for p, _ in records] == [record]
    assert writer.push(record) == S.OK
    assert writer.push(record) == S.FULL
    assert messages(reader) == [record] * 4


@pytest.mark.parametrize("pair", PAIRS, indirect=True)
def test_largest_message_fills_the_ring_and_one_byte_more_is_refused(
    pair: tuple[_pyshm.ShmRing, _pyshm.ShmRing],
) -> None:
    writer, reader = pair
    assert writer.message_bytes_max == CAPACITY - 8
    biggest = bytes(range(256)) * (CAPACITY // 256 - 1) + b"y" * 248
    assert len(biggest) == writer.message_bytes_max
    assert writer.push(biggest + b"z") == S.TOO_BIG
    assert writer.push(b"a") == S.OK  # the big one must now wrap around the end
    assert messages(reader) == [b"a"]
    assert writer.push(biggest) == S.OK
    assert writer.push(b"") == S.FULL
    assert messages(reader) == [biggest]


@pytest.mark.parametrize("pair", PAIRS, indirect=True)
def test_spill_flag_travels_with_the_record(pair: tuple[_pyshm.ShmRing, _pyshm.ShmRing]) -> None:
    writer, reader = pair
    assert writer.push(b"1.1", S.FLAG_SPILL) == S.OK
    assert writer.push(b"plain") == S.OK
    assert reader.pop()[1] == [(b"1.1", S.FLAG_SPILL), (b"plain", 0)]


def test_payload_may_be_any_bytes_like(impl: Ring, path: str) -> None:
    reader = impl.create(path, CAPACITY)
    writer = impl.attach(path)
    assert writer.push(bytearray(b"ab")) == S.OK
    assert writer.push(memoryview(b"xcdx")[1:3]) == S.OK
    assert messages(reader) == [b"ab", b"cd"]
    writer.close()
    reader.close()


# --- the wake-up protocol -------------------------------------------------------------------


def wake_pipe() -> tuple[int, int]:
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    return read_fd, write_fd


def wake_bytes(fd: int) -> int:
    try:
        return len(os.read(fd, 100))
    except BlockingIOError:
        return 0


@pytest.mark.parametrize("pair", PAIRS, indirect=True)
def test_writer_wakes_only_a_reader_that_said_it_sleeps(pair: tuple[_pyshm.ShmRing, _pyshm.ShmRing]) -> None:
    writer, reader = pair
    read_fd, write_fd = wake_pipe()
    try:
        assert writer.push(b"awake", 0, write_fd) == S.OK
        assert wake_bytes(read_fd) == 0, "an awake reader gets no wake-up"
        assert reader.sleep() is True, "a message is waiting: do not block"
        assert writer.push(b"still awake", 0, write_fd) == S.OK
        assert wake_bytes(read_fd) == 0, "sleep() that found a message clears the flag"
        assert len(messages(reader)) == 2
        assert reader.sleep() is False  # nothing waiting: the reader blocks
        assert writer.push(b"one", 0, write_fd) == S.OK
        assert writer.push(b"two", 0, write_fd) == S.OK
        assert wake_bytes(read_fd) == 1, "one byte per sleep, however many messages"
        reader.wake()
        assert writer.push(b"three", 0, write_fd) == S.OK
        assert wake_bytes(read_fd) == 0
        assert messages(reader) == [b"one", b"two", b"three"]
        assert reader.sleep() is False
        reader.wake()  # woken by something else: writers need not signal any more
        assert writer.push(b"four", 0, write_fd) == S.OK
        assert wake_bytes(read_fd) == 0
    finally:
        os.close(read_fd)
        os.close(write_fd)


@pytest.mark.parametrize("pair", PAIRS, indirect=True)
def test_the_reader_calls_are_its_sleep_wake_and_pending_bytes(
    pair: tuple[_pyshm.ShmRing, _pyshm.ShmRing],
) -> None:
    """What a reader's loop calls every turn, without the methods' frames (the C twin binds
    its functions to the ring): the same answers as the methods."""
    writer, reader = pair
    sleep, wake, pending = reader.reader_calls()
    read_fd, write_fd = wake_pipe()
    try:
        assert pending() == 0 and not sleep(), "empty: the reader may block"
        assert writer.push(b"one", 0, write_fd) == S.OK
        assert wake_bytes(read_fd) == 1, "it said it sleeps: woken"
        assert pending() == reader.pending_bytes() > 0
        wake()
        assert writer.push(b"two", 0, write_fd) == S.OK
        assert wake_bytes(read_fd) == 0, "awake again: no wake-up"
        assert sleep(), "messages wait: do not block"
        assert messages(reader) == [b"one", b"two"] and pending() == 0
    finally:
        os.close(read_fd)
        os.close(write_fd)


@pytest.mark.parametrize("pair", PAIRS, indirect=True)
def test_a_full_wake_pipe_is_not_an_error(pair: tuple[_pyshm.ShmRing, _pyshm.ShmRing]) -> None:
    writer, reader = pair
    read_fd, write_fd = wake_pipe()
    try:
        while True:
            try:
                os.write(write_fd, b"\0" * 4096)
            except BlockingIOError:
                break
        assert reader.sleep() is False
        assert writer.push(b"m", 0, write_fd) == S.OK
    finally:
        os.close(read_fd)
        os.close(write_fd)


@pytest.mark.parametrize("pair", PAIRS, indirect=True)
def test_a_wake_fd_without_reader_says_reader_gone(pair: tuple[_pyshm.ShmRing, _pyshm.ShmRing]) -> None:
    writer, reader = pair
    read_fd, write_fd = wake_pipe()
    os.close(read_fd)  # the reading process is gone: EPIPE
    try:
        assert reader.sleep() is False
        assert writer.push(b"m", 0, write_fd) == S.READER_GONE
    finally:
        os.close(write_fd)


# --- writers and readers that die and come back ------------------------------------------------


@pytest.mark.parametrize("pair", PAIRS, indirect=True)
def test_restarted_writer_gets_a_new_generation_and_stale_records_are_dropped(
    pair: tuple[_pyshm.ShmRing, _pyshm.ShmRing], path: str
) -> None:
    writer, reader = pair
    assert writer.generation == 1
    assert writer.push(b"from the dead") == S.OK
    assert writer.push(b"also dead") == S.OK
    writer.close()  # kill -9 releases the flock and the mapping the same way
    successor = type(writer).attach(path)
    assert successor.generation == 2
    assert successor.push(b"new") == S.OK
    status, records, skipped = reader.pop()
    assert (status, records, skipped) == (S.END, [(b"new", 0)], 2)
    successor.close()


def test_one_writer_at_a_time(impl: Ring, path: str) -> None:
    reader = impl.create(path, CAPACITY)
    writer = impl.attach(path)
    with pytest.raises(BlockingIOError):
        impl.attach(path)
    writer.close()
    impl.attach(path).close()  # the lock went with the first writer
    reader.close()


@pytest.mark.parametrize("pair", PAIRS, indirect=True)
def test_reader_that_died_with_messages_unread_gets_none_of_them(
    pair: tuple[_pyshm.ShmRing, _pyshm.ShmRing], path: str
) -> None:
    writer, reader = pair
    assert writer.push(b"to the dead reader") == S.OK
    reader.close()
    successor = type(reader).create(path, CAPACITY)  # its restart marks the old ring abandoned
    assert writer.push(b"lost") == S.ABANDONED
    writer.close()
    again = type(writer).attach(path)
    assert again.push(b"fresh") == S.OK
    assert messages(successor) == [b"fresh"]
    again.close()
    successor.close()


@pytest.mark.parametrize("pair", PAIRS, indirect=True)
def test_discard_drops_what_a_dead_writer_left(pair: tuple[_pyshm.ShmRing, _pyshm.ShmRing]) -> None:
    writer, reader = pair
    writer.push(b"a")
    writer.push(b"b")
    reader.discard()
    assert messages(reader) == []
    assert writer.push(b"c") == S.OK
    assert messages(reader) == [b"c"]


def corrupt_word(path: str, offset: int, value: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(struct.pack("=Q", value))


@pytest.mark.parametrize("pair", PAIRS, indirect=True)
def test_impossible_positions_or_lengths_drop_everything_never_garbage(
    pair: tuple[_pyshm.ShmRing, _pyshm.ShmRing], path: str
) -> None:
    writer, reader = pair
    writer.push(b"good")
    corrupt_word(path, 64, 12)  # tail 12: not a whole number of records
    assert reader.pop() == (S.CORRUPT, [], 0)
    corrupt_word(path, 64, 12 + CAPACITY * 4)  # tail beyond a ring's worth
    assert reader.pop() == (S.CORRUPT, [], 0)
    head = CAPACITY * 4 + 16
    corrupt_word(path, 128, head)
    corrupt_word(path, 64, head + 16)
    with open(path, "r+b") as f:  # a record that claims more bytes than were published
        f.seek(_pyshm.HEADER_BYTES + head % CAPACITY)
        f.write(struct.pack("=II", 100, writer.generation << 1))
    assert reader.pop() == (S.CORRUPT, [], 0)
    assert writer.push(b"after") == S.OK  # the ring works again
    assert messages(reader) == [b"after"]


# --- the files ------------------------------------------------------------------------------


@pytest.mark.parametrize("capacity", [0, 4095, 4097, 3 * 4096, 1 << 31, "4096"])
def test_create_refuses_a_bad_capacity(impl: Ring, path: str, capacity: object) -> None:
    with pytest.raises(LocalError, match="power of two"):
        impl.create(path, capacity)  # type: ignore[arg-type]


def test_attach_refuses_what_is_not_a_live_ring(impl: Ring, path: str, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        impl.attach(path)
    Path(path).write_bytes(b"\0" * (4096 + 8192))
    with pytest.raises(RemoteError, match="not a version-1 zkpy shared-memory ring"):
        impl.attach(path)
    reader = impl.create(path, CAPACITY)  # replaces the junk
    with open(path, "r+b") as f:
        f.truncate(4096 + 2 * CAPACITY)
    with pytest.raises(RemoteError, match="does not match its size"):
        impl.attach(path)
    reader.close()


# --- both twins alike -----------------------------------------------------------------------


@needs_c
@pytest.mark.parametrize("seed", range(5))
def test_twins_agree_on_random_traffic(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    sides = []
    for twin in (_pyshm.ShmRing, _cshm.ShmRing):
        reader = twin.create(str(tmp_path / f"{twin.__module__}.ring"), CAPACITY)
        sides.append((twin.attach(reader.path), reader))
    for _ in range(400):
        action = rng.random()
        payload = rng.randbytes(rng.choice([0, 1, 7, 8, 9, 100, 1000, CAPACITY - 8, CAPACITY]))
        records_max, flags = rng.randrange(1, 6), rng.randrange(2)
        if action < 0.6:
            results = {w.push(payload, flags) for w, _ in sides}
        elif action < 0.9:
            results = {repr(r.pop(records_max)) for _, r in sides}
        else:
            results = {r.sleep() for _, r in sides}
            for _, r in sides:
                r.wake()
        assert len(results) == 1, results
    files = [Path(r.path).read_bytes() for _, r in sides]
    assert files[0] == files[1]
    for w, r in sides:
        w.close()
        r.close()
