/* The path index and the batched read path: layouts and contracts are in pathindex.h, the
 * behaviour is defined by its pure-Python twin, native/_pyindex.py.
 */
#include "pathindex.h"

#include <stdlib.h>
#include <string.h>

#define STAT_MZXID_OFFSET 8
#define STAT_CTIME_OFFSET 16
#define STAT_MTIME_OFFSET 24
#define STAT_VERSION_OFFSET 32
#define STAT_CVERSION_OFFSET 36
#define STAT_AVERSION_OFFSET 40
#define STAT_OWNER_OFFSET 44
#define STAT_DATA_LENGTH_OFFSET 52
#define STAT_NUM_CHILDREN_OFFSET 56
#define STAT_PZXID_OFFSET 60
#define WALK_RECORD_TAIL_BYTES 64 /* a snapshot record after its path and data: ACL number, Stat */
#define SLOT_CAPACITY_MIN 16
#define BUFFER_CAPACITY_MIN 4096
#define LENGTH_BYTES 4
#define PREFETCH_DISTANCE 8 /* put_batch looks up this many paths ahead */
#define REQUEST_BYTES_MIN 13 /* RequestHeader (xid, type), path length, watch flag */
#define REPLY_HEADER_BYTES 16 /* ReplyHeader: xid, zxid, err */
#define ERR_NO_NODE (-101)

enum { OP_EXISTS = 3, OP_GET_DATA = 4, OP_GET_CHILDREN = 8, OP_GET_CHILDREN2 = 12 };
enum { STATUS_ANSWERED = 0, STATUS_WATCH = 1, STATUS_SLOW = 2 };

typedef struct zk_node zk_node;

/* One per znode, so kept small (a tree holds millions): lengths and counts are 32 bits (data
 * and children stop at INT32_MAX, paths at path_bytes_max), and the path's hash lives in its
 * table slot only. */
struct zk_node {
    zk_node *parent;
    zk_node **children; /* insertion order, modified by swap-remove */
    char *data;         /* in the node's own allocation after path when it fits inline_cap */
    uint32_t child_count;
    uint32_t child_cap;
    uint32_t child_pos; /* where this node sits in parent->children */
    uint32_t data_len;
    uint32_t inline_cap;
    uint32_t path_len;
    uint32_t name_offset; /* the last component starts here in path */
    uint32_t acl;         /* the tree's number for the node's ACL list */
    unsigned char stat[ZK_INDEX_STAT_BYTES]; /* dataLength and numChildren kept patched */
    unsigned char readable;
    unsigned char mark; /* zk_index_mark's flag: a walk lists where marked nodes' records start */
    char path[];        /* path_len bytes, then inline_cap bytes of room for data */
};

/* An open-addressing slot: linear probing, backward-shift deletion, so no tombstones. */
typedef struct {
    uint64_t hash;
    zk_node *node;
} zk_slot;

struct zk_index {
    zk_slot *slots;
    size_t slot_cap; /* a power of two; count stays at or under 70% of it */
    size_t count;
    size_t data_size; /* every node's path and data bytes: ZooKeeper's approximate data size */
    char *out; /* read_batch replies and children names */
    size_t out_len;
    size_t out_cap;
    char *status;
    size_t status_cap;
};

typedef struct {
    const char *data;
    size_t data_len;
    const char *stat;
    int readable;
    uint32_t acl;
} node_value;

typedef struct {
    int32_t xid;
    int32_t opcode;
    const char *path;
    size_t path_len;
    int watch;
} read_request;

/* --- bytes -------------------------------------------------------------------------------- */

static int32_t load_be32(const char *p) {
    const unsigned char *u = (const unsigned char *)p;
    uint32_t v = ((uint32_t)u[0] << 24) | ((uint32_t)u[1] << 16) | ((uint32_t)u[2] << 8) | u[3];
    return (int32_t)v;
}

static int64_t load_be64(const char *p) {
    uint64_t v = ((uint64_t)(uint32_t)load_be32(p) << 32) | (uint32_t)load_be32(p + 4);
    return (int64_t)v;
}

static void store_be32(char *p, uint32_t v) {
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

static void store_be64(char *p, uint64_t v) {
    store_be32(p, (uint32_t)(v >> 32));
    store_be32(p + 4, (uint32_t)v);
}

/* FNV-1a 64 over the path, then murmur3's finalizer so the low bits used for probing mix well. */
static uint64_t path_hash(const char *path, size_t len) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)path[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* Grow *buf so it holds at least need bytes; its contents are kept. */
static int buffer_reserve(char **buf, size_t *cap, size_t need) {
    if (need <= *cap) return ZK_INDEX_OK;
    size_t cap_new = *cap < BUFFER_CAPACITY_MIN ? BUFFER_CAPACITY_MIN : *cap;
    while (cap_new < need) {
        if (cap_new > SIZE_MAX / 2) return ZK_INDEX_NOMEM;
        cap_new *= 2;
    }
    char *grown = realloc(*buf, cap_new);
    if (!grown) return ZK_INDEX_NOMEM;
    *buf = grown;
    *cap = cap_new;
    return ZK_INDEX_OK;
}

static int out_reserve(zk_index *idx, size_t extra) {
    if (extra > SIZE_MAX - idx->out_len) return ZK_INDEX_NOMEM;
    return buffer_reserve(&idx->out, &idx->out_cap, idx->out_len + extra);
}

/* --- hash table --------------------------------------------------------------------------- */

static size_t table_find(const zk_index *idx, uint64_t hash, const char *path, size_t len) {
    size_t mask = idx->slot_cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        const zk_slot *slot = &idx->slots[i];
        if (!slot->node) return SIZE_MAX;
        if (slot->hash == hash && slot->node->path_len == len && memcmp(slot->node->path, path, len) == 0)
            return i;
    }
}

