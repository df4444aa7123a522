/* jute.c: ZooKeeper's record encoding for the C binding (see jute.h). */
#include "jute.h"

#include <stdlib.h>
#include <string.h>

void jw_raw(jw *w, const void *p, size_t n) {
    if (w->oom) return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        while (cap < w->len + n) cap *= 2;
        uint8_t *b = realloc(w->buf, cap);
        if (!b) { w->oom = 1; return; }
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

void jw_int(jw *w, int32_t v) {
    uint32_t u = (uint32_t)v;
    uint8_t b[4] = {(uint8_t)(u >> 24), (uint8_t)(u >> 16), (uint8_t)(u >> 8), (uint8_t)u};
    jw_raw(w, b, 4);
}

void jw_long(jw *w, int64_t v) {
    jw_int(w, (int32_t)((uint64_t)v >> 32));
    jw_int(w, (int32_t)((uint64_t)v & 0xffffffffu));
}

void jw_bool(jw *w, int v) {
    uint8_t b = v ? 1 : 0;
    jw_raw(w, &b, 1);
}

void jw_buffer(jw *w, const void *p, int len) {
    if (!p && len <= 0) len = p ? 0 : -1;
    jw_int(w, len);
    if (len > 0) jw_raw(w, p, (size_t)len);
}

void jw_string(jw *w, const char *s) { jw_buffer(w, s, s ? (int)strlen(s) : -1); }

void jw_strings(jw *w, int n, const char *const *items) {
    jw_int(w, n);
    for (int i = 0; i < n; i++) jw_string(w, items[i]);
}

void jw_free(jw *w) {
    free(w->buf);
    memset(w, 0, sizeof *w);
}

static const uint8_t *jr_take(jr *r, size_t n) {
    if (r->bad || r->len - r->off < n) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}

int32_t jr_int(jr *r) {
    const uint8_t *b = jr_take(r, 4);
    if (!b) return 0;
    return (int32_t)((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]);
}

int64_t jr_long(jr *r) {
    uint64_t hi = (uint32_t)jr_int(r), lo = (uint32_t)jr_int(r);
    return (int64_t)(hi << 32 | lo);
}

int jr_bool(jr *r) {
    const uint8_t *b = jr_take(r, 1);
    if (!b) return 0;
    if (*b > 1) r->bad = 1;
    return *b;
}

const uint8_t *jr_buffer(jr *r, int *len) {
    int32_t n = jr_int(r);
    if (r->bad || n < -1) {
        r->bad = 1;
        *len = 0;
        return NULL;
    }
    if (n <= 0) {
        *len = 0;
        return r->p + r->off;
    }
    *len = n;
    return jr_take(r, (size_t)n);
}

char *jr_string_dup(jr *r) {
    int n;
    const uint8_t *p = jr_buffer(r, &n);
    if (r->bad) return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) { r->bad = 1; return NULL; }
    memcpy(s, p, (size_t)n);
    s[n] = 0;
    return s;
}

void jr_stat(jr *r, zk_stat *st) {
    st->czxid = jr_long(r);
    st->mzxid = jr_long(r);
    st->ctime = jr_long(r);
    st->mtime = jr_long(r);
    st->version = jr_int(r);
    st->cversion = jr_int(r);
    st->aversion = jr_int(r);
    st->ephemeral_owner = jr_long(r);
    st->data_length = jr_int(r);
    st->num_children = jr_int(r);
    st->pzxid = jr_long(r);
}

int jr_strings(jr *r, zk_strings *out) {
    out->count = 0;
    out->items = NULL;
    int32_t n = jr_int(r);
    if (r->bad || n < 0 || (size_t)n > r->len - r->off) { /* each item takes at least 4 bytes */
        r->bad = 1;
        return -1;
    }
    out->items = calloc((size_t)n + 1, sizeof(char *));
    if (!out->items) { r->bad = 1; return -1; }
    for (int32_t i = 0; i < n; i++) {
        out->items[i] = jr_string_dup(r);
        if (r->bad) { zk_strings_free(out); return -1; }
        out->count = i + 1;
    }
    return 0;
}

