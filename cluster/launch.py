"""Start, supervise and stop an ensemble: each node its own OS process, restarted with backoff
when it dies, shown in a live status table. `zkpy` is the same command.

    python -m cluster.launch --nodes 5 [--observers 2] [--data-dir D] [--transport shm|ipc|tcp]
                             [--base-port P] [--detach]
    python -m cluster.launch --config /etc/zkpy/zoo.cfg --ids 1 --detach   (one host's nodes)
    python -m cluster.launch status|stop [--data-dir D | --config F]
    python -m cluster.launch stop-node|start-node --id N
    python -m cluster.launch partition --groups 1,2/3,4,5    (and: heal)
    python -m cluster.launch log|snapshot|check|purge ...    (cluster.toolkit: the files on disk)

Exit status: 0 done, 1 it did not work (the reason is printed), 2 a usage or config mistake.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from tabulate import tabulate

from cluster import admin, config, faults
from cluster._shm_transport import remove_rings
from cluster._supervisor import (
    Supervisor,
    down_marker,
    last_error,
    lock_holder,
    lock_path,
    node_log_path,
    node_pid_path,
    node_processes,
    state_path,
)
from zkcore import LocalError

__all__ = ["CONFIG_NAME", "config_path", "main", "node_pid_path", "read_pid"]
log = logging.getLogger("zkpy.launch")
CONFIG_NAME = "ensemble.cfg"
CRASH_LOOP_DEATHS = 2  # a node that died this often while starting is not going to serve
# A node past --timeout that still uses this much of a core is loading a big snapshot or log,
# not stuck: it is waited for, looked at again every WORKING_RECHECK_S, for up to
# WORKING_WAIT_MAX_S more (a 10-million-znode tree takes a minute or two to load).
WORKING_CPU_PERCENT = 30.0
WORKING_RECHECK_S = 5.0
WORKING_WAIT_MAX_S = 1800.0
SERVING = ("leader", "follower", "observer")


class Failed(Exception):
    """The command did not work; the message says why (exit 1)."""


def config_path(data_dir: Path) -> Path:
    return data_dir / CONFIG_NAME


def read_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if psutil.pid_exists(pid) else None


def quorum(conf: config.EnsembleConfig) -> int:
    return len(conf.voters) // 2 + 1


# --- finding the ensemble ---------------------------------------------------------------------


def locate(args: argparse.Namespace) -> tuple[Path, config.EnsembleConfig]:
    """The config file and the ensemble of --config, or of --data-dir's ensemble.cfg."""
    if args.config:
        path = Path(args.config).resolve()
        return path, config.load(path)
    data_dir = Path(args.data_dir).resolve()
    if data_dir.exists() and not data_dir.is_dir():
        raise LocalError(f"--data-dir {data_dir}: is a file, not a folder")
    path = config_path(data_dir)
    if not path.exists():
        raise LocalError(
            f"--data-dir {data_dir}: no ensemble here (no {CONFIG_NAME}); start one with "
            f"`python -m cluster.launch --nodes 3 --data-dir {args.data_dir} --detach`"
        )
    return path, config.load(path)


def check_id(conf: config.EnsembleConfig, path: Path, server_id: int) -> None:
    if server_id not in conf.servers:
        raise LocalError(f"--id {server_id}: no server.{server_id} in {path} (ids: {sorted(conf.servers)})")


def prepare(args: argparse.Namespace) -> tuple[Path, config.EnsembleConfig]:
    """The config to start: --config as it is, or D/ensemble.cfg, written on first use."""
    if args.config:
        path, conf = locate(args)
    else:
        data_dir = Path(args.data_dir).resolve()
        if data_dir.exists() and not data_dir.is_dir():
            raise LocalError(f"--data-dir {data_dir}: is a file, not a folder")
        path = config_path(data_dir)
        if path.exists():
            conf = config.load(path)
            if (len(conf.voters), len(conf.observers)) != (args.nodes, args.observers):
                print(f"note: {path} has {len(conf.voters)} voters and {len(conf.observers)} observers: "
                      "resuming that ensemble", file=sys.stderr)  # fmt: skip
            if args.base_port is not None:
                check_base_port(path, conf, args.base_port)
        else:
            conf = config.local_ensemble(
                data_dir, args.nodes, args.observers, args.transport, base_port(args)
            )
            try:
                data_dir.mkdir(parents=True, exist_ok=True)
                conf.write(path)
            except OSError as e:
                raise LocalError(f"--data-dir {data_dir}: cannot write {CONFIG_NAME}: {e.strerror}") from None
    for key in conf.ignored:
        print(f"note: {path}: {key} is a ZooKeeper setting zkpy does not use; ignored", file=sys.stderr)
    for sid in args.ids or []:
        check_id(conf, path, sid)
    (conf.data_dir / "run").mkdir(parents=True, exist_ok=True)
    return path, conf