static zk_node *table_lookup(const zk_index *idx, const char *path, size_t len) {
    size_t i = table_find(idx, path_hash(path, len), path, len);
    return i == SIZE_MAX ? NULL : idx->slots[i].node;
}

static void table_place(zk_slot *slots, size_t cap, uint64_t hash, zk_node *node) {
    size_t mask = cap - 1;
    size_t i = hash & mask;
    while (slots[i].node) i = (i + 1) & mask;
    slots[i].hash = hash;
    slots[i].node = node;
}

/* Make room for `extra` more nodes, doubling the table past a load factor of 0.7. */
static int table_reserve(zk_index *idx, size_t extra) {
    if (extra > SIZE_MAX / 10 - idx->count) return ZK_INDEX_NOMEM;
    size_t need = (idx->count + extra) * 10;
    if (need <= idx->slot_cap * 7) return ZK_INDEX_OK;
    size_t cap = idx->slot_cap;
    while (need > cap * 7) {
        if (cap > SIZE_MAX / 20 / sizeof(zk_slot)) return ZK_INDEX_NOMEM;
        cap *= 2;
    }
    zk_slot *slots = calloc(cap, sizeof *slots);
    if (!slots) return ZK_INDEX_NOMEM;
    for (size_t i = 0; i < idx->slot_cap; i++) {
        if (idx->slots[i].node) table_place(slots, cap, idx->slots[i].hash, idx->slots[i].node);
    }
    free(idx->slots);
    idx->slots = slots;
    idx->slot_cap = cap;
    return ZK_INDEX_OK;
}

/* Empty slot i, shifting later entries of its probe run back so no chain is broken. */
static void table_delete_at(zk_index *idx, size_t i) {
    size_t mask = idx->slot_cap - 1;
    for (size_t j = (i + 1) & mask; idx->slots[j].node; j = (j + 1) & mask) {
        size_t home = idx->slots[j].hash & mask;
        /* The entry at j may fill the hole at i only if i lies on its probe path home..j. */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            idx->slots[i] = idx->slots[j];
            i = j;
        }
    }
    idx->slots[i].hash = 0;
    idx->slots[i].node = NULL;
}

/* --- nodes -------------------------------------------------------------------------------- */

static int path_valid(const char *path, size_t len) {
    if (len == 0 || path[0] != '/') return 0;
    return len == 1 || path[len - 1] != '/';
}

/* The offset of the last '/' in a valid path other than "/". */
static size_t path_last_slash(const char *path, size_t len) {
    size_t i = len - 1;
    while (path[i] != '/') i--;
    return i;
}

/* A node with room for inline_cap bytes of data in the same allocation as its path. */
static zk_node *node_new(const char *path, size_t len, size_t inline_cap) {
    if (len > UINT32_MAX || inline_cap > INT32_MAX) return NULL;
    zk_node *node = malloc(sizeof *node + len + inline_cap);
    if (!node) return NULL;
    memset(node, 0, sizeof *node);
    memcpy(node->path, path, len);
    node->path_len = (uint32_t)len;
    node->name_offset = (uint32_t)(len == 1 ? 1 : path_last_slash(path, len) + 1);
    node->inline_cap = (uint32_t)inline_cap;
    return node;
}

static char *node_inline_data(zk_node *node) { return node->path + node->path_len; }

static void node_free(zk_node *node) {
    if (node->data != node_inline_data(node)) free(node->data);
    free(node->children);
    free(node);
}

static void node_patch_children(zk_node *node) {
    store_be32((char *)node->stat + STAT_NUM_CHILDREN_OFFSET, (uint32_t)node->child_count);
}

/* Replace data, Stat, readable and ACL number; on failure the node is unchanged. */
static int node_assign(zk_node *node, const node_value *value) {
    char *inline_data = node_inline_data(node);
    char *copy = inline_data;
    if (value->data_len > node->inline_cap) {
        copy = malloc(value->data_len);
        if (!copy) return ZK_INDEX_NOMEM;
    }
    if (value->data_len > 0) memcpy(copy, value->data, value->data_len);
    if (node->data != inline_data) free(node->data);
    node->data = copy;
    node->data_len = (uint32_t)value->data_len; /* callers refuse data over INT32_MAX */
    node->readable = (unsigned char)(value->readable != 0);
    node->acl = value->acl;
    memcpy(node->stat, value->stat, ZK_INDEX_STAT_BYTES);
    store_be32((char *)node->stat + STAT_DATA_LENGTH_OFFSET, (uint32_t)value->data_len);
    node_patch_children(node);
    return ZK_INDEX_OK;
}

