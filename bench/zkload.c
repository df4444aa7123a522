/* The load generator of `python -m bench`: Apache ZooKeeper's C client (libzookeeper-mt, its
 * async API) driving any server that speaks ZooKeeper's client protocol, so that ZooKeeper and
 * zkpy's ZooKeeper door get the very same load. Compiled by bench/_loadgen.py at run time.
 *
 *   zkload setup HOST ZNODES
 *       create /b and /b/n0 .. /b/n<ZNODES-1> holding 100 bytes (existing ones are kept)
 *   zkload load HOSTS SESSIONS OUTSTANDING READ_PCT WARMUP_S SECONDS ZNODES
 *       SESSIONS sessions, session i on HOSTS[i % count] (HOSTS is host:port,host:port,...),
 *       each keeping OUTSTANDING requests in flight: getData (READ_PCT % of them) or setData
 *       of 100 bytes, of a random /b/n<i>. Prints "measuring" when the warm-up ends and
 *       "stopped" when the measurement ends, then one JSON line of counts and latencies.
 *   zkload unloaded HOST OPS [IDLE]
 *       one request in flight: OPS creates of 100-byte znodes, then OPS getData of them; with
 *       IDLE, that many more sessions are open to HOST meanwhile and send nothing (plain
 *       sockets, not the C client: the quiet clients a real server holds). HOST must then be an
 *       IPv4 address; on a loopback one they come from 127.1.x.y, 50 from each (a server takes
 *       60 connections from one address). Prints "creates", "reads" and "done" as each phase
 *       starts and the last ends, then the JSON.
 *
 * Latencies go into a histogram per session and kind: exact below 128 us, then 64 buckets per
 * power of two (1.6 % wide). Exit status 1 with a message on stderr when a step fails. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <zookeeper/zookeeper.h>

#define BUCKETS (128 + 25 * 64)
#define PAYLOAD_BYTES 100
#define CONNECT_WAIT_S 30
#define DRAIN_WAIT_S 10

enum { READ = 0, WRITE = 1, CREATE = 1 };

typedef struct {
    uint64_t counts[BUCKETS];
    uint64_t total;
} histogram_t;

struct session;

typedef struct {
    struct session *session;
    uint64_t started_ns;
    int kind;
} slot_t;

typedef struct session {
    zhandle_t *zh;
    atomic_int connected;
    atomic_int failed;
    atomic_int inflight;
    unsigned seed;
    histogram_t latency[2];
    uint64_t errors;
    slot_t *slots;
} session_t;

static char payload[PAYLOAD_BYTES];
static int read_pct = 100, znodes = 1000;
static uint64_t window_start_ns, window_end_ns;
static atomic_int stopping;

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void sleep_until(uint64_t ns) {
    uint64_t now = now_ns();
    if (ns > now) {
        struct timespec t = {(time_t)((ns - now) / 1000000000u), (long)((ns - now) % 1000000000u)};
        while (nanosleep(&t, &t) == -1 && errno == EINTR) {
        }
    }
}

static void fail(const char *what) {
    fprintf(stderr, "zkload: %s\n", what);
    exit(1);
}

/* --- histogram ------------------------------------------------------------------------------ */

static int bucket_of(uint64_t us) {
    if (us < 128) return (int)us;
    int e = 63 - __builtin_clzll(us);  /* 2^e <= us < 2^(e+1), e >= 7 */
    if (e > 31) return BUCKETS - 1;
    return 128 + (e - 7) * 64 + (int)((us >> (e - 6)) & 63);
}

static double value_of(int bucket) {  /* the middle of the bucket, in us */
    if (bucket < 128) return bucket + 0.5;
    int e = (bucket - 128) / 64 + 7, sub = (bucket - 128) % 64;
    double low = (double)(1ull << e) + (double)sub * (double)(1ull << (e - 6));
    return low + (double)(1ull << (e - 6)) / 2;
}

static void record(histogram_t *h, uint64_t ns) {
    h->counts[bucket_of(ns / 1000)]++;
    h->total++;
}

static double percentile(const histogram_t *h, double q) {
    if (h->total == 0) return 0;
    uint64_t rank = (uint64_t)(q * (double)h->total), seen = 0;
    if (rank >= h->total) rank = h->total - 1;
    for (int b = 0; b < BUCKETS; b++) {
        seen += h->counts[b];
        if (seen > rank) return value_of(b);
    }
    return value_of(BUCKETS - 1);
}

