/* test_conformance.c: tests/conformance/scenarios.json (see its README) run by the C binding
 * against the live ensemble, one test case per scenario. Every op goes through the async API
 * and is waited for, so a pipeline is the same code without the waits in between. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "tests.h"

#define MAX_CLIENTS 8
#define MAX_WATCHES 16
#define MAX_EVENTS 64
#define MAX_PIPE 32
#define SESSION_MS 6000

typedef struct watch_rec {
    char name[64];
    int client;
    int n, consumed;
    int types[MAX_EVENTS];
    char paths[MAX_EVENTS][256];
} watch_rec;

typedef struct res { /* one op's outcome, copied out of the completion */
    int done, err, order;
    char path[512];
    char *data;
    int data_len;
    zk_stat stat;
    int has_stat;
    zk_strings kids;
    int has_kids;
    int n_ops;
    int op_err[16];
    char op_path[16][256];
    zk_stat op_stat[16];
} res;

typedef struct run {
    const jv *doc, *sc;
    char root[128];
    zk_client *clients[MAX_CLIENTS];
    char names[MAX_CLIENTS][32];
    int64_t sessions[MAX_CLIENTS];
    uint8_t passwd[MAX_CLIENTS][16];
    int n_clients;
    watch_rec watches[MAX_WATCHES];
    int n_watches;
    int completions;
    pthread_mutex_t mu; /* guards watches, res and completions */
    pthread_cond_t cond;
} run;

static run R;
static jv *doc;
static int scenario_index;

static int err_code(const char *name) { return (int)jnum(jget(doc, "errors"), name, 12345); }

static int mode_of(const char *m) {
    static const char *names[] = {"persistent", "ephemeral", "persistent_sequential", "ephemeral_sequential",
                                  "container", "persistent_ttl", "persistent_sequential_ttl"};
    for (int i = 0; i < 7; i++)
        if (!strcmp(m, names[i])) return i;
    return -1;
}

static const char *rel(const char *path) {
    size_t n = strlen(R.root);
    return strncmp(path, R.root, n) == 0 ? path + n : path;
}

static void full(char *out, size_t len, const char *path) { snprintf(out, len, "%s%s", R.root, path); }

static int client_index(const char *name) {
    for (int i = 0; i < R.n_clients; i++)
        if (!strcmp(R.names[i], name)) return i;
    snprintf(R.names[R.n_clients], sizeof R.names[0], "%s", name);
    return R.n_clients++;
}

static int open_client(int i, int64_t sid, const uint8_t *pw) {
    int err;
    R.clients[i] = zk_resume(t_connect, SESSION_MS, sid, pw, NULL, NULL, &err);
    if (R.clients[i]) zk_session(R.clients[i], &R.sessions[i], R.passwd[i], NULL);
    return err;
}

/* ---- watchers ---- */

static void on_event(zk_client *zk, int type, const char *path, void *ctx) {
    (void)zk;
    watch_rec *w = ctx;
    pthread_mutex_lock(&R.mu);
    if (w->n < MAX_EVENTS) {
        w->types[w->n] = type;
        snprintf(w->paths[w->n], sizeof w->paths[0], "%s", rel(path));
        w->n++;
    }
    pthread_cond_broadcast(&R.cond);
    pthread_mutex_unlock(&R.mu);
}

static watch_rec *watcher(const char *name, int client) {
    for (int i = 0; i < R.n_watches; i++)
        if (!strcmp(R.watches[i].name, name)) return &R.watches[i];
    watch_rec *w = &R.watches[R.n_watches++];
    memset(w, 0, sizeof *w);
    snprintf(w->name, sizeof w->name, "%s", name);
    w->client = client;
    return w;
}

/* ---- completions ---- */

