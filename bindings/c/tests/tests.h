/* tests.h: the C binding's test runner: checks record failures; the runner prints one line per
 * test and closes with `N passed, N failed`. */
#ifndef ZKPY_TESTS_H
#define ZKPY_TESTS_H
#include <stdio.h>

#include "zkpy.h"

extern int t_failed;        /* set by CHECK in the current test */
extern char t_msg[512];
extern const char *t_connect; /* the live ensemble's connect string */
extern const char *t_python, *t_root; /* the repo's Python (with zkclient) and the repo */

#define CHECK(cond, ...) \
    do { \
        if (!(cond)) { \
            if (!t_failed) { \
                int n_ = snprintf(t_msg, sizeof t_msg, "%s:%d: ", __FILE__, __LINE__); \
                snprintf(t_msg + n_, sizeof t_msg - (size_t)n_, __VA_ARGS__); \
            } \
            t_failed = 1; \
            return; \
        } \
    } while (0)
#define CHECK_RC(rc, want) CHECK((rc) == (want), "%s: got %d (%s), want %d", #rc, (rc), zk_strerror(rc), (want))

typedef struct test_case { const char *name; void (*fn)(void); } test_case;
void run_test(const test_case *t);

/* test_vectors.c */
int vector_tests(const char *path); /* runs one case per vector; returns how many ran */
/* test_live.c */
extern const test_case live_tests[];
/* test_conformance.c: one case per scenario of tests/conformance/scenarios.json; how many ran. */
int conformance_tests(const char *path);
/* The ensemble helper (bindings/testenv.py): kill -9 the node serving an endpoint. */
int kill_endpoint(const char *endpoint);
/* "down" (stopped, not restarted) or "up" the node serving an endpoint. 0 on success. */
int node_command(const char *cmd, const char *endpoint);
/* Waits up to ms for *flag (under no lock: an int written by one thread, polled) to be set. */
int wait_flag(volatile int *flag, int ms);
#endif
