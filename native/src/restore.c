/* Decoders for a restart: layouts and contracts are in restore.h, the behaviour is defined by the
 * pure-Python references in zkcore/_restore.py (which native/_pyrestore.py exports as the twin).
 */
#include "restore.h"

#include <stdlib.h>
#include <string.h>

enum {
    OP_CREATE = 1,
    OP_DELETE = 2,
    OP_SET_DATA = 5,
    OP_CREATE2 = 15,
    OP_CREATE_CONTAINER = 19,
    OP_DELETE_CONTAINER = 20,
    OP_CREATE_TTL = 21,
    OP_CREATE_SESSION = -10,
};

#define CONTAINER_OWNER INT64_MIN
#define TTL_OWNER_MASK ((int64_t)UINT64_C(0xff00000000000000))
#define TABLE_CAPACITY_MIN 16

/* --- bytes and hashing -------------------------------------------------------------------- */

static uint32_t get_u32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static int32_t get_i32(const uint8_t *p) { return (int32_t)get_u32(p); }

static int64_t get_i64(const uint8_t *p) {
    return (int64_t)(((uint64_t)get_u32(p) << 32) | get_u32(p + 4));
}

static uint64_t span_hash(const uint8_t *p, size_t len) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

/* An open-addressing set of spans of one buffer, by content: slot values are span number + 1. */
typedef struct {
    uint64_t *hashes;
    uint32_t *values;
    size_t mask;
} span_table;

static int table_init(span_table *t, size_t entries) {
    size_t cap = TABLE_CAPACITY_MIN;
    while (cap < entries * 2) {
        if (cap > SIZE_MAX / 2 / sizeof(uint64_t)) return ZK_RESTORE_NOMEM;
        cap *= 2;
    }
    t->hashes = malloc(cap * sizeof *t->hashes);
    t->values = calloc(cap, sizeof *t->values);
    t->mask = cap - 1;
    if (!t->hashes || !t->values) {
        free(t->hashes);
        free(t->values);
        return ZK_RESTORE_NOMEM;
    }
    return ZK_RESTORE_OK;
}

static void table_free(span_table *t) {
    free(t->hashes);
    free(t->values);
}

/* The slot holding the span equal to key, or the empty slot where it would go. */
static size_t table_slot(const span_table *t, const uint8_t *buf, const uint64_t *starts,
                         const uint32_t *lens, uint64_t hash, const uint8_t *key, size_t len) {
    for (size_t i = hash & t->mask;; i = (i + 1) & t->mask) {
        uint32_t v = t->values[i];
        if (v == 0) return i;
        if (t->hashes[i] == hash && lens[v - 1] == len && memcmp(buf + starts[v - 1], key, len) == 0)
            return i;
    }
}

/* --- jute reading ------------------------------------------------------------------------- */

/* Reads jute values from buf[pos:end); the first failure clears ok and later reads do nothing. */
typedef struct {
    const uint8_t *buf;
    size_t pos;
    size_t end;
    int ok;
} cursor;

static const uint8_t *cursor_need(cursor *c, size_t n) {
    if (!c->ok || c->end - c->pos < n) {
        c->ok = 0;
        return NULL;
    }
    const uint8_t *p = c->buf + c->pos;
    c->pos += n;
    return p;
}

static int32_t cursor_int(cursor *c) {
    const uint8_t *p = cursor_need(c, 4);
    return p ? get_i32(p) : 0;
}

static int64_t cursor_long(cursor *c) {
    const uint8_t *p = cursor_need(c, 8);
    return p ? get_i64(p) : 0;
}

static int cursor_bool(cursor *c) {
    const uint8_t *p = cursor_need(c, 1);
    if (p && *p > 1) c->ok = 0;
    return p && *p == 1;
}

/* A jute buffer or ustring: length -1 is empty, below that or above bytes_max is malformed. */
static void cursor_buffer(cursor *c, int64_t bytes_max, uint64_t *start, uint32_t *len) {
    int32_t n = cursor_int(c);
    *start = c->pos;
    *len = 0;
    if (n == -1) return;
    if (n < -1 || n > bytes_max) {
        c->ok = 0;
        return;
    }
    if (cursor_need(c, (size_t)n)) *len = (uint32_t)n;
}