void zk_strings_free(zk_strings *s) {
    if (!s || !s->items) return;
    for (int32_t i = 0; i < s->count; i++) free(s->items[i]);
    free(s->items);
    s->items = NULL;
    s->count = 0;
}

void enc_connect(jw *w, int64_t last_zxid, int timeout_ms, int64_t session_id, const uint8_t passwd[16]) {
    static const uint8_t zeros[16];
    jw_int(w, 0);
    jw_long(w, last_zxid);
    jw_int(w, timeout_ms);
    jw_long(w, session_id);
    jw_buffer(w, passwd ? passwd : zeros, 16);
    jw_bool(w, 0);
}

void enc_header(jw *w, int32_t xid, int32_t type) {
    jw_int(w, xid);
    jw_int(w, type);
}

void enc_open_acl(jw *w) {
    jw_int(w, 1);
    jw_int(w, 31);
    jw_string(w, "world");
    jw_string(w, "anyone");
}

void enc_create(jw *w, const char *path, const void *data, int len, int flags) {
    jw_string(w, path);
    jw_buffer(w, data ? data : "", data ? len : 0);
    enc_open_acl(w);
    jw_int(w, flags);
}

void enc_create_ttl(jw *w, const char *path, const void *data, int len, int flags, int64_t ttl) {
    enc_create(w, path, data, len, flags);
    jw_long(w, ttl);
}

void enc_path_watch(jw *w, const char *path, int watch) {
    jw_string(w, path);
    jw_bool(w, watch);
}

void enc_delete(jw *w, const char *path, int version) {
    jw_string(w, path);
    jw_int(w, version);
}

void enc_set(jw *w, const char *path, const void *data, int len, int version) {
    jw_string(w, path);
    jw_buffer(w, data ? data : "", data ? len : 0);
    jw_int(w, version);
}

static void enc_multi_header(jw *w, int type, int done) {
    jw_int(w, type);
    jw_bool(w, done);
    jw_int(w, -1);
}

void enc_multi(jw *w, int n, const zk_op *ops) {
    for (int i = 0; i < n; i++) {
        const zk_op *op = &ops[i];
        enc_multi_header(w, op->type, 0);
        switch (op->type) {
        case ZK_OP_CREATE: enc_create(w, op->path, op->data, op->len, op->mode); break;
        case ZK_OP_SET: enc_set(w, op->path, op->data, op->len, op->version); break;
        default: enc_delete(w, op->path, op->version); break; /* delete and check: path, version */
        }
    }
    enc_multi_header(w, -1, 1);
}

void enc_set_watches2(jw *w, int64_t relative_zxid, const int counts[5], const char **const lists[5]) {
    enc_header(w, XID_SETWATCHES, OP_SETWATCHES2);
    jw_long(w, relative_zxid);
    for (int k = 0; k < 5; k++) jw_strings(w, counts[k], (const char *const *)lists[k]);
}

int create_opcode(int mode) {
    if (mode == ZK_CONTAINER) return OP_CREATECONTAINER;
    if (mode == ZK_PERSISTENT_WITH_TTL || mode == ZK_PERSISTENT_SEQUENTIAL_WITH_TTL) return OP_CREATETTL;
    return OP_CREATE2;
}

int dec_connect_response(const uint8_t *p, size_t len, zk_connect_response *out) {
    jr r = {p, len, 0, 0};
    memset(out, 0, sizeof *out);
    out->protocol_version = jr_int(&r);
    out->timeout_ms = jr_int(&r);
    out->session_id = jr_long(&r);
    int n;
    const uint8_t *pw = jr_buffer(&r, &n);
    if (r.bad || n > 16) return -1;
    memcpy(out->passwd, pw, (size_t)n);
    out->passwd_len = n;
    if (r.off < r.len) out->read_only = jr_bool(&r);
    return r.bad ? -1 : 0;
}
