"""The ensemble of one `python -m bench ab` run, inside the tree under test.

bench.ab runs this file with that tree first on sys.path, so the ensemble it starts (through
that tree's cluster.harness) is that tree's code, while everything that measures it stays in
bench.ab's tree. Its one argument is the number of servers. It prints one JSON line (the
servers' ZooKeeper hosts and pids, the leader's, and which core the tree runs), keeps the
ensemble up until its stdin closes, then stops it.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path


def main() -> None:
    import native  # the tree under test's
    from cluster.harness import Harness, wait_for

    with tempfile.TemporaryDirectory(prefix="zkpy-ab-") as tmp:
        ensemble = Harness(Path(tmp) / "e", int(sys.argv[1]))
        try:
            leader = wait_for(ensemble.leader, 60, "a leader")
            servers = ensemble.servers
            print(json.dumps({
                "hosts": [ensemble.conf.servers[sid].zk for sid in servers],
                "pids": [ensemble.pid(sid) for sid in servers],
                "leader_host": ensemble.conf.servers[leader].zk,  # type: ignore[index]
                "leader_pid": ensemble.pid(leader),  # type: ignore[arg-type]
                "core": native.IMPLEMENTATION,
            }), flush=True)  # fmt: skip
            sys.stdin.read()
        finally:
            ensemble.stop()


if __name__ == "__main__":
    main()
