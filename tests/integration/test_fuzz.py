"""Bad input never hurts others: attackers, each on its own DEALER socket, send a live 3-node ensemble
garbage, torn and mutated requests, unknown opcodes, oversized data, bad paths and floods, while a
witness client on every server keeps writing and reading. Each attacker gets ZooKeeper's error code
or loses its connection; every node keeps its pid, says imok and keeps its epoch; no witness misses a
reply, and every write a witness saw acknowledged is on every server with its data.

Seeded (ZKPY_FUZZ_SEED, default 8) and bounded to about a minute; `pytest -m slow` adds a soak.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import random
import signal
import struct
import threading
import time
from collections.abc import Callable, Iterator

import psutil
import pytest
import zmq

from cluster import admin
from tests.integration.conftest import Ensemble, wait_for
from tests.integration.wire import NoAnswer, Refused, WireSession
from zkcore import Code, RemoteError, limits
from zkcore import _records as rec
from zkcore._acl import digest_id
from zkcore._jute import Reader, Writer
from zkcore._requests import decode_request

SEED = int(os.environ.get("ZKPY_FUZZ_SEED", "8"))
OP = rec.OpCode
OPEN = rec.OPEN_ACL_UNSAFE
ZK_CODES = frozenset(int(c) for c in Code)
SANDBOX = "/fz"  # attackers' own corner of the tree
REPLY_WAIT_MS = 5000
WITNESS_PACE_S = 0.01
MUTATIONS_PER_REQUEST = 20
NOTIFICATION_XID = struct.pack(">i", rec.XID_NOTIFICATION)
# Opcodes ZooKeeper itself does not know: it answers them with Unimplemented and closes.
UNKNOWN_OPCODES = (10, 23, 50, 99, 108, 999, 2**31 - 1, -(2**31), -12, -100)
# Opcodes ZooKeeper knows but a client may not send here (internal, or not implemented).
UNSERVED_OPCODES = (OP.NOTIFICATION, OP.ERROR, OP.CREATE_SESSION, OP.RECONFIG, OP.SASL)


# --- sockets and frames -----------------------------------------------------------------------


def dealer(endpoint: str) -> zmq.Socket[bytes]:
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    return sock


def frame(xid: int, opcode: int, body: rec.JuteRecord | bytes | None = None) -> bytes:
    raw = body if isinstance(body, bytes) else (body.encode() if body is not None else b"")
    return rec.RequestHeader(xid, opcode).encode() + raw


def connect_frame(session_id: int = 0, passwd: bytes = bytes(16), timeout_ms: int = 4000) -> bytes:
    return rec.ConnectRequest(0, 0, timeout_ms, session_id, passwd, False).encode()


def is_notification(answer: bytes) -> bool:
    """xid -1, err 0 and a WatcherEvent: not an answer to a request (one sent with xid -1 too)."""
    return answer[:4] == NOTIFICATION_XID and len(answer) > 16 and answer[12:16] == bytes(4)


def recv_reply(sock: zmq.Socket[bytes], timeout_ms: int = REPLY_WAIT_MS, xid: int = 0) -> bytes | None:
    """The next frame that is not a watch notification, or None when none came in time. The
    answer to a request sent with xid -1 looks like one: then the next frame, whatever it is."""
    deadline = time.monotonic() + timeout_ms / 1000
    while sock.poll(max(0, int((deadline - time.monotonic()) * 1000)), zmq.POLLIN):
        answer = sock.recv()
        if xid == rec.XID_NOTIFICATION or not is_notification(answer):
            return answer
    return None


def header_of(answer: bytes) -> rec.ReplyHeader:
    return rec.ReplyHeader.read(Reader(answer))


def as_connect_response(answer: bytes) -> rec.ConnectResponse | None:
    try:
        return rec.ConnectResponse.decode(answer)
    except RemoteError:
        return None


def fat_acl_create(xid: int, entries: int) -> bytes:
    """A create whose ACL list is `entries` long: about 23 bytes an entry to decode one by one."""
    w = Writer()
    rec.RequestHeader(xid, OP.CREATE).write(w)
    w.ustring(f"{SANDBOX}/fat")
    w.buffer(b"")
    w.int(entries)
    for _ in range(entries):
        rec.ACL(rec.Perms.ALL, rec.Id("world", "anyone")).write(w)
    w.int(0)
    return w.bytes()


# --- clients ----------------------------------------------------------------------------------


class Attacker:
    """One attacking client: a session on its own DEALER socket. After a frame that got it cut off
    it resumes the same session (no txn), so thousands of cases cost one session. The session
    outlives a wait for a missing answer; close() closes it."""

    def __init__(self, endpoint: str, timeout_ms: int = 10_000) -> None:
        self.endpoint, self.timeout_ms = endpoint, timeout_ms
        self.sock = dealer(endpoint)
        self.session_id, self.passwd = 0, bytes(16)
        self.last_zxid = 0
        self.connected = False
        self.cut_off = True  # the server holds no connection of ours: the next frame is a connect
        self.connect()

    def connect(self) -> None:
        if not self.cut_off:  # whether the server still holds our connection is unknown: a new one
            self.sock.close()
            self.sock = dealer(self.endpoint)
        for _ in range(3):
            self.sock.send(connect_frame(self.session_id, self.passwd, self.timeout_ms))
            answer = recv_reply(self.sock)
            assert answer, f"{self.endpoint}: {answer!r} in answer to a ConnectRequest (seed {SEED})"
            resp = as_connect_response(answer)
            assert resp is not None, (
                f"{self.endpoint} cut a connection off with err -5, then read its next frame as a "
                f"request (err {header_of(answer).err}): it kept the connection (seed {SEED})"
            )
            self.cut_off = False
            if resp.session_id != 0:
                self.session_id, self.passwd, self.connected = resp.session_id, resp.passwd, True
                return
            self.session_id, self.passwd = 0, bytes(16)  # expired or closed: a new session
        raise AssertionError(f"{self.endpoint}: no session after 3 ConnectRequests (seed {SEED})")

    def send(self, sent: bytes) -> bytes | None:
        if not self.connected:
            self.connect()
        self.sock.send(sent)
        answer = recv_reply(self.sock, xid=struct.unpack_from(">i", sent)[0] if len(sent) >= 4 else 0)
        if answer and len(answer) >= 16:
            self.last_zxid = max(self.last_zxid, header_of(answer).zxid)
        return answer

    def attack(self, sent: bytes, what: str) -> str | None:
        """Send one frame; what is wrong with the server's answer, or None."""
        problem = self.judge(sent, self.send(sent))
        return None if problem is None else f"{self.endpoint} {what}: {problem} (frame {sent[:48].hex()})"

    def judge(self, sent: bytes, answer: bytes | None) -> str | None:
        try:
            req = decode_request(sent)
        except RemoteError:
            req = None
        if answer is None:
            self.connected = False
            return "no answer: neither a reply nor a disconnect"
        if answer == b"":
            self.connected = False
            return None if req is None else "cut off (empty frame) for a request that decodes"
        if len(answer) < 16:
            return f"a {len(answer)}-byte answer is neither a reply nor an empty frame"
        header = header_of(answer)
        if header.err not in ZK_CODES:
            return f"err {header.err} is not one of ZooKeeper's codes"
        if req is None:  # garbage: Marshalling and cut off (or Unimplemented, for an unknown opcode)
            self.connected, self.cut_off = False, header.err == Code.MARSHALLING
            xid = struct.unpack_from(">i", sent)[0] if len(sent) >= 8 else 0
            if header.err not in (Code.MARSHALLING, Code.UNIMPLEMENTED) or header.xid != xid:
                return f"xid {header.xid} err {header.err} for garbage, not xid {xid} err -5 or -6"
            return None if len(answer) == 16 else "an error reply with a body"
        want = rec.XID_PING if req.xid == rec.XID_PING else rec.XID_AUTH if req.opcode == OP.AUTH else req.xid
        if header.xid != want:
            return f"reply xid {header.xid}, not {want}"
        if req.opcode == OP.CLOSE_SESSION and req.xid != rec.XID_PING and header.err == Code.OK:
            self.session_id, self.passwd, self.connected = 0, bytes(16), False
        if header.err == Code.MARSHALLING:
            self.connected = False  # (a ping opcode with a plain xid) cut off or not: a new connection
        return None

    def close(self) -> None:
        """Close the session if the server still lets us, then the socket."""
        try:
            if self.session_id and not self.connected:
                self.connect()
            if self.connected:
                self.sock.send(frame(1, OP.CLOSE_SESSION))
                recv_reply(self.sock, 1000)
        except AssertionError:
            pass  # a server that will not talk to us: the session expires on its own
        self.sock.close()


