/* recipes.c: Lock and Election with kazoo's node layout, so C, Node, kazoo and zkclient
 * contenders share one lock: <path>/<uuid4 hex>__lock__<10-digit seq>, ephemeral sequential,
 * ordered by the sequence after the marker, each contender watching only its predecessor. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define LOCK_MARKER "__lock__"

struct zk_lock {
    zk_client *zk;
    char *path, *ident;
    char prefix[64]; /* <uuid hex>__lock__ */
    char node[1024]; /* our contender's name (not the full path); "" when none */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int fired;
};

static void uuid4_hex(char out[33]) {
    uint8_t b[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, b, sizeof b) : -1;
    if (fd >= 0) close(fd);
    if (n != (ssize_t)sizeof b) { /* no urandom: still unique enough per process and moment */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        srand((unsigned)(ts.tv_nsec ^ getpid()));
        for (int i = 0; i < 16; i++) b[i] = (uint8_t)rand();
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
}

zk_lock *zk_lock_new(zk_client *zk, const char *path, const char *identifier) {
    if (!zk || !path || path[0] != '/') return NULL;
    zk_lock *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->zk = zk;
    l->path = strdup(path);
    l->ident = strdup(identifier ? identifier : "");
    char hex[33];
    uuid4_hex(hex);
    snprintf(l->prefix, sizeof l->prefix, "%s" LOCK_MARKER, hex);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cond, NULL);
    if (!l->path || !l->ident) { zk_lock_free(l); return NULL; }
    return l;
}

void zk_lock_free(zk_lock *l) {
    if (!l) return;
    free(l->path);
    free(l->ident);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cond);
    free(l);
}

/* Creates every missing node of path (persistent, empty), like kazoo's ensure_path. */
static int ensure_path(zk_client *zk, const char *path) {
    char *p = strdup(path);
    if (!p) return ZK_ESYSTEM;
    int rc = ZOK;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != 0) continue;
        char c = *s;
        *s = 0;
        rc = zk_create(zk, p, NULL, 0, ZK_PERSISTENT, 0, NULL, 0, NULL);
        if (rc == ZK_ENODEEXISTS) rc = ZOK;
        *s = c;
        if (rc != ZOK || c == 0) break;
    }
    free(p);
    return rc;
}

static const char *seq_key(const char *name) {
    const char *m = strstr(name, "__lock__");
    if (m) return m + strlen("__lock__");
    m = strstr(name, "__rlock__");
    if (m) return m + strlen("__rlock__");
    return "~"; /* other names sort last, as kazoo does */
}

static int by_seq(const void *a, const void *b) {
    return strcmp(seq_key(*(char *const *)a), seq_key(*(char *const *)b));
}

static void on_predecessor(zk_client *zk, int type, const char *path, void *ctx) {
    (void)zk, (void)type, (void)path;
    zk_lock *l = ctx;
    pthread_mutex_lock(&l->mu);
    l->fired = 1;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->mu);
}

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Our contender, found by its prefix (a create whose reply was lost may still have made it). */
static int find_own(zk_lock *l, zk_strings *kids) {
    for (int i = 0; i < kids->count; i++)
        if (strncmp(kids->items[i], l->prefix, strlen(l->prefix)) == 0) return i;
    return -1;
}

static int create_contender(zk_lock *l) {
    char want[1200], made[1200];
    snprintf(want, sizeof want, "%s/%s", l->path, l->prefix);
    for (int attempt = 0; attempt < 20; attempt++) {
        int rc = zk_create(l->zk, want, l->ident, (int)strlen(l->ident), ZK_EPHEMERAL_SEQUENTIAL, 0, made,
                           sizeof made, NULL);
        if (rc == ZOK) {
            snprintf(l->node, sizeof l->node, "%s", made + strlen(l->path) + 1);
            return ZOK;
        }
        if (rc == ZK_ENONODE) {
            if ((rc = ensure_path(l->zk, l->path)) != ZOK && rc != ZK_ECONNECTIONLOSS) return rc;
            continue;
        }
        if (rc != ZK_ECONNECTIONLOSS) return rc;
        /* The create may have been applied by a server we are no longer on: sync first. */
        zk_strings kids = {0};
        rc = zk_sync(l->zk, l->path);
        if (rc == ZOK) rc = zk_get_children(l->zk, l->path, NULL, NULL, &kids, NULL);
        int i = rc == ZOK ? find_own(l, &kids) : -1;
        if (i >= 0) snprintf(l->node, sizeof l->node, "%s", kids.items[i]);
        zk_strings_free(&kids);
        if (i >= 0) return ZOK;
    }
    return ZK_ECONNECTIONLOSS;
}

