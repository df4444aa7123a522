/* ops.c: the operations, asynchronous (queue a request, complete on the I/O thread) and
 * synchronous (the same request, waited for). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int bad_path(const char *path) { return !path || path[0] != '/'; }

static int with_watch(zk_req *r, int kind, const char *path, zk_watch_fn fn, void *wctx) {
    if (!fn) return 0;
    r->wkind = kind;
    r->wfn = fn;
    r->wctx = wctx;
    r->wpath = strdup(path);
    return r->wpath ? 0 : -1;
}

int zk_acreate(zk_client *zk, const char *path, const void *data, int len, int mode, int64_t ttl_ms,
               zk_done_fn done, void *ctx) {
    if (bad_path(path) || len < 0 || mode < 0 || mode > 6) return ZK_EBADARGUMENTS;
    int op = create_opcode(mode);
    zk_req *r = req_new(op, done, ctx);
    if (!r) return ZK_ESYSTEM;
    if (op == OP_CREATETTL) enc_create_ttl(&r->frame, path, data, len, mode, ttl_ms);
    else enc_create(&r->frame, path, data, len, mode);
    return submit(zk, r);
}

int zk_adelete(zk_client *zk, const char *path, int version, zk_done_fn done, void *ctx) {
    if (bad_path(path)) return ZK_EBADARGUMENTS;
    zk_req *r = req_new(OP_DELETE, done, ctx);
    if (!r) return ZK_ESYSTEM;
    enc_delete(&r->frame, path, version);
    return submit(zk, r);
}

static int aread(zk_client *zk, int op, int kind, const char *path, zk_watch_fn watcher, void *wctx,
                 zk_done_fn done, void *ctx) {
    if (bad_path(path)) return ZK_EBADARGUMENTS;
    zk_req *r = req_new(op, done, ctx);
    if (!r) return ZK_ESYSTEM;
    if (with_watch(r, kind, path, watcher, wctx) != 0) { req_free(r); return ZK_ESYSTEM; }
    enc_path_watch(&r->frame, path, watcher != NULL);
    return submit(zk, r);
}

int zk_aexists(zk_client *zk, const char *path, zk_watch_fn watcher, void *wctx, zk_done_fn done, void *ctx) {
    return aread(zk, OP_EXISTS, W_DATA, path, watcher, wctx, done, ctx);
}

int zk_aget(zk_client *zk, const char *path, zk_watch_fn watcher, void *wctx, zk_done_fn done, void *ctx) {
    return aread(zk, OP_GETDATA, W_DATA, path, watcher, wctx, done, ctx);
}

int zk_aget_children(zk_client *zk, const char *path, zk_watch_fn watcher, void *wctx, zk_done_fn done,
                     void *ctx) {
    return aread(zk, OP_GETCHILDREN2, W_CHILD, path, watcher, wctx, done, ctx);
}

int zk_aset(zk_client *zk, const char *path, const void *data, int len, int version, zk_done_fn done, void *ctx) {
    if (bad_path(path) || len < 0) return ZK_EBADARGUMENTS;
    zk_req *r = req_new(OP_SETDATA, done, ctx);
    if (!r) return ZK_ESYSTEM;
    enc_set(&r->frame, path, data, len, version);
    return submit(zk, r);
}

int zk_async(zk_client *zk, const char *path, zk_done_fn done, void *ctx) {
    if (bad_path(path)) return ZK_EBADARGUMENTS;
    zk_req *r = req_new(OP_SYNC, done, ctx);
    if (!r) return ZK_ESYSTEM;
    jw_string(&r->frame, path);
    return submit(zk, r);
}

int zk_amulti(zk_client *zk, int n, const zk_op *ops, zk_done_fn done, void *ctx) {
    if (n < 0 || (n > 0 && !ops)) return ZK_EBADARGUMENTS;
    for (int i = 0; i < n; i++) {
        int t = ops[i].type;
        if (bad_path(ops[i].path) || (t != ZK_OP_CREATE && t != ZK_OP_DELETE && t != ZK_OP_SET && t != ZK_OP_CHECK))
            return ZK_EBADARGUMENTS;
    }
    zk_req *r = req_new(OP_MULTI, done, ctx);
    if (!r) return ZK_ESYSTEM;
    r->n_ops = n;
    enc_multi(&r->frame, n, ops);
    return submit(zk, r);
}

int zk_aadd_watch(zk_client *zk, const char *path, int mode, zk_watch_fn watcher, void *wctx, zk_done_fn done,
                  void *ctx) {
    if (bad_path(path) || !watcher || (mode != ZK_WATCH_PERSISTENT && mode != ZK_WATCH_PERSISTENT_RECURSIVE))
        return ZK_EBADARGUMENTS;
    zk_req *r = req_new(OP_ADDWATCH, done, ctx);
    if (!r) return ZK_ESYSTEM;
    if (with_watch(r, mode == ZK_WATCH_PERSISTENT ? W_PERSISTENT : W_RECURSIVE, path, watcher, wctx) != 0) {
        req_free(r);
        return ZK_ESYSTEM;
    }
    jw_string(&r->frame, path);
    jw_int(&r->frame, mode);
    return submit(zk, r);
}

int zk_aremove_watches(zk_client *zk, const char *path, int type, zk_done_fn done, void *ctx) {
    if (bad_path(path) || type < 1 || type > 5) return ZK_EBADARGUMENTS;
    zk_req *r = req_new(OP_REMOVEWATCHES, done, ctx);
    if (!r || !(r->wpath = strdup(path))) { req_free(r); return ZK_ESYSTEM; }
    r->remove_type = type;
    jw_string(&r->frame, path);
    jw_int(&r->frame, type);
    return submit(zk, r);
}

/* ---- synchronous: the async call plus a waiter that copies the result out ---- */

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int done, err;
    char *path;
    zk_stat stat;
    int has_stat;
    char *data;
    int data_len;
    zk_strings kids;
    int n;
    zk_op_result *results;
} waiter;

