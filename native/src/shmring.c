/* The shared-memory ring: see shmring.h for the layout and the memory-ordering protocol. */
#include "shmring.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#define OFF_GENERATION 24
#define OFF_ABANDONED 32
#define OFF_TAIL 64
#define OFF_HEAD 128
#define OFF_SLEEPING 136
#define GENERATION_MASK 0x7fffffffu

_Static_assert(sizeof(_Atomic uint64_t) == 8, "header words are 8 bytes");

static inline _Atomic uint64_t *word(uint8_t *base, size_t offset) {
    return (_Atomic uint64_t *)(void *)(base + offset);
}

static inline uint64_t record_bytes(uint64_t len) {
    return ZK_SHM_RECORD_HEADER_BYTES + ((len + 7) & ~(uint64_t)7);
}

/* Copies len bytes into the ring at position at, in two pieces when they wrap. */
static void copy_in(uint8_t *data, uint64_t capacity, uint64_t at, const uint8_t *src, uint64_t len) {
    uint64_t offset = at & (capacity - 1);
    uint64_t first = capacity - offset < len ? capacity - offset : len;
    memcpy(data + offset, src, first);
    memcpy(data, src + first, len - first);
}

static void copy_out(const uint8_t *data, uint64_t capacity, uint64_t at, uint8_t *dst, uint64_t len) {
    uint64_t offset = at & (capacity - 1);
    uint64_t first = capacity - offset < len ? capacity - offset : len;
    memcpy(dst, data + offset, first);
    memcpy(dst + first, data, len - first);
}

uint64_t zk_shm_attach(uint8_t *base) {
    return atomic_fetch_add_explicit(word(base, OFF_GENERATION), 1, memory_order_acq_rel) + 1;
}

/* After publishing: wake the reader if, and only if, it said it is going to sleep. */
static int push_wake(uint8_t *base, int wake_fd) {
    atomic_thread_fence(memory_order_seq_cst); /* tail store before the sleeping load */
    _Atomic uint64_t *sleeping = word(base, OFF_SLEEPING);
    if (wake_fd < 0 || !atomic_load_explicit(sleeping, memory_order_relaxed) ||
        !atomic_exchange_explicit(sleeping, 0, memory_order_acq_rel)) {
        return ZK_SHM_OK;
    }
    static const uint8_t one = 1;
    for (;;) {
        ssize_t n = write(wake_fd, &one, 1);
        if (n == 1 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) {
            return ZK_SHM_OK; /* a full pipe already holds a wake-up */
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        return ZK_SHM_READER_GONE;
    }
}

int zk_shm_push(uint8_t *base, uint64_t capacity, uint64_t generation, const uint8_t *payload,
                size_t len, uint32_t flags, int wake_fd) {
    if (atomic_load_explicit(word(base, OFF_ABANDONED), memory_order_acquire)) {
        return ZK_SHM_ABANDONED;
    }
    if (len > capacity - ZK_SHM_RECORD_HEADER_BYTES || len > UINT32_MAX) {
        return ZK_SHM_TOO_BIG;
    }
    uint64_t need = record_bytes(len);
    uint64_t tail = atomic_load_explicit(word(base, OFF_TAIL), memory_order_relaxed);
    uint64_t head = atomic_load_explicit(word(base, OFF_HEAD), memory_order_acquire);
    if (tail - head > capacity || capacity - (tail - head) < need) {
        return ZK_SHM_FULL;
    }
    uint8_t *data = base + ZK_SHM_HEADER_BYTES;
    uint32_t header[2] = {(uint32_t)len,
                          (uint32_t)((generation & GENERATION_MASK) << 1) | (flags & ZK_SHM_FLAG_SPILL)};
    memcpy(data + (tail & (capacity - 1)), header, sizeof header); /* 8-aligned: never wraps */
    copy_in(data, capacity, tail + ZK_SHM_RECORD_HEADER_BYTES, payload, len);
    atomic_store_explicit(word(base, OFF_TAIL), tail + need, memory_order_release);
    return push_wake(base, wake_fd);
}

int zk_shm_pop(uint8_t *base, uint64_t capacity, uint8_t *out, size_t out_cap, uint32_t *lens,
               uint32_t *flags, size_t cap, size_t *count, size_t *skipped) {
    _Atomic uint64_t *head_word = word(base, OFF_HEAD);
    uint64_t head = atomic_load_explicit(head_word, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(word(base, OFF_TAIL), memory_order_acquire);
    /* After tail: every record up to it was stamped with this generation or an older one. */
    uint32_t generation =
        (uint32_t)atomic_load_explicit(word(base, OFF_GENERATION), memory_order_acquire) & GENERATION_MASK;
    const uint8_t *data = base + ZK_SHM_HEADER_BYTES;
    size_t used = 0;
    int status = ZK_SHM_END;
    *count = *skipped = 0;
    if (tail - head > capacity || (tail - head) % 8 != 0) {
        status = ZK_SHM_CORRUPT;
        head = tail;
    }
    while (head != tail) {
        uint32_t header[2];
        memcpy(header, data + (head & (capacity - 1)), sizeof header);
        uint64_t need = record_bytes(header[0]);
        if (need > tail - head) {
            status = ZK_SHM_CORRUPT;
            head = tail;
            break;
        }
        if (header[1] >> 1 != generation) {
            ++*skipped;
            head += need;
            continue;
        }
        if (*count == cap || out_cap - used < header[0]) {
            status = ZK_SHM_MORE;
            break;
        }
        copy_out(data, capacity, head + ZK_SHM_RECORD_HEADER_BYTES, out + used, header[0]);
        used += header[0];
        lens[*count] = header[0];
        flags[*count] = header[1] & ZK_SHM_FLAG_SPILL;
        ++*count;
        head += need;
    }
    atomic_store_explicit(head_word, head, memory_order_release); /* the room is free again */
    return status;
}

int zk_shm_sleep(uint8_t *base) {
    _Atomic uint64_t *sleeping = word(base, OFF_SLEEPING);
    atomic_store_explicit(sleeping, 1, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst); /* sleeping store before the tail load */
    uint64_t tail = atomic_load_explicit(word(base, OFF_TAIL), memory_order_acquire);
    if (tail != atomic_load_explicit(word(base, OFF_HEAD), memory_order_relaxed)) {
        atomic_store_explicit(sleeping, 0, memory_order_relaxed);
        return 1;
    }
    return 0;
}

void zk_shm_wake(uint8_t *base) {
    atomic_store_explicit(word(base, OFF_SLEEPING), 0, memory_order_relaxed);
}

void zk_shm_discard(uint8_t *base) {
    uint64_t tail = atomic_load_explicit(word(base, OFF_TAIL), memory_order_acquire);
    atomic_store_explicit(word(base, OFF_HEAD), tail, memory_order_release);
}

uint64_t zk_shm_pending(uint8_t *base) {
    uint64_t tail = atomic_load_explicit(word(base, OFF_TAIL), memory_order_acquire);
    return tail - atomic_load_explicit(word(base, OFF_HEAD), memory_order_relaxed);
}
