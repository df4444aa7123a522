/* zkpy.h: a C client for zkpy (a ZooKeeper-class service) over ZeroMQ. See bindings/c/README.md.
 *
 *   zk_client *zk = zk_open("ipc:///run/1.client,ipc:///run/2.client", 10000, NULL, NULL, &err);
 *   char out[256];
 *   err = zk_create(zk, "/app", "hi", 2, ZK_PERSISTENT, 0, out, sizeof out, NULL);
 *   zk_close(zk);
 *
 * Every function returns a ZooKeeper error code: ZOK (0) or a negative ZK_E* value;
 * zk_strerror() names it. Data is bytes with a length; paths are NUL-terminated UTF-8.
 *
 * Threads. A client owns one I/O thread that does all socket work, pings, failover and session
 * resume. Every function here may be called from any thread at the same time. Callbacks
 * (completions, watches, session events) run on that I/O thread, one at a time, in the order
 * the server sent them: keep them short, and do not call a synchronous function from a callback
 * (it would wait on the thread that is running it; it returns ZK_EAPI instead). The async
 * functions may be called from callbacks.
 *
 * Connection. The connect string is a comma-separated list of endpoints (tcp://h:p, ipc://path,
 * or a bare host:port). The client tries them in turn: on a refusal (empty frame), on a drop,
 * or when it has heard nothing for two thirds of the session timeout, it moves to the next one
 * and resumes the session there with its id, password and the last zxid it has seen, then
 * re-registers its watches (setWatches2). It pings after a third of the timeout without
 * traffic. Requests still unanswered when a connection is lost complete with ZK_ECONNECTIONLOSS
 * (they may or may not have taken effect); requests made while disconnected wait for the next
 * connection, up to one session timeout (then ZK_ECONNECTIONLOSS; they were not sent). When the
 * server says the session expired, every request completes with ZK_ESESSIONEXPIRED and the
 * client is finished: close it and open a new one.
 */
#ifndef ZKPY_H
#define ZKPY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ZooKeeper error codes (same numbers as ZooKeeper and docs/protocol.md). */
enum {
    ZOK = 0,
    ZK_ESYSTEM = -1,
    ZK_ERUNTIMEINCONSISTENCY = -2,
    ZK_ECONNECTIONLOSS = -4,
    ZK_EMARSHALLING = -5,
    ZK_EUNIMPLEMENTED = -6,
    ZK_EOPERATIONTIMEOUT = -7,
    ZK_EBADARGUMENTS = -8,
    ZK_EAPI = -100, /* misuse of this library (e.g. a sync call from a callback) */
    ZK_ENONODE = -101,
    ZK_ENOAUTH = -102,
    ZK_EBADVERSION = -103,
    ZK_ENOCHILDRENFOREPHEMERALS = -108,
    ZK_ENODEEXISTS = -110,
    ZK_ENOTEMPTY = -111,
    ZK_ESESSIONEXPIRED = -112,
    ZK_EINVALIDACL = -114,
    ZK_EAUTHFAILED = -115,
    ZK_ECLOSING = -116, /* the client is closed or closing */
    ZK_ESESSIONMOVED = -118,
    ZK_ENOWATCHER = -121,
    ZK_ETHROTTLED = -127,
};
const char *zk_strerror(int err);

/* Create modes (the wire's create flags). */
enum {
    ZK_PERSISTENT = 0,
    ZK_EPHEMERAL = 1,
    ZK_PERSISTENT_SEQUENTIAL = 2,
    ZK_EPHEMERAL_SEQUENTIAL = 3,
    ZK_CONTAINER = 4,
    ZK_PERSISTENT_WITH_TTL = 5,
    ZK_PERSISTENT_SEQUENTIAL_WITH_TTL = 6,
};