class WitnessError(Exception):
    """A witness got an answer it should not have."""


class Witness(threading.Thread):
    """A well-behaved client of one server: creates and overwrites its own znodes (its digest ACL,
    world-readable) and reads them back; remembers what each path may hold."""

    def __init__(self, ens: Ensemble, sid: int, seed: int) -> None:
        super().__init__(name=f"witness-{sid}", daemon=True)
        self.endpoint = ens.endpoint(sid)
        self.sid, self.root, self.rng = sid, f"/w{sid}", random.Random(seed)
        self.credential = f"w{sid}:pw{sid}".encode()
        self.acl = (
            rec.ACL(rec.Perms.ALL, rec.Id("digest", digest_id(f"w{sid}", f"pw{sid}"))),
            rec.ACL(rec.Perms.READ, rec.Id("world", "anyone")),
        )
        self.values: dict[str, set[bytes]] = {}  # more than one value after an unanswered write
        self.paths: list[str] = []  # created and acknowledged
        self.unsure: set[str] = set()  # creates that got no answer: they may or may not exist
        self.failures: list[str] = []
        self.ops = 0
        self.max_latency_s = 0.0
        self.last_zxid = 0
        self.session_id = 0
        self.halt = threading.Event()

    def session(self) -> WireSession:
        s = WireSession(self.endpoint, timeout_ms=10000, last_zxid=self.last_zxid, wait_ms=REPLY_WAIT_MS)
        s.sock.send(frame(rec.XID_AUTH, OP.AUTH, rec.AuthPacket(0, "digest", self.credential)))
        answer = recv_reply(s.sock)
        if answer is None or len(answer) < 16 or header_of(answer).err != Code.OK:
            s.close()
            raise WitnessError(f"addAuth answered {answer!r}")
        self.session_id = s.session_id
        return s

    def run(self) -> None:
        session: WireSession | None = None
        step = 0
        while not self.halt.is_set():
            try:
                if session is None:
                    session = self.session()
                    err = session.call(OP.CREATE, rec.CreateRequest(self.root, b"", self.acl, 0))[0].err
                    if err not in (Code.OK, Code.NODE_EXISTS):
                        raise WitnessError(f"create {self.root}: err {err}")
                self.step(session, step)
            except (NoAnswer, Refused, RemoteError, WitnessError) as e:
                self.failures.append(f"{time.strftime('%X')} witness of server {self.sid}: {e!r}")
                if session is not None:
                    session.close()
                session = None
                self.halt.wait(0.1)
            step += 1
            self.halt.wait(WITNESS_PACE_S)
        if session is not None:
            try:
                session.close_session()
            except (NoAnswer, RemoteError):
                pass
            session.close()

    def step(self, session: WireSession, step: int) -> None:
        rng, started = self.rng, time.monotonic()
        roll = rng.random()
        data = rng.randbytes(rng.choice([0, 7, 100, 1000]) if rng.random() < 0.98 else 64 * 1024)
        if roll < 0.6 or not self.paths:
            path = f"{self.root}/n{step:06d}"
            self.values[path] = {data}
            self.unsure.add(path)  # until its answer comes
            err = session.call(OP.CREATE, rec.CreateRequest(path, data, self.acl, 0))[0].err
            self.unsure.discard(path)
            if err != Code.OK:  # it did not happen: it must not be there in the end
                del self.values[path]
                raise WitnessError(f"create {path}: err {err}")
            self.paths.append(path)
        elif roll < 0.85:
            path = rng.choice(self.paths)
            self.values[path].add(data)  # it may hold either until the answer comes
            err = session.set(path, data)
            if err != Code.OK:
                self.values[path].discard(data)
                raise WitnessError(f"setData {path}: err {err}")
            self.values[path] = {data}
        else:
            path = rng.choice(self.paths)
            err, got = session.get(path)
            if err != Code.OK or got not in self.values[path]:
                raise WitnessError(f"getData {path}: err {err}, {len(got)} bytes not written there")
        self.max_latency_s = max(self.max_latency_s, time.monotonic() - started)
        self.last_zxid = max(self.last_zxid, session.last_zxid)
        self.ops += 1


# --- fixtures and checks ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ensemble]:
    e = Ensemble(tmp_path_factory.mktemp("fuzz") / "e", 3)
    try:
        # The launcher returns once a leader serves; the witnesses need all three to take sessions
        # (at startup a server can lead alone for initLimit before it follows the real leader).
        for sid in e.servers:
            probe = e.session(sid)
            probe.close_session()
            probe.close()
        s = e.session()
        assert s.create(SANDBOX, b"sandbox")[0] == Code.OK
        s.close()
        yield e
    finally:
        e.stop()


@pytest.fixture(scope="module")
def witnesses(ens: Ensemble) -> Iterator[list[Witness]]:
    ws = [Witness(ens, sid, SEED * 1000 + sid) for sid in ens.servers]
    for w in ws:
        w.start()
    wait_for(lambda: all(w.ops >= 3 for w in ws), 30, "every witness to get going")
    yield ws
    for w in ws:
        w.halt.set()
    for w in ws:
        w.join(30)


@dataclasses.dataclass(frozen=True)
class Baseline:
    """How things stood before an attack: node pids and epochs, witness failures so far."""

    pids: dict[int, int | None]
    epochs: dict[int, str]
    failures: dict[int, int]


def baseline(ens: Ensemble, witnesses: list[Witness]) -> Baseline:
    return Baseline(
        {sid: ens.pid(sid) for sid in ens.servers},
        {sid: ens.mntr(sid).get("zk_epoch", "?") for sid in ens.servers},
        {w.sid: len(w.failures) for w in witnesses},
    )


@pytest.fixture(scope="module")
def started(ens: Ensemble, witnesses: list[Witness]) -> Baseline:
    """The run's baseline: the pids the fixture recorded at launch, the first epoch."""
    return dataclasses.replace(baseline(ens, witnesses), pids=dict(ens.started_pids))


@pytest.fixture
def nobody_hurt(ens: Ensemble, witnesses: list[Witness], started: Baseline) -> Callable[[], None]:
    """Call it after an attack: every node is the process it was before, serving in the same
    epoch; every witness is still served and missed nothing. Each test starts from a serving
    ensemble and is judged on what happened during it, so one failure does not hide the next."""
    ens.wait_healthy(60)

    def settled() -> Baseline | None:  # every node answers and agrees on the leader and epoch
        views = [ens.mntr(sid) for sid in ens.servers]
        agreed = {(v.get("zk_leader_id"), v.get("zk_epoch"), v.get("zk_serving")) for v in views}
        return baseline(ens, witnesses) if len(agreed) == 1 and "1" in agreed.pop() else None

    before: Baseline = wait_for(settled, 30, "every node to agree on a leader and epoch")  # type: ignore[assignment]
    return lambda: assert_nobody_hurt(ens, witnesses, before)


