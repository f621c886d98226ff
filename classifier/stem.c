/*
 * stem.c - Snowball stemmer plus a direct-mapped stem cache (see stem.h).
 */
#include "stem.h"

#include <libstemmer.h>
#include <stdlib.h>
#include <string.h>

#define STEM_SLOTS 32768u /* power of two: 2 MiB per language, ~94% hits */
#define STEM_WORD_MAX 27u /* longer words bypass the cache; slot = 64 B */

struct stem_slot {
    uint64_t hash;
    uint8_t word_len; /* 0 = empty */
    uint8_t stem_len;
    char word[STEM_WORD_MAX];
    char stem[STEM_WORD_MAX];
};

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
    st->slots = calloc(STEM_SLOTS, sizeof(*st->slots));
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

const char *
stem_word(struct stem *st, const char *word, size_t len, uint64_t hash,
          size_t *out_len)
{
    struct stem_slot *s = NULL;

    if (len > 0 && len <= STEM_WORD_MAX) {
        s = &st->slots[hash & (STEM_SLOTS - 1)];
        if (s->word_len == len && s->hash == hash &&
            memcmp(s->word, word, len) == 0) {
            *out_len = s->stem_len;
            return s->stem;
        }
    }
    const sb_symbol *r =
        sb_stemmer_stem(st->sb, (const sb_symbol *)word, (int)len);
    if (!r)
        return NULL;
    size_t rlen = (size_t)sb_stemmer_length(st->sb);
    if (s && rlen <= STEM_WORD_MAX) {
        s->hash = hash;
        s->word_len = (uint8_t)len;
        s->stem_len = (uint8_t)rlen;
        memcpy(s->word, word, len);
        memcpy(s->stem, r, rlen);
    }
    *out_len = rlen;
    return (const char *)r;
}
