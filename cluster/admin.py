"""Admin commands over ZeroMQ: ZooKeeper's four-letter words (ruok, srvr, stat, mntr, cons,
wchs, conf, ...) sent as one 4-byte frame to a node's client endpoint, answered in text.

    python -m cluster.admin tcp://127.0.0.1:2181 mntr
"""

from __future__ import annotations

import sys

import zmq

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


def query(
    endpoint: str, command: str, timeout_ms: int = 1000, context: zmq.Context[zmq.Socket[bytes]] | None = None
) -> str | None:
    """Send one four-letter word; the node's text answer, or None if it did not answer in time."""
    if command not in COMMANDS:
        raise ValueError(f"unknown admin command {command!r}; one of {', '.join(COMMANDS)}")
    ctx = context or zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        sock.send(command.encode("ascii"))
        if not sock.poll(timeout_ms, zmq.POLLIN):
            return None
        answer: bytes = sock.recv()
        return answer.decode("utf-8", "replace")
    finally:
        sock.close()


def parse_mntr(text: str) -> dict[str, str]:
    """mntr's `key<TAB>value` lines as a dict."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("\t")
        if sep:
            out[key] = value
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: python -m cluster.admin <endpoint> <{'|'.join(COMMANDS)}>", file=sys.stderr)
        return 2
    answer = query(argv[0], argv[1])
    if answer is None:
        print(f"no answer from {argv[0]}", file=sys.stderr)
        return 1
    print(answer, end="" if answer.endswith("\n") else "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
