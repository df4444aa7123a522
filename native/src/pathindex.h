/* The path index: every znode's path, data, Stat and child names in one hash table, and the
 * batched read path that answers exists/getData/getChildren/getChildren2 from it in one call.
 *
 * C returns codes; native/_cindex.py raises. One thread at a time per index, like the loop
 * that owns it: the read path reuses buffers owned by the index.
 */
#ifndef ZK_PATHINDEX_H
#define ZK_PATHINDEX_H

#include <stddef.h>
#include <stdint.h>

#define ZK_INDEX_STAT_BYTES 68
#define ZK_INDEX_STAT_FIELDS 9
#define ZK_INDEX_FIELDS 7

enum zk_index_code {
    ZK_INDEX_OK = 0,
    ZK_INDEX_NOMEM = -1,
    ZK_INDEX_NOT_FOUND = -2,
    ZK_INDEX_NO_PARENT = -3,
    ZK_INDEX_HAS_CHILDREN = -4,
    ZK_INDEX_BAD_PATH = -5,
    ZK_INDEX_BAD_SIZE = -6,
    ZK_READ_FRAME_LENGTH = -7,
    ZK_READ_FRAMES_MAX = -8,
    ZK_INDEX_EXISTS = -9,
};

typedef struct zk_index zk_index;

typedef struct zk_walk zk_walk;

/* What zk_walk_next hands back, valid until the next call on the walk. */
typedef struct {
    const char *bytes; /* count snapshot node records back to back */
    size_t bytes_len;
    size_t count;
    const uint64_t *marked; /* where the records of marked nodes start in bytes */
    size_t marked_count;
} zk_walk_result;

/* What get, children and the apply calls hand back; the pointer stays valid until the next call
 * on the index. */
typedef struct {
    const char *bytes; /* get: the data; children: child names joined by '/' */
    size_t bytes_len;
    size_t count;      /* children: how many names */
    uint32_t acl;      /* get: the node's ACL number (not set by children) */
    /* get and the apply calls: the node's 68-byte Stat, copied into the view, where a caller can
     * keep a buffer on it (cffi reads it from a fixed place in a third of the time it takes to
     * follow a pointer) */
    char stat[ZK_INDEX_STAT_BYTES];
} zk_index_view;

/* What read_batch hands back; on an error code, error_frame/error_offset say where. */
typedef struct {
    const char *replies;
    size_t replies_len;
    const char *status;
    size_t status_len;
    size_t error_frame;
    size_t error_offset;
} zk_read_result;

/* What read_run hands back. */
typedef struct {
    const char *replies;
    size_t replies_len;
    size_t frames;   /* how many frames were answered */
    size_t consumed; /* the bytes of requests they took up */
} zk_run_result;

zk_index *zk_index_new(void);
void zk_index_free(zk_index *idx);
size_t zk_index_len(const zk_index *idx);
/* The bytes of every node's path and data (mntr's zk_approximate_data_size, as ZooKeeper counts it). */
size_t zk_index_data_size(const zk_index *idx);
/* The node at path as given (its parent must be in the index, or path is "/"), its Stat's
 * dataLength and numChildren kept true; acl is the tree's number for its ACL list. */
int zk_index_put(zk_index *idx, const char *path, size_t path_len, const char *data, size_t data_len,
                 const char *stat, size_t stat_len, int readable, uint32_t acl);
/* n puts in order, as zk_index_put would do them: paths and datas joined back to back with their
 * lengths, stat_fields ZK_INDEX_STAT_FIELDS columns of n (Stat without dataLength and numChildren),
 * readable one flag each, acls one ACL number each (NULL: 0 for every node). Reserves table room
 * for n new nodes first. Stops at the first failure: an int Stat field outside int32 or data over
 * data_bytes_max is BAD_SIZE, a path over path_bytes_max BAD_PATH; *done says how many went in. */
int zk_index_put_batch(zk_index *idx, const char *paths, const uint32_t *path_lens, const char *datas,
                       const uint32_t *data_lens, const int64_t *stat_fields, const uint8_t *readable,
                       const uint32_t *acls, size_t n, size_t path_bytes_max, size_t data_bytes_max,
                       size_t *done);
int zk_index_remove(zk_index *idx, const char *path, size_t path_len);

