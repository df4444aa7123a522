"""The wire protocol's test vectors (docs/protocol-vectors.json): each frame a client sends or
receives, as its records with their field values and as its exact bytes. Bindings in other
languages check their encoder and decoder against the file; our tests check the file against
our codec, both ways.

    python -m tests.protocol_vectors          # rewrite docs/protocol-vectors.json
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from zkcore import _records as rec
from zkcore._jute import JuteRecord, Reader, Writer

PATH = Path(__file__).resolve().parents[1] / "docs" / "protocol-vectors.json"
OP = rec.OpCode
STAT = rec.Stat(0x100000002, 0x100000005, 1700000000000, 1700000000500, 3, 2, 0, 0, 5, 1, 0x100000004)
EPHEMERAL_STAT = dataclasses.replace(STAT, ephemeral_owner=0x1234567890ABCDEF, num_children=0)
PASSWD = bytes(range(16))
DIGEST = rec.ACL(rec.Perms.ALL, rec.Id("digest", "bob:ZYxtuxtZ4z2GRH8R6PLpGJkjSEk="))

# Each vector: a name, who sends it, and its parts (header, body) as (record, value).
Part = tuple[str, Any]


def vectors() -> list[tuple[str, str, list[Part]]]:
    c2s, s2c = "client->server", "server->client"

    def req(xid: int, op: int, body: JuteRecord | None = None) -> list[Part]:
        parts: list[Part] = [("RequestHeader", rec.RequestHeader(xid, op))]
        return parts + ([(type(body).__name__, body)] if body is not None else [])

    def rep(xid: int, zxid: int, err: int, body: JuteRecord | None = None) -> list[Part]:
        parts: list[Part] = [("ReplyHeader", rec.ReplyHeader(xid, zxid, err))]
        return parts + ([(type(body).__name__, body)] if body is not None else [])

    multi = [
        (OP.CREATE, rec.CreateRequest("/m", b"x", rec.OPEN_ACL_UNSAFE, 0)),
        (OP.SET_DATA, rec.SetDataRequest("/m", b"y", 0)),
        (OP.CHECK, rec.CheckVersionRequest("/m", 1)),
        (OP.DELETE, rec.DeleteRequest("/m", -1)),
    ]
    multi_ok = [
        rec.OpResult(OP.CREATE, 0, rec.CreateResponse("/m")),
        rec.OpResult(OP.SET_DATA, 0, rec.StatResponse(STAT)),
        rec.OpResult(OP.CHECK),
        rec.OpResult(OP.DELETE),
    ]
    multi_failed = [rec.error_result(0), rec.error_result(-103), rec.error_result(-2), rec.error_result(-2)]
    return [
        ("connect, new session", c2s, [("ConnectRequest", rec.ConnectRequest(0, 0, 10000, 0, bytes(16), False))]),
        ("connect, resume a session", c2s,
         [("ConnectRequest", rec.ConnectRequest(0, 0x100000007, 10000, 0x0123456789ABCDEF, PASSWD, False))]),
        ("connect answer", s2c, [("ConnectResponse", rec.ConnectResponse(0, 10000, 0x0123456789ABCDEF, PASSWD, False))]),
        ("connect answer: session expired", s2c, [("ConnectResponse", rec.ConnectResponse(0, 0, 0, bytes(16), False))]),
        ("ping", c2s, req(rec.XID_PING, OP.PING)),
        ("ping answer", s2c, rep(rec.XID_PING, 0x100000007, 0)),
        ("addauth digest", c2s, req(rec.XID_AUTH, OP.AUTH, rec.AuthPacket(0, "digest", b"bob:secret"))),
        ("addauth answer: failed", s2c, rep(rec.XID_AUTH, 0, -115)),
        ("create persistent", c2s, req(1, OP.CREATE, rec.CreateRequest("/app", b"hello", rec.OPEN_ACL_UNSAFE, 0))),
        ("create answer", s2c, rep(1, 0x100000002, 0, rec.CreateResponse("/app"))),
        ("create ephemeral sequential with a digest ACL", c2s,
         req(2, OP.CREATE2, rec.CreateRequest("/app/lock-", b"", (DIGEST,), 3))),
        ("create2 answer", s2c, rep(2, 0x100000003, 0, rec.Create2Response("/app/lock-0000000000", EPHEMERAL_STAT))),
        ("create answer: node exists", s2c, rep(3, 0x100000003, -110)),
        ("createTTL", c2s, req(4, OP.CREATE_TTL, rec.CreateTTLRequest("/ttl", b"", rec.OPEN_ACL_UNSAFE, 5, 60000))),
        ("createContainer", c2s, req(5, OP.CREATE_CONTAINER, rec.CreateRequest("/box", b"", rec.OPEN_ACL_UNSAFE, 4))),
        ("getData with a watch", c2s, req(6, OP.GET_DATA, rec.PathWatchRequest("/app", True))),
        ("getData answer", s2c, rep(6, 0x100000005, 0, rec.GetDataResponse(b"hello", STAT))),
        ("getData answer: no node", s2c, rep(6, 0x100000005, -101)),
        ("exists", c2s, req(7, OP.EXISTS, rec.PathWatchRequest("/app", False))),
        ("exists answer", s2c, rep(7, 0x100000005, 0, rec.StatResponse(STAT))),
        ("setData with a version", c2s, req(8, OP.SET_DATA, rec.SetDataRequest("/app", b"bye", 3))),
        ("setData answer: bad version", s2c, rep(8, 0x100000006, -103)),
        ("delete, any version", c2s, req(9, OP.DELETE, rec.DeleteRequest("/app", -1))),
        ("delete answer", s2c, rep(9, 0x100000007, 0)),
        ("getChildren2", c2s, req(10, OP.GET_CHILDREN2, rec.PathWatchRequest("/", False))),
        ("getChildren2 answer", s2c, rep(10, 0x100000007, 0, rec.GetChildren2Response(("app", "zookeeper"), STAT))),
        ("getChildren answer", s2c, rep(10, 0x100000007, 0, rec.GetChildrenResponse(("a", "b")))),
        ("getACL", c2s, req(11, OP.GET_ACL, rec.PathRequest("/app"))),
        ("getACL answer", s2c, rep(11, 0x100000007, 0, rec.GetACLResponse((DIGEST,), STAT))),
        ("setACL", c2s, req(12, OP.SET_ACL, rec.SetACLRequest("/app", rec.READ_ACL_UNSAFE, -1))),
        ("sync", c2s, req(13, OP.SYNC, rec.PathRequest("/app"))),
        ("sync answer", s2c, rep(13, 0x100000007, 0, rec.PathRequest("/app"))),
        ("getEphemerals", c2s, req(14, OP.GET_EPHEMERALS, rec.PathRequest("/"))),
        ("getEphemerals answer", s2c, rep(14, 0x100000007, 0, rec.PathsResponse(("/app/lock-0000000000",)))),
        ("getAllChildrenNumber answer", s2c, rep(15, 0x100000007, 0, rec.IntResponse(42))),
        ("addWatch persistent recursive", c2s, req(16, OP.ADD_WATCH, rec.AddWatchRequest("/app", 1))),
        ("addWatch answer", s2c, rep(16, 0x100000007, 0, rec.IntResponse(0))),
        ("removeWatches, any type", c2s, req(17, OP.REMOVE_WATCHES, rec.WatchTypeRequest("/app", 3))),
        ("removeWatches answer: no watcher", s2c, rep(17, 0x100000007, -121)),
        ("setWatches2 after a reconnect", c2s,
         req(rec.XID_SET_WATCHES, OP.SET_WATCHES2,
             rec.SetWatches2(0x100000007, ("/app",), ("/missing",), ("/",), (), ("/tree",)))),
        ("watch notification: data changed", s2c,
         rep(rec.XID_NOTIFICATION, 0x100000008, 0) + [("WatcherEvent", rec.WatcherEvent(3, 3, "/app"))]),
        ("multi: create, setData, check, delete", c2s, req(18, OP.MULTI) + [("multi request", multi)]),
        ("multi answer", s2c, rep(18, 0x100000009, 0) + [("multi response", multi_ok)]),
        ("multi answer: the setData failed, nothing happened", s2c,
         rep(18, 0x100000009, 0) + [("multi response", multi_failed)]),
        ("closeSession", c2s, req(19, OP.CLOSE_SESSION)),
    ]  # fmt: skip


def to_json(value: Any) -> Any:
    """Field values as JSON: records as objects, bytes as {"hex": ...}, tuples as lists."""
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    if isinstance(value, rec.OpResult):
        return {"type": value.type, "err": value.err, "body": to_json(value.body)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, JuteRecord):
            out = {"record": type(value).__name__, **out}
        return out
    if isinstance(value, (tuple, list)):
        return [to_json(v) for v in value]
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else value


def encode(parts: list[Part]) -> bytes:
    w = Writer()
    for name, value in parts:
        if name == "multi request":
            w.buf += rec.encode_multi_request(value)
        elif name == "multi response":
            w.buf += rec.encode_multi_response(value)
        else:
            value.write(w)
    return w.bytes()


def decode(names: list[str], data: bytes) -> list[Any]:
    """Read the parts back by record name (a body's record is named in the vector)."""
    r, out = Reader(data), []
    for name in names:
        if name == "multi request":
            out.append(rec.read_multi_request(r))
        elif name == "multi response":
            out.append(rec.read_multi_response(r))
        else:
            out.append(getattr(rec, name).read(r))
    r.expect_end("test vector")
    return out


def document() -> dict[str, Any]:
    return {
        "about": (
            "zkpy client wire protocol test vectors (see docs/protocol.md). Each vector is one "
            "ZeroMQ frame: `parts` in order (a header record, then the body), each with its "
            "field values; `hex` is the exact frame. Records are jute, big-endian; bytes fields "
            'are given as {"hex": ...}. Regenerate with `python -m tests.protocol_vectors`.'
        ),
        "vectors": [
            {
                "name": name,
                "direction": direction,
                "parts": [{"part": part, "value": to_json(value)} for part, value in parts],
                "hex": encode(parts).hex(),
            }
            for name, direction, parts in vectors()
        ],
    }


def main() -> int:
    PATH.write_text(json.dumps(document(), indent=1) + "\n")
    print(f"wrote {len(vectors())} vectors to {PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