/* Watch event types, and the session states passed to the session callback. */
enum { ZK_NODE_CREATED = 1, ZK_NODE_DELETED = 2, ZK_NODE_DATA_CHANGED = 3, ZK_NODE_CHILDREN_CHANGED = 4 };
enum { ZK_STATE_CONNECTING = 1, ZK_STATE_CONNECTED = 3, ZK_STATE_EXPIRED = -112, ZK_STATE_CLOSED = 0 };
/* addWatch modes. */
enum { ZK_WATCH_PERSISTENT = 0, ZK_WATCH_PERSISTENT_RECURSIVE = 1 };

typedef struct zk_stat {
    int64_t czxid, mzxid, ctime, mtime;
    int32_t version, cversion, aversion;
    int64_t ephemeral_owner;
    int32_t data_length, num_children;
    int64_t pzxid;
} zk_stat;

typedef struct zk_strings {
    int32_t count;
    char **items;
} zk_strings;
void zk_strings_free(zk_strings *s);

typedef struct zk_client zk_client;

/* A watch fires once (get/exists/get_children) or every time (zk_add_watch). */
typedef void (*zk_watch_fn)(zk_client *zk, int type, const char *path, void *ctx);
/* Session state changes: ZK_STATE_CONNECTING, ZK_STATE_CONNECTED, ZK_STATE_EXPIRED, ZK_STATE_CLOSED. */
typedef void (*zk_session_fn)(zk_client *zk, int state, void *ctx);

/* Opens a client and waits (up to twice the session timeout) for a session. NULL on failure, with
 * *err set. session_fn may be NULL. */
zk_client *zk_open(const char *connect, int timeout_ms, zk_session_fn session_fn, void *ctx, int *err);
/* As zk_open, resuming an existing session (id and 16-byte password from zk_session). */
zk_client *zk_resume(const char *connect, int timeout_ms, int64_t session_id, const uint8_t passwd[16],
                     zk_session_fn session_fn, void *ctx, int *err);
/* Ends the session (closeSession) and frees the client. Pending requests complete with ZK_ECLOSING.
 * Without a connection at the time, the session is left to expire. Not from a callback (it does
 * nothing there). */
void zk_close(zk_client *zk);
/* Frees the client without ending the session (its ephemerals stay until it expires). */
void zk_detach(zk_client *zk);

void zk_session(zk_client *zk, int64_t *session_id, uint8_t passwd[16], int *timeout_ms);
int zk_state(zk_client *zk);
/* The endpoint the client is connected to now, copied into buf ("" when disconnected). */
void zk_endpoint(zk_client *zk, char *buf, size_t len);

/* ---- synchronous API: waits for the answer ---- */

/* ttl_ms only for the TTL modes (else 0). path_out gets the created path (with the sequence
 * suffix); stat may be NULL. Creates with the open ACL (world:anyone, all permissions). */
int zk_create(zk_client *zk, const char *path, const void *data, int len, int mode, int64_t ttl_ms,
              char *path_out, size_t path_out_len, zk_stat *stat);
int zk_delete(zk_client *zk, const char *path, int version);
/* Returns ZOK with stat, or ZK_ENONODE. A watcher (may be NULL) is set in both cases. */
int zk_exists(zk_client *zk, const char *path, zk_watch_fn watcher, void *wctx, zk_stat *stat);
/* buf/len: in, the buffer and its size; out, the data length (copied up to the buffer size). */
int zk_get(zk_client *zk, const char *path, zk_watch_fn watcher, void *wctx, void *buf, int *len, zk_stat *stat);
int zk_set(zk_client *zk, const char *path, const void *data, int len, int version, zk_stat *stat);
/* children: free with zk_strings_free. stat may be NULL. */
int zk_get_children(zk_client *zk, const char *path, zk_watch_fn watcher, void *wctx, zk_strings *children,
                    zk_stat *stat);
int zk_sync(zk_client *zk, const char *path);
int zk_add_watch(zk_client *zk, const char *path, int mode, zk_watch_fn watcher, void *wctx);
/* type: 1 child, 2 data, 3 any, 4 persistent, 5 persistent recursive. Removes this client's
 * watchers of that type on path (locally and on the server). */
