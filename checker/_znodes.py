"""The znode rules that are not about registers: the zxid order of changes, ephemerals vanishing
with their session, sequential names, and watch events arriving before the reads that show them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from checker._result import CheckResult, Violation, time_text, violation, zxid_text
from checker.history import CHANGE_KINDS, READ_KINDS, SESSION_END_KINDS, Kind, Op, Status, number

SEQUENCE_DIGITS = re.compile(r"(\d+)$")


def _linearizable_read(op: Op, all_reads: bool) -> bool:
    return op.ok and op.kind in READ_KINDS and (all_reads or op.sync)


def _ended_before(ops: Sequence[Op]) -> Iterator[tuple[Op, Op | None]]:
    """Each op in start order with, of the ops (from the same list) that ended before it started,
    the one with the highest zxid."""
    by_end = sorted(ops, key=lambda op: (op.end, op.index))
    highest: Op | None = None
    n = 0
    for op in sorted(ops, key=lambda op: (op.start, op.index)):
        while n < len(by_end) and by_end[n].end < op.start:
            done = by_end[n]
            if done.zxid is not None and (
                highest is None or highest.zxid is None or done.zxid > highest.zxid
            ):
                highest = done
            n += 1
        yield op, highest


def check_write_order(history: Sequence[Op], *, all_reads: bool = False) -> CheckResult:
    """Changes get distinct zxids in real-time order: one that completed before another started has
    the lower zxid. A linearizable read (after a sync, or any with `all_reads`) is served from a
    state that includes every change completed before it started."""
    ops = number(history)
    changes = [op for op in ops if op.ok and op.kind in CHANGE_KINDS and op.zxid is not None]
    found: list[Violation] = []
    by_zxid: dict[int, Op] = {}
    for op in changes:
        assert op.zxid is not None
        first = by_zxid.setdefault(op.zxid, op)
        if first is not op:
            found.append(violation(f"write order: two changes got zxid {zxid_text(op.zxid)}", [first, op]))
    for op, before in _ended_before(changes):
        if before is not None and before.zxid is not None and op.zxid is not None and op.zxid < before.zxid:
            summary = (
                f"write order: zxid {zxid_text(op.zxid)} for a change that started after one with "
                f"{zxid_text(before.zxid)} completed"
            )
            found.append(violation(summary, [before, op]))
    reads = [op for op in ops if _linearizable_read(op, all_reads) and op.zxid is not None]
    for op, before in _ended_before(changes + reads):
        if op.kind in READ_KINDS and before is not None and before.zxid is not None:
            assert op.zxid is not None
            if op.zxid < before.zxid:
                summary = (
                    f"write order: a linearizable read served from state {zxid_text(op.zxid)}, older than a"
                )
                found.append(violation(summary + " change that completed before it started", [before, op]))
    return CheckResult("write order", len(changes) + len(reads), tuple(found))


def _seen_paths(op: Op) -> list[str]:
    """The znodes a read shows to exist."""
    if op.kind is Kind.READ or (op.kind is Kind.EXISTS and op.exists):
        return [op.key]
    if op.kind is Kind.READ_CHILDREN:
        parent = op.key.rstrip("/")
        return [f"{parent}/{child}" for child in op.children or ()]
    return []


def check_ephemerals(history: Sequence[Op], *, all_reads: bool = False) -> CheckResult:
    """A session's ephemeral znodes are gone once its end (expiry or close) is acknowledged.

    A linearizable read (after a sync, or any with `all_reads`) that starts after the end op
    completed must not see them; nor may any read served from a state at or after the zxid of
    the closing txn, when the history has it; nor may the session create one afterwards.
    """
    ops = number(history)
    ends: dict[int, Op] = {}
    for op in ops:
        if op.ok and op.kind in SESSION_END_KINDS and op.session is not None:
            if op.session not in ends or op.end < ends[op.session].end:
                ends[op.session] = op
    owned: dict[str, list[Op]] = {}
    makers: dict[str, set[int | None]] = {}
    found: list[Violation] = []
    checked = 0
    for op in ops:
        if op.kind in (Kind.CREATE, Kind.CREATE_SEQ, Kind.CREATE_EPHEMERAL) and op.status is not Status.FAIL:
            makers.setdefault(op.created, set()).add(op.session if op.kind is Kind.CREATE_EPHEMERAL else None)
        if op.kind is Kind.CREATE_EPHEMERAL and op.ok and op.session is not None:
            owned.setdefault(op.created, []).append(op)
            checked += 1
            end = ends.get(op.session)
            if end is not None and op.start > end.end:
                summary = (
                    f"ephemerals: session {op.session:#x} created {op.created} after its end was acknowledged"
                )
                found.append(violation(summary, [end, op]))
    for op in ops:
        paths = [path for path in _seen_paths(op) if path in owned] if op.ok else []
        checked += bool(paths)
        for path in paths:
            for create in owned[path]:
                end = ends.get(create.session) if create.session is not None else None
                if end is not None and _sees_ended(op, create, end, makers[path], all_reads):
                    summary = f"ephemerals: {path} of session {end.session:#x} seen after the session ended"
                    found.append(violation(summary, [create, end, op]))
    return CheckResult("ephemerals", checked, tuple(found))


def _sees_ended(read: Op, create: Op, end: Op, makers: set[int | None], all_reads: bool) -> bool:
    if read.owner is not None and read.owner != create.session:
        return False  # someone else's znode at the same path
    if read.owner is None and makers != {create.session}:
        return False  # cannot tell whose znode the read saw
    late = _linearizable_read(read, all_reads) and read.start > end.end
    return late or (end.zxid is not None and read.zxid is not None and read.zxid >= end.zxid)


def _sequence(op: Op) -> int | None:
    match = SEQUENCE_DIGITS.search(op.created)
    return int(match.group(1)) if match else None


def check_sequential_nodes(history: Sequence[Op]) -> CheckResult:
    """Sequential creates under one parent get distinct names whose sequence numbers grow with
    zxid order, and with real time for creates that do not overlap."""
    creates = [op for op in number(history) if op.kind is Kind.CREATE_SEQ and op.ok]
    found: list[Violation] = []
    parents: dict[str, dict[int, tuple[Op, int]]] = {}
    names: dict[str, Op] = {}
    for op in creates:
        first = names.setdefault(op.created, op)
        sequence = _sequence(op)
        if first is not op:
            found.append(violation(f"sequential nodes: two creates got the name {op.created}", [first, op]))
        elif sequence is None:
            found.append(violation(f"sequential nodes: {op.created} has no sequence number", [op]))
        else:
            parents.setdefault(op.created.rsplit("/", 1)[0], {})[op.index] = (op, sequence)
    for group in parents.values():
        found.extend(_sequence_order(group))
    return CheckResult("sequential nodes", len(creates), tuple(found))


def _sequence_order(group: dict[int, tuple[Op, int]]) -> Iterator[Violation]:
    """Creates (op number -> op, sequence number) of one parent, checked against zxids and time."""
    with_zxid = sorted((op.zxid, op.index) for op, _ in group.values() if op.zxid is not None)
    for (_, i), (_, j) in zip(with_zxid, with_zxid[1:], strict=False):
        (before, before_number), (op, number_) = group[i], group[j]
        if number_ <= before_number:
            summary = (
                f"sequential nodes: {op.created} has a higher zxid than {before.created} but no higher number"
            )
            yield violation(summary, [before, op])
    by_end = sorted(group.values(), key=lambda pair: (pair[0].end, pair[0].index))
    highest: tuple[Op, int] | None = None
    n = 0
    for op, number_ in sorted(group.values(), key=lambda pair: (pair[0].start, pair[0].index)):
        while n < len(by_end) and by_end[n][0].end < op.start:
            if highest is None or by_end[n][1] > highest[1]:
                highest = by_end[n]
            n += 1
        if highest is not None and number_ <= highest[1]:
            summary = f"sequential nodes: {op.created} started after {highest[0].created} was created but sorts first"
            yield violation(summary, [highest[0], op])


def _watch_class(op: Op) -> str:
    return "child" if op.kind is Kind.READ_CHILDREN else "data"


def _event_classes(event: Op) -> tuple[str, ...]:
    if event.event is None:
        return ("data", "child")
    return ("child",) if event.event == "NodeChildrenChanged" else ("data",)


def _changed(watched: Op, read: Op) -> bool:
    """Whether `read` shows the znode (or its children) changed since `watched` left the watch."""
    if watched.kind is Kind.READ_CHILDREN:
        return set(watched.children or ()) != set(read.children or ())
    existed, exists = (
        watched.kind is Kind.READ or bool(watched.exists),
        read.kind is Kind.READ or bool(read.exists),
    )
    if existed != exists:
        return True
    if watched.mzxid is not None and read.mzxid is not None:
        return watched.mzxid != read.mzxid
    if watched.kind is Kind.READ and read.kind is Kind.READ:
        return watched.version != read.version or watched.value != read.value
    return False


def check_watch_order(history: Sequence[Op]) -> CheckResult:
    """A client sees the watch event for a change before any read result that shows the change:
    after a read leaves a watch, a later read by the same session that shows the znode changed
    must complete after a watch event for it arrived (one-shot watches).

    An event recorded while the watching read was still outstanding may have come after the
    read's reply (a client stamps both on its own threads): such an event may be the one for
    the new watch, so that watch is not held against a later read."""
    timelines: dict[tuple[int, int | None], list[tuple[float, int, Op]]] = {}
    for op in number(history):
        if op.kind is Kind.WATCH_EVENT:
            timelines.setdefault(op.client, []).append((op.start, 0, op))
        elif op.ok and op.kind in READ_KINDS:
            timelines.setdefault(op.client, []).append((op.end, 1, op))
    found: list[Violation] = []
    checked = 0
    for timeline in timelines.values():
        watches: dict[tuple[str, str], Op] = {}
        events: list[Op] = []  # this client's events so far, in time order
        for when, _, op in sorted(timeline, key=lambda point: (point[0], point[1], point[2].index)):
            if op.kind is Kind.WATCH_EVENT:
                events.append(op)
                for cls in _event_classes(op):
                    watches.pop((op.key, cls), None)
                continue
            slot = (op.key, _watch_class(op))
            watched = watches.get(slot)
            if watched is not None:
                checked += 1
                if _changed(watched, op):
                    summary = (
                        f"watch order: a read completed at {time_text(when)} shows {op.key} changed since #"
                    )
                    found.append(
                        violation(
                            summary + f"{watched.index} left a watch, with no event before it", [watched, op]
                        )
                    )
                    del watches[slot]
            if op.watch and not _event_during(events, op, slot[1]):
                watches[slot] = op
    return CheckResult("watch order", checked, tuple(found))


def _event_during(events: list[Op], read: Op, cls: str) -> bool:
    """Whether an event that fires this read's kind of watch was stamped while it was out."""
    for event in reversed(events):
        if event.start < read.start:
            return False
        if event.key == read.key and cls in _event_classes(event):
            return True
    return False
