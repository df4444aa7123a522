"""The nap rule of a busy node's loop (cluster/_coalesce.py), turn by turn, without a clock."""

from __future__ import annotations

from cluster._admin_text import LoopStats
from cluster._coalesce import ACTIVE_WINDOW_MS, WRITES_QUIET_MS, Coalescer


def turn(
    c: Coalescer,
    at_ms: float,
    taken: int,
    streamed: int | None = None,
    runs: int = 1,
    conns: int = 50,
    waiting: bool = True,
    peers: bool = False,
    syncing: bool = False,
) -> int:
    """The nap after a turn that began at `at_ms` and answered the reads of connections 0 to
    `conns` - 1 (as the node tells), in microseconds after its start (0: none)."""
    for conn in range(conns):
        c.answered(conn)
    until = c.nap_until_ms(
        at_ms, waiting, taken, taken if streamed is None else streamed, runs, peers, syncing
    )
    return round((until - at_ms) * 1000) if until else 0


def test_a_busy_turn_of_reads_naps_longer_when_they_came_pipelined() -> None:
    stats = LoopStats()
    c = Coalescer(100, 1000, stats)
    assert turn(c, 0, taken=10, runs=10) == 100  # ten clients awaiting their replies
    assert turn(c, 1, taken=10, runs=5) == 1000  # two a connection
    assert turn(c, 2, taken=10, runs=6) == 100  # fewer than two a connection on the whole
    assert turn(c, 3, taken=1) == 0  # one read
    assert turn(c, 4, taken=10, runs=1, waiting=False) == 0  # the poll had to wait for them
    assert turn(c, 5, taken=0) == 0
    assert (stats.naps, stats.pipelined_naps) == (3, 1)


def test_the_longer_nap_grows_with_the_connections_that_keep_the_node_busy() -> None:
    """20 µs a connection answered in this window or the last whole one, from the short nap
    up to the longest: a lone client that pipelines is not held up by more than the short."""
    stats = LoopStats()
    c = Coalescer(100, 1000, stats)
    assert turn(c, 0, taken=5, conns=1) == 100
    assert stats.pipelined_naps == 0  # no longer than the short one
    assert turn(c, 1, taken=10, conns=8) == 160
    assert turn(c, 2, taken=10, conns=20) == 400
    assert turn(c, 3, taken=10, conns=100) == 1000
    assert turn(c, ACTIVE_WINDOW_MS, taken=10, conns=0) == 1000  # the last window's count...
    assert turn(c, 2 * ACTIVE_WINDOW_MS, taken=10, conns=0) == 100  # ...for one window
    assert stats.pipelined_naps == 4


def self_paced(c: Coalescer, start_ms: float, every: int, conns: int = 40, turns: int = 20) -> list[int]:
    """Turns 0.5 ms apart (a busy node's turn and nap) from `start_ms`, each answering the
    reads of `every` connections that were not answered in the turn before, in rotation: each
    of `conns` connections is answered once in conns / every turns. Their naps."""
    naps = []
    for k in range(turns):
        for conn in range(k * every, (k + 1) * every):
            c.answered(conn % conns)
        naps.append(turn(c, start_ms + k * 0.5, taken=2 * every, runs=every, conns=0))
    return naps


def test_clients_that_pace_themselves_get_a_quarter_of_the_time_between_their_answers() -> None:
    """Connections answered once in eight turns of 0.5 ms (five a turn, forty in all): 4 ms
    between two answers to one, on the whole, so in the next window the nap is 1 ms, more than
    20 µs a connection (800 µs), up to the longest; connections answered turn after turn wait
    on the node, and keep 20 µs a connection."""
    c = Coalescer(100, 2000, LoopStats())
    assert self_paced(c, 0, every=5)[-8:] == [800] * 8  # the first window: their pace unknown
    assert set(self_paced(c, 10, every=5)) == {1000}
    assert set(self_paced(Coalescer(100, 900, LoopStats()), 0, every=5, turns=40)[20:]) == {900}
    # The same 40 connections every turn: the node sets their pace. The window after shows it.
    assert {turn(c, 20 + k * 0.5, taken=80, runs=40, conns=40) for k in range(20)} == {1000}
    assert {turn(c, 30 + k * 0.5, taken=80, runs=40, conns=40) for k in range(20)} == {800}
    # A lone client answered in every turn keeps the short nap, however slow its cycle.
    c = Coalescer(100, 2000, LoopStats())
    assert {turn(c, k * 3.0, taken=5, conns=1) for k in range(10)} == {100}


def test_no_nap_after_a_write_and_no_long_one_while_writes_are_under_way() -> None:
    stats = LoopStats()
    c = Coalescer(100, 1000, stats)
    assert turn(c, 0, taken=10, streamed=9, runs=1) == 0  # it took a write
    quiet = WRITES_QUIET_MS
    assert turn(c, quiet - 1, taken=10, runs=1) == 100  # reads only, but the write is recent
    assert turn(c, quiet, taken=10, runs=1) == 1000
    assert turn(c, 20, taken=10, runs=1, peers=True) == 100  # a peer message: a write under way
    assert turn(c, 20 + quiet - 0.5, taken=10, runs=1) == 100
    assert turn(c, 20 + quiet, taken=10, runs=1, syncing=True) == 100  # the log sync runs
    assert turn(c, 20 + quiet, taken=10, runs=1) == 1000
    assert (stats.naps, stats.pipelined_naps) == (6, 2)


def test_the_windows_as_configured() -> None:
    assert turn(Coalescer(0, 1000, LoopStats()), 0, taken=10, runs=1) == 0  # 0: no naps at all
    assert turn(Coalescer(300, 0, LoopStats()), 0, taken=10, runs=1) == 300  # never shorter
    assert turn(Coalescer(100, 0, LoopStats()), 0, taken=10, runs=10) == 100