static int node_children_reserve(zk_node *node) {
    if (node->child_count < node->child_cap) return ZK_INDEX_OK;
    if (node->child_count >= INT32_MAX) return ZK_INDEX_NOMEM; /* numChildren is an int32 */
    size_t cap = node->child_cap ? node->child_cap * 2 : 4;
    zk_node **grown = realloc(node->children, cap * sizeof *grown);
    if (!grown) return ZK_INDEX_NOMEM;
    node->children = grown;
    node->child_cap = (uint32_t)cap; /* at most 2^31: child_count stops below INT32_MAX */
    return ZK_INDEX_OK;
}

static void node_child_append(zk_node *parent, zk_node *child) {
    child->parent = parent;
    child->child_pos = parent->child_count;
    parent->children[parent->child_count++] = child;
    node_patch_children(parent);
}

static void node_child_detach(zk_node *parent, zk_node *child) {
    zk_node *last = parent->children[--parent->child_count];
    parent->children[child->child_pos] = last;
    last->child_pos = child->child_pos;
    node_patch_children(parent);
}

/* --- index -------------------------------------------------------------------------------- */

zk_index *zk_index_new(void) {
    zk_index *idx = calloc(1, sizeof *idx);
    if (!idx) return NULL;
    idx->slots = calloc(SLOT_CAPACITY_MIN, sizeof *idx->slots);
    if (!idx->slots) {
        free(idx);
        return NULL;
    }
    idx->slot_cap = SLOT_CAPACITY_MIN;
    return idx;
}

void zk_index_free(zk_index *idx) {
    if (!idx) return;
    for (size_t i = 0; i < idx->slot_cap; i++) {
        if (idx->slots[i].node) node_free(idx->slots[i].node);
    }
    free(idx->slots);
    free(idx->out);
    free(idx->status);
    free(idx);
}

size_t zk_index_len(const zk_index *idx) { return idx->count; }

size_t zk_index_data_size(const zk_index *idx) { return idx->data_size; }

/* Add a node that is not in the table yet; every allocation happens before anything links.
 * *node_out (when given) is the new node. */
static int index_insert(zk_index *idx, uint64_t hash, const char *path, size_t len, const node_value *value,
                        zk_node **node_out) {
    zk_node *parent = NULL;
    if (len > 1) {
        size_t slash = path_last_slash(path, len);
        parent = table_lookup(idx, path, slash == 0 ? 1 : slash);
        if (!parent) return ZK_INDEX_NO_PARENT;
        if (node_children_reserve(parent) != ZK_INDEX_OK) return ZK_INDEX_NOMEM;
    }
    if (table_reserve(idx, 1) != ZK_INDEX_OK) return ZK_INDEX_NOMEM;
    zk_node *node = node_new(path, len, value->data_len);
    if (!node) return ZK_INDEX_NOMEM;
    if (node_assign(node, value) != ZK_INDEX_OK) {
        node_free(node);
        return ZK_INDEX_NOMEM;
    }
    table_place(idx->slots, idx->slot_cap, hash, node);
    idx->count++;
    idx->data_size += len + node->data_len;
    if (parent) node_child_append(parent, node);
    if (node_out) *node_out = node;
    return ZK_INDEX_OK;
}

/* node_assign on a node in the index, its data size kept. */
static int index_assign(zk_index *idx, zk_node *node, const node_value *value) {
    size_t before = node->data_len;
    int rc = node_assign(node, value);
    if (rc == ZK_INDEX_OK) idx->data_size = idx->data_size - before + node->data_len;
    return rc;
}

static int index_put(zk_index *idx, uint64_t hash, const char *path, size_t path_len, const node_value *value) {
    size_t i = table_find(idx, hash, path, path_len);
    if (i != SIZE_MAX) return index_assign(idx, idx->slots[i].node, value);
    return index_insert(idx, hash, path, path_len, value, NULL);
}

int zk_index_put(zk_index *idx, const char *path, size_t path_len, const char *data, size_t data_len,
                 const char *stat, size_t stat_len, int readable, uint32_t acl) {
    if (stat_len != ZK_INDEX_STAT_BYTES || data_len > INT32_MAX) return ZK_INDEX_BAD_SIZE;
    if (!path_valid(path, path_len)) return ZK_INDEX_BAD_PATH;
    node_value value = {data, data_len, stat, readable != 0, acl};
    return index_put(idx, path_hash(path, path_len), path, path_len, &value);
}

/* Node i's Stat from put_batch's columns; 0 when an int field does not fit 32 bits. The
 * dataLength and numChildren are left for node_assign. */
static int stat_pack(char *stat, const int64_t *fields, size_t n, size_t i) {
    static const size_t offsets[ZK_INDEX_STAT_FIELDS] = {0, 8, 16, 24, 32, 36, 40, 44, 60};
    static const size_t widths[ZK_INDEX_STAT_FIELDS] = {8, 8, 8, 8, 4, 4, 4, 8, 8};
    memset(stat, 0, ZK_INDEX_STAT_BYTES);
    for (size_t k = 0; k < ZK_INDEX_STAT_FIELDS; k++) {
        int64_t v = fields[k * n + i];
        if (widths[k] == 4 && (v < INT32_MIN || v > INT32_MAX)) return 0;
        if (widths[k] == 8)
            store_be64(stat + offsets[k], (uint64_t)v);
        else
            store_be32(stat + offsets[k], (uint32_t)v);
    }
    return 1;
}

