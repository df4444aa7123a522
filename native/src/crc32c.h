/* CRC-32C (Castagnoli), the checksum of every txn log record and snapshot.
 *
 * Standard init and final xor: zk_crc32c(0, "123456789", 9) == 0xE3069283, and passing a
 * previous result as `crc` continues it. Uses the SSE4.2 crc32 instruction when the CPU has it.
 */
#ifndef ZK_CRC32C_H
#define ZK_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t zk_crc32c(uint32_t crc, const uint8_t *data, size_t len);
/* The slicing-by-8 table version, always; exported so tests can check it against hardware. */
uint32_t zk_crc32c_sw(uint32_t crc, const uint8_t *data, size_t len);
/* 1 when zk_crc32c runs on the SSE4.2 instruction, else 0. */
int zk_crc32c_hw(void);

#endif
