/* client.c: the connection, session and request pipeline of zkpy's C binding. One I/O thread
 * per client owns the ZeroMQ DEALER socket; API calls queue requests under a mutex and wake it
 * through a pipe. See include/zkpy.h for the contract. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "internal.h"

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *zk_strerror(int err) {
    switch (err) {
    case ZOK: return "ok";
    case ZK_ESYSTEM: return "system error";
    case ZK_ERUNTIMEINCONSISTENCY: return "runtime inconsistency (another op of the multi failed)";
    case ZK_ECONNECTIONLOSS: return "connection loss (the request may or may not have taken effect)";
    case ZK_EMARSHALLING: return "marshalling error";
    case ZK_EUNIMPLEMENTED: return "unimplemented";
    case ZK_EOPERATIONTIMEOUT: return "operation timeout";
    case ZK_EBADARGUMENTS: return "bad arguments";
    case ZK_EAPI: return "api error (misuse of the client library)";
    case ZK_ENONODE: return "no node";
    case ZK_ENOAUTH: return "not authenticated";
    case ZK_EBADVERSION: return "bad version";
    case ZK_ENOCHILDRENFOREPHEMERALS: return "no children for ephemerals";
    case ZK_ENODEEXISTS: return "node exists";
    case ZK_ENOTEMPTY: return "not empty";
    case ZK_ESESSIONEXPIRED: return "session expired";
    case ZK_EINVALIDACL: return "invalid ACL";
    case ZK_EAUTHFAILED: return "authentication failed";
    case ZK_ECLOSING: return "client closing";
    case ZK_ESESSIONMOVED: return "session moved";
    case ZK_ENOWATCHER: return "no watcher";
    case ZK_ETHROTTLED: return "throttled";
    default: return "unknown error";
    }
}

/* ---- endpoints ---- */

static int parse_connect(zk_client *zk, const char *connect) {
    if (!connect || !*connect) return -1;
    char *copy = strdup(connect), *save = NULL;
    if (!copy) return -1;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        if (!*tok) continue;
        char **eps = realloc(zk->eps, sizeof(char *) * (size_t)(zk->n_eps + 1));
        if (!eps) break;
        zk->eps = eps;
        size_t n = strlen(tok) + 7;
        char *ep = malloc(n);
        if (!ep) break;
        if (strstr(tok, "://")) snprintf(ep, n, "%s", tok);
        else snprintf(ep, n, "tcp://%s", tok);
        zk->eps[zk->n_eps++] = ep;
    }
    free(copy);
    return zk->n_eps > 0 ? 0 : -1;
}

/* ---- requests ---- */

void req_free(zk_req *r) {
    if (!r) return;
    jw_free(&r->frame);
    free(r->wpath);
    free(r);
}

static void wake(zk_client *zk) {
    char c = 1;
    ssize_t n = write(zk->wake_w, &c, 1);
    (void)n; /* a full pipe already means "wake up" */
}

/* Queues r (its frame holds the body after an 8-byte header placeholder). Takes ownership. */
int submit(zk_client *zk, zk_req *r) {
    if (r->frame.oom) { req_free(r); return ZK_ESYSTEM; }
    pthread_mutex_lock(&zk->mu);
    int state = zk->state;
    if (zk->close_requested || state == ZK_STATE_EXPIRED || state == ZK_STATE_CLOSED) {
        pthread_mutex_unlock(&zk->mu);
        req_free(r);
        return state == ZK_STATE_EXPIRED ? ZK_ESESSIONEXPIRED : ZK_ECLOSING;
    }
    r->xid = zk->next_xid;
    zk->next_xid = zk->next_xid == INT32_MAX ? 1 : zk->next_xid + 1;
    jw hdr = {0};
    enc_header(&hdr, r->xid, r->op);
    if (hdr.oom) { pthread_mutex_unlock(&zk->mu); req_free(r); return ZK_ESYSTEM; }
    memcpy(r->frame.buf, hdr.buf, 8);
    jw_free(&hdr);
    r->next = NULL;
    r->queued_ms = now_ms();
    if (zk->outq_tail) zk->outq_tail->next = r;
    else zk->outq_head = r;
    zk->outq_tail = r;
    pthread_mutex_unlock(&zk->mu);
    wake(zk);
    return ZOK;
}

