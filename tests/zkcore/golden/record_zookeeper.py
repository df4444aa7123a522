"""Record zk38_trace.json: run ops.OPS against a real Apache ZooKeeper over its TCP protocol.

Needs a fresh standalone server (empty data dir, extendedTypesEnabled=true for TTL nodes):
    python -m tests.zkcore.golden.record_zookeeper 127.0.0.1:21810
"""

from __future__ import annotations

import json
import socket
import struct
import sys
from pathlib import Path
from typing import Any

from tests.zkcore.golden.ops import OPS, to_request
from zkcore import _records as rec
from zkcore._jute import Reader, Writer


def send_frame(sock: socket.socket, body: bytes) -> None:
    """One frame of ZooKeeper's TCP protocol: a 4-byte length, then the record."""
    sock.sendall(struct.pack(">i", len(body)) + body)


def recv_frame(sock: socket.socket) -> bytes:
    """The next frame of ZooKeeper's TCP protocol (blocking)."""

    def exact(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("server closed the connection")
            buf += chunk
        return buf

    (n,) = struct.unpack(">i", exact(4))
    return exact(n)


def normal_reply(opcode: int, err: int, r: Reader, session_id: int) -> dict[str, Any]:
    """A reply as JSON: error code, and the path/stat/children/acl fields it carries."""
    out: dict[str, Any] = {"err": err}
    if err != 0 and opcode != rec.OpCode.MULTI:
        return out
    if opcode in (rec.OpCode.CREATE2, rec.OpCode.CREATE_CONTAINER, rec.OpCode.CREATE_TTL):
        resp = rec.Create2Response.read(r)
        out.update(path=resp.path, stat=normal_stat(resp.stat, session_id))
    elif opcode in (rec.OpCode.SET_DATA, rec.OpCode.EXISTS, rec.OpCode.SET_ACL):
        out["stat"] = normal_stat(rec.StatResponse.read(r).stat, session_id)
    elif opcode == rec.OpCode.GET_DATA:
        data = rec.GetDataResponse.read(r)
        out.update(data=data.data.decode(), stat=normal_stat(data.stat, session_id))
    elif opcode == rec.OpCode.GET_CHILDREN2:
        kids = rec.GetChildren2Response.read(r)
        out.update(children=sorted(kids.children), stat=normal_stat(kids.stat, session_id))
    elif opcode == rec.OpCode.GET_ACL:
        acl = rec.GetACLResponse.read(r)
        out.update(
            acl=[[a.perms, a.id.scheme, a.id.id] for a in acl.acl], stat=normal_stat(acl.stat, session_id)
        )
    elif opcode == rec.OpCode.MULTI:
        out["results"] = [normal_op_result(res, session_id) for res in rec.read_multi_response(r)]
    return out


def normal_op_result(res: rec.OpResult, session_id: int) -> dict[str, Any]:
    out: dict[str, Any] = {"type": int(res.type), "err": int(res.err)}
    body: Any = res.body
    if body is not None and hasattr(body, "path"):
        out["path"] = body.path
    if body is not None and hasattr(body, "stat"):
        out["stat"] = normal_stat(body.stat, session_id)
    return out


def normal_stat(stat: rec.Stat, session_id: int) -> dict[str, Any]:
    fields = {
        "czxid": stat.czxid, "mzxid": stat.mzxid, "pzxid": stat.pzxid, "version": stat.version,
        "cversion": stat.cversion, "aversion": stat.aversion, "dataLength": stat.data_length,
        "numChildren": stat.num_children, "ctime==mtime": stat.ctime == stat.mtime,
    }  # fmt: skip
    owner = stat.ephemeral_owner
    fields["ephemeralOwner"] = "session" if owner == session_id and owner != 0 else owner
    return fields


def main(server: str) -> None:
    host, port = server.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    send_frame(sock, rec.ConnectRequest(0, 0, 30000, 0, b"\0" * 16, False).encode())
    session_id = rec.ConnectResponse.decode(recv_frame(sock)).session_id
    trace = []
    for xid, op in enumerate(OPS, start=1):
        opcode, body = to_request(op)
        w = Writer()
        rec.RequestHeader(-4 if opcode == rec.OpCode.AUTH else xid, opcode).write(w)
        payload = rec.encode_multi_request(body) if opcode == rec.OpCode.MULTI else body.encode()
        send_frame(sock, w.bytes() + payload)
        r = Reader(recv_frame(sock))
        header = rec.ReplyHeader.read(r)
        trace.append({"op": op, "reply": normal_reply(opcode, header.err, r, session_id)})
    out = Path(__file__).with_name("zk38_trace.json")
    out.write_text(json.dumps(trace, indent=1) + "\n")
    print(f"wrote {len(trace)} replies to {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:21810")
