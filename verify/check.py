"""Re-check a saved history: `python -m verify.check HISTORY.jsonl`. The same checks a run does
(the `checker` package), with the report and any counterexamples printed; exit status 1 on a
violation, 2 when the file cannot be read."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import checker
from checker.history import HistoryError


def check_file(path: Path) -> tuple[bool, str]:
    """Every check over the history in `path`: (all passed, the printed report)."""
    report = checker.check_all(checker.load(path))
    return report.ok, str(report)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m verify.check",
        description="Re-check a history saved by `python -m verify` (exit 1 on a violation).",
    )
    p.add_argument("history", help="a history.jsonl saved by `python -m verify`")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        ok, text = check_file(Path(args.history))
    except (HistoryError, OSError) as e:
        print(f"verify.check: {e}", file=sys.stderr)
        return 2
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