static void on_done(const zk_result *r, void *ctx) {
    res *out = ctx;
    pthread_mutex_lock(&R.mu);
    out->err = r->err;
    if (r->path) snprintf(out->path, sizeof out->path, "%s", rel(r->path));
    if (r->stat) { out->stat = *r->stat; out->has_stat = 1; }
    if (r->data) {
        out->data = malloc((size_t)r->data_len + 1);
        memcpy(out->data, r->data, (size_t)r->data_len);
        out->data_len = r->data_len;
    }
    if (r->children) {
        out->has_kids = 1;
        out->kids.items = calloc((size_t)r->children->count + 1, sizeof(char *));
        for (int i = 0; i < r->children->count; i++) out->kids.items[out->kids.count++] = strdup(r->children->items[i]);
    }
    if (r->results) {
        out->n_ops = r->n_results < 16 ? r->n_results : 16;
        for (int i = 0; i < out->n_ops; i++) {
            out->op_err[i] = r->results[i].err;
            out->op_stat[i] = r->results[i].stat;
            snprintf(out->op_path[i], sizeof out->op_path[0], "%s", r->results[i].path ? rel(r->results[i].path) : "");
        }
    }
    out->order = R.completions++;
    out->done = 1;
    pthread_cond_broadcast(&R.cond);
    pthread_mutex_unlock(&R.mu);
}

static void res_clear(res *r) {
    free(r->data);
    zk_strings_free(&r->kids);
    memset(r, 0, sizeof *r);
}

/* Waits until every res in rs[0..n) is done; 0 on a timeout. */
static int wait_done(res *rs, int n, int ms) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    pthread_mutex_lock(&R.mu);
    int all = 0;
    for (;;) {
        all = 1;
        for (int i = 0; i < n; i++) all &= rs[i].done;
        if (all || pthread_cond_timedwait(&R.cond, &R.mu, &until) == ETIMEDOUT) break;
    }
    pthread_mutex_unlock(&R.mu);
    return all;
}

/* Starts one op (not multi/pipeline/session ops) on client c. Returns the submit rc. */
static int issue(int c, const jv *step, res *out) {
    const char *op = jstr(step, "op", "");
    char path[512];
    full(path, sizeof path, jstr(step, "path", ""));
    const char *data = jstr(step, "data", "");
    int version = (int)jnum(step, "version", -1);
    zk_client *zk = R.clients[c];
    const char *wname = jstr(step, "watch", NULL);
    watch_rec *w = wname ? watcher(wname, c) : NULL;
    zk_watch_fn fn = w ? on_event : NULL;
    if (!strcmp(op, "create"))
        return zk_acreate(zk, path, data, (int)strlen(data), mode_of(jstr(step, "mode", "persistent")),
                          jnum(step, "ttl", 0), on_done, out);
    if (!strcmp(op, "get")) return zk_aget(zk, path, fn, w, on_done, out);
    if (!strcmp(op, "set")) return zk_aset(zk, path, data, (int)strlen(data), version, on_done, out);
    if (!strcmp(op, "delete")) return zk_adelete(zk, path, version, on_done, out);
    if (!strcmp(op, "exists")) return zk_aexists(zk, path, fn, w, on_done, out);
    if (!strcmp(op, "get_children")) return zk_aget_children(zk, path, fn, w, on_done, out);
    if (!strcmp(op, "sync")) return zk_async(zk, path, on_done, out);
    if (!strcmp(op, "multi")) {
        const jv *ops = jget(step, "ops");
        zk_op zo[16];
        char paths[16][512];
        int n = ops->n < 16 ? ops->n : 16;
        for (int i = 0; i < n; i++) {
            const jv *o = ops->items[i];
            const char *t = jstr(o, "op", "");
            full(paths[i], sizeof paths[i], jstr(o, "path", ""));
            zo[i] = (zk_op){
                .type = !strcmp(t, "create") ? ZK_OP_CREATE : !strcmp(t, "set") ? ZK_OP_SET : !strcmp(t, "check") ? ZK_OP_CHECK : ZK_OP_DELETE,
                .path = paths[i], .data = jstr(o, "data", ""), .len = (int)strlen(jstr(o, "data", "")),
                .mode = ZK_PERSISTENT, .version = (int)jnum(o, "version", -1)};
        }
        return zk_amulti(zk, n, zo, on_done, out);
    }
    return ZK_EAPI;
}

/* ---- checks: the step's expect/error against a result; fills t_msg on a mismatch ---- */

