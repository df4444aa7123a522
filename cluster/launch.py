"""Start, supervise and stop an ensemble on this host: each node its own OS process, restarted
with backoff when it dies, shown in a live status table.

    python -m cluster.launch --nodes 5 [--observers 2] [--data-dir D] [--transport ipc|tcp]
                             [--base-port P] [--detach]
    python -m cluster.launch status|stop --data-dir D
    python -m cluster.launch stop-node|start-node --data-dir D --id N
    python -m cluster.launch partition --data-dir D --groups 1,2/3,4,5    (and: heal)
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from tabulate import tabulate

from cluster import admin, config, faults

log = logging.getLogger("zkpy.launch")
CONFIG_NAME = "ensemble.cfg"
SUPERVISOR_PID = "supervisor.pid"
BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
HEALTHY_AFTER_S = 30.0


def node_env() -> dict[str, str]:
    """A node's environment. Requests and snapshots of up to a few MB come and go: glibc's
    malloc would move them onto its heap after the first free and keep that heap's high-water
    mark forever; from 128 KiB on, they get pages of their own that go back when freed."""
    env = dict(os.environ)
    env.setdefault("MALLOC_MMAP_THRESHOLD_", str(128 * 1024))
    return env


def config_path(data_dir: Path) -> Path:
    return data_dir / CONFIG_NAME


def down_marker(data_dir: Path, server_id: int) -> Path:
    return data_dir / "run" / f"down-{server_id}"


def node_pid_path(conf: config.EnsembleConfig, server_id: int) -> Path:
    return conf.node_dir(server_id) / "node.pid"


def read_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if psutil.pid_exists(pid) else None


class Supervisor:
    """Keeps every node that is not marked down running; restarts the dead with backoff."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.conf = config.load(config_path(data_dir))
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.failures: dict[int, int] = {}
        self.next_start: dict[int, float] = {}
        self.started_at: dict[int, float] = {}
        self.stopping = False

    def start_node(self, server_id: int) -> None:
        node_dir = self.conf.node_dir(server_id)
        node_dir.mkdir(parents=True, exist_ok=True)
        out = open(node_dir / "node.log", "ab")  # noqa: SIM115 - handed to the child
        cmd = [
            sys.executable,
            "-m",
            "cluster.node",
            "--config",
            str(config_path(self.data_dir)),
            "--id",
            str(server_id),
        ]
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=node_env()
        )
        out.close()
        self.procs[server_id] = proc
        self.started_at[server_id] = time.monotonic()
        node_pid_path(self.conf, server_id).write_text(f"{proc.pid}\n")
        log.info("started node %d (pid %d)", server_id, proc.pid)

    def check(self) -> None:
        now = time.monotonic()
        for sid in sorted(self.conf.servers):
            proc = self.procs.get(sid)
            down = down_marker(self.data_dir, sid).exists()
            if proc is not None and proc.poll() is not None:
                del self.procs[sid]
                ran = now - self.started_at.get(sid, now)
                if ran > HEALTHY_AFTER_S:
                    self.failures[sid] = 0
                if down:
                    log.info("node %d stopped for maintenance (exit %s)", sid, proc.returncode)
                    continue
                failures = self.failures.get(sid, 0)
                delay = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)]
                self.failures[sid] = failures + 1
                self.next_start[sid] = now + delay
                log.warning(
                    "node %d (pid %d) died with %s after %.1fs; restarting in %.1fs",
                    sid, proc.pid, _exit_reason(proc.returncode), ran, delay,
                )  # fmt: skip
            if sid not in self.procs and not down and now >= self.next_start.get(sid, 0.0):
                self.start_node(sid)

    def stop_all(self, timeout_s: float = 10.0) -> None:
        self.stopping = True
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + timeout_s
        for sid, proc in self.procs.items():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("node %d did not stop in %.0fs; killing it", sid, timeout_s)
                proc.kill()
                proc.wait()
        self.procs.clear()

    def run(self, show_table: bool) -> None:
        (self.data_dir / SUPERVISOR_PID).write_text(f"{os.getpid()}\n")
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        signal.signal(signal.SIGINT, lambda *_: setattr(self, "stopping", True))
        last_table = 0.0
        try:
            while not self.stopping:
                self.check()
                if show_table and time.monotonic() - last_table >= 1.0:
                    last_table = time.monotonic()
                    print("\033[2J\033[H" + status_table(self.data_dir), flush=True)
                time.sleep(0.1)
        finally:
            log.info("stopping the ensemble")
            self.stop_all()
            (self.data_dir / SUPERVISOR_PID).unlink(missing_ok=True)


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def node_rows(data_dir: Path) -> list[list[object]]:
    conf = config.load(config_path(data_dir))
    rows: list[list[object]] = []
    for sid in sorted(conf.servers):
        pid = read_pid(node_pid_path(conf, sid))
        answer = admin.query(conf.servers[sid].client, "mntr", timeout_ms=300) if pid else None
        m = admin.parse_mntr(answer) if answer else {}
        cpu = mem = "-"
        if pid:
            try:
                p = psutil.Process(pid)
                cpu, mem = f"{p.cpu_percent(interval=None):.0f}%", f"{p.memory_info().rss / 2**20:.0f} MiB"
            except psutil.Error:
                pass
        down = down_marker(data_dir, sid).exists()
        role = m.get("zk_server_state", "down (maintenance)" if down else ("starting" if pid else "dead"))
        rows.append([sid, role, pid or "-", m.get("zk_epoch", "-"), m.get("zk_last_zxid", "-"),
                     m.get("zk_num_alive_connections", "-"), cpu, mem])  # fmt: skip
    return rows


