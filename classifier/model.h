/*
 * model.h - the inside of struct clf_model, shared by the modules that
 * implement it (model.c: counts, learning, scoring; modelfile.c: the file
 * format; calibrate.c: Platt scaling).  Internal to the library.
 *
 * One feature table serves every head: a slot holds the feature key and,
 * for each head, how many examples of each class contained the feature
 * (binary presence counts).  A head's weight for a feature is
 *   log(c1 + a) - log(c0 + a) - log(T1 + aV) + log(T0 + aV)
 * (multinomial naive Bayes over presence counts, T = total counts of the
 * class, V = the head's vocabulary); features a head never saw are skipped.
 */
#ifndef MODFILTER_MODEL_H
#define MODFILTER_MODEL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "classifier.h"
#include "keymatch.h"

#define RESERVOIR_MAX 4000 /* examples kept per head for calibration */
#define LOGTAB_SIZE 4096   /* log(c + alpha) precomputed for small c */

/* One example kept for calibration: its key and feature keys. */
struct res_example {
    uint64_t ex_key;
    uint64_t *keys; /* malloc'd, n of them */
    uint32_t n;
    uint8_t value;
    uint8_t lang; /* index in settings.languages */
};

/*
 * What a head knows of its examples, over all languages or in one.
 *
 * Data sets in different languages come with different base rates
 * (Davidson, English, 83% abusive; MEX-A3T, Spanish, 29%).  With one pair
 * of class totals, every neutral English word would look abusive by that
 * difference alone.  So a head keeps its class totals (the constant in
 * every feature weight) and its calibration per language too, and uses a
 * language's own once it has enough examples of it; the feature counts
 * stay shared.
 */
struct head_part {
    uint64_t docs[2];              /* examples per class */
    uint64_t total[2];             /* feature occurrences per class */
    double cal_a, cal_b, cal_rate; /* Platt fit; its sample's base rate */
    int calibrated;
};

#define PART_MIN_DOCS 30 /* per class, for a language's own totals */
#define PART_MIN_FIT 15  /* per class in the sample, for its own fit */

struct head {
    char name[CLF_LABEL_MAX];
    double prior;   /* base rate to calibrate for; 0 = the data's */
    uint64_t vocab; /* features with a count in this head */
    struct head_part all;
    struct head_part lang[CLF_MAX_LANGUAGES];
    double ece;              /* of the last fit, over the whole sample */
    uint64_t seen;           /* examples offered to the reservoir */
    struct res_example *res; /* malloc'd, RESERVOIR_MAX */
    uint32_t n_res;
};

/* The part whose class totals a comment in language li uses. */
static inline const struct head_part *
head_totals(const struct head *hd, unsigned li)
{
    const struct head_part *p = &hd->lang[li];
    return p->docs[0] >= PART_MIN_DOCS && p->docs[1] >= PART_MIN_DOCS
               ? p
               : &hd->all;
}

/* The part whose calibration a comment in language li uses. */
static inline const struct head_part *
head_calibration(const struct head *hd, unsigned li)
{
    return hd->lang[li].calibrated ? &hd->lang[li] : &hd->all;
}

/* Open addressing, linear probing; key 0 marks an empty slot. */
struct ftable {
    uint32_t *slots; /* cap * stride words: key (2 words), counts */
    size_t cap, n;
    unsigned stride; /* 2 + 2 * n_labels */
};

/* n features are too many for cap slots past three quarters full.  (At
 * 0.7 the default model's 378,000 features took 2^20 slots, 24 MiB, 36%
 * full; now 2^19, 12 MiB: a load touches 12 MiB less, and training from
 * scratch measured faster, 131,000 -> 164,000 comments/s, docs/SPEED.md.) */
static inline int
ftable_full(size_t n, size_t cap)
{
    return n * 4 > cap * 3;
}

/* The feature table as scoring reads it, built when the counts stop moving
 * (a loaded or cloned model): per feature its key and, per head, its weight
 * without the per-language constant as a float, NaN where the head has
 * fewer than min_df counts.  Features no head knows are left out.
 *
 * Entries sit in buckets of SINDEX_WAYS (one 64-byte line with two heads):
 * the ways' keys, then their weights, nl per way, so that the keys are
 * compared two at a time; twice as many entries as features rather than a
 * power of two: half of ft's size.  A key lives in its home bucket unless that
 * was full, then in the next bucket with room, and the overflow bit of every
 * full bucket it passed is set.  A lookup compares the home bucket's keys
 * without a branch and goes on only past an overflowed bucket (6.7% of the
 * default model's buckets): with linear probing over single slots, 37% of the
 * lookups scoring the long comments went past the home slot, a branch the
 * CPU could not predict. */