/* Hash path j of a batch and start loading its slot, so the lookup PREFETCH_DISTANCE puts
 * later finds it in cache. */
static uint64_t batch_hash_ahead(const zk_index *idx, const char *path, size_t len) {
    uint64_t hash = path_hash(path, len);
    __builtin_prefetch(&idx->slots[hash & (idx->slot_cap - 1)]);
    return hash;
}

int zk_index_put_batch(zk_index *idx, const char *paths, const uint32_t *path_lens, const char *datas,
                       const uint32_t *data_lens, const int64_t *stat_fields, const uint8_t *readable,
                       const uint32_t *acls, size_t n, size_t path_bytes_max, size_t data_bytes_max,
                       size_t *done) {
    *done = 0;
    if (table_reserve(idx, n) != ZK_INDEX_OK) return ZK_INDEX_NOMEM;
    uint64_t hashes[PREFETCH_DISTANCE];
    const char *ahead = paths;
    for (size_t j = 0; j < n && j < PREFETCH_DISTANCE; j++) {
        hashes[j] = batch_hash_ahead(idx, ahead, path_lens[j]);
        ahead += path_lens[j];
    }
    char stat[ZK_INDEX_STAT_BYTES];
    for (size_t i = 0; i < n; i++) {
        uint64_t hash = hashes[i % PREFETCH_DISTANCE];
        size_t j = i + PREFETCH_DISTANCE;
        if (j < n) {
            hashes[j % PREFETCH_DISTANCE] = batch_hash_ahead(idx, ahead, path_lens[j]);
            ahead += path_lens[j];
        }
        if (!stat_pack(stat, stat_fields, n, i)) return ZK_INDEX_BAD_SIZE;
        if (path_lens[i] > path_bytes_max || !path_valid(paths, path_lens[i])) return ZK_INDEX_BAD_PATH;
        if (data_lens[i] > data_bytes_max || data_lens[i] > INT32_MAX) return ZK_INDEX_BAD_SIZE;
        node_value value = {datas, data_lens[i], stat, readable[i] != 0, acls ? acls[i] : 0};
        int rc = index_put(idx, hash, paths, path_lens[i], &value);
        if (rc != ZK_INDEX_OK) return rc;
        paths += path_lens[i];
        datas += data_lens[i];
        *done = i + 1;
    }
    return ZK_INDEX_OK;
}

/* Remove a leaf other than the root; *parent_out is the parent it left, *owner_out (when given)
 * the ephemeralOwner its Stat had. */
static int index_remove(zk_index *idx, const char *path, size_t path_len, zk_node **parent_out,
                        int64_t *owner_out) {
    if (path_len == 1 && path[0] == '/') return ZK_INDEX_BAD_PATH;
    size_t i = table_find(idx, path_hash(path, path_len), path, path_len);
    if (i == SIZE_MAX) return ZK_INDEX_NOT_FOUND;
    zk_node *node = idx->slots[i].node;
    if (node->child_count > 0) return ZK_INDEX_HAS_CHILDREN;
    *parent_out = node->parent;
    if (owner_out) *owner_out = load_be64((const char *)node->stat + STAT_OWNER_OFFSET);
    if (node->parent) node_child_detach(node->parent, node);
    table_delete_at(idx, i);
    idx->count--;
    idx->data_size -= node->path_len + node->data_len;
    node_free(node);
    return ZK_INDEX_OK;
}

int zk_index_remove(zk_index *idx, const char *path, size_t path_len) {
    zk_node *parent;
    return index_remove(idx, path, path_len, &parent, NULL);
}

/* --- apply: a txn's whole change to the index in one call, its Stat fields set here -------- */

/* How many creates a node's children have seen, from its Stat as it was with `children`
 * children: a Stat reports cversion as creates x 2 - children (creates + deletes, as ZooKeeper's
 * DataNode.copyStat does). Floor division, like the twin's //: a put Stat can make the sum odd,
 * and the root's is -1 + 1. */
static int64_t node_creates(const zk_node *node, int64_t children) {
    int64_t sum = (int64_t)load_be32((const char *)node->stat + STAT_CVERSION_OFFSET) + children;
    return sum / 2 - (sum % 2 < 0);
}

/* The parent's cversion from its creates and the children it has now, wrapped to an int32 as
 * jute's int is; its pzxid. */
static void node_patch_parent(zk_node *parent, int64_t creates, int64_t pzxid) {
    int64_t cversion = creates * 2 - (int64_t)parent->child_count;
    store_be32((char *)parent->stat + STAT_CVERSION_OFFSET, (uint32_t)cversion);
    store_be64((char *)parent->stat + STAT_PZXID_OFFSET, (uint64_t)pzxid);
}

