/* Txn log records: encode a batch, append it to a file in one write, scan a buffer of them.
 *
 * A record is, big-endian: u32 payload_len | u32 crc | u64 zxid | payload, where crc is CRC-32C
 * over the 4 length bytes, the 8 zxid bytes and the payload. Sixteen zero bytes mark the end of
 * written data (the preallocated zero region). C returns codes; native/_clog.py raises.
 */
#ifndef ZK_TXNLOG_H
#define ZK_TXNLOG_H

#include <stddef.h>
#include <stdint.h>

#define ZK_LOG_HEADER_BYTES 16

/* zk_log_scan results. */
#define ZK_LOG_END 0     /* ran to the end of buf exactly, or to an all-zero header */
#define ZK_LOG_TORN 1    /* a header or payload cut short by the end of buf */
#define ZK_LOG_CORRUPT 2 /* crc mismatch or bad length */
#define ZK_LOG_MORE 3    /* the output arrays are full: call again from *end */
#define ZK_LOG_BAD_ARGS (-1)

/* Frames n records (payloads joined back to back, lens[i] bytes each) into out, which holds
 * out_cap bytes. Returns the bytes written, or ZK_LOG_BAD_ARGS when out_cap is too small. */
int64_t zk_log_encode(const uint64_t *zxids, const uint8_t *payloads, const uint32_t *lens, size_t n,
                      uint8_t *out, size_t out_cap);

/* Frames n records and writes them at fd's current position in one write (retried on a short
 * write or EINTR). Returns the bytes written, or -errno. No fsync. */
int64_t zk_log_append(int fd, const uint64_t *zxids, const uint8_t *payloads, const uint32_t *lens,
                      size_t n);

/* Parses records from buf[offset:len) into the arrays (cap entries each): zxid, payload offset
 * in buf, payload length. *count gets the number parsed, *end the offset after the last good one.
 * Payloads longer than payload_bytes_max are corrupt. Returns a ZK_LOG_* status. */
int zk_log_scan(const uint8_t *buf, size_t len, size_t offset, uint32_t payload_bytes_max,
                uint64_t *zxids, uint64_t *offsets, uint32_t *lens, size_t cap, size_t *count,
                size_t *end);

#endif
