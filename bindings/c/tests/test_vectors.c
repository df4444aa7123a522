/* test_vectors.c: the codec against docs/protocol-vectors.json. A client->server vector is
 * encoded from its field values and must equal the hex; a server->client vector is decoded
 * (whole, and cut short at every byte, which must be refused) and must give the field values. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "json.h"
#include "tests.h"

static jv *cur; /* the vector under test */

static uint8_t *unhex(const char *hex, size_t *len) {
    size_t n = strlen(hex) / 2;
    uint8_t *b = malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned x;
        sscanf(hex + 2 * i, "%2x", &x);
        b[i] = (uint8_t)x;
    }
    *len = n;
    return b;
}

static uint8_t *bytes_field(const jv *v, const char *key, int *len) {
    size_t n = 0;
    uint8_t *b = unhex(jstr(jget(v, key), "hex", ""), &n);
    *len = (int)n;
    return b;
}

static int acl_is_open(const jv *acl) {
    if (!acl || acl->type != J_ARR || acl->n != 1) return 0;
    const jv *a = acl->items[0], *id = jget(a, "id");
    return jnum(a, "perms", 0) == 31 && !strcmp(jstr(id, "scheme", ""), "world") && !strcmp(jstr(id, "id", ""), "anyone");
}

static void enc_acl(jw *w, const jv *acl) {
    jw_int(w, acl->n);
    for (int i = 0; i < acl->n; i++) {
        const jv *id = jget(acl->items[i], "id");
        jw_int(w, (int32_t)jnum(acl->items[i], "perms", 0));
        jw_string(w, jstr(id, "scheme", ""));
        jw_string(w, jstr(id, "id", ""));
    }
}

static const char **str_list(const jv *arr) {
    const char **out = calloc((size_t)arr->n + 1, sizeof(char *));
    for (int i = 0; i < arr->n; i++) out[i] = arr->items[i]->str;
    return out;
}

static int op_from(const jv *pair, zk_op *op, uint8_t **data) {
    int type = (int)pair->items[0]->num;
    const jv *r = pair->items[1];
    memset(op, 0, sizeof *op);
    op->type = type;
    op->path = jstr(r, "path", "");
    op->version = (int)jnum(r, "version", -1);
    if (jget(r, "data")) op->data = *data = bytes_field(r, "data", &op->len);
    op->mode = (int)jnum(r, "flags", 0);
    return type;
}

