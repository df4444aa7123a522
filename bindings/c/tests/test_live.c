/* test_live.c: the C binding against a live ensemble started by the launcher. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests.h"

#define TIMEOUT_MS 6000

/* ---- a recorder of watch and session events, waited on with a deadline ---- */

typedef struct rec {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int n;
    int types[64];
    char paths[64][256];
} rec;

static void rec_init(rec *r) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cond, NULL);
}

static void rec_add(rec *r, int type, const char *path) {
    pthread_mutex_lock(&r->mu);
    if (r->n < 64) {
        r->types[r->n] = type;
        snprintf(r->paths[r->n], sizeof r->paths[0], "%s", path ? path : "");
        r->n++;
    }
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->mu);
}

static void on_watch(zk_client *zk, int type, const char *path, void *ctx) {
    (void)zk;
    rec_add(ctx, type, path);
}

static void on_session(zk_client *zk, int state, void *ctx) {
    (void)zk;
    if (ctx) rec_add(ctx, state, "");
}

/* Waits until the recorder holds at least n events; returns how many it holds. */
static int rec_wait(rec *r, int n, int ms) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) { until.tv_sec++; until.tv_nsec -= 1000000000; }
    pthread_mutex_lock(&r->mu);
    while (r->n < n)
        if (pthread_cond_timedwait(&r->cond, &r->mu, &until) == ETIMEDOUT) break;
    int got = r->n;
    pthread_mutex_unlock(&r->mu);
    return got;
}

static int rec_count(rec *r) { return rec_wait(r, 0, 0); }

static zk_client *open_client(rec *session) {
    int err;
    zk_client *zk = zk_open(t_connect, TIMEOUT_MS, session ? on_session : NULL, session, &err);
    if (!zk) fprintf(stderr, "zk_open: %s\n", zk_strerror(err));
    return zk;
}

static char root[128];
static void make_root(zk_client *zk, const char *name) {
    snprintf(root, sizeof root, "/c-%d-%s", (int)getpid(), name);
    zk_create(zk, root, NULL, 0, ZK_PERSISTENT, 0, NULL, 0, NULL);
}
static const char *at(const char *rel) {
    static __thread char buf[4][256];
    static __thread int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s%s", root, rel);
    return buf[i];
}

/* ---- tests ---- */

static void t_crud(void) {
    zk_client *zk = open_client(NULL);
    CHECK(zk, "no session");
    make_root(zk, "crud");
    char out[256];
    zk_stat st;
    CHECK_RC(zk_create(zk, at("/a"), "one", 3, ZK_PERSISTENT, 0, out, sizeof out, &st), ZOK);
    CHECK(!strcmp(out, at("/a")), "created %s", out);
    CHECK(st.version == 0 && st.data_length == 3, "stat version %d length %d", st.version, st.data_length);
    CHECK_RC(zk_create(zk, at("/a"), "x", 1, ZK_PERSISTENT, 0, NULL, 0, NULL), ZK_ENODEEXISTS);
    char buf[16];
    int len = sizeof buf;
    CHECK_RC(zk_get(zk, at("/a"), NULL, NULL, buf, &len, &st), ZOK);
    CHECK(len == 3 && !memcmp(buf, "one", 3), "data %.*s", len, buf);
    CHECK_RC(zk_set(zk, at("/a"), "two", 3, 0, &st), ZOK);
    CHECK(st.version == 1, "version %d after set", st.version);
    CHECK_RC(zk_set(zk, at("/a"), "three", 5, 0, NULL), ZK_EBADVERSION);
    CHECK_RC(zk_exists(zk, at("/a"), NULL, NULL, &st), ZOK);
    CHECK(st.data_length == 3, "exists stat length %d", st.data_length);
    CHECK_RC(zk_exists(zk, at("/nope"), NULL, NULL, NULL), ZK_ENONODE);
    len = sizeof buf;
    CHECK_RC(zk_get(zk, at("/nope"), NULL, NULL, buf, &len, NULL), ZK_ENONODE);
    CHECK_RC(zk_create(zk, at("/a/b"), NULL, 0, ZK_PERSISTENT, 0, NULL, 0, NULL), ZOK);
    CHECK_RC(zk_delete(zk, at("/a"), -1), ZK_ENOTEMPTY);
    CHECK_RC(zk_delete(zk, at("/a/b"), 5), ZK_EBADVERSION);
    CHECK_RC(zk_delete(zk, at("/a/b"), 0), ZOK);
    CHECK_RC(zk_delete(zk, at("/a"), -1), ZOK);
    CHECK_RC(zk_delete(zk, at("/a"), -1), ZK_ENONODE);
    CHECK_RC(zk_create(zk, at("/x/y"), NULL, 0, ZK_PERSISTENT, 0, NULL, 0, NULL), ZK_ENONODE);
    CHECK_RC(zk_create(zk, "bad", NULL, 0, ZK_PERSISTENT, 0, NULL, 0, NULL), ZK_EBADARGUMENTS);
    CHECK(strcmp(zk_strerror(ZK_ENONODE), "no node") == 0, "message %s", zk_strerror(ZK_ENONODE));
    zk_close(zk);
}

