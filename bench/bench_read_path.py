"""Read path micro-benchmark: read_batch answering 100 getData requests for 100-byte znodes in a
100k-znode tree, the pure-Python twin against the C module (group "read_path").

Run: python -m pytest bench/bench_read_path.py --benchmark-only -q
"""

from __future__ import annotations

import random
import struct
from typing import Any

import pytest

import native

ZNODES = 100_000
PARENTS = 100
DATA_BYTES = 100
BATCH_REQUESTS = 100
GET_DATA = 4
ZXID = 0x5_0000_0001

_COMPILED = native.compiled()


def _tree_paths() -> list[str]:
    """The root, PARENTS folders, and leaves spread over them: ZNODES paths, parents first."""
    folders = [f"/folder{i}" for i in range(PARENTS)]
    leaves = [f"{folders[i % PARENTS]}/znode{i:06d}" for i in range(ZNODES - 1 - PARENTS)]
    return ["/", *folders, *leaves]


def _build(cls: Any, paths: list[str]) -> Any:
    rng = random.Random(1)
    index = cls()
    for path in paths:
        index.put(path, rng.randbytes(DATA_BYTES), rng.randbytes(68), True)
    assert len(index) == ZNODES
    return index


@pytest.fixture(scope="module")
def paths() -> list[str]:
    return _tree_paths()


@pytest.fixture(scope="module")
def batch(paths: list[str]) -> bytes:
    """BATCH_REQUESTS getData frames for existing leaves, picked at random."""
    rng = random.Random(2)
    frames = []
    for xid, path in enumerate(rng.sample(paths[1 + PARENTS :], BATCH_REQUESTS)):
        raw = path.encode()
        body = struct.pack(">iii", xid, GET_DATA, len(raw)) + raw + b"\x00"
        frames.append(struct.pack(">i", len(body)) + body)
    return b"".join(frames)


@pytest.fixture(scope="module")
def twin_index(paths: list[str]) -> Any:
    return _build(native.python_twin().PathIndex, paths)


@pytest.fixture(scope="module")
def native_index(paths: list[str]) -> Any:
    if _COMPILED is None:
        pytest.skip("native extension not built")
    return _build(_COMPILED.PathIndex, paths)


@pytest.mark.benchmark(group="read_path")
def test_read_batch_twin(benchmark: Any, twin_index: Any, batch: bytes) -> None:
    replies, status = benchmark(twin_index.read_batch, batch, ZXID)
    assert status == bytes(BATCH_REQUESTS)
    assert len(replies) == BATCH_REQUESTS * (4 + 16 + 4 + DATA_BYTES + 68)


@pytest.mark.benchmark(group="read_path")
def test_read_batch_native(benchmark: Any, native_index: Any, twin_index: Any, batch: bytes) -> None:
    result = benchmark(native_index.read_batch, batch, ZXID)
    assert result == twin_index.read_batch(batch, ZXID)
