"""A follower that needs the whole tree (SNAP), on a real local ensemble of 3: does the leader
keep serving while it is sent?

    python -m bench snapsync --znodes 400000
    python -m bench snapsync --znodes 2200 --data-bytes 1000000 --sync-limit 100 --init-limit 600

Stop a follower, create N znodes (of 100 bytes, or --data-bytes) through the leader's
ZooKeeper port, start the follower again (too far behind for a DIFF, it gets a SNAP), and
meanwhile write to the leader one setData at a time. Reports how long the follower took to
serve again, how long the leader's forked child took to write the tree, the slowest write
while it all went on (the stall the SNAP cost the leader's clients), and whether anyone
elected again. The second form sends a SNAP of 2.2 GB, past what a jute int can say.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.memory import create_all
from cluster import config
from cluster.harness import SERVING_STATES, Harness, wait_for
from cluster.progress import Progress
from cluster.wire import WireSession

IMAGE_LINE = re.compile(r"image of the tree at \S+ for a SNAP: (\d+) znodes, ([\d.]+) MB, made in ([\d.]+)s")


class Writer(threading.Thread):
    """setData on /probe through the leader, one at a time: (start, seconds, error) each."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(daemon=True)
        self.session = WireSession(endpoint, timeout_ms=10_000)
        self.session.create("/probe", b"")
        self.samples: list[tuple[float, float, int]] = []
        self.running = True

    def run(self) -> None:
        while self.running:
            started = time.monotonic()
            try:
                err = self.session.set("/probe", b"p" * 100)
            except Exception:  # noqa: BLE001 - no answer in 10 s: the measurement says so
                err = -1
            self.samples.append((started, time.monotonic() - started, err))


def elections(log_text: str) -> int:
    return sum(1 for line in log_text.splitlines() if " role LOOKING " in line)


def run(znodes: int, transport: str, root: Path, data_bytes: int = 100, **limits: int) -> dict[str, Any]:
    """limits: init_limit_ticks, sync_limit_ticks of the ensemble, if not the defaults."""
    e = Harness(root, 3, transport=transport, **limits)
    try:
        leader = wait_for(e.leader, 30, "a leader")
        assert isinstance(leader, int)
        behind, other = (sid for sid in e.servers if sid != leader)
        e.launch("stop-node", "--id", str(behind), "--force")
        secs = create_all(
            e.conf.servers[leader].zk, znodes, b"x" * data_bytes, Progress(f"creating {znodes:,} znodes")
        )
        print(f"created {znodes:,} znodes in {secs:.1f}s", flush=True)
        logs = {sid: e.conf.node_dir(sid) / "node.log" for sid in e.servers}
        before = {sid: elections(logs[sid].read_text()) for sid in (leader, other)}
        writer = Writer(e.conf.servers[leader].client)
        writer.start()
        time.sleep(1)
        started = time.monotonic()
        e.launch("start-node", "--id", str(behind), "--timeout", "600", timeout=700)
        wait_for(lambda: e.state(behind) in SERVING_STATES, 600, f"node {behind} to serve")
        caught_up = time.monotonic() - started
        time.sleep(1)
        writer.running = False
        writer.join(15)
        writer.session.close()
        during = [(lat, err) for at, lat, err in writer.samples if at >= started - 0.5]
        image = IMAGE_LINE.search(logs[leader].read_text())
        after = {sid: elections(logs[sid].read_text()) for sid in (leader, other)}
        follower_log = logs[behind].read_text().split("reading the snapshot")[-1]
        latencies = sorted(lat for lat, _ in during)
        return {
            "znodes": znodes,
            "data_bytes": data_bytes,
            "transport": transport,
            "follower_serving_s": round(caught_up, 2),
            "image_made_s": float(image.group(3)) if image else None,
            "image_mb": float(image.group(2)) if image else None,
            "writes_during": len(during),
            "write_errors": sum(1 for _, err in during if err != 0),
            "write_p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None,
            "write_max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
            "leader_or_other_elected_again": any(after[sid] > before[sid] for sid in after),
            "follower_registrations": follower_log.count("phase DISCOVERY"),
        }
    finally:
        e.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--znodes", type=int, default=400_000)
    p.add_argument("--data-bytes", type=int, default=100, help="bytes of data in each znode (100)")
    p.add_argument("--init-limit", type=int, help="initLimit in ticks (default: the launcher's)")
    p.add_argument("--sync-limit", type=int, help="syncLimit in ticks (default: the launcher's)")
    p.add_argument("--transport", default=config.TRANSPORT_DEFAULT, choices=config.TRANSPORTS)
    p.add_argument("--json", type=Path, help="also write the result here")
    p.add_argument("--data-dir", type=Path, help="the ensemble's directory, kept (default: a temporary one)")
    args = p.parse_args()
    limits = {name: value for name, value in (("init_limit_ticks", args.init_limit),
              ("sync_limit_ticks", args.sync_limit)) if value is not None}  # fmt: skip
    if args.data_dir is not None:
        result = run(args.znodes, args.transport, args.data_dir, args.data_bytes, **limits)
    else:
        with tempfile.TemporaryDirectory(prefix="zksnap") as tmp:
            result = run(args.znodes, args.transport, Path(tmp) / "e", args.data_bytes, **limits)
    for key, value in result.items():
        print(f"  {key:32s} {value}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
