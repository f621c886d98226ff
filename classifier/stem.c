/*
 * stem.c - Snowball stemmer plus a set-associative stem cache (see stem.h).
 *
 * A set holds STEM_WAYS words; a new word goes in front and the oldest
 * leaves.  Direct mapping lost a third of the warm lookups to collisions
 * (3000 long comments hold ~27,000 distinct words for 32768 slots); four
 * ways keep them for the same memory.  A set keeps its words' hashes, not
 * the words: the 64-bit hash decides, as in lang.c (two words share one
 * once in 2^64 pairs), and a set of two cache lines holds four words.  The
 * hashes sit side by side, so that SSE2 compares them two at a time.  A
 * set keeps the stems' hashes too, which are their word features' keys
 * (feature.c), so a cached word is hashed once.
 * The sets are on huge pages (table_alloc): with 4 KiB pages the prefetch
 * of a word's set was a TLB miss, 4% of a long comment's time (perf), and
 * the huge pages won each of ten alternated runs by 1-3%.
 */
#include "stem.h"

#include "keymatch.h"
#include "model.h" /* table_alloc: huge pages */

#include <libstemmer.h>
#include <stdlib.h>
#include <string.h>
#define XXH_INLINE_ALL /* stems are short: a call costs more than the hash */
#include <xxhash.h>

#define STEM_SETS 16384u  /* power of two */
#define STEM_WAYS 4u      /* 65536 slots: 2 MiB per language */
#define STEM_WORD_MAX 15u /* longer stems bypass the cache */
#define STEM_SAME 0xffu   /* stem_len of a word that is its own stem */

struct stem_set {
    uint64_t hash[STEM_WAYS]; /* the words' XXH3; 0 = empty */
    uint64_t stem_hash[STEM_WAYS];
    struct {
        uint8_t len; /* STEM_SAME: the word is its own stem */
        char s[STEM_WORD_MAX];
    } stem[STEM_WAYS];
};
_Static_assert(sizeof(struct stem_set) == 128, "a set in two cache lines");

struct stem {
    struct sb_stemmer *sb;
    struct stem_set *sets;
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
    st->sets = table_alloc(STEM_SETS * sizeof(*st->sets));
    if (!st->sets)
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
    free(st->sets);
    free(st);
}

/* The miss path, out of line: the hits stay a short function. */
static const char *__attribute__((noinline))
stem_miss(struct stem *st, struct stem_set *set, const char *word, size_t len,
          uint64_t hash, size_t *out_len, uint64_t *out_hash)
{
    const sb_symbol *r =
        sb_stemmer_stem(st->sb, (const sb_symbol *)word, (int)len);
    if (!r)
        return NULL;
    size_t rlen = (size_t)sb_stemmer_length(st->sb);
    int same = rlen == len && memcmp(r, word, len) == 0;
    uint64_t stem_hash = same ? hash : XXH3_64bits(r, rlen);
    if (set && hash && (same || rlen <= STEM_WORD_MAX)) {
        memmove(&set->hash[1], &set->hash[0],
                (STEM_WAYS - 1) * sizeof(set->hash[0]));
        memmove(&set->stem_hash[1], &set->stem_hash[0],
                (STEM_WAYS - 1) * sizeof(set->stem_hash[0]));
        memmove(&set->stem[1], &set->stem[0],
                (STEM_WAYS - 1) * sizeof(set->stem[0]));
        set->hash[0] = hash;
        set->stem_hash[0] = stem_hash;
        set->stem[0].len = same ? STEM_SAME : (uint8_t)rlen;
        if (!same)
            memcpy(set->stem[0].s, r, rlen);
    }
    *out_len = rlen;
    *out_hash = stem_hash;
    return same ? word : (const char *)r;
}

void
stem_prefetch(const struct stem *st, uint64_t hash)
{
    const struct stem_set *set = &st->sets[hash & (STEM_SETS - 1)];
    __builtin_prefetch(set);
    __builtin_prefetch((const char *)set + 64);
}

const char *
stem_word(struct stem *st, const char *word, size_t len, uint64_t hash,
          size_t *out_len, uint64_t *out_hash)
{
    if (len == 0 || len >= STEM_SAME)
        return stem_miss(st, NULL, word, len, hash, out_len, out_hash);
    struct stem_set *set = &st->sets[hash & (STEM_SETS - 1)];
    unsigned m = keymatch(set->hash, STEM_WAYS, hash);
    if (!m || !hash)
        return stem_miss(st, set, word, len, hash, out_len, out_hash);
    unsigned way = (unsigned)__builtin_ctz(m) / 2;
    *out_hash = set->stem_hash[way];
    if (set->stem[way].len == STEM_SAME) {
        *out_len = len;
        return word;
    }
    *out_len = set->stem[way].len;
    return set->stem[way].s;
}
