"""Codec tests for Zab's messages: round trips, truncation, trailing bytes, garbage, validation."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.jute_reference import outcome, read_record
from tests.mutations import mutated
from zkcore import LocalError, RemoteError
from zkcore import _jute as jute
from zkcore._jute import Reader, Writer
from zkcore.zab import (
    MESSAGE_TYPES,
    Ack,
    AckEpoch,
    Commit,
    Diff,
    Entry,
    FollowerInfo,
    Inform,
    LeaderInfo,
    Message,
    NewLeader,
    Notification,
    ObserverInfo,
    Ping,
    Proposal,
    Refused,
    Request,
    Snap,
    Sync,
    Trunc,
    UpToDate,
    decode_message,
    encode_message,
    encode_message_parts,
    make_zxid,
)
from zkcore.zab._messages import SERVER_ID_MAX

Z1, Z2, Z3 = make_zxid(1, 1), make_zxid(1, 2), make_zxid(2, 1)
ENTRIES = (Entry(Z2, b"txn-2"), Entry(Z3, b"txn-3"))

SAMPLES: list[Message] = [
    Notification(1, 2, 0, 3, Z2, 7, 1),
    Notification(4, 1, 3, -1, 0, 1, 0),
    FollowerInfo(2, 3, 1, Z2),
    ObserverInfo(4, 3, 0, 0),
    LeaderInfo(3, 2, 2),
    AckEpoch(2, 3, 2, 1, Z2),
    AckEpoch(2, 3, 2, -1, 0),
    Diff(3, 2, 2, Z1, Z2, ENTRIES),
    Diff(3, 2, 2, Z3, Z3, ()),
    Trunc(3, 2, 2, Z1, Z1, ENTRIES),
    Snap(3, 2, 2, Z1, b"\x00snapshot\xff", Z3, ENTRIES),
    NewLeader(3, 2, 2, Z3),
    UpToDate(3, 2, 2, Z3),
    Proposal(3, 2, make_zxid(2, 2), b"payload"),
    Proposal(3, 2, make_zxid(2, 3), b""),
    Ack(2, 3, 2, Z3),
    Commit(3, 2, 2, Z3),
    Inform(3, 4, Z3, b"payload"),
    Ping(3, 2, 2, Z3),
    Ping(2, 3, 2, Z3, 41),
    Refused(3, 2, 2, b"write"),
    Request(2, 3, 2, b"write"),
    Sync(2, 3, 2, 7, 0),
    Sync(3, 2, 2, 7, Z3),
]


def test_every_kind_has_a_sample() -> None:
    assert {type(m) for m in SAMPLES} == set(MESSAGE_TYPES)


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip(message: Message) -> None:
    data = encode_message(message)
    assert decode_message(data) == message
    assert decode_message(bytearray(data)) == message
    assert decode_message(memoryview(data)) == message


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_every_truncation_raises_remote_error(message: Message) -> None:
    data = encode_message(message)
    for end in range(len(data)):
        with pytest.raises(RemoteError):
            decode_message(data[:end])


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_trailing_bytes_raise_remote_error(message: Message) -> None:
    with pytest.raises(RemoteError, match="trailing"):
        decode_message(encode_message(message) + b"\x00")


@pytest.mark.parametrize("size", [1, 7, 4096, 300_000])
@pytest.mark.parametrize("entries", [(), ENTRIES])
def test_a_snap_is_encoded_as_every_message_is(size: int, entries: tuple[Entry, ...]) -> None:
    """A SNAP's encoding is its fields around the tree, which is a part of its own (never
    copied on the way out): the same bytes as the writer every other message goes through."""
    snap = Snap(
        3, 2, 7, Z1, random.Random(size).randbytes(size), entries[-1].zxid if entries else Z1, entries
    )
    w = Writer()
    w.buf += struct.pack(">i", snap.KIND)
    snap.write(w)
    parts = encode_message_parts(snap)
    assert len(parts) == 3 and parts[1] is snap.snapshot
    assert b"".join(parts) == encode_message(snap) == w.bytes()
    assert decode_message(encode_message(snap)) == snap
    ping = Ping(3, 2, 2, Z3)
    assert encode_message_parts(ping) == (encode_message(ping),)


def test_a_snap_past_an_int_length_says_its_length_as_a_long(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tree over 2 GiB cannot have a jute int for its length: the marker -2 and then a long.
    (The threshold is lowered here: the real one needs a 2 GiB buffer.) Shorter trees keep the
    plain int, which is all a peer from before the marker can read."""
    tree = random.Random(5).randbytes(300)
    snap = Snap(3, 2, 7, Z1, tree, ENTRIES[-1].zxid, ENTRIES)
    plain = encode_message(snap)
    monkeypatch.setattr(jute, "_SNAPSHOT_INT_LENGTH_MAX", 299)
    long_form = encode_message(snap)
    parts = encode_message_parts(snap)
    assert b"".join(parts) == long_form and parts[1] is snap.snapshot
    at = plain.index(struct.pack(">i", 300) + tree)
    assert long_form[at : at + 12 + 300] == struct.pack(">iq", -2, 300) + tree
    assert long_form[:at] == plain[:at] and long_form[at + 312 :] == plain[at + 304 :]
    assert decode_message(long_form) == snap == decode_message(plain)
    monkeypatch.setattr(jute, "_SNAPSHOT_INT_LENGTH_MAX", 300)
    assert encode_message(snap) == plain