/* A vector of ACLs (perms, scheme, id): only its extent; Python decodes each distinct one. */
static void cursor_acl(cursor *c, int64_t bytes_max, int64_t vector_max, uint64_t *start, uint32_t *len) {
    *start = c->pos;
    int32_t count = cursor_int(c);
    if (count < -1 || count > vector_max) c->ok = 0;
    uint64_t skip_start;
    uint32_t skip_len;
    for (int32_t i = 0; i < count && c->ok; i++) {
        cursor_need(c, 4);
        cursor_buffer(c, bytes_max, &skip_start, &skip_len);
        cursor_buffer(c, bytes_max, &skip_start, &skip_len);
    }
    *len = (uint32_t)(c->pos - *start);
}

/* --- txns --------------------------------------------------------------------------------- */

typedef struct {
    int kind;
    int64_t owner;
    int32_t number;
    uint64_t path_start, data_start, acl_start;
    uint32_t path_len, data_len, acl_len;
} txn_body;

typedef struct {
    int64_t buffer_max, vector_max, ttl_max;
} txn_limits;

/* Decode the body of a txn of the given type from c; kind stays OTHER unless it all fits. */
static void txn_body_decode(cursor *c, int32_t type, int64_t client_id, const txn_limits *lim, txn_body *b) {
    switch (type) {
    case OP_CREATE:
    case OP_CREATE2:
    case OP_CREATE_CONTAINER:
    case OP_CREATE_TTL: {
        cursor_buffer(c, lim->buffer_max, &b->path_start, &b->path_len);
        cursor_buffer(c, lim->buffer_max, &b->data_start, &b->data_len);
        cursor_acl(c, lim->buffer_max, lim->vector_max, &b->acl_start, &b->acl_len);
        int ephemeral = (type == OP_CREATE || type == OP_CREATE2) ? cursor_bool(c) : 0;
        b->number = cursor_int(c);
        b->owner = ephemeral ? client_id : 0;
        if (type == OP_CREATE_CONTAINER) b->owner = CONTAINER_OWNER;
        if (type == OP_CREATE_TTL) {
            int64_t ttl = cursor_long(c);
            if (ttl <= 0 || ttl > lim->ttl_max) c->ok = 0;
            b->owner = TTL_OWNER_MASK | ttl;
        }
        b->kind = ZK_TXN_CREATE;
        return;
    }
    case OP_DELETE:
    case OP_DELETE_CONTAINER:
        cursor_buffer(c, lim->buffer_max, &b->path_start, &b->path_len);
        b->kind = ZK_TXN_DELETE;
        return;
    case OP_SET_DATA:
        cursor_buffer(c, lim->buffer_max, &b->path_start, &b->path_len);
        cursor_buffer(c, lim->buffer_max, &b->data_start, &b->data_len);
        b->number = cursor_int(c);
        b->kind = ZK_TXN_SET_DATA;
        return;
    case OP_CREATE_SESSION:
        b->number = cursor_int(c);
        b->kind = ZK_TXN_CREATE_SESSION;
        return;
    default:
        c->ok = 0;
        return;
    }
}

/* The fast path splits paths at their last '/': it takes only paths that have one, are not the
 * root, and hold no NUL (Python gets them joined by NULs). */
static int txn_path_fits(const uint8_t *path, uint32_t len) {
    if (len == 1 && path[0] == '/') return 0;
    if (memchr(path, 0, len)) return 0;
    return memchr(path, '/', len) != NULL;
}

