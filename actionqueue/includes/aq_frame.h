/* WAL v5 record framing: [u32 LE version][u32 LE payload length][u32 LE CRC-32][payload].
 *
 * The one place in C that knows the header layout; both native modules use it.
 */
#ifndef AQ_FRAME_H
#define AQ_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define AQ_WAL_VERSION 5u
#define AQ_HEADER_LEN 12
#define AQ_MIN_RECORD_LEN 13

static inline uint32_t aq_load_u32le(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline void aq_store_u32le(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

#endif
