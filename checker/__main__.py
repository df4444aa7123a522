"""Check a recorded history from the command line.

    python -m checker HISTORY.jsonl [--all-reads] [--initial /r/0=0 ...]

Prints a table of the checks and the counterexamples. Exit status: 0 when every check passes,
1 on any violation, 2 when the history cannot be read, 3 when nothing was violated but some check
could not decide (its search ran out of steps).
"""

from __future__ import annotations

import argparse
import sys

from checker._all import check_all
from checker.history import HistoryError, load

EXIT_OK, EXIT_VIOLATION, EXIT_UNREADABLE, EXIT_UNDECIDED = 0, 1, 2, 3


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m checker", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("history", help="a JSON-lines history (see checker/history.py for the fields)")
    p.add_argument(
        "--all-reads", action="store_true", help="every read must be linearizable, not only synced ones"
    )
    p.add_argument("--initial", action="append", default=[], metavar="KEY=VALUE",
                   help="a register's value before the history (repeatable)")  # fmt: skip
    p.add_argument("--examples", type=int, default=3, help="counterexamples shown per check (default 3)")
    return p.parse_args(argv)


def parse_initial(pairs: list[str]) -> dict[str, str]:
    initial = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise HistoryError(f"--initial takes KEY=VALUE: {pair!r}")
        initial[key] = value
    return initial


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        initial = parse_initial(args.initial)
        history = load(args.history)
    except HistoryError as e:
        print(f"checker: {e}", file=sys.stderr)
        return EXIT_UNREADABLE
    report = check_all(history, initial=initial or None, all_reads=args.all_reads)
    print(report.text(args.examples))
    if report.violated:
        return EXIT_VIOLATION
    return EXIT_OK if report.ok else EXIT_UNDECIDED


if __name__ == "__main__":
    sys.exit(main())