/* Encodes one client->server part. 0 ok, -1 a record this test does not know. */
static int encode_part(jw *w, const char *part, const jv *v) {
    const char *rec = v->type == J_OBJ ? jstr(v, "record", "") : "";
    int len = 0;
    uint8_t *b = NULL;
    if (!strcmp(part, "multi request")) {
        zk_op ops[16];
        uint8_t *datas[16] = {0};
        for (int i = 0; i < v->n && i < 16; i++) op_from(v->items[i], &ops[i], &datas[i]);
        enc_multi(w, v->n, ops);
        for (int i = 0; i < v->n && i < 16; i++) free(datas[i]);
    } else if (!strcmp(rec, "ConnectRequest")) {
        b = bytes_field(v, "passwd", &len);
        enc_connect(w, jnum(v, "last_zxid_seen", 0), (int)jnum(v, "timeout_ms", 0), jnum(v, "session_id", 0), b);
    } else if (!strcmp(rec, "RequestHeader")) {
        enc_header(w, (int32_t)jnum(v, "xid", 0), (int32_t)jnum(v, "type", 0));
    } else if (!strcmp(rec, "AuthPacket")) {
        b = bytes_field(v, "auth", &len);
        jw_int(w, (int32_t)jnum(v, "type", 0));
        jw_string(w, jstr(v, "scheme", ""));
        jw_buffer(w, b, len);
    } else if (!strcmp(rec, "CreateRequest") || !strcmp(rec, "CreateTTLRequest")) {
        b = bytes_field(v, "data", &len);
        int flags = (int)jnum(v, "flags", 0);
        const jv *acl = jget(v, "acl");
        if (acl_is_open(acl) && !strcmp(rec, "CreateTTLRequest"))
            enc_create_ttl(w, jstr(v, "path", ""), b, len, flags, jnum(v, "ttl", 0));
        else if (acl_is_open(acl))
            enc_create(w, jstr(v, "path", ""), b, len, flags);
        else { /* the library creates with the open ACL only; check the layout by hand */
            jw_string(w, jstr(v, "path", ""));
            jw_buffer(w, b, len);
            enc_acl(w, acl);
            jw_int(w, flags);
        }
    } else if (!strcmp(rec, "PathWatchRequest")) {
        enc_path_watch(w, jstr(v, "path", ""), (int)jnum(v, "watch", 0));
    } else if (!strcmp(rec, "SetDataRequest")) {
        b = bytes_field(v, "data", &len);
        enc_set(w, jstr(v, "path", ""), b, len, (int)jnum(v, "version", 0));
    } else if (!strcmp(rec, "DeleteRequest") || !strcmp(rec, "CheckVersionRequest")) {
        enc_delete(w, jstr(v, "path", ""), (int)jnum(v, "version", 0));
    } else if (!strcmp(rec, "PathRequest")) {
        jw_string(w, jstr(v, "path", ""));
    } else if (!strcmp(rec, "SetACLRequest")) {
        jw_string(w, jstr(v, "path", ""));
        enc_acl(w, jget(v, "acl"));
        jw_int(w, (int32_t)jnum(v, "version", 0));
    } else if (!strcmp(rec, "AddWatchRequest")) {
        jw_string(w, jstr(v, "path", ""));
        jw_int(w, (int32_t)jnum(v, "mode", 0));
    } else if (!strcmp(rec, "WatchTypeRequest")) {
        jw_string(w, jstr(v, "path", ""));
        jw_int(w, (int32_t)jnum(v, "type", 0));
    } else if (!strcmp(rec, "SetWatches2")) {
        /* The client's own encoder writes the header too: it replaces the one just written. */
        static const char *names[5] = {"data_watches", "exist_watches", "child_watches", "persistent_watches",
                                       "persistent_recursive_watches"};
        int counts[5];
        const char **lists[5];
        for (int i = 0; i < 5; i++) {
            counts[i] = jget(v, names[i])->n;
            lists[i] = str_list(jget(v, names[i]));
        }
        jw whole = {0};
        enc_set_watches2(&whole, jnum(v, "relative_zxid", 0), counts, lists);
        for (int i = 0; i < 5; i++) free(lists[i]);
        int after_header = w->len == 8;
        w->len = 0;
        jw_raw(w, whole.buf, whole.len);
        jw_free(&whole);
        if (!after_header) return -1;
    } else {
        return -1;
    }
    free(b);
    return 0;
}

static int stat_equal(const zk_stat *s, const jv *v) {
    return s->czxid == jnum(v, "czxid", 0) && s->mzxid == jnum(v, "mzxid", 0) && s->ctime == jnum(v, "ctime", 0) &&
           s->mtime == jnum(v, "mtime", 0) && s->version == jnum(v, "version", 0) &&
           s->cversion == jnum(v, "cversion", 0) && s->aversion == jnum(v, "aversion", 0) &&
           s->ephemeral_owner == jnum(v, "ephemeral_owner", 0) && s->data_length == jnum(v, "data_length", 0) &&
           s->num_children == jnum(v, "num_children", 0) && s->pzxid == jnum(v, "pzxid", 0);
}

static int strings_equal(jr *r, const jv *arr) {
    zk_strings s;
    if (jr_strings(r, &s) != 0) return 0;
    int ok = s.count == arr->n;
    for (int i = 0; ok && i < s.count; i++) ok = !strcmp(s.items[i], arr->items[i]->str);
    zk_strings_free(&s);
    return ok;
}

static int string_equal(jr *r, const char *want) {
    char *s = jr_string_dup(r);
    int ok = s && !strcmp(s, want);
    free(s);
    return ok;
}

static int buffer_equal(jr *r, const jv *v, const char *key) {
    int n, wn;
    const uint8_t *p = jr_buffer(r, &n);
    uint8_t *want = bytes_field(v, key, &wn);
    int ok = !r->bad && n == wn && (n == 0 || !memcmp(p, want, (size_t)n));
    free(want);
    return ok;
}