zk_req *req_new(int op, zk_done_fn done, void *ctx) {
    zk_req *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->op = op;
    r->done = done;
    r->ctx = ctx;
    enc_header(&r->frame, 0, op); /* placeholder; submit() writes the xid */
    return r;
}

/* ---- watches ---- */

static int watch_add_locked(zk_client *zk, int kind, const char *path, zk_watch_fn fn, void *ctx) {
    for (watch_reg *w = zk->watches; w; w = w->next)
        if (w->kind == kind && w->fn == fn && w->ctx == ctx && strcmp(w->path, path) == 0) return 0;
    watch_reg *w = calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(path))) { free(w); return -1; }
    w->kind = kind;
    w->fn = fn;
    w->ctx = ctx;
    w->next = zk->watches;
    zk->watches = w;
    return 0;
}

static int is_ancestor_or_self(const char *anc, const char *path) {
    size_t n = strlen(anc);
    if (strcmp(anc, "/") == 0) return 1;
    return strncmp(anc, path, n) == 0 && (path[n] == 0 || path[n] == '/');
}

static int watch_matches(const watch_reg *w, int type, const char *path) {
    if (w->kind == W_RECURSIVE) return type != ZK_NODE_CHILDREN_CHANGED && is_ancestor_or_self(w->path, path);
    if (strcmp(w->path, path) != 0) return 0;
    switch (w->kind) {
    case W_DATA:
    case W_EXIST: return type != ZK_NODE_CHILDREN_CHANGED;
    case W_CHILD: return type == ZK_NODE_CHILDREN_CHANGED || type == ZK_NODE_DELETED;
    case W_PERSISTENT: return 1;
    default: return 0;
    }
}

/* Fires the watchers an event reaches; one-shot ones are removed first. Runs on the I/O thread. */
static void dispatch_event(zk_client *zk, int type, const char *path) {
    watch_reg *fire = NULL, **tail = &fire;
    pthread_mutex_lock(&zk->mu);
    for (watch_reg **pp = &zk->watches; *pp;) {
        watch_reg *w = *pp;
        if (!watch_matches(w, type, path)) { pp = &w->next; continue; }
        if (w->kind == W_PERSISTENT || w->kind == W_RECURSIVE) {
            watch_reg *c = calloc(1, sizeof *c);
            if (c) { *c = *w; c->path = NULL; c->next = NULL; *tail = c; tail = &c->next; }
            pp = &w->next;
        } else {
            *pp = w->next;
            w->next = NULL;
            *tail = w;
            tail = &w->next;
        }
    }
    pthread_mutex_unlock(&zk->mu);
    /* One callback per (fn, ctx), as ZooKeeper's clients do for one event. */
    for (watch_reg *w = fire; w; w = w->next) {
        int dup = 0;
        for (watch_reg *v = fire; v != w; v = v->next) dup |= v->fn == w->fn && v->ctx == w->ctx;
        if (!dup) w->fn(zk, type, path, w->ctx);
    }
    while (fire) {
        watch_reg *n = fire->next;
        free(fire->path);
        free(fire);
        fire = n;
    }
}

static void watch_remove(zk_client *zk, const char *path, int type) {
    pthread_mutex_lock(&zk->mu);
    for (watch_reg **pp = &zk->watches; *pp;) {
        watch_reg *w = *pp;
        int kind_ok = type == 3 || (type == 1 && w->kind == W_CHILD) ||
                      (type == 2 && (w->kind == W_DATA || w->kind == W_EXIST)) ||
                      (type == 4 && w->kind == W_PERSISTENT) || (type == 5 && w->kind == W_RECURSIVE);
        if (kind_ok && strcmp(w->path, path) == 0) {
            *pp = w->next;
            free(w->path);
            free(w);
        } else {
            pp = &w->next;
        }
    }
    pthread_mutex_unlock(&zk->mu);
}

