/* A background fdatasync with an eventfd to poll for its end: see syncer.h. */
#include "syncer.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct zk_syncer {
    pthread_mutex_t lock;
    pthread_cond_t changed; /* a sync was asked for, was done, or the thread must stop */
    pthread_t thread;
    int event_fd;
    int fd;      /* the file to sync, -1 when none is asked for */
    int started; /* a sync was started and its result not yet taken */
    int done;    /* ... and it is done: result and took_ns hold its outcome */
    int result;
    int stop;
    int64_t took_ns;
};

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *run(void *arg) {
    zk_syncer *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (s->fd < 0 && !s->stop)
            pthread_cond_wait(&s->changed, &s->lock);
        if (s->fd < 0)
            break; /* stopping, and nothing left to sync */
        int fd = s->fd;
        pthread_mutex_unlock(&s->lock);
        int64_t began = now_ns();
        int result = fdatasync(fd) == 0 ? 0 : errno;
        int64_t took = now_ns() - began;
        pthread_mutex_lock(&s->lock);
        s->fd = -1;
        s->done = 1;
        s->result = result;
        s->took_ns = took;
        /* Under the lock, so that a finish that takes this result also drains this count. */
        uint64_t one = 1;
        while (write(s->event_fd, &one, sizeof one) < 0 && errno == EINTR) {
        }
        pthread_cond_broadcast(&s->changed);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

zk_syncer *zk_syncer_new(void) {
    zk_syncer *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->fd = -1;
    s->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->event_fd < 0) {
        int e = errno;
        free(s);
        errno = e;
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->changed, NULL);
    int e = pthread_create(&s->thread, NULL, run, s);
    if (e != 0) {
        close(s->event_fd);
        pthread_cond_destroy(&s->changed);
        pthread_mutex_destroy(&s->lock);
        free(s);
        errno = e;
        return NULL;
    }
    return s;
}

int zk_syncer_fd(const zk_syncer *s) { return s->event_fd; }

int zk_syncer_start(zk_syncer *s, int fd) {
    pthread_mutex_lock(&s->lock);
    if (s->started) {
        pthread_mutex_unlock(&s->lock);
        return ZK_SYNC_BUSY;
    }
    s->started = 1;
    s->done = 0;
    s->fd = fd;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

int zk_syncer_finish(zk_syncer *s, int block, int64_t *took_ns) {
    pthread_mutex_lock(&s->lock);
    if (!s->started) {
        pthread_mutex_unlock(&s->lock);
        return ZK_SYNC_IDLE;
    }
    while (!s->done) {
        if (!block) {
            pthread_mutex_unlock(&s->lock);
            return ZK_SYNC_RUNNING;
        }
        pthread_cond_wait(&s->changed, &s->lock);
    }
    uint64_t count;
    while (read(s->event_fd, &count, sizeof count) < 0 && errno == EINTR) {
    }
    s->started = 0;
    s->done = 0;
    *took_ns = s->took_ns;
    int result = s->result;
    pthread_mutex_unlock(&s->lock);
    return result;
}

void zk_syncer_free(zk_syncer *s) {
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    s->stop = 1;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    close(s->event_fd);
    pthread_cond_destroy(&s->changed);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