static void check_stat(const zk_stat *st, int has, const jv *want, const char *where) {
    if (!want || want->type == J_NULL) {
        CHECK(!has, "%s: expected no node", where);
        return;
    }
    CHECK(has, "%s: expected a stat", where);
    for (int i = 0; i < want->n; i++) {
        const char *k = want->keys[i];
        const jv *v = want->items[i];
        int64_t w = v->type == J_STR ? R.sessions[client_index(v->str + strlen("session:"))] : v->num;
        int64_t got = !strcmp(k, "version") ? st->version : !strcmp(k, "cversion") ? st->cversion
                    : !strcmp(k, "aversion") ? st->aversion : !strcmp(k, "dataLength") ? st->data_length
                    : !strcmp(k, "numChildren") ? st->num_children : !strcmp(k, "ephemeralOwner") ? st->ephemeral_owner
                    : INT64_MIN;
        CHECK(got == w, "%s: stat.%s is %lld, want %lld", where, k, (long long)got, (long long)w);
    }
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void check_result(const jv *step, res *r, const char *where) {
    const char *op = jstr(step, "op", "");
    const char *want_err = jstr(step, "error", NULL);
    int err = r->err;
    if (!strcmp(op, "exists") && err == ZK_ENONODE) err = 0, r->has_stat = 0;
    if (!strcmp(op, "multi") && want_err) {
        CHECK(err == err_code(want_err), "%s: multi failed with %d, want %s", where, err, want_err);
        const jv *codes = jget(step, "op_errors");
        CHECK(r->n_ops == codes->n, "%s: %d op results, want %d", where, r->n_ops, codes->n);
        for (int i = 0; i < codes->n; i++)
            CHECK(r->op_err[i] == err_code(codes->items[i]->str), "%s: op %d err %d, want %s", where, i, r->op_err[i],
                  codes->items[i]->str);
        return;
    }
    if (want_err) {
        CHECK(err == err_code(want_err), "%s: got %d (%s), want %s", where, err, zk_strerror(err), want_err);
        return;
    }
    CHECK(err == 0, "%s: failed with %d (%s)", where, err, zk_strerror(err));
    const jv *want = jget(step, "expect");
    if (!want) return;
    if (jget(want, "path")) CHECK(!strcmp(r->path, jstr(want, "path", "")), "%s: path %s", where, r->path);
    if (jget(want, "path_pattern")) {
        regex_t re;
        regcomp(&re, jstr(want, "path_pattern", ""), REG_EXTENDED | REG_NOSUB);
        int m = regexec(&re, r->path, 0, NULL, 0);
        regfree(&re);
        CHECK(m == 0, "%s: path %s does not match %s", where, r->path, jstr(want, "path_pattern", ""));
    }
    if (jget(want, "data")) {
        const char *d = jstr(want, "data", "");
        CHECK(r->data_len == (int)strlen(d) && (r->data_len == 0 || !memcmp(r->data, d, strlen(d))), "%s: data %.*s",
              where, r->data_len, r->data ? r->data : "");
    }
    if (jget(want, "stat")) {
        check_stat(&r->stat, r->has_stat, jget(want, "stat"), where);
        if (t_failed) return;
    }
    if (jget(want, "children")) {
        const jv *kids = jget(want, "children");
        CHECK(r->has_kids && r->kids.count == kids->n, "%s: %d children, want %d", where, r->kids.count, kids->n);
        qsort(r->kids.items, (size_t)r->kids.count, sizeof(char *), cmp_str);
        char **w = calloc((size_t)kids->n + 1, sizeof(char *));
        for (int i = 0; i < kids->n; i++) w[i] = kids->items[i]->str;
        qsort(w, (size_t)kids->n, sizeof(char *), cmp_str);
        int same = 1;
        for (int i = 0; i < kids->n; i++) same &= !strcmp(w[i], r->kids.items[i]);
        free(w);
        CHECK(same, "%s: children differ", where);
    }
    if (jget(want, "results")) {
        const jv *rs = jget(want, "results");
        CHECK(r->n_ops == rs->n, "%s: %d op results, want %d", where, r->n_ops, rs->n);
        for (int i = 0; i < rs->n; i++) {
            const jv *e = rs->items[i];
            if (jget(e, "path")) CHECK(!strcmp(r->op_path[i], jstr(e, "path", "")), "%s: op %d path %s", where, i, r->op_path[i]);
            if (jget(e, "stat")) {
                check_stat(&r->op_stat[i], 1, jget(e, "stat"), where);
                if (t_failed) return;
            }
        }
    }
}

/* ---- steps ---- */

static void run_op(int c, const jv *step, const char *where) {
    int64_t deadline = (int64_t)time(NULL) + 30;
    for (;;) {
        res r = {0};
        int rc = issue(c, step, &r);
        if (rc == ZOK && !wait_done(&r, 1, 60000)) rc = ZK_EOPERATIONTIMEOUT;
        else if (rc == ZOK) rc = r.err;
        else r.err = rc;
        if (rc == ZK_ECONNECTIONLOSS && jnum(R.sc, "retry_connection_loss", 0) && time(NULL) < deadline) {
            res_clear(&r);
            continue;
        }
        check_result(step, &r, where);
        res_clear(&r);
        return;
    }
}

static void run_pipeline(int c, const jv *step, const char *where) {
    const jv *ops = jget(step, "ops");
    static res rs[MAX_PIPE];
    int n = ops->n < MAX_PIPE ? ops->n : MAX_PIPE;
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < n; i++) CHECK_RC(issue(c, ops->items[i], &rs[i]), ZOK);
    CHECK(wait_done(rs, n, 60000), "%s: not every pipelined op completed", where);
    for (int i = 0; i < n && !t_failed; i++) {
        char w[256];
        snprintf(w, sizeof w, "%s, pipelined op %d", where, i);
        CHECK(rs[i].order == rs[0].order + i, "%s: completed out of order", w);
        check_result(ops->items[i], &rs[i], w);
    }
    for (int i = 0; i < n; i++) res_clear(&rs[i]);
}

