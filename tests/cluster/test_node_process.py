"""What the node process changes about its own interpreter, checked in a process of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]

CHECK = """
import enum, gc
import cluster.node
cluster.node.fast_enum_members()
cluster.node.fast_enum_members()  # twice is harmless
cluster.node.rarer_young_collections()
assert gc.get_threshold() == (cluster.node.YOUNG_COLLECTION_ALLOCS, 10, 10), gc.get_threshold()
assert "__getattr__" not in vars(enum.EnumType)
from zkcore import Code
from zkcore._records import OpCode, Perms
from zkcore.zab import Role
assert (OpCode.SET_DATA, Code.OK, Perms.WRITE, Role.LEADING) == (5, 0, 2, 2)
unreachable = [(cls.__name__, name) for cls in gc.get_objects() if isinstance(cls, enum.EnumType)
               for name in cls._member_map_ if getattr(cls, name, None) is not cls._member_map_[name]]
assert not unreachable, unreachable
"""


def test_enum_members_stay_reachable_without_the_getattr_fallback() -> None:
    """Every enum member loaded in a node process (ours, pyzmq's, the stdlib's) is still found
    as a class attribute once the node drops EnumType.__getattr__ (fast_enum_members)."""
    out = subprocess.run([sys.executable, "-c", CHECK], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


ORPHAN = """
import os, signal, sys, time
from cluster._supervisor import die_with_parent
parent = os.getpid()
pid = os.fork()
if pid == 0:
    die_with_parent(parent, signal.SIGKILL)
    time.sleep(60)
    os._exit(0)
print(pid, flush=True)
time.sleep(60)
"""


def test_a_forked_child_dies_with_its_node() -> None:
    """A node's snapshot child shares the node's log lock, client port and rings: kill -9 of
    the node must take the child too, or the node's restart finds them taken."""
    node = subprocess.Popen([sys.executable, "-c", ORPHAN], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert node.stdout is not None
        child = psutil.Process(int(node.stdout.readline()))
        node.kill()
        node.wait(10)
        child.wait(10)  # psutil.TimeoutExpired if the child outlived its parent
    finally:
        node.kill()


def test_a_snap_that_holds_the_leader_up_past_sync_limit_names_the_limits_to_raise(tmp_path: Path) -> None:
    from cluster.config import local_ensemble
    from cluster.node import snap_stall_warning

    conf = local_ensemble(tmp_path, 3)  # tickTime 50 ms, syncLimit 10, initLimit 40
    assert snap_stall_warning(400_000, conf.sync_limit_ticks * conf.tick_ms / 1000, conf) is None
    warning = snap_stall_warning(400_005, 1.93, conf)
    assert warning is not None
    assert "sending its 400,005 znodes took 1.93s" in warning and "= 0.50s" in warning
    # Twice the stall for syncLimit, six times for initLimit (the follower receives and loads it).
    assert warning.endswith("set syncLimit=78 and initLimit=232 (tickTime=50)")
    # Limits already above what the stall needs are kept.
    roomy = local_ensemble(tmp_path, 3, sync_limit_ticks=20, init_limit_ticks=1000)
    assert snap_stall_warning(10, 0.9, roomy) is None
    assert (snap_stall_warning(10, 1.5, roomy) or "").endswith(
        "set syncLimit=60 and initLimit=1000 (tickTime=50)"
    )


FREEZER = """
import gc
gc.disable()  # only the collections asked for below
from cluster.node import SurvivorFreezer
freezer = SurvivorFreezer()
kept = [[i] for i in range(1000)]
gc.collect(0)
freezer.poll()
assert gc.get_freeze_count() == 0, "froze after a young collection"
gc.collect()
freezer.poll()
assert gc.get_freeze_count() >= 1000, ("what survived a full collection was not frozen", gc.get_freeze_count())
freezer.poll()
freezer.close()
gc.collect()
assert not freezer.due, "closed, yet still told of collections"
"""


def test_what_survives_a_full_collection_is_frozen_and_nothing_else() -> None:
    """SurvivorFreezer: after a full collection (not a young one) the next loop turn freezes what
    survived, so that the next full collection walks only what came since."""
    out = subprocess.run(
        [sys.executable, "-c", FREEZER], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr


def test_the_loop_waits_until_its_next_tick_not_a_millisecond_short() -> None:
    """A wait rounded down to whole milliseconds ends before the tick is due, and the loop spun
    with waits of 0 through the rest of that millisecond: thousands of empty turns a second."""
    from cluster.node import wait_ms

    assert wait_ms(10.0005, 10.0) == 1
    assert wait_ms(10.05, 10.0) == 50
    assert wait_ms(10.0, 10.0) == 0
    assert wait_ms(10.0, 10.2) == 0, "overdue: no wait"
