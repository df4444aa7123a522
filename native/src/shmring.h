/* A single-producer single-consumer ring of messages in shared memory (a file in /dev/shm),
 * one per direction per pair of servers: peer traffic on one host without a socket.
 *
 * Layout (native byte order, the file is never moved between hosts):
 *   0    u64 magic, u64 version, u64 capacity, u64 generation (bumped by each writer that
 *        attaches), u64 abandoned (set by the reader's successor before it replaces the file)
 *   64   u64 tail: bytes the writer has published (its own cache line)
 *   128  u64 head: bytes the reader has consumed, u64 sleeping (the reader is about to block)
 *   4096 capacity bytes of records (capacity a power of two)
 * head and tail only grow; a position is taken modulo capacity. A record is u32 length,
 * u32 stamp = (generation & 0x7fffffff) << 1 | spill flag, the payload, zero padding to 8
 * bytes; a payload may wrap around the end of the ring, a record header never does.
 *
 * The writer publishes tail with a release store after copying the record; the reader loads it
 * with acquire and publishes head with release after copying out, which frees the room.
 * Wake-up: the reader sets `sleeping`, fences, and looks at tail once more before it blocks;
 * the writer publishes tail, fences, and writes one byte to the reader's wake fd only if it
 * swaps `sleeping` from 1 to 0. One of the two sees the other's store: no lost wake-up.
 * Records stamped with another generation than the header's come from a dead writer and are
 * skipped, never delivered. C returns codes; native/_cshm.py raises.
 */
#ifndef ZK_SHMRING_H
#define ZK_SHMRING_H

#include <stddef.h>
#include <stdint.h>

#define ZK_SHM_HEADER_BYTES 4096
#define ZK_SHM_RECORD_HEADER_BYTES 8
#define ZK_SHM_FLAG_SPILL 1

/* zk_shm_push results. */
#define ZK_SHM_OK 0
#define ZK_SHM_FULL 1        /* no room now: the message is dropped (Zab resynchronises) */
#define ZK_SHM_TOO_BIG 2     /* longer than capacity - 8 bytes: it can never fit */
#define ZK_SHM_ABANDONED 3   /* the reader restarted and replaced this ring: attach again */
#define ZK_SHM_READER_GONE 4 /* published, but the wake fd says no reader is there (EPIPE) */
/* zk_shm_pop results. */
#define ZK_SHM_END 0     /* every published record was taken */
#define ZK_SHM_MORE 5    /* the output arrays or buffer are full: call again */
#define ZK_SHM_CORRUPT 6 /* a position or length that cannot be: everything published is dropped */

/* The writer's attach: bumps the generation and returns the new one, which stamps its records. */
uint64_t zk_shm_attach(uint8_t *base);

/* Appends one record (payload of len bytes, flags 0 or ZK_SHM_FLAG_SPILL) and wakes a
 * sleeping reader through wake_fd (skipped when wake_fd < 0). Returns a ZK_SHM_* code. */
int zk_shm_push(uint8_t *base, uint64_t capacity, uint64_t generation, const uint8_t *payload,
                size_t len, uint32_t flags, int wake_fd);

/* Takes the published records of the current generation into out (payloads back to back),
 * lens[i] and flags[i] for each, at most cap records. *count gets the number taken, *skipped
 * the number of stale records dropped. Returns ZK_SHM_END, ZK_SHM_MORE or ZK_SHM_CORRUPT. */
int zk_shm_pop(uint8_t *base, uint64_t capacity, uint8_t *out, size_t out_cap, uint32_t *lens,
               uint32_t *flags, size_t cap, size_t *count, size_t *skipped);

/* The reader is about to block: sets `sleeping`, then returns 1 (and clears it again) if a
 * record was published meanwhile, so the caller must not block; 0 if it may. */
int zk_shm_sleep(uint8_t *base);

/* The reader is awake: the writer need not signal. */
void zk_shm_wake(uint8_t *base);

/* The reader drops every published record (its writer died). */
void zk_shm_discard(uint8_t *base);

/* Bytes published and not yet taken. */
uint64_t zk_shm_pending(uint8_t *base);

#endif
