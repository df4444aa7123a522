"""ZooKeeper's AdminServer over HTTP, and Prometheus metrics: `/commands/<name>` answers JSON as
ZooKeeper's does, `/metrics` the mntr figures and a request-latency histogram in Prometheus'
text format (through prometheus_client).

The HTTP server runs in its own thread, but it never touches the server: each request is handed
to the node's loop (take_requests/answer), which builds the answer from the server's public API
on its one thread, as it does for four-letter words.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from cluster._zkdoor import parse_address
from zkcore.server import LATENCY_BUCKETS_MS

log = logging.getLogger("zkpy.adminserver")
ANSWER_TIMEOUT_S = 5.0
PENDING_MAX = 100
COMMANDS = ("ruok", "stat", "monitor", "connections", "watches", "leader", "configuration", "environment",
            "dump", "srvr", "mntr")  # fmt: skip


@dataclass(slots=True)
class AdminRequest:
    """One HTTP request waiting for the node's loop: a command name, or "metrics"."""

    command: str
    done: threading.Event = field(default_factory=threading.Event)
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"


class AdminServer:
    def __init__(self, address: str) -> None:
        host, port = parse_address(address)
        self.requests: queue.Queue[AdminRequest] = queue.Queue(PENDING_MAX)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                outer.handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
                return

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="adminserver", daemon=True)
        self.thread.start()

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?", 1)[0].rstrip("/")
        if path == "/metrics":
            command = "metrics"
        elif path.startswith("/commands/") and path[len("/commands/") :] in COMMANDS:
            command = path[len("/commands/") :]
        elif path in ("", "/commands"):
            command = "list"
        else:
            self._reply(handler, 404, json.dumps({"error": f"unknown command {path!r}"}).encode())
            return
        request = AdminRequest(command)
        try:
            self.requests.put_nowait(request)
        except queue.Full:
            self._reply(handler, 503, b'{"error": "busy"}')
            return
        if not request.done.wait(ANSWER_TIMEOUT_S):
            self._reply(handler, 503, b'{"error": "the server did not answer in time"}')
            return
        self._reply(handler, request.status, request.body, request.content_type)

    @staticmethod
    def _reply(
        handler: BaseHTTPRequestHandler, status: int, body: bytes, kind: str = "application/json"
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def take_requests(self) -> Iterator[AdminRequest]:
        """For the node's loop: the requests waiting now."""
        while True:
            try:
                yield self.requests.get_nowait()
            except queue.Empty:
                return

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def answer_json(request: AdminRequest, command: str, values: dict[str, Any]) -> None:
    request.body = json.dumps({**values, "command": command, "error": None}, default=str).encode()
    request.done.set()


def metrics_text(mntr: dict[str, object], buckets: tuple[int, ...], latency_sum_ms: float) -> bytes:
    """The mntr figures as gauges and the request latency histogram, in Prometheus' format."""
    registry = CollectorRegistry()
    registry.register(_Snapshot(mntr, buckets, latency_sum_ms))
    return generate_latest(registry)


class _Snapshot(Collector):
    def __init__(self, mntr: dict[str, object], buckets: tuple[int, ...], latency_sum_ms: float) -> None:
        self.mntr, self.buckets, self.latency_sum_ms = mntr, buckets, latency_sum_ms

    def collect(self) -> Iterator[Any]:
        for key, value in self.mntr.items():
            number = _number(value)
            if number is not None:
                name = key[3:] if key.startswith("zk_") else key
                yield GaugeMetricFamily(name, f"ZooKeeper's mntr {key}", value=number)
        cumulative, total = [], 0
        for bound, count in zip((*LATENCY_BUCKETS_MS, float("inf")), self.buckets, strict=True):
            total += count
            cumulative.append((str(bound / 1000) if bound != float("inf") else "+Inf", total))
        yield HistogramMetricFamily(
            "request_latency_seconds",
            "Time from a request's arrival to its reply, on this server",
            buckets=cumulative,
            sum_value=self.latency_sum_ms / 1000,
        )


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(int(value, 16)) if value.startswith("0x") else float(value)
        except ValueError:
            return None
    return None


Answer = Callable[[AdminRequest], None]