static char *dup_n(const char *p, int n) {
    char *s = malloc((size_t)n + 1);
    if (s) { memcpy(s, p, (size_t)n); s[n] = 0; }
    return s;
}

static void waiter_done(const zk_result *r, void *ctx) {
    waiter *w = ctx;
    pthread_mutex_lock(&w->mu);
    w->err = r->err;
    if (r->path) w->path = strdup(r->path);
    if (r->stat) { w->stat = *r->stat; w->has_stat = 1; }
    if (r->data) { w->data = dup_n(r->data, r->data_len); w->data_len = r->data_len; }
    if (r->children) {
        w->kids.items = calloc((size_t)r->children->count + 1, sizeof(char *));
        for (int i = 0; w->kids.items && i < r->children->count; i++)
            w->kids.items[w->kids.count++] = strdup(r->children->items[i]);
    }
    if (r->results && w->results) {
        for (int i = 0; i < r->n_results && i < w->n; i++) {
            w->results[i] = r->results[i];
            w->results[i].path = r->results[i].path ? strdup(r->results[i].path) : NULL;
        }
    }
    w->done = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

static void waiter_init(waiter *w) {
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
}

/* rc: what the async call returned. Waits for the completion unless that failed already. */
static int waiter_wait(waiter *w, int rc) {
    if (rc == ZOK) {
        pthread_mutex_lock(&w->mu);
        while (!w->done) pthread_cond_wait(&w->cond, &w->mu);
        pthread_mutex_unlock(&w->mu);
        rc = w->err;
    }
    return rc;
}

static void waiter_free(waiter *w) {
    free(w->path);
    free(w->data);
    zk_strings_free(&w->kids);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cond);
}

#define SYNC_GUARD(zk) \
    do { \
        if (on_io_thread(zk)) return ZK_EAPI; \
    } while (0)