int zk_remove_watches(zk_client *zk, const char *path, int type);

/* multi: all or nothing. */
enum { ZK_OP_CREATE = 1, ZK_OP_DELETE = 2, ZK_OP_SET = 5, ZK_OP_CHECK = 13 };
typedef struct zk_op {
    int type; /* ZK_OP_* */
    const char *path;
    const void *data; /* create, set */
    int len;
    int mode;    /* create */
    int version; /* delete, set, check */
} zk_op;
typedef struct zk_op_result {
    int err;       /* ZOK, the failing op's error, or ZK_ERUNTIMEINCONSISTENCY for the others */
    char *path;    /* create: the created path (malloc'd; zk_op_results_free) */
    zk_stat stat;  /* set */
} zk_op_result;
/* Returns ZOK when every op succeeded, else the first failing op's error. */
int zk_multi(zk_client *zk, int n, const zk_op *ops, zk_op_result *results);
void zk_op_results_free(int n, zk_op_result *results);

/* ---- asynchronous API: returns at once; done runs on the I/O thread ----
 * Requests are pipelined and answered in the order they were made. The result and everything
 * it points to are valid only during the callback. */
typedef struct zk_result {
    int err;
    int op;               /* the opcode */
    const char *path;     /* create, sync */
    const char *data;     /* get */
    int data_len;
    const zk_stat *stat;  /* create, exists, get, set, get_children (NULL when none) */
    const zk_strings *children;
    int n_results;        /* multi */
    const zk_op_result *results;
} zk_result;
typedef void (*zk_done_fn)(const zk_result *result, void *ctx);

int zk_acreate(zk_client *zk, const char *path, const void *data, int len, int mode, int64_t ttl_ms,
               zk_done_fn done, void *ctx);
int zk_adelete(zk_client *zk, const char *path, int version, zk_done_fn done, void *ctx);
int zk_aexists(zk_client *zk, const char *path, zk_watch_fn watcher, void *wctx, zk_done_fn done, void *ctx);
int zk_aget(zk_client *zk, const char *path, zk_watch_fn watcher, void *wctx, zk_done_fn done, void *ctx);
int zk_aset(zk_client *zk, const char *path, const void *data, int len, int version, zk_done_fn done, void *ctx);
int zk_aget_children(zk_client *zk, const char *path, zk_watch_fn watcher, void *wctx, zk_done_fn done,
                     void *ctx);
int zk_async(zk_client *zk, const char *path, zk_done_fn done, void *ctx);
int zk_amulti(zk_client *zk, int n, const zk_op *ops, zk_done_fn done, void *ctx);
int zk_aadd_watch(zk_client *zk, const char *path, int mode, zk_watch_fn watcher, void *wctx, zk_done_fn done,
                  void *ctx);
int zk_aremove_watches(zk_client *zk, const char *path, int type, zk_done_fn done, void *ctx);

/* ---- recipes (kazoo's node layout, so they share a lock with kazoo and zkclient) ---- */

/* Lock: contenders create <path>/<uuid hex>__lock__<seq> (ephemeral sequential); the lowest
 * sequence holds it; each waits on its predecessor only. timeout_ms < 0 waits forever.
 * Returns ZOK when held, ZK_EOPERATIONTIMEOUT when not acquired in time. */
typedef struct zk_lock zk_lock;
zk_lock *zk_lock_new(zk_client *zk, const char *path, const char *identifier);
int zk_lock_acquire(zk_lock *lock, int timeout_ms);
int zk_lock_release(zk_lock *lock);
void zk_lock_free(zk_lock *lock);
/* Election: a lock on path whose holder runs leader(ctx); the identifier is the node's data.
 * Returns when leader() returns (after giving up leadership), or with an error. */
int zk_election_run(zk_client *zk, const char *path, const char *identifier, void (*leader)(void *ctx),
                    void *ctx);

#ifdef __cplusplus
}
#endif
#endif