def status_table(data_dir: Path) -> str:
    headers = ["id", "role", "pid", "epoch", "last zxid", "clients", "cpu", "memory"]
    conf = config.load(config_path(data_dir))
    table: str = tabulate(node_rows(data_dir), headers)
    return (
        f"ensemble {data_dir}\nconnect: {conf.connect_string()}\nzk-connect: {conf.zk_connect_string()}\n\n"
        + table
    )


def leader_serving(data_dir: Path) -> bool:
    conf = config.load(config_path(data_dir))
    quorum = len(conf.voters) // 2 + 1
    for sid in conf.voters:
        answer = admin.query(conf.servers[sid].client, "mntr", timeout_ms=300)
        m = admin.parse_mntr(answer or "")
        if m.get("zk_server_state") == "leader" and int(m.get("zk_synced_followers", "0")) + 1 >= quorum:
            return True
    return False


def prepare(args: argparse.Namespace) -> Path:
    data_dir = Path(args.data_dir).resolve()
    path = config_path(data_dir)
    if path.exists():
        conf = config.load(path)
        if (len(conf.voters), len(conf.observers)) != (args.nodes, args.observers):
            log.warning("%s exists with %d voters and %d observers: resuming that ensemble",
                        path, len(conf.voters), len(conf.observers))  # fmt: skip
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        conf = config.local_ensemble(data_dir, args.nodes, args.observers, args.transport, args.base_port)
        conf.write(path)
    (data_dir / "run").mkdir(exist_ok=True)
    return data_dir


