"""What `python -m bench` shows and keeps: tables of the runs with zkpy / ZooKeeper ratios, the
notes that say what the figures mean on this machine, and PNG plots when matplotlib is there."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from tabulate import tabulate


def _ratio(row: dict[str, Any], key: str) -> str:
    ratio = row.get("ratio_to_zookeeper", {}).get(key)
    return f" ({ratio:.2f}x)" if ratio is not None else ""


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def table(rows: list[dict[str, Any]], tablefmt: str = "simple") -> str:
    """One line per run; zkpy's figures carry their ratio to ZooKeeper's in the same run."""
    out = []
    for r in rows:
        service = {"zookeeper": "ZooKeeper", "zkpy": "zkpy"}[r["service"]] + (
            " (ZeroMQ)" if r["door"] == "zmq" else ""
        )
        lat = (
            "/".join(_num(r.get(k), ".2f") for k in ("p50_ms", "p99_ms", "p999_ms")) if "p50_ms" in r else "-"
        )
        out.append([
            r["ensemble"], r["read_pct"], service,
            f"{r['ops_s']:,.0f}{_ratio(r, 'ops_s')}",
            f"{r['reads_s_per_server']:,.0f}",
            lat + (_ratio(r, "p99_ms").replace(")", " p99)") if "p50_ms" in r else ""),
            f"{r['server_cpu_us_per_op']:.1f}{_ratio(r, 'server_cpu_us_per_op')}",
            f"{r['client_cpu_us_per_op']:.1f}",
            _num(r.get("leader_msgs_per_op"), ".3f"),
            r["errors"] or "",
        ])  # fmt: skip
    headers = ["servers", "read %", "service", "ops/s (ours/ZK)", "reads/s per server", "p50/p99/p999 ms",
               "server CPU-µs/op", "client CPU-µs/op", "leader msgs/op", "errors"]  # fmt: skip
    if not any(r["errors"] for r in rows):
        out, headers = [line[:-1] for line in out], headers[:-1]
    return tabulate(out, headers=headers, disable_numparse=True, tablefmt=tablefmt)


def unloaded_table(ensembles: dict[str, Any], tablefmt: str = "simple") -> str:
    """The unloaded ops of each ensemble (each round's): latencies, and the servers' CPU per op;
    zkpy's p50s also as ratios to ZooKeeper's of the same round. With rounds, a last line per
    service of the medians, each ratio the median of the rounds' own."""
    found = {key: extra["unloaded"] for key, extra in ensembles.items() if "unloaded" in extra}
    if not found:
        return ""

    def ratio(key: str, kind: str) -> float | None:
        zk = found.get(key.replace("zkpy", "zookeeper", 1)) if key.startswith("zkpy") else None
        return found[key][kind]["p50_us"] / zk[kind]["p50_us"] if zk and zk[kind]["p50_us"] else None

    def cells(name: str, figures: dict[str, float], ratios: dict[str, float | None]) -> list[str]:
        def p50(kind: str) -> str:
            r = ratios.get(kind)
            return f"{figures[kind + ' p50'] / 1000:.3f}" + (f" ({r:.2f}x)" if r is not None else "")

        return [name, p50("create"), p50("get"), f"{figures['create p99'] / 1000:.3f}",
                f"{figures['get p99'] / 1000:.3f}", _cpu(figures.get("create cpu")),
                _cpu(figures.get("get cpu"))]  # fmt: skip

    rows: list[list[str]] = []
    rounds: dict[str, list[tuple[dict[str, float], dict[str, float | None]]]] = {}
    for key, u in found.items():
        idle = u.get("idle_sessions", 0)
        figures = {
            f"{kind} {what}": u[kind][f"{what}_us"] for kind in ("create", "get") for what in ("p50", "p99")
        }
        figures |= {f"{kind} cpu": u[kind]["server_cpu_us_per_op"] for kind in ("create", "get")
                    if "server_cpu_us_per_op" in u[kind]}  # fmt: skip
        ratios = {kind: ratio(key, kind) for kind in ("create", "get")}
        rows.append(cells(key + (f", {idle} idle sessions" if idle else ""), figures, ratios))
        rounds.setdefault(key.split(" round ")[0], []).append((figures, ratios))
    for base, got in rounds.items():
        if len(got) < 2:
            continue
        medians = {
            k: statistics.median(f[k] for f, _ in got) for k in got[0][0] if all(k in f for f, _ in got)
        }
        ratios = {}
        for kind in ("create", "get"):
            values = [x for x in (r[kind] for _, r in got) if x is not None]
            ratios[kind] = statistics.median(values) if values else None
        rows.append(cells(f"{base}, median of {len(got)} rounds", medians, ratios))
    return tabulate(rows, headers=["one request in flight, via a follower", "create p50 ms", "getData p50 ms",
                                   "create p99 ms", "getData p99 ms", "server CPU-µs/create",
                                   "server CPU-µs/getData"], disable_numparse=True,
                    tablefmt=tablefmt)  # fmt: skip


def turns_table(turns: dict[str, Any], tablefmt: str = "simple") -> str:
    """The unloaded ops with both services up, taking turns: each service's medians over its
    chunks, then zkpy's p50s over ZooKeeper's (the median of the chunks' own ratios)."""
    if "figures" not in turns:
        return f"one request in flight, services in turns: {turns.get('error', 'no figures')}"
    rows = []
    for service, f in turns["figures"].items():
        rows.append([f"{service}, median of {turns['chunks']} chunks of {turns['chunk_ops']}",
                     f"{f['create_p50_us'] / 1000:.3f}", f"{f['get_p50_us'] / 1000:.3f}",
                     f"{f['create_p99_us'] / 1000:.3f}", f"{f['get_p99_us'] / 1000:.3f}",
                     _cpu(f["create_cpu_us_per_op"]), _cpu(f["get_cpu_us_per_op"])])  # fmt: skip
    ratio = turns.get("ratio_to_zookeeper")
    if ratio:
        rows.append([f"zkpy / ZooKeeper, median of {turns['pairs']} chunks' ratios",
                     f"{ratio['create']:.2f}x" if "create" in ratio else "-",
                     f"{ratio['get']:.2f}x" if "get" in ratio else "-", "", "", "", ""])  # fmt: skip
    return tabulate(rows, headers=["one request in flight via a follower, services in turns", "create p50 ms",
                                   "getData p50 ms", "create p99 ms", "getData p99 ms", "server CPU-µs/create",
                                   "server CPU-µs/getData"], disable_numparse=True,
                    tablefmt=tablefmt)  # fmt: skip


def _cpu(us: float | None) -> str:
    return "-" if us is None else f"{us:.0f}"


def notes(results: dict[str, Any]) -> list[str]:
    """What the figures mean here: said in the output, not left for the reader to guess."""
    cores = results["machine"]["cores"]
    said = [
        f"{cores} cores here, shared by every server, their peers and the load generator"
        + (", and with whatever else runs on this machine" if cores <= 4 else "") + ": total throughput "
        "cannot grow with servers on this machine. What carries over to servers with cores of their own: "
        "reads/s per server, leader messages per read (zero: reads are answered by the server a session "
        "is on) and server CPU-µs per op. capacity_reads_s in the JSON = servers x 1e6 / CPU-µs per read, "
        "the reads/s that many servers with a core each would serve."
    ]  # fmt: skip
    # (A lone server has no peers to exchange anything with: nothing to say of it.)
    idle = {
        k: v["leader_idle_msgs_s"] for k, v in results["ensembles"].items() if v.get("leader_idle_msgs_s")
    }
    if idle:
        said.append("zkpy's leader exchanges heartbeats even when idle ("
                    + ", ".join(f"{k} servers: {v:.0f}/s" for k, v in idle.items())
                    + "). Under load each follower and observer also reports the sessions it heard "
                    "from to the leader once a tick (zkcore's session reports, as ZooKeeper's learners do "
                    "in their pings): a fixed rate per learner, not a message per read.")  # fmt: skip
    for r in results["runs"]:
        rate = idle.get(f"zkpy {r['ensemble']}")
        if (
            r["service"] == "zkpy"
            and r["read_pct"] == 100
            and rate
            and r.get("leader_msgs_per_op") is not None
        ):
            beats = rate * r["seconds"] / max(r["ops_s"] * r["seconds"], 1)
            said.append(f"zkpy {r['ensemble']} servers, 100% reads ({r['door']} door): the leader sent and "
                        f"received {r['leader_msgs_per_op']:.4f} messages per read, {beats:.4f} of them its idle "
                        f"heartbeats, {max(r['leader_msgs_per_op'] - beats, 0):.4f} beyond them.")  # fmt: skip
    for key, extra in results["ensembles"].items():
        slices = extra.get("warmup_ops_s") or []
        if len(slices) < 2 or abs(slices[-1] - slices[-2]) > 0.1 * max(slices[-2], 1):
            said.append(f"{key} servers: not settled when measuring began, its last two warm-up slices more "
                        "than 10% apart (ops/s by slice: " + ", ".join(f"{v:,.0f}" for v in slices) + "): "
                        "still warming up (ZooKeeper's JIT needs tens of seconds of load; measured cold it "
                        "flatters zkpy; the full run warms each ensemble for 60 s) or a noisy machine.")  # fmt: skip
    rounds = max((r.get("rounds", 1) for r in results["runs"]), default=1)
    if rounds > 1:
        said.append(f"each figure is the median of {rounds} rounds (ZooKeeper and zkpy took turns to go first), "
                    "each ratio the median of the rounds' own ratios; every round's rows are round_runs in "
                    "the JSON.")  # fmt: skip
    said += generator_bound(results)
    pins = sorted({v.get("pinning", "") for v in results["ensembles"].values()} - {"", "not pinned"})
    said += pins
    return said


GENERATOR_BOUND_SHARE = 0.9  # of its cores, for the note that the generator set the pace
SERVERS_MOSTLY_IDLE_SHARE = 0.5  # of theirs, below which the generator's queue is most of the latency


def generator_bound(results: dict[str, Any]) -> list[str]:
    """The pinned runs whose load generator kept its cores busy: the generator, not the servers,
    set their pace, so ops/s is what it could send, and CPU per op is what the servers spent on
    the batches it sent (a server that is not kept busy answers smaller batches, each costing
    more per op). Where the servers had time to spare, the requests in flight waited mostly in
    the generator (its threads take turns on its cores), so the latencies are largely its own.
    Unpinned, two cores are always full: nothing to tell apart."""
    said = []
    for r in results["runs"]:
        ensemble = results["ensembles"].get(f"{r['service']} {r['ensemble']}", {})
        cores = ensemble.get("generator_cores")
        if not cores or r["door"] != "zk":
            continue
        used = r["client_cpu_us_per_op"] * r["ops_s"] / 1e6
        if used < GENERATOR_BOUND_SHARE * cores:
            continue
        text = (f"{r['service']} {r['ensemble']} servers, {r['read_pct']}% reads: the load generator used "
                f"{used:.2f} of its {cores} core{'s' if cores > 1 else ''}; it set the pace of this run, not "
                "the servers")  # fmt: skip
        server_cores = ensemble.get("server_cores")
        if server_cores and r.get("server_cpu_us_per_op") is not None:
            busy = r["server_cpu_us_per_op"] * r["ops_s"] / 1e6
            plural = "s" if server_cores > 1 else ""
            servers_used = f"{busy:.2f} of their {server_cores} core{plural}"
            if busy >= GENERATOR_BOUND_SHARE * server_cores:
                text += f", though the servers were busy too ({servers_used})"
            elif busy < SERVERS_MOSTLY_IDLE_SHARE * server_cores:
                text += (f" (the servers used {servers_used}: its requests waited mostly in the generator, "
                         "so the latencies are largely its own)")  # fmt: skip
            else:
                text += (f" (the servers used {servers_used}: they had time to spare, so part of each "
                         "latency is time spent in the generator)")  # fmt: skip
        said.append(text + ".")
    return said


def show(results: dict[str, Any], tablefmt: str = "simple") -> str:
    """The tables and the notes, as printed at the end of a run (and by `python -m bench report`)."""
    parts = [table(results["runs"], tablefmt)]
    unloaded = unloaded_table(results["ensembles"], tablefmt)
    if unloaded:
        parts.append(unloaded)
    if "unloaded_in_turns" in results:
        parts.append(turns_table(results["unloaded_in_turns"], tablefmt))
    parts.append("\n".join(f"- {n}" for n in notes(results)))
    return "\n\n".join(parts)


def plots(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """throughput.png (ops/s against read %, one line per ensemble, a panel per service, as in the
    ZooKeeper paper's figure) and latency.png (p50/p99/p999 against read %). [] without matplotlib."""
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return []
    rows = [r for r in results["runs"] if r["door"] == "zk"]
    services = [s for s in ("zookeeper", "zkpy") if any(r["service"] == s for r in rows)]
    ensembles = list(dict.fromkeys(r["ensemble"] for r in rows))
    names = {"zookeeper": "Apache ZooKeeper 3.8", "zkpy": "zkpy (ZooKeeper door)"}
    fig, axes = plt.subplots(1, len(services), figsize=(5 * len(services), 4), sharey=True, squeeze=False)
    for ax, service in zip(axes[0], services, strict=True):
        for ensemble in ensembles:
            pts = sorted(
                (r["read_pct"], r["ops_s"])
                for r in rows
                if r["service"] == service and r["ensemble"] == ensemble
            )
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{ensemble} servers")
        ax.set(title=names[service], xlabel="percentage of reads", ylabel="operations per second")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    made = [out_dir / "throughput.png"]
    fig.savefig(made[0], dpi=80)
    plt.close(fig)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharey=True)
    for ax, q in zip(axes, ("p50", "p99", "p999"), strict=True):
        for service in services:
            for ensemble in ensembles:
                pts = sorted(
                    (r["read_pct"], r[f"{q}_ms"])
                    for r in rows
                    if r["service"] == service and r["ensemble"] == ensemble
                )
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", linestyle="-" if service == "zkpy" else "--",
                        label=f"{names[service].split(' (')[0]}, {ensemble} servers")  # fmt: skip
        ax.set(title=f"{q} latency under load", xlabel="percentage of reads", ylabel="ms", yscale="log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    made.append(out_dir / "latency.png")
    fig.savefig(made[1], dpi=80)
    plt.close(fig)
    return made
