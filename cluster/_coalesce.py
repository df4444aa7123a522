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
# ...and as long as this much a connection whose reads the node answered in the last whole
# window (ACTIVE_WINDOW_MS) or this one, never shorter than the short nap nor longer than
# coalesce_pipelined_us: no longer than a round of two reads from each of them takes a busy
# node (about 10 CPU-µs a read here), so no client waits longer than its share would make it
# wait anyway. Clients that wait for replies before they send more get no more reads through a
# nap than they keep in flight: a flat 1 ms cut a lone client that pipelines five reads to a
# quarter of its reads/s.
PIPELINED_NAP_PER_CONNECTION_MS = 0.02
ACTIVE_WINDOW_MS = 10.0
# ...or, when the clients pace themselves, up to this share of the time between two answers
# to a connection (on the whole, in the last whole window): their next reads would wait that
# long in the client anyway, so a nap that short costs them little, and the reads it gathers
# are answered with fewer turns and fewer wake-ups of their clients. They pace themselves
# when fewer than half of the answers in that window went to a connection answered in the
# turn before too: one that is answered turn after turn waits on the node, and every nap
# would be added to its cycle (a lone client that pipelines five reads).
SELF_PACED_SHARE = 0.25
# The longer nap only when the node has taken no write (a client's, or any peer message) for
# this long, and no log sync is running: it would hold up their commit (a follower's ack, a
# leader's commit, the sync) and every read a session queued behind one of them.
WRITES_QUIET_MS = 10.0


class Coalescer:
    """The nap rule of one node's loop: coalesce_us after a busy turn of plain reads, and
    longer, up to pipelined_us, after one whose reads came pipelined while no write is under
    way; coalesce_us 0 turns both off. The node tells `answered` each connection whose reads
    it answered natively. Counts the naps in `stats`."""

    def __init__(self, coalesce_us: int, pipelined_us: int, stats: LoopStats) -> None:
        self.short_ms = coalesce_us / 1000
        self.long_ms = max(coalesce_us, pipelined_us) / 1000
        self.stats = stats
        self.wrote_ms = float("-inf")  # when a turn last took a write or a peer message
        self._conns: set[object] = set()  # connections whose reads were answered in this window
        self._active = 0  # how many there were in the last whole window
        self._window_ends_ms = float("-inf")
        self._this_turn: set[object] = set()  # the connections answered in this turn...
        self._last_turn: set[object] = set()  # ...and in the one before
        self._answers = self._repeats = 0  # in this window: answers, and those to a connection
        # answered in the turn before too
        self._interval_ms = 0.0  # between two answers to a connection, in the last whole
        # window, when most of its answers went to self-paced connections (else 0)

    def answered(self, conn: object) -> None:
        """The node answered reads of `conn` in this turn."""
        self._this_turn.add(conn)

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
        if began_ms >= self._window_ends_ms:
            self._active = len(self._conns)
            lasted_ms = began_ms - (self._window_ends_ms - ACTIVE_WINDOW_MS)  # inf: the first
            self_paced = 2 * self._repeats < self._answers and lasted_ms < float("inf")
            self._interval_ms = lasted_ms * self._active / self._answers if self_paced else 0.0
            self._window_ends_ms = began_ms + ACTIVE_WINDOW_MS
            self._answers = self._repeats = 0
            self._conns.clear()
        answered = self._this_turn
        if answered:
            self._conns |= answered
            self._answers += len(answered)
            self._repeats += len(answered & self._last_turn)
        self._last_turn, self._this_turn = answered, self._last_turn
        self._this_turn.clear()
        if not (found_waiting and self.short_ms and reads_only and taken >= COALESCE_READS_MIN):
            return 0.0
        pipelined = (
            taken >= PIPELINED_READS_MIN * runs
            and began_ms - self.wrote_ms >= WRITES_QUIET_MS
            and not syncing
        )
        self.stats.naps += 1
        if not pipelined:
            return began_ms + self.short_ms
        active = max(self._active, len(self._conns))
        nap_ms = max(PIPELINED_NAP_PER_CONNECTION_MS * active, SELF_PACED_SHARE * self._interval_ms)
        nap_ms = min(self.long_ms, max(self.short_ms, nap_ms))
        self.stats.pipelined_naps += nap_ms > self.short_ms
        return began_ms + nap_ms
