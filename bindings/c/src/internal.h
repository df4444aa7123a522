/* internal.h: the client's private state, shared by client.c, ops.c and recipes.c. */
#ifndef ZKPY_INTERNAL_H
#define ZKPY_INTERNAL_H

#include <pthread.h>

#include "jute.h"
#include "zkpy.h"

/* Requests sent and not yet answered, at most (as zkclient's): a bulk load of async calls is
 * never more than the server takes from one client (10,000). */
enum { INFLIGHT_MAX = 1000 };

enum { W_DATA = 1, W_EXIST = 2, W_CHILD = 3, W_PERSISTENT = 4, W_RECURSIVE = 5 };

typedef struct watch_reg {
    int kind;
    char *path;
    zk_watch_fn fn;
    void *ctx;
    struct watch_reg *next;
} watch_reg;

typedef struct zk_req {
    int32_t xid, op;
    jw frame;             /* header + body, sent as one frame */
    int wkind;            /* the watch to set when the read succeeds (wfn != NULL) */
    char *wpath;
    zk_watch_fn wfn;
    void *wctx;
    int remove_type;      /* removeWatches: the local watchers to drop on success */
    int n_ops;            /* multi */
    int64_t queued_ms;    /* when submitted (monotonic) */
    zk_done_fn done;
    void *ctx;
    struct zk_req *next;
} zk_req;

struct zk_client {
    pthread_mutex_t mu; /* guards the fields marked (mu); the rest belong to the I/O thread */
    pthread_cond_t cond;
    pthread_t thread;
    int wake_r, wake_w;
    char **eps;
    int n_eps, ep_idx;
    char endpoint[512];  /* (mu) */
    int timeout_ms, negotiated_ms;
    int64_t session_id;  /* (mu) */
    uint8_t passwd[16];  /* (mu) */
    int64_t last_zxid;
    int state;           /* (mu) */
    int close_requested; /* (mu) 1 close the session, 2 just stop */
    int32_t next_xid;    /* (mu) */
    zk_req *outq_head, *outq_tail; /* (mu) made, not yet sent */
    zk_req *sent_head, *sent_tail; /* sent, awaiting replies in order */
    int n_sent;          /* how many: at most INFLIGHT_MAX, the rest wait in outq */
    watch_reg *watches;  /* (mu) */
    zk_session_fn session_fn;
    void *session_ctx;
    void *zctx, *sock;
    int64_t last_send_ms, last_recv_ms;
    int send_failed;
};

zk_req *req_new(int op, zk_done_fn done, void *ctx);
void req_free(zk_req *r);
int submit(zk_client *zk, zk_req *r);
int on_io_thread(zk_client *zk);
/* Decodes a multi reply body into out[n] and res->err/n_results (used by the tests too). */
void decode_multi(jr *b, zk_result *res, zk_op_result *out, int n);

#endif
