"""Replay the session recorded from Apache ZooKeeper 3.8 (golden/zk38_trace.json) through our
prep + apply and require the same error codes, paths and Stat, field for field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.zkcore.golden.ops import to_request
from tests.zkcore.golden.record_zookeeper import normal_op_result, normal_stat
from zkcore import KeeperError
from zkcore import _records as rec
from zkcore._acl import auth_identity
from zkcore._datatree import DataTree
from zkcore._prep import Prep, Request

TRACE = json.loads((Path(__file__).parent / "golden" / "zk38_trace.json").read_text())
SESSION = 0x1000000A0000001


class Replayer:
    """A one-server, one-session stand-in for the request path that later issues build."""

    def __init__(self) -> None:
        self.tree = DataTree()
        self.prep = Prep(self.tree)
        self.zxid = 0
        self.auth: tuple[rec.Id, ...] = ()
        self.write(rec.OpCode.CREATE_SESSION, rec.CreateSessionTxn(30000))

    def write(self, opcode: int, body: Any) -> Any:
        self.zxid += 1
        txn, _ = self.prep.prep(
            Request(SESSION, self.zxid, opcode, body, self.auth), self.zxid, 1000 * self.zxid
        )
        result = self.tree.apply(rec.Txn.decode(txn.encode()))
        self.prep.applied(self.zxid)
        return result

    def run(self, op: dict[str, Any]) -> dict[str, Any]:
        opcode, body = to_request(op)
        if opcode == rec.OpCode.AUTH:
            self.auth += (auth_identity(body.scheme, body.auth),)
            return {"err": 0}
        try:
            return self.read(opcode, body)
        except KeeperError as e:
            return {"err": int(e.code)}

    def read(self, opcode: int, body: Any) -> dict[str, Any]:
        if opcode == rec.OpCode.EXISTS:
            stat = self.tree.exists(body.path, self.auth)
            return {"err": -101} if stat is None else {"err": 0, "stat": normal_stat(stat, SESSION)}
        if opcode == rec.OpCode.GET_DATA:
            data, stat = self.tree.get_data(body.path, self.auth)
            return {"err": 0, "data": data.decode(), "stat": normal_stat(stat, SESSION)}
        if opcode == rec.OpCode.GET_CHILDREN2:
            children, stat = self.tree.get_children(body.path, self.auth)
            return {"err": 0, "children": sorted(children), "stat": normal_stat(stat, SESSION)}
        if opcode == rec.OpCode.GET_ACL:
            try:
                acl, stat = self.tree.get_acl(body.path, self.auth)
            except KeeperError as e:
                return {"err": int(e.code)}
            return {
                "err": 0,
                "acl": [[a.perms, a.id.scheme, a.id.id] for a in acl],
                "stat": normal_stat(stat, SESSION),
            }
        result = self.write(opcode, body)
        if opcode == rec.OpCode.MULTI:
            assert result.multi is not None
            return {"err": 0, "results": [normal_op_result(r, SESSION) for r in result.multi]}
        out: dict[str, Any] = {"err": result.err}
        if result.err == 0 and opcode in (
            rec.OpCode.CREATE2,
            rec.OpCode.CREATE_CONTAINER,
            rec.OpCode.CREATE_TTL,
        ):
            out["path"] = result.path
        if result.err == 0 and result.stat is not None and opcode != rec.OpCode.DELETE:
            out["stat"] = normal_stat(result.stat, SESSION)
        return out


def test_trace_covers_the_ops_we_claim() -> None:
    kinds = {entry["op"]["op"] for entry in TRACE}
    assert {"create", "set", "delete", "multi", "setacl", "create_ttl", "create_container", "auth"} <= kinds


@pytest.fixture(scope="module")
def replies() -> list[dict[str, Any]]:
    replayer = Replayer()
    return [replayer.run(entry["op"]) for entry in TRACE]


@pytest.mark.parametrize(
    "i",
    range(len(TRACE)),
    ids=[f"{i}-{e['op']['op']}-{e['op'].get('path', '')}" for i, e in enumerate(TRACE)],
)
def test_same_reply_as_zookeeper(replies: list[dict[str, Any]], i: int) -> None:
    assert replies[i] == TRACE[i]["reply"], f"op {TRACE[i]['op']}"
