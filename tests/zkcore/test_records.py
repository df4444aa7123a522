"""Round trips for every jute record, whole, a byte at a time, and with trailing bytes."""

from __future__ import annotations

import dataclasses
import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.jute_reference import outcome, read_record
from tests.mutations import mutated
from zkcore import RemoteError, limits
from zkcore import _records as rec
from zkcore._jute import JuteRecord, Reader, _Prim, _Vec
from zkcore._requests import ForwardedRequest, encode_reply

RECORDS = sorted(
    (
        c
        for c in vars(rec).values()
        if isinstance(c, type) and issubclass(c, JuteRecord) and c is not JuteRecord
    ),
    key=lambda c: c.__name__,
)

_PRIMS = {
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "bool": st.booleans(),
    "buffer": st.binary(max_size=40),
    "ustring": st.text(max_size=12),
}


def strategy_for(meta: typing.Any) -> st.SearchStrategy[typing.Any]:
    if isinstance(meta, _Prim):
        return _PRIMS[meta.name]
    if isinstance(meta, _Vec):
        return st.lists(strategy_for(meta.item), max_size=3).map(tuple)
    return record_strategy(meta)


def record_strategy(cls: type) -> st.SearchStrategy[typing.Any]:
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        fields.append(strategy_for(hint.__metadata__[0] if hasattr(hint, "__metadata__") else hint))
    return st.tuples(*fields).map(lambda args: cls(*args))


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: c.__name__)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_round_trip(cls: type, data: st.DataObject) -> None:
    value = data.draw(record_strategy(cls))
    encoded = value.encode()
    assert cls.decode(encoded) == value
    # Every strict prefix is truncated input: only RemoteError may escape.
    for cut in range(len(encoded)):
        with pytest.raises(RemoteError):
            cls.decode(encoded[:cut])
    with pytest.raises(RemoteError, match="trailing"):
        cls.decode(encoded + b"\0")


def test_stat_is_68_bytes_in_jute_order() -> None:
    stat = rec.Stat(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
    encoded = stat.encode()
    assert len(encoded) == rec.STAT_BYTES
    assert encoded[:8] == (1).to_bytes(8, "big") and encoded[-8:] == (11).to_bytes(8, "big")
    assert encoded[52:56] == (9).to_bytes(4, "big")  # dataLength


@pytest.mark.parametrize(
    "record, expected",
    [
        (rec.RequestHeader(7, rec.OpCode.GET_DATA), "00000007 00000004"),
        (rec.ReplyHeader(-2, 0x100000001, 0), "fffffffe 0000000100000001 00000000"),
        (rec.PathWatchRequest("/a", True), "00000002 2f61 01"),
        (rec.Id("world", "anyone"), "00000005 776f726c64 00000006 616e796f6e65"),
        (rec.DeleteRequest("/", -1), "00000001 2f ffffffff"),
    ],
)
def test_known_encodings(record: JuteRecord, expected: str) -> None:
    assert record.encode().hex() == expected.replace(" ", "")


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"\xff\xff\xff\xfe", "buffer length must be >= -1"),
        (b"\x7f\xff\xff\xff", "exceeds frame_bytes_max"),
        (b"\x00\x00\x00\x02\xc3\x28", "not valid UTF-8"),
    ],
)
def test_bad_buffers_are_remote_errors(raw: bytes, message: str) -> None:
    with pytest.raises(RemoteError, match=message):
        rec.PathRequest.decode(raw)


def test_bool_must_be_zero_or_one() -> None:
    with pytest.raises(RemoteError, match="bool must be 0 or 1"):
        rec.PathWatchRequest.decode(b"\x00\x00\x00\x01/\x02")


def test_null_buffer_decodes_as_empty() -> None:
    assert rec.SetDataRequest.decode(b"\x00\x00\x00\x01/" + b"\xff" * 4 + b"\x00" * 4).data == b""


def test_multi_request_and_response_round_trip() -> None:
    ops = [
        (rec.OpCode.CREATE, rec.CreateRequest("/a", b"x", rec.OPEN_ACL_UNSAFE, 0)),
        (rec.OpCode.CHECK, rec.CheckVersionRequest("/a", 0)),
        (rec.OpCode.DELETE, rec.DeleteRequest("/a", -1)),
    ]
    assert rec.read_multi_request(Reader(rec.encode_multi_request(ops))) == ops
    stat = rec.Stat(*range(11))
    results = [
        rec.OpResult(rec.OpCode.CREATE, 0, rec.CreateResponse("/a")),
        rec.OpResult(rec.OpCode.CREATE2, 0, rec.Create2Response("/b", stat)),
        rec.OpResult(rec.OpCode.SET_DATA, 0, rec.StatResponse(stat)),
        rec.OpResult(rec.OpCode.DELETE),
        rec.error_result(-101),
    ]
    assert rec.read_multi_response(Reader(rec.encode_multi_response(results))) == results