/* Decodes one server->client part from r and compares it with v. 1 equal, 0 not, -1 unknown. */
static int decode_part(jr *r, const char *part, const jv *v) {
    const char *rec = v->type == J_OBJ ? jstr(v, "record", "") : "";
    if (!strcmp(part, "multi response")) {
        zk_op_result out[16] = {0};
        zk_result res = {0};
        decode_multi(r, &res, out, 16);
        int ok = !r->bad && res.n_results == v->n;
        for (int i = 0; ok && i < v->n; i++) {
            const jv *e = v->items[i], *body = jget(e, "body");
            ok = out[i].err == jnum(e, "err", 0);
            if (ok && body && body->type == J_OBJ && jget(body, "path")) ok = out[i].path && !strcmp(out[i].path, jstr(body, "path", ""));
            if (ok && body && body->type == J_OBJ && jget(body, "stat")) ok = stat_equal(&out[i].stat, jget(body, "stat"));
        }
        zk_op_results_free(16, out);
        return ok;
    }
    if (!strcmp(rec, "ConnectResponse")) {
        zk_connect_response cr;
        if (dec_connect_response(r->p + r->off, r->len - r->off, &cr) != 0) { r->bad = 1; return 0; }
        int n;
        uint8_t *pw = bytes_field(v, "passwd", &n);
        int ok = cr.protocol_version == jnum(v, "protocol_version", -9) && cr.timeout_ms == jnum(v, "timeout_ms", -9) &&
                 cr.session_id == jnum(v, "session_id", -9) && cr.passwd_len == n && !memcmp(cr.passwd, pw, (size_t)n) &&
                 cr.read_only == jnum(v, "read_only", 0);
        free(pw);
        r->off = r->len;
        return ok;
    }
    if (!strcmp(rec, "ReplyHeader")) {
        int32_t xid = jr_int(r);
        int64_t zxid = jr_long(r);
        int32_t err = jr_int(r);
        return xid == jnum(v, "xid", 0) && zxid == jnum(v, "zxid", 0) && err == jnum(v, "err", 0);
    }
    zk_stat st;
    if (!strcmp(rec, "CreateResponse") || !strcmp(rec, "PathRequest")) /* sync answers a path too */
        return string_equal(r, jstr(v, "path", ""));
    if (!strcmp(rec, "Create2Response")) {
        int ok = string_equal(r, jstr(v, "path", ""));
        jr_stat(r, &st);
        return ok && stat_equal(&st, jget(v, "stat"));
    }
    if (!strcmp(rec, "StatResponse")) { jr_stat(r, &st); return stat_equal(&st, jget(v, "stat")); }
    if (!strcmp(rec, "GetDataResponse")) {
        int ok = buffer_equal(r, v, "data");
        jr_stat(r, &st);
        return ok && stat_equal(&st, jget(v, "stat"));
    }
    if (!strcmp(rec, "GetChildrenResponse")) return strings_equal(r, jget(v, "children"));
    if (!strcmp(rec, "GetChildren2Response")) {
        int ok = strings_equal(r, jget(v, "children"));
        jr_stat(r, &st);
        return ok && stat_equal(&st, jget(v, "stat"));
    }
    if (!strcmp(rec, "PathsResponse")) return strings_equal(r, jget(v, "paths"));
    if (!strcmp(rec, "IntResponse")) return jr_int(r) == jnum(v, "value", 0);
    if (!strcmp(rec, "GetACLResponse")) {
        const jv *acl = jget(v, "acl");
        int ok = jr_int(r) == acl->n;
        for (int i = 0; ok && i < acl->n; i++) {
            const jv *id = jget(acl->items[i], "id");
            ok = jr_int(r) == jnum(acl->items[i], "perms", 0) && string_equal(r, jstr(id, "scheme", "")) &&
                 string_equal(r, jstr(id, "id", ""));
        }
        jr_stat(r, &st);
        return ok && stat_equal(&st, jget(v, "stat"));
    }
    if (!strcmp(rec, "WatcherEvent")) {
        int ok = jr_int(r) == jnum(v, "type", 0);
        ok &= jr_int(r) == jnum(v, "state", 0);
        return ok && string_equal(r, jstr(v, "path", ""));
    }
    return -1;
}

