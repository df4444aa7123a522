"""ZooKeeper's AdminServer over HTTP, and Prometheus metrics: `/commands/<name>` answers JSON as
ZooKeeper's does, `/metrics` the mntr figures and a request-latency histogram in Prometheus'
text format (through prometheus_client).

The HTTP side runs on threads of its own (a connection each, at most ADMIN_CONNECTIONS_MAX), so
that no client, however slow to send its request or to read the answer, can hold up the node's
loop; each request is answered on the loop's thread, from the server's public API, as a
four-letter word is: the HTTP thread queues it, wakes the loop through a pipe it polls, and
waits for the answer.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
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
REQUEST_TIMEOUT_S = 5.0  # a client has this long to send its request, and to take each part of the answer
ANSWER_TIMEOUT_S = 5.0  # a request waits this long for the loop to answer it (503 after)
ADMIN_CONNECTIONS_MAX = 16  # open at once; more are closed as they come
SERVE_POLL_S = 0.1  # how soon the HTTP thread notices close()
COMMANDS = ("ruok", "stat", "monitor", "connections", "watches", "leader", "configuration", "environment",
            "dump", "srvr", "mntr")  # fmt: skip


@dataclass(slots=True)
class AdminRequest:
    """One HTTP request: a command name, or "metrics"; the node fills in the answer."""

    command: str
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    answered: threading.Event = field(default_factory=threading.Event)


class AdminServer:
    """An HTTP server whose requests the node's loop answers: poll fileno(), call handle() when
    it is readable. Its sockets are served by threads of its own; every answer is built on the
    loop's thread, from the server's public API."""

    def __init__(self, address: str, answer: Callable[[AdminRequest], None]) -> None:
        host, port = parse_address(address)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            timeout = REQUEST_TIMEOUT_S

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                outer._get(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
                return

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def verify_request(self, request: Any, client_address: Any) -> bool:
                with outer._lock:  # else it is closed at once
                    if len(outer._serving) >= ADMIN_CONNECTIONS_MAX:
                        return False
                    outer._serving.add(request)
                    return True

            def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
                super().shutdown_request(request)
                with outer._lock:
                    outer._serving.discard(request)

        self.answer = answer
        self._lock = threading.Lock()
        self._serving: set[socket.socket] = set()
        self._asked: queue.SimpleQueue[AdminRequest] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.httpd = Server((host, port), Handler)
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, args=(SERVE_POLL_S,), name="adminserver", daemon=True
        )
        self._thread.start()

    def fileno(self) -> int:
        """Readable when a request waits for its answer."""
        return self._wake_r

    def handle(self) -> None:
        """Answer every request waiting now."""
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                request = self._asked.get_nowait()
            except queue.Empty:
                return
            try:
                self.answer(request)
            except Exception:  # noqa: BLE001 - a failed command answers 500; the loop goes on
                log.exception("admin command %s failed", request.command)
                request.status, request.body = 500, json.dumps({"error": "the command failed"}).encode()
            finally:
                request.answered.set()

    def _get(self, handler: BaseHTTPRequestHandler) -> None:
        """On an HTTP thread: hand the request to the loop, wait for its answer, send it."""
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
        self._asked.put(request)
        try:
            os.write(self._wake_w, b"!")
        except BlockingIOError:
            pass  # the pipe is full of wake-ups already
        except OSError:  # closed: the node is stopping
            return
        if not request.answered.wait(ANSWER_TIMEOUT_S):
            self._reply(handler, 503, json.dumps({"error": "the server did not answer in time"}).encode())
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

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        os.close(self._wake_r)
        os.close(self._wake_w)


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
