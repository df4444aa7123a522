"""Time from kill -9 of the leader to the first successful write, on a real local ensemble.

    python -m bench.failover --nodes 3 --rounds 10 [--tick-ms 100] [--sync-limit 10]

Each round: find the leader, kill -9 it, then try to create a znode through every server at
once, each attempt starting over while its server refuses or stays silent, until one succeeds;
the supervisor restarts the killed node meanwhile.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import zmq

from cluster import config
from cluster.harness import Harness, wait_for
from cluster.launch import config_path
from zkcore import Code
from zkcore import _records as rec

PROBE_SILENCE_S = 0.3  # a probe that hears nothing for this long (a dead server) starts over
PROBE_RETRY_S = 0.005  # a probe refused (server not serving) starts over after this


class Probe:
    """One server's attempt at the create: connect, then send it; start over when refused."""

    def __init__(self, endpoint: str, poller: zmq.Poller) -> None:
        self.endpoint, self.poller = endpoint, poller
        self.sock: zmq.Socket[bytes] | None = None
        self.writing = False
        self.heard = self.retry_at = 0.0

    def start(self, now: float) -> None:
        self.stop()
        sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.endpoint)
        sock.send(rec.ConnectRequest(0, 0, 30_000, 0, bytes(16), False).encode())
        self.poller.register(sock, zmq.POLLIN)
        self.sock, self.writing, self.heard = sock, False, now

    def stop(self) -> None:
        if self.sock is not None:
            self.poller.unregister(self.sock)
            self.sock.close()
            self.sock = None

    def on_frame(self, frame: bytes, path: str, data: bytes, now: float) -> bool:
        """True once the create is known done (created now, or by an earlier attempt)."""
        assert self.sock is not None
        self.heard = now
        if not self.writing:
            if not frame:  # refused: this server is not serving yet
                self.stop()
                self.retry_at = now + PROBE_RETRY_S
                return False
            create = rec.CreateRequest(path, data, rec.OPEN_ACL_UNSAFE, 0)
            self.sock.send(rec.RequestHeader(1, rec.OpCode.CREATE).encode() + create.encode())
            self.writing = True
            return False
        header = rec.ReplyHeader.decode(frame[:16]) if len(frame) >= 16 else None
        if header is not None and header.xid == 1 and header.err in (Code.OK, Code.NODE_EXISTS):
            return True
        if not frame or (header is not None and header.xid == 1):  # dropped, or an error: again
            self.stop()
            self.retry_at = now + PROBE_RETRY_S
        return False


def write_until_ok(e: Harness, path: str, data: bytes, timeout_s: float = 30) -> float:
    """Create path through every server at once, each probe starting over while its server
    refuses or stays silent; when the first create succeeded (or was found done). Trying the
    servers one by one would add the probe's own waits on the dead one to the figure."""
    poller = zmq.Poller()
    probes = [Probe(e.endpoint(sid), poller) for sid in e.servers]
    by_sock: dict[object, Probe] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            now = time.monotonic()
            for probe in probes:
                silent = probe.sock is not None and now - probe.heard > PROBE_SILENCE_S
                if (probe.sock is None and now >= probe.retry_at) or silent:
                    probe.start(now)
            by_sock = {p.sock: p for p in probes if p.sock is not None}
            for sock, _ in poller.poll(5):
                frame = sock.recv()
                if by_sock[sock].on_frame(frame, path, data, time.monotonic()):
                    return time.monotonic()
        raise AssertionError(f"timed out after {timeout_s}s waiting for a successful write of {path}")
    finally:
        for probe in probes:
            probe.stop()


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