static void run_events(const jv *step, const char *where) {
    const char *op = jstr(step, "op", "");
    watch_rec *w = watcher(jstr(step, "watch", ""), 0);
    if (!strcmp(op, "no_more_events")) {
        zk_client *zk = R.clients[w->client];
        CHECK(zk, "%s: the watcher's client is closed", where);
        CHECK_RC(zk_sync(zk, R.root), ZOK);
        CHECK_RC(zk_exists(zk, R.root, NULL, NULL, NULL), ZOK);
        pthread_mutex_lock(&R.mu);
        int n = w->n;
        pthread_mutex_unlock(&R.mu);
        CHECK(n == w->consumed, "%s: %d unexpected events on %s (first: %d %s)", where, n - w->consumed, w->name,
              w->types[w->consumed], w->paths[w->consumed]);
        return;
    }
    const jv *evs = jget(step, "events");
    int total = w->consumed + evs->n;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 15;
    pthread_mutex_lock(&R.mu);
    while (w->n < total && pthread_cond_timedwait(&R.cond, &R.mu, &until) != ETIMEDOUT) {
    }
    int n = w->n;
    pthread_mutex_unlock(&R.mu);
    CHECK(n >= total, "%s: %d events on %s, want %d", where, n - w->consumed, w->name, evs->n);
    const jv *types = jget(doc, "event_types");
    for (int i = 0; i < evs->n; i++) {
        const jv *e = evs->items[i];
        int k = w->consumed + i;
        CHECK(w->types[k] == jnum(types, jstr(e, "type", ""), -1) && !strcmp(w->paths[k], jstr(e, "path", "")),
              "%s: event %d is %d %s, want %s %s", where, i, w->types[k], w->paths[k], jstr(e, "type", ""),
              jstr(e, "path", ""));
    }
    w->consumed = total;
}