static void print_kind(const char *name, const histogram_t *h, double seconds) {
    printf("\"%s\": {\"ops\": %llu, \"ops_s\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f, \"p999_us\": %.1f}",
           name, (unsigned long long)h->total, (double)h->total / seconds, percentile(h, 0.5),
           percentile(h, 0.99), percentile(h, 0.999));
}

/* --- sessions ------------------------------------------------------------------------------- */

static void on_event(zhandle_t *zh, int type, int state, const char *path, void *context) {
    (void)zh; (void)path;
    session_t *s = context;
    if (type != ZOO_SESSION_EVENT || s == NULL) return;
    if (state == ZOO_CONNECTED_STATE) atomic_store(&s->connected, 1);
    if (state == ZOO_EXPIRED_SESSION_STATE || state == ZOO_AUTH_FAILED_STATE) atomic_store(&s->failed, 1);
}

static void open_sessions(session_t *sessions, int count, char **hosts, int host_count) {
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    for (int i = 0; i < count; i++) {
        sessions[i].seed = 12345u + (unsigned)i * 7919u;
        sessions[i].zh = zookeeper_init(hosts[i % host_count], on_event, 30000, 0, &sessions[i], 0);
        if (sessions[i].zh == NULL) fail("zookeeper_init failed");
        /* The client resolves its host list again each time its I/O thread polls, by default:
         * a getaddrinfo (a netlink socket, /etc files) per wake-up, a good part of the client's
         * CPU per request under load. -1: only when a connection is lost. */
        zoo_set_servers_resolution_delay(sessions[i].zh, -1);
    }
    uint64_t deadline = now_ns() + CONNECT_WAIT_S * 1000000000ull;
    for (int i = 0; i < count; i++) {
        while (!atomic_load(&sessions[i].connected)) {
            if (atomic_load(&sessions[i].failed) || now_ns() > deadline) {
                fprintf(stderr, "zkload: session %d on %s did not connect\n", i, hosts[i % host_count]);
                exit(1);
            }
            usleep(2000);
        }
    }
}

static void issue(slot_t *slot);

static void completed(slot_t *slot, int rc) {
    session_t *s = slot->session;
    uint64_t now = now_ns();
    if (now >= window_start_ns && now < window_end_ns) {
        if (rc == ZOK) record(&s->latency[slot->kind], now - slot->started_ns);
        else s->errors++;
    }
    if (atomic_load(&stopping) || now >= window_end_ns) atomic_fetch_sub(&s->inflight, 1);
    else issue(slot);
}

static void on_data(int rc, const char *value, int value_len, const struct Stat *stat, const void *data) {
    (void)value; (void)value_len; (void)stat;
    completed((slot_t *)data, rc);
}

static void on_stat(int rc, const struct Stat *stat, const void *data) {
    (void)stat;
    completed((slot_t *)data, rc);
}

static void issue(slot_t *slot) {
    session_t *s = slot->session;
    char path[32];
    snprintf(path, sizeof path, "/b/n%d", (int)(rand_r(&s->seed) % (unsigned)znodes));
    slot->kind = (int)(rand_r(&s->seed) % 100u) < read_pct ? READ : WRITE;
    slot->started_ns = now_ns();
    int rc = slot->kind == READ ? zoo_aget(s->zh, path, 0, on_data, slot)
                                : zoo_aset(s->zh, path, payload, PAYLOAD_BYTES, -1, on_stat, slot);
    if (rc != ZOK) {
        s->errors++;
        atomic_fetch_sub(&s->inflight, 1);
    }
}

/* --- modes ---------------------------------------------------------------------------------- */

static int split_hosts(char *text, char **hosts, int max) {
    int n = 0;
    for (char *h = strtok(text, ","); h != NULL && n < max; h = strtok(NULL, ",")) hosts[n++] = h;
    return n;
}