int zk_txn_decode(const uint8_t *buf, const uint64_t *ends, size_t n, int64_t buffer_bytes_max,
                  int64_t vector_length_max, int64_t ttl_ms_max, zk_txn_columns *out) {
    span_table acls;
    if (table_init(&acls, n) != ZK_RESTORE_OK) return ZK_RESTORE_NOMEM;
    txn_limits lim = {buffer_bytes_max, vector_length_max, ttl_ms_max};
    out->acl_count = 0;
    out->path_bytes = 0;
    uint64_t start = 0;
    for (size_t i = 0; i < n; start = ends[i], i++) {
        uint64_t end = ends[i];
        txn_body b = {ZK_TXN_OTHER, 0, 0, 0, 0, 0, 0, 0, 0};
        out->zxids[i] = out->times[i] = out->client_ids[i] = 0;
        if (end - start >= ZK_TXN_HEADER_BYTES) {
            const uint8_t *h = buf + start;
            out->client_ids[i] = get_i64(h);
            out->zxids[i] = get_i64(h + 12);
            out->times[i] = get_i64(h + 20);
            cursor c = {buf, start + ZK_TXN_HEADER_BYTES, end, 1};
            txn_body_decode(&c, get_i32(h + 28), out->client_ids[i], &lim, &b);
            int fits = c.ok && c.pos == end;
            if (fits && b.kind != ZK_TXN_CREATE_SESSION) fits = txn_path_fits(buf + b.path_start, b.path_len);
            if (!fits) b = (txn_body){ZK_TXN_OTHER, 0, 0, 0, 0, 0, 0, 0, 0};
        }
        out->kinds[i] = (uint8_t)b.kind;
        out->owners[i] = b.owner;
        out->numbers[i] = b.number;
        out->path_starts[i] = b.path_start;
        out->path_lens[i] = b.path_len;
        out->data_starts[i] = b.data_start;
        out->data_lens[i] = b.data_len;
        out->acl_numbers[i] = -1;
        out->path_bytes += b.path_len;
        if (b.kind != ZK_TXN_CREATE) continue;
        uint64_t hash = span_hash(buf + b.acl_start, b.acl_len);
        size_t slot = table_slot(&acls, buf, out->acl_starts, out->acl_lens, hash, buf + b.acl_start, b.acl_len);
        if (acls.values[slot] == 0) {
            out->acl_starts[out->acl_count] = b.acl_start;
            out->acl_lens[out->acl_count] = b.acl_len;
            acls.hashes[slot] = hash;
            acls.values[slot] = (uint32_t)++out->acl_count;
        }
        out->acl_numbers[i] = (int32_t)(acls.values[slot] - 1);
    }
    table_free(&acls);
    return ZK_RESTORE_OK;
}

/* --- snapshot node records ---------------------------------------------------------------- */

static int snapshot_fail(zk_snapshot_nodes *out, int code, size_t node, size_t offset, int64_t value) {
    out->error_node = node;
    out->error_offset = offset;
    out->error_value = value;
    return code;
}

/* A jute-style length-prefixed span at *pos that must fit before len. */
static int snapshot_span(const uint8_t *buf, size_t len, size_t *pos, uint64_t *start, uint32_t *span_len) {
    if (len - *pos < 4) return 0;
    int32_t n = get_i32(buf + *pos);
    if (n < 0 || (size_t)n > len - *pos - 4) return 0;
    *start = *pos + 4;
    *span_len = (uint32_t)n;
    *pos += 4 + (size_t)n;
    return 1;
}

/* Link record i to its parent by path, or say why it cannot be. */
static int snapshot_link(const uint8_t *buf, span_table *t, zk_snapshot_nodes *out, size_t i, size_t rec) {
    const uint8_t *path = buf + out->path_starts[i];
    uint32_t len = out->path_lens[i];
    if (len == 1 && path[0] == '/') {
        if (i != 0) return snapshot_fail(out, ZK_SNAPSHOT_ROOT, i, rec, 0);
        out->parents[i] = -1;
        out->name_offsets[i] = 1;
    } else {
        const uint8_t *slash = NULL;
        for (uint32_t k = len; k > 0; k--) {
            if (path[k - 1] == '/') {
                slash = path + k - 1;
                break;
            }
        }
        if (!slash) return snapshot_fail(out, ZK_SNAPSHOT_PARENT, i, rec, 0);
        size_t cut = (size_t)(slash - path);
        const uint8_t *parent = cut == 0 ? (const uint8_t *)"/" : path;
        size_t parent_len = cut == 0 ? 1 : cut;
        size_t slot = table_slot(t, buf, out->path_starts, out->path_lens, span_hash(parent, parent_len), parent,
                                 parent_len);
        if (t->values[slot] == 0) return snapshot_fail(out, ZK_SNAPSHOT_PARENT, i, rec, 0);
        out->parents[i] = (int64_t)t->values[slot] - 1;
        out->name_offsets[i] = (uint32_t)cut + 1;
    }
    uint64_t hash = span_hash(path, len);
    size_t slot = table_slot(t, buf, out->path_starts, out->path_lens, hash, path, len);
    if (t->values[slot] != 0) return snapshot_fail(out, ZK_SNAPSHOT_TWICE, i, rec, 0);
    t->hashes[slot] = hash;
    t->values[slot] = (uint32_t)i + 1;
    return ZK_RESTORE_OK;
}