static void run_step(const jv *step, const char *where) {
    const char *op = jstr(step, "op", "");
    int c = client_index(jstr(step, "client", "a"));
    if (!strcmp(op, "events") || !strcmp(op, "no_more_events")) return run_events(step, where);
    if (!strcmp(op, "resume_closed")) {
        zk_client *zk = NULL;
        int err;
        zk = zk_resume(t_connect, SESSION_MS, R.sessions[c], R.passwd[c], NULL, NULL, &err);
        if (zk) zk_close(zk);
        CHECK(!zk && err == err_code(jstr(step, "error", "")), "%s: resume gave %d (%s)", where, err, zk_strerror(err));
        return;
    }
    zk_client *zk = R.clients[c];
    CHECK(zk, "%s: client %s is closed", where, R.names[c]);
    if (!strcmp(op, "close")) {
        zk_close(zk);
        R.clients[c] = NULL;
    } else if (!strcmp(op, "reopen")) {
        int64_t sid = R.sessions[c];
        zk_detach(zk);
        int err = open_client(c, R.sessions[c], R.passwd[c]);
        CHECK(R.clients[c], "%s: resume failed: %s", where, zk_strerror(err));
        CHECK(R.sessions[c] == sid, "%s: resumed a different session", where);
    } else if (!strcmp(op, "kill_server")) {
        char ep[512];
        zk_endpoint(zk, ep, sizeof ep);
        CHECK(ep[0] && kill_endpoint(ep) == 0, "%s: could not kill the server at '%s'", where, ep);
    } else if (!strcmp(op, "pipeline")) {
        run_pipeline(c, step, where);
    } else if (!strcmp(op, "add_watch")) {
        char path[512];
        full(path, sizeof path, jstr(step, "path", ""));
        int mode = !strcmp(jstr(step, "mode", ""), "persistent") ? ZK_WATCH_PERSISTENT : ZK_WATCH_PERSISTENT_RECURSIVE;
        CHECK_RC(zk_add_watch(zk, path, mode, on_event, watcher(jstr(step, "watch", ""), c)), ZOK);
    } else if (!strcmp(op, "remove_watches")) {
        static const char *types[] = {"", "children", "data", "any", "persistent", "persistent_recursive"};
        int type = 0;
        for (int i = 1; i <= 5; i++)
            if (!strcmp(jstr(step, "type", ""), types[i])) type = i;
        char path[512];
        full(path, sizeof path, jstr(step, "path", ""));
        int rc = zk_remove_watches(zk, path, type);
        const char *want = jstr(step, "error", "OK");
        CHECK(rc == err_code(want), "%s: remove_watches gave %d, want %s", where, rc, want);
    } else {
        run_op(c, step, where);
    }
}

static void scenario_case(void) {
    const jv *sc = jget(doc, "scenarios")->items[scenario_index];
    memset(&R, 0, sizeof R);
    pthread_mutex_init(&R.mu, NULL);
    pthread_cond_init(&R.cond, NULL);
    R.doc = doc;
    R.sc = sc;
    snprintf(R.root, sizeof R.root, "/conformance-c-%d-%d-%ld", (int)getpid(), scenario_index, (long)time(NULL));
    const jv *names = jget(sc, "clients");
    for (int i = 0; i < names->n && !t_failed; i++) {
        int c = client_index(names->items[i]->str);
        int err = open_client(c, 0, NULL);
        if (!R.clients[c]) {
            t_failed = 1;
            snprintf(t_msg, sizeof t_msg, "open client %s: %s", names->items[i]->str, zk_strerror(err));
        }
    }
    if (!t_failed) {
        int rc = zk_create(R.clients[0], R.root, NULL, 0, ZK_PERSISTENT, 0, NULL, 0, NULL);
        if (rc != ZOK) { t_failed = 1; snprintf(t_msg, sizeof t_msg, "creating the root: %s", zk_strerror(rc)); }
    }
    const jv *steps = jget(sc, "steps");
    for (int i = 0; i < steps->n && !t_failed; i++) {
        char where[128];
        snprintf(where, sizeof where, "step %d (%s)", i, jstr(steps->items[i], "op", ""));
        run_step(steps->items[i], where);
    }
    for (int i = 0; i < R.n_clients; i++)
        if (R.clients[i]) zk_close(R.clients[i]);
}

int conformance_tests(const char *path) {
    doc = json_load(path);
    if (!doc) {
        printf("FAIL conformance: cannot read %s\n", path);
        return -1;
    }
    const jv *scs = jget(doc, "scenarios");
    static char names[64][256];
    for (int i = 0; i < scs->n && i < 64; i++) {
        scenario_index = i;
        snprintf(names[i], sizeof names[i], "conformance: %s", jstr(scs->items[i], "name", "?"));
        test_case t = {names[i], scenario_case};
        run_test(&t);
    }
    int n = scs->n;
    json_free(doc);
    return n;
}