/* setWatches2 with every watch still held (paths once per kind), or NULL when there are none. */
static jw *encode_set_watches(zk_client *zk) {
    static const int order[5] = {W_DATA, W_EXIST, W_CHILD, W_PERSISTENT, W_RECURSIVE};
    const char **lists[5] = {0};
    int counts[5] = {0}, total = 0, oom = 0;
    jw *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    pthread_mutex_lock(&zk->mu);
    for (int k = 0; k < 5; k++) {
        for (watch_reg *r = zk->watches; r; r = r->next) {
            if (r->kind != order[k]) continue;
            int seen = 0;
            for (int i = 0; i < counts[k] && !seen; i++) seen = strcmp(lists[k][i], r->path) == 0;
            if (seen) continue;
            const char **p = realloc(lists[k], sizeof(char *) * (size_t)(counts[k] + 1));
            if (!p) { oom = 1; break; }
            lists[k] = p;
            lists[k][counts[k]++] = r->path;
            total++;
        }
    }
    if (total && !oom) enc_set_watches2(w, zk->last_zxid, counts, lists);
    pthread_mutex_unlock(&zk->mu);
    for (int k = 0; k < 5; k++) free(lists[k]);
    if (total == 0 || oom || w->oom) { jw_free(w); free(w); return NULL; }
    return w;
}

/* ---- session state ---- */

/* The callback hears of a change before zk_open() or any waiter does. */
static void set_state(zk_client *zk, int state) {
    pthread_mutex_lock(&zk->mu);
    int changed = zk->state != state;
    zk->state = state;
    if (state != ZK_STATE_CONNECTED) zk->endpoint[0] = 0;
    pthread_mutex_unlock(&zk->mu);
    if (changed && zk->session_fn) zk->session_fn(zk, state, zk->session_ctx);
    pthread_mutex_lock(&zk->mu);
    pthread_cond_broadcast(&zk->cond);
    pthread_mutex_unlock(&zk->mu);
}

static void complete(zk_client *zk, zk_req *r, int err, jr *body);

static void fail_list(zk_client *zk, zk_req *head, int err) {
    while (head) {
        zk_req *n = head->next;
        complete(zk, head, err, NULL);
        head = n;
    }
}

static void fail_sent(zk_client *zk, int err) {
    zk_req *head = zk->sent_head;
    zk->sent_head = zk->sent_tail = NULL;
    zk->n_sent = 0;
    fail_list(zk, head, err);
}

static void fail_queued(zk_client *zk, int err) {
    pthread_mutex_lock(&zk->mu);
    zk_req *head = zk->outq_head;
    zk->outq_head = zk->outq_tail = NULL;
    pthread_mutex_unlock(&zk->mu);
    fail_list(zk, head, err);
}

/* ---- completions: decode a reply body into a zk_result for the callback ---- */

void decode_multi(jr *b, zk_result *res, zk_op_result *out, int n) {
    int i = 0;
    for (;;) {
        int32_t type = jr_int(b);
        int done = jr_bool(b);
        jr_int(b); /* the header's err; an error's code follows as the body */
        if (b->bad || done) break;
        if (i >= n) { b->bad = 1; break; }
        zk_op_result *o = &out[i++];
        if (type == -1) {
            o->err = jr_int(b);
            if (o->err != 0 && res->err == 0 && o->err != ZK_ERUNTIMEINCONSISTENCY) res->err = o->err;
            continue;
        }
        o->err = 0;
        if (type == OP_CREATE) o->path = jr_string_dup(b);
        else if (type == OP_CREATE2 || type == OP_CREATECONTAINER || type == OP_CREATETTL) {
            o->path = jr_string_dup(b);
            jr_stat(b, &o->stat);
        } else if (type == OP_SETDATA) jr_stat(b, &o->stat);
    }
    if (!b->bad && res->err == 0) /* every op failed with -2 only: keep it visible */
        for (int k = 0; k < i; k++)
            if (out[k].err) { res->err = out[k].err; break; }
    res->n_results = i;
}

