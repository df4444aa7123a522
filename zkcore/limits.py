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
# Pending change records kept by the prep stage (outstanding, uncommitted changes).
prep_pending_max = 100_000
# Identities attached to one session by addAuth.
auth_ids_max = 32
# Read requests decoded in one batch by the native read path.
read_batch_max = 4096
# Framed bytes written to the txn log in one native log_append call.
log_batch_bytes_max = 64 * 1024 * 1024
# Session timeout bounds, in ticks (ZooKeeper clamps to [2, 20] x tickTime).
session_timeout_ticks_min = 2
session_timeout_ticks_max = 20
# Maximum TTL for TTL znodes, in milliseconds (ZooKeeper's EphemeralType TTL mask).
ttl_ms_max = (1 << 40) - 1
