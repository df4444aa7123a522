"""Admin words over ZeroMQ: ZooKeeper's four-letter words (ruok, srvr, stat, mntr, cons, wchs,
conf, ...) sent as one 4-byte frame to a server's client endpoint and answered in text. Client
side, so the client, its CLI and the launcher share one implementation without the server.
A person's `host:port` may also be a port for ZooKeeper's own clients (ZooKeeper's, or a zkpy
node's, 2181 on a local ensemble): the word goes there as ZooKeeper's four-letter words do,
in plain text over TCP.

    zkpy-admin 127.0.0.1:2181 mntr      (or python -m cluster.admin, from a checkout)
"""

from __future__ import annotations

import socket
import sys

import zmq

from zkcore._errors import BadArgumentsError

COMMANDS = (
    "ruok",
    "srvr",
    "stat",
    "mntr",
    "cons",
    "wchs",
    "wchc",
    "wchp",
    "dump",
    "crst",
    "srst",
    "conf",
    "envi",
    "isro",
    "dirs",
)


def endpoint_of(address: str) -> str:
    """A ZeroMQ endpoint for one server: `tcp://h:p` and `ipc://path` as they are, a bare
    `host:port` (or `host`, port 2181) as tcp, as in a connect string."""
    from zkclient.hosts import parse_hosts

    if "," in address:
        raise BadArgumentsError(f"one server, not a connect string: {address!r}")
    return parse_hosts(address).endpoints[0]


def check_command(command: str | bytes) -> str:
    word = command.decode("ascii", "replace") if isinstance(command, bytes) else command
    if word not in COMMANDS:
        raise BadArgumentsError(f"unknown admin word {word!r}; one of {', '.join(COMMANDS)}")
    return word


def query(
    endpoint: str,
    command: str | bytes,
    timeout_ms: int = 1000,
    context: zmq.Context[zmq.Socket[bytes]] | None = None,
) -> str | None:
    """Send one four-letter word; the server's text answer, or None if it did not answer in time.
    BadArgumentsError for an unknown word or an endpoint ZeroMQ cannot use."""
    word = check_command(command)
    ctx = context or zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        try:
            sock.connect(endpoint)
        except zmq.ZMQError as e:
            raise BadArgumentsError(f"cannot use endpoint {endpoint!r}: {e.strerror}") from None
        sock.send(word.encode("ascii"))
        if not sock.poll(timeout_ms, zmq.POLLIN):
            return None
        answer: bytes = sock.recv()
        return answer.decode("utf-8", "replace")
    finally:
        sock.close()


ZMTP_GREETING_FIRST = b"\xff"  # the first byte a ZeroMQ peer sends on a new connection


def over_tcp(host: str, port: int, word: str, timeout_s: float) -> bytes | None:
    """Send a four-letter word over plain TCP, as ZooKeeper's clients send them: the answer up
    to the connection's end, or the first bytes only when they are a ZeroMQ greeting (not a
    ZooKeeper-protocol port: use query()); b"" when nothing came; None when nothing listens."""
    try:
        conn = socket.create_connection((host, port), timeout=timeout_s)
    except OSError:
        return None
    chunks: list[bytes] = []
    with conn:
        try:
            conn.sendall(word.encode("ascii"))
            while chunk := conn.recv(65536):
                chunks.append(chunk)
                if chunks[0][:1] == ZMTP_GREETING_FIRST:
                    break
        except OSError:  # timed out, or reset: what came so far
            pass
    return b"".join(chunks)


def ask(endpoint: str, command: str | bytes, timeout_ms: int = 1000) -> str | None:
    """query() for an address a person gave: a tcp one that answers in plain text is a port for
    ZooKeeper's own clients, and that answer is the answer; else query() over ZeroMQ."""
    word = check_command(command)
    if endpoint.startswith("tcp://"):
        host, _, port = endpoint[len("tcp://") :].rpartition(":")
        answer = over_tcp(host.strip("[]"), int(port), word, timeout_ms / 1000)
        if answer is None:
            return None
        if answer and answer[:1] != ZMTP_GREETING_FIRST:
            return answer.decode("utf-8", "replace")
    return query(endpoint, word, timeout_ms)


def parse_mntr(text: str) -> dict[str, str]:
    """mntr's `key<TAB>value` lines as a dict."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("\t")
        if sep:
            out[key] = value
    return out


def main(argv: list[str] | None = None, prog: str = "zkpy-admin") -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] in ("-h", "--help"):
        print(f"usage: {prog} <server: host:port, tcp://h:p or ipc://path> <{'|'.join(COMMANDS)}>",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        endpoint = endpoint_of(args[0])
        answer = ask(endpoint, args[1])
    except BadArgumentsError as e:
        print(f"{prog.split()[-1]}: {e}", file=sys.stderr)
        return 2
    if answer is None:
        print(f"no answer from {endpoint} within 1 s (is a server running there?)", file=sys.stderr)
        return 1
    print(answer, end="" if answer.endswith("\n") else "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
