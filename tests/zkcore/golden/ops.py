"""The scripted session whose replies from Apache ZooKeeper 3.8 are stored in zk38_trace.json.

Each op is a plain dict; `to_request` turns one into our opcode and request record, the same
request bytes that record_zookeeper.py sends to a real server.
"""

from __future__ import annotations

from typing import Any

from zkcore import _acl
from zkcore import _records as rec

ALICE = rec.Id("digest", _acl.digest_id("alice", "secret"))
BOB = rec.Id("digest", _acl.digest_id("bob", "other"))
ACLS = {
    "open": rec.OPEN_ACL_UNSAFE,
    "read": rec.READ_ACL_UNSAFE,
    "creator": rec.CREATOR_ALL_ACL,
    "alice": (rec.ACL(rec.Perms.ALL, ALICE),),
    "alice-read-world": (rec.ACL(rec.Perms.ALL, ALICE), rec.ACL(rec.Perms.READ, rec.Id("world", "anyone"))),
    "bad-scheme": (rec.ACL(rec.Perms.ALL, rec.Id("nosuch", "x")),),
    "bob-read-world": (rec.ACL(rec.Perms.ALL, BOB), rec.ACL(rec.Perms.READ, rec.Id("world", "anyone"))),
    "bob-admin-alice": (rec.ACL(rec.Perms.ALL, BOB), rec.ACL(rec.Perms.ADMIN, ALICE)),
    "bob": (rec.ACL(rec.Perms.ALL, BOB),),
    "empty": (),
}


def c(path: str, data: str = "", flags: int = 0, acl: str = "open") -> dict[str, Any]:
    return {"op": "create", "path": path, "data": data, "flags": flags, "acl": acl}


OPS: list[dict[str, Any]] = [
    c("/a", "hello"),
    c("/a", "again"),
    c("/missing/child"),
    c("/a/"),
    c("/a/b/"),
    c("/bad//path"),
    c("/a/seq-", flags=2),
    c("/a/seq-", flags=2),
    c("/a/eph", flags=1),
    c("/a/eph/child"),
    c("/a/eseq-", flags=3),
    {"op": "exists", "path": "/a"},
    {"op": "children2", "path": "/a"},
    {"op": "set", "path": "/a", "data": "v1", "version": 0},
    {"op": "set", "path": "/a", "data": "v2", "version": 0},
    {"op": "set", "path": "/a", "data": "v3", "version": -1},
    {"op": "set", "path": "/nope", "data": "x", "version": -1},
    {"op": "get", "path": "/a"},
    {"op": "delete", "path": "/a", "version": -1},
    {"op": "delete", "path": "/a/seq-0000000000", "version": 5},
    {"op": "delete", "path": "/a/seq-0000000000", "version": 0},
    {"op": "delete", "path": "/a/seq-0000000000", "version": -1},
    {"op": "exists", "path": "/a"},
    c("/a/seq-", flags=2),
    {"op": "children2", "path": "/a"},
    {"op": "setacl", "path": "/a/seq-0000000001", "acl": "read", "version": 0},
    {"op": "setacl", "path": "/a/seq-0000000001", "acl": "open", "version": 0},
    {"op": "getacl", "path": "/a/seq-0000000001"},
    {"op": "set", "path": "/a/seq-0000000001", "data": "x", "version": -1},
    c("/empty-acl", acl="empty"),
    c("/bad-acl", acl="bad-scheme"),
    c("/creator", acl="creator"),
    {"op": "auth", "scheme": "digest", "credential": "alice:secret"},
    c("/creator", acl="creator"),
    {"op": "getacl", "path": "/creator"},
    c("/private", "p", acl="alice-read-world"),
    {"op": "get", "path": "/private"},
    {
        "op": "multi",
        "ops": [c("/m1", "1"), c("/m1/x"), {"op": "set", "path": "/a", "data": "m", "version": -1}],
    },
    {"op": "multi", "ops": [c("/m2"), {"op": "delete", "path": "/zzz", "version": -1}, c("/m3")]},
    {"op": "exists", "path": "/m2"},
    {"op": "multi", "ops": [{"op": "check", "path": "/m1", "version": 0}, c("/m1/y", flags=2)]},
    {"op": "multi", "ops": [{"op": "check", "path": "/m1", "version": 3}, c("/m1/z")]},
    {"op": "multi", "ops": [c("/m4"), c("/m4")]},
    {"op": "create_container", "path": "/box", "data": "", "flags": 4, "acl": "open"},
    c("/box/item"),
    {"op": "exists", "path": "/box"},
    {"op": "create_ttl", "path": "/ttl", "data": "t", "flags": 5, "acl": "open", "ttl": 60000},
    {"op": "create_ttl", "path": "/ttl-bad", "data": "t", "flags": 5, "acl": "open", "ttl": 0},
    {"op": "create_ttl", "path": "/ttl-seq-", "data": "", "flags": 6, "acl": "open", "ttl": 1000},
    {"op": "exists", "path": "/ttl"},
    {"op": "children2", "path": "/"},
    {"op": "delete", "path": "/box/item", "version": -1},
    {"op": "exists", "path": "/box"},
    # The root and ZooKeeper's own nodes exist: creating one is NodeExists (its parent is looked
    # up as for any path, the root's being the root), deleting one is BadArguments; a sequential
    # create of "/" names a child of the root by the root's counter.
    c("/"),
    c("/zookeeper"),
    c("/zookeeper/quota"),
    c("/zookeeper/config"),
    c("/", flags=2),
    {"op": "delete", "path": "/", "version": -1},
    {"op": "delete", "path": "/zookeeper", "version": -1},
    {"op": "delete", "path": "/zookeeper/config", "version": -1},
    {"op": "children2", "path": "/"},
    # getACL needs READ or ADMIN; without ADMIN, each digest id's hash shows as `x`.
    c("/bob-public", acl="bob-read-world"),
    {"op": "getacl", "path": "/bob-public"},
    c("/bob-admin", acl="bob-admin-alice"),
    {"op": "getacl", "path": "/bob-admin"},
    c("/bob-only", acl="bob"),
    {"op": "getacl", "path": "/bob-only"},
    {"op": "getacl", "path": "/private"},
]

