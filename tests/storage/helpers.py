"""Helpers shared by the storage tests: payloads that name their zxid, and file surgery."""

from __future__ import annotations

import os
from pathlib import Path


def payload_for(zxid: int, size: int = 40) -> bytes:
    """A payload that names its zxid, so a record read back in the wrong place shows."""
    stem = b"txn-%x-" % zxid
    return (stem * (size // len(stem) + 1))[:size]


def entries_for(zxids: range | list[int], size: int = 40) -> list[tuple[int, bytes]]:
    return [(zxid, payload_for(zxid, size)) for zxid in zxids]


def flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ 0x5A]))


def cut_file(path: Path, size: int) -> None:
    os.truncate(path, size)


def segment_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name.startswith("log."))