/* Decode the fixed part of record i at buf + pos into the field columns; return its ACL number. */
static int32_t snapshot_fixed(const uint8_t *p, zk_snapshot_nodes *out, size_t count, size_t i) {
    int64_t *f = out->fields;
    f[0 * count + i] = get_i64(p + 4);  /* czxid */
    f[1 * count + i] = get_i64(p + 12); /* mzxid */
    f[2 * count + i] = get_i64(p + 20); /* ctime */
    f[3 * count + i] = get_i64(p + 28); /* mtime */
    f[4 * count + i] = get_i32(p + 36); /* version */
    f[5 * count + i] = get_i32(p + 40); /* cversion */
    f[6 * count + i] = get_i32(p + 44); /* aversion */
    f[7 * count + i] = get_i64(p + 48); /* ephemeralOwner */
    f[8 * count + i] = get_i64(p + 56); /* pzxid */
    return get_i32(p);
}

/* Group the records' names by parent, parents in record order and each group in record order
 * (a counting sort on the parent numbers). */
static int snapshot_group(zk_snapshot_nodes *out, size_t count) {
    memset(out->child_counts, 0, count * sizeof *out->child_counts);
    for (size_t i = 1; i < count; i++) out->child_counts[out->parents[i]]++;
    size_t *next = malloc(count * sizeof *next);
    if (!next) return ZK_RESTORE_NOMEM;
    size_t at = 0;
    for (size_t i = 0; i < count; i++) {
        next[i] = at;
        at += (size_t)out->child_counts[i];
    }
    out->name_bytes = 0;
    for (size_t i = 1; i < count; i++) {
        size_t slot = next[out->parents[i]]++;
        uint32_t skip = out->name_offsets[i];
        out->child_name_starts[slot] = out->path_starts[i] + skip;
        out->child_name_lens[slot] = out->path_lens[i] - skip;
        out->name_bytes += out->path_lens[i] - skip;
    }
    free(next);
    return ZK_RESTORE_OK;
}

int zk_snapshot_scan(const uint8_t *buf, size_t len, size_t pos, size_t count, int64_t acl_count,
                     zk_snapshot_nodes *out) {
    out->end = pos;
    out->path_bytes = 0;
    out->name_bytes = 0;
    out->has_nul = 0;
    if (pos > len || count > UINT32_MAX - 1) return snapshot_fail(out, ZK_SNAPSHOT_CUT, 0, pos, 0);
    span_table paths;
    if (table_init(&paths, count) != ZK_RESTORE_OK) return ZK_RESTORE_NOMEM;
    int rc = ZK_RESTORE_OK;
    for (size_t i = 0; i < count && rc == ZK_RESTORE_OK; i++) {
        size_t rec = pos;
        if (!snapshot_span(buf, len, &pos, &out->path_starts[i], &out->path_lens[i]) ||
            !snapshot_span(buf, len, &pos, &out->data_starts[i], &out->data_lens[i]) ||
            len - pos < ZK_SNAPSHOT_FIXED_BYTES) {
            rc = snapshot_fail(out, ZK_SNAPSHOT_CUT, i, rec, 0);
            break;
        }
        int32_t acl = snapshot_fixed(buf + pos, out, count, i);
        out->acl_numbers[i] = acl;
        pos += ZK_SNAPSHOT_FIXED_BYTES;
        if (acl < 0 || acl >= acl_count) {
            rc = snapshot_fail(out, ZK_SNAPSHOT_ACL, i, rec, acl);
            break;
        }
        rc = snapshot_link(buf, &paths, out, i, rec);
        out->path_bytes += out->path_lens[i];
        if (memchr(buf + out->path_starts[i], 0, out->path_lens[i])) out->has_nul = 1;
    }
    table_free(&paths);
    if (rc == ZK_RESTORE_OK) rc = snapshot_group(out, count);
    if (rc == ZK_RESTORE_OK) out->end = pos;
    return rc;
}

int64_t zk_spans_join(const uint8_t *buf, const uint64_t *starts, const uint32_t *lens, size_t n,
                      uint8_t separator, uint8_t *out, size_t out_cap) {
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = lens[i];
        if (out_cap - at < len + (i > 0)) return -1;
        if (i > 0) out[at++] = separator;
        memcpy(out + at, buf + starts[i], len);
        at += len;
    }
    return (int64_t)at;
}