def test_multi_rejects_foreign_opcodes() -> None:
    raw = rec.MultiHeader(rec.OpCode.SYNC, False, -1).encode() + rec.PathRequest("/").encode()
    with pytest.raises(RemoteError, match="not allowed inside multi"):
        rec.read_multi_request(Reader(raw))


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=80))
def test_txn_decoder_fuzz_raises_only_remote_error(raw: bytes) -> None:
    try:
        rec.Txn.decode(raw)
    except RemoteError:
        pass


def test_txn_round_trip_every_type() -> None:
    bodies = [
        rec.CreateTxn("/a", b"d", rec.OPEN_ACL_UNSAFE, True, 3),
        rec.DeleteTxn("/a"),
        rec.SetDataTxn("/a", b"e", 2),
        rec.ErrorTxn(-101),
        rec.CloseSessionTxn(("/e1", "/e2")),
        rec.MultiTxn((rec.SubTxn(rec.OpCode.DELETE, rec.DeleteTxn("/a").encode()),)),
    ]
    types = [
        rec.OpCode.CREATE,
        rec.OpCode.DELETE,
        rec.OpCode.SET_DATA,
        rec.OpCode.ERROR,
        rec.OpCode.CLOSE_SESSION,
        rec.OpCode.MULTI,
    ]
    for kind, body in zip(types, bodies, strict=True):
        txn = rec.Txn(rec.TxnHeader(0x55, 3, 0x100000009, 1700000000000, kind), body)
        assert rec.Txn.decode(txn.encode()) == txn


# --- the generated readers agree with the plain field-by-field reading ---------------------------


def _plain_decode(cls: type) -> typing.Callable[[bytes], object]:
    def decode(data: bytes) -> object:
        r = Reader(data)
        value = read_record(r, cls)
        r.expect_end(cls.__name__)
        return value

    return decode


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: c.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_generated_readers_match_the_plain_reading_on_mutations(cls: type, data: st.DataObject) -> None:
    encoded = data.draw(record_strategy(cls)).encode()
    raw = bytes(mutated(data, encoded, list(range(max(1, len(encoded) - 3)))))
    assert outcome(cls.decode, raw) == outcome(_plain_decode(cls), raw)


def _plain_txn(data: bytes) -> object:
    r = Reader(data)
    header = read_record(r, rec.TxnHeader)
    kind = rec.TXN_TYPES.get(header.type)
    if kind is None:
        raise RemoteError("unknown txn type")
    body = None if header.type == rec.OpCode.CLOSE_SESSION and r.remaining() == 0 else read_record(r, kind)
    r.expect_end("txn")
    return rec.Txn(header, body)


SET_DATA_TXN = rec.Txn(
    rec.TxnHeader(0x1234, 7, 0x1_0000_0009, 1_700_000_000_000, rec.OpCode.SET_DATA),
    rec.SetDataTxn("/a/é", b"\x00data", 4),
).encode()
CLOSE_SESSION_TXN = rec.TxnHeader(
    0x1234, 8, 0x1_0000_000A, 1_700_000_000_000, rec.OpCode.CLOSE_SESSION
).encode()


@pytest.mark.parametrize(
    "data",
    [
        SET_DATA_TXN,
        SET_DATA_TXN + b"\x00",  # trailing byte
        SET_DATA_TXN[:-1],  # cut version
        SET_DATA_TXN[:32] + b"\xff\xff\xff\xff" + SET_DATA_TXN[32 + 4 + 5 :],  # null path
        SET_DATA_TXN[:32] + b"\x00\x00\x00\x02\xc3\x28" + SET_DATA_TXN[32 + 4 + 5 :],  # not UTF-8
        SET_DATA_TXN[:41] + b"\xff\xff\xff\xff\x00\x00\x00\x04",  # null data
        SET_DATA_TXN[:41] + b"\x7f\xff\xff\xff\x00\x00\x00\x04",  # data length past the end
        SET_DATA_TXN[:32] + b"\x80\x00\x00\x00" + SET_DATA_TXN[36:],  # path length negative
        CLOSE_SESSION_TXN,  # no body: older writers
        CLOSE_SESSION_TXN + b"\x00",
    ],
    ids=[
        "whole",
        "trailing",
        "cut",
        "null-path",
        "not-utf8",
        "null-data",
        "long-data",
        "negative-path",
        "close-empty",
        "close-trailing",
    ],  # fmt: skip
)
def test_txn_decode_matches_the_plain_reading(data: bytes) -> None:
    assert outcome(rec.Txn.decode, data) == outcome(_plain_txn, data)
    assert outcome(rec.Txn.decode, data) == outcome(rec.Txn.decode, bytearray(data))  # type: ignore[arg-type]


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_txn_decode_matches_the_plain_reading_on_mutations(data: st.DataObject) -> None:
    raw = bytes(mutated(data, SET_DATA_TXN, [32, 41, 50]))  # the path's length, the data's, the version
    assert outcome(rec.Txn.decode, raw) == outcome(_plain_txn, raw)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, -101, -110]),
    st.one_of(st.none(), st.binary(max_size=80), st.just(rec.Stat(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11))),
)
def test_encode_reply_is_the_reply_header_then_the_body_of_a_success(
    xid: int, zxid: int, err: int, body: bytes | rec.Stat | None
) -> None:
    tail = b"" if err != 0 or body is None else body if isinstance(body, bytes) else body.encode()
    assert encode_reply(xid, zxid, err, body) == rec.ReplyHeader(xid, zxid, err).encode() + tail