int zk_create(zk_client *zk, const char *path, const void *data, int len, int mode, int64_t ttl_ms,
              char *path_out, size_t path_out_len, zk_stat *stat) {
    SYNC_GUARD(zk);
    waiter w;
    waiter_init(&w);
    int rc = waiter_wait(&w, zk_acreate(zk, path, data, len, mode, ttl_ms, waiter_done, &w));
    if (rc == ZOK) {
        if (path_out && path_out_len) snprintf(path_out, path_out_len, "%s", w.path ? w.path : "");
        if (stat) *stat = w.stat;
    }
    waiter_free(&w);
    return rc;
}

int zk_delete(zk_client *zk, const char *path, int version) {
    SYNC_GUARD(zk);
    waiter w;
    waiter_init(&w);
    int rc = waiter_wait(&w, zk_adelete(zk, path, version, waiter_done, &w));
    waiter_free(&w);
    return rc;
}

int zk_exists(zk_client *zk, const char *path, zk_watch_fn watcher, void *wctx, zk_stat *stat) {
    SYNC_GUARD(zk);
    waiter w;
    waiter_init(&w);
    int rc = waiter_wait(&w, zk_aexists(zk, path, watcher, wctx, waiter_done, &w));
    if (rc == ZOK && stat) *stat = w.stat;
    waiter_free(&w);
    return rc;
}

int zk_get(zk_client *zk, const char *path, zk_watch_fn watcher, void *wctx, void *buf, int *len, zk_stat *stat) {
    SYNC_GUARD(zk);
    waiter w;
    waiter_init(&w);
    int rc = waiter_wait(&w, zk_aget(zk, path, watcher, wctx, waiter_done, &w));
    if (rc == ZOK) {
        if (buf && len && *len > 0) memcpy(buf, w.data, (size_t)(w.data_len < *len ? w.data_len : *len));
        if (len) *len = w.data_len;
        if (stat) *stat = w.stat;
    }
    waiter_free(&w);
    return rc;
}

int zk_set(zk_client *zk, const char *path, const void *data, int len, int version, zk_stat *stat) {
    SYNC_GUARD(zk);
    waiter w;
    waiter_init(&w);
    int rc = waiter_wait(&w, zk_aset(zk, path, data, len, version, waiter_done, &w));
    if (rc == ZOK && stat) *stat = w.stat;
    waiter_free(&w);
    return rc;
}

int zk_get_children(zk_client *zk, const char *path, zk_watch_fn watcher, void *wctx, zk_strings *children,
                    zk_stat *stat) {
    SYNC_GUARD(zk);
    waiter w;
    waiter_init(&w);
    int rc = waiter_wait(&w, zk_aget_children(zk, path, watcher, wctx, waiter_done, &w));
    if (rc == ZOK) {
        if (children) { *children = w.kids; w.kids = (zk_strings){0}; }
        if (stat) *stat = w.stat;
    }
    waiter_free(&w);
    return rc;
}

int zk_sync(zk_client *zk, const char *path) {
    SYNC_GUARD(zk);
    waiter w;
    waiter_init(&w);
    int rc = waiter_wait(&w, zk_async(zk, path, waiter_done, &w));
    waiter_free(&w);
    return rc;
}

int zk_add_watch(zk_client *zk, const char *path, int mode, zk_watch_fn watcher, void *wctx) {
    SYNC_GUARD(zk);
    waiter w;
    waiter_init(&w);
    int rc = waiter_wait(&w, zk_aadd_watch(zk, path, mode, watcher, wctx, waiter_done, &w));
    waiter_free(&w);
    return rc;
}

int zk_remove_watches(zk_client *zk, const char *path, int type) {
    SYNC_GUARD(zk);
    waiter w;
    waiter_init(&w);
    int rc = waiter_wait(&w, zk_aremove_watches(zk, path, type, waiter_done, &w));
    waiter_free(&w);
    return rc;
}

int zk_multi(zk_client *zk, int n, const zk_op *ops, zk_op_result *results) {
    SYNC_GUARD(zk);
    waiter w;
    waiter_init(&w);
    if (results) memset(results, 0, sizeof *results * (size_t)(n > 0 ? n : 0));
    w.n = results ? n : 0;
    w.results = results;
    int rc = waiter_wait(&w, zk_amulti(zk, n, ops, waiter_done, &w));
    waiter_free(&w);
    return rc;
}