static void t_create_modes(void) {
    zk_client *zk = open_client(NULL);
    CHECK(zk, "no session");
    make_root(zk, "modes");
    int64_t sid;
    zk_session(zk, &sid, NULL, NULL);
    char out[256];
    zk_stat st;
    CHECK_RC(zk_create(zk, at("/e"), NULL, 0, ZK_EPHEMERAL, 0, out, sizeof out, &st), ZOK);
    CHECK(st.ephemeral_owner == sid, "ephemeral owner %lld, session %lld", (long long)st.ephemeral_owner, (long long)sid);
    CHECK_RC(zk_create(zk, at("/e/child"), NULL, 0, ZK_PERSISTENT, 0, NULL, 0, NULL), ZK_ENOCHILDRENFOREPHEMERALS);
    CHECK_RC(zk_create(zk, at("/s-"), NULL, 0, ZK_PERSISTENT_SEQUENTIAL, 0, out, sizeof out, NULL), ZOK);
    CHECK(strlen(out) == strlen(at("/s-")) + 10, "sequential name %s", out);
    char first[256];
    snprintf(first, sizeof first, "%s", out);
    CHECK_RC(zk_create(zk, at("/s-"), NULL, 0, ZK_EPHEMERAL_SEQUENTIAL, 0, out, sizeof out, &st), ZOK);
    CHECK(strcmp(out, first) > 0 && st.ephemeral_owner == sid, "second sequential %s after %s", out, first);
    CHECK_RC(zk_create(zk, at("/c"), NULL, 0, ZK_CONTAINER, 0, out, sizeof out, NULL), ZOK);
    int rc = zk_create(zk, at("/t"), NULL, 0, ZK_PERSISTENT_WITH_TTL, 60000, out, sizeof out, NULL);
    CHECK(rc == ZOK, "create with TTL: %s", zk_strerror(rc));
    rc = zk_create(zk, at("/ts-"), NULL, 0, ZK_PERSISTENT_SEQUENTIAL_WITH_TTL, 60000, out, sizeof out, NULL);
    CHECK(rc == ZOK, "create sequential with TTL: %s", zk_strerror(rc));
    CHECK_RC(zk_create(zk, at("/t0"), NULL, 0, ZK_PERSISTENT_WITH_TTL, 0, NULL, 0, NULL), ZK_EBADARGUMENTS);
    zk_strings kids = {0};
    CHECK_RC(zk_get_children(zk, root, NULL, NULL, &kids, &st), ZOK);
    CHECK(kids.count == 6 && st.num_children == 6, "%d children", kids.count);
    zk_strings_free(&kids);
    zk_close(zk);
    /* The ephemerals went with the session. */
    zk = open_client(NULL);
    CHECK(zk, "no session");
    CHECK_RC(zk_exists(zk, at("/e"), NULL, NULL, NULL), ZK_ENONODE);
    CHECK_RC(zk_get_children(zk, root, NULL, NULL, &kids, NULL), ZOK);
    CHECK(kids.count == 4, "%d children after close", kids.count);
    zk_strings_free(&kids);
    zk_close(zk);
}

static void t_multi(void) {
    zk_client *zk = open_client(NULL);
    CHECK(zk, "no session");
    make_root(zk, "multi");
    zk_op ok[3] = {
        {.type = ZK_OP_CREATE, .path = at("/m"), .data = "x", .len = 1},
        {.type = ZK_OP_SET, .path = at("/m"), .data = "y", .len = 1, .version = 0},
        {.type = ZK_OP_CHECK, .path = at("/m"), .version = 1},
    };
    zk_op_result res[3];
    CHECK_RC(zk_multi(zk, 3, ok, res), ZOK);
    CHECK(res[0].err == 0 && res[0].path && !strcmp(res[0].path, at("/m")), "create result %s", res[0].path);
    CHECK(res[1].stat.version == 1, "set version %d", res[1].stat.version);
    zk_op_results_free(3, res);
    zk_op bad[3] = {
        {.type = ZK_OP_CREATE, .path = at("/n"), .data = "x", .len = 1},
        {.type = ZK_OP_SET, .path = at("/m"), .data = "z", .len = 1, .version = 7},
        {.type = ZK_OP_DELETE, .path = at("/m"), .version = -1},
    };
    CHECK_RC(zk_multi(zk, 3, bad, res), ZK_EBADVERSION);
    CHECK(res[0].err == 0 && res[1].err == ZK_EBADVERSION && res[2].err == ZK_ERUNTIMEINCONSISTENCY,
          "per-op errors %d %d %d", res[0].err, res[1].err, res[2].err);
    zk_op_results_free(3, res);
    CHECK_RC(zk_exists(zk, at("/n"), NULL, NULL, NULL), ZK_ENONODE);
    CHECK_RC(zk_sync(zk, root), ZOK);
    zk_close(zk);
}