static void complete(zk_client *zk, zk_req *r, int err, jr *b) {
    zk_result res = {0};
    zk_stat stat;
    zk_strings kids = {0};
    char *path = NULL;
    zk_op_result *ops = NULL;
    res.err = err;
    res.op = r->op;
    if (err == 0 && b) {
        switch (r->op) {
        case OP_CREATE2: case OP_CREATECONTAINER: case OP_CREATETTL:
            res.path = path = jr_string_dup(b);
            jr_stat(b, &stat);
            res.stat = &stat;
            break;
        case OP_EXISTS: case OP_SETDATA:
            jr_stat(b, &stat);
            res.stat = &stat;
            break;
        case OP_GETDATA:
            res.data = (const char *)jr_buffer(b, &res.data_len);
            jr_stat(b, &stat);
            res.stat = &stat;
            break;
        case OP_GETCHILDREN2:
            jr_strings(b, &kids);
            jr_stat(b, &stat);
            res.children = &kids;
            res.stat = &stat;
            break;
        case OP_SYNC:
            res.path = path = jr_string_dup(b);
            break;
        case OP_MULTI:
            ops = calloc((size_t)r->n_ops + 1, sizeof *ops);
            if (!ops) { res.err = ZK_ESYSTEM; break; }
            decode_multi(b, &res, ops, r->n_ops);
            res.results = ops;
            break;
        default: break;
        }
        if (b->bad) {
            res = (zk_result){.err = ZK_EMARSHALLING, .op = r->op};
        }
    }
    /* Register the watch the read asked for before anyone hears of the result. */
    if (r->wfn && (res.err == 0 || (r->op == OP_EXISTS && res.err == ZK_ENONODE))) {
        int kind = r->wkind;
        if (r->op == OP_EXISTS && res.err == ZK_ENONODE) kind = W_EXIST;
        pthread_mutex_lock(&zk->mu);
        watch_add_locked(zk, kind, r->wpath, r->wfn, r->wctx);
        pthread_mutex_unlock(&zk->mu);
    }
    if (r->op == OP_REMOVEWATCHES && res.err == 0) watch_remove(zk, r->wpath, r->remove_type);
    if (r->done) r->done(&res, r->ctx);
    free(path);
    zk_strings_free(&kids);
    if (ops) zk_op_results_free(r->n_ops, ops), free(ops);
    req_free(r);
}

void zk_op_results_free(int n, zk_op_result *results) {
    for (int i = 0; i < n; i++) {
        free(results[i].path);
        results[i].path = NULL;
    }
}

/* ---- the I/O thread ---- */

static void close_socket(zk_client *zk) {
    if (zk->sock) zmq_close(zk->sock);
    zk->sock = NULL;
}

/* A frame that cannot be queued (it never should: the send queue is unbounded) would leave its
 * request unanswered, so it counts as a lost connection. */
static int send_frame(zk_client *zk, const void *p, size_t n) {
    int rc = zmq_send(zk->sock, p, n, ZMQ_DONTWAIT);
    zk->last_send_ms = now_ms();
    if (rc < 0) zk->send_failed = 1;
    return rc < 0 ? -1 : 0;
}

static void drain_wake(zk_client *zk) {
    char buf[64];
    while (read(zk->wake_r, buf, sizeof buf) > 0) {
    }
}