def base_port(args: argparse.Namespace) -> int:
    """A new ensemble's first port: --base-port, or ZooKeeper's client port."""
    return config.BASE_PORT_DEFAULT if args.base_port is None else args.base_port


def check_base_port(path: Path, conf: config.EnsembleConfig, base: int) -> None:
    """--base-port given for an ensemble whose config exists: its config decides its ports, so a
    different base (as a person retries after "Address already in use") would be ignored."""
    first = conf.servers[min(conf.servers)]
    transport = first.peer.split("://", 1)[0]
    if transport not in config.TRANSPORTS:
        return  # not a local ensemble's layout: its ports are its own
    wanted = config.local_ensemble(conf.data_dir, len(conf.voters), len(conf.observers), transport, base)
    if [(s.zk, s.admin, s.client, s.peer) for s in wanted.servers.values()] != [
        (s.zk, s.admin, s.client, s.peer) for s in conf.servers.values()
    ]:
        raise LocalError(
            f"--base-port {base}: {path} already sets this ensemble's ports (ZooKeeper clients on "
            f"{conf.zk_connect_string()}), and its config decides them. For a new ensemble on other "
            f"ports use another --data-dir (or remove {conf.data_dir}); to move this one, edit the "
            f"server lines of {path}"
        )


# --- looking at nodes -------------------------------------------------------------------------


def mntr(conf: config.EnsembleConfig, sid: int) -> dict[str, str]:
    return admin.parse_mntr(admin.query(conf.servers[sid].client, "mntr", timeout_ms=300) or "")


def serving(conf: config.EnsembleConfig, ids: list[int]) -> dict[int, dict[str, str]]:
    """mntr of every node of ids that serves clients."""
    out = {}
    for sid in ids:
        m = mntr(conf, sid)
        if m.get("zk_server_state") in SERVING and m.get("zk_serving", "1") == "1":
            out[sid] = m
    return out


def has_quorum(conf: config.EnsembleConfig, views: dict[int, dict[str, str]]) -> bool:
    return any(
        m.get("zk_server_state") == "leader" and int(m.get("zk_synced_followers", "0")) + 1 >= quorum(conf)
        for m in views.values()
    )


_watched: dict[int, psutil.Process] = {}  # by pid: cpu_percent() measures since the last call


def cpu_percents(procs: dict[int, psutil.Process], sample_s: float = 0.3) -> dict[int, float]:
    """CPU use of each process, over a short sample, or since the previous call for the same
    process (the live table); psutil's first reading of a process is always 0."""
    fresh = {sid: _watched.setdefault(p.pid, p) for sid, p in procs.items()}
    for pid in [pid for pid in _watched if pid not in {p.pid for p in procs.values()}]:
        del _watched[pid]
    if sample_s > 0:
        for p in fresh.values():
            try:
                p.cpu_percent(None)
            except psutil.Error:
                pass
        time.sleep(sample_s)  # the measurement window, not synchronisation
    out = {}
    for sid, p in fresh.items():
        try:
            out[sid] = p.cpu_percent(None)
        except psutil.Error:
            pass
    return out


def status_rows(path: Path, conf: config.EnsembleConfig, cpu_sample_s: float = 0.3) -> list[list[object]]:
    procs = node_processes(path)
    cpu = cpu_percents(procs, cpu_sample_s)
    rows: list[list[object]] = []
    for sid in sorted(conf.servers):
        proc = procs.get(sid)
        m = mntr(conf, sid) if proc else {}
        mem = "-"
        if proc:
            try:
                mem = f"{proc.memory_info().rss / 2**20:.0f} MiB"
            except psutil.Error:
                pass
        down = down_marker(conf, sid).exists()
        role = m.get("zk_server_state", "down (maintenance)" if down else ("starting" if proc else "dead"))
        rows.append([sid, role, proc.pid if proc else "-", m.get("zk_epoch", "-"), m.get("zk_last_zxid", "-"),
                     m.get("zk_num_alive_connections", "-"), f"{cpu[sid]:.0f}%" if sid in cpu else "-", mem])  # fmt: skip
    return rows