#define SINDEX_WAYS 4
struct sindex {
    uint32_t *v;          /* cap / SINDEX_WAYS buckets of SINDEX_WAYS * stride
                             words: keys (0: empty), then weights */
    const uint64_t *over; /* per bucket, 1 = overflowed; in v's allocation */
    const uint32_t *none; /* NaN for every head; in v's allocation */
    size_t cap;           /* entries, a multiple of SINDEX_WAYS; 0: none */
    unsigned stride;      /* 2 + n_labels */
    uint64_t version;     /* the model version it reflects */
};

/* Words of the allocation of an index of cap entries (the entries, the
 * overflow bits, the all-NaN row), and where in it the bits and the row
 * are. */
static inline size_t
sindex_words(size_t cap, unsigned stride)
{
    return cap * stride + 2 * ((cap / SINDEX_WAYS + 63) / 64) + stride;
}

static inline void
sindex_place(struct sindex *ix, size_t cap, unsigned stride)
{
    ix->over = (const uint64_t *)(ix->v + cap * stride);
    ix->none = ix->v + cap * stride + 2 * ((cap / SINDEX_WAYS + 63) / 64);
    ix->cap = cap;
    ix->stride = stride;
}

/* Known examples: key (example_key) -> what EX_VAL packs: the label's
 * value, the language the example was learned in (its index + 1; 0 in a
 * file of version 1, which did not keep it) and how many times it was
 * taught (less one: version 1's values read as taught once).  Learning a
 * known example only counts one more teaching; clf_unteach takes one back
 * and the counts go with the last.  Backward-shift deletion. */
struct exset {
    uint64_t *keys;
    uint32_t *vals;
    size_t cap, n;
};
#define EX_VAL(value, lang1, taught)                                           \
    ((uint32_t)(value) | (uint32_t)(lang1) << 1 | (uint32_t)((taught)-1) << 8)
#define EX_VALUE(v) ((v)&1u)
#define EX_LANG1(v) ((v) >> 1 & 0x7fu)
#define EX_TAUGHT(v) (((v) >> 8) + 1)
#define EX_TAUGHT_MAX (1u << 24)

struct clf_model {
    struct clf_settings settings;
    unsigned n_labels;
    struct head heads[CLF_MAX_LABELS];
    struct ftable ft;
    struct sindex six; /* valid while six.version == version */
    struct exset ex;
    char event_id[64];
    char id[17];
    uint64_t version;           /* changes with every change of counts */
    int scoring_only;           /* a clf_model_clone_scoring: no ft, res */
    double logtab[LOGTAB_SIZE]; /* log(c + alpha) */
};

static inline uint64_t
ftable_slot_key(const uint32_t *slot)
{
    uint64_t key;
    memcpy(&key, slot, sizeof key);
    return key;
}

/* The slot of key, or NULL. */
static inline uint32_t *
ftable_find(const struct ftable *ft, uint64_t key)
{
    if (!ft->cap)
        return NULL;
    key = key ? key : 1; /* 0 marks an empty slot */
    size_t mask = ft->cap - 1;
    for (size_t i = key & mask;; i = (i + 1) & mask) {
        uint32_t *slot = ft->slots + i * ft->stride;
        uint64_t k = ftable_slot_key(slot);
        if (k == key)
            return slot;
        if (!k)
            return NULL;
    }
}

/* Start loading the home slot of key into the cache.  always_inline: GCC 12
 * judges a function whose only statement is a prefetch to have no effect
 * and deletes the calls to it (they were all gone from clf_score). */
#define PREFETCH_INLINE static inline __attribute__((always_inline)) void

PREFETCH_INLINE
ftable_prefetch(const struct ftable *ft, uint64_t key)
{
    if (ft->cap)
        __builtin_prefetch(ft->slots + (key & (ft->cap - 1)) * ft->stride);
}
/* Zeroed memory for a large table of random lookups, 64-byte aligned (2 MiB
 * aligned and hinted for huge pages when large), released with free();
 * NULL when out of memory. */
void *table_alloc(size_t bytes);
/* Zeroed room for `words` slot words, released with free(). */
uint32_t *ftable_slots_alloc(size_t words);
/* The slot of key, inserted with zero counts if new; NULL on ENOMEM. */
uint32_t *ftable_upsert(struct ftable *ft, uint64_t key);

/* The per-head weights of an ft slot with that key, as the index holds
 * them, into f[n_labels]; returns how many heads know the feature. */
unsigned sindex_weights(const struct clf_model *m, uint64_t key,
                        const uint32_t *slot, float *f);
/* (Re)build m->six from m->ft; 0, or -1 on ENOMEM (then there is none). */
int sindex_build(struct clf_model *m);
/* The same into ix (freed first), marked as reflecting version. */
int sindex_build_into(const struct clf_model *m, struct sindex *ix,
                      uint64_t version);
/* Its parts: does some head know the slot's feature (min_df); room in ix
 * (freed first) for known features; add a slot's feature if known. */
