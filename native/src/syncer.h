/* A background fdatasync: one thread per syncer that makes a file durable while the caller's
 * loop goes on (answering peers' heartbeats, taking the next writes), and an eventfd that turns
 * readable when it is done, for that loop to poll. At most one sync runs at a time; the caller
 * starts the next once it has taken the result of the last (group commit, pipelined).
 *
 * The thread holds no Python lock: a finished fdatasync is reported even while the loop is
 * busy in the interpreter. The fd must stay open until the sync started on it is finished
 * (zk_syncer_finish with block set waits for it). C returns codes, and so does native/_csync.py:
 * the txn log (cluster/storage) turns a failed sync into its error.
 */
#ifndef ZK_SYNCER_H
#define ZK_SYNCER_H

#include <stdint.h>

/* zk_syncer_finish results besides 0 (done, the fdatasync succeeded) and a positive errno
 * (done, it failed with that error). */
#define ZK_SYNC_IDLE -1    /* no sync was started since the last result was taken */
#define ZK_SYNC_RUNNING -2 /* the sync is still running (only when not blocking) */
#define ZK_SYNC_BUSY -3    /* zk_syncer_start: a sync is running or its result not yet taken */

typedef struct zk_syncer zk_syncer;

/* A syncer and its thread, or NULL with errno set. */
zk_syncer *zk_syncer_new(void);
/* The eventfd that is readable once a started sync is done (non-blocking, close-on-exec). */
int zk_syncer_fd(const zk_syncer *s);
/* Start an fdatasync of fd on the thread: 0, or ZK_SYNC_BUSY. */
int zk_syncer_start(zk_syncer *s, int fd);
/* Take the result of the started sync, waiting for it when block is set: 0 or an errno when
 * done (took_ns gets how long the fdatasync took), else ZK_SYNC_IDLE or ZK_SYNC_RUNNING. */
int zk_syncer_finish(zk_syncer *s, int block, int64_t *took_ns);
/* Stop the thread (after the running sync, if any) and free everything. */
void zk_syncer_free(zk_syncer *s);

#endif