READS = {"exists": rec.OpCode.EXISTS, "get": rec.OpCode.GET_DATA, "children2": rec.OpCode.GET_CHILDREN2}


def to_request(op: dict[str, Any]) -> tuple[int, Any]:
    kind = op["op"]
    if kind in ("create", "create_container"):
        opcode = rec.OpCode.CREATE2 if kind == "create" else rec.OpCode.CREATE_CONTAINER
        return opcode, rec.CreateRequest(op["path"], op["data"].encode(), ACLS[op["acl"]], op["flags"])
    if kind == "create_ttl":
        body = rec.CreateTTLRequest(op["path"], op["data"].encode(), ACLS[op["acl"]], op["flags"], op["ttl"])
        return rec.OpCode.CREATE_TTL, body
    if kind == "set":
        return rec.OpCode.SET_DATA, rec.SetDataRequest(op["path"], op["data"].encode(), op["version"])
    if kind == "delete":
        return rec.OpCode.DELETE, rec.DeleteRequest(op["path"], op["version"])
    if kind == "check":
        return rec.OpCode.CHECK, rec.CheckVersionRequest(op["path"], op["version"])
    if kind == "setacl":
        return rec.OpCode.SET_ACL, rec.SetACLRequest(op["path"], ACLS[op["acl"]], op["version"])
    if kind == "getacl":
        return rec.OpCode.GET_ACL, rec.PathRequest(op["path"])
    if kind in READS:
        return READS[kind], rec.PathWatchRequest(op["path"], False)
    if kind == "auth":
        return rec.OpCode.AUTH, rec.AuthPacket(0, op["scheme"], op["credential"].encode())
    if kind == "multi":
        return rec.OpCode.MULTI, [to_request(sub) for sub in op["ops"]]
    raise ValueError(f"unknown op {kind!r}")
