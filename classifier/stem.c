/*
 * stem.c - Snowball stemmer plus a set-associative stem cache (see stem.h).
 *
 * A set holds STEM_WAYS words; a new word goes in front and the oldest
 * leaves.  Direct mapping lost a third of the warm lookups to collisions
 * (3000 long comments hold ~27,000 distinct words for 32768 slots); four
 * ways keep them for the same memory.  A slot keeps the word's hash and
 * length, not the word: they decide, as in lang.c (two words of one
 * length share a 64-bit hash once in 2^64 pairs), and a slot of half a
 * cache line holds twice the words.  It keeps the stem's hash too, which
 * is its word feature's key (feature.c), so a cached word is hashed once.
 * The slots are on huge pages (table_alloc): with 4 KiB pages the prefetch
 * of a word's set was a TLB miss, 4% of a long comment's time (perf), and
 * the huge pages won each of ten alternated runs by 1-3%.
 */
#include "stem.h"

#include "model.h" /* table_alloc: huge pages */

#include <libstemmer.h>
#include <stdlib.h>
#include <string.h>
#define XXH_INLINE_ALL /* stems are short: a call costs more than the hash */
#include <xxhash.h>

#define STEM_SETS 16384u  /* power of two */
#define STEM_WAYS 4u      /* 65536 slots: 2 MiB per language */
#define STEM_WORD_MAX 14u /* longer stems bypass the cache; slot = 32 B */
#define STEM_SAME 0xffu   /* stem_len of a word that is its own stem */

struct stem_slot {
    uint64_t hash;
    uint64_t stem_hash;
    uint8_t word_len; /* 0 = empty */
    uint8_t stem_len;
    char stem[STEM_WORD_MAX];
};
_Static_assert(sizeof(struct stem_slot) == 32, "two slots a cache line");

struct stem {
    struct sb_stemmer *sb;
    struct stem_slot *slots;
};

struct stem *
stem_new(const char *snowball_name)
{
    struct stem *st = calloc(1, sizeof(*st));
    if (!st)
        goto fail;
    st->sb = sb_stemmer_new(snowball_name, "UTF_8");
    if (!st->sb)
        goto fail;
    st->slots = table_alloc(STEM_SETS * STEM_WAYS * sizeof(*st->slots));
    if (!st->slots)
        goto fail;
    return st;
fail:
    stem_free(st);
    return NULL;
}

void
stem_free(struct stem *st)
{
    if (!st)
        return;
    if (st->sb)
        sb_stemmer_delete(st->sb);
    free(st->slots);
    free(st);
}

/* The miss path, out of line: the hits stay a short function. */
static const char *__attribute__((noinline))
stem_miss(struct stem *st, struct stem_slot *set, const char *word, size_t len,
          uint64_t hash, size_t *out_len, uint64_t *out_hash)
{
    const sb_symbol *r =
        sb_stemmer_stem(st->sb, (const sb_symbol *)word, (int)len);
    if (!r)
        return NULL;
    size_t rlen = (size_t)sb_stemmer_length(st->sb);
    int same = rlen == len && memcmp(r, word, len) == 0;
    uint64_t stem_hash = same ? hash : XXH3_64bits(r, rlen);
    if (set && (same || rlen <= STEM_WORD_MAX)) {
        memmove(&set[1], &set[0], (STEM_WAYS - 1) * sizeof(*set));
        set[0].hash = hash;
        set[0].stem_hash = stem_hash;
        set[0].word_len = (uint8_t)len;
        set[0].stem_len = same ? STEM_SAME : (uint8_t)rlen;
        memcpy(set[0].stem, r, rlen);
    }
    *out_len = rlen;
    *out_hash = stem_hash;
    return same ? word : (const char *)r;
}

void
stem_prefetch(const struct stem *st, uint64_t hash)
{
    const struct stem_slot *set =
        &st->slots[(hash & (STEM_SETS - 1)) * STEM_WAYS];
    for (unsigned w = 0; w < STEM_WAYS; w += 2)
        __builtin_prefetch(&set[w]);
}

const char *
stem_word(struct stem *st, const char *word, size_t len, uint64_t hash,
          size_t *out_len, uint64_t *out_hash)
{
    if (len == 0 || len >= STEM_SAME)
        return stem_miss(st, NULL, word, len, hash, out_len, out_hash);
    struct stem_slot *set = &st->slots[(hash & (STEM_SETS - 1)) * STEM_WAYS];
    /* The way that holds the word, found without a branch per way: which
     * way it is in is random, and a loop that stopped there mispredicted
     * about 40 times in a long comment (callgrind --branch-sim). */
    unsigned way = STEM_WAYS;
    for (unsigned w = 0; w < STEM_WAYS; w++)
        way = ((set[w].hash ^ hash) | (set[w].word_len ^ len)) == 0 ? w : way;
    if (way == STEM_WAYS)
        return stem_miss(st, set, word, len, hash, out_len, out_hash);
    const struct stem_slot *s = &set[way];
    *out_hash = s->stem_hash;
    if (s->stem_len == STEM_SAME) {
        *out_len = len;
        return word;
    }
    *out_len = s->stem_len;
    return s->stem;
}
