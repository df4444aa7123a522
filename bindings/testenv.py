"""A live ensemble for the bindings' test runners, which are not Python: start one, print its
connect string, kill the node behind an endpoint, stop everything by pid.

    python bindings/testenv.py start DATA_DIR [--nodes 3]   prints `connect: ep,ep,...`
    python bindings/testenv.py kill DATA_DIR ENDPOINT       kill -9 the node serving ENDPOINT
    python bindings/testenv.py down|up DATA_DIR ENDPOINT    stop that node (no restart) / start it again
    python bindings/testenv.py stop DATA_DIR [--remove]     stop the launcher and every node pid
                                                            (--remove: then delete DATA_DIR)
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cluster import config  # noqa: E402
from cluster.harness import Harness  # noqa: E402
from cluster.launch import config_path, node_pid_path, read_pid  # noqa: E402


class _Attached(Harness):
    """A harness for an ensemble that is already running (no launch)."""

    def __init__(self, data_dir: Path) -> None:  # noqa: D107 - deliberately skips Harness.__init__
        self.data_dir = data_dir.resolve()
        self.conf = config.load(config_path(self.data_dir))
        self.paused = set()


def start(data_dir: Path, nodes: int) -> None:
    h = Harness(data_dir, nodes)
    h.wait_healthy(90)
    print(f"connect: {h.connect_string()}", flush=True)


def server_id(data_dir: Path, endpoint: str) -> int:
    conf = config.load(config_path(data_dir.resolve()))
    for sid, server in conf.servers.items():
        if server.client == endpoint:
            return sid
    sys.exit(f"no server has client endpoint {endpoint!r}")


def kill(data_dir: Path, endpoint: str) -> None:
    conf = config.load(config_path(data_dir.resolve()))
    sid = server_id(data_dir, endpoint)
    pid = read_pid(node_pid_path(conf, sid))
    if pid is None:
        sys.exit(f"node {sid} ({endpoint}) is not running")
    os.kill(pid, signal.SIGKILL)
    print(f"killed node {sid} pid {pid}", flush=True)


def down_or_up(data_dir: Path, endpoint: str, command: str) -> None:
    """The launcher's stop-node (down for maintenance: not restarted) or start-node."""
    sid = server_id(data_dir, endpoint)
    cmd = [sys.executable, "-m", "cluster.launch", "stop-node" if command == "down" else "start-node",
           "--data-dir", str(data_dir.resolve()), "--id", str(sid)]  # fmt: skip
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stdout}{out.stderr}")
    print(out.stdout.strip(), flush=True)


def stop(data_dir: Path, remove: bool) -> None:
    h = _Attached(data_dir)
    pids = [read_pid(node_pid_path(h.conf, sid)) for sid in h.conf.servers]
    h.stop()
    deadline = time.monotonic() + 30
    for pid in pids:
        while pid is not None and read_pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    left = [p for p in pids if p is not None and read_pid_alive(p)]
    if left:
        sys.exit(f"node pids still alive after stop: {left}")
    if remove:
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"stopped the ensemble in {data_dir}" + (" and removed it" if remove else ""), flush=True)


def read_pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=("start", "kill", "down", "up", "stop"))
    p.add_argument("data_dir", type=Path)
    p.add_argument("endpoint", nargs="?")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--remove", action="store_true", help="stop: delete DATA_DIR afterwards")
    args = p.parse_args()
    if args.command == "start":
        start(args.data_dir, args.nodes)
    elif args.command in ("kill", "down", "up"):
        if not args.endpoint:
            p.error(f"{args.command} needs an ENDPOINT")
        if args.command == "kill":
            kill(args.data_dir, args.endpoint)
        else:
            down_or_up(args.data_dir, args.endpoint, args.command)
    else:
        stop(args.data_dir, args.remove)


if __name__ == "__main__":
    main()