static int load(int argc, char **argv) {
    if (argc != 9) fail("usage: zkload load HOSTS SESSIONS OUTSTANDING READ_PCT WARMUP_S SECONDS ZNODES");
    char *hosts[256];
    int host_count = split_hosts(argv[2], hosts, 256);
    int count = atoi(argv[3]), outstanding = atoi(argv[4]);
    read_pct = atoi(argv[5]);
    double warmup_s = atof(argv[6]), seconds = atof(argv[7]);
    znodes = atoi(argv[8]);
    if (host_count < 1 || count < 1 || outstanding < 1 || seconds <= 0 || znodes < 1) fail("bad arguments");
    session_t *sessions = calloc((size_t)count, sizeof *sessions);
    if (sessions == NULL) fail("out of memory");
    open_sessions(sessions, count, hosts, host_count);
    uint64_t started = now_ns();
    window_start_ns = started + (uint64_t)(warmup_s * 1e9);
    window_end_ns = window_start_ns + (uint64_t)(seconds * 1e9);
    for (int i = 0; i < count; i++) {
        sessions[i].slots = calloc((size_t)outstanding, sizeof(slot_t));
        if (sessions[i].slots == NULL) fail("out of memory");
        atomic_store(&sessions[i].inflight, outstanding);
        for (int j = 0; j < outstanding; j++) {
            sessions[i].slots[j].session = &sessions[i];
            issue(&sessions[i].slots[j]);
        }
    }
    sleep_until(window_start_ns);
    printf("measuring\n");
    fflush(stdout);
    sleep_until(window_end_ns);
    printf("stopped\n");
    fflush(stdout);
    uint64_t deadline = now_ns() + DRAIN_WAIT_S * 1000000000ull;
    for (int i = 0; i < count; i++)
        while (atomic_load(&sessions[i].inflight) > 0 && now_ns() < deadline) usleep(1000);
    atomic_store(&stopping, 1);
    histogram_t total[2] = {0};
    uint64_t errors = 0;
    for (int i = 0; i < count; i++) {
        zookeeper_close(sessions[i].zh);  /* joins its threads: the histograms are ours now */
        for (int k = 0; k < 2; k++) {
            for (int b = 0; b < BUCKETS; b++) total[k].counts[b] += sessions[i].latency[k].counts[b];
            total[k].total += sessions[i].latency[k].total;
        }
        errors += sessions[i].errors;
    }
    histogram_t all = total[READ];
    for (int b = 0; b < BUCKETS; b++) all.counts[b] += total[WRITE].counts[b];
    all.total += total[WRITE].total;
    printf("{\"seconds\": %.3f, \"errors\": %llu, ", seconds, (unsigned long long)errors);
    print_kind("all", &all, seconds);
    printf(", ");
    print_kind("read", &total[READ], seconds);
    printf(", ");
    print_kind("write", &total[WRITE], seconds);
    printf("}\n");
    return 0;
}

/* setup: pipelined creates, counted down by their completions */
static atomic_int setup_pending, setup_errors;

static void on_created(int rc, const char *value, const void *data) {
    (void)value; (void)data;
    if (rc != ZOK && rc != ZNODEEXISTS) atomic_fetch_add(&setup_errors, 1);
    atomic_fetch_sub(&setup_pending, 1);
}

