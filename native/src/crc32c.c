/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): the SSE4.2 crc32 instruction when the
 * CPU has it (checked once, at load), else slicing-by-8 over tables built at load.
 */
#include "crc32c.h"

#include <string.h>

#define ZK_CRC32C_POLY 0x82F63B78u

static uint32_t zk_crc32c_table[8][256];
static int zk_crc32c_use_hw;

__attribute__((constructor)) static void zk_crc32c_init(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t crc = n;
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (ZK_CRC32C_POLY & (0u - (crc & 1u)));
        zk_crc32c_table[0][n] = crc;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t crc = zk_crc32c_table[0][n];
        for (int t = 1; t < 8; t++) {
            crc = zk_crc32c_table[0][crc & 0xff] ^ (crc >> 8);
            zk_crc32c_table[t][n] = crc;
        }
    }
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    zk_crc32c_use_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#endif
}

static uint64_t zk_crc32c_load64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

uint32_t zk_crc32c_sw(uint32_t crc, const uint8_t *data, size_t len) {
    crc = ~crc;
    while (len > 0 && ((uintptr_t)data & 7u) != 0) {
        crc = zk_crc32c_table[0][(crc ^ *data++) & 0xff] ^ (crc >> 8);
        len--;
    }
    while (len >= 8) {
        /* Little-endian word order, as the reflected CRC consumes bytes low first. */
        uint64_t word = zk_crc32c_load64(data);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        word = __builtin_bswap64(word);
#endif
        word ^= crc;
        crc = zk_crc32c_table[7][word & 0xff] ^ zk_crc32c_table[6][(word >> 8) & 0xff] ^
              zk_crc32c_table[5][(word >> 16) & 0xff] ^ zk_crc32c_table[4][(word >> 24) & 0xff] ^
              zk_crc32c_table[3][(word >> 32) & 0xff] ^ zk_crc32c_table[2][(word >> 40) & 0xff] ^
              zk_crc32c_table[1][(word >> 48) & 0xff] ^ zk_crc32c_table[0][word >> 56];
        data += 8;
        len -= 8;
    }
    while (len > 0) {
        crc = zk_crc32c_table[0][(crc ^ *data++) & 0xff] ^ (crc >> 8);
        len--;
    }
    return ~crc;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <nmmintrin.h>

__attribute__((target("sse4.2"))) static uint32_t zk_crc32c_sse42(uint32_t crc, const uint8_t *data,
                                                                  size_t len) {
    uint64_t c = ~crc;
    while (len > 0 && ((uintptr_t)data & 7u) != 0) {
        c = _mm_crc32_u8((uint32_t)c, *data++);
        len--;
    }
    while (len >= 8) {
        c = _mm_crc32_u64(c, zk_crc32c_load64(data));
        data += 8;
        len -= 8;
    }
    while (len > 0) {
        c = _mm_crc32_u8((uint32_t)c, *data++);
        len--;
    }
    return ~(uint32_t)c;
}
#endif

uint32_t zk_crc32c(uint32_t crc, const uint8_t *data, size_t len) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (zk_crc32c_use_hw) return zk_crc32c_sse42(crc, data, len);
#endif
    return zk_crc32c_sw(crc, data, len);
}

int zk_crc32c_hw(void) { return zk_crc32c_use_hw; }
