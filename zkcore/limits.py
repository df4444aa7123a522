"""Every bound on a queue, buffer or size in zkcore, in one place.

Each constant is checked where something is inserted; a value over a limit is the caller's error.
"""

# Data stored in one znode (ZooKeeper's jute.maxbuffer default is 0xfffff; we allow 1 MiB).
data_bytes_max = 1024 * 1024
# A single decoded request or reply frame.
frame_bytes_max = data_bytes_max + 64 * 1024
# A path, in UTF-8 bytes.
path_bytes_max = 4096
# Entries in one ACL list.
acl_entries_max = 64
# Operations in one multi / multiRead request.
multi_ops_max = 1024
# Elements in any decoded vector (children lists may be long; bounded by frame size as well).
vector_length_max = 1_000_000
# Pending change records kept by the prep stage (outstanding, uncommitted changes). A closeSession
# is never refused for it: its session's ephemerals must go, however many.
prep_pending_max = 100_000
# Bytes of ephemeral paths a closeSession txn lists (a session with more has each server delete
# those its tree holds instead): well inside a frame, which no txn may outgrow.
close_session_listed_bytes_max = 256 * 1024
# Identities attached to one session by addAuth.
auth_ids_max = 32
# Read requests decoded in one batch by the native read path.
read_batch_max = 4096
# Writes from one connection that one receive_frames call takes (about 15 us each): a shell that
# bounds its loop turn stops between calls.
write_run_max = 100
# Requests one client connection may have outstanding on a server before it is disconnected.
client_queue_max = 10_000
# Log lines a server queues for its shell between two ready() calls.
server_notes_max = 1000
# Client connections one server holds at once.
connections_max = 100_000
# Sessions one ensemble tracks at once.
sessions_max = 1_000_000
# Framed bytes written to the txn log in one native log_append call.
log_batch_bytes_max = 64 * 1024 * 1024
# A SNAP carries a whole tree in one buffer (its length a long past 2 GiB: see
# zkcore._jute.SNAPSHOT_LONG_LENGTH); the bound is a sanity check, memory is the real one.
snapshot_bytes_max = 2**40
# Maximum TTL for TTL znodes, in milliseconds (ZooKeeper's EphemeralType TTL mask).
ttl_ms_max = (1 << 40) - 1
# Zab (zkcore/zab): servers in one ensemble, voters and observers together.
zab_servers_max = 255
# Uncommitted proposals a leader keeps in flight; writes beyond this wait in its backlog.
zab_proposals_outstanding_max = 1000
# ... and their bytes (one always goes, however big), so that what the followers it waits for
# have not taken yet fits in their transport (a shared-memory ring holds 8 MiB): a bulk load of
# 1 MB znodes had 64 MB in flight, and the follower the quorum needed, busy for a moment with
# its snapshot, lost 32 proposals at once on the way, synced again, and cost an election.
zab_proposals_outstanding_bytes_max = 4 * 1024 * 1024
# Writes waiting for room in the pipeline, and their bytes; propose() beyond this is refused.
zab_backlog_max = 10_000
zab_backlog_bytes_max = 64 * 1024 * 1024
# Bytes of logged entries not yet committed that a replica keeps as they were appended, to hand
# out for applying without copying them back out of its log; beyond this they are copied.
zab_uncommitted_kept_bytes_max = 16 * 1024 * 1024
# Client syncs a leader holds while it confirms with a quorum that it still leads.
zab_syncs_max = 100_000
# Messages waiting in one replica's outbox between ready() calls; beyond this a message is
# dropped, which Zab survives (the peer sees a gap or a silence and resynchronises).
zab_outbox_messages_max = 100_000
# Txns a leader sends as a DIFF or TRUNC (in messages of zab_sync_entries_max); a learner further
# behind gets a SNAP. The log since the last snapshot is in memory, so this is a matter of what
# costs less to send and apply: ZooKeeper syncs from its txn log while that is under a third of
# its snapshot's size (snapshotSizeFactor), and keeps 500 proposals in memory besides. A
# follower that loaded a big SNAP for a few seconds under write load comes back this far behind.
zab_diff_entries_max = 20_000
# Entries in one decoded sync message (DIFF, TRUNC, SNAP); a longer sync goes on in DIFFs.
zab_sync_entries_max = 2_500
# The largest zxid counter a leader assigns; the proposal after it forces a new epoch
# (ZooKeeper re-elects when the counter would reach 0xffffffff).
zab_zxid_counter_max = 0xFFFFFFFE