def leader_of(ens: Ensemble) -> int:
    return wait_for(ens.leader, 10, "a leader")  # type: ignore[return-value]


def log_tail(ens: Ensemble, sid: int) -> str:
    lines = (ens.conf.node_dir(sid) / "node.log").read_text(errors="replace").splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback")]
    return "\n".join(lines[starts[-1] : starts[-1] + 30] if starts else lines[-10:])


def assert_nobody_hurt(ens: Ensemble, witnesses: list[Witness], before: Baseline) -> None:
    problems = []
    for sid in ens.servers:
        pid = ens.pid(sid)
        if pid != before.pids[sid]:
            problems.append(f"node {sid} is pid {pid}, not {before.pids[sid]}: it died\n{log_tail(ens, sid)}")
            continue
        if admin.query(ens.endpoint(sid), "ruok", 2000) != "imok":
            problems.append(f"node {sid} does not answer ruok with imok")
        mntr = ens.mntr(sid)
        if mntr.get("zk_serving") != "1" or mntr.get("zk_epoch") != before.epochs[sid]:
            problems.append(
                f"node {sid}: serving {mntr.get('zk_serving')}, epoch {mntr.get('zk_epoch')} (was "
                f"{before.epochs[sid]}): the ensemble had to elect a leader again"
            )
    for w in witnesses:
        ops, failures = w.ops, before.failures[w.sid]

        def served(w: Witness = w, ops: int = ops, failures: int = failures) -> bool:
            return w.ops >= ops + 3 or len(w.failures) > failures

        try:
            wait_for(served, 15, f"the witness of server {w.sid} to be served")
        except AssertionError as e:
            problems.append(str(e))
        new = w.failures[before.failures[w.sid] :]
        problems += new[:5] + (
            [f"... and {len(new) - 5} more failures of that witness"] if len(new) > 5 else []
        )
    assert not problems, f"seed {SEED}:\n" + "\n".join(problems)


def drain(sock: zmq.Socket[bytes], count: int, quiet_ms: int = 3000) -> list[bytes]:
    """Up to `count` answers (watch notifications skipped), stopping after quiet_ms without one."""
    frames: list[bytes] = []
    while len(frames) < count and sock.poll(quiet_ms, zmq.POLLIN):
        answer = sock.recv()
        if not is_notification(answer):
            frames.append(answer)
    return frames


def judge_stream(frames: list[bytes], first_xid: int, count: int) -> str | None:
    """A pipelining client's answers: a reply (perhaps an error) to every request, in order; or
    that up to a Marshalling error or an empty frame that cut it off, then nothing but empty
    frames (its later frames read as bad ConnectRequests)."""
    replies = [f for f in frames if not is_notification(f)]
    for i, answer in enumerate(replies):
        if 0 < len(answer) < 16:
            return f"answer {i} is {answer!r}: neither a reply nor an empty frame"
        if answer == b"" or header_of(answer).err == Code.MARSHALLING:
            rest = replies[i + 1 :]
            return None if all(f == b"" for f in rest) else f"{len(rest)} answers after being cut off"
        if header_of(answer).xid != first_xid + i:
            return f"answer {i} has xid {header_of(answer).xid}, not {first_xid + i}: out of order"
    if len(replies) < count:
        return f"{len(replies)} of {count} replies, then silence: neither answered nor cut off"
    return None


# --- the attacks --------------------------------------------------------------------------------


def test_garbage_instead_of_a_connect_request(
    ens: Ensemble, witnesses: list[Witness], nobody_hurt: Callable[[], None]
) -> None:
    """First frames that are random bytes, or ConnectRequests cut short, padded or bent: refused
    with an empty frame, or answered as ZooKeeper answers a ConnectRequest."""
    rng = random.Random(SEED)
    good = connect_frame()
    victim = witnesses[0]
    cases = [("empty", b""), ("connect with trailing bytes", good + b"\0"), ("readOnly 2", good[:-1] + b"\2")]
    cases += [
        (f"random {i}", rng.randbytes(rng.choice([1, 3, 5, 8, 16, 44, 45, 46, 100, 999]))) for i in range(150)
    ]
    cases += [(f"connect cut at {n}", good[:n]) for n in range(len(good))]  # at 44: an older client's, valid
    cases += [
        ("passwd length -2", good[:24] + struct.pack(">i", -2) + good[28:]),
        ("passwd length 2**31-1", good[:24] + struct.pack(">i", 2**31 - 1) + good[28:]),
        ("a zxid from the future", rec.ConnectRequest(0, 2**62, 4000, 0, bytes(16), False).encode()),
        ("an unknown session", connect_frame(0x7777_0000_0000_0001, bytes(16))),
        ("a witness's session, wrong password", connect_frame(victim.session_id, b"x" * 16)),
        ("negative timeout", rec.ConnectRequest(0, 0, -1, 0, bytes(16), False).encode()),
        ("protocol version 99", rec.ConnectRequest(99, 0, 4000, 0, bytes(16), False).encode()),
    ]
    problems = []
    for i, (what, first) in enumerate(cases):
        sid = ens.servers[i % len(ens.servers)]
        sock = dealer(ens.endpoint(sid))
        sock.send(first)
        answer = recv_reply(sock, 3000)
        sock.close()
        problem = judge_connect_answer(first, answer)
        if problem:
            problems.append(f"server {sid}, {what}: {problem} (frame {first[:48].hex()})")
    assert not problems, f"seed {SEED}:\n" + "\n".join(problems)
    nobody_hurt()


def judge_connect_answer(first: bytes, answer: bytes | None) -> str | None:
    """A first frame is refused (empty frame) unless it decodes as a ConnectRequest, which gets a
    session, or timeOut 0 for a session it cannot resume."""
    if len(first) == 4 and first.decode("ascii", "replace") in admin.COMMANDS:
        return None if answer else "no answer to an admin word"
    req = None
    for candidate in (first, first + b"\0"):  # an older client leaves readOnly out
        try:
            req = rec.ConnectRequest.decode(candidate)
            break
        except RemoteError:
            continue
    if answer is None:
        return "no answer at all"
    if req is None:
        return None if answer == b"" else f"{answer[:40]!r}, not an empty frame, for garbage"
    if answer == b"":  # a well-formed ConnectRequest is refused only by a server behind its zxid
        return None if req.last_zxid_seen > 0 else "a well-formed ConnectRequest refused"
    resp = as_connect_response(answer)
    if resp is None or req.last_zxid_seen > 2**40:
        return f"{answer[:40]!r}: not refused, or not a ConnectResponse"
    if req.session_id == 0 and not (resp.session_id and 4000 <= resp.timeout_ms <= 40000):
        return f"a new session answered {resp}"
    if req.session_id != 0 and (resp.session_id, resp.timeout_ms) != (0, 0):
        return f"a resume with a wrong password answered {resp}"
    return None


def test_random_frames_inside_a_session(
    ens: Ensemble, witnesses: list[Witness], nobody_hurt: Callable[[], None]
) -> None:
    rng = random.Random(SEED + 1)
    known = sorted(rec.REQUEST_TYPES)
    problems: list[str | None] = []
    for sid in ens.servers:
        att = Attacker(ens.endpoint(sid))
        for i in range(100):
            if i % 2:  # a known opcode with a random body
                sent = frame(i, rng.choice(known), rng.randbytes(rng.randrange(0, 40)))
            else:
                sent = rng.randbytes(rng.randrange(0, 64))
            problems.append(att.attack(sent, f"random frame {i}"))
        att.close()
    found = [p for p in problems if p]
    assert not found, f"seed {SEED}:\n" + "\n".join(found)
    nobody_hurt()


