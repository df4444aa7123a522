/* Txn log records in C: batch framing, one-write append and the replay scan (see txnlog.h). */
#include "txnlog.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"

static void zk_log_put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void zk_log_put64(uint8_t *p, uint64_t v) {
    zk_log_put32(p, (uint32_t)(v >> 32));
    zk_log_put32(p + 4, (uint32_t)v);
}

static uint32_t zk_log_get32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static uint64_t zk_log_get64(const uint8_t *p) {
    return ((uint64_t)zk_log_get32(p) << 32) | zk_log_get32(p + 4);
}

/* The record crc: length bytes, zxid bytes, payload. */
static uint32_t zk_log_record_crc(const uint8_t *header, const uint8_t *payload, uint32_t len) {
    uint32_t crc = zk_crc32c(0, header, 4);
    crc = zk_crc32c(crc, header + 8, 8);
    return zk_crc32c(crc, payload, len);
}

static size_t zk_log_encoded_bytes(const uint32_t *lens, size_t n) {
    size_t total = n * ZK_LOG_HEADER_BYTES;
    for (size_t i = 0; i < n; i++) total += lens[i];
    return total;
}

int64_t zk_log_encode(const uint64_t *zxids, const uint8_t *payloads, const uint32_t *lens, size_t n,
                      uint8_t *out, size_t out_cap) {
    size_t total = zk_log_encoded_bytes(lens, n);
    if (total > out_cap || total > (size_t)INT64_MAX) return ZK_LOG_BAD_ARGS;
    uint8_t *p = out;
    for (size_t i = 0; i < n; i++) {
        zk_log_put32(p, lens[i]);
        zk_log_put64(p + 8, zxids[i]);
        memcpy(p + ZK_LOG_HEADER_BYTES, payloads, lens[i]);
        zk_log_put32(p + 4, zk_log_record_crc(p, p + ZK_LOG_HEADER_BYTES, lens[i]));
        p += ZK_LOG_HEADER_BYTES + lens[i];
        payloads += lens[i];
    }
    return (int64_t)total;
}

int64_t zk_log_append(int fd, const uint64_t *zxids, const uint8_t *payloads, const uint32_t *lens,
                      size_t n) {
    size_t total = zk_log_encoded_bytes(lens, n);
    if (total == 0) return 0;
    uint8_t *buf = malloc(total);
    if (buf == NULL) return -ENOMEM;
    int64_t encoded = zk_log_encode(zxids, payloads, lens, n, buf, total);
    if (encoded < 0) {
        free(buf);
        return -EINVAL;
    }
    size_t done = 0;
    while (done < total) {
        ssize_t w = write(fd, buf + done, total - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int err = w < 0 ? errno : EIO;
            free(buf);
            return -err;
        }
        done += (size_t)w;
    }
    free(buf);
    return (int64_t)total;
}

static int zk_log_all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0) return 0;
    return 1;
}

int zk_log_scan(const uint8_t *buf, size_t len, size_t offset, uint32_t payload_bytes_max,
                uint64_t *zxids, uint64_t *offsets, uint32_t *lens, size_t cap, size_t *count,
                size_t *end) {
    *count = 0;
    *end = offset;
    if (offset > len) return ZK_LOG_BAD_ARGS;
    size_t p = offset;
    for (;;) {
        *end = p;
        if (p == len) return ZK_LOG_END;
        if (*count == cap) return ZK_LOG_MORE;
        if (len - p < ZK_LOG_HEADER_BYTES) return ZK_LOG_TORN;
        const uint8_t *h = buf + p;
        uint32_t plen = zk_log_get32(h);
        if (plen == 0) return zk_log_all_zero(h, ZK_LOG_HEADER_BYTES) ? ZK_LOG_END : ZK_LOG_CORRUPT;
        if (plen > payload_bytes_max) return ZK_LOG_CORRUPT;
        if (len - p - ZK_LOG_HEADER_BYTES < plen) return ZK_LOG_TORN;
        if (zk_log_record_crc(h, h + ZK_LOG_HEADER_BYTES, plen) != zk_log_get32(h + 4))
            return ZK_LOG_CORRUPT;
        zxids[*count] = zk_log_get64(h + 8);
        offsets[*count] = p + ZK_LOG_HEADER_BYTES;
        lens[*count] = plen;
        (*count)++;
        p += ZK_LOG_HEADER_BYTES + plen;
    }
}
