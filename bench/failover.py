"""Time from kill -9 of the leader to the first successful write, on a real local ensemble.

    python -m bench.failover --nodes 3 --rounds 10 [--tick-ms 100] [--sync-limit 10]

Each round: find the leader, kill -9 it, then from a fresh client keep trying to create a
znode on any server until one succeeds; the supervisor restarts the killed node meanwhile.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from cluster import config
from cluster.harness import Harness, wait_for
from cluster.launch import config_path
from cluster.wire import NoAnswer, Refused, WireSession
from zkcore import Code


def write_until_ok(e: Harness, path: str, data: bytes, timeout_s: float = 30) -> float:
    """Create path on any server that takes it (or find a retry already did); when it first succeeded."""

    def attempt() -> float | None:
        for sid in e.servers:
            try:
                s = WireSession(e.endpoint(sid), wait_ms=250)
            except (Refused, NoAnswer):
                continue
            try:
                err, _ = s.create(path, data)
                if err in (Code.OK, Code.NODE_EXISTS):
                    return time.monotonic()
            except NoAnswer:
                pass
            finally:
                s.close()
        return None

    return wait_for(attempt, timeout_s, f"a successful write of {path}")  # type: ignore[return-value]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--tick-ms", type=int, default=None, help="override the ensemble's tickTime")
    p.add_argument("--sync-limit", type=int, default=None, help="override syncLimit (ticks)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="zkfo") as tmp:
        data_dir = Path(tmp) / "e"
        if args.tick_ms or args.sync_limit:
            options = {}
            if args.tick_ms:
                options["tick_ms"] = args.tick_ms
            if args.sync_limit:
                options["sync_limit_ticks"] = args.sync_limit
            data_dir.mkdir()
            config.local_ensemble(data_dir, args.nodes, **options).write(config_path(data_dir))
        e = Harness(data_dir, args.nodes)
        try:
            times = []
            for i in range(args.rounds):
                leader = wait_for(e.leader, 30, "a leader")
                wait_for(
                    lambda: all(e.mntr(s).get("zk_serving") == "1" for s in e.conf.voters), 30, "all serving"
                )
                killed = time.monotonic()
                e.kill(leader)  # type: ignore[arg-type]
                times.append(write_until_ok(e, f"/round{i}", b"x") - killed)
                print(
                    f"round {i}: leader {leader} killed, first write after {times[-1] * 1000:.0f} ms",
                    flush=True,
                )
            print(f"kill -9 leader -> first write, {args.nodes} nodes, tick {e.conf.tick_ms} ms, "
                  f"syncLimit {e.conf.sync_limit_ticks}: median {statistics.median(times) * 1000:.0f} ms, "
                  f"min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms over {len(times)} rounds")  # fmt: skip
        finally:
            e.stop()


if __name__ == "__main__":
    main()