def test_unknown_opcodes_get_unimplemented(
    ens: Ensemble, witnesses: list[Witness], nobody_hurt: Callable[[], None]
) -> None:
    """ZooKeeper answers an opcode it does not know with Unimplemented (-6) and closes the
    connection (UnimplementedRequestProcessor); opcodes it knows but a client may not send here
    get some error. Nobody else notices."""
    att = Attacker(ens.endpoint(2))
    problems = []
    for opcode in (*UNKNOWN_OPCODES, *UNSERVED_OPCODES):
        for body in (b"", b"\x00\x00\x00\x03/fz", bytes(range(20))):
            answer = att.send(frame(77, opcode, body))
            header = header_of(answer) if answer and len(answer) >= 16 else None
            att.connected = False  # cut off or not, the next case starts on a new connection
            wanted = {Code.UNIMPLEMENTED} if opcode in UNKNOWN_OPCODES else ZK_CODES - {Code.OK}  # some error
            if header is None or header.xid != 77 or header.err not in wanted:
                got = f"xid {header.xid} err {header.err}" if header else repr(answer)
                want = "err -6" if opcode in UNKNOWN_OPCODES else "an error"
                problems.append(
                    f"opcode {opcode} with a {len(body)}-byte body: {got}, want xid 77 and {want}"
                )
    att.close()
    assert not problems, "\n".join(problems)
    nobody_hurt()


def test_an_unserved_opcode_is_answered_in_its_turn(
    ens: Ensemble, witnesses: list[Witness], nobody_hurt: Callable[[], None]
) -> None:
    """Replies go out in request order, an error for deleteContainer (the leader's own opcode)
    included: a client that pipelines it behind a write must not see its answer first."""
    att = Attacker(ens.endpoint(3))
    for xid, opcode, body in [
        (10, OP.SET_DATA, rec.SetDataRequest(SANDBOX, b"in order", -1)),
        (11, OP.DELETE_CONTAINER, rec.PathRequest(f"{SANDBOX}/none")),
        (12, OP.EXISTS, rec.PathWatchRequest(SANDBOX, False)),
    ]:
        att.sock.send(frame(xid, opcode, body))
    frames = drain(att.sock, 3)
    att.close()
    problem = judge_stream(frames, 10, 3)
    assert problem is None, f"setData, deleteContainer, exists: {problem} ({[f[:16].hex() for f in frames]})"
    nobody_hurt()


def sample_requests() -> list[tuple[str, bytes]]:
    """One valid frame per opcode a client may send, all aimed at the sandbox."""
    fz, acl = SANDBOX, OPEN
    multi = rec.encode_multi_request(
        [(OP.CREATE, rec.CreateRequest(f"{fz}/m", b"m", acl, 0)), (OP.CHECK, rec.CheckVersionRequest(fz, -1)),
         (OP.SET_DATA, rec.SetDataRequest(f"{fz}/m", b"n", -1)), (OP.DELETE, rec.DeleteRequest(f"{fz}/m", -1))]
    )  # fmt: skip
    multi_read = rec.encode_multi_request(
        [(OP.GET_DATA, rec.PathWatchRequest(fz, False)), (OP.GET_CHILDREN, rec.PathWatchRequest(fz, False))]
    )
    watches = ((fz,), (f"{fz}/c",), (fz,))
    bodies: list[tuple[str, int, rec.JuteRecord | bytes | None]] = [
        ("create", OP.CREATE, rec.CreateRequest(f"{fz}/c", b"data", acl, 0)),
        ("create2 sequential", OP.CREATE2, rec.CreateRequest(f"{fz}/s-", b"d", acl, 2)),
        ("createContainer", OP.CREATE_CONTAINER, rec.CreateRequest(f"{fz}/k", b"", acl, 4)),
        ("createTTL", OP.CREATE_TTL, rec.CreateTTLRequest(f"{fz}/t", b"", acl, 5, 60_000)),
        ("delete", OP.DELETE, rec.DeleteRequest(f"{fz}/c", -1)),
        ("exists", OP.EXISTS, rec.PathWatchRequest(fz, True)),
        ("getData", OP.GET_DATA, rec.PathWatchRequest(fz, False)),
        ("setData", OP.SET_DATA, rec.SetDataRequest(fz, b"x", -1)),
        ("getACL", OP.GET_ACL, rec.PathRequest(fz)),
        ("setACL", OP.SET_ACL, rec.SetACLRequest(f"{fz}/c", acl, -1)),
        ("getChildren", OP.GET_CHILDREN, rec.PathWatchRequest(fz, False)),
        ("sync", OP.SYNC, rec.PathRequest(fz)),
        ("getChildren2", OP.GET_CHILDREN2, rec.PathWatchRequest(fz, True)),
        ("check", OP.CHECK, rec.CheckVersionRequest(fz, -1)),
        ("multi", OP.MULTI, multi),
        ("checkWatches", OP.CHECK_WATCHES, rec.WatchTypeRequest(fz, 1)),
        ("removeWatches", OP.REMOVE_WATCHES, rec.WatchTypeRequest(fz, 3)),
        ("deleteContainer", OP.DELETE_CONTAINER, rec.PathRequest(f"{fz}/k")),
        ("multiRead", OP.MULTI_READ, multi_read),
        ("setWatches", OP.SET_WATCHES, rec.SetWatches(0, *watches)),
        ("getEphemerals", OP.GET_EPHEMERALS, rec.PathRequest(fz)),
        ("getAllChildrenNumber", OP.GET_ALL_CHILDREN_NUMBER, rec.PathRequest(fz)),
        ("setWatches2", OP.SET_WATCHES2, rec.SetWatches2(0, *watches, (fz,), ())),
        ("addWatch", OP.ADD_WATCH, rec.AddWatchRequest(fz, 0)),
    ]
    frames = [(name, frame(100 + i, op, body)) for i, (name, op, body) in enumerate(bodies)]
    return [*frames, ("auth", frame(rec.XID_AUTH, OP.AUTH, rec.AuthPacket(0, "digest", b"fz:fz"))),
            ("ping", frame(rec.XID_PING, OP.PING)), ("closeSession", frame(1, OP.CLOSE_SESSION))]  # fmt: skip


def mutate(rng: random.Random, sent: bytes) -> bytes:
    """One to three random edits: a byte replaced, a bit flipped, a byte inserted or removed, or
    an int field set to a boundary value. Never xid -1: the answer to that looks like a watch
    notification, and a setWatches sends those ahead of its answer."""
    buf = bytearray(sent)
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(max(1, len(buf)))
        kind = rng.randrange(5)
        if kind == 0 and buf:
            buf[at] = rng.randrange(256)
        elif kind == 1 and buf:
            buf[at] ^= 1 << rng.randrange(8)
        elif kind == 2:
            buf.insert(at, rng.randrange(256))
        elif kind == 3 and buf:
            del buf[at]
        elif len(buf) >= at + 4:
            value = rng.choice([0, 1, -1, -2, 2**31 - 1, -(2**31), len(buf), len(buf) - at, 1 << 20])
            buf[at : at + 4] = struct.pack(">i", value)
    if buf[:4] == NOTIFICATION_XID:
        buf[0] = 0x7F
    return bytes(buf)


def fuzz_bodies(ens: Ensemble, seed: int, mutations: int) -> list[str]:
    """Every sample request cut at every length, then mutated; round-robin over the servers."""
    rng = random.Random(seed)
    attackers = [Attacker(ens.endpoint(sid)) for sid in ens.servers]
    problems: list[str | None] = []
    case = 0
    for name, sent in sample_requests():
        for n in range(len(sent)):
            problems.append(attackers[case % len(attackers)].attack(sent[:n], f"{name} cut at {n}"))
            case += 1
        for i in range(mutations):
            problems.append(
                attackers[case % len(attackers)].attack(mutate(rng, sent), f"{name} mutation {i}")
            )
            case += 1
    for att in attackers:
        att.close()
    return [p for p in problems if p]