def status_table(path: Path, conf: config.EnsembleConfig, cpu_sample_s: float = 0.3) -> str:
    """The table, and below it why each node that is down after dying is down (the live table of
    a launcher in the foreground, and `status`)."""
    headers = ["id", "role", "pid", "epoch", "last zxid", "clients", "cpu", "memory"]
    rows = status_rows(path, conf, cpu_sample_s)
    table: str = tabulate(rows, headers)
    deaths = supervisor_deaths(conf)
    down = [
        sid
        for sid, row in zip(sorted(conf.servers), rows, strict=True)
        if row[1] in ("dead", "starting") and deaths.get(sid)
    ]
    why = (
        "\n\nwhy down (restarted with backoff):\n" + "\n".join(node_reasons(conf, down, {}, deaths))
        if down
        else ""
    )
    return f"ensemble {conf.data_dir}\nconnect: {conf.connect_string()}\n{zk_line(conf)}\n" + table + why


def supervisor_deaths(conf: config.EnsembleConfig) -> dict[int, list[str]]:
    """How each node died (exit reasons, oldest first) since its supervisor started, as the
    running supervisor wrote them (empty when none runs)."""
    try:
        state = json.loads(state_path(conf).read_text())
    except (OSError, ValueError):
        return {}
    return {int(sid): list(node.get("deaths") or []) for sid, node in state.items()}


def node_reasons(
    conf: config.EnsembleConfig,
    ids: list[int],
    offsets: dict[int, int],
    deaths: dict[int, list[str]] | None = None,
) -> list[str]:
    """Why each of these nodes does not serve: how often it died and how, and its last error
    logged (else its last line: what a killed or still starting node last did)."""
    if deaths is None:  # the caller's, when it read them already
        deaths = supervisor_deaths(conf)
    lines = []
    for sid in ids:
        died = deaths.get(sid, [])
        log_file = node_log_path(conf, sid)
        said = last_error(log_file, offsets.get(sid, 0)).split(" INFO ", 1)[-1].removeprefix("zkpy.node ")
        if died:
            times = "1 time" if len(died) == 1 else f"{len(died)} times"
            lines.append(
                f"  node {sid} (died {times}, the last with {died[-1]}): its log last said: {said}  [{log_file}]"
            )
        else:
            lines.append(f"  node {sid}: running but not serving; its log last said: {said}  [{log_file}]")
    return lines


def zk_line(conf: config.EnsembleConfig) -> str:
    """The `zk-connect:` line (ZooKeeper's own clients), when the servers have such ports."""
    zk = conf.zk_connect_string()
    return f"zk-connect: {zk}\n" if zk else ""


# --- commands ---------------------------------------------------------------------------------


def cmd_start(args: argparse.Namespace) -> int:
    path, conf = prepare(args)
    holder = lock_holder(lock_path(conf))
    if holder is not None:
        raise Failed(f"an ensemble is already running in {conf.data_dir} (supervisor pid {holder}); "
                     "`stop` it first, or `status` to look at it")  # fmt: skip
    ids = sorted(args.ids or conf.servers)
    orphans = sorted(sid for sid in node_processes(path) if sid in ids)
    if orphans:
        print(f"note: nodes {orphans} are running without a supervisor: adopting them", file=sys.stderr)
    if not args.detach:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                            filename=str(conf.data_dir / "supervisor.log"))  # fmt: skip
        print(f"connect: {conf.connect_string()}\n{zk_line(conf)}supervisor log: {conf.data_dir}/supervisor.log; "
              "Ctrl-C stops the ensemble", flush=True)  # fmt: skip

        def show() -> None:  # the live table, redrawn each second, says why a node is down
            print("\033[2J\033[H" + status_table(path, conf, 0.0), flush=True)

        if not sys.stdout.isatty():  # no table: a node's death and why go to stderr (a service's journal)
            said = logging.StreamHandler(sys.stderr)
            said.setLevel(logging.WARNING)
            said.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            logging.getLogger().addHandler(said)
        code = Supervisor(path, ids).run(show if sys.stdout.isatty() else None)
        if code == 3:
            raise Failed(f"another supervisor took {conf.data_dir} meanwhile")
        return code
    return start_detached(path, conf, ids, args.timeout)


