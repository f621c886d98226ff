/*
 * feature.h - from a token stream to the set of feature keys a comment
 * has (internal to the classifier library).
 *
 * A feature is a family (word, pair, chars, meta, url, ...) and a text; its
 * key is a 64-bit hash of both.  A comment's features are a set: each key
 * appears once (binary presence), which is what the heads count.  The text
 * of a feature is not stored in the model; it is rebuilt from the comment
 * only when a reason needs a name (feat_name).
 */
#ifndef MODFILTER_FEATURES_H
#define MODFILTER_FEATURES_H

#include <stddef.h>
#include <stdint.h>

#include "classifier.h"
#include "text.h"

enum feat_family {
    FEAT_WORD = 0, /* a stemmed word or number */
    FEAT_URL,      /* a whole URL or its host */
    FEAT_EMAIL,
    FEAT_MENTION,
    FEAT_EMOJI,
    FEAT_PAIR,  /* two adjacent tokens */
    FEAT_CHARS, /* a character n-gram of a folded word */
    FEAT_META,  /* a property of the whole comment */
};

/* A key carries its family in its top 3 bits (the model weighs families
 * differently); the low bits stay the hash's. */
static inline uint64_t
feat_key_with_family(uint64_t hash, unsigned family)
{
    return (hash & (UINT64_MAX >> 3)) | ((uint64_t)family << 61);
}

static inline unsigned
feat_key_family(uint64_t key)
{
    return (unsigned)(key >> 61);
}

/* Where a feature came from, so that it can be named later. */
struct feat {
    uint64_t key;
    uint8_t family; /* enum feat_family */
    uint8_t arg;    /* meta: which property; chars: n-gram length in bytes,
                       0 for a bundle (a word standing for its n-grams) */
    uint16_t off;   /* chars: byte offset in the padded surface */
    uint32_t tok;   /* token index (first of a pair); meta: bucket value */
};

/*
 * A comment's features.  Word-level features (words, URLs, pairs, meta)
 * form a set: each key once.  Character n-grams are counted per distinct
 * word: the set holds one bundle per distinct word (family FEAT_CHARS,
 * arg 0, key = the hash of its surface, a key for the scorer's use only:
 * the model holds the n-grams), and feat_word_grams() lists the
 * word's n-grams.  So a word's n-gram evidence depends on the word alone,
 * and a scorer may cache it by surface form (model.c does).
 */
struct feat_set {
    struct feat *v; /* owned; n of them, unique keys */
    size_t n, cap;
    struct feat_slot *slots; /* owned: the keys seen, for dedup */
    size_t n_slots;
    uint32_t gen; /* slots of other generations are empty */
};

/* A key seen in the comment of generation gen: v[i] holds it (half the
 * size of a slot holding the key, so the slots stay in the L1 cache). */
struct feat_slot {
    uint32_t gen;
    uint32_t i;
};

void feat_set_init(struct feat_set *fs);
void feat_set_release(struct feat_set *fs);

/* Extract the features the settings enable from an analysed comment.
 * Replaces the set's contents.  Returns 0, or -1 when out of memory. */
int feat_extract(struct feat_set *fs, const struct clf_settings *s,
                 const struct text_doc *doc);

/* A hash of the folded text: what makes two examples the same. */
uint64_t feat_fold_hash(const struct text_doc *doc);

static inline int
feat_is_bundle(const struct feat *f)
{
    return f->family == FEAT_CHARS && f->arg == 0;
}

/* Most n-grams one word can have (8 lengths over a 50-byte padded word). */
#define FEAT_GRAMS_MAX 400

/* The character n-grams of a bundle's word, in out (FEAT_GRAMS_MAX room);
 * returns how many.  A gram that occurs twice in the word is listed twice. */
unsigned feat_word_grams(const struct clf_settings *s,
                         const struct text_doc *doc, const struct feat *bundle,
                         struct feat *out);

/* "word:stupid", "pair:check_out", "meta:links=2", "chars:idiot" (a
 * bundle: all the n-grams of the word) into buf (truncated to
 * len with a NUL).  doc must be the one the feature was extracted from. */
void feat_name(const struct feat *f, const struct text_doc *doc, char *buf,
               size_t len);

#endif