static void t_watches(void) {
    static rec ev; /* static: a watch left set on a failure path must not outlive its recorder */
    rec_init(&ev);
    zk_client *zk = open_client(NULL), *other = open_client(NULL);
    CHECK(zk && other, "no session");
    make_root(zk, "watch");
    CHECK_RC(zk_create(zk, at("/d"), "a", 1, ZK_PERSISTENT, 0, NULL, 0, NULL), ZOK);
    char buf[8];
    int len = sizeof buf;
    CHECK_RC(zk_get(zk, at("/d"), on_watch, &ev, buf, &len, NULL), ZOK);
    CHECK_RC(zk_exists(zk, at("/later"), on_watch, &ev, NULL), ZK_ENONODE);
    zk_strings kids = {0};
    CHECK_RC(zk_get_children(zk, root, on_watch, &ev, &kids, NULL), ZOK);
    zk_strings_free(&kids);
    /* Another client's writes; our sync makes sure we have heard them before we look. */
    CHECK_RC(zk_set(other, at("/d"), "b", 1, -1, NULL), ZOK);
    CHECK_RC(zk_set(other, at("/d"), "c", 1, -1, NULL), ZOK);
    CHECK_RC(zk_create(other, at("/later"), NULL, 0, ZK_PERSISTENT, 0, NULL, 0, NULL), ZOK);
    CHECK_RC(zk_sync(zk, root), ZOK);
    CHECK(rec_wait(&ev, 3, 10000) == 3, "%d events, want 3", rec_count(&ev));
    CHECK(ev.types[0] == ZK_NODE_DATA_CHANGED && !strcmp(ev.paths[0], at("/d")), "first %d %s", ev.types[0], ev.paths[0]);
    CHECK(ev.types[1] == ZK_NODE_CREATED && !strcmp(ev.paths[1], at("/later")), "second %d %s", ev.types[1], ev.paths[1]);
    CHECK(ev.types[2] == ZK_NODE_CHILDREN_CHANGED && !strcmp(ev.paths[2], root), "third %d %s", ev.types[2], ev.paths[2]);
    /* One-shot: a further change fires nothing (checked after a sync and a read). */
    CHECK_RC(zk_set(other, at("/d"), "d", 1, -1, NULL), ZOK);
    CHECK_RC(zk_sync(zk, root), ZOK);
    CHECK_RC(zk_exists(zk, at("/d"), NULL, NULL, NULL), ZOK);
    CHECK(rec_count(&ev) == 3, "one-shot watch fired again (%d events)", rec_count(&ev));
    /* Persistent recursive: fires every time, for the whole subtree, never children-changed. */
    static rec pr; /* static: a watch left set on a failure path must not outlive its recorder */
    rec_init(&pr);
    CHECK_RC(zk_add_watch(zk, root, ZK_WATCH_PERSISTENT_RECURSIVE, on_watch, &pr), ZOK);
    CHECK_RC(zk_create(other, at("/later/x"), NULL, 0, ZK_PERSISTENT, 0, NULL, 0, NULL), ZOK);
    CHECK_RC(zk_set(other, at("/later/x"), "1", 1, -1, NULL), ZOK);
    CHECK_RC(zk_delete(other, at("/later/x"), -1), ZOK);
    CHECK_RC(zk_sync(zk, root), ZOK);
    CHECK(rec_wait(&pr, 3, 10000) == 3, "%d persistent events, want 3", rec_count(&pr));
    CHECK(pr.types[0] == ZK_NODE_CREATED && pr.types[1] == ZK_NODE_DATA_CHANGED && pr.types[2] == ZK_NODE_DELETED,
          "persistent events %d %d %d", pr.types[0], pr.types[1], pr.types[2]);
    CHECK_RC(zk_remove_watches(zk, root, 5), ZOK);
    CHECK_RC(zk_remove_watches(zk, root, 5), ZK_ENOWATCHER);
    CHECK_RC(zk_set(other, at("/d"), "e", 1, -1, NULL), ZOK);
    CHECK_RC(zk_sync(zk, root), ZOK);
    CHECK_RC(zk_exists(zk, at("/d"), NULL, NULL, NULL), ZOK);
    CHECK(rec_count(&pr) == 3, "removed watch fired (%d events)", rec_count(&pr));
    zk_close(other);
    zk_close(zk);
}

