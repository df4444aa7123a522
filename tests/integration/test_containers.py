"""The leader's container reaper on a real ensemble: empty containers and idle TTL nodes go,
everything else stays, and clients cannot use the reaper's deleteContainer themselves."""

from __future__ import annotations

from collections.abc import Callable

from tests.integration.conftest import Ensemble, wait_for
from zkcore import _records as rec
from zkcore._errors import Code

OP = rec.OpCode


def test_empty_containers_and_expired_ttl_nodes_are_deleted(
    ensemble_factory: Callable[..., Ensemble],
) -> None:
    ensemble = ensemble_factory(3, container_check_ms=100)
    s = ensemble.session()
    try:
        acl = rec.OPEN_ACL_UNSAFE
        assert s.call(OP.CREATE_CONTAINER, rec.CreateRequest("/box", b"", acl, 4))[0].err == Code.OK
        assert s.call(OP.CREATE_CONTAINER, rec.CreateRequest("/unused", b"", acl, 4))[0].err == Code.OK
        assert s.call(OP.CREATE_TTL, rec.CreateTTLRequest("/ttl", b"", acl, 5, 300))[0].err == Code.OK
        assert s.call(OP.CREATE_TTL, rec.CreateTTLRequest("/ttl-busy", b"", acl, 5, 300))[0].err == Code.OK
        assert s.create("/ttl-busy/kid")[0] == Code.OK  # a TTL node with children stays
        assert s.create("/box/item")[0] == Code.OK
        assert s.call(OP.DELETE_CONTAINER, rec.PathRequest("/box"))[0].err == Code.UNIMPLEMENTED
        assert s.call(OP.DELETE, rec.DeleteRequest("/box/item", -1))[0].err == Code.OK
        for sid in ensemble.conf.servers:  # the deletes are txns: every server applies them
            other = ensemble.session(sid)
            wait_for(lambda o=other: o.get("/box")[0] == Code.NO_NODE, 10, f"/box gone on {sid}")  # type: ignore[misc]
            wait_for(lambda o=other: o.get("/ttl")[0] == Code.NO_NODE, 10, f"/ttl gone on {sid}")  # type: ignore[misc]
            assert other.get("/unused")[0] == Code.OK  # a container that never had a child stays
            assert other.get("/ttl-busy")[0] == Code.OK
            other.close()
    finally:
        s.close()