def test_every_request_body_cut_and_mutated(
    ens: Ensemble, witnesses: list[Witness], nobody_hurt: Callable[[], None]
) -> None:
    """A valid frame of every opcode, cut at every length (Marshalling, cut off) and mutated
    MUTATIONS_PER_REQUEST ways each (what the codec cannot decode is Marshalling, or
    Unimplemented for an unknown opcode; what it can gets a well-formed reply)."""
    problems = fuzz_bodies(ens, SEED + 2, MUTATIONS_PER_REQUEST)
    assert not problems, f"seed {SEED}: {len(problems)} problems:\n" + "\n".join(problems[:40])
    nobody_hurt()


def test_oversized_data_and_frames(
    ens: Ensemble, witnesses: list[Witness], nobody_hurt: Callable[[], None]
) -> None:
    """Data over the 1 MiB limit is BadArguments (and the connection carries on), a buffer length
    past the frame is Marshalling, and a frame over frame_bytes_max never reaches the node."""
    big, over = b"b" * limits.data_bytes_max, b"o" * (limits.data_bytes_max + 1)
    att = Attacker(ens.endpoint(1))
    bad_args = [
        ("setData over the data limit", frame(1, OP.SET_DATA, rec.SetDataRequest(SANDBOX, over, -1))),
        ("create over the data limit", frame(2, OP.CREATE, rec.CreateRequest(f"{SANDBOX}/o", over, OPEN, 0))),
        ("create with a path over path_bytes_max", frame(3, OP.CREATE, rec.CreateRequest("/" + "p" * 4096, b"", OPEN, 0))),
    ]  # fmt: skip
    for what, sent in bad_args:
        answer = att.send(sent)
        assert answer and header_of(answer).err == Code.BAD_ARGUMENTS, f"{what}: {answer!r:.80}"
    # BadArguments is an answer, not a reason to cut the client off.
    answer = att.send(frame(4, OP.CREATE, rec.CreateRequest(f"{SANDBOX}/big", big, OPEN, 0)))
    assert answer and header_of(answer).err == Code.OK, f"a create of exactly 1 MiB: {answer!r:.60}"
    multi = rec.encode_multi_request(
        [(OP.CREATE, rec.CreateRequest(f"{SANDBOX}/m1", b"", OPEN, 0)), (OP.SET_DATA, rec.SetDataRequest(SANDBOX, over, -1))]
    )  # fmt: skip
    answer = att.send(frame(5, OP.MULTI, multi))
    assert answer and header_of(answer).err == Code.OK, f"{answer!r:.80}"
    results = rec.read_multi_response(Reader(answer[16:]))
    assert [(r.type, r.err) for r in results] == [(OP.ERROR, 0), (OP.ERROR, Code.BAD_ARGUMENTS)]
    torn = frame(6, OP.SET_DATA, rec.SetDataRequest(SANDBOX, b"x", -1))
    torn = torn[:15] + struct.pack(">i", 2**31 - 1) + torn[19:]  # a buffer claiming 2 GiB
    assert att.attack(torn, "a 2 GiB buffer length") is None
    att.close()
    # Over frame_bytes_max ZeroMQ drops the connection before the node sees a byte of it.
    sock = dealer(ens.endpoint(2))
    sock.send(connect_frame())
    assert as_connect_response(recv_reply(sock) or b"") is not None
    sock.send(frame(7, OP.SET_DATA, rec.SetDataRequest(SANDBOX, b"x" * limits.frame_bytes_max, -1)))
    assert recv_reply(sock, 1500) is None, "a frame over frame_bytes_max got an answer"
    sock.send(connect_frame())  # the DEALER reconnects: a new connection, a new session
    assert as_connect_response(recv_reply(sock) or b"") is not None
    sock.close()
    for sid in ens.servers:  # the 1 MiB znode reads back everywhere
        reader = ens.session(sid, last_zxid=att.last_zxid, wait_ms=REPLY_WAIT_MS)
        assert reader.get(f"{SANDBOX}/big") == (0, big) and reader.get(f"{SANDBOX}/m1")[0] == Code.NO_NODE
        reader.close_session()
        reader.close()
    nobody_hurt()


# (op, path, code) per zkcore: writes check paths (BadArguments, or NoNode where ZooKeeper looks the
# parent up first); reads just look the path up (NoNode).
BAD_PATHS = [
    *[(op, p, Code.BAD_ARGUMENTS) for op in ("create", "delete", "setData") for p in ("", "a", "/\x00", "/fz/\x00")],
    *[(op, p, Code.NO_NODE) for op in ("getData", "exists", "getChildren") for p in ("", "a", "/a/", "/a//b", "/\x00")],
    ("create", "/", Code.NODE_EXISTS), ("create", "/fz/", Code.BAD_ARGUMENTS), ("create", "/.", Code.BAD_ARGUMENTS),
    ("create", "/fz/..", Code.BAD_ARGUMENTS), ("create", "/fz/a\x01", Code.BAD_ARGUMENTS),
    ("create", "/fz/\ufff0", Code.BAD_ARGUMENTS), ("create", "//", Code.BAD_ARGUMENTS),
    ("create", "/a/", Code.NO_NODE), ("create", "/a//b", Code.NO_NODE), ("create", "/fz//b", Code.NO_NODE),
    ("create", "/fz/./b", Code.NO_NODE), ("setData", "/a/", Code.BAD_ARGUMENTS),
    ("setData", "/a//b", Code.BAD_ARGUMENTS), ("setData", "/fz/", Code.BAD_ARGUMENTS),
    ("delete", "/", Code.BAD_ARGUMENTS), ("delete", "/zookeeper", Code.BAD_ARGUMENTS),
    ("delete", "/zookeeper/quota", Code.BAD_ARGUMENTS), ("delete", "/a/", Code.NO_NODE),
    ("create", "/zookeeper", Code.NODE_EXISTS), ("create", "/zookeeper/config", Code.NODE_EXISTS),  # as there
    ("setData", "/zookeeper/config", Code.NO_AUTH), ("create", "/zookeeper/config/x", Code.NO_AUTH),
    ("create", "/zookeeper/x", Code.OK), ("delete", "/zookeeper/x", Code.OK),  # ZooKeeper allows these
    ("create2-sequential", "/fz/", Code.OK),  # "/fz/0000000042": the name is all sequence number
]  # fmt: skip


def test_bad_paths_get_zookeeper_codes(
    ens: Ensemble, witnesses: list[Witness], nobody_hurt: Callable[[], None]
) -> None:
    """BAD_PATHS on every server (reads go the native way), then paths that are not UTF-8."""
    makers: dict[str, Callable[[str], tuple[int, rec.JuteRecord]]] = {
        "create": lambda p: (OP.CREATE, rec.CreateRequest(p, b"", OPEN, 0)),
        "create2-sequential": lambda p: (OP.CREATE2, rec.CreateRequest(p, b"", OPEN, 2)),
        "delete": lambda p: (OP.DELETE, rec.DeleteRequest(p, -1)),
        "setData": lambda p: (OP.SET_DATA, rec.SetDataRequest(p, b"", -1)),
        "getData": lambda p: (OP.GET_DATA, rec.PathWatchRequest(p, False)),
        "exists": lambda p: (OP.EXISTS, rec.PathWatchRequest(p, False)),
        "getChildren": lambda p: (OP.GET_CHILDREN, rec.PathWatchRequest(p, False)),
    }
    problems: list[str | None] = []
    for sid in ens.servers:  # reads take the native path on every server
        att = Attacker(ens.endpoint(sid))
        for i, (op, path, code) in enumerate(BAD_PATHS):
            if op in ("create", "delete") and path == "/zookeeper/x" and sid != 1:
                continue
            answer = att.send(frame(i, *makers[op](path)))
            got = header_of(answer).err if answer and len(answer) >= 16 else answer
            if got != code:
                problems.append(f"server {sid}: {op} {path!r}: {got!r}, want {code} ({Code(code).name})")
        for raw in (b"/\xff", b"/\xed\xa0\x80", b"/fz/\xc0\xaf"):  # not UTF-8: the request does not decode
            sent = frame(99, OP.GET_DATA, struct.pack(">i", len(raw)) + raw + b"\0")
            problems.append(att.attack(sent, f"getData of bytes {raw!r}"))
        att.close()
    found = [p for p in problems if p]
    assert not found, "\n".join(found)
    nobody_hurt()