/* ---- async: pipelined requests complete in order ---- */

typedef struct order { pthread_mutex_t mu; pthread_cond_t cond; int n, bad; int seen[256]; } order;

static void on_done(const zk_result *r, void *ctx) {
    order *o = ctx;
    pthread_mutex_lock(&o->mu);
    if (r->err != ZOK) o->bad++;
    o->seen[o->n++ % 256] = r->err;
    pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->mu);
}

typedef struct seqctx { order *o; int i; int *next; } seqctx;
static void on_done_seq(const zk_result *r, void *ctx) {
    seqctx *s = ctx;
    if (*s->next != s->i) s->o->bad += 1000;
    *s->next = s->i + 1;
    on_done(r, s->o);
}

static void order_init(order *o) {
    memset(o, 0, sizeof *o);
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cond, NULL);
}

/* Waits up to secs for n completions, then checks that all came, in order, with ZOK. */
static void order_wait(order *o, int n, int secs) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += secs;
    pthread_mutex_lock(&o->mu);
    while (o->n < n && pthread_cond_timedwait(&o->cond, &o->mu, &until) != ETIMEDOUT) {
    }
    int done = o->n, bad = o->bad;
    pthread_mutex_unlock(&o->mu);
    CHECK(done == n, "%d of %d completions", done, n);
    CHECK(bad == 0, "out of order or failed: %d", bad);
}

static void t_async(void) {
    zk_client *zk = open_client(NULL);
    CHECK(zk, "no session");
    make_root(zk, "async");
    order o;
    order_init(&o);
    enum { N = 200 };
    static seqctx ctx[N];
    int next = 0;
    char path[N][160];
    for (int i = 0; i < N; i++) {
        snprintf(path[i], sizeof path[i], "%s/n%03d", root, i);
        ctx[i] = (seqctx){&o, i, &next};
        CHECK_RC(zk_acreate(zk, path[i], "v", 1, ZK_PERSISTENT, 0, on_done_seq, &ctx[i]), ZOK);
    }
    order_wait(&o, N, 30);
    zk_strings kids = {0};
    CHECK_RC(zk_get_children(zk, root, NULL, NULL, &kids, NULL), ZOK);
    CHECK(kids.count == N, "%d children", kids.count);
    zk_strings_free(&kids);
    zk_close(zk);
}

/* An async bulk load three times the server's per-client queue (10,000): the client keeps at
 * most INFLIGHT_MAX in flight, so every request is answered, in order, none cut off. */
static void t_async_bulk(void) {
    zk_client *zk = open_client(NULL);
    CHECK(zk, "no session");
    make_root(zk, "bulk");
    order o;
    order_init(&o);
    enum { N = 30000 };
    seqctx *ctx = calloc(N, sizeof *ctx);
    int next = 0;
    for (int i = 0; i < N; i++) {
        ctx[i] = (seqctx){&o, i, &next};
        CHECK_RC(zk_aset(zk, root, "v", 1, -1, on_done_seq, &ctx[i]), ZOK);
    }
    order_wait(&o, N, 120);
    zk_stat st;
    CHECK_RC(zk_exists(zk, root, NULL, NULL, &st), ZOK);
    CHECK(st.version == N, "version %d after %d sets", st.version, N);
    zk_close(zk);
    free(ctx);
}

/* A sync call from a callback would wait on the thread running it: refused. */
static volatile int from_cb_rc = 1, from_cb_done;
static void call_sync_in_cb(const zk_result *r, void *ctx) {
    (void)r;
    from_cb_rc = zk_exists(ctx, "/", NULL, NULL, NULL);
    __atomic_store_n(&from_cb_done, 1, __ATOMIC_SEQ_CST);
}

static void t_sync_from_callback(void) {
    zk_client *zk = open_client(NULL);
    CHECK(zk, "no session");
    CHECK_RC(zk_aexists(zk, "/", NULL, NULL, call_sync_in_cb, zk), ZOK);
    CHECK(wait_flag(&from_cb_done, 10000), "callback never ran");
    CHECK_RC(from_cb_rc, ZK_EAPI);
    zk_close(zk);
}

/* ---- threads: many threads share one client ---- */

static zk_client *shared;
static void *worker(void *arg) {
    long id = (long)arg;
    char p[200];
    for (int i = 0; i < 25; i++) {
        snprintf(p, sizeof p, "%s/t%ld-%d", root, id, i);
        if (zk_create(shared, p, NULL, 0, ZK_PERSISTENT, 0, NULL, 0, NULL) != ZOK) return (void *)1;
        if (zk_exists(shared, p, NULL, NULL, NULL) != ZOK) return (void *)1;
    }
    return NULL;
}

