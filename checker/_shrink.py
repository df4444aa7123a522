"""Counterexample shrinking: delta debugging over a failing set of ops, keeping only subsets that
still prove the violation on their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from checker.history import Op

TRIALS_MAX = 400


def shrink(
    ops: Sequence[Op],
    fails: Callable[[list[Op]], bool],
    removable: Callable[[Op], bool],
    close: Callable[[list[Op]], list[Op]],
    trials_max: int = TRIALS_MAX,
) -> list[Op]:
    """A small subset of `ops` (which must fail) that still fails.

    Tries dropping chunks of removable ops, halving the chunk when no drop works. `close` adds back
    whatever a subset must keep to stay sound: a subset that fails only because it lost the write
    a read saw proves nothing. Stops after `trials_max` searches with the smallest failing set so far.
    """
    current = list(ops)
    chunk = max(1, sum(1 for op in current if removable(op)) // 2)
    trials = 0
    while trials < trials_max:
        candidates = [op for op in current if removable(op)]
        if not candidates:
            break
        chunk = min(chunk, len(candidates))
        progress = False
        for lo in range(0, len(candidates), chunk):
            dropped = {op.index for op in candidates[lo : lo + chunk]}
            trial = close([op for op in current if op.index not in dropped])
            trials += 1
            if len(trial) < len(current) and fails(trial):
                current, progress = trial, True
                break
            if trials >= trials_max:
                break
        if not progress:
            if chunk == 1:
                break
            chunk = max(1, chunk // 2)
    return current


def time_windows(ops: Sequence[Op], center: Op) -> Iterator[list[Op]]:
    """Growing windows of the ops that overlap the time before `center` ends, four times wider each
    time, the last holding every op that starts by then. Ops of unknown outcome come in only when
    they start inside the window: they never end, so they would overlap every window.
    """
    first = min(op.start for op in ops)
    reach = max(center.end - center.start, 1e-9)
    while True:
        since = center.start - reach
        yield [op for op in ops if op.start <= center.end and (op.start if op.unknown else op.end) >= since]
        if since < first:
            return
        reach *= 4