/* Waits up to ms for the socket (if any) or the wake pipe. Returns 1 if the socket is readable. */
static int wait_io(zk_client *zk, int ms) {
    zmq_pollitem_t items[2] = {{zk->sock, 0, ZMQ_POLLIN, 0}, {NULL, zk->wake_r, ZMQ_POLLIN, 0}};
    int first = zk->sock ? 0 : 1;
    if (ms < 0) ms = 0;
    int rc = zmq_poll(items + first, 2 - first, ms);
    if (rc <= 0) return 0;
    if (items[1].revents & ZMQ_POLLIN) drain_wake(zk);
    return first == 0 && (items[0].revents & ZMQ_POLLIN);
}

static int close_requested(zk_client *zk) {
    pthread_mutex_lock(&zk->mu);
    int c = zk->close_requested;
    pthread_mutex_unlock(&zk->mu);
    return c;
}

/* One attempt at one server. 1 connected, 0 try the next server, -1 session expired. */
static int connect_once(zk_client *zk, const char *ep) {
    zk->sock = zmq_socket(zk->zctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(zk->sock, ZMQ_LINGER, &zero, sizeof zero);
    /* No high-water marks: the server bounds what a client may have outstanding (10,000). */
    zmq_setsockopt(zk->sock, ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_setsockopt(zk->sock, ZMQ_RCVHWM, &zero, sizeof zero);
    zk->send_failed = 0;
    if (zmq_connect(zk->sock, ep) != 0) { close_socket(zk); return 0; }
    jw w = {0};
    enc_connect(&w, zk->last_zxid, zk->timeout_ms, zk->session_id, zk->passwd);
    int sent = !w.oom && send_frame(zk, w.buf, w.len) == 0;
    jw_free(&w);
    if (!sent) { close_socket(zk); return 0; }
    int wait = zk->session_id ? zk->negotiated_ms * 2 / 3 : zk->timeout_ms * 2 / 3;
    int64_t deadline = now_ms() + (wait > 500 ? wait : 500);
    while (now_ms() < deadline && !close_requested(zk)) {
        if (!wait_io(zk, (int)(deadline - now_ms()))) continue;
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, zk->sock, ZMQ_DONTWAIT) < 0) { zmq_msg_close(&m); continue; }
        zk_connect_response cr;
        size_t n = zmq_msg_size(&m);
        int ok = n > 0 && dec_connect_response(zmq_msg_data(&m), n, &cr) == 0;
        zmq_msg_close(&m);
        if (n == 0 || !ok) break; /* refused, or garbage: next server */
        if (cr.timeout_ms <= 0 || cr.session_id == 0) { close_socket(zk); return -1; }
        pthread_mutex_lock(&zk->mu);
        zk->session_id = cr.session_id;
        memcpy(zk->passwd, cr.passwd, 16);
        zk->negotiated_ms = cr.timeout_ms;
        snprintf(zk->endpoint, sizeof zk->endpoint, "%s", ep);
        pthread_mutex_unlock(&zk->mu);
        zk->last_recv_ms = now_ms();
        return 1;
    }
    close_socket(zk);
    return 0;
}

/* A request waits at most one session timeout for a connection, then fails with ConnectionLoss
 * (it was never sent). The queue is in submit order, so the stale ones are at its head. */
static void fail_stale(zk_client *zk) {
    int64_t cutoff = now_ms() - zk->negotiated_ms;
    zk_req *stale = NULL, **tail = &stale;
    pthread_mutex_lock(&zk->mu);
    while (zk->outq_head && zk->outq_head->queued_ms < cutoff) {
        zk_req *r = zk->outq_head;
        zk->outq_head = r->next;
        r->next = NULL;
        *tail = r;
        tail = &r->next;
    }
    if (!zk->outq_head) zk->outq_tail = NULL;
    pthread_mutex_unlock(&zk->mu);
    fail_list(zk, stale, ZK_ECONNECTIONLOSS);
}