static void t_threads(void) {
    shared = open_client(NULL);
    CHECK(shared, "no session");
    make_root(shared, "threads");
    pthread_t th[4];
    for (long i = 0; i < 4; i++) pthread_create(&th[i], NULL, worker, (void *)i);
    int bad = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        bad += r != NULL;
    }
    CHECK(bad == 0, "%d threads failed", bad);
    zk_strings kids = {0};
    CHECK_RC(zk_get_children(shared, root, NULL, NULL, &kids, NULL), ZOK);
    CHECK(kids.count == 100, "%d children", kids.count);
    zk_strings_free(&kids);
    zk_close(shared);
}

/* ---- sessions ---- */

static void t_session_resume(void) {
    static rec ses; /* static: a watch left set on a failure path must not outlive its recorder */
    rec_init(&ses);
    zk_client *zk = open_client(&ses);
    CHECK(zk, "no session");
    CHECK(ses.n >= 1 && ses.types[ses.n - 1] == ZK_STATE_CONNECTED, "session events %d", ses.n);
    make_root(zk, "resume");
    CHECK_RC(zk_create(zk, at("/eph"), NULL, 0, ZK_EPHEMERAL, 0, NULL, 0, NULL), ZOK);
    int64_t sid;
    uint8_t pw[16];
    zk_session(zk, &sid, pw, NULL);
    zk_detach(zk); /* the session lives on */
    int err;
    zk = zk_resume(t_connect, TIMEOUT_MS, sid, pw, NULL, NULL, &err);
    CHECK(zk, "resume: %s", zk_strerror(err));
    int64_t sid2;
    zk_session(zk, &sid2, NULL, NULL);
    CHECK(sid2 == sid, "resumed session %llx, want %llx", (long long)sid2, (long long)sid);
    zk_stat st;
    CHECK_RC(zk_exists(zk, at("/eph"), NULL, NULL, &st), ZOK);
    CHECK(st.ephemeral_owner == sid, "owner");
    zk_close(zk);
    /* A closed session cannot be resumed: the server says expired. */
    zk = zk_resume(t_connect, TIMEOUT_MS, sid, pw, NULL, NULL, &err);
    CHECK(!zk && err == ZK_ESESSIONEXPIRED, "resume of a closed session: %s", zk_strerror(err));
    uint8_t wrong[16] = {1};
    zk = open_client(NULL);
    CHECK(zk, "no session");
    zk_session(zk, &sid, NULL, NULL);
    zk_client *bad = zk_resume(t_connect, TIMEOUT_MS, sid, wrong, NULL, NULL, &err);
    CHECK(!bad && err == ZK_ESESSIONEXPIRED, "wrong password: %s", zk_strerror(err));
    CHECK_RC(zk_exists(zk, "/", NULL, NULL, NULL), ZOK);
    zk_close(zk);
}

/* Pings keep an idle session alive past its timeout (4 s here; the ensemble's minimum). */
static void t_pings(void) {
    int err;
    zk_client *zk = zk_open(t_connect, 4000, NULL, NULL, &err);
    CHECK(zk, "open: %s", zk_strerror(err));
    make_root(zk, "ping");
    CHECK_RC(zk_create(zk, at("/eph"), NULL, 0, ZK_EPHEMERAL, 0, NULL, 0, NULL), ZOK);
    int timeout;
    zk_session(zk, NULL, NULL, &timeout);
    struct timespec idle = {timeout / 1000 * 2, 0}; /* the thing under test is idleness itself */
    nanosleep(&idle, NULL);
    zk_client *other = open_client(NULL);
    CHECK(other, "no session");
    CHECK_RC(zk_exists(other, at("/eph"), NULL, NULL, NULL), ZOK);
    CHECK_RC(zk_exists(zk, at("/eph"), NULL, NULL, NULL), ZOK);
    zk_close(other);
    zk_close(zk);
}

/* kill -9 the server we are connected to, mid-run: the session, its ephemeral and its watches
 * carry on through another server. */
