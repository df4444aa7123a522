"""Progress of a long run on a terminal: one line rewritten in place (elapsed time, counts so
far), nothing at all when stderr is not a terminal or CI is set, so CI logs stay readable."""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO


class Progress:
    """`update(ops=1200, faults=3)` at any rate; the line is redrawn at most every `every_s`."""

    def __init__(self, label: str, total_s: float | None = None, out: TextIO | None = None,
                 every_s: float = 0.5, enabled: bool | None = None) -> None:  # fmt: skip
        self.label, self.total_s, self.every_s = label, total_s, every_s
        self.out = out if out is not None else sys.stderr
        if enabled is None:
            enabled = self.out.isatty() and not os.environ.get("CI")
        self.enabled = enabled
        self.started = time.monotonic()
        self._drawn = 0.0
        self._width = 0

    def line(self, **counts: object) -> str:
        elapsed = time.monotonic() - self.started
        of = f"/{self.total_s:.0f}s" if self.total_s else "s"
        parts = [f"{self.label}: {elapsed:.0f}{of}"] + [
            f"{k.replace('_', ' ')} {v}" for k, v in counts.items()
        ]
        return ", ".join(parts)

    def update(self, force: bool = False, **counts: object) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._drawn < self.every_s:
            return
        self._drawn = now
        text = self.line(**counts)
        self.out.write("\r" + text.ljust(self._width))
        self.out.flush()
        self._width = len(text)

    def done(self) -> None:
        """Clear the line so that what is printed next starts clean."""
        if self.enabled and self._width:
            self.out.write("\r" + " " * self._width + "\r")
            self.out.flush()
            self._width = 0