def test_multi_with_garbage_inside(
    ens: Ensemble, witnesses: list[Witness], nobody_hurt: Callable[[], None]
) -> None:
    """A multi that does not decode is Marshalling; one with a bad op inside fails as a whole,
    reporting 0 for the ops before the bad one and that op's code, and changes nothing."""

    def ops(*items: tuple[int, rec.JuteRecord]) -> bytes:
        return rec.encode_multi_request(list(items))

    create = (OP.CREATE, rec.CreateRequest(f"{SANDBOX}/mg", b"", OPEN, 0))
    head = rec.MultiHeader
    sync_op = head(OP.SYNC, False, -1).encode() + rec.PathRequest(SANDBOX).encode()
    garbage = {  # none of these decode: Marshalling, cut off
        "an op type not allowed in a multi": sync_op + ops(),
        "an unknown op type": head(99, False, -1).encode() + ops(),
        "done flag 2": ops(create)[:-9] + head(-1, True, -1).encode()[:4] + b"\2" + struct.pack(">i", -1),
        "no closing header": ops(create)[:-9],
        "a torn op": ops(create)[:20] + ops(),
        "more than multi_ops_max ops": ops(*[(OP.CHECK, rec.CheckVersionRequest(SANDBOX, -1))] * 1025),
        "a write inside multiRead": ops(create),
    }
    att = Attacker(ens.endpoint(3))
    problems: list[str | None] = []
    for what, body in garbage.items():
        opcode = OP.MULTI_READ if "multiRead" in what else OP.MULTI
        problems.append(att.attack(frame(11, opcode, body), what))
        problems.append(None if att.cut_off else f"{what}: decoded, but it must not")
    # These decode; the multi fails as a whole on the bad op, and nothing of it happens.
    failing = {
        "a read inside multi": (ops(create, (OP.GET_DATA, rec.PathWatchRequest(SANDBOX, False))), Code.BAD_ARGUMENTS),
        "a bad path inside multi": (ops(create, (OP.CREATE, rec.CreateRequest("/fz/", b"", OPEN, 0))), Code.BAD_ARGUMENTS),
        "bad create flags": (ops(create, (OP.CREATE, rec.CreateRequest("/fz/f", b"", OPEN, 77))), Code.BAD_ARGUMENTS),
        "a bad version": (ops(create, (OP.CHECK, rec.CheckVersionRequest(SANDBOX, 12345))), Code.BAD_VERSION),
        "an empty ACL": (ops(create, (OP.CREATE, rec.CreateRequest("/fz/e", b"", (), 0))), Code.INVALID_ACL),
    }  # fmt: skip
    for what, (body, code) in failing.items():
        answer = att.send(frame(12, OP.MULTI, body)) or b""
        results = rec.read_multi_response(Reader(answer[16:])) if header_of(answer).err == 0 else []
        if [r.err for r in results] != [0, code]:
            problems.append(f"{what}: {answer[:16].hex()} results {results}, want [0, {code}]")
    answer = att.send(frame(13, OP.GET_DATA, rec.PathWatchRequest(f"{SANDBOX}/mg", False))) or b""
    problems.append(
        None if header_of(answer).err == Code.NO_NODE else f"{SANDBOX}/mg exists: {answer[:16]!r}"
    )
    att.close()
    found = [p for p in problems if p]
    assert not found, "\n".join(found)
    nobody_hurt()


def test_many_connects_without_sessions(
    ens: Ensemble, witnesses: list[Witness], nobody_hurt: Callable[[], None]
) -> None:
    """300 clients that connect and never send a byte, 300 that send a ConnectRequest and leave
    without reading the answer (their sessions expire), 100 that send half of one."""
    leader = leader_of(ens)
    sessions = int(ens.mntr(leader)["zk_sessions"])
    endpoints = [ens.endpoint(sid) for sid in ens.servers]
    silent = [dealer(endpoints[i % 3]) for i in range(300)]
    for i in range(400):
        sock = dealer(endpoints[i % 3])
        sock.setsockopt(zmq.LINGER, 1000)  # what was sent still goes out after close()
        sock.send(connect_frame() if i < 300 else connect_frame()[:20])
        if i % 3 == 0:  # and a read behind it
            sock.send(frame(1, OP.GET_DATA, rec.PathWatchRequest(SANDBOX, False)))
        sock.close()
    wait_for(lambda: int(ens.mntr(leader)["zk_sessions"]) >= sessions + 250, 10, "their sessions")
    for sid in ens.servers:  # a newcomer still gets a session everywhere
        newcomer = WireSession(ens.endpoint(sid), wait_ms=REPLY_WAIT_MS)
        assert newcomer.get(SANDBOX)[0] == Code.OK
        newcomer.close_session()
        newcomer.close()
    nobody_hurt()
    for sock in silent:
        sock.close()


def test_delete_container_cannot_remove_another_clients_node(
    ens: Ensemble, witnesses: list[Witness], nobody_hurt: Callable[[], None]
) -> None:
    """deleteContainer (20) is what the leader proposes to reap empty containers and expired TTL
    nodes. Sent by a client it must not delete a node that client may not delete (here: a
    witness's, under a digest ACL; a plain delete gets NoAuth)."""
    victim = witnesses[1]
    target = victim.paths[0]
    att = Attacker(ens.endpoint(3))
    delete = att.send(frame(1, OP.DELETE, rec.DeleteRequest(target, -1))) or b""
    assert header_of(delete).err == Code.NO_AUTH, delete[:16]
    answer = att.send(frame(2, OP.DELETE_CONTAINER, rec.PathRequest(target))) or b""
    att.close()
    reader = ens.session(victim.sid, last_zxid=att.last_zxid, wait_ms=REPLY_WAIT_MS)
    err, data = reader.get(target)
    reader.close_session()
    reader.close()
    assert err == Code.OK and data in victim.values[target], (
        f"an unauthenticated client's deleteContainer answered {answer[:16].hex()} and removed "
        f"{target} (ACL digest:w{victim.sid}): getData now says {err}"
    )
    nobody_hurt()


def test_a_flood_is_answered_or_cut_off(
    ens: Ensemble, witnesses: list[Witness], nobody_hurt: Callable[[], None]
) -> None:
    """Far more requests than client_queue_max, pipelined from a follower's client without reading
    (a write and nine reads, over and over): it gets every reply, or replies in order up to an
    empty frame that cuts it off. The witnesses must not notice."""
    leader = leader_of(ens)
    sid = next(s for s in ens.servers if s != leader)
    att = Attacker(ens.endpoint(sid))
    att.sock.setsockopt(zmq.SNDHWM, 0)
    count = 3 * limits.client_queue_max
    write = rec.SetDataRequest(f"{SANDBOX}/flood", b"f" * 100, -1)
    read = rec.PathWatchRequest(SANDBOX, False)
    answer = att.send(frame(1, OP.CREATE, rec.CreateRequest(write.path, b"", OPEN, 0))) or b""
    assert header_of(answer).err == Code.OK, answer[:16]
    for i in range(count):
        att.sock.send(frame(10 + i, *((OP.SET_DATA, write) if i % 10 == 0 else (OP.GET_DATA, read))))
    frames = drain(att.sock, count)
    att.close()
    problem = judge_stream(frames, 10, count)
    assert problem is None, f"flood on server {sid}: {problem}"
    errors = [f for f in frames if len(f) >= 16 and header_of(f).err == Code.MARSHALLING]
    assert not errors, (
        f"flood on server {sid}: an error reply overtook the replies owed ({errors[0][:16].hex()})"
    )
    nobody_hurt()


