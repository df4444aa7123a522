"""ZooKeeper's AdminServer over HTTP, and Prometheus metrics: `/commands/<name>` answers JSON as
ZooKeeper's does, `/metrics` the mntr figures and a request-latency histogram in Prometheus'
text format (through prometheus_client).

The HTTP server has no thread of its own: the node's loop polls its socket and answers on its
one thread from the server's public API, as it does for four-letter words.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from cluster._zkdoor import parse_address
from zkcore.server import LATENCY_BUCKETS_MS

log = logging.getLogger("zkpy.adminserver")
REQUEST_TIMEOUT_S = 0.2  # a client has this long to send its request line and headers
ACCEPTS_PER_TURN = 8
COMMANDS = ("ruok", "stat", "monitor", "connections", "watches", "leader", "configuration", "environment",
            "dump", "srvr", "mntr")  # fmt: skip


@dataclass(slots=True)
class AdminRequest:
    """One HTTP request: a command name, or "metrics"; the node fills in the answer."""

    command: str
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"


class AdminServer:
    """An HTTP server driven by the node's own loop: poll fileno(), call handle() when it is
    readable. No thread of its own: every answer is built on the node's thread, from the
    server's public API, and a request's socket may take at most REQUEST_TIMEOUT_S to arrive."""

    def __init__(self, address: str, answer: Callable[[AdminRequest], None]) -> None:
        host, port = parse_address(address)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            timeout = REQUEST_TIMEOUT_S

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                outer._get(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
                return

        self.answer = answer
        self.httpd = HTTPServer((host, port), Handler)
        self.httpd.timeout = 0

    def fileno(self) -> int:
        return self.httpd.fileno()

    def handle(self) -> None:
        """Serve the connections waiting now (a few, so clients cannot hold the loop)."""
        for _ in range(ACCEPTS_PER_TURN):
            self.httpd.handle_request()  # timeout 0: returns at once when nobody is waiting

    def _get(self, handler: BaseHTTPRequestHandler) -> None:
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
        self.answer(request)
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

    def close(self) -> None:
        self.httpd.server_close()


def answer_json(request: AdminRequest, command: str, values: dict[str, Any]) -> None:
    request.body = json.dumps({**values, "command": command, "error": None}, default=str).encode()


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