static void vector_case(void) {
    const char *dir = jstr(cur, "direction", "");
    const jv *parts = jget(cur, "parts");
    size_t n;
    uint8_t *want = unhex(jstr(cur, "hex", ""), &n);
    if (!strcmp(dir, "client->server")) {
        jw w = {0};
        int known = 1;
        for (int i = 0; i < parts->n && known; i++)
            known = encode_part(&w, jstr(parts->items[i], "part", ""), jget(parts->items[i], "value")) == 0;
        int same = known && w.len == n && !memcmp(w.buf, want, n);
        jw_free(&w);
        free(want);
        CHECK(known, "a record this test cannot encode");
        CHECK(same, "encoding differs from the vector's hex");
        return;
    }
    /* Whole, then every strict prefix (which must fail somewhere), then with a trailing byte. */
    int optional_tail = !strcmp(jstr(parts->items[0], "part", ""), "ConnectResponse");
    for (size_t cut = 0; cut <= n; cut++) {
        jr r = {want, cut, 0, 0};
        int ok = 1;
        for (int i = 0; i < parts->n && ok == 1; i++)
            ok = decode_part(&r, jstr(parts->items[i], "part", ""), jget(parts->items[i], "value"));
        if (cut == n) {
            int whole = ok == 1 && !r.bad && r.off == n;
            free(want);
            CHECK(ok != -1, "a record this test cannot decode");
            CHECK(whole, "decoding does not give the vector's values");
            return;
        }
        if (optional_tail && cut == n - 1) continue; /* readOnly may be left out */
        if (ok == 1 && !r.bad) {
            free(want);
            CHECK(0, "a frame cut to %zu of %zu bytes decoded without complaint", cut, n);
        }
    }
}

/* Random and mangled frames through every decoder: each must stop at the frame's end and flag
 * it (r.bad), never read past it (build with -fsanitize=address to see that) or crash. */
static jv *fuzz_doc;
static uint32_t fuzz_seed;
static int fuzz_rand(int n) {
    fuzz_seed = fuzz_seed * 1103515245u + 12345u;
    return (int)((fuzz_seed >> 8) % (uint32_t)n);
}
#define RAND(n) fuzz_rand(n)
static void fuzz_case(void) {
    fuzz_seed = 12345;
    const jv *vs = jget(fuzz_doc, "vectors");
    int bad_flagged = 0;
    for (int i = 0; i < 3000; i++) {
        size_t n;
        uint8_t *frame;
        if (i % 2) {
            const jv *v = vs->items[RAND(vs->n)];
            frame = unhex(jstr(v, "hex", ""), &n);
            for (int k = 0, m = 1 + RAND(4); n && k < m; k++) {
                int at = RAND((int)n);
                frame[at] = (uint8_t)RAND(256);
            }
        } else {
            n = (size_t)RAND(96);
            frame = malloc(n + 1);
            for (size_t k = 0; k < n; k++) {
                int keep = RAND(4);
                frame[k] = keep ? (uint8_t)RAND(256) : 0;
            }
        }
        uint8_t *exact = malloc(n ? n : 1); /* exactly n bytes, so an overread is caught */
        memcpy(exact, frame, n);
        free(frame);
        zk_connect_response cr;
        dec_connect_response(exact, n, &cr);
        for (int which = 0; which < 5; which++) {
            jr r = {exact, n, 0, 0};
            jr_int(&r), jr_long(&r), jr_int(&r);
            zk_stat st;
            zk_strings kids = {0};
            int len;
            if (which == 0) { jr_int(&r); jr_int(&r); free(jr_string_dup(&r)); }
            if (which == 1) {
                zk_op_result out[16] = {0};
                zk_result res = {0};
                decode_multi(&r, &res, out, 16);
                zk_op_results_free(16, out);
            }
            if (which == 2) jr_stat(&r, &st);
            if (which == 3) { jr_strings(&r, &kids); zk_strings_free(&kids); jr_stat(&r, &st); }
            if (which == 4) { jr_buffer(&r, &len); jr_stat(&r, &st); }
            CHECK(r.off <= r.len, "a decoder read past the frame");
            bad_flagged += r.bad;
        }
        free(exact);
    }
    CHECK(bad_flagged > 0, "no random frame was ever refused");
#undef RAND
}

int vector_tests(const char *path) {
    jv *doc = json_load(path);
    if (!doc) {
        printf("FAIL vectors: cannot read %s\n", path);
        return -1;
    }
    const jv *vs = jget(doc, "vectors");
    for (int i = 0; vs && i < vs->n; i++) {
        cur = vs->items[i];
        char name[256];
        snprintf(name, sizeof name, "vector: %s", jstr(cur, "name", "?"));
        test_case t = {name, vector_case};
        run_test(&t);
    }
    int n = vs ? vs->n : 0;
    if (vs) {
        fuzz_doc = doc;
        test_case f = {"decoders: random and mangled frames", fuzz_case};
        run_test(&f);
    }
    json_free(doc);
    return n;
}