def test_a_client_a_little_past_the_queue_limit_is_slowed_not_cut_off(
    ens: Ensemble, witnesses: list[Witness], nobody_hurt: Callable[[], None]
) -> None:
    """A client (an async bulk load through a binding that does not cap its requests in flight)
    pipelining a few thousand more writes than client_queue_max: the server holds the frames past
    the limit until its replies go out, and answers every one, in order. (Before, the request over
    the limit got a Marshalling error ahead of the replies it came after, and was cut off.)"""
    leader = leader_of(ens)
    sid = next(s for s in ens.servers if s != leader)
    att = Attacker(ens.endpoint(sid), timeout_ms=30_000)
    att.sock.setsockopt(zmq.SNDHWM, 0)
    count = limits.client_queue_max + 2_500
    for i in range(count):
        att.sock.send(frame(10 + i, OP.SET_DATA, rec.SetDataRequest(SANDBOX, b"b", -1)))
    frames = drain(att.sock, count, quiet_ms=10_000)
    att.close()
    assert judge_stream(frames, 10, count) is None and len(frames) == count, (
        f"server {sid}: {judge_stream(frames, 10, count)}; {len(frames)} of {count} answers"
    )
    assert {header_of(f).err for f in frames} == {Code.OK}
    nobody_hurt()


def test_a_client_that_never_reads_is_answered_or_cut_off(
    ens: Ensemble, witnesses: list[Witness], nobody_hurt: Callable[[], None]
) -> None:
    """A client that pipelines 110 000 reads and reads nothing until the end: it gets them all, or
    is cut off and told so. Replies must not go missing while its connection carries on."""
    att = Attacker(ens.endpoint(1), timeout_ms=30_000)  # its session must outlive the wait
    count = 110_000  # past the server's send high-water mark (100 000) and the client's (1000)
    received = int(ens.mntr(1)["zk_packets_received"])
    for i in range(count):
        att.sock.send(frame(10 + i, OP.EXISTS, rec.PathWatchRequest(SANDBOX, False)))
    wait_for(lambda: int(ens.mntr(1)["zk_packets_received"]) >= received + count, 60, "server 1 to read them")
    frames = drain(att.sock, count, quiet_ms=1000)  # all answered by now: nothing is on its way
    problem = judge_stream(frames, 10, count)
    if problem is not None and b"" not in frames:  # not told: then it must at least be cut off now
        after = att.send(frame(7, OP.EXISTS, rec.PathWatchRequest(SANDBOX, False)))
        served = after is not None and len(after) >= 16 and header_of(after).xid == 7
        problem = (
            f"{problem}; yet its next request is served: the rest were dropped silently" if served else None
        )
    att.close()
    assert problem is None, f"server 1: {problem}"
    nobody_hurt()


def test_writes_forwarded_while_another_client_floods_are_answered(
    ens: Ensemble, witnesses: list[Witness], nobody_hurt: Callable[[], None]
) -> None:
    """A follower forwards writes to the leader, which takes a bounded number in flight. One
    client pipelining thousands of writes through one follower must not make another client's
    writes through another follower vanish, nor its own."""
    leader = leader_of(ens)
    flooded, other = [s for s in ens.servers if s != leader]
    flooder = Attacker(ens.endpoint(flooded))
    flooder.sock.setsockopt(zmq.SNDHWM, 0)
    polite = Attacker(ens.endpoint(other))
    count, burst = 5000, 300
    for i in range(count):
        flooder.sock.send(frame(10 + i, OP.SET_DATA, rec.SetDataRequest(SANDBOX, b"f", -1)))
    for i in range(burst):
        polite.sock.send(frame(10 + i, OP.CREATE, rec.CreateRequest(f"{SANDBOX}/p{i}", b"p", OPEN, 0)))
    polite_frames = drain(polite.sock, burst)
    flood_problem = judge_stream(drain(flooder.sock, count), 10, count)
    errs = sorted({header_of(f).err for f in polite_frames if len(f) >= 16})
    flooder.close()
    polite.close()
    assert len(polite_frames) == burst and errs == [0], (
        f"a client pipelining {burst} creates through server {other} got {len(polite_frames)} "
        f"replies (errs {errs}) while another flooded server {flooded}"
    )
    assert flood_problem is None, f"the flooder through server {flooded}: {flood_problem}"
    nobody_hurt()


def test_reads_queued_behind_a_slow_write_do_not_crash_the_server(
    ens: Ensemble, witnesses: list[Witness], nobody_hurt: Callable[[], None]
) -> None:
    """A client's reads wait behind its write until that is applied. If more than read_batch_max
    of them pile up (here: the leader paused for a moment, as a long GC or a slow fsync would),
    the server must still answer them all."""
    leader = leader_of(ens)
    sid = next(s for s in ens.servers if s != leader)
    pid, outstanding = ens.pid(sid), int(ens.mntr(sid)["zk_outstanding_requests"])
    att = Attacker(ens.endpoint(sid))
    att.sock.setsockopt(zmq.SNDHWM, 0)
    count = limits.read_batch_max + 2000
    frames = [frame(11 + i, OP.GET_DATA, rec.PathWatchRequest(SANDBOX, False)) for i in range(count)]
    ens.kill(leader, signal.SIGSTOP)
    try:
        paused = time.monotonic()
        att.sock.send(frame(10, OP.SET_DATA, rec.SetDataRequest(SANDBOX, b"slow", -1)))
        for f in frames:
            att.sock.send(f)
        # Resume the leader once they are all queued, and well inside syncLimit: no election.
        queued = 0
        while time.monotonic() < paused + 0.35:
            queued = int(ens.mntr(sid).get("zk_outstanding_requests", "0")) - outstanding
            if queued > count:
                break
    finally:
        ens.kill(leader, signal.SIGCONT)
    problem = judge_stream(drain(att.sock, count + 1), 10, count + 1)
    att.close()
    assert ens.pid(sid) == pid, (
        f"server {sid} died answering {queued} requests queued behind a write\n{log_tail(ens, sid)}"
    )
    assert queued > count, f"server {sid} queued only {queued} of {count + 1} requests in 0.35 s: try again"
    assert problem is None, f"server {sid}: {problem}"
    nobody_hurt()


def test_distinct_big_acls_do_not_pin_memory(
    ens: Ensemble, witnesses: list[Witness], nobody_hurt: Callable[[], None]
) -> None:
    """Creates that each carry their own 1 MB ACL id (refused: InvalidACL) must leave nothing
    behind, in the server that decoded them or in the leader. Measured over a second batch of 64,
    once the allocator has seen the first."""
    leader = leader_of(ens)
    sid = next(s for s in ens.servers if s != leader)
    procs = {s: psutil.Process(ens.pid(s)) for s in (sid, leader)}
    att = Attacker(ens.endpoint(sid))
    rss: list[dict[int, int]] = []
    for batch in range(2):
        for i in range(64):
            acl = (rec.ACL(rec.Perms.ALL, rec.Id("fuzz", f"{batch}-{i:04d}" + "x" * 1_000_000)),)
            answer = att.send(frame(i, OP.CREATE, rec.CreateRequest(f"{SANDBOX}/acl", b"", acl, 0))) or b""
            assert header_of(answer).err == Code.INVALID_ACL, answer[:16]
        rss.append({s: p.memory_info().rss for s, p in procs.items()})
    att.close()
    grown = {s: (rss[1][s] - rss[0][s]) >> 20 for s in procs}
    assert all(mib < 32 for mib in grown.values()), (
        f"server RSS grew by {grown} MiB (server id: MiB) over 64 refused creates with a 1 MB ACL id "
        f"each: something keeps what they decoded"
    )
    nobody_hurt()


