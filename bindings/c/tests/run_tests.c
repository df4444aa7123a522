/* run_tests.c: runs the vector tests, then the live tests against an ensemble that it starts
 * (bindings/testenv.py) and stops, or that ZKPY_CONNECT / ZKPY_DATA_DIR name. Closing line:
 * `N passed, N failed`. A watchdog stops everything if the run hangs. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests.h"

int t_failed;
char t_msg[512];
const char *t_connect;
static int passed, failed;
static char data_dir[512];
static int own_ensemble;
static const char *py, *root;
const char *t_python, *t_root;

void run_test(const test_case *t) {
    t_failed = 0;
    t_msg[0] = 0;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    t->fn();
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    if (t_failed) {
        failed++;
        printf("FAIL %s (%.2fs): %s\n", t->name, s, t_msg);
    } else {
        passed++;
        printf("ok   %s (%.2fs)\n", t->name, s);
    }
    fflush(stdout);
}

int wait_flag(volatile int *flag, int ms) {
    struct timespec step = {0, 5 * 1000 * 1000};
    for (int waited = 0; waited <= ms; waited += 5) {
        if (__atomic_load_n(flag, __ATOMIC_SEQ_CST)) return 1;
        nanosleep(&step, NULL);
    }
    return __atomic_load_n(flag, __ATOMIC_SEQ_CST);
}

static int testenv(const char *cmd, const char *arg, char *out, size_t out_len) {
    char line[2048];
    snprintf(line, sizeof line, "'%s' '%s/bindings/testenv.py' %s '%s' %s%s%s 2>&1", py, root, cmd, data_dir,
             arg ? "'" : "", arg ? arg : "", arg ? "'" : "");
    FILE *p = popen(line, "r");
    if (!p) return -1;
    char buf[4096];
    while (fgets(buf, sizeof buf, p)) {
        if (out && !strncmp(buf, "connect: ", 9)) {
            snprintf(out, out_len, "%s", buf + 9);
            out[strcspn(out, "\n")] = 0;
        } else {
            fputs(buf, stderr);
        }
    }
    return pclose(p);
}

int kill_endpoint(const char *endpoint) { return node_command("kill", endpoint); }

int node_command(const char *cmd, const char *endpoint) {
    if (!data_dir[0]) return -1;
    return testenv(cmd, endpoint, NULL, 0);
}

/* Stops the ensemble this runner started; its folder goes too unless a test failed. */
static void stop_ensemble(void) {
    if (own_ensemble) {
        own_ensemble = 0;
        if (testenv("stop", failed ? NULL : "--remove", NULL, 0) != 0)
            fprintf(stderr, "stopping the ensemble in %s failed\n", data_dir);
    }
}

static void *watchdog(void *arg) {
    int seconds = *(int *)arg;
    struct timespec t = {seconds, 0};
    nanosleep(&t, NULL);
    printf("FAIL watchdog: the run took more than %d s\n", seconds);
    failed++;
    stop_ensemble();
    printf("%d passed, %d failed\n", passed, failed);
    fflush(stdout);
    _exit(1);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    py = getenv("ZKPY_PYTHON") ? getenv("ZKPY_PYTHON") : "python3";
    root = getenv("ZKPY_ROOT") ? getenv("ZKPY_ROOT") : "../..";
    const char *vectors = getenv("ZKPY_VECTORS") ? getenv("ZKPY_VECTORS") : "../../docs/protocol-vectors.json";
    static int limit = 600;
    pthread_t dog;
    pthread_create(&dog, NULL, watchdog, &limit);

    if (vector_tests(vectors) < 45) { /* the file holds 45; fewer means it was not read whole */
        printf("FAIL vectors: expected 45 vectors in %s\n", vectors);
        failed++;
    }

    static char connect[4096];
    if (getenv("ZKPY_CONNECT")) {
        snprintf(connect, sizeof connect, "%s", getenv("ZKPY_CONNECT"));
        if (getenv("ZKPY_DATA_DIR")) snprintf(data_dir, sizeof data_dir, "%s", getenv("ZKPY_DATA_DIR"));
    } else {
        snprintf(data_dir, sizeof data_dir, "/tmp/zkpy-c-XXXXXX");
        if (!mkdtemp(data_dir)) { perror("mkdtemp"); return 1; }
        own_ensemble = 1;
        if (testenv("start", NULL, connect, sizeof connect) != 0 || !connect[0]) {
            printf("FAIL ensemble: could not start one in %s\n", data_dir);
            failed++;
            stop_ensemble();
            printf("%d passed, %d failed\n", passed, failed);
            return 1;
        }
    }
    t_connect = connect;
    t_python = py;
    t_root = root;
    printf("ensemble: %s\n", connect);
    for (const test_case *t = live_tests; t->name; t++) run_test(t);
    const char *scenarios = getenv("ZKPY_SCENARIOS") ? getenv("ZKPY_SCENARIOS") : "../../tests/conformance/scenarios.json";
    if (conformance_tests(scenarios) <= 0) {
        printf("FAIL conformance: no scenarios in %s\n", scenarios);
        failed++;
    }
    stop_ensemble();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