/* Tries servers in turn until one takes the session. 1 connected, 0 closing, -1 expired. */
static int reconnect(zk_client *zk) {
    int backoff = 50;
    for (;;) {
        for (int i = 0; i < zk->n_eps; i++) {
            if (close_requested(zk)) return 0;
            const char *ep = zk->eps[zk->ep_idx];
            zk->ep_idx = (zk->ep_idx + 1) % zk->n_eps;
            int rc = connect_once(zk, ep);
            if (rc != 0) return rc;
            fail_stale(zk);
        }
        int64_t until = now_ms() + backoff;
        while (now_ms() < until && !close_requested(zk)) wait_io(zk, (int)(until - now_ms()));
        backoff = backoff * 2 > 1000 ? 1000 : backoff * 2;
    }
}

/* Sends what was made, in order, while fewer than INFLIGHT_MAX await replies. */
static void flush_queue(zk_client *zk) {
    if (zk->n_sent >= INFLIGHT_MAX) return;
    pthread_mutex_lock(&zk->mu);
    zk_req *head = zk->outq_head, *last = head;
    int n = 0;
    if (head) {
        for (n = 1; n < INFLIGHT_MAX - zk->n_sent && last->next; n++) last = last->next;
        zk->outq_head = last->next;
        if (!zk->outq_head) zk->outq_tail = NULL;
        last->next = NULL;
    }
    pthread_mutex_unlock(&zk->mu);
    zk->n_sent += n;
    while (head) {
        zk_req *r = head;
        head = head->next;
        r->next = NULL;
        if (zk->sent_tail) zk->sent_tail->next = r;
        else zk->sent_head = r;
        zk->sent_tail = r;
        send_frame(zk, r->frame.buf, r->frame.len);
        jw_free(&r->frame);
    }
}

/* Handles one frame from the server. 0 fine, -1 the connection is dropped. */
static int handle_frame(zk_client *zk, const uint8_t *p, size_t n) {
    if (n == 0) return -1;
    jr b = {p, n, 0, 0};
    int32_t xid = jr_int(&b);
    int64_t zxid = jr_long(&b);
    int32_t err = jr_int(&b);
    if (b.bad) return -1;
    if (zxid > zk->last_zxid) zk->last_zxid = zxid;
    if (xid == XID_WATCH) {
        int type = jr_int(&b);
        jr_int(&b); /* state */
        char *path = jr_string_dup(&b);
        if (b.bad) { free(path); return -1; }
        dispatch_event(zk, type, path);
        free(path);
        return 0;
    }
    if (xid == XID_PING || xid == XID_SETWATCHES || xid == XID_AUTH) return 0;
    zk_req *r = zk->sent_head;
    if (!r || r->xid != xid) return -1; /* replies come in order; anything else is a broken peer */
    zk->sent_head = r->next;
    if (!zk->sent_head) zk->sent_tail = NULL;
    zk->n_sent--;
    r->next = NULL;
    complete(zk, r, err, &b);
    return 0;
}

/* Connected: send, receive, ping, notice silence. Returns when the connection is lost
 * (0), the session expired (-1... not here) or a close was requested (1). */
static int serve(zk_client *zk) {
    for (;;) {
        if (close_requested(zk)) return 1;
        flush_queue(zk);
        if (zk->send_failed) return 0;
        int64_t t = now_ms();
        int third = zk->negotiated_ms / 3;
        int64_t ping_at = zk->last_send_ms + third, dead_at = zk->last_recv_ms + 2 * third;
        if (t >= dead_at) return 0;
        if (t >= ping_at) {
            jw w = {0};
            enc_header(&w, XID_PING, OP_PING);
            send_frame(zk, w.buf, w.len);
            jw_free(&w);
            continue;
        }
        int64_t next = ping_at < dead_at ? ping_at : dead_at;
        if (!wait_io(zk, (int)(next - t))) continue;
        for (;;) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, zk->sock, ZMQ_DONTWAIT) < 0) { zmq_msg_close(&m); break; }
            zk->last_recv_ms = now_ms();
            int rc = handle_frame(zk, zmq_msg_data(&m), zmq_msg_size(&m));
            zmq_msg_close(&m);
            if (rc < 0) return 0;
        }
    }
}