def costly_frames(kind: str) -> list[bytes]:
    """Eight frames of a few hundred KB that each take a leader 0.15 to 0.2 s to take apart and
    prep here; a server may spend that on one frame, not on one client's eight in a row."""
    if kind == "acl-entries":  # over acl_entries_max: refused, once 20 000 entries are decoded
        return [fat_acl_create(20 + i, 20_000) for i in range(8)]
    if kind == "setWatches":  # 40 000 paths to decode, check and watch (none fires: relativeZxid 2**62)
        watches = rec.SetWatches(2**62, ("/zookeeper",) * 40_000, (), ())
        return [frame(20 + i, OP.SET_WATCHES, watches) for i in range(8)]
    # multi: 256 creates with 40 digest ACL entries each, inside every limit
    acl = tuple(rec.ACL(rec.Perms.ALL, rec.Id("digest", f"u{i}:x")) for i in range(40))
    return [
        frame(20 + r, OP.MULTI, rec.encode_multi_request(
            [(OP.CREATE, rec.CreateRequest(f"{SANDBOX}/c{r}-{i}", b"", acl, 0)) for i in range(256)]))
        for r in range(8)
    ]  # fmt: skip


@pytest.mark.parametrize("kind", ["acl-entries", "setWatches", "multi"])
def test_costly_frames_do_not_stall_the_ensemble(
    ens: Ensemble, witnesses: list[Witness], nobody_hurt: Callable[[], None], kind: str
) -> None:
    """Frames that are slow to decode and prep, pipelined to the leader by one client: they get
    their answers (or the client is cut off), while the leader keeps its followers (syncLimit is
    half a second here) and the witnesses keep their connections."""
    leader = leader_of(ens)
    att = Attacker(ens.endpoint(leader))
    sent = costly_frames(kind)
    for f in sent:
        att.sock.send(f)
    problem = judge_stream(drain(att.sock, len(sent), quiet_ms=6000), 20, len(sent))
    att.close()
    assert problem is None, f"{kind} frames to the leader: {problem}"
    nobody_hurt()


@pytest.fixture
def slow_selected(request: pytest.FixtureRequest) -> None:
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("soak run: select it with -m slow")


@pytest.mark.slow
def test_soak_many_attackers_at_once(
    ens: Ensemble, witnesses: list[Witness], nobody_hurt: Callable[[], None], slow_selected: None
) -> None:
    """For SOAK_S seconds (ZKPY_FUZZ_SOAK_S, default 300) at once: three attackers mutating
    every request body 200 ways a round with a new seed each round, a stream of garbage
    connects, and floods from a fourth client."""
    deadline = time.monotonic() + int(os.environ.get("ZKPY_FUZZ_SOAK_S", "300"))
    problems: list[str] = []

    def garbage_connects(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            sid = rng.choice(ens.servers)
            sock = dealer(ens.endpoint(sid))
            first = rng.randbytes(rng.randrange(0, 60))
            sock.send(first)
            problem = judge_connect_answer(first, recv_reply(sock, 3000))
            sock.close()
            if problem:
                problems.append(f"server {sid}, garbage connect {first.hex()}: {problem}")

    def fuzz(seed: int) -> None:
        for round_ in itertools.count():
            if time.monotonic() > deadline:
                return
            problems.extend(fuzz_bodies(ens, seed * 1000 + round_, 200))

    def floods(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            sid = rng.choice(ens.servers)
            att = Attacker(ens.endpoint(sid))
            count = rng.choice([1000, limits.client_queue_max + 10, 3 * limits.client_queue_max])
            for i in range(count):
                op = (OP.SET_DATA, rec.SetDataRequest(SANDBOX, b"s", -1)) if i % 10 == 0 else (
                    OP.GET_DATA, rec.PathWatchRequest(SANDBOX, False))  # fmt: skip
                att.sock.send(frame(10 + i, *op))
            problem = judge_stream(drain(att.sock, count), 10, count)
            att.close()
            if problem:
                problems.append(f"server {sid}, a flood of {count}: {problem}")

    threads = [threading.Thread(target=garbage_connects, args=(SEED + 50,), daemon=True),
               threading.Thread(target=floods, args=(SEED + 60,), daemon=True)]  # fmt: skip
    threads += [threading.Thread(target=fuzz, args=(SEED + 100 + i,), daemon=True) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()) + 120)
    assert not problems, f"seed {SEED}: {len(problems)} problems:\n" + "\n".join(problems[:40])
    nobody_hurt()


# --- and afterwards -----------------------------------------------------------------------------


def read_many(session: WireSession, paths: list[str]) -> dict[str, tuple[int, bytes]]:
    """getData of every path, pipelined a few hundred at a time."""
    out: dict[str, tuple[int, bytes]] = {}
    for at in range(0, len(paths), 500):
        chunk = paths[at : at + 500]
        for i, path in enumerate(chunk):
            session.sock.send(frame(i + 1, OP.GET_DATA, rec.PathWatchRequest(path, False)))
        for path in chunk:
            answer = recv_reply(session.sock)
            assert answer, f"{session.endpoint}: {answer!r} for getData {path}"
            r = Reader(answer)
            err = rec.ReplyHeader.read(r).err
            out[path] = (err, rec.GetDataResponse.read(r).data if err == Code.OK else b"")
    return out


def test_every_acknowledged_write_is_on_every_server(
    ens: Ensemble, witnesses: list[Witness], started: Baseline
) -> None:
    """After all the attacks: every write a witness saw acknowledged is on every server with its
    data, and nothing it did not write; across the whole run no node died or was re-elected and
    no witness missed a reply; every attacker's session and connection is gone in the end."""
    ens.wait_healthy(60)
    for w in witnesses:
        w.halt.set()
    for w in witnesses:
        w.join(30)
    last_zxid = max(w.last_zxid for w in witnesses)
    for sid in ens.servers:
        reader = ens.session(sid, last_zxid=last_zxid, wait_ms=REPLY_WAIT_MS)
        for w in witnesses:
            err, children = reader.children(w.root)
            names = {f"{w.root}/{c}" for c in children}
            must = set(w.paths)
            assert err == Code.OK and must <= names, f"server {sid} lost {sorted(must - names)[:5]}"
            assert names <= must | w.unsure, f"server {sid} has {sorted(names - must - w.unsure)[:5]}"
            got = read_many(reader, sorted(must))
            wrong = [p for p, (e, data) in got.items() if e != Code.OK or data not in w.values[p]]
            assert not wrong, f"server {sid} holds other data at {wrong[:5]}"
        reader.close_session()
        reader.close()
    print("witness ops:", {w.sid: w.ops for w in witnesses},
          "max latency s:", {w.sid: round(w.max_latency_s, 3) for w in witnesses})  # fmt: skip
    assert_nobody_hurt(ens, [], started)  # the witnesses have stopped: their failures are below
    failures = [f for w in witnesses for f in w.failures]
    assert not failures, f"{len(failures)} witness failures over the run:\n" + "\n".join(failures[:20])

    def all_gone() -> bool:  # every attacker's session expires, and its connection goes with it
        views = [ens.mntr(sid) for sid in ens.servers]
        return all(v.get("zk_num_alive_connections") == "0" and v.get("zk_sessions") == "0" for v in views)

    # An attacker above holds a 30 s session: wait out the longest timeout the server grants.
    wait_for(all_gone, 45, "every session to expire and every connection to be forgotten")
