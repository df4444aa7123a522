"""Peer traffic through shared memory on one host (`shm://` peer endpoints): one native ring
(native.ShmRing) per direction per pair of servers, and one named FIFO beside each ring that
wakes its reader and tells it at once when its writer's process is gone.

A server's peer endpoint `shm:///<run>/<id>.peer` names its inbox. For each other server S it
makes the ring `/dev/shm/zkpy-<digest of the endpoint>.from<S>` (so two ensembles on one host
never share a file) and the FIFO `<run>/<id>.peer.from<S>`, and reads both; S attaches as the
ring's one writer (an flock) and holds the FIFO open for writing for as long as it lives.

- Wake-up: the reader blocks in the node loop's poll on its FIFOs; a writer writes one byte to
  the FIFO only when the reader said, in the ring's header, that it is going to sleep.
- Death: when a writer's process exits, kill -9 included, the kernel closes its end of the FIFO
  and the reader reads end-of-file: the peer is lost, as the ZeroMQ socket monitor reports it.
  What the dead writer left in the ring is dropped; a restarted writer attaches with a new
  generation, and records of an older one are never delivered.
- A restarted reader marks its old rings abandoned and makes new ones and new FIFOs; writers
  see the mark on their next send and attach again. Messages in flight across either restart
  are lost, which Zab survives (it notices the gap or the silence and resynchronises).
- A message of SPILL_BYTES_MIN or more (a SNAP or a long DIFF) does not go through the ring:
  the writer puts it in a file beside the ring and sends its name; the reader reads and
  deletes it.
- A full ring (or SPILLS_MAX spills waiting) holds the message in the writer's memory, and the
  ones after it behind it, as ZeroMQ queues what its socket cannot take yet; they go in order
  as the reader makes room (the loop polls every millisecond while any wait). Only past
  HELD_BYTES_MAX or HELD_MESSAGES_MAX held for one peer is a message dropped. (Dropping at once
  lost forwarded writes: a client writing 1 MB znodes through a follower, 64 in flight, waited
  for replies that never came until its session expired.)
"""

from __future__ import annotations

import errno
import glob
import hashlib
import logging
import os
import stat
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import native
from cluster.config import EnsembleConfig
from native._pyshm import ShmRing, abandon  # the type; native.ShmRing is the implementation in use
from zkcore import RemoteError

log = logging.getLogger("zkpy.transport")
SHM_DIR: Final = "/dev/shm"
RING_BYTES: Final = 8 << 20  # per direction per pair: 48 MiB for 3 servers, 160 MiB for 5
SPILL_BYTES_MIN: Final = RING_BYTES // 4
SPILLS_MAX: Final = 4  # spill files one writer keeps waiting for a reader; beyond, hold
HELD_BYTES_MAX: Final = 256 << 20  # per peer, what a full ring holds back; beyond, drop
HELD_MESSAGES_MAX: Final = 100_000
ATTACH_RETRY_S: Final = 0.02
RECV_BATCH_MAX: Final = 1000
DRAIN_BYTES: Final = 4096


def endpoint_path(endpoint: str) -> str:
    """The inbox path of a `shm://` endpoint."""
    assert endpoint.startswith("shm://"), endpoint
    return endpoint[len("shm://") :]


def ring_prefix(endpoint: str) -> str:
    """/dev/shm/zkpy-<digest>: the rings of the inbox `endpoint` start with this."""
    digest = hashlib.sha256(endpoint_path(endpoint).encode()).hexdigest()[:16]
    return os.path.join(SHM_DIR, f"zkpy-{digest}")


def ring_path(endpoint: str, source: int) -> str:
    return f"{ring_prefix(endpoint)}.from{source}"


def fifo_path(endpoint: str, source: int) -> str:
    return f"{endpoint_path(endpoint)}.from{source}"


def remove_rings(conf: EnsembleConfig) -> list[str]:
    """Delete the ensemble's files in /dev/shm (what nodes killed with -9 left there)."""
    removed = []
    for server in conf.servers.values():
        if server.peer.startswith("shm://"):
            for path in glob.glob(f"{glob.escape(ring_prefix(server.peer))}.from*"):
                try:
                    os.unlink(path)
                    removed.append(path)
                except FileNotFoundError:
                    pass
    return removed