int sindex_slot_known(const struct clf_model *m, const uint32_t *slot);
int sindex_alloc(const struct clf_model *m, struct sindex *ix, size_t known);
void sindex_add(const struct clf_model *m, struct sindex *ix,
                const uint32_t *slot);

static inline size_t
sindex_home(const struct sindex *ix, uint64_t key)
{
    return (size_t)(((uint64_t)(uint32_t)key * (ix->cap / SINDEX_WAYS)) >> 32);
}

/* Where way j's key and weights are in a bucket of an index for nl heads. */
static inline uint32_t *
sindex_way_key(uint32_t *bucket, unsigned j)
{
    return bucket + 2 * j;
}

static inline const uint32_t *
sindex_way_weights(const uint32_t *bucket, unsigned nl, unsigned j)
{
    return bucket + 2 * SINDEX_WAYS + j * nl;
}

/* The per-head weights (as float bits) of key in an index for nl heads (nl
 * a constant where the caller's is), or ix->none, NaN for every head.  The
 * way that holds the key is picked by arithmetic: GCC compiled a select
 * per way into branches (callgrind's model: 3.8 M mispredicts in 4 passes
 * over the long comments, nearly one a lookup), and whether a head knows a
 * feature comes in no pattern. */
static inline const uint32_t *
sindex_find(const struct sindex *ix, unsigned nl, uint64_t key)
{
    key = key ? key : 1;
    size_t bucket_words = SINDEX_WAYS * (2 + nl);
    size_t n_buckets = ix->cap / SINDEX_WAYS;
    size_t b = sindex_home(ix, key);
    for (;;) {
        const uint32_t *bucket = ix->v + b * bucket_words;
        unsigned m = keymatch(bucket, SINDEX_WAYS, key);
        /* from none to the weights of the way with key, 0 without one */
        ptrdiff_t d =
            (sindex_way_weights(bucket, nl,
                                (unsigned)__builtin_ctz(m | 0x100u) / 2) -
             ix->none) &
            -(ptrdiff_t)(m != 0);
        /* One branch, taken only for a key not in an overflowed bucket
         * (with `!over || d`, GCC tested each, and whether a bucket has
         * overflowed is random: callgrind's model mispredicted 42 times a
         * long comment) */
        unsigned over = (unsigned)(ix->over[b / 64] >> (b % 64)) & 1;
        if (__builtin_expect(!(over & (m == 0)), 1))
            return ix->none + d;
        b = b + 1 == n_buckets ? 0 : b + 1;
    }
}

PREFETCH_INLINE
sindex_prefetch(const struct sindex *ix, uint64_t key)
{
    __builtin_prefetch(ix->v + sindex_home(ix, key) * SINDEX_WAYS * ix->stride);
}

int exset_put(struct exset *ex, uint64_t key, uint32_t val); /* 0 / -1 */
int exset_reserve(struct exset *ex, size_t n); /* room for n more; 0 / -1 */
uint32_t *exset_get(const struct exset *ex, uint64_t key); /* val or NULL */
void exset_del(struct exset *ex, uint64_t key);

uint64_t model_next_version(void);

/* Add a head; returns its index or -1 (too many labels / ENOMEM). */
int model_add_label(struct clf_model *m, const char *name);
void model_init_logtab(struct clf_model *m);

/* log(c + alpha) */
static inline double
model_logc(const struct clf_model *m, uint32_t c)
{
    return c < LOGTAB_SIZE ? m->logtab[c] : log(c + m->settings.alpha);
}

/* Raw naive-Bayes log-odds of a head for a feature list of a comment in
 * language li, leaving out one example of class `skip_class` containing
 * exactly these keys (skip_class -1: leave out nothing).  Sets *known to
 * the number of known features. */
double model_raw_score(const struct clf_model *m, unsigned h, unsigned li,
                       const uint64_t *keys, size_t n, int skip_class,
                       unsigned *known);

/* How far a head's prior moves the calibrated log-odds from the base rate
 * of the calibration sample (0 without a prior). */
static inline double
model_prior_shift(double prior, double cal_rate)
{
    if (prior > 0 && cal_rate > 0 && cal_rate < 1)
        return log(prior / (1 - prior)) - log(cal_rate / (1 - cal_rate));
    return 0;
}

/* Calibrated probability from a raw score with a calibration and its prior
 * shift (model_prior_shift of the head's prior and p->cal_rate). */
static inline double
model_calibrated(const struct head_part *p, double raw, double shift)
{
    double z = p->cal_a * raw + p->cal_b + shift;
    return 1.0 / (1.0 + exp(-z));
}

/* Index of a language name in the settings (the default's if absent). */
unsigned model_lang_index(const struct clf_model *m, const char *name);

/* Fill err (may be NULL) with a message; returns st. */
enum clf_status model_fail(struct clf_error *err, enum clf_status st,
                           const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Free a head's calibration sample. */
void head_release(struct head *h);

/* calibrate.c */
int model_fit_head(struct clf_model *m, unsigned h);

#endif