static int64_t node_pzxid(const zk_node *node) {
    return load_be64((const char *)node->stat + STAT_PZXID_OFFSET);
}

static void view_node(const zk_node *node, zk_index_view *view) {
    view->bytes = node->data;
    view->bytes_len = node->data_len;
    memcpy(view->stat, node->stat, ZK_INDEX_STAT_BYTES);
    view->count = node->child_count;
    view->acl = node->acl;
}

int zk_index_set_data(zk_index *idx, const char *path, size_t path_len, const char *data, size_t data_len,
                      int64_t mzxid, int64_t mtime, int32_t version, zk_index_view *view) {
    if (data_len > INT32_MAX) return ZK_INDEX_BAD_SIZE;
    zk_node *node = table_lookup(idx, path, path_len);
    if (!node) return ZK_INDEX_NOT_FOUND;
    char stat[ZK_INDEX_STAT_BYTES];
    memcpy(stat, node->stat, sizeof stat);
    store_be64(stat + STAT_MZXID_OFFSET, (uint64_t)mzxid);
    store_be64(stat + STAT_MTIME_OFFSET, (uint64_t)mtime);
    store_be32(stat + STAT_VERSION_OFFSET, (uint32_t)version);
    node_value value = {data, data_len, stat, node->readable, node->acl};
    int rc = index_assign(idx, node, &value);
    if (rc != ZK_INDEX_OK) return rc;
    view_node(node, view);
    return ZK_INDEX_OK;
}

int zk_index_create(zk_index *idx, const char *path, size_t path_len, const char *data, size_t data_len,
                    int readable, uint32_t acl, int64_t zxid, int64_t time, int64_t owner, int32_t parent_creates,
                    zk_index_view *view) {
    if (data_len > INT32_MAX) return ZK_INDEX_BAD_SIZE;
    if (!path_valid(path, path_len) || path_len == 1) return ZK_INDEX_BAD_PATH;
    uint64_t hash = path_hash(path, path_len);
    if (table_find(idx, hash, path, path_len) != SIZE_MAX) return ZK_INDEX_EXISTS;
    char stat[ZK_INDEX_STAT_BYTES];
    memset(stat, 0, sizeof stat);
    store_be64(stat, (uint64_t)zxid);
    store_be64(stat + STAT_MZXID_OFFSET, (uint64_t)zxid);
    store_be64(stat + STAT_CTIME_OFFSET, (uint64_t)time);
    store_be64(stat + STAT_MTIME_OFFSET, (uint64_t)time);
    store_be64(stat + STAT_OWNER_OFFSET, (uint64_t)owner);
    store_be64(stat + STAT_PZXID_OFFSET, (uint64_t)zxid);
    node_value value = {data, data_len, stat, readable != 0, acl};
    zk_node *node;
    int rc = index_insert(idx, hash, path, path_len, &value, &node);
    if (rc != ZK_INDEX_OK) return rc;
    zk_node *parent = node->parent;
    int64_t creates = node_creates(parent, (int64_t)parent->child_count - 1);
    if (parent_creates > creates)
        node_patch_parent(parent, parent_creates, zxid);
    else
        node_patch_parent(parent, creates, node_pzxid(parent));
    view_node(node, view);
    return ZK_INDEX_OK;
}

int zk_index_delete(zk_index *idx, const char *path, size_t path_len, int64_t zxid, int64_t *owner) {
    zk_node *parent;
    int rc = index_remove(idx, path, path_len, &parent, owner);
    if (rc != ZK_INDEX_OK) return rc;
    int64_t creates = node_creates(parent, (int64_t)parent->child_count + 1);
    int64_t pzxid = node_pzxid(parent);
    node_patch_parent(parent, creates, zxid > pzxid ? zxid : pzxid);
    return ZK_INDEX_OK;
}

int zk_index_set_acl(zk_index *idx, const char *path, size_t path_len, uint32_t acl, int readable,
                     int32_t aversion, zk_index_view *view) {
    zk_node *node = table_lookup(idx, path, path_len);
    if (!node) return ZK_INDEX_NOT_FOUND;
    node->acl = acl;
    node->readable = (unsigned char)(readable != 0);
    store_be32((char *)node->stat + STAT_AVERSION_OFFSET, (uint32_t)aversion);
    view_node(node, view);
    return ZK_INDEX_OK;
}

int zk_index_contains(const zk_index *idx, const char *path, size_t path_len) {
    return table_lookup(idx, path, path_len) != NULL;
}

int zk_index_get(const zk_index *idx, const char *path, size_t path_len, zk_index_view *view) {
    const zk_node *node = table_lookup(idx, path, path_len);
    if (!node) return ZK_INDEX_NOT_FOUND;
    view_node(node, view);
    return ZK_INDEX_OK;
}

int zk_index_fields(const zk_index *idx, const char *path, size_t path_len, int64_t *out) {
    const zk_node *node = table_lookup(idx, path, path_len);
    if (!node) return ZK_INDEX_NOT_FOUND;
    const char *stat = (const char *)node->stat;
    out[0] = load_be64(stat + STAT_MZXID_OFFSET);
    out[1] = load_be32(stat + STAT_VERSION_OFFSET);
    out[2] = node_creates(node, (int64_t)node->child_count);
    out[3] = load_be32(stat + STAT_AVERSION_OFFSET);
    out[4] = load_be64(stat + STAT_OWNER_OFFSET);
    out[5] = node->child_count;
    out[6] = node->acl;
    return ZK_INDEX_OK;
}

