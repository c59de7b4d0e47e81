/* Strict UTF-8 validation, without decoding (for the codec's skim of payloads).
 *
 * Accepts exactly the well-formed byte sequences of Unicode's Table 3-7, which is what
 * CPython's strict UTF-8 decoder (PyUnicode_DecodeUTF8 with errors=NULL) and Rust's
 * str::from_utf8 accept: no overlong forms, no UTF-16 surrogates (U+D800..U+DFFF),
 * nothing above U+10FFFF, no truncated sequences. NUL and the other ASCII controls are
 * valid.
 *
 * Runs of 8 ASCII bytes are stepped over a word at a time; other bytes go through a
 * table-driven automaton without branches (text that mixes scripts would make the
 * branches of a per-sequence check mispredict). The automaton is a "shift DFA": a
 * state is a bit offset (a multiple of 6) and aq_utf8_rows[byte] holds, at each
 * state's offset, the offset of the state that byte leads to from it.
 *
 * Call aq_utf8_init() once before aq_utf8_valid().
 */
#ifndef AQ_UTF8_H
#define AQ_UTF8_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The states, as bit offsets. */
enum {
    AQ_U8_ACCEPT = 0,  /* between characters */
    AQ_U8_REJECT = 6,  /* not UTF-8 (stays) */
    AQ_U8_CONT1 = 12,  /* one continuation byte (80..BF) to go */
    AQ_U8_CONT2 = 18,  /* two to go */
    AQ_U8_E0 = 24,     /* after E0: A0..BF (no overlong form), then one more */
    AQ_U8_ED = 30,     /* after ED: 80..9F (no surrogate), then one more */
    AQ_U8_CONT3 = 36,  /* three to go (after F1..F3) */
    AQ_U8_F0 = 42,     /* after F0: 90..BF (no overlong form), then two more */
    AQ_U8_F4 = 48      /* after F4: 80..8F (nothing above U+10FFFF), then two more */
};

static uint64_t aq_utf8_rows[256];

static inline uint64_t aq_utf8_next(int state, int b) {
    switch (state) {
    case AQ_U8_ACCEPT:
        if (b < 0x80) return AQ_U8_ACCEPT;
        if (b < 0xC2) return AQ_U8_REJECT; /* continuation byte, or overlong C0/C1 */
        if (b < 0xE0) return AQ_U8_CONT1;
        if (b == 0xE0) return AQ_U8_E0;
        if (b == 0xED) return AQ_U8_ED;
        if (b < 0xF0) return AQ_U8_CONT2;
        if (b == 0xF0) return AQ_U8_F0;
        if (b < 0xF4) return AQ_U8_CONT3;
        if (b == 0xF4) return AQ_U8_F4;
        return AQ_U8_REJECT; /* F5..FF */
    case AQ_U8_CONT1: return (b >= 0x80 && b <= 0xBF) ? AQ_U8_ACCEPT : AQ_U8_REJECT;
    case AQ_U8_CONT2: return (b >= 0x80 && b <= 0xBF) ? AQ_U8_CONT1 : AQ_U8_REJECT;
    case AQ_U8_E0: return (b >= 0xA0 && b <= 0xBF) ? AQ_U8_CONT1 : AQ_U8_REJECT;
    case AQ_U8_ED: return (b >= 0x80 && b <= 0x9F) ? AQ_U8_CONT1 : AQ_U8_REJECT;
    case AQ_U8_CONT3: return (b >= 0x80 && b <= 0xBF) ? AQ_U8_CONT2 : AQ_U8_REJECT;
    case AQ_U8_F0: return (b >= 0x90 && b <= 0xBF) ? AQ_U8_CONT2 : AQ_U8_REJECT;
    case AQ_U8_F4: return (b >= 0x80 && b <= 0x8F) ? AQ_U8_CONT2 : AQ_U8_REJECT;
    default: return AQ_U8_REJECT;
    }
}

static void aq_utf8_init(void) {
    int b, state;
    for (b = 0; b < 256; b++) {
        uint64_t row = 0;
        for (state = 0; state <= AQ_U8_F4; state += 6)
            row |= aq_utf8_next(state, b) << state;
        aq_utf8_rows[b] = row;
    }
}

#define AQ_U8_STEP(state, byte) ((aq_utf8_rows[(byte)] >> (state)) & 63)

/* 1 when the n bytes at s are well-formed UTF-8, else 0. The bytes up to ``limit``
 * (>= s + n) may be read, not judged: the last few bytes of the text are then checked
 * for ASCII with one word. */
static inline int aq_utf8_valid(const unsigned char *s, size_t n, const unsigned char *limit) {
    const unsigned char *end = s + n;
    uint64_t word, state = AQ_U8_ACCEPT;
    while (end - s >= 8) {
        memcpy(&word, s, 8);
        if ((word & 0x8080808080808080ULL) || state != AQ_U8_ACCEPT) {
            state = AQ_U8_STEP(state, s[0]);
            state = AQ_U8_STEP(state, s[1]);
            state = AQ_U8_STEP(state, s[2]);
            state = AQ_U8_STEP(state, s[3]);
            state = AQ_U8_STEP(state, s[4]);
            state = AQ_U8_STEP(state, s[5]);
            state = AQ_U8_STEP(state, s[6]);
            state = AQ_U8_STEP(state, s[7]);
        }
        s += 8;
    }
    if (s == end)
        return state == AQ_U8_ACCEPT;
#if (defined(__GNUC__) || defined(__clang__)) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (limit - s >= 8 && state == AQ_U8_ACCEPT) {
        /* 1..7 bytes left: their high bits are the low (end - s) bytes of the word */
        memcpy(&word, s, 8);
        if (!(word & 0x8080808080808080ULL & ((1ULL << (8 * (end - s))) - 1)))
            return 1;
    }
#else
    (void)limit;
#endif
    do {
        state = AQ_U8_STEP(state, *s);
        s++;
    } while (s < end);
    return state == AQ_U8_ACCEPT;
}

#endif