def _remove_spills(ring: str) -> None:
    for path in glob.glob(f"{glob.escape(ring)}.spill.*"):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _open_fifo(path: str) -> int:
    """A fresh FIFO at path, open for reading (non-blocking): no writer of a previous one is
    connected to it."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    os.mkfifo(path, 0o600)
    return os.open(path, os.O_RDONLY | os.O_NONBLOCK)


# A message waiting for room in a ring: its parts, or the path of the spill file it was
# written to, whose name the ring had no room for.
_Held = tuple[bytes, ...] | str


def _held_bytes(item: _Held) -> int:
    return 0 if isinstance(item, str) else sum(map(len, item))  # a spill file is not in memory


@dataclass
class _Inbox:
    source: int
    ring: ShmRing
    fifo: str
    fd: int
    # ring.sleep, ring.wake and ring.pending_bytes, as the loop calls them each turn (see
    # ShmRing.reader_calls); the ring is this inbox's for the transport's life
    sleep: Callable[[], object] = field(init=False)
    wake: Callable[[], object] = field(init=False)
    pending: Callable[[], int] = field(init=False)

    def __post_init__(self) -> None:
        self.sleep, self.wake, self.pending = self.ring.reader_calls()


@dataclass
class _Outbox:
    target: int
    ring_path: str
    fifo: str
    ring: ShmRing | None = None
    wake_fd: int = -1
    attach_due_s: float = 0.0
    spill_count: int = 0
    spills: deque[str] = field(default_factory=deque)
    held: deque[_Held] = field(default_factory=deque)  # waiting for room, in order
    held_bytes: int = 0


class ShmPeerTransport:
    """The same face as PeerTransport: send, receive, lost, the counters, close."""

    def __init__(self, conf: EnsembleConfig, server_id: int) -> None:
        self.server_id = server_id
        me = conf.servers[server_id].peer
        os.makedirs(os.path.dirname(endpoint_path(me)) or ".", exist_ok=True)
        self.inboxes: dict[int, _Inbox] = {}
        self.outboxes: dict[int, _Outbox] = {}
        for sid in sorted(conf.servers):
            if sid == server_id:
                continue
            path = ring_path(me, sid)
            ring = native.ShmRing.create(path, RING_BYTES)  # before the FIFO: see attach()
            _remove_spills(path)
            fifo = fifo_path(me, sid)
            self.inboxes[sid] = _Inbox(sid, ring, fifo, _open_fifo(fifo))
        for sid, server in sorted(conf.servers.items()):
            if sid != server_id:
                peer = server.peer
                self.outboxes[sid] = _Outbox(sid, ring_path(peer, server_id), fifo_path(peer, server_id))
        self.by_fd = {box.fd: box for box in self.inboxes.values()}
        self.sent = self.dropped = self.received = 0
        self._holding = False
        self._lost: list[int] = []
        self.tick()

    # --- the node loop's poll ---------------------------------------------------------------

    def poll_targets(self) -> list[int]:
        return list(self.by_fd)

    def holding(self) -> bool:
        """Some message waits for room in a peer's ring: the loop should look again soon."""
        return self._holding

    def before_poll(self) -> bool:
        """Send what waits for room; then each reader says it is going to sleep; True if a
        message came meanwhile."""
        if self._holding:
            self._send_held()
        waiting: object = False
        for box in self.inboxes.values():
            waiting = box.sleep() or waiting
        return bool(waiting)

    def after_poll(self) -> None:
        for box in self.inboxes.values():
            box.wake()

    def tick(self) -> None:
        """Attach to the peers not attached yet (they start, or restart, after us)."""
        now = time.monotonic()
        for box in self.outboxes.values():
            if box.ring is None and now >= box.attach_due_s:
                self._attach(box, now)

    # --- receiving --------------------------------------------------------------------------

    def receive(self, events: dict[object, int]) -> list[bytes]:
        """Every message waiting now, up to RECV_BATCH_MAX; notes the writers that are gone."""
        for fd in self.by_fd:
            if fd in events and self._drain(fd):
                self._lost.append(self.by_fd[fd].source)
        frames: list[bytes] = []
        for box in self.inboxes.values():
            if not box.pending():  # most inboxes, most turns
                continue
            if len(frames) >= RECV_BATCH_MAX:
                break
            status, records, skipped = box.ring.pop(RECV_BATCH_MAX - len(frames))
            if status == ShmRing.CORRUPT:
                log.warning("ring from %d was corrupt: dropped what it held", box.source)
            if skipped:
                log.info(
                    "dropped %d messages a previous incarnation of %d left in its ring", skipped, box.source
                )
            for payload, flags in records:
                frame = self._unspill(box, payload) if flags & ShmRing.FLAG_SPILL else payload
                if frame is not None:
                    frames.append(frame)
        for sid in self._lost:
            self._writer_gone(self.inboxes[sid])
        self.received += len(frames)
        return frames

    def lost(self, events: dict[object, int]) -> list[int]:
        """The peers whose process is gone, found by receive()."""
        lost, self._lost = self._lost, []
        return lost

    def _drain(self, fd: int) -> bool:
        """Read the wake-up bytes; True at end-of-file: no writer holds the FIFO any more. A
        short read emptied it (a byte written after that polls readable again), so there is no
        second read to learn so from an EAGAIN, each wake-up."""
        while True:
            try:
                chunk = os.read(fd, DRAIN_BYTES)
            except BlockingIOError:
                return False
            if not chunk:
                return True
            if len(chunk) < DRAIN_BYTES:
                return False

    def _writer_gone(self, box: _Inbox) -> None:
        """Drop what the dead writer left, and reopen the FIFO under the same fd number, so that
        end-of-file is not reported again until a new writer goes (an epoll set does not follow
        the new file: the node registers the fd again when lost() names the peer). Its process
        is gone, so its inbox is too: attach again when it is back."""
        self._detach(self.outboxes[box.source])
        box.ring.discard()
        _remove_spills(box.ring.path)
        fresh = os.open(box.fifo, os.O_RDONLY | os.O_NONBLOCK)
        os.dup2(fresh, box.fd)
        os.close(fresh)

    def _unspill(self, box: _Inbox, name: bytes) -> bytes | None:
        suffix = name.decode("ascii", "replace")
        if not suffix.replace(".", "").isdigit():
            log.warning("dropping a spill record from %d with a bad name: %r", box.source, name[:40])
            return None
        path = f"{box.ring.path}.spill.{suffix}"
        try:
            with open(path, "rb") as f:
                frame = f.read()
            os.unlink(path)
        except OSError as e:
            log.warning("dropping a spilled message from %d: %s", box.source, e)
            return None
        return frame

    # --- sending ----------------------------------------------------------------------------

    def send(self, target: int, *parts: bytes) -> None:
        """One message, given in one or more parts that are its bytes one after another (a big
        one is spilled part by part, never joined into one more copy)."""
        box = self.outboxes.get(target)
        if box is None or (box.ring is None and not self._attach(box, time.monotonic())):
            self.dropped += 1
            return
        if box.held:
            self._hold(box, parts)  # behind what already waits: messages keep their order
            return
        item: _Held = parts
        if sum(map(len, parts)) < SPILL_BYTES_MIN:  # most messages: as _push, without its call
            assert box.ring is not None
            status = box.ring.push(b"".join(parts), 0, box.wake_fd)  # one part: no copy
        else:
            status, item = self._push(box, parts)
        if status == ShmRing.OK:
            self.sent += 1
        elif status == ShmRing.FULL:
            self._hold(box, item)
        else:
            self._failed(box, status)

    def _push(self, box: _Outbox, item: _Held) -> tuple[int, _Held]:
        """Put one message in the ring, a big one through a spill file (an item that is a str is
        a spill file written earlier, whose name waits for room); (status, what to hold when
        the status is FULL: the spill file, once written)."""
        ring = box.ring
        assert ring is not None
        if isinstance(item, str):
            status = ring.push(item.rpartition(".spill.")[2].encode(), ShmRing.FLAG_SPILL, box.wake_fd)
            if status == ShmRing.OK:
                box.spills.append(item)
            elif status != ShmRing.FULL:
                Path(item).unlink(missing_ok=True)
            return status, item
        if sum(map(len, item)) < SPILL_BYTES_MIN:
            return ring.push(b"".join(item), 0, box.wake_fd), item  # one part: no copy
        while box.spills and not os.path.exists(box.spills[0]):
            box.spills.popleft()
        if len(box.spills) >= SPILLS_MAX:
            return ShmRing.FULL, item
        box.spill_count += 1
        path = f"{box.ring_path}.spill.{ring.generation}.{box.spill_count}"
        with open(path, "wb") as f:
            f.writelines(item)
        return self._push(box, path)

    def _hold(self, box: _Outbox, item: _Held) -> None:
        size = _held_bytes(item)
        if len(box.held) >= HELD_MESSAGES_MAX or box.held_bytes + size > HELD_BYTES_MAX:
            self.dropped += 1  # Zab makes up for it: the peer finds the gap, or is sent it again
            if isinstance(item, str):
                Path(item).unlink(missing_ok=True)
            return
        box.held.append(item)
        box.held_bytes += size
        self._holding = True

    def _send_held(self) -> None:
        self._holding = False
        for box in self.outboxes.values():
            while box.held and box.ring is not None:
                head = box.held[0]
                status, item = self._push(box, head)
                if status == ShmRing.FULL:
                    if item is not head:  # its spill file is written now: hold just the name
                        box.held[0] = item
                        box.held_bytes -= _held_bytes(head)
                    self._holding = True
                    break
                box.held.popleft()
                box.held_bytes -= _held_bytes(head)
                if status == ShmRing.OK:
                    self.sent += 1
                else:
                    self._failed(box, status)

    def _failed(self, box: _Outbox, status: int) -> None:
        self.dropped += 1
        if status in (ShmRing.ABANDONED, ShmRing.READER_GONE):
            # Its successor syncs afresh: what waits for this reader goes too.
            log.info("peer %d replaced its ring or is gone: attaching again", box.target)
            self._drop_held(box)
            self._detach(box)

    def _drop_held(self, box: _Outbox) -> None:
        """Forget what waits for this peer, and the spill files written for it: announced to
        nobody, no reader would ever remove them."""
        self.dropped += len(box.held)
        for item in box.held:
            if isinstance(item, str):
                Path(item).unlink(missing_ok=True)
        box.held.clear()
        box.held_bytes = 0

    def _attach(self, box: _Outbox, now: float) -> bool:
        """Open the target's FIFO for writing, then its ring. The FIFO opens only once the
        target reads it, and the target makes its rings before its FIFOs, so the ring found
        then is the live one."""
        if now < box.attach_due_s:
            return False
        box.attach_due_s = now + ATTACH_RETRY_S
        try:
            wake_fd = os.open(box.fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno not in (errno.ENXIO, errno.ENOENT):  # ENXIO: no reader yet
                log.warning("cannot open %s: %s", box.fifo, e)
            return False
        try:
            if not stat.S_ISFIFO(os.fstat(wake_fd).st_mode):
                raise RemoteError(f"{box.fifo} is not a FIFO")
            box.ring = native.ShmRing.attach(box.ring_path)
        except (OSError, RemoteError) as e:
            log.warning("cannot attach to the ring of %d: %s", box.target, e)
            os.close(wake_fd)
            return False
        box.wake_fd = wake_fd
        box.spills.clear()
        log.info("attached to the ring of %d (generation %d)", box.target, box.ring.generation)
        return True

    def _detach(self, box: _Outbox) -> None:
        if box.ring is not None:
            box.ring.close()
            box.ring = None
        if box.wake_fd >= 0:
            os.close(box.wake_fd)
            box.wake_fd = -1

    def close(self) -> None:
        for out in self.outboxes.values():
            self._drop_held(out)
            self._detach(out)
        for box in self.inboxes.values():
            box.ring.close()
            abandon(box.ring.path)  # a writer still attached attaches again, to our successor
            for path in (box.ring.path, box.fifo):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
            _remove_spills(box.ring.path)
            os.close(box.fd)