/* Child names joined by '/', which no name contains, in the index's scratch buffer. */
int zk_index_children(zk_index *idx, const char *path, size_t path_len, zk_index_view *view) {
    const zk_node *node = table_lookup(idx, path, path_len);
    if (!node) return ZK_INDEX_NOT_FOUND;
    size_t total = 0;
    for (size_t i = 0; i < node->child_count; i++) {
        const zk_node *child = node->children[i];
        total += child->path_len - child->name_offset + 1;
    }
    idx->out_len = 0;
    if (out_reserve(idx, total) != ZK_INDEX_OK) return ZK_INDEX_NOMEM;
    char *p = idx->out;
    for (size_t i = 0; i < node->child_count; i++) {
        const zk_node *child = node->children[i];
        size_t name_len = child->path_len - child->name_offset;
        if (i > 0) *p++ = '/';
        memcpy(p, child->path + child->name_offset, name_len);
        p += name_len;
    }
    view->bytes = idx->out;
    view->bytes_len = (size_t)(p - idx->out);
    view->count = node->child_count;
    return ZK_INDEX_OK;
}

int zk_index_mark(zk_index *idx, const char *path, size_t path_len, int mark) {
    zk_node *node = table_lookup(idx, path, path_len);
    if (!node) return ZK_INDEX_NOT_FOUND;
    node->mark = (unsigned char)(mark != 0);
    return ZK_INDEX_OK;
}

/* --- walk: the tree as snapshot records, parents first ------------------------------------ */

struct zk_walk {
    const zk_index *idx;
    const zk_node **nodes; /* the path from the root to the node last written */
    uint32_t *next;        /* per level: the child to write next */
    size_t depth;
    size_t cap;
    int started;
    char *out;
    size_t out_len;
    size_t out_cap;
    uint64_t *marked;
    size_t marked_len;
    size_t marked_cap;
};

zk_walk *zk_walk_new(const zk_index *idx) {
    zk_walk *walk = calloc(1, sizeof *walk);
    if (walk) walk->idx = idx;
    return walk;
}

void zk_walk_free(zk_walk *walk) {
    if (!walk) return;
    free(walk->nodes);
    free(walk->next);
    free(walk->out);
    free(walk->marked);
    free(walk);
}

static int walk_push(zk_walk *walk, const zk_node *node) {
    if (walk->depth == walk->cap) {
        size_t cap = walk->cap ? walk->cap * 2 : 64;
        const zk_node **nodes = realloc(walk->nodes, cap * sizeof *nodes);
        if (!nodes) return ZK_INDEX_NOMEM;
        walk->nodes = nodes;
        uint32_t *next = realloc(walk->next, cap * sizeof *next);
        if (!next) return ZK_INDEX_NOMEM;
        walk->next = next;
        walk->cap = cap;
    }
    walk->nodes[walk->depth] = node;
    walk->next[walk->depth] = 0;
    walk->depth++;
    return ZK_INDEX_OK;
}

/* One node's snapshot record: ustring path, buffer data, int ACL number, then czxid, mzxid,
 * ctime, mtime, version, cversion as creates, aversion, ephemeralOwner (as the Stat reports it),
 * pzxid. */
static int walk_write(zk_walk *walk, const zk_node *node) {
    size_t size = 4 + node->path_len + 4 + node->data_len + WALK_RECORD_TAIL_BYTES;
    if (size > SIZE_MAX - walk->out_len) return ZK_INDEX_NOMEM;
    if (buffer_reserve(&walk->out, &walk->out_cap, walk->out_len + size) != ZK_INDEX_OK) return ZK_INDEX_NOMEM;
    if (node->mark) {
        if (walk->marked_len == walk->marked_cap) {
            size_t cap = walk->marked_cap ? walk->marked_cap * 2 : 16;
            uint64_t *marked = realloc(walk->marked, cap * sizeof *marked);
            if (!marked) return ZK_INDEX_NOMEM;
            walk->marked = marked;
            walk->marked_cap = cap;
        }
        walk->marked[walk->marked_len++] = walk->out_len;
    }
    char *p = walk->out + walk->out_len;
    const char *stat = (const char *)node->stat;
    store_be32(p, node->path_len);
    memcpy(p + 4, node->path, node->path_len);
    p += 4 + node->path_len;
    store_be32(p, node->data_len);
    if (node->data_len) memcpy(p + 4, node->data, node->data_len);
    p += 4 + node->data_len;
    store_be32(p, node->acl);
    memcpy(p + 4, stat, STAT_CVERSION_OFFSET); /* czxid, mzxid, ctime, mtime, version */
    p += 4 + STAT_CVERSION_OFFSET;
    store_be32(p, (uint32_t)node_creates(node, (int64_t)node->child_count));
    memcpy(p + 4, stat + STAT_AVERSION_OFFSET, STAT_DATA_LENGTH_OFFSET - STAT_AVERSION_OFFSET);
    p += 4 + STAT_DATA_LENGTH_OFFSET - STAT_AVERSION_OFFSET;
    memcpy(p, stat + STAT_PZXID_OFFSET, 8);
    walk->out_len += size;
    return ZK_INDEX_OK;
}