@pytest.mark.parametrize(
    ("length", "error"),
    [
        (struct.pack(">i", -3), "snapshot length must be in"),
        (struct.pack(">iq", -2, -1), "snapshot length must be in"),
        (struct.pack(">iq", -2, 2**40 + 1), "snapshot length must be in"),
        (struct.pack(">iq", -2, 301), "truncated"),
        (struct.pack(">i", -2) + b"\x00\x00", "truncated"),
    ],
)
def test_a_bad_snapshot_length_raises_remote_error(length: bytes, error: str) -> None:
    tree = random.Random(5).randbytes(300)
    plain = encode_message(Snap(3, 2, 7, Z1, tree, Z1, ()))
    at = plain.index(struct.pack(">i", 300) + tree)
    with pytest.raises(RemoteError, match=error):
        decode_message(plain[:at] + length + (tree + plain[at + 304 :] if len(length) > 6 else b""))


def test_unknown_kind() -> None:
    with pytest.raises(RemoteError, match="unknown Zab message kind 99"):
        decode_message(b"\x00\x00\x00\x63" + bytes(16))


def test_out_of_range_values_raise_remote_error() -> None:
    data = bytearray(encode_message(Ping(3, 2, 2, Z3)))
    data[4:8] = b"\x00\x00\x00\x00"  # source 0
    with pytest.raises(RemoteError, match="source must be in"):
        decode_message(bytes(data))


def test_garbage_raises_only_remote_error() -> None:
    """Seeded mutations of valid encodings, and random bytes: decode or RemoteError, nothing else."""
    rng = random.Random(20240601)
    encodings = [encode_message(m) for m in SAMPLES]
    for _ in range(20_000):
        data = bytearray(rng.choice(encodings))
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data))
            data[i] = rng.randrange(256)
        if rng.random() < 0.2:
            data = bytearray(rng.randbytes(rng.randint(0, 64)))
        try:
            message = decode_message(bytes(data))
        except RemoteError:
            continue
        assert encode_message(message) == bytes(data)


INVALID = [
    ("source 0", lambda: Ping(0, 2, 1, 0), "source must be in"),
    ("target too big", lambda: Ping(1, SERVER_ID_MAX + 1, 1, 0), "target must be in"),
    ("bool source", lambda: Ping(True, 2, 1, 0), "source must be an int"),
    ("epoch 0", lambda: LeaderInfo(1, 2, 0), "epoch must be in"),
    ("bool for int", lambda: Ack(1, 2, True, 0), "epoch must be an int"),
    ("negative zxid", lambda: Commit(1, 2, 1, -5), "zxid must be in"),
    ("current epoch -2", lambda: AckEpoch(1, 2, 1, -2, 0), "current_epoch must be in"),
    ("state 4", lambda: Notification(1, 2, 4, 1, 0, 1, 0), "state must be in"),
    ("payload str", lambda: Proposal(1, 2, Z1, "x"), "payload must be bytes"),  # type: ignore[arg-type]
    ("entries list", lambda: Diff(1, 2, 1, 0, 0, list(ENTRIES)), "entries must be a tuple"),  # type: ignore[arg-type]
    ("entries unordered", lambda: Diff(1, 2, 1, 0, 0, ENTRIES[::-1]), "entry zxids must increase"),
    ("entries at start", lambda: Diff(1, 2, 1, Z2, 0, ENTRIES), "entry zxids must increase"),
    ("committed past end", lambda: Diff(1, 2, 1, Z1, make_zxid(3, 1), ENTRIES), "zxid_committed must be in"),
    ("snap committed below", lambda: Snap(1, 2, 1, Z2, b"", Z1, ()), "a snapshot is committed history"),
    ("entry zxid 0", lambda: Entry(0, b""), "zxid must be in"),
]


@pytest.mark.parametrize(("name", "build", "message"), INVALID, ids=[row[0] for row in INVALID])
def test_construction_checks_values(name: str, build: object, message: str) -> None:
    with pytest.raises(LocalError, match=message):
        build()  # type: ignore[operator]


def test_encode_rejects_non_messages() -> None:
    with pytest.raises(LocalError, match="not a Zab message"):
        encode_message(Entry(Z1, b""))  # type: ignore[arg-type]


# --- decode_message's generated readers agree with the plain field-by-field reading ------------


def _plain_message(data: bytes) -> object:
    r = Reader(data)
    cls = {c.KIND: c for c in MESSAGE_TYPES}.get(r.int())
    if cls is None:
        raise RemoteError("unknown kind")
    message = read_record(r, cls)
    r.expect_end(cls.__name__)
    return message


BROADCAST = [
    encode_message(Proposal(1, 2, (5 << 32) | 9, b"txn bytes")),
    encode_message(Proposal(3, 1, 1, b"")),
    encode_message(Ack(2, 1, 5, (5 << 32) | 9)),
    encode_message(Commit(1, 3, 5, (5 << 32) | 9)),
]


@settings(max_examples=600, deadline=None)
@given(st.data())
def test_broadcast_decoding_matches_the_plain_reading(data: st.DataObject) -> None:
    # kind, source, target; a Proposal's payload length or an Ack's or Commit's epoch/zxid halves
    raw = bytes(mutated(data, data.draw(st.sampled_from(BROADCAST)), [0, 4, 8, 12, 16, 20]))
    assert outcome(decode_message, raw) == outcome(_plain_message, raw)