/* 1 held, 0 wait for the predecessor's watch, <0 an error. */
static int check_turn(zk_lock *l) {
    zk_strings kids = {0};
    int rc = zk_get_children(l->zk, l->path, NULL, NULL, &kids, NULL);
    if (rc != ZOK) return rc;
    qsort(kids.items, (size_t)kids.count, sizeof(char *), by_seq);
    int me = -1;
    size_t plen = strlen(l->prefix);
    for (int i = 0; i < kids.count; i++) {
        if (strcmp(kids.items[i], l->node) == 0) me = i;
        else if (strncmp(kids.items[i], l->prefix, plen) == 0) { /* an orphan of a lost create */
            char orphan[2048];
            snprintf(orphan, sizeof orphan, "%s/%s", l->path, kids.items[i]);
            zk_delete(l->zk, orphan, -1);
        }
    }
    if (me < 0) { zk_strings_free(&kids); return ZK_ENONODE; } /* our ephemeral went with a session */
    /* As kazoo's Lock: only exclusive contenders (__lock__) come before us; readers do not. */
    int pred = -1;
    for (int i = me - 1; i >= 0 && pred < 0; i--)
        if (strstr(kids.items[i], LOCK_MARKER) && strncmp(kids.items[i], l->prefix, plen) != 0) pred = i;
    if (pred < 0) { zk_strings_free(&kids); return 1; }
    char ppath[2048];
    snprintf(ppath, sizeof ppath, "%s/%s", l->path, kids.items[pred]);
    zk_strings_free(&kids);
    pthread_mutex_lock(&l->mu);
    l->fired = 0;
    pthread_mutex_unlock(&l->mu);
    rc = zk_exists(l->zk, ppath, on_predecessor, l, NULL);
    if (rc == ZK_ENONODE) return check_turn(l); /* gone already: look again (it fires on create only) */
    return rc == ZOK ? 0 : rc;
}

int zk_lock_acquire(zk_lock *l, int timeout_ms) {
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : mono_ms() + timeout_ms;
    int rc = ensure_path(l->zk, l->path);
    if (rc != ZOK) return rc;
    if ((rc = create_contender(l)) != ZOK) return rc;
    for (;;) {
        rc = check_turn(l);
        if (rc == 1) return ZOK;
        if (rc == ZK_ECONNECTIONLOSS) continue;
        if (rc < 0) break;
        pthread_mutex_lock(&l->mu);
        while (!l->fired && mono_ms() < deadline) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            int64_t ms = deadline - mono_ms();
            if (ms > 1000) ms = 1000; /* look again now and then: a watch lost with a connection */
            until.tv_sec += ms / 1000;
            until.tv_nsec += (ms % 1000) * 1000000;
            if (until.tv_nsec >= 1000000000) { until.tv_sec++; until.tv_nsec -= 1000000000; }
            if (pthread_cond_timedwait(&l->cond, &l->mu, &until) == ETIMEDOUT) break;
        }
        pthread_mutex_unlock(&l->mu);
        if (mono_ms() >= deadline) { rc = ZK_EOPERATIONTIMEOUT; break; }
    }
    zk_lock_release(l);
    return rc;
}

int zk_lock_release(zk_lock *l) {
    if (!l->node[0]) return ZOK;
    char full[2048];
    snprintf(full, sizeof full, "%s/%s", l->path, l->node);
    int rc;
    do rc = zk_delete(l->zk, full, -1);
    while (rc == ZK_ECONNECTIONLOSS);
    l->node[0] = 0;
    return rc == ZK_ENONODE ? ZOK : rc;
}

int zk_election_run(zk_client *zk, const char *path, const char *identifier, void (*leader)(void *ctx),
                    void *ctx) {
    zk_lock *l = zk_lock_new(zk, path, identifier);
    if (!l) return ZK_EBADARGUMENTS;
    int rc = zk_lock_acquire(l, -1);
    if (rc == ZOK) {
        leader(ctx);
        rc = zk_lock_release(l);
    }
    zk_lock_free(l);
    return rc;
}