/* closeSession: sent, then answered or given up on after a short while. */
static void close_session(zk_client *zk) {
    jw w = {0};
    enc_header(&w, zk->next_xid, OP_CLOSE);
    send_frame(zk, w.buf, w.len);
    jw_free(&w);
    int64_t deadline = now_ms() + 3000;
    while (now_ms() < deadline) {
        if (!wait_io(zk, (int)(deadline - now_ms()))) continue;
        zmq_msg_t m;
        zmq_msg_init(&m);
        int got = zmq_msg_recv(&m, zk->sock, ZMQ_DONTWAIT) >= 0;
        int done = 0;
        if (got) {
            size_t n = zmq_msg_size(&m);
            jr b = {zmq_msg_data(&m), n, 0, 0};
            int32_t xid = jr_int(&b);
            done = n == 0 || b.bad || xid == zk->next_xid;
            if (!done && xid == XID_WATCH) done = 0;
        }
        zmq_msg_close(&m);
        if (done) break;
    }
}

static void *io_main(void *arg) {
    zk_client *zk = arg;
    for (;;) {
        set_state(zk, ZK_STATE_CONNECTING);
        int rc = reconnect(zk);
        if (rc < 0) { /* expired */
            fail_sent(zk, ZK_ESESSIONEXPIRED);
            fail_queued(zk, ZK_ESESSIONEXPIRED);
            set_state(zk, ZK_STATE_EXPIRED);
            break;
        }
        if (rc == 0) break; /* closing before a connection */
        jw *sw = encode_set_watches(zk);
        if (sw) { send_frame(zk, sw->buf, sw->len); jw_free(sw); free(sw); }
        set_state(zk, ZK_STATE_CONNECTED);
        if (serve(zk) == 1) {
            flush_queue(zk);
            if (zk->close_requested == 1) close_session(zk);
            break;
        }
        close_socket(zk);
        fail_sent(zk, ZK_ECONNECTIONLOSS);
    }
    close_socket(zk);
    fail_sent(zk, ZK_ECLOSING);
    fail_queued(zk, zk->state == ZK_STATE_EXPIRED ? ZK_ESESSIONEXPIRED : ZK_ECLOSING);
    pthread_mutex_lock(&zk->mu);
    int expired = zk->state == ZK_STATE_EXPIRED;
    pthread_mutex_unlock(&zk->mu);
    if (!expired) set_state(zk, ZK_STATE_CLOSED);
    /* An expired client stays EXPIRED until zk_close(); requests fail at submit(). */
    return NULL;
}

/* ---- open and close ---- */

static void client_free(zk_client *zk) {
    for (int i = 0; i < zk->n_eps; i++) free(zk->eps[i]);
    free(zk->eps);
    while (zk->watches) {
        watch_reg *n = zk->watches->next;
        free(zk->watches->path);
        free(zk->watches);
        zk->watches = n;
    }
    if (zk->zctx) zmq_ctx_term(zk->zctx);
    if (zk->wake_r >= 0) close(zk->wake_r);
    if (zk->wake_w >= 0) close(zk->wake_w);
    pthread_mutex_destroy(&zk->mu);
    pthread_cond_destroy(&zk->cond);
    free(zk);
}

static void stop_thread(zk_client *zk, int how) {
    pthread_mutex_lock(&zk->mu);
    if (!zk->close_requested) zk->close_requested = how;
    pthread_mutex_unlock(&zk->mu);
    wake(zk);
    pthread_join(zk->thread, NULL);
}

