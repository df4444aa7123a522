"""One lock contender in its own process, for the recipe fault tests: takes a Lock (or a ReadLock,
WriteLock, Semaphore lease, or wins an Election) again and again, and writes each hold as a JSON line the checker reads
(checker.load_holds). Run as `python -m tests.integration.recipes.contender --hosts ... --out F`.

A hold runs from the moment acquire returned (or the leader function was called) to the moment
the contender began to release it, or heard SUSPENDED or LOST, whichever came first: the time it
believed it held the lock. Times are time.monotonic(), one clock for every process on the host.
The hold ends `lost` when the session turned out to be gone by the release (see checker/_mutex.py).

Lines besides holds: {"event": "acquired", ...} the moment a hold starts (so a test can find the
holder and fault it) and {"event": "done"} at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from zkclient import Client, KazooState
from zkclient.exceptions import (
    ConnectionLossError,
    KeeperError,
    LockTimeout,
    RetryFailedError,
    SessionExpiredError,
)
from zkclient.recipe import Lock


class LossyClient(Client):
    """Loses the reply of its first `lose` sequential creates: the server has made the node, the
    caller sees ConnectionLoss (what a connection dropped after the send looks like)."""

    lose = 0
    lost_paths: list[str] = []

    def create(self, path: str, value: bytes = b"", *args: Any, **kwargs: Any) -> Any:
        created = super().create(path, value, *args, **kwargs)
        if kwargs.get("sequence") and self.lose > 0:
            self.lose -= 1
            self.lost_paths.append(created)
            raise ConnectionLossError("KeeperErrorCode = ConnectionLoss (reply dropped by the test)", path)
        return created


class BrokenLock(Lock):
    """A deliberately broken lock for the checker to catch: it never waits for a predecessor."""

    def _get_predecessor(self, node: str) -> str | None:
        return None


class Watchful:
    """Listens to the session: the first SUSPENDED or LOST since `arm()` ends the hold."""

    def __init__(self) -> None:
        self.unsafe = threading.Event()
        self.unsafe_at: float | None = None
        self.lost = False

    def arm(self) -> None:
        self.unsafe.clear()
        self.unsafe_at = None
        self.lost = False

    def __call__(self, state: str) -> None:
        if state in (KazooState.SUSPENDED, KazooState.LOST) and self.unsafe_at is None:
            self.unsafe_at = time.monotonic()
            self.unsafe.set()
        if state == KazooState.LOST:
            self.lost = True


class Contender:
    def __init__(self, args: argparse.Namespace, out: IO[str]) -> None:
        self.args = args
        self.out = out
        self.watch = Watchful()
        cls = LossyClient if args.lose_creates else Client
        self.zk = cls(args.hosts, timeout=args.session_s, randomize_hosts=not args.pinned)
        if isinstance(self.zk, LossyClient):
            self.zk.lose = args.lose_creates
        self.zk.add_listener(self.watch)
        self.holds = 0
        self.pending: dict[str, Any] | None = None

    def write(self, record: dict[str, Any]) -> None:
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()

    def ensure_session(self) -> None:
        while self.zk.client_id is None:
            try:
                self.zk.start(timeout=30)
            except Exception as e:  # noqa: BLE001 - keep trying: the ensemble may be mid-fault
                self.write({"event": "start-failed", "error": repr(e)})

    def begin(self) -> None:
        client_id = self.zk.client_id
        session = client_id[0] if client_id is not None else None
        self.watch.arm()
        now = time.monotonic()
        self.pending = {
            "contender": self.args.name,
            "acquired": now,
            "session": session,
            "lock": self.args.path,
            "shared": self.args.mode == "read",
        }
        self.write({"event": "acquired", "t": now, "session": session, "pid": _pid()})
        self.watch.unsafe.wait(self.args.hold_s)
        ended = time.monotonic()
        if self.watch.unsafe_at is not None:
            ended = min(ended, self.watch.unsafe_at)
            self.pending["how"] = "suspended"
        else:
            self.pending["how"] = "released"
        self.pending["released"] = max(ended, now)

    def finish(self, release_failed: bool) -> None:
        hold = self.pending
        assert hold is not None
        client_id = self.zk.client_id
        if release_failed or self.watch.lost or client_id is None or client_id[0] != hold["session"]:
            hold["how"] = "lost"
        self.write({"hold": hold})
        self.pending = None
        self.holds += 1

    def make_lock(self) -> Any:
        a = self.args
        if a.broken:
            return BrokenLock(self.zk, a.path, a.name)
        if a.mode == "read":
            return self.zk.ReadLock(a.path, a.name)
        if a.mode == "write":
            return self.zk.WriteLock(a.path, a.name)
        if a.mode == "semaphore":
            return self.zk.Semaphore(a.path, a.name, max_leases=a.max_leases)
        return self.zk.Lock(a.path, a.name)

    def one_lock_hold(self) -> None:
        lock = self.make_lock()
        if not lock.acquire(timeout=self.args.acquire_timeout_s):
            return
        self.begin()
        failed = False
        try:
            lock.release()
        except (KeeperError, RetryFailedError):
            failed = True
        self.finish(failed)

    def one_election(self) -> None:
        election = self.zk.Election(self.args.path, self.args.name)
        failed = False
        try:
            election.run(self.begin)
        except (KeeperError, RetryFailedError):
            failed = True
        if self.pending is not None:
            self.finish(failed)
        elif failed:
            raise SessionExpiredError("lost before winning")

    def run(self) -> None:
        deadline = time.monotonic() + self.args.run_s
        while self.holds < self.args.holds and time.monotonic() < deadline:
            self.ensure_session()
            try:
                if self.args.mode == "election":
                    self.one_election()
                else:
                    self.one_lock_hold()
            except (SessionExpiredError, LockTimeout, RetryFailedError, ConnectionLossError) as e:
                self.write({"event": "retry", "error": repr(e)})
            except KeeperError as e:
                self.write({"event": "error", "error": repr(e)})
            if self.zk.state == KazooState.LOST:
                self.zk.stop()  # a new session next time round
        lost = self.zk.lost_paths if isinstance(self.zk, LossyClient) else []
        self.write({"event": "done", "holds": self.holds, "lost_creates": lost})
        self.zk.stop()


def _pid() -> int:
    import os

    return os.getpid()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--hosts", required=True)
    p.add_argument("--path", default="/lock")
    p.add_argument("--mode", choices=("lock", "election", "read", "write", "semaphore"), default="lock")
    p.add_argument("--max-leases", type=int, default=2, help="for --mode semaphore")
    p.add_argument("--name", required=True)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--holds", type=int, default=5)
    p.add_argument("--hold-s", type=float, default=0.05)
    p.add_argument("--session-s", type=float, default=2.0)
    p.add_argument("--acquire-timeout-s", type=float, default=60.0)
    p.add_argument("--run-s", type=float, default=90.0)
    p.add_argument("--lose-creates", type=int, default=0)
    p.add_argument("--broken", action="store_true", help="use a lock that does not wait (BrokenLock)")
    p.add_argument("--pinned", action="store_true", help="try the hosts in the order given")
    args = p.parse_args(argv)
    with args.out.open("a") as out:
        Contender(args, out).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
