"""When a busy node naps after a loop turn, so that the next turn answers more reads at once
(docs/operations.md, "Busy nodes coalesce reads"). The rule alone, without a clock: the node
tells it what a turn took and when, and sleeps until the time it gets back."""

from __future__ import annotations

from cluster._admin_text import LoopStats

# A busy turn answered at least this many reads: one is what a client that awaits each reply
# sends, and on a host its clients share, it can come in before the node has finished the turn
# that answered the last.
COALESCE_READS_MIN = 2
# Its clients pipeline when their connections brought this many reads each on the whole: a
# client that awaits each reply sends one at a time. They get the longer nap.
PIPELINED_READS_MIN = 2
# The longer nap only when the node has taken no write (a client's, or any peer message) for
# this long, and no log sync is running: it would hold up their commit (a follower's ack, a
# leader's commit, the sync) and every read a session queued behind one of them.
WRITES_QUIET_MS = 10.0


class Coalescer:
    """The nap rule of one node's loop: coalesce_us after a busy turn of plain reads, and
    pipelined_us (or coalesce_us, if that is longer) after one whose reads came pipelined
    while no write is under way; coalesce_us 0 turns both off. Counts the naps in `stats`."""

    def __init__(self, coalesce_us: int, pipelined_us: int, stats: LoopStats) -> None:
        self.short_ms = coalesce_us / 1000
        self.long_ms = max(coalesce_us, pipelined_us) / 1000 if coalesce_us else 0.0
        self.stats = stats
        self.wrote_ms = float("-inf")  # when a turn last took a write or a peer message

    def nap_until_ms(
        self,
        began_ms: float,
        found_waiting: bool,
        taken: int,
        streamed: int,
        runs: int,
        peer_messages: bool,
        syncing: bool,
    ) -> float:
        """When the nap after this turn ends (0.0: no nap). The turn began at `began_ms`; its
        poll found its events waiting (Poller.slept false); it took `taken` client requests,
        of which `streamed` plain reads answered natively, in `runs` runs (one per connection
        and batch); it stepped peer messages or not; a log sync is running or not."""
        reads_only = streamed == taken
        if peer_messages or not reads_only:
            self.wrote_ms = began_ms
        if not (found_waiting and self.short_ms and reads_only and taken >= COALESCE_READS_MIN):
            return 0.0
        pipelined = (
            taken >= PIPELINED_READS_MIN * runs
            and began_ms - self.wrote_ms >= WRITES_QUIET_MS
            and not syncing
        )
        self.stats.naps += 1
        self.stats.pipelined_naps += pipelined
        return began_ms + (self.long_ms if pipelined else self.short_ms)