static void t_failover(void) {
    static rec ses, ev; /* static: a watch left set on a failure path must not outlive its recorder */
    rec_init(&ses);
    rec_init(&ev);
    zk_client *zk = open_client(&ses);
    CHECK(zk, "no session");
    make_root(zk, "failover");
    CHECK_RC(zk_create(zk, at("/eph"), NULL, 0, ZK_EPHEMERAL, 0, NULL, 0, NULL), ZOK);
    CHECK_RC(zk_create(zk, at("/w"), NULL, 0, ZK_PERSISTENT, 0, NULL, 0, NULL), ZOK);
    CHECK_RC(zk_exists(zk, at("/w"), on_watch, &ev, NULL), ZOK);
    int64_t sid, sid2;
    zk_session(zk, &sid, NULL, NULL);
    char ep[512];
    zk_endpoint(zk, ep, sizeof ep);
    CHECK(ep[0], "not connected to any endpoint");
    int before = rec_count(&ses);
    /* Pipelined work in flight while the server dies. */
    order o;
    order_init(&o);
    for (int i = 0; i < 50; i++) zk_acreate(zk, at("/p-"), NULL, 0, ZK_PERSISTENT_SEQUENTIAL, 0, on_done, &o);
    CHECK(kill_endpoint(ep) == 0, "could not kill the node at %s", ep);
    /* Every request completes: done, or ConnectionLoss. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    pthread_mutex_lock(&o.mu);
    while (o.n < 50 && pthread_cond_timedwait(&o.cond, &o.mu, &until) != ETIMEDOUT) {
    }
    int n = o.n;
    pthread_mutex_unlock(&o.mu);
    CHECK(n == 50, "%d of 50 requests completed", n);
    /* A request after the kill goes through another server, in the same session. */
    char out[256];
    int rc = ZK_ECONNECTIONLOSS;
    for (int tries = 0; tries < 20 && rc == ZK_ECONNECTIONLOSS; tries++)
        rc = zk_create(zk, at("/after"), NULL, 0, ZK_PERSISTENT, 0, out, sizeof out, NULL);
    CHECK_RC(rc, ZOK);
    zk_session(zk, &sid2, NULL, NULL);
    CHECK(sid2 == sid, "session changed");
    /* (It may be back on the same endpoint: the launcher restarts the node, and if it was the
     * leader the others refuse until a new one is elected.) */
    CHECK(rec_count(&ses) > before, "no session event for the failover");
    CHECK_RC(zk_exists(zk, at("/eph"), NULL, NULL, NULL), ZOK);
    /* The watch set before the kill was handed to the new server (setWatches2). */
    zk_client *other = open_client(NULL);
    CHECK(other, "no session");
    CHECK_RC(zk_set(other, at("/w"), "x", 1, -1, NULL), ZOK);
    zk_close(other);
    CHECK(rec_wait(&ev, 1, 15000) == 1, "the watch did not survive the failover");
    CHECK(ev.types[0] == ZK_NODE_DATA_CHANGED, "event %d", ev.types[0]);
    zk_close(zk);
}

/* A client whose process is stopped past its session timeout learns, once it runs again, that
 * the session expired: the EXPIRED event, then ZK_ESESSIONEXPIRED for every request. The
 * client runs in a forked child so that SIGSTOP pauses its I/O thread too. */
static void t_session_expiry(void) {
    zk_client *zk = open_client(NULL);
    CHECK(zk, "no session");
    make_root(zk, "expiry");
    const char *eph = at("/eph");
    int ready[2], verdict[2];
    CHECK(pipe(ready) == 0 && pipe(verdict) == 0, "pipe");
    pid_t child = fork();
    CHECK(child >= 0, "fork");
    if (child == 0) {
        rec ses;
        rec_init(&ses);
        int err, code = 1;
        zk_client *c = zk_open(t_connect, 4000, on_session, &ses, &err);
        if (c && zk_create(c, eph, NULL, 0, ZK_EPHEMERAL, 0, NULL, 0, NULL) == ZOK) {
            char ok = 1;
            if (write(ready[1], &ok, 1) == 1) {
                /* Stopped here; then, within the deadline, the EXPIRED event. */
                for (int n = rec_wait(&ses, 1, 0); n < 64; n++) {
                    if (rec_wait(&ses, n + 1, 30000) <= n) break;
                    if (ses.types[n] == ZK_STATE_EXPIRED) { code = 0; break; }
                }
                if (code == 0 && zk_exists(c, "/", NULL, NULL, NULL) != ZK_ESESSIONEXPIRED) code = 2;
            }
        }
        char v = (char)code;
        if (write(verdict[1], &v, 1) != 1) code = 3;
        _exit(code);
    }
    char ok = 0;
    CHECK(read(ready[0], &ok, 1) == 1 && ok == 1, "the child did not get a session");
    static rec deleted; /* static: a watch left set on a failure path must not outlive its recorder */
    rec_init(&deleted);
    zk_sync(zk, eph); /* the child's create was acked, perhaps by another server */
    int seen = zk_exists(zk, eph, on_watch, &deleted, NULL) == ZOK;
    kill(child, SIGSTOP);
    /* The ensemble expires the silent session and deletes its ephemeral. */
    int gone = seen && rec_wait(&deleted, 1, 30000) == 1 && deleted.types[0] == ZK_NODE_DELETED;
    kill(child, SIGCONT);
    char v = 9;
    int got = read(verdict[0], &v, 1) == 1;
    int status = 0;
    waitpid(child, &status, 0);
    close(ready[0]), close(ready[1]), close(verdict[0]), close(verdict[1]);
    zk_close(zk);
    CHECK(gone, "the stopped client's ephemeral outlived its session timeout");
    CHECK(got && v == 0, "the child saw no EXPIRED event, or requests did not fail with session expired (%d)", v);
}