zk_client *zk_resume(const char *connect, int timeout_ms, int64_t session_id, const uint8_t passwd[16],
                     zk_session_fn session_fn, void *ctx, int *err) {
    int dummy;
    if (!err) err = &dummy;
    *err = ZK_EBADARGUMENTS;
    if (timeout_ms <= 0) return NULL;
    zk_client *zk = calloc(1, sizeof *zk);
    if (!zk) { *err = ZK_ESYSTEM; return NULL; }
    zk->wake_r = zk->wake_w = -1;
    pthread_mutex_init(&zk->mu, NULL);
    pthread_cond_init(&zk->cond, NULL);
    if (parse_connect(zk, connect) != 0) { client_free(zk); return NULL; }
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0 || !(zk->zctx = zmq_ctx_new())) {
        *err = ZK_ESYSTEM;
        client_free(zk);
        return NULL;
    }
    zk->wake_r = fds[0];
    zk->wake_w = fds[1];
    zk->timeout_ms = zk->negotiated_ms = timeout_ms;
    zk->session_id = session_id;
    if (passwd) memcpy(zk->passwd, passwd, 16);
    zk->next_xid = 1;
    zk->state = 0x7f; /* not yet any state */
    zk->session_fn = session_fn;
    zk->session_ctx = ctx;
    zk->ep_idx = (int)((uint64_t)now_ms() % (uint64_t)zk->n_eps);
    if (pthread_create(&zk->thread, NULL, io_main, zk) != 0) {
        *err = ZK_ESYSTEM;
        client_free(zk);
        return NULL;
    }
    /* Wait for a session: up to twice the timeout (enough to try a dead server and then another). */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    int64_t wait = (int64_t)timeout_ms * 2 + 1000;
    until.tv_sec += wait / 1000;
    until.tv_nsec += (wait % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) { until.tv_sec++; until.tv_nsec -= 1000000000; }
    pthread_mutex_lock(&zk->mu);
    while (zk->state != ZK_STATE_CONNECTED && zk->state != ZK_STATE_EXPIRED && zk->state != ZK_STATE_CLOSED)
        if (pthread_cond_timedwait(&zk->cond, &zk->mu, &until) == ETIMEDOUT) break;
    int state = zk->state;
    pthread_mutex_unlock(&zk->mu);
    if (state != ZK_STATE_CONNECTED) {
        *err = state == ZK_STATE_EXPIRED ? ZK_ESESSIONEXPIRED : ZK_ECONNECTIONLOSS;
        stop_thread(zk, 2);
        client_free(zk);
        return NULL;
    }
    *err = ZOK;
    return zk;
}

zk_client *zk_open(const char *connect, int timeout_ms, zk_session_fn session_fn, void *ctx, int *err) {
    return zk_resume(connect, timeout_ms, 0, NULL, session_fn, ctx, err);
}

void zk_close(zk_client *zk) {
    if (!zk || on_io_thread(zk)) return; /* from a callback it would wait for itself */
    stop_thread(zk, 1);
    client_free(zk);
}

void zk_detach(zk_client *zk) {
    if (!zk || on_io_thread(zk)) return;
    stop_thread(zk, 2);
    client_free(zk);
}

void zk_session(zk_client *zk, int64_t *session_id, uint8_t passwd[16], int *timeout_ms) {
    pthread_mutex_lock(&zk->mu);
    if (session_id) *session_id = zk->session_id;
    if (passwd) memcpy(passwd, zk->passwd, 16);
    if (timeout_ms) *timeout_ms = zk->negotiated_ms;
    pthread_mutex_unlock(&zk->mu);
}

int zk_state(zk_client *zk) {
    pthread_mutex_lock(&zk->mu);
    int s = zk->state;
    pthread_mutex_unlock(&zk->mu);
    return s;
}

void zk_endpoint(zk_client *zk, char *buf, size_t len) {
    pthread_mutex_lock(&zk->mu);
    snprintf(buf, len, "%s", zk->endpoint);
    pthread_mutex_unlock(&zk->mu);
}

int on_io_thread(zk_client *zk) { return pthread_equal(pthread_self(), zk->thread); }