int zk_walk_next(zk_walk *walk, size_t nodes_max, size_t bytes_max, zk_walk_result *result) {
    walk->out_len = 0;
    walk->marked_len = 0;
    size_t count = 0;
    int rc = ZK_INDEX_OK;
    if (!walk->started) {
        walk->started = 1;
        const zk_node *root = table_lookup(walk->idx, "/", 1);
        if (root && nodes_max > 0) {
            rc = walk_write(walk, root);
            if (rc == ZK_INDEX_OK) rc = walk_push(walk, root);
            count++;
        }
    }
    while (rc == ZK_INDEX_OK && walk->depth > 0 && count < nodes_max && walk->out_len < bytes_max) {
        size_t top = walk->depth - 1;
        const zk_node *node = walk->nodes[top];
        if (walk->next[top] >= node->child_count) {
            walk->depth--;
            continue;
        }
        const zk_node *child = node->children[walk->next[top]++];
        rc = walk_write(walk, child);
        if (rc == ZK_INDEX_OK) rc = walk_push(walk, child);
        count++;
    }
    result->bytes = walk->out;
    result->bytes_len = walk->out_len;
    result->count = count;
    result->marked = walk->marked;
    result->marked_count = walk->marked_len;
    return rc;
}

/* --- read path ---------------------------------------------------------------------------- */

/* Decode a request body; 0 sends it to the slow path (unknown opcode or malformed). */
static int read_parse(const char *body, size_t len, read_request *req) {
    if (len < REQUEST_BYTES_MIN) return 0;
    req->xid = load_be32(body);
    req->opcode = load_be32(body + 4);
    if (req->opcode != OP_EXISTS && req->opcode != OP_GET_DATA && req->opcode != OP_GET_CHILDREN &&
        req->opcode != OP_GET_CHILDREN2)
        return 0;
    int32_t path_len = load_be32(body + 8);
    /* The path and the watch flag must fill what is left exactly: no shortfall, no trailing bytes. */
    if (path_len < 0 || (size_t)path_len != len - REQUEST_BYTES_MIN) return 0;
    unsigned char watch = (unsigned char)body[12 + (size_t)path_len];
    if (watch > 1) return 0;
    req->path = body + 12;
    req->path_len = (size_t)path_len;
    req->watch = watch;
    return 1;
}

/* The vector<ustring> of child names, counting only until it passes limit. */
static size_t read_children_bytes(const zk_node *node, size_t limit) {
    size_t total = LENGTH_BYTES;
    for (size_t i = 0; i < node->child_count && total <= limit; i++) {
        const zk_node *child = node->children[i];
        total += LENGTH_BYTES + child->path_len - child->name_offset;
    }
    return total;
}

static size_t read_body_bytes(const zk_node *node, int32_t opcode, size_t limit) {
    if (!node) return 0;
    switch (opcode) {
    case OP_EXISTS:
        return ZK_INDEX_STAT_BYTES;
    case OP_GET_DATA:
        return LENGTH_BYTES + node->data_len + ZK_INDEX_STAT_BYTES;
    case OP_GET_CHILDREN:
        return read_children_bytes(node, limit);
    default:
        return read_children_bytes(node, limit) + ZK_INDEX_STAT_BYTES;
    }
}

static char *read_encode_children(char *p, const zk_node *node) {
    store_be32(p, (uint32_t)node->child_count);
    p += LENGTH_BYTES;
    for (size_t i = 0; i < node->child_count; i++) {
        const zk_node *child = node->children[i];
        size_t name_len = child->path_len - child->name_offset;
        store_be32(p, (uint32_t)name_len);
        memcpy(p + LENGTH_BYTES, child->path + child->name_offset, name_len);
        p += LENGTH_BYTES + name_len;
    }
    return p;
}

static void read_encode_body(char *p, const read_request *req, const zk_node *node) {
    switch (req->opcode) {
    case OP_EXISTS:
        memcpy(p, node->stat, ZK_INDEX_STAT_BYTES);
        return;
    case OP_GET_DATA:
        store_be32(p, (uint32_t)node->data_len);
        if (node->data_len > 0) memcpy(p + LENGTH_BYTES, node->data, node->data_len);
        memcpy(p + LENGTH_BYTES + node->data_len, node->stat, ZK_INDEX_STAT_BYTES);
        return;
    case OP_GET_CHILDREN:
        read_encode_children(p, node);
        return;
    default:
        memcpy(read_encode_children(p, node), node->stat, ZK_INDEX_STAT_BYTES);
        return;
    }
}