static int setup(int argc, char **argv) {
    if (argc != 4) fail("usage: zkload setup HOST ZNODES");
    int count = atoi(argv[3]);
    session_t session = {0};
    open_sessions(&session, 1, &argv[2], 1);
    atomic_store(&setup_pending, count + 1);
    if (zoo_acreate(session.zh, "/b", "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, on_created, NULL) != ZOK) fail("create /b");
    for (int i = 0; i < count; i++) {
        char path[32];
        snprintf(path, sizeof path, "/b/n%d", i);
        if (zoo_acreate(session.zh, path, payload, PAYLOAD_BYTES, &ZOO_OPEN_ACL_UNSAFE, 0, on_created, NULL) != ZOK)
            fail("create /b/n<i>");
    }
    uint64_t deadline = now_ns() + 120 * 1000000000ull;
    while (atomic_load(&setup_pending) > 0 && now_ns() < deadline) usleep(1000);
    zookeeper_close(session.zh);
    if (atomic_load(&setup_pending) > 0 || atomic_load(&setup_errors) > 0) fail("setup creates failed");
    printf("{\"znodes\": %d}\n", count);
    return 0;
}

/* IDLE_PER_ADDRESS connections from each loopback source address */
#define IDLE_PER_ADDRESS 50

static int read_all(int fd, char *buf, size_t n) {
    for (size_t got = 0; got < n;) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

/* `count` sessions on plain sockets to host:port, each connected (its ConnectResponse read) and
 * then left alone; their fds, for the caller to close. */
static int *open_idle(const char *host, int count) {
    char address[64];
    const char *colon = strrchr(host, ':');
    if (colon == NULL || (size_t)(colon - host) >= sizeof address) fail("idle sessions: HOST must be ip:port");
    memcpy(address, host, (size_t)(colon - host));
    address[colon - host] = '\0';
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, address, &to.sin_addr) != 1) fail("idle sessions: HOST must be an IPv4 address");
    int loopback = (ntohl(to.sin_addr.s_addr) >> 24) == 127;
    struct rlimit files;  /* a socket each: the soft limit up to the hard one */
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
    }
    int *fds = calloc((size_t)count, sizeof *fds);
    if (fds == NULL) fail("out of memory");
    /* length, protocol version, last zxid seen, timeout (ms), session id, password (16 zero
     * bytes with their length), read-only */
    char request[4 + 4 + 8 + 4 + 8 + 4 + 16 + 1] = {0};
    uint32_t field = htonl(sizeof request - 4);
    memcpy(request, &field, 4);
    field = htonl(40000);
    memcpy(request + 16, &field, 4);
    field = htonl(16);
    memcpy(request + 28, &field, 4);
    for (int i = 0; i < count; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) fail("idle sessions: socket (too many open files? raise ulimit -n)");
        if (loopback) {
            struct sockaddr_in from = {.sin_family = AF_INET};
            from.sin_addr.s_addr = htonl(0x7f010001u + (uint32_t)(i / IDLE_PER_ADDRESS));
            if (bind(fd, (struct sockaddr *)&from, sizeof from) != 0) fail("idle sessions: bind");
        }
        if (connect(fd, (struct sockaddr *)&to, sizeof to) != 0) fail("idle sessions: connect");
        char head[4], body[64];
        if (write(fd, request, sizeof request) != (ssize_t)sizeof request || read_all(fd, head, 4) != 0)
            fail("idle sessions: no ConnectResponse");
        memcpy(&field, head, 4);
        uint32_t length = ntohl(field);
        if (length < 20 || length > sizeof body || read_all(fd, body, length) != 0)
            fail("idle sessions: a bad ConnectResponse");
        fds[i] = fd;
    }
    return fds;
}

static int unloaded(int argc, char **argv) {
    if (argc != 4 && argc != 5) fail("usage: zkload unloaded HOST OPS [IDLE]");
    int ops = atoi(argv[3]), idle = argc == 5 ? atoi(argv[4]) : 0;
    int *idle_fds = idle > 0 ? open_idle(argv[2], idle) : NULL;
    session_t session = {0};
    open_sessions(&session, 1, &argv[2], 1);
    char base[64], path[96], buf[PAYLOAD_BYTES];
    snprintf(base, sizeof base, "/u%d-%llu", (int)getpid(), (unsigned long long)now_ns());
    if (zoo_create(session.zh, base, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0) != ZOK) fail("create the base");
    printf("creates\n");  /* each phase says when it starts (the harness samples server CPU) */
    for (int i = 0; i < ops; i++) {  /* creates first, then reads of what they made */
        snprintf(path, sizeof path, "%s/n%d", base, i);
        uint64_t started = now_ns();
        if (zoo_create(session.zh, path, payload, PAYLOAD_BYTES, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0) != ZOK)
            fail("unloaded create");
        record(&session.latency[CREATE], now_ns() - started);
    }
    printf("reads\n");
    for (int i = 0; i < ops; i++) {
        snprintf(path, sizeof path, "%s/n%d", base, i);
        int len = sizeof buf;
        uint64_t started = now_ns();
        if (zoo_get(session.zh, path, 0, buf, &len, NULL) != ZOK) fail("unloaded getData");
        record(&session.latency[READ], now_ns() - started);
    }
    printf("done\n");
    zookeeper_close(session.zh);
    for (int i = 0; i < idle; i++) close(idle_fds[i]);
    free(idle_fds);
    printf("{");
    print_kind("create", &session.latency[CREATE], 1.0);
    printf(", ");
    print_kind("get", &session.latency[READ], 1.0);
    printf("}\n");
    return 0;
}

int main(int argc, char **argv) {
    memset(payload, 'x', sizeof payload);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 2 && strcmp(argv[1], "load") == 0) return load(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "setup") == 0) return setup(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "unloaded") == 0) return unloaded(argc, argv);
    fail("usage: zkload setup|load|unloaded ...");
    return 1;
}