/* A client that knows one server, which goes down for good: a request made while it has no
 * connection fails with ConnectionLoss after one session timeout instead of waiting forever. */
static void t_no_server(void) {
    static rec ses;
    rec_init(&ses);
    const char *last = strrchr(t_connect, ',');
    char ep[512];
    snprintf(ep, sizeof ep, "%s", last ? last + 1 : t_connect);
    int err;
    zk_client *zk = zk_open(ep, 4000, on_session, &ses, &err);
    CHECK(zk, "open on %s: %s", ep, zk_strerror(err));
    int timeout, n = rec_count(&ses);
    zk_session(zk, NULL, NULL, &timeout);
    if (node_command("down", ep) != 0) {
        zk_close(zk);
        CHECK(0, "could not take %s down", ep);
    }
    int lost = rec_wait(&ses, n + 1, 3 * timeout) > n && ses.types[n] == ZK_STATE_CONNECTING;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = lost ? zk_exists(zk, "/", NULL, NULL, NULL) : ZOK;
    clock_gettime(CLOCK_MONOTONIC, &b);
    long waited_ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    int up = node_command("up", ep) == 0;
    zk_close(zk);
    CHECK(up, "could not bring %s back", ep);
    CHECK(lost, "the client did not notice its only server go");
    CHECK_RC(rc, ZK_ECONNECTIONLOSS);
    CHECK(waited_ms >= timeout / 2 && waited_ms <= 3 * timeout, "failed after %ld ms (timeout %d)", waited_ms, timeout);
}

/* ---- recipes ---- */

static volatile int holders, max_holders, rounds_done;
static const char *lock_path;
static void *contender(void *arg) {
    (void)arg;
    zk_client *zk = open_client(NULL);
    if (!zk) return (void *)1;
    zk_lock *l = zk_lock_new(zk, lock_path, "c-test");
    for (int i = 0; i < 5; i++) {
        if (zk_lock_acquire(l, 30000) != ZOK) { zk_lock_free(l); zk_close(zk); return (void *)1; }
        int h = __atomic_add_fetch(&holders, 1, __ATOMIC_SEQ_CST);
        if (h > max_holders) max_holders = h;
        zk_exists(zk, "/", NULL, NULL, NULL); /* hold it across a round trip */
        __atomic_sub_fetch(&holders, 1, __ATOMIC_SEQ_CST);
        zk_lock_release(l);
        __atomic_add_fetch(&rounds_done, 1, __ATOMIC_SEQ_CST);
    }
    zk_lock_free(l);
    zk_close(zk);
    return NULL;
}

static void t_lock(void) {
    zk_client *zk = open_client(NULL);
    CHECK(zk, "no session");
    make_root(zk, "lock");
    lock_path = at("/lock");
    holders = max_holders = rounds_done = 0;
    pthread_t th[3];
    for (long i = 0; i < 3; i++) pthread_create(&th[i], NULL, contender, NULL);
    int bad = 0;
    for (int i = 0; i < 3; i++) {
        void *r;
        pthread_join(th[i], &r);
        bad += r != NULL;
    }
    CHECK(bad == 0, "%d contenders failed", bad);
    CHECK(rounds_done == 15 && max_holders == 1, "rounds %d, most holders at once %d", rounds_done, max_holders);
    zk_strings kids = {0};
    CHECK_RC(zk_get_children(zk, lock_path, NULL, NULL, &kids, NULL), ZOK);
    CHECK(kids.count == 0, "%d contenders left", kids.count);
    zk_strings_free(&kids);
    /* A held lock times out for a second contender. */
    zk_lock *a = zk_lock_new(zk, lock_path, "a"), *b = zk_lock_new(zk, lock_path, "b");
    CHECK_RC(zk_lock_acquire(a, 10000), ZOK);
    CHECK_RC(zk_lock_acquire(b, 300), ZK_EOPERATIONTIMEOUT);
    CHECK_RC(zk_lock_release(a), ZOK);
    CHECK_RC(zk_lock_acquire(b, 10000), ZOK);
    CHECK_RC(zk_lock_release(b), ZOK);
    zk_lock_free(a);
    zk_lock_free(b);
    zk_close(zk);
}

/* One lock across languages: a Python process (bindings/python_lock.py: kazoo's layout written
 * with zkclient) and this C client never hold it at once. Holds are logged to one file. */
