/* Decoders for a restart: logged txns into columns (zk_txn_decode) and a snapshot's node records
 * into columns (zk_snapshot_scan), so Python builds the tree in bulk instead of one record at a
 * time. What they mean is defined by the pure-Python references in zkcore/_restore.py; C returns
 * codes and spans into the caller's buffer, native/_crestore.py turns them into Python values.
 */
#ifndef ZK_RESTORE_H
#define ZK_RESTORE_H

#include <stddef.h>
#include <stdint.h>

/* Txn kinds the replay fast path takes; anything else (or anything malformed) is OTHER. */
#define ZK_TXN_OTHER 0
#define ZK_TXN_CREATE 1
#define ZK_TXN_DELETE 2
#define ZK_TXN_SET_DATA 3
#define ZK_TXN_CREATE_SESSION 4

#define ZK_TXN_HEADER_BYTES 32
/* A snapshot node record: path length, data length, then ACL number and the persisted Stat. */
#define ZK_SNAPSHOT_FIXED_BYTES 64
#define ZK_SNAPSHOT_FIELDS 9

enum zk_restore_code {
    ZK_RESTORE_OK = 0,
    ZK_RESTORE_NOMEM = -1,
    ZK_SNAPSHOT_CUT = -2,    /* a record runs past the end of the payload */
    ZK_SNAPSHOT_ACL = -3,    /* an ACL number outside the table */
    ZK_SNAPSHOT_ROOT = -4,   /* the root after the first record */
    ZK_SNAPSHOT_PARENT = -5, /* a node before its parent, or a path with no parent */
    ZK_SNAPSHOT_TWICE = -6,  /* a path listed twice */
};

/* Per txn i of zk_txn_decode (arrays of n, owned by the caller). Header fields are set whenever
 * the payload holds a whole TxnHeader, whatever the kind; the rest only for the fast kinds.
 * Spans are offsets into buf. acl_spans_* hold the distinct ACL vectors (capacity n). */
typedef struct {
    uint8_t *kinds;
    int64_t *zxids;
    int64_t *times;
    int64_t *client_ids;
    int64_t *owners;  /* create: the new node's ephemeralOwner */
    int32_t *numbers; /* create: parentCVersion; setData: version; createSession: timeout */
    uint64_t *path_starts;
    uint32_t *path_lens;
    uint64_t *data_starts;
    uint32_t *data_lens;
    int32_t *acl_numbers; /* create: index into acl_spans_*; else -1 */
    uint64_t *acl_starts;
    uint32_t *acl_lens;
    size_t acl_count;
    size_t path_bytes; /* the path bytes of all fast txns together */
} zk_txn_columns;

/* Decode n txn payloads laid back to back in buf; payload i ends at ends[i]. Buffers longer
 * than buffer_bytes_max and vectors longer than vector_length_max are malformed, as are TTLs
 * outside (0, ttl_ms_max]. Returns ZK_RESTORE_OK or ZK_RESTORE_NOMEM. */
int zk_txn_decode(const uint8_t *buf, const uint64_t *ends, size_t n, int64_t buffer_bytes_max,
                  int64_t vector_length_max, int64_t ttl_ms_max, zk_txn_columns *out);

/* Per node record i of zk_snapshot_scan (arrays of count, owned by the caller). fields holds
 * ZK_SNAPSHOT_FIELDS columns of count: czxid, mzxid, ctime, mtime, version, cversion, aversion,
 * ephemeralOwner, pzxid. The child_name_* spans are the last path components of every record
 * but the root, grouped by parent (parents in record order, each group in record order), and
 * child_counts says how many each record has. On an error code, error_node and error_offset
 * say where the bad record starts. */
typedef struct {
    int64_t *fields;
    int32_t *acl_numbers;
    int64_t *parents; /* record number of the parent; -1 for the root */
    uint64_t *path_starts;
    uint32_t *path_lens;
    uint32_t *name_offsets; /* where the last component starts, within the path */
    uint64_t *data_starts;
    uint32_t *data_lens;
    int64_t *child_counts;
    uint64_t *child_name_starts; /* count - 1 of them */
    uint32_t *child_name_lens;
    size_t end;
    size_t path_bytes;
    size_t name_bytes;
    int has_nul; /* some path holds a NUL byte */
    size_t error_node;
    size_t error_offset;
    int64_t error_value;
} zk_snapshot_nodes;

/* Scan count node records from buf[pos:len): lengths, ACL numbers in [0, acl_count), the root
 * first, every other node after its parent and only once. Returns a zk_restore_code. */
int zk_snapshot_scan(const uint8_t *buf, size_t len, size_t pos, size_t count, int64_t acl_count,
                     zk_snapshot_nodes *out);

/* Copy n spans of buf into out with one separator byte between them. Returns the bytes
 * written, or -1 when out_cap is too small. */
int64_t zk_spans_join(const uint8_t *buf, const uint64_t *starts, const uint32_t *lens, size_t n,
                      uint8_t separator, uint8_t *out, size_t out_cap);

#endif
