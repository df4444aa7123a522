/* jute.h: ZooKeeper's record encoding (big-endian ints, length-prefixed buffers) for zkpy's
 * C binding. Internal; the tests use it to check the codec against docs/protocol-vectors.json. */
#ifndef ZKPY_JUTE_H
#define ZKPY_JUTE_H

#include <stddef.h>
#include <stdint.h>

#include "zkpy.h"

typedef struct jw { /* a growable writer */
    uint8_t *buf;
    size_t len, cap;
    int oom;
} jw;
void jw_raw(jw *w, const void *p, size_t n);
void jw_int(jw *w, int32_t v);
void jw_long(jw *w, int64_t v);
void jw_bool(jw *w, int v);
void jw_buffer(jw *w, const void *p, int len); /* len -1: null */
void jw_string(jw *w, const char *s);
void jw_strings(jw *w, int n, const char *const *items);
void jw_free(jw *w);

typedef struct jr { /* a bounds-checked reader; bad is set on any overrun and stays set */
    const uint8_t *p;
    size_t len, off;
    int bad;
} jr;
int32_t jr_int(jr *r);
int64_t jr_long(jr *r);
int jr_bool(jr *r);
/* A buffer: returns a pointer into the frame (not NUL-terminated) and its length (-1 null -> 0). */
const uint8_t *jr_buffer(jr *r, int *len);
char *jr_string_dup(jr *r); /* malloc'd, NUL-terminated; NULL on error */
void jr_stat(jr *r, zk_stat *st);
int jr_strings(jr *r, zk_strings *out);

/* Opcodes and special xids (docs/protocol.md). */
enum {
    OP_CREATE = 1, OP_DELETE = 2, OP_EXISTS = 3, OP_GETDATA = 4, OP_SETDATA = 5, OP_GETACL = 6,
    OP_SETACL = 7, OP_GETCHILDREN = 8, OP_SYNC = 9, OP_PING = 11, OP_GETCHILDREN2 = 12, OP_CHECK = 13,
    OP_MULTI = 14, OP_CREATE2 = 15, OP_REMOVEWATCHES = 18, OP_CREATECONTAINER = 19, OP_CREATETTL = 21,
    OP_SETWATCHES = 101, OP_SETWATCHES2 = 105, OP_ADDWATCH = 106, OP_AUTH = 100, OP_CLOSE = -11,
};
enum { XID_WATCH = -1, XID_PING = -2, XID_AUTH = -4, XID_SETWATCHES = -8 };

/* Record encoders used by the client (each appends to w). */
void enc_connect(jw *w, int64_t last_zxid, int timeout_ms, int64_t session_id, const uint8_t passwd[16]);
void enc_header(jw *w, int32_t xid, int32_t type);
void enc_open_acl(jw *w);
void enc_create(jw *w, const char *path, const void *data, int len, int flags); /* open ACL */
void enc_create_ttl(jw *w, const char *path, const void *data, int len, int flags, int64_t ttl);
void enc_path_watch(jw *w, const char *path, int watch);
void enc_delete(jw *w, const char *path, int version);
void enc_set(jw *w, const char *path, const void *data, int len, int version);
void enc_multi(jw *w, int n, const zk_op *ops);
/* Header (xid -8) and body of setWatches2; lists in the wire's order: data, exist, child,
 * persistent, persistent recursive. */
void enc_set_watches2(jw *w, int64_t relative_zxid, const int counts[5], const char **const lists[5]);
/* Opcode to use for a create of this mode (create2, createContainer or createTTL). */
int create_opcode(int mode);

typedef struct zk_connect_response {
    int32_t protocol_version, timeout_ms;
    int64_t session_id;
    uint8_t passwd[16];
    int passwd_len;
    int read_only;
} zk_connect_response;
int dec_connect_response(const uint8_t *p, size_t len, zk_connect_response *out); /* 0 or -1 */

#endif
