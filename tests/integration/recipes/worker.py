"""One user of a recipe in its own process, for the multi-process tests of Counter, LockingQueue,
Party and DoubleBarrier: does its part and writes what happened as JSON lines (time.monotonic()
stamps, comparable across processes on one host). Run as
`python -m tests.integration.recipes.worker ROLE --hosts ... --path ... --out F [options]`.

Roles:
  counter   add 1 to a Counter `--count` times; each line says whether the add returned, and the
            number of ConnectionLoss errors its set calls met (a retried add may apply twice).
  consumer  take entries from a LockingQueue until it is empty: "got", then "consumed" or
            "consume-failed" (the entry's lock was lost meanwhile, e.g. to session expiry).
  member    join a Party, then stay until `--stop-file` exists, rejoining after a lost session.
  barrier   enter a DoubleBarrier of `--count`, then leave it, stamping each step.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import IO, Any

from zkclient import Client, KazooState
from zkclient.exceptions import ConnectionLossError, KeeperError, RetryFailedError


class CountingClient(Client):
    """Counts ConnectionLoss errors met by set(): each may have been applied."""

    set_losses = 0

    def set(self, path: str, value: bytes, version: int = -1) -> Any:
        try:
            return super().set(path, value, version)
        except ConnectionLossError:
            self.set_losses += 1
            raise


class Worker:
    def __init__(self, args: argparse.Namespace, out: IO[str]) -> None:
        self.args = args
        self.out = out
        self.zk = CountingClient(args.hosts, timeout=args.session_s)
        self.lost = False
        self.zk.add_listener(self._on_state)

    def _on_state(self, state: str) -> None:
        self.write({"state": state})
        if state == KazooState.LOST:
            self.lost = True

    def write(self, record: dict[str, Any]) -> None:
        record.setdefault("t", time.monotonic())
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()

    def session(self) -> None:
        while self.zk.client_id is None:
            try:
                self.zk.start(timeout=30)
            except Exception as e:  # noqa: BLE001 - keep trying while the ensemble is faulted
                self.write({"event": "start-failed", "error": repr(e)})

    def counter(self) -> None:
        counter = self.zk.Counter(self.args.path)
        for _ in range(self.args.count):
            self.session()
            before = self.zk.set_losses
            try:
                counter += 1
                self.write({"added": 1, "losses": self.zk.set_losses - before})
            except (KeeperError, RetryFailedError) as e:
                self.write({"added": 0, "losses": self.zk.set_losses - before, "error": repr(e)})

    def consumer(self) -> None:
        queue = self.zk.LockingQueue(self.args.path)
        while True:
            self.session()
            try:
                if len(queue) == 0:
                    return
                item = queue.get(timeout=1.0)
                if item is None:
                    continue
                self.write({"got": item.decode()})
                time.sleep(self.args.hold_s)  # the work on the item (not synchronisation)
                if queue.consume():
                    self.write({"consumed": item.decode()})
                else:
                    self.write({"consume-failed": item.decode()})
                    queue.processing_element = None
            except (KeeperError, RetryFailedError) as e:
                self.write({"event": "retry", "error": repr(e)})
                queue.processing_element = None
            if self.zk.state == KazooState.LOST:
                self.zk.stop()

    def member(self) -> None:
        stop = Path(self.args.stop_file)
        while not stop.exists():
            self.session()
            party = self.zk.Party(self.args.path, self.args.name)
            try:
                party.join()
                self.write({"joined": self.zk.client_id[0] if self.zk.client_id else None})
                self.lost = False
                while not stop.exists() and not self.lost:
                    time.sleep(0.05)  # polling a file the test writes
            except (KeeperError, RetryFailedError) as e:
                self.write({"event": "retry", "error": repr(e)})
            if self.zk.state == KazooState.LOST:
                self.zk.stop()

    def barrier(self) -> None:
        self.session()
        barrier = self.zk.DoubleBarrier(self.args.path, self.args.count, self.args.name)
        self.write({"entering": True})
        barrier.enter()
        self.write({"entered": barrier.participating})
        time.sleep(self.args.hold_s)  # the work between the barriers
        self.write({"leaving": True})
        barrier.leave()
        self.write({"left": True})

    def run(self) -> None:
        getattr(self, self.args.role)()
        self.write({"event": "done"})
        self.zk.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("role", choices=("counter", "consumer", "member", "barrier"))
    p.add_argument("--hosts", required=True)
    p.add_argument("--path", required=True)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--name", default="")
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--hold-s", type=float, default=0.05)
    p.add_argument("--session-s", type=float, default=3.0)
    p.add_argument("--stop-file", default="")
    args = p.parse_args(argv)
    with args.out.open("a") as out:
        Worker(args, out).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
