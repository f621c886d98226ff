/*
 * keymatch.h - which keys of a small bucket equal a key (internal to the
 * classifier library).
 *
 * The scoring index and the stem cache keep a bucket's 64-bit keys side by
 * side, 16-byte aligned, and look a key up by comparing them all without a
 * branch per key: which way holds a key is random, and a branch on it
 * mispredicts.  With SSE2 two keys are compared at a time (as four 32-bit
 * halves: SSE2 has no 64-bit compare).
 */
#ifndef MODFILTER_KEYMATCH_H
#define MODFILTER_KEYMATCH_H

#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Bit 2j set where the j-th 64-bit key at keys equals key, for j < n (n
 * even, a constant where the caller's is; keys 16-byte aligned); the other
 * bits are 0.  The first way that matches is __builtin_ctz(m) / 2. */
static inline unsigned
keymatch(const void *keys, unsigned n, uint64_t key)
{
    unsigned m = 0;
#ifdef __SSE2__
    const __m128i k = _mm_set1_epi64x((long long)key);
#pragma GCC unroll 8
    for (unsigned i = 0; i < n / 2; i++) {
        __m128i eq =
            _mm_cmpeq_epi32(_mm_load_si128((const __m128i *)keys + i), k);
        m |= (unsigned)_mm_movemask_ps(_mm_castsi128_ps(eq)) << 4 * i;
    }
    return m & m >> 1 & 0x55555555u; /* both halves of a key */
#else
    for (unsigned j = 0; j < n; j++) {
        uint64_t kj;
        memcpy(&kj, (const char *)keys + 8 * j, sizeof kj);
        m |= (unsigned)(kj == key) << 2 * j;
    }
    return m;
#endif
}

#endif