/* Answer one frame into idx->out, or leave it to the slow path; only NOMEM is an error. */
static int read_frame(zk_index *idx, const char *body, size_t len, int64_t zxid, size_t reply_bytes_max,
                      char *status) {
    read_request req;
    *status = STATUS_SLOW;
    if (!read_parse(body, len, &req)) return ZK_INDEX_OK;
    const zk_node *node = table_lookup(idx, req.path, req.path_len);
    if (node && !node->readable) return ZK_INDEX_OK; /* the slow path checks ACLs (exists' too) */
    size_t limit = reply_bytes_max - REPLY_HEADER_BYTES;
    size_t body_len = read_body_bytes(node, req.opcode, limit);
    if (body_len > limit) return ZK_INDEX_OK; /* too big for one frame: the slow path decides */
    if (out_reserve(idx, LENGTH_BYTES + REPLY_HEADER_BYTES + body_len) != ZK_INDEX_OK) return ZK_INDEX_NOMEM;
    char *p = idx->out + idx->out_len;
    store_be32(p, (uint32_t)(REPLY_HEADER_BYTES + body_len));
    store_be32(p + 4, (uint32_t)req.xid);
    store_be64(p + 8, (uint64_t)zxid);
    store_be32(p + 16, node ? 0u : (uint32_t)ERR_NO_NODE);
    if (node) read_encode_body(p + LENGTH_BYTES + REPLY_HEADER_BYTES, &req, node);
    idx->out_len += LENGTH_BYTES + REPLY_HEADER_BYTES + body_len;
    *status = req.watch ? STATUS_WATCH : STATUS_ANSWERED;
    return ZK_INDEX_OK;
}

/* The start of both read entry points: reply frame lengths are int32s and must hold at least a
 * ReplyHeader; the replies of the last call are dropped. */
static int read_begin(zk_index *idx, size_t *reply_bytes_max) {
    if (*reply_bytes_max > INT32_MAX) *reply_bytes_max = INT32_MAX;
    if (*reply_bytes_max < REPLY_HEADER_BYTES) return ZK_INDEX_BAD_SIZE;
    idx->out_len = 0;
    return ZK_INDEX_OK;
}

/* The length of the whole frame at pos: -1 when fewer than 4 bytes are left, or the length is
 * negative, over len_max or runs past the end of requests. */
static int64_t whole_frame(const char *requests, size_t requests_len, size_t pos, size_t len_max) {
    if (requests_len - pos < LENGTH_BYTES) return -1;
    int32_t len = load_be32(requests + pos);
    if (len < 0 || (size_t)len > len_max || (size_t)len > requests_len - pos - LENGTH_BYTES) return -1;
    return len;
}

int zk_read_batch(zk_index *idx, const char *requests, size_t requests_len, int64_t zxid, size_t frames_max,
                  size_t reply_bytes_max, zk_read_result *result) {
    memset(result, 0, sizeof *result);
    if (read_begin(idx, &reply_bytes_max) != ZK_INDEX_OK) return ZK_INDEX_BAD_SIZE;
    size_t pos = 0;
    size_t frame = 0;
    while (pos < requests_len) {
        result->error_frame = frame;
        result->error_offset = pos;
        if (frame == frames_max) return ZK_READ_FRAMES_MAX;
        int64_t len = whole_frame(requests, requests_len, pos, SIZE_MAX);
        if (len < 0) return ZK_READ_FRAME_LENGTH;
        if (buffer_reserve(&idx->status, &idx->status_cap, frame + 1) != ZK_INDEX_OK) return ZK_INDEX_NOMEM;
        int rc = read_frame(idx, requests + pos + LENGTH_BYTES, (size_t)len, zxid, reply_bytes_max,
                            &idx->status[frame]);
        if (rc != ZK_INDEX_OK) return rc;
        pos += LENGTH_BYTES + (size_t)len;
        frame++;
    }
    result->replies = idx->out;
    result->replies_len = idx->out_len;
    result->status = idx->status;
    result->status_len = frame;
    return ZK_INDEX_OK;
}

int zk_read_run(zk_index *idx, const char *requests, size_t requests_len, int64_t zxid, size_t frames_max,
                size_t frame_bytes_max, zk_run_result *result) {
    memset(result, 0, sizeof *result);
    if (read_begin(idx, &frame_bytes_max) != ZK_INDEX_OK) return ZK_INDEX_BAD_SIZE;
    size_t pos = 0;
    size_t frame = 0;
    while (frame < frames_max) {
        int64_t len = whole_frame(requests, requests_len, pos, frame_bytes_max);
        if (len < 0) break;
        const char *body = requests + pos + LENGTH_BYTES;
        size_t mark = idx->out_len;
        char status;
        int rc = read_frame(idx, body, (size_t)len, zxid, frame_bytes_max, &status);
        if (rc != ZK_INDEX_OK) return rc;
        /* Anything but a plain answer stops the run, unanswered: a watch to set, a missing node,
         * a reserved (negative) xid such as a ping's, or a frame the slow path must answer. */
        if (status != STATUS_ANSWERED || (int32_t)load_be32(body) < 0 || load_be32(idx->out + mark + 16) != 0) {
            idx->out_len = mark;
            break;
        }
        pos += LENGTH_BYTES + (size_t)len;
        frame++;
    }
    result->replies = idx->out;
    result->replies_len = idx->out_len;
    result->frames = frame;
    result->consumed = pos;
    return ZK_INDEX_OK;
}