static void append_line(const char *file, const char *line) {
    FILE *f = fopen(file, "a");
    if (f) { fprintf(f, "%s\n", line); fclose(f); }
}

static void t_lock_with_python(void) {
    enum { ROUNDS = 10 };
    zk_client *zk = open_client(NULL);
    CHECK(zk, "no session");
    make_root(zk, "interop");
    char lock_path[256], dir[] = "/tmp/zkpy-c-interop-XXXXXX", log[300], script[1024], rounds[8];
    snprintf(lock_path, sizeof lock_path, "%s", at("/lock"));
    CHECK(mkdtemp(dir), "mkdtemp");
    snprintf(log, sizeof log, "%s/holds.log", dir);
    snprintf(script, sizeof script, "%s/bindings/python_lock.py", t_root);
    snprintf(rounds, sizeof rounds, "%d", ROUNDS);
    pid_t child = fork();
    CHECK(child >= 0, "fork");
    if (child == 0) {
        execl(t_python, t_python, script, t_connect, lock_path, log, "python", rounds, (char *)NULL);
        _exit(127);
    }
    zk_lock *l = zk_lock_new(zk, lock_path, "c");
    int acquired = 0, contended = 0;
    for (int i = 0; i < ROUNDS; i++) {
        if (zk_lock_acquire(l, 60000) != ZOK) break;
        acquired++;
        if (i == 0) { /* hold the first time until the Python contender queues behind us */
            static rec ev; /* lives on: the last child watch may fire after this test */
            rec_init(&ev);
            for (int tries = 0; tries < 600 && !contended; tries++) {
                zk_strings kids = {0};
                int before = rec_count(&ev);
                if (zk_get_children(zk, lock_path, on_watch, &ev, &kids, NULL) != ZOK) break;
                contended = kids.count >= 2;
                zk_strings_free(&kids);
                if (!contended && rec_wait(&ev, before + 1, 60000) <= before) break;
            }
        }
        append_line(log, "enter c");
        zk_exists(zk, "/", NULL, NULL, NULL); /* hold it across a round trip */
        append_line(log, "exit c");
        zk_lock_release(l);
    }
    zk_lock_free(l);
    int status = -1;
    waitpid(child, &status, 0);
    zk_close(zk);
    CHECK(acquired == ROUNDS && contended, "acquired %d of %d, contended %d", acquired, ROUNDS, contended);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the Python contender failed (status %d)", status);
    FILE *f = fopen(log, "r");
    CHECK(f, "no log");
    char line[64], first[64] = "", who[32];
    int n = 0, py_holds = 0, c_holds = 0, ok = 1;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (n % 2 == 0) {
            ok &= sscanf(line, "enter %31s", who) == 1;
            py_holds += !strcmp(who, "python");
            c_holds += !strcmp(who, "c");
            if (n == 2) snprintf(first, sizeof first, "%s", line);
        } else {
            char want[64];
            snprintf(want, sizeof want, "exit %s", who);
            ok &= !strcmp(line, want);
        }
        n++;
    }
    fclose(f);
    unlink(log);
    rmdir(dir);
    CHECK(ok && n == 4 * ROUNDS, "holds overlap or are missing (%d lines)", n);
    CHECK(py_holds == ROUNDS && c_holds == ROUNDS, "python %d holds, c %d", py_holds, c_holds);
    CHECK(!strcmp(first, "enter python"), "the queued Python contender did not go next (%s)", first);
}

static volatile int led;
static void lead(void *ctx) { led = *(int *)ctx; }
static void t_election(void) {
    zk_client *zk = open_client(NULL);
    CHECK(zk, "no session");
    make_root(zk, "election");
    int who = 7;
    CHECK_RC(zk_election_run(zk, at("/e"), "me", lead, &who), ZOK);
    CHECK(led == 7, "leader function did not run");
    zk_close(zk);
}


const test_case live_tests[] = {
    {"live: create/get/set/delete/exists and their errors", t_crud},
    {"live: every create mode", t_create_modes},
    {"live: multi, all or nothing; sync", t_multi},
    {"live: one-shot and persistent watches", t_watches},
    {"live: async pipelined, completions in order", t_async},
    {"live: an async bulk load past the server's queue is all answered", t_async_bulk},
    {"live: a sync call from a callback is refused", t_sync_from_callback},
    {"live: four threads share a client", t_threads},
    {"live: session resume, close, wrong password", t_session_resume},
    {"live: pings keep an idle session", t_pings},
    {"live: a stopped client finds its session expired", t_session_expiry},
    {"live: without any server a request fails after the session timeout", t_no_server},
    {"live: lock, three contenders", t_lock},
    {"live: election", t_election},
    {"live: a Python process and this C client share one lock", t_lock_with_python},
    {"live: failover when the connected server is killed", t_failover},
    {NULL, NULL},
};
