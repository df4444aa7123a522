"""Admin commands over ZeroMQ: ZooKeeper's four-letter words. They live client side
(zkclient.admin); this module keeps the old name working.

    python -m cluster.admin tcp://127.0.0.1:2181 mntr
"""

from __future__ import annotations

import sys

from zkclient.admin import COMMANDS, check_command, endpoint_of, parse_mntr, query
from zkclient.admin import main as _main

__all__ = ["COMMANDS", "check_command", "endpoint_of", "main", "parse_mntr", "query"]


def main(argv: list[str] | None = None) -> int:
    return _main(argv, prog="python -m cluster.admin")


if __name__ == "__main__":
    sys.exit(main())