def start_detached(path: Path, conf: config.EnsembleConfig, ids: list[int], timeout_s: float) -> int:
    """Start a supervisor in the background; 0 once every node serves (or a quorum does, with a
    warning), else stop it again and fail with each failing node's reason."""
    offsets = {sid: node_log_path(conf, sid).stat().st_size if node_log_path(conf, sid).exists() else 0
               for sid in ids}  # fmt: skip
    state_path(conf).unlink(missing_ok=True)
    sup_log = conf.data_dir / "supervisor.log"
    with open(sup_log, "ab") as out:
        cmd = [sys.executable, "-m", "cluster.launch", "supervise", "--config", str(path),
               "--ids", ",".join(map(str, ids))]  # fmt: skip
        sup = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True)  # fmt: skip
    started = time.monotonic()
    deadline = started + timeout_s
    views: dict[int, dict[str, str]] = {}
    told: set[int] = set()
    while True:
        if time.monotonic() >= deadline:  # a quorum serving is enough then; else wait while nodes work
            failing = [sid for sid in ids if sid not in views]
            if has_quorum(conf, views) or not still_working(path, failing, started, timeout_s, told):
                break
            deadline = time.monotonic() + WORKING_RECHECK_S
        if sup.poll() is not None:
            raise Failed(f"the supervisor exited ({sup.returncode}): {last_error(sup_log)}")
        if not state_path(conf).exists():  # the supervisor holds the lock and has adopted
            time.sleep(0.05)
            continue
        views = serving(conf, ids)
        if len(views) == len(ids):
            print(f"connect: {conf.connect_string()}\n{zk_line(conf)}", end="", flush=True)
            return 0
        looping = crash_looping(conf, ids, views)
        if looping and (len(views) + len(looping) == len(ids) or not quorum_possible(conf, ids, looping)):
            break
        time.sleep(0.1)
    failing = [sid for sid in ids if sid not in views]
    reasons = node_reasons(conf, failing, offsets)
    if has_quorum(conf, views) or (set(ids) != set(conf.servers) and views):
        print(
            f"warning: nodes {failing} do not serve; the others do:\n" + "\n".join(reasons), file=sys.stderr
        )
        print(f"connect: {conf.connect_string()}\n{zk_line(conf)}", end="", flush=True)
        return 0
    sup.terminate()
    try:
        sup.wait(30)
    except subprocess.TimeoutExpired:
        sup.kill()
    raise Failed(f"no quorum serves after {time.monotonic() - started:.0f}s; stopped the ensemble "
                 f"again. Why each node that did not serve stopped:\n" + "\n".join(reasons))  # fmt: skip


def still_working(path: Path, sids: list[int], started: float, timeout_s: float, told: set[int]) -> bool:
    """Past the timeout: whether any of these nodes, not serving yet, is busy on a core (loading
    a big snapshot or log), so is worth waiting for; says so once per node."""
    waited = time.monotonic() - started
    if not sids or waited >= timeout_s + WORKING_WAIT_MAX_S:
        return False
    procs = {sid: proc for sid, proc in node_processes(path).items() if sid in sids}
    busy = {sid: pct for sid, pct in cpu_percents(procs, sample_s=1.0).items() if pct >= WORKING_CPU_PERCENT}
    if set(busy) - told:
        told.update(busy)
        shares = ", ".join(f"node {sid} at {pct:.0f}% CPU" for sid, pct in sorted(busy.items()))
        print(f"not serving yet after {waited:.0f}s, but working ({shares}): loading a big snapshot or log "
              f"takes a while; waiting while they work, for up to {WORKING_WAIT_MAX_S / 60:.0f} more "
              "minutes", file=sys.stderr, flush=True)  # fmt: skip
    return bool(busy)


def crash_looping(conf: config.EnsembleConfig, ids: list[int], views: dict[int, dict[str, str]]) -> list[int]:
    deaths = supervisor_deaths(conf)
    return [sid for sid in ids if sid not in views and len(deaths.get(sid, [])) >= CRASH_LOOP_DEATHS]


def quorum_possible(conf: config.EnsembleConfig, ids: list[int], looping: list[int]) -> bool:
    return len([sid for sid in conf.voters if sid not in looping]) >= quorum(conf)


