/*
 * stem.h - one language's Snowball stemmer with a bounded stem cache
 * (internal to the classifier library).
 *
 * Stemming a word costs ~100 ns; comments repeat a small vocabulary, so a
 * set-associative cache keyed by the word's 64-bit XXH3 hash answers
 * most lookups (the word itself is not compared: see stem.c).  A new word
 * evicts the oldest of its set
 * (bounded memory, no allocation after stem_new).  Not thread-safe: one per
 * analyzer.
 */
#ifndef MODFILTER_STEM_H
#define MODFILTER_STEM_H

#include <stddef.h>
#include <stdint.h>

struct stem;

/* A stemmer for a Snowball language name.  NULL if libstemmer does not know
 * the language or memory is short. */
struct stem *stem_new(const char *snowball_name);
void stem_free(struct stem *st); /* NULL-safe */

/*
 * The stem of word (len bytes, already lower case UTF-8; hash =
 * XXH3_64bits(word, len)).  Returns a pointer valid until the next call on
 * st and sets *out_len and *out_hash (XXH3_64bits of the stem); the bytes
 * are not NUL-terminated.  Returns word itself when the stem is the word.
 * NULL when the stemmer runs out of memory.
 */
const char *stem_word(struct stem *st, const char *word, size_t len,
                      uint64_t hash, size_t *out_len, uint64_t *out_hash);

/* Start loading the cache lines stem_word() will probe for hash: the cache
 * is larger than the CPU's, so a caller stemming many words asks for a
 * word's set a few words before it needs it. */
void stem_prefetch(const struct stem *st, uint64_t hash);

#endif