def wait_until(predicate: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise SystemExit(f"timed out after {timeout_s:.0f}s waiting for {what}")


def cmd_start(args: argparse.Namespace) -> int:
    data_dir = prepare(args)
    if read_pid(data_dir / SUPERVISOR_PID):
        print(f"an ensemble is already running in {data_dir}", file=sys.stderr)
        return 1
    if not args.detach:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                            filename=str(data_dir / "supervisor.log"))  # fmt: skip
        conf = config.load(config_path(data_dir))
        print(f"connect: {conf.connect_string()}\nzk-connect: {conf.zk_connect_string()}\nsupervisor log: {data_dir}/supervisor.log; Ctrl-C stops the ensemble",
              flush=True)  # fmt: skip
        Supervisor(data_dir).run(show_table=sys.stdout.isatty())
        return 0
    out = open(data_dir / "supervisor.log", "ab")  # noqa: SIM115 - handed to the child
    cmd = [sys.executable, "-m", "cluster.launch", "supervise", "--data-dir", str(data_dir)]
    subprocess.Popen(
        cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    out.close()
    wait_until(
        lambda: leader_serving(data_dir), args.timeout, f"a leader to serve (see {data_dir}/*/node.log)"
    )
    conf = config.load(config_path(data_dir))
    print(f"connect: {conf.connect_string()}\nzk-connect: {conf.zk_connect_string()}", flush=True)
    return 0


def cmd_supervise(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    Supervisor(Path(args.data_dir).resolve()).run(show_table=False)
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    pid = read_pid(data_dir / SUPERVISOR_PID)
    if pid is None:
        print(f"no supervisor running for {data_dir}", file=sys.stderr)
        return 1
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not psutil.pid_exists(pid), args.timeout, f"supervisor {pid} to stop")
    print(f"stopped the ensemble in {data_dir}")
    return 0


def cmd_stop_node(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    conf = config.load(config_path(data_dir))
    down_marker(data_dir, args.id).touch()
    pid = read_pid(node_pid_path(conf, args.id))
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not psutil.pid_exists(pid), args.timeout, f"node {args.id} (pid {pid}) to stop")
    print(f"node {args.id} is down for maintenance; `start-node --id {args.id}` brings it back")
    return 0


def cmd_start_node(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    conf = config.load(config_path(data_dir))
    down_marker(data_dir, args.id).unlink(missing_ok=True)
    endpoint = conf.servers[args.id].client
    wait_until(
        lambda: admin.query(endpoint, "ruok", 300) == "imok", args.timeout, f"node {args.id} to answer"
    )
    print(f"node {args.id} is back")
    return 0


def cmd_partition(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    conf = config.load(config_path(data_dir))
    groups = faults.parse_groups(args.groups, conf.servers)
    faults.partition(data_dir, groups)
    print("partitioned: " + " | ".join(",".join(map(str, sorted(g))) for g in groups))
    return 0


def cmd_heal(args: argparse.Namespace) -> int:
    faults.heal(Path(args.data_dir).resolve())
    print("healed: every node talks to every other")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    print(status_table(Path(args.data_dir).resolve()))
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m cluster.launch", description=__doc__.split("\n\n")[0])
    p.add_argument("command", nargs="?", default="start",
                   choices=["start", "status", "stop", "stop-node", "start-node", "supervise", "partition",
                            "heal"])  # fmt: skip
    p.add_argument("--nodes", type=int, default=5, help="voting servers (default 5)")
    p.add_argument("--observers", type=int, default=0, help="observers (default 0)")
    p.add_argument("--data-dir", default="zkpy-data", help="ensemble folder (default ./zkpy-data)")
    p.add_argument("--transport", choices=["ipc", "tcp"], default="ipc")
    p.add_argument("--base-port", type=int, default=2181, help="first client port for --transport tcp")
    p.add_argument("--detach", action="store_true", help="return once a leader serves; print `connect: ...`")
    p.add_argument("--id", type=int, help="server id for stop-node / start-node")
    p.add_argument("--groups", help="partition: who can still talk, e.g. 1,2/3,4,5 (see cluster.faults)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for a state (default 60)")
    args = p.parse_args(argv)
    if args.command in ("stop-node", "start-node") and args.id is None:
        p.error(f"{args.command} needs --id N")
    if args.command == "partition" and not args.groups:
        p.error("partition needs --groups, e.g. --groups 1,2/3,4,5")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    handlers = {"start": cmd_start, "status": cmd_status, "stop": cmd_stop, "stop-node": cmd_stop_node,
                "start-node": cmd_start_node, "supervise": cmd_supervise, "partition": cmd_partition,
                "heal": cmd_heal}  # fmt: skip
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
