"""A real 3-node ensemble with peers on shared-memory rings (--transport shm): writes replicate,
kill -9 of the leader brings a new leader that takes writes, the killed node comes back through
its supervisor, re-attaches and catches up, and stopping leaves nothing in /dev/shm."""

from __future__ import annotations

import glob
import time
from collections.abc import Callable

from cluster._shm_transport import ring_prefix
from tests.integration.conftest import Ensemble, wait_for
from tests.integration.test_ensemble import write_until_ok


def test_shm_ensemble_survives_kill_of_the_leader(ensemble_factory: Callable[..., Ensemble]) -> None:
    e = ensemble_factory(nodes=3, transport="shm")
    assert all(e.conf.servers[sid].peer.startswith("shm:///") for sid in e.servers)
    writer = e.session()
    assert writer.create("/app", b"v0") == (0, "/app")
    for i in range(50):
        assert writer.set("/app", f"v{i + 1}".encode()) == 0
    for sid in e.servers:
        reader = e.session(sid, last_zxid=writer.last_zxid)
        assert reader.get("/app") == (0, b"v50"), f"server {sid}"
        reader.close()
    writer.close()

    leader = wait_for(e.leader, 10, "a leader")
    killed_pid = e.kill(leader)  # type: ignore[arg-type]
    killed_at = time.monotonic()
    first_write = write_until_ok(e, "/after", b"new leader")
    print(f"kill -9 of leader {leader} to first write through a new leader: {first_write - killed_at:.3f}s")
    new_leader = wait_for(e.leader, 10, "a new leader")
    assert new_leader != leader

    wait_for(lambda: e.pid(leader) not in (None, killed_pid), 30, f"node {leader} restarted")  # type: ignore[arg-type]
    e.wait_healthy(60)
    s = e.session(new_leader)  # type: ignore[arg-type]
    assert s.set("/app", b"after restart") == 0
    back = e.session(leader, last_zxid=s.last_zxid)  # type: ignore[arg-type]
    assert back.get("/app") == (0, b"after restart") and back.get("/after") == (0, b"new leader")
    back.close()
    s.close()

    prefixes = [ring_prefix(e.conf.servers[sid].peer) for sid in e.servers]
    assert all(glob.glob(p + ".from*") for p in prefixes)
    e.stop()
    assert not [path for p in prefixes for path in glob.glob(p + "*")], "stop leaves nothing in /dev/shm"