/* A txn's change in one call, each Stat field it changes set here (dataLength and numChildren kept
 * true as always): what the tree's apply does to the index. Where a view is passed, it then shows
 * the node as zk_index_get would (the created one for create).
 *
 * A parent counts the creates its children have seen as ZooKeeper's DataNode does: its Stat
 * reports cversion = creates x 2 - numChildren (creates + deletes, wrapped to an int32), so creates
 * = floor((cversion + numChildren) / 2), numChildren as it was before the create or delete.
 *
 * set_data: setData's data, mzxid, mtime and version, the rest of the Stat kept. create: a node
 * with a create's Stat (czxid = mzxid = pzxid = zxid, ctime = mtime = time, versions 0,
 * ephemeralOwner `owner`), readable flag and ACL number, EXISTS if the path has one, NO_PARENT if
 * its parent is not in the index; when parent_creates (the txn's parentCVersion) is above the
 * parent's creates the parent takes it and its pzxid becomes zxid, otherwise both are kept (a
 * replayed create older than the parent's state); either way its cversion is recomputed for the
 * new child. delete: remove(path) as the txn at zxid: the parent's creates are kept, so its
 * cversion goes up by one, and its pzxid becomes zxid if that is higher; *owner is the
 * ephemeralOwner the removed node's Stat had. set_acl: setACL's ACL number, readable flag and
 * aversion, the rest kept. */
int zk_index_set_data(zk_index *idx, const char *path, size_t path_len, const char *data, size_t data_len,
                      int64_t mzxid, int64_t mtime, int32_t version, zk_index_view *view);
int zk_index_create(zk_index *idx, const char *path, size_t path_len, const char *data, size_t data_len,
                    int readable, uint32_t acl, int64_t zxid, int64_t time, int64_t owner, int32_t parent_creates,
                    zk_index_view *view);
int zk_index_delete(zk_index *idx, const char *path, size_t path_len, int64_t zxid, int64_t *owner);
int zk_index_set_acl(zk_index *idx, const char *path, size_t path_len, uint32_t acl, int readable,
                     int32_t aversion, zk_index_view *view);
int zk_index_contains(const zk_index *idx, const char *path, size_t path_len);
/* The node's data, Stat and ACL number, or NOT_FOUND. */
int zk_index_get(const zk_index *idx, const char *path, size_t path_len, zk_index_view *view);
/* What the tree's prep reads of a node, as ZK_INDEX_FIELDS int64s in out: mzxid, version,
 * creates (the count a Stat's cversion, creates + deletes, is made of), aversion, ephemeralOwner,
 * numChildren and the ACL number. */
int zk_index_fields(const zk_index *idx, const char *path, size_t path_len, int64_t *out);
int zk_index_children(zk_index *idx, const char *path, size_t path_len, zk_index_view *view);
/* The tree as a snapshot's node records (zkcore/_snapshot.py's format), parents before their
 * children and each node's children in the index's order: zk_walk_next writes the next nodes_max
 * of them, or fewer once they hold bytes_max bytes (at least one; count 0: all done), noting where each marked node's record starts (mark: set or
 * clear a node's flag; a snapshot marks the nodes whose ephemeralOwner its Stat does not report,
 * to patch those records). A node's cversion is written as its creates. The index must not
 * change while a walk is in progress. */
int zk_index_mark(zk_index *idx, const char *path, size_t path_len, int mark);
zk_walk *zk_walk_new(const zk_index *idx);
void zk_walk_free(zk_walk *walk);
int zk_walk_next(zk_walk *walk, size_t nodes_max, size_t bytes_max, zk_walk_result *result);
int zk_read_batch(zk_index *idx, const char *requests, size_t requests_len, int64_t zxid,
                  size_t frames_max, size_t reply_bytes_max, zk_read_result *result);

/* The run of plain reads that opens a stream of length-prefixed frames (a ZooKeeper client's TCP
 * bytes): each frame answered in order while it is complete, within frame_bytes_max, a read of a
 * node that exists and is readable, without a watch and with a non-negative xid; it stops before
 * the first frame that is not, or after frames_max. Never an error for what the stream holds:
 * what it leaves is the caller's to take frame by frame. */
int zk_read_run(zk_index *idx, const char *requests, size_t requests_len, int64_t zxid, size_t frames_max,
                size_t frame_bytes_max, zk_run_result *result);

#endif
