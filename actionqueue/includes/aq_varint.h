/* Postcard varints: reading one (aq_varint_read, the package's one varint loop: the codec
 * and the export's payload walk call it) and stepping over one without computing its
 * value (aq_varint_skip, for the codec's skim).
 *
 * Both accept the same forms: at most max_bytes bytes, the last
 * byte of a value (the first without its high bit) ends it, and the byte at position
 * max_bytes - 1, if reached, may hold at most last_max.
 */
#ifndef AQ_VARINT_H
#define AQ_VARINT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define AQ_VARINT_OK 0
#define AQ_VARINT_EOF 1
#define AQ_VARINT_BAD 2

/* AQ_VARINT_OK (*out set, *pp moved past the varint), AQ_VARINT_EOF (*pp where the
 * input ran out) or AQ_VARINT_BAD (over max_bytes, or the last byte above last_max). */
static inline int aq_varint_read(const unsigned char **pp, const unsigned char *end, uint64_t *out,
                                 int max_bytes, unsigned int last_max) {
    const unsigned char *p = *pp;
    uint64_t value = 0;
    int shift = 0, i;
    unsigned char b;
    if (p < end && p[0] < 0x80) { /* one byte: the common case */
        *out = p[0];
        *pp = p + 1;
        return AQ_VARINT_OK;
    }
    for (i = 0; i < max_bytes; i++) {
        if (p >= end) {
            *pp = p;
            return AQ_VARINT_EOF;
        }
        b = *p++;
        if (i == max_bytes - 1 && b > last_max)
            return AQ_VARINT_BAD;
        value |= (uint64_t)(b & 0x7F) << shift;
        if (b < 0x80) {
            *out = value;
            *pp = p;
            return AQ_VARINT_OK;
        }
        shift += 7;
    }
    return AQ_VARINT_BAD;
}

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
