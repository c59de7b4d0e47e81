/* Stepping over a postcard varint without computing its value (for the codec's skim).
 *
 * Accepts exactly what the codec's _varint accepts: at most max_bytes bytes, the last
 * byte of a value (the first without its high bit) ends it, and the byte at position
 * max_bytes - 1, if reached, may hold at most last_max.
 */
#ifndef AQ_VARINT_H
#define AQ_VARINT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* 0 and *pp moved past the varint, or -1 (truncated or malformed; *pp unchanged). */
static inline int aq_varint_skip(const unsigned char **pp, const unsigned char *end, int max_bytes,
                                 unsigned int last_max) {
    const unsigned char *p = *pp;
    int i;
    if (p < end && p[0] < 0x80) { /* one byte: the common case */
        *pp = p + 1;
        return 0;
    }
#if (defined(__GNUC__) || defined(__clang__)) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (end - p >= 8) {
        uint64_t word, stop;
        memcpy(&word, p, 8);
        stop = ~word & 0x8080808080808080ULL;
        if (stop) {
            i = (int)(__builtin_ctzll(stop) >> 3); /* the index of the value's last byte */
            if (i >= max_bytes || (i == max_bytes - 1 && p[i] > last_max))
                return -1;
            *pp = p + i + 1;
            return 0;
        }
    }
#endif
    for (i = 0; i < max_bytes; i++) {
        if (p + i >= end)
            return -1;
        if (i == max_bytes - 1 && p[i] > last_max)
            return -1;
        if (p[i] < 0x80) {
            *pp = p + i + 1;
            return 0;
        }
    }
    return -1;
}

#endif
