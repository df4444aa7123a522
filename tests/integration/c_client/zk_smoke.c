/* Apache ZooKeeper's own C client (libzookeeper-mt) against a zkpy node's ZooKeeper port:
 * connect, create, get, a watch that fires, and a multi. Prints "ok" and exits 0, or names
 * the step that failed and exits 1.   usage: zk_smoke host:port[,host:port...] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <zookeeper/zookeeper.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int connected = 0, fired = 0;

static void on_event(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
    (void)zh; (void)ctx;
    pthread_mutex_lock(&lock);
    if (type == ZOO_SESSION_EVENT && state == ZOO_CONNECTED_STATE) connected = 1;
    if (type == ZOO_CHANGED_EVENT && path && strcmp(path, "/c-client") == 0) fired = 1;
    pthread_mutex_unlock(&lock);
}

static int wait_flag(int *flag) {
    for (int i = 0; i < 200; i++) {
        pthread_mutex_lock(&lock);
        int v = *flag;
        pthread_mutex_unlock(&lock);
        if (v) return 1;
        usleep(50 * 1000);
    }
    return 0;
}

#define CHECK(cond, what) do { if (!(cond)) { printf("failed: %s\n", what); return 1; } } while (0)

int main(int argc, char **argv) {
    CHECK(argc == 2, "usage: zk_smoke host:port");
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    zhandle_t *zh = zookeeper_init(argv[1], on_event, 10000, 0, NULL, 0);
    CHECK(zh != NULL, "zookeeper_init");
    CHECK(wait_flag(&connected), "connect");
    char path[128];
    int rc = zoo_create(zh, "/c-client", "v1", 2, &ZOO_OPEN_ACL_UNSAFE, 0, path, sizeof path);
    CHECK(rc == ZOK || rc == ZNODEEXISTS, "create");
    char buf[64];
    int len = sizeof buf;
    struct Stat stat;
    rc = zoo_get(zh, "/c-client", 1, buf, &len, &stat);  /* and watch it */
    CHECK(rc == ZOK && len >= 2, "get");
    rc = zoo_set(zh, "/c-client", "v2", 2, -1);
    CHECK(rc == ZOK, "set");
    CHECK(wait_flag(&fired), "the watch event");
    rc = zoo_create(zh, "/c-client/seq-", "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_SEQUENCE, path, sizeof path);
    CHECK(rc == ZOK && strncmp(path, "/c-client/seq-", 14) == 0, "sequential create");
    zoo_op_t ops[2];
    zoo_op_result_t results[2];
    char created[128];
    zoo_create_op_init(&ops[0], "/c-client/multi", "m", 1, &ZOO_OPEN_ACL_UNSAFE, 0, created, sizeof created);
    zoo_check_op_init(&ops[1], "/c-client", 1);
    rc = zoo_multi(zh, 2, ops, results);
    CHECK(rc == ZOK && results[0].err == ZOK && results[1].err == ZOK, "multi");
    zoo_check_op_init(&ops[0], "/c-client", 7);  /* a wrong version: the whole multi fails */
    rc = zoo_multi(zh, 1, ops, results);
    CHECK(rc == ZBADVERSION, "failing multi");
    CHECK(zookeeper_close(zh) == ZOK, "close");
    printf("ok\n");
    return 0;
}
