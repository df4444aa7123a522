"""Ways to break a valid history, one guarantee at a time, for the tests that the checks catch
them. Each returns the broken history and the number of the op it changed or added, or None when
the history has no place for that fault.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

from checker.history import CHANGE_KINDS, Kind, Op, Status, number

Corruption = Callable[[list[Op], random.Random], tuple[list[Op], int] | None]


def _replace(history: list[Op], op: Op, **changes: object) -> tuple[list[Op], int]:
    out = list(history)
    out[op.index] = dataclasses.replace(op, **changes)  # type: ignore[arg-type]
    return out, op.index


def _writes(history: list[Op]) -> list[Op]:
    return [op for op in history if op.ok and op.kind in (Kind.WRITE, Kind.CAS, Kind.CREATE)]


def stale_read(history: list[Op], rng: random.Random) -> tuple[list[Op], int] | None:
    """A read returns a write that another write had replaced before the read started."""
    writes = _writes(history)
    choices = []
    for read in (op for op in history if op.ok and op.kind is Kind.READ):
        done = [w for w in writes if w.key == read.key and w.end < read.start]
        for old in done:
            if any(w.start > old.end for w in done) and old.value != read.value:
                choices.append((read, old))
                break
    if not choices:
        return None
    read, old = rng.choice(choices)
    return _replace(history, read, value=old.value, version=old.version, mzxid=old.zxid)


def lost_own_write(history: list[Op], rng: random.Random) -> tuple[list[Op], int] | None:
    """A client reads a znode it wrote, and sees the value from before its write."""
    writes = _writes(history)
    choices = []
    for read in (op for op in history if op.ok and op.kind is Kind.READ and op.mzxid is not None):
        mine = [w for w in writes if w.client == read.client and w.key == read.key and w.start < read.start]
        if mine and mine[-1].zxid is not None:
            older = [w for w in writes if w.key == read.key and w.zxid is not None and w.zxid < mine[-1].zxid]
            if older:
                choices.append((read, older[-1]))
    if not choices:
        return None
    read, old = rng.choice(choices)
    return _replace(history, read, value=old.value, version=old.version, mzxid=old.zxid)


def read_goes_back(history: list[Op], rng: random.Random) -> tuple[list[Op], int] | None:
    """A client's read shows a state older than one an earlier read of its showed."""
    writes = _writes(history)
    choices = []
    reads = sorted((op for op in history if op.ok and op.kind is Kind.READ), key=lambda op: op.start)
    for n, later in enumerate(reads):
        for earlier in reads[:n]:
            if earlier.client == later.client and earlier.key == later.key and earlier.mzxid is not None:
                older = [
                    w for w in writes if w.key == later.key and w.zxid is not None and w.zxid < earlier.mzxid
                ]
                if older:
                    choices.append((later, older[-1]))
    if not choices:
        return None
    read, old = rng.choice(choices)
    return _replace(history, read, value=old.value, version=old.version, mzxid=old.zxid, zxid=old.zxid)


def swap_zxids(history: list[Op], rng: random.Random) -> tuple[list[Op], int] | None:
    """Two changes by one client trade zxids."""
    changes = [op for op in history if op.ok and op.kind in CHANGE_KINDS and op.zxid is not None]
    pairs = [(a, b) for a in changes for b in changes if a.client == b.client and a.end < b.start]
    if not pairs:
        return None
    first, second = rng.choice(pairs)
    out, _ = _replace(history, first, zxid=second.zxid)
    return _replace(out, second, zxid=first.zxid)


def write_below_read(history: list[Op], rng: random.Random) -> tuple[list[Op], int] | None:
    """A client's change gets a zxid no higher than a state the client had read before."""
    reads = [op for op in history if op.ok and op.kind is Kind.READ and op.zxid is not None]
    choices = []
    for write in (op for op in history if op.ok and op.kind in CHANGE_KINDS and op.zxid is not None):
        seen = [r for r in reads if r.client == write.client and r.start < write.start and r.zxid]
        if seen:
            choices.append((write, seen[-1].zxid))
    if not choices:
        return None
    write, zxid = rng.choice(choices)
    return _replace(history, write, zxid=zxid)


def duplicate_sequential_name(history: list[Op], rng: random.Random) -> tuple[list[Op], int] | None:
    """Two sequential creates get the same name."""
    creates = [op for op in history if op.ok and op.kind is Kind.CREATE_SEQ]
    if len(creates) < 2:
        return None
    first, second = sorted(rng.sample(creates, 2), key=lambda op: op.index)
    return _replace(history, second, path=first.path)


def ephemeral_after_end(history: list[Op], rng: random.Random) -> tuple[list[Op], int] | None:
    """A synced read, after a session's end was acknowledged, still sees its ephemeral."""
    ends = {
        op.session: op for op in history if op.ok and op.kind in (Kind.CLOSE_SESSION, Kind.SESSION_EXPIRED)
    }
    created = [op for op in history if op.ok and op.kind is Kind.CREATE_EPHEMERAL and op.session in ends]
    if not created:
        return None
    create = rng.choice(created)
    end = ends[create.session]
    reader = next(op for op in history if op.session != create.session)
    read = Op(reader.process, Kind.EXISTS, create.created, Status.OK, end.end + 1e-4, end.end + 2e-4,
              session=reader.session, exists=True, owner=create.session, sync=True)  # fmt: skip
    return number([*history, read]), len(history)


def lost_watch_event(history: list[Op], rng: random.Random) -> tuple[list[Op], int] | None:
    """Drop a watch event that a later read of the same session shows the change of."""
    choices = []
    for event in (op for op in history if op.kind is Kind.WATCH_EVENT and op.event == "NodeDataChanged"):
        mine = [op for op in history if op.ok and op.client == event.client and op.key == event.key]
        reads = [op for op in mine if op.kind is Kind.READ]
        watched = [op for op in reads if op.watch and op.end < event.start]
        later = [op for op in reads if op.end >= event.start]
        if watched and later and later[0].mzxid != watched[-1].mzxid:
            others = [op for op in history if op.kind is Kind.WATCH_EVENT and op.client == event.client]
            # No other event of this key between the watching read's start and the later read:
            # one stamped while the watching read was out could be the one for its watch.
            if not [op for op in others if op.key == event.key and op is not event and op.start <= later[0].end
                    and op.start >= watched[-1].start]:  # fmt: skip
                choices.append((event, later[0]))
    if not choices:
        return None
    event, read = rng.choice(choices)
    out = number(op for op in history if op is not event)
    return out, read.index - (read.index > event.index)


CORRUPTIONS: dict[str, Corruption] = {
    "stale_read": stale_read,
    "lost_own_write": lost_own_write,
    "read_goes_back": read_goes_back,
    "swap_zxids": swap_zxids,
    "write_below_read": write_below_read,
    "duplicate_sequential_name": duplicate_sequential_name,
    "ephemeral_after_end": ephemeral_after_end,
    "lost_watch_event": lost_watch_event,
}