@settings(max_examples=400, deadline=None)
@given(
    st.builds(
        rec.TxnHeader,
        _PRIMS["long"],
        _PRIMS["int"],
        _PRIMS["long"],
        _PRIMS["long"],
        st.just(rec.OpCode.SET_DATA),
    ),
    st.text(max_size=12),
    st.binary(max_size=40),
    _PRIMS["int"],
    _PRIMS["int"],
    st.sampled_from(["as written", "null path", "null data"]),
)
def test_a_set_data_txn_from_its_requests_bytes_is_the_txn_encoded(
    header: rec.TxnHeader, path: str, data: bytes, expected: int, version: int, null: str
) -> None:
    request = rec.SetDataRequest(path, data, expected).encode()
    if null == "null path" and not path:
        request = b"\xff\xff\xff\xff" + request[4:]
    if null == "null data" and not data:
        cut = 4 + len(path.encode())
        request = request[:cut] + b"\xff\xff\xff\xff" + request[cut + 4 :]
    decoded = rec.SetDataRequest.decode(request)
    h = header
    encoded = rec.encode_set_data_txn(h.client_id, h.cxid, h.zxid, h.time, request, version)
    if request != decoded.encode():  # a null buffer: decoded empty, so the txn would differ
        assert encoded is None
    else:
        assert encoded == rec.Txn(header, rec.SetDataTxn(decoded.path, decoded.data, version)).encode()


def test_acl_vectors_decode_alike_whichever_was_read_last() -> None:
    """ACL vectors are looked up, the last one without finding its span: a different list, one
    cut short inside the last one's bytes, and one that merely starts like it decode as the
    jute reference does."""
    alice = rec.Id("digest", "alice:x")
    lists = [
        rec.OPEN_ACL_UNSAFE,
        rec.READ_ACL_UNSAFE,
        (rec.ACL(rec.Perms.ALL, rec.Id("world", "anyone")), rec.ACL(rec.Perms.READ, alice)),
        rec.OPEN_ACL_UNSAFE,
    ]
    for acl in lists * 2:
        body = rec.CreateRequest("/n", b"d", acl, 0).encode()
        assert rec.CreateRequest.decode(body).acl == acl
        assert outcome(rec.CreateRequest.decode, body) == outcome(_plain_decode(rec.CreateRequest), body)
    body = rec.CreateRequest("/n", b"d", rec.OPEN_ACL_UNSAFE, 0).encode()
    rec.CreateRequest.decode(body)
    acl_at = 4 + 2 + 4 + 1  # after the path and the data
    with pytest.raises(RemoteError):
        rec.CreateRequest.decode(body[: acl_at + 10])  # cut inside the ACL the last decode read


def test_identity_lists_of_forwarded_writes_decode_alike_whichever_was_read_last() -> None:
    """A follower's forwarded writes carry their session's identities (its ip, then digests),
    looked up like ACL vectors: each list decodes as the jute reference does, the one read last
    does not stand in for one that merely starts like it, and a list longer than a session
    can hold (auth_ids_max) is refused."""
    ip = rec.Id("ip", "10.1.2.3")
    lists = [(ip,), (), (ip, rec.Id("digest", "alice:x")), (rec.Id("ip", "10.1.2.30"),), (ip,)]
    for ids in lists * 2:
        body = ForwardedRequest(7, 1, rec.OpCode.SET_DATA, ids, b"body").encode()
        assert ForwardedRequest.decode(body).auth_ids == ids
        assert outcome(ForwardedRequest.decode, body) == outcome(_plain_decode(ForwardedRequest), body)
    too_many = tuple(rec.Id("digest", f"u{i}:x") for i in range(limits.auth_ids_max + 1))
    with pytest.raises(RemoteError, match="auth_ids_max"):
        ForwardedRequest.decode(ForwardedRequest(7, 1, rec.OpCode.SET_DATA, too_many, b"body").encode())