def cmd_supervise(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    path, _ = locate(args)
    return Supervisor(path, args.ids).run()


def running(proc: psutil.Process) -> bool:
    """Alive and not a zombie (a zombie waits for its parent, maybe not us, to reap it)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def stop_processes(procs: dict[int, psutil.Process], timeout_s: float) -> None:
    """SIGTERM, then SIGKILL what is still running after timeout_s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in procs.values():
            try:
                p.send_signal(signal.SIGCONT)  # a paused node cannot handle SIGTERM
                p.send_signal(sig)
            except psutil.Error:
                pass
        deadline = time.monotonic() + timeout_s
        while any(map(running, procs.values())) and time.monotonic() < deadline:
            time.sleep(0.05)
        procs = {sid: p for sid, p in procs.items() if running(p)}
        if not procs:
            return


def cmd_stop(args: argparse.Namespace) -> int:
    path, conf = locate(args)
    done = []
    holder = lock_holder(lock_path(conf))
    if holder:
        nodes = sorted(node_processes(path))
        os.kill(holder, signal.SIGTERM)
        deadline = time.monotonic() + args.timeout
        while lock_holder(lock_path(conf)) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        if lock_holder(lock_path(conf)) is not None:
            os.kill(holder, signal.SIGKILL)
            done.append(f"killed the supervisor (pid {holder}), which did not stop in {args.timeout:.0f}s")
        else:
            done.append(f"stopped the supervisor (pid {holder}) and its nodes {nodes}")
    left = node_processes(path)
    if left:
        stop_processes(left, args.timeout)
        done.append(
            "stopped nodes without a supervisor: "
            + ", ".join(f"{s} (pid {p.pid})" for s, p in sorted(left.items()))
        )
    if remove_rings(conf):  # what nodes killed with -9 left in /dev/shm
        done.append("removed its shared-memory rings")
    print(f"{conf.data_dir}: " + ("; ".join(done) if done else "nothing was running"))
    return 0


def cmd_stop_node(args: argparse.Namespace) -> int:
    path, conf = locate(args)
    check_id(conf, path, args.id)
    views = serving(conf, conf.voters)
    if args.id in views and has_quorum(conf, views) and len(views) - 1 < quorum(conf) and not args.force:
        raise Failed(f"stopping node {args.id} would leave {len(views) - 1} of {len(conf.voters)} voters "
                     f"serving, fewer than a quorum ({quorum(conf)}): writes would stop. --force does it anyway")  # fmt: skip
    down_marker(conf, args.id).touch()
    proc = node_processes(path).get(args.id)
    if proc is not None:
        stop_processes({args.id: proc}, args.timeout)
    print(f"node {args.id} is down for maintenance; `start-node --id {args.id}` brings it back")
    return 0


def cmd_start_node(args: argparse.Namespace) -> int:
    path, conf = locate(args)
    check_id(conf, path, args.id)
    down_marker(conf, args.id).unlink(missing_ok=True)
    if lock_holder(lock_path(conf)) is None:
        raise Failed(f"no supervisor runs {conf.data_dir}, so nothing will start node {args.id}: start the "
                     "ensemble (`python -m cluster.launch --detach ...`)")  # fmt: skip
    endpoint = conf.servers[args.id].client
    started, told = time.monotonic(), set[int]()
    wait_until(
        lambda: admin.query(endpoint, "ruok", 300) == "imok",
        args.timeout,
        f"node {args.id} to answer",
        working=lambda: still_working(path, [args.id], started, args.timeout, told),
    )
    print(f"node {args.id} is back")
    return 0


def wait_until(
    predicate: Callable[[], object], timeout_s: float, what: str, working: Callable[[], bool] | None = None
) -> None:
    """Until predicate() holds, for timeout_s, and past it for as long as working() says the
    wait is worth it."""
    started = time.monotonic()
    deadline = started + timeout_s
    while not predicate():
        if time.monotonic() >= deadline:
            if working is None or not working():
                raise Failed(f"timed out after {time.monotonic() - started:.0f}s waiting for {what}")
            deadline = time.monotonic() + WORKING_RECHECK_S
        time.sleep(0.1)


def cmd_partition(args: argparse.Namespace) -> int:
    _, conf = locate(args)
    groups = faults.parse_groups(args.groups, conf.servers)
    faults.partition(conf.data_dir, groups)
    print("partitioned: " + " | ".join(",".join(map(str, sorted(g))) for g in groups))
    return 0


def cmd_heal(args: argparse.Namespace) -> int:
    _, conf = locate(args)
    faults.heal(conf.data_dir)
    print("healed: every node talks to every other")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """The table; exit 1 when no quorum serves (writes would fail)."""
    path, conf = locate(args)
    print(status_table(path, conf))
    holder = lock_holder(lock_path(conf))
    if not holder:
        print("supervisor: not running (a node that dies is not restarted)")
    views = serving(conf, conf.voters)
    if not has_quorum(conf, views):
        print(f"NO QUORUM: {len(views)} of {len(conf.voters)} voters serve, a quorum needs {quorum(conf)}",
              file=sys.stderr)  # fmt: skip
        return 1
    if len(views) == quorum(conf) and len(conf.voters) > 1:
        print(f"warning: exactly a quorum serves; `stop-node` of any of {sorted(views)} would stop writes")
    return 0


# --- arguments --------------------------------------------------------------------------------

COMMANDS = ("start", "status", "stop", "stop-node", "start-node", "supervise", "partition", "heal")
INSPECT_COMMANDS = ("log", "snapshot", "check", "purge")


def _ids(text: str) -> list[int]:
    try:
        return sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be server ids like 1 or 1,2: {text!r}") from None


def parse_args(argv: list[str]) -> argparse.Namespace:
    prog = "zkpy" if Path(sys.argv[0]).name == "zkpy" else "python -m cluster.launch"
    p = argparse.ArgumentParser(prog=prog, description=(__doc__ or "").split("\n\n")[0],
                                epilog="log, snapshot, check, purge: see `python -m cluster.toolkit --help`")  # fmt: skip
    p.add_argument("command", nargs="?", default="start", choices=COMMANDS)
    p.add_argument("--nodes", type=int, default=5, help="voting servers (default 5)")
    p.add_argument("--observers", type=int, default=0, help="observers (default 0)")
    p.add_argument("--data-dir", default="zkpy-data", help="ensemble folder (default ./zkpy-data)")
    p.add_argument("--config", help="an existing config file (zkpy's or a zoo.cfg) instead of --data-dir's")
    p.add_argument("--ids", type=_ids, help="supervise only these servers of the config (one host's), e.g. 1")
    p.add_argument("--transport", choices=config.TRANSPORTS, default=config.TRANSPORT_DEFAULT,
                   help="shm (default): peers through shared memory, clients over ipc; ipc: ZeroMQ "
                   "over Unix sockets; tcp: ZeroMQ on 127.0.0.1")  # fmt: skip
    p.add_argument("--base-port", type=int,
                   help=f"a new ensemble's first port (default {config.BASE_PORT_DEFAULT}): ZooKeeper clients on "
                   "base..base+N-1 (tcp: from base+2000; ZeroMQ clients from base, peers from base+1000), "
                   "AdminServer from base+6000")  # fmt: skip
    p.add_argument(
        "--detach", action="store_true", help="return once every node serves; print `connect: ...`"
    )
    p.add_argument("--id", type=int, help="server id for stop-node / start-node")
    p.add_argument("--force", action="store_true", help="stop-node even if it leaves no quorum")
    p.add_argument("--groups", help="partition: who can still talk, e.g. 1,2/3,4,5 (see cluster.faults)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for a state (default 60)")
    args = p.parse_args(argv)
    if args.command == "start":
        if not 1 <= args.nodes <= 255:
            p.error(f"--nodes {args.nodes}: need 1..255 voting servers")
        if not 0 <= args.observers <= 255 - args.nodes:
            p.error(f"--observers {args.observers}: need 0..{255 - args.nodes} (at most 255 servers in all)")
        base = base_port(args)
        if not (1 <= base and base + config.ADMIN_PORT_OFFSET + args.nodes + args.observers <= 65536):
            p.error(f"--base-port {base}: the ports go from base to base+{config.ADMIN_PORT_OFFSET}+N-1 "
                    "(the AdminServers'), all 1..65535")  # fmt: skip
    if args.timeout <= 0:
        p.error(f"--timeout {args.timeout}: must be above 0 seconds")
    if args.command in ("stop-node", "start-node") and args.id is None:
        p.error(f"{args.command} needs --id N")
    if args.command == "partition" and not args.groups:
        p.error("partition needs --groups, e.g. --groups 1,2/3,4,5")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in INSPECT_COMMANDS:
        from cluster import toolkit

        return toolkit.main(argv)
    args = parse_args(argv)
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "start": cmd_start, "status": cmd_status, "stop": cmd_stop, "stop-node": cmd_stop_node,
        "start-node": cmd_start_node, "supervise": cmd_supervise, "partition": cmd_partition, "heal": cmd_heal,
    }  # fmt: skip
    try:
        return handlers[args.command](args)
    except LocalError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Failed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # a folder we may not write, a disk that is full
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
