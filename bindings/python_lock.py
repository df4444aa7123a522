"""A Python contender for the cross-language lock tests of bindings/c and bindings/node: kazoo's
Lock node layout written with zkclient's plain create/get_children/exists, holding the lock
`rounds` times. Each hold appends `enter NAME` and `exit NAME` to a shared log, so the test can
check that no two holders overlap.

    python python_lock.py CONNECT LOCK_PATH LOG_FILE NAME ROUNDS
"""

from __future__ import annotations

import os
import sys
import threading
import uuid

from zkclient import Client


def seq(name: str) -> str:
    for marker in ("__lock__", "__rlock__"):
        if marker in name:
            return name.split(marker, 1)[1]
    return "~"


def log(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def hold_once(zk: Client, lock: str, log_file: str, name: str) -> None:
    prefix = uuid.uuid4().hex + "__lock__"
    node = zk.create(f"{lock}/{prefix}", name.encode(), ephemeral=True, sequence=True).rsplit("/", 1)[1]
    while True:
        kids = sorted(zk.get_children(lock), key=seq)
        before = [k for k in kids[: kids.index(node)] if "__lock__" in k]
        if not before:
            break
        gone = threading.Event()
        if zk.exists(f"{lock}/{before[-1]}", watch=lambda _event, ev=gone: ev.set()) is not None:
            gone.wait(5)  # the watch sets it; the timeout only makes us look again
    log(log_file, f"enter {name}")
    zk.exists("/")  # hold it across a round trip
    log(log_file, f"exit {name}")
    zk.delete(f"{lock}/{node}")


def main() -> None:
    connect, lock, log_file, name, rounds = sys.argv[1:6]
    zk = Client(connect, timeout=6.0)
    zk.start(timeout=30)
    try:
        zk.ensure_path(lock)
        for _ in range(int(rounds)):
            hold_once(zk, lock, log_file, name)
    finally:
        zk.stop()


if __name__ == "__main__":
    main()
