/*
 * model.c - labels, learning and scoring: the per-comment path of the
 * classifier (analyse -> features -> per-head naive-Bayes sum -> calibrated
 * probability, reasons).
 */
#include <endian.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "feature.h"
#include "model.h"
#include "text.h"

/* A word's n-gram evidence per head, cached by the word's surface hash:
 * entries of [u64 key][float sum per head][u16 known per head], 8-aligned,
 * two to a 64-byte-aligned set (the most recently used first), in
 * WCACHE_BYTES per scorer.  A miss costs a dozen n-gram lookups; a direct-
 * mapped 2 MiB cache missed 3.5 times per long comment when warm, this one
 * about once (callgrind: 6% fewer instructions).  Key 0 marks an empty
 * entry. */
#define WCACHE_BYTES (4u << 20)

struct clf_scorer {
    struct text_analyzer *ta;
    struct text_doc doc;
    struct feat_set fs;
    struct feat *all; /* every feature, bundles expanded (n_all) */
    uint64_t *keys;   /* their keys */
    size_t n_all, all_cap;
    struct feat *grams;     /* FEAT_GRAMS_MAX: one word's n-grams */
    unsigned char *cache;   /* WCACHE_BYTES */
    size_t cache_mask;      /* sets - 1 */
    uint64_t cache_version; /* the model version the cache holds */
    /* The last comment's language, its ISO code and the model's index of
     * it (most comments share a language; finding them costs string
     * comparisons over tables). */
    char lang[CLF_LANG_MAX];
    const char *lang_code;
    unsigned lang_index;
    uint64_t lang_version;       /* of the model lang_index is for; 0: none */
    double base[CLF_MAX_LABELS]; /* lang_base() per head (two logarithms):
                                    the constant of every weight */
    /* Per head, the last prior shift and what it was computed from (most
     * comments share them; it costs two logarithms). */
    struct {
        double prior, cal_rate, shift;
    } shift[CLF_MAX_LABELS];
};

enum clf_status
model_fail(struct clf_error *err, enum clf_status st, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return st;
}

const char *
clf_status_str(enum clf_status st)
{
    switch (st) {
    case CLF_OK:
        return "ok";
    case CLF_ENOMEM:
        return "out of memory";
    case CLF_EIO:
        return "i/o error";
    case CLF_EFORMAT:
        return "not a valid model file";
    case CLF_EVERSION:
        return "unsupported model file version";
    case CLF_EINVAL:
        return "invalid argument";
    case CLF_ELIMIT:
        return "too many labels";
    }
    return "unknown status";
}

void
clf_settings_init(struct clf_settings *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->languages[0], CLF_LANG_MAX, "english");
    snprintf(s->languages[1], CLF_LANG_MAX, "spanish");
    s->n_languages = 2;
    snprintf(s->default_language, CLF_LANG_MAX, "english");
    s->features = CLF_FEAT_ALL;
    s->max_bytes = 8192;
    s->max_tokens = 1024;
    s->chargram_min = 3;
    s->chargram_max = 4;
    s->alpha = 0.5;
    s->min_df = 2;
    for (unsigned i = 0; i < 8; i++)
        s->weights[i] = 1.0;
    s->weights[6] = 0.3; /* chars: see README */
    s->weights[7] = 3.0; /* meta */
    s->min_examples = 50;
    s->min_known = 3;
}

enum clf_status
clf_settings_set_languages(struct clf_settings *s, const char *list,
                           struct clf_error *err)
{
    struct clf_settings t = *s;
    t.n_languages = 0;
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        char name[CLF_LANG_MAX];
        if (n == 0 || n >= sizeof name)
            return model_fail(err, CLF_EINVAL, "bad language list '%s'", list);
        memcpy(name, p, n);
        name[n] = '\0';
        const char *canon = text_language_name(name);
        if (!canon)
            return model_fail(err, CLF_EINVAL, "unknown language '%s'", name);
        if (t.n_languages == CLF_MAX_LANGUAGES)
            return model_fail(err, CLF_EINVAL, "more than %d languages",
                              CLF_MAX_LANGUAGES);
        snprintf(t.languages[t.n_languages++], CLF_LANG_MAX, "%s", canon);
        p += n;
        if (*p == ',')
            p++;
    }
    if (!t.n_languages)
        return model_fail(err, CLF_EINVAL, "empty language list");
    int has_default = 0;
    for (unsigned i = 0; i < t.n_languages; i++)
        has_default |= !strcmp(t.languages[i], t.default_language);
    if (!has_default)
        snprintf(t.default_language, CLF_LANG_MAX, "%s", t.languages[0]);
    *s = t;
    return CLF_OK;
}

enum clf_status
clf_settings_set_default_language(struct clf_settings *s, const char *name,
                                  struct clf_error *err)
{
    const char *canon = text_language_name(name);
    for (unsigned i = 0; canon && i < s->n_languages; i++)
        if (!strcmp(s->languages[i], canon)) {
            snprintf(s->default_language, CLF_LANG_MAX, "%s", canon);
            return CLF_OK;
        }
    return model_fail(err, CLF_EINVAL, "'%s' is not one of the languages",
                      name);
}

enum clf_verdict
clf_label_verdict(double score, int unsure, double review, double reject)
{
    if (score >= reject)
        return CLF_REJECT;
    if (score >= review || unsure)
        return CLF_REVIEW;
    return CLF_ALLOW;
}

const char *
clf_verdict_name(enum clf_verdict v)
{
    static const char *const names[] = {"allow", "review", "reject"};
    return (unsigned)v < 3 ? names[v] : "?";
}

/* ---- model ------------------------------------------------------------ */

/* Versions tell scorers' caches that a model changed; unique in the process
 * (a freed model's address may come back with other counts). */
uint64_t
model_next_version(void)
{
    static _Atomic uint64_t last;
    return ++last;
}

void
model_init_logtab(struct clf_model *m)
{
    for (unsigned c = 0; c < LOGTAB_SIZE; c++)
        m->logtab[c] = log(c + m->settings.alpha);
}

struct clf_model *
clf_model_new(const struct clf_settings *s)
{
    struct clf_model *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->settings = *s;
    m->version = model_next_version();
    m->ft.stride = 2;
    snprintf(m->id, sizeof m->id, "%016llx", 0ULL);
    model_init_logtab(m);
    return m;
}

void
head_release(struct head *h)
{
    for (uint32_t i = 0; i < h->n_res; i++)
        free(h->res[i].keys);
    free(h->res);
    h->res = NULL;
    h->n_res = 0;
}

void
clf_model_free(struct clf_model *m)
{
    if (!m)
        return;
    for (unsigned i = 0; i < m->n_labels; i++)
        head_release(&m->heads[i]);
    free(m->ft.slots);
    free(m->six.v);
    free(m->ex.keys);
    free(m->ex.vals);
    free(m);
}

/* What both kinds of copy share: everything but the tables, which are
 * left empty (version new, so no index is valid yet). */
static struct clf_model *
model_copy_base(const struct clf_model *src)
{
    struct clf_model *m = malloc(sizeof *m);
    if (!m)
        return NULL;
    *m = *src;
    m->version = model_next_version();
    m->ft.slots = NULL;
    memset(&m->six, 0, sizeof m->six);
    m->ex.keys = NULL;
    m->ex.vals = NULL;
    for (unsigned i = 0; i < m->n_labels; i++) {
        m->heads[i].res = NULL;
        m->heads[i].n_res = 0;
    }
    if (src->ex.cap) {
        m->ex.keys = malloc(src->ex.cap * sizeof *m->ex.keys);
        m->ex.vals = malloc(src->ex.cap * sizeof *m->ex.vals);
        if (!m->ex.keys || !m->ex.vals) {
            clf_model_free(m);
            return NULL;
        }
        memcpy(m->ex.keys, src->ex.keys, src->ex.cap * sizeof *m->ex.keys);
        memcpy(m->ex.vals, src->ex.vals, src->ex.cap * sizeof *m->ex.vals);
    }
    return m;
}

/* src's index, copied into m when it reflects src's counts; 0 or -1. */
static int
copy_index(struct clf_model *m, const struct clf_model *src)
{
    const struct sindex *six = &src->six;
    size_t iwords = sindex_words(six->cap, six->stride);
    if (!six->cap || six->version != src->version ||
        !(m->six.v = ftable_slots_alloc(iwords)))
        return -1;
    memcpy(m->six.v, six->v, iwords * sizeof *six->v);
    sindex_place(&m->six, six->cap, six->stride);
    m->six.version = m->version;
    return 0;
}

struct clf_model *
clf_model_clone(const struct clf_model *src)
{
    if (src->scoring_only)
        return clf_model_clone_scoring(src);
    struct clf_model *m = model_copy_base(src);
    if (!m)
        return NULL;
    size_t fwords = src->ft.cap * src->ft.stride;
    if (fwords && !(m->ft.slots = ftable_slots_alloc(fwords)))
        goto fail;
    if (fwords)
        memcpy(m->ft.slots, src->ft.slots, fwords * sizeof *m->ft.slots);
    for (unsigned i = 0; i < m->n_labels; i++) {
        const struct head *sh = &src->heads[i];
        struct head *h = &m->heads[i];
        if (!(h->res = calloc(RESERVOIR_MAX, sizeof *h->res)))
            goto fail;
        for (uint32_t j = 0; j < sh->n_res; j++) {
            struct res_example *e = &h->res[j];
            *e = sh->res[j];
            e->keys = malloc((e->n ? e->n : 1) * sizeof *e->keys);
            if (!e->keys)
                goto fail;
            memcpy(e->keys, sh->res[j].keys, e->n * sizeof *e->keys);
            h->n_res++;
        }
    }
    /* The index: copied when it reflects src's counts, else built (a
     * model without one is still scored, only more slowly). */
    if (copy_index(m, src) < 0)
        sindex_build(m);
    return m;
fail:
    clf_model_free(m);
    return NULL;
}

struct clf_model *
clf_model_clone_scoring(const struct clf_model *src)
{
    struct clf_model *m = model_copy_base(src);
    if (!m)
        return NULL;
    m->scoring_only = 1;
    m->ft = (struct ftable){.stride = src->ft.stride};
    if (copy_index(m, src) < 0 &&
        (src->scoring_only ||
         sindex_build_into(src, &m->six, m->version) < 0)) {
        clf_model_free(m);
        return NULL;
    }
    return m;
}

const struct clf_settings *
clf_model_settings(const struct clf_model *m)
{
    return &m->settings;
}

const char *
clf_model_id(const struct clf_model *m)
{
    return m->id;
}

unsigned
clf_model_label_count(const struct clf_model *m)
{
    return m->n_labels;
}

const char *
clf_model_label_name(const struct clf_model *m, unsigned i)
{
    return i < m->n_labels ? m->heads[i].name : NULL;
}

int
clf_model_label_index(const struct clf_model *m, const char *label)
{
    for (unsigned i = 0; i < m->n_labels; i++)
        if (!strcmp(m->heads[i].name, label))
            return (int)i;
    return -1;
}

void
clf_model_label_examples(const struct clf_model *m, unsigned i, uint64_t *n_neg,
                         uint64_t *n_pos)
{
    *n_neg = i < m->n_labels ? m->heads[i].all.docs[0] : 0;
    *n_pos = i < m->n_labels ? m->heads[i].all.docs[1] : 0;
}

/* Widen every slot of the feature table by one head. */
int
model_add_label(struct clf_model *m, const char *name)
{
    if (m->n_labels == CLF_MAX_LABELS)
        return -1;
    struct head *h = &m->heads[m->n_labels];
    memset(h, 0, sizeof *h);
    if (!(h->res = calloc(RESERVOIR_MAX, sizeof *h->res)))
        return -1;
    unsigned old = m->ft.stride, stride = old + 2;
    if (m->ft.cap) {
        uint32_t *slots = ftable_slots_alloc(m->ft.cap * stride);
        if (!slots) {
            free(h->res);
            h->res = NULL;
            return -1;
        }
        for (size_t i = 0; i < m->ft.cap; i++)
            memcpy(slots + i * stride, m->ft.slots + i * old,
                   old * sizeof *slots);
        free(m->ft.slots);
        m->ft.slots = slots;
    }
    m->ft.stride = stride;
    m->version = model_next_version();
    snprintf(h->name, sizeof h->name, "%s", name);
    h->all.cal_a = 1.0;
    for (unsigned i = 0; i < CLF_MAX_LANGUAGES; i++)
        h->lang[i].cal_a = 1.0;
    h->ece = NAN;
    return (int)m->n_labels++;
}

int
clf_label_valid(const char *name, size_t len)
{
    if (len == 0 || len >= CLF_LABEL_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-'))
            return 0;
    }
    return 1;
}

static int
valid_label(const char *label)
{
    return clf_label_valid(label, strlen(label));
}

enum clf_status
clf_model_set_prior(struct clf_model *m, const char *label, double p,
                    struct clf_error *err)
{
    if (!valid_label(label))
        return model_fail(err, CLF_EINVAL, "bad label name '%s'", label);
    if (p >= 1.0 || isnan(p))
        return model_fail(err, CLF_EINVAL, "prior for %s must be in (0,1)",
                          label);
    int i = clf_model_label_index(m, label);
    if (i < 0 && (i = model_add_label(m, label)) < 0)
        return model_fail(err, CLF_ELIMIT, "cannot add label '%s'", label);
    m->heads[i].prior = p > 0 ? p : 0;
    return CLF_OK;
}

double
clf_model_prior(const struct clf_model *m, unsigned i)
{
    if (i >= m->n_labels)
        return NAN;
    const struct head *h = &m->heads[i];
    if (h->prior > 0)
        return h->prior;
    uint64_t n = h->all.docs[0] + h->all.docs[1];
    return n ? (double)h->all.docs[1] / n : 0.5;
}

const char *
clf_model_event_id(const struct clf_model *m)
{
    return m->event_id;
}

void
clf_model_set_event_id(struct clf_model *m, const char *id)
{
    snprintf(m->event_id, sizeof m->event_id, "%s", id ? id : "");
}

double
clf_model_ece(const struct clf_model *m, unsigned i)
{
    return i < m->n_labels && m->heads[i].all.calibrated ? m->heads[i].ece
                                                         : NAN;
}

/* ---- scoring ---------------------------------------------------------- */

/* The per-head constant of every feature weight: log((T0+aV)/(T1+aV)).
 * A head that knows no feature (every example unlearned) has none: 0, not
 * log 0 - log 0, which the scoring pass would multiply by a word's zero
 * known n-grams into a NaN score. */
static double
head_base(const struct clf_model *m, const struct head *hd, double t0,
          double t1)
{
    double av = m->settings.alpha * (double)hd->vocab;
    if (t0 + av <= 0 || t1 + av <= 0)
        return 0;
    return log(t0 + av) - log(t1 + av);
}

static double
weight(const struct clf_model *m, uint64_t key, uint32_t c0, uint32_t c1,
       double base)
{
    return m->settings.weights[feat_key_family(key)] *
           (model_logc(m, c1) - model_logc(m, c0) + base);
}

unsigned
model_lang_index(const struct clf_model *m, const char *name)
{
    const struct clf_settings *s = &m->settings;
    unsigned dflt = 0;
    for (unsigned i = 0; i < s->n_languages; i++) {
        if (!strcmp(s->languages[i], name))
            return i;
        if (!strcmp(s->languages[i], s->default_language))
            dflt = i;
    }
    return dflt;
}

/* The constant of every feature weight of a comment in language li. */
static double
lang_base(const struct clf_model *m, const struct head *hd, unsigned li)
{
    const struct head_part *p = head_totals(hd, li);
    return head_base(m, hd, (double)p->total[0], (double)p->total[1]);
}

double
model_raw_score(const struct clf_model *m, unsigned h, unsigned li,
                const uint64_t *keys, size_t n, int skip_class, unsigned *known)
{
    const struct head *hd = &m->heads[h];
    const struct head_part *p = head_totals(hd, li);
    double t0 = (double)p->total[0], t1 = (double)p->total[1], sum = 0;
    if (skip_class == 1)
        t1 -= (double)n;
    else if (skip_class == 0)
        t0 -= (double)n;
    double base = head_base(m, hd, t0, t1);
    uint32_t min_df = m->settings.min_df ? m->settings.min_df : 1;
    unsigned k = 0;
    for (size_t i = 0; i < n; i++) {
        const uint32_t *slot = ftable_find(&m->ft, keys[i]);
        if (!slot)
            continue;
        uint32_t c0 = slot[2 + 2 * h], c1 = slot[3 + 2 * h];
        /* The example's own count; absent only from a file written by
         * a modfilter of before 26 Nov, which left the features below
         * min_df out. */
        if (skip_class == 0 && c0)
            c0--;
        else if (skip_class == 1 && c1)
            c1--;
        if ((uint64_t)c0 + c1 < min_df)
            continue;
        sum += weight(m, keys[i], c0, c1, base);
        k++;
    }
    *known = k;
    return sum;
}

struct clf_scorer *
clf_scorer_new(void)
{
    struct clf_scorer *sc = calloc(1, sizeof *sc);
    if (!sc)
        return NULL;
    sc->ta = text_analyzer_new();
    sc->grams = malloc(FEAT_GRAMS_MAX * sizeof *sc->grams);
    sc->cache = table_alloc(WCACHE_BYTES); /* sets in one line each */
    if (!sc->ta || !sc->grams || !sc->cache) {
        clf_scorer_free(sc);
        return NULL;
    }
    feat_set_init(&sc->fs);
    return sc;
}

void
clf_scorer_free(struct clf_scorer *sc)
{
    if (!sc)
        return;
    text_analyzer_free(sc->ta);
    feat_set_release(&sc->fs);
    free(sc->all);
    free(sc->keys);
    free(sc->grams);
    free(sc->cache);
    free(sc);
}

/* Analyse the comment and extract its feature set into sc->fs. */
static int
scorer_features(struct clf_scorer *sc, const struct clf_model *m,
                const char *text, size_t len, const char *lang_hint)
{
    if (text_analyze(sc->ta, &m->settings, text, len, lang_hint, &sc->doc) <
            0 ||
        feat_extract(&sc->fs, &m->settings, &sc->doc) < 0)
        return -1;
    return 0;
}

static int
all_push(struct clf_scorer *sc, const struct feat *f)
{
    if (sc->n_all == sc->all_cap) {
        size_t cap = sc->all_cap ? sc->all_cap * 2 : 1024;
        struct feat *all = realloc(sc->all, cap * sizeof *all);
        uint64_t *keys = realloc(sc->keys, cap * sizeof *keys);
        if (all)
            sc->all = all;
        if (keys)
            sc->keys = keys;
        if (!all || !keys)
            return -1;
        sc->all_cap = cap;
    }
    sc->keys[sc->n_all] = f->key;
    sc->all[sc->n_all++] = *f;
    return 0;
}

/* Every feature of the current comment, bundles expanded into their
 * n-grams, into sc->all and sc->keys (learning and reasons need them). */
static int
scorer_expand(struct clf_scorer *sc, const struct clf_model *m)
{
    sc->n_all = 0;
    for (size_t i = 0; i < sc->fs.n; i++) {
        const struct feat *f = &sc->fs.v[i];
        if (!feat_is_bundle(f)) {
            if (all_push(sc, f) < 0)
                return -1;
            continue;
        }
        unsigned n = feat_word_grams(&m->settings, &sc->doc, f, sc->grams);
        for (unsigned k = 0; k < n; k++)
            if (all_push(sc, &sc->grams[k]) < 0)
                return -1;
    }
    return 0;
}

/* One head's largest contributions so far: the comment's reasons. */
struct top {
    size_t i[CLF_MAX_REASONS];
    double w[CLF_MAX_REASONS]; /* raw log-odds, largest |w| first */
    unsigned n;
    double floor; /* the |w| a newcomer must beat: -1 until the list is full */
};

static void __attribute__((noinline))
top_insert(struct top *t, size_t i, double wi)
{
    unsigned j = t->n < CLF_MAX_REASONS ? t->n++ : CLF_MAX_REASONS - 1;
    while (j > 0 && fabs(t->w[j - 1]) < fabs(wi)) {
        t->w[j] = t->w[j - 1];
        t->i[j] = t->i[j - 1];
        j--;
    }
    t->w[j] = wi;
    t->i[j] = i;
    if (t->n == CLF_MAX_REASONS)
        t->floor = fabs(t->w[CLF_MAX_REASONS - 1]);
}

/* Offer feature i with contribution wi: most are turned away inline. */
static inline void
top_offer(struct top *t, size_t i, double wi)
{
    if (fabs(wi) > t->floor)
        top_insert(t, i, wi);
}

/* The index when it reflects the model's counts (a model that is learning
 * is scored from its counts directly). */
static const struct sindex *
current_index(const struct clf_model *m)
{
    return m->six.cap && m->six.version == m->version ? &m->six : NULL;
}

PREFETCH_INLINE
prefetch(const struct clf_model *m, const struct sindex *ix, uint64_t key)
{
    if (ix)
        sindex_prefetch(ix, key);
    else
        ftable_prefetch(&m->ft, key);
}

/* How many features ahead of the one being scored its memory is asked for:
 * enough to overlap the misses, few enough that the CPU keeps every
 * request (asking for all of a long comment's at once, most were lost). */
#define PREFETCH_AHEAD 16

/* The sizes of a word-cache entry and of a set (two entries in whole
 * lines) for nl heads: constants where nl is. */
static inline size_t
wcache_entry(unsigned nl)
{
    return (8 + 6 * nl + 7) & ~(size_t)7;
}

static inline size_t
wcache_set(unsigned nl)
{
    return (2 * wcache_entry(nl) + 63) & ~(size_t)63;
}

static inline unsigned char *
cache_set(const struct clf_scorer *sc, unsigned nl, uint64_t key)
{
    return sc->cache + (key & sc->cache_mask) * wcache_set(nl);
}

/* The entry of a word (its bundle's key) in the cache, now first in its
 * set; *hit when it holds the word, else it is the set's older entry,
 * evicted for the caller to fill. */
static inline unsigned char *
cache_find(struct clf_scorer *sc, unsigned nl, uint64_t key, int *hit)
{
    size_t entry = wcache_entry(nl);
    unsigned char *first = cache_set(sc, nl, key), *second = first + entry;
    unsigned char tmp[8 + 6 * CLF_MAX_LABELS];
    uint64_t k;
    memcpy(&k, first, 8);
    *hit = k == key;
    if (*hit)
        return first;
    memcpy(&k, second, 8);
    *hit = k == key;
    memcpy(tmp, second, entry);
    memcpy(second, first, entry);
    memcpy(first, tmp, entry);
    return first;
}

/* Ask for the memory of a feature: a word's cache entry, else its slot. */
PREFETCH_INLINE
prefetch_feature(const struct clf_scorer *sc, const struct clf_model *m,
                 const struct sindex *ix, unsigned nl, const struct feat *f)
{
    if (feat_is_bundle(f))
        __builtin_prefetch(cache_set(sc, nl, f->key));
    else
        prefetch(m, ix, f->key);
}

/* The per-head weights of a feature without the per-language constant, as
 * float bits: NaN where the head does not know it (all NaN where no head
 * does), so that the caller has no hit-or-miss branch.  buf
 * (nl words) holds them when they come from the counts. */
static inline __attribute__((always_inline)) const uint32_t *
lookup(const struct clf_model *m, const struct sindex *ix, unsigned nl,
       uint64_t key, uint32_t *buf)
{
    if (__builtin_expect(ix != NULL, 1))
        return sindex_find(ix, nl, key);
    const uint32_t *slot = ftable_find(&m->ft, key);
    float f[CLF_MAX_LABELS];
    if (slot)
        sindex_weights(m, key, slot, f);
    else
        for (unsigned h = 0; h < nl; h++)
            f[h] = NAN;
    memcpy(buf, f, nl * sizeof *f);
    return buf;
}

/* A weight as lookup gives it, and whether the head knows the feature. */
static inline float
weight_bits(const uint32_t *w, unsigned h, unsigned *known)
{
    float f;
    memcpy(&f, w + h, sizeof f);
    *known = !isnan(f);
    return f;
}

/* x where keep is 1, +0 where it is 0, without a branch (GCC compiles
 * `keep ? x : 0.0` to one, mispredicted whenever the heads' knowledge of
 * the features comes in no pattern). */
static inline double
keep_or_zero(double x, unsigned keep)
{
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    bits &= -(uint64_t)keep;
    memcpy(&x, &bits, sizeof x);
    return x;
}

static inline float
keep_or_zerof(float x, unsigned keep)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    bits &= -keep;
    memcpy(&x, &bits, sizeof x);
    return x;
}

/* Per head: the sum of a word's n-gram weights without the per-feature
 * constant (added later, since it moves whenever any count does), and how
 * many of its n-grams the head knows. */
static void
word_evidence(struct clf_scorer *sc, const struct clf_model *m,
              const struct sindex *ix, const struct feat *bundle,
              unsigned char *entry)
{
    unsigned n = feat_word_grams(&m->settings, &sc->doc, bundle, sc->grams);
    float sum[CLF_MAX_LABELS] = {0};
    uint16_t known[CLF_MAX_LABELS] = {0};
    for (unsigned k = 0; k < n; k++)
        prefetch(m, ix, sc->grams[k].key);
    for (unsigned k = 0; k < n; k++) {
        uint32_t buf[CLF_MAX_LABELS];
        const uint32_t *w = lookup(m, ix, m->n_labels, sc->grams[k].key, buf);
        /* Where a head does not know the n-gram, 0 is added (the sum is
         * the same: it never is -0). */
        for (unsigned h = 0; h < m->n_labels; h++) {
            unsigned kn;
            float f = weight_bits(w, h, &kn);
            sum[h] += keep_or_zerof(f, kn);
            known[h] += kn;
        }
    }
    memcpy(entry, &bundle->key, 8);
    memcpy(entry + 8, sum, m->n_labels * sizeof *sum);
    memcpy(entry + 8 + 4 * m->n_labels, known, m->n_labels * sizeof *known);
}

/* What the pass over a comment's features adds up, per head. */
struct tally {
    double sum[CLF_MAX_LABELS]; /* raw log-odds */
    unsigned known[CLF_MAX_LABELS];
    struct top top[CLF_MAX_LABELS];
};

/* Add every feature's weight for nl heads into t, after asking the CPU for
 * the slots it will touch (the index is larger than the cache, and misses
 * overlap only when they are known in advance).  Word-level features are
 * looked up; a word's n-gram evidence comes from the word cache when it
 * can.  always_inline: clf_score calls it with a constant nl for the common
 * head count, so that the per-head loops are unrolled. */
static inline __attribute__((always_inline)) void
score_pass(struct clf_scorer *sc, const struct clf_model *m,
           const struct sindex *ix, unsigned nl, int with_reasons,
           struct tally *t)
{
    /* A family's weight times the constant, as each term needs it. */
    double fbase[8][CLF_MAX_LABELS];
    for (unsigned fam = 0; fam < 8; fam++)
        for (unsigned h = 0; h < nl; h++)
            fbase[fam][h] = m->settings.weights[fam] * sc->base[h];
    const struct feat *v = sc->fs.v;
    size_t n = sc->fs.n;
#ifdef __SSE2__
    /* Two heads (the default model's) are summed as one pair of doubles,
     * in registers: GCC kept t's sums in memory and tested each head's
     * weight for NaN apart. */
    const int pair = nl == 2;
    __m128d sum2 = _mm_setzero_pd();
    __m128i known2 = _mm_setzero_si128(); /* two 64-bit counts */
#else
    const int pair = 0;
#endif
    for (size_t i = 0; i < n && i < PREFETCH_AHEAD; i++)
        prefetch_feature(sc, m, ix, nl, &v[i]);
    for (size_t i = 0; i < n; i++) {
        if (i + PREFETCH_AHEAD < n)
            prefetch_feature(sc, m, ix, nl, &v[i + PREFETCH_AHEAD]);
        double wi[CLF_MAX_LABELS];
        unsigned kn[CLF_MAX_LABELS];
        if (feat_is_bundle(&v[i])) {
            int hit;
            unsigned char *e = cache_find(sc, nl, v[i].key, &hit);
            if (!hit)
                word_evidence(sc, m, ix, &v[i], e);
            float ws[CLF_MAX_LABELS];
            uint16_t wk[CLF_MAX_LABELS];
            memcpy(ws, e + 8, nl * sizeof *ws);
            memcpy(wk, e + 8 + 4 * nl, nl * sizeof *wk);
#ifdef __SSE2__
            if (pair) {
                __m128d w = _mm_cvtps_pd(_mm_castsi128_ps(
                    _mm_loadl_epi64((const __m128i *)(const void *)ws)));
                __m128i k32 = _mm_unpacklo_epi16(
                    _mm_cvtsi32_si128((int)(wk[0] | (uint32_t)wk[1] << 16)),
                    _mm_setzero_si128());
                __m128d x =
                    _mm_add_pd(w, _mm_mul_pd(_mm_loadu_pd(fbase[FEAT_CHARS]),
                                             _mm_cvtepi32_pd(k32)));
                sum2 = _mm_add_pd(sum2, x);
                known2 = _mm_add_epi64(
                    known2, _mm_unpacklo_epi32(k32, _mm_setzero_si128()));
                if (with_reasons)
                    _mm_storeu_pd(wi, x);
            }
#endif
            for (unsigned h = 0; h < nl && !pair; h++) {
                wi[h] = ws[h] + fbase[FEAT_CHARS][h] * wk[h];
                t->sum[h] += wi[h];
                t->known[h] += wk[h];
            }
            for (unsigned h = 0; h < nl && with_reasons; h++)
                if (wk[h])
                    top_offer(&t->top[h], i, wi[h]);
            continue;
        }
        /* No branch on whether a head knows the feature (for the spam
         * head of the default model it does for 43% of them): 0 is added
         * where it does not, which leaves the sum as it was (a sum that
         * starts at +0 never is -0). */
        uint32_t buf[CLF_MAX_LABELS];
        const uint32_t *w = lookup(m, ix, nl, v[i].key, buf);
        const double *fb = fbase[feat_key_family(v[i].key)];
#ifdef __SSE2__
        if (pair) {
            __m128d wd = _mm_cvtps_pd(
                _mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)w)));
            __m128d known = _mm_cmpord_pd(wd, wd); /* all ones: known */
            __m128d x = _mm_add_pd(wd, _mm_loadu_pd(fb));
            sum2 = _mm_add_pd(sum2, _mm_and_pd(x, known));
            known2 = _mm_sub_epi64(known2, _mm_castpd_si128(known));
            if (with_reasons) {
                _mm_storeu_pd(wi, x);
                unsigned bits = (unsigned)_mm_movemask_pd(known);
                kn[0] = bits & 1;
                kn[1] = bits >> 1;
            }
        }
#endif
        for (unsigned h = 0; h < nl && !pair; h++) {
            wi[h] = weight_bits(w, h, &kn[h]) + fb[h];
            t->sum[h] += keep_or_zero(wi[h], kn[h]);
            t->known[h] += kn[h];
        }
        for (unsigned h = 0; h < nl && with_reasons; h++)
            if (kn[h])
                top_offer(&t->top[h], i, wi[h]);
    }
#ifdef __SSE2__
    if (pair) {
        double s[2];
        uint64_t k[2];
        _mm_storeu_pd(s, sum2);
        _mm_storeu_si128((__m128i *)(void *)k, known2);
        for (unsigned h = 0; h < 2; h++) {
            t->sum[h] += s[h];
            t->known[h] += (unsigned)k[h];
        }
    }
#endif
}

enum clf_status
clf_score(struct clf_scorer *sc, const struct clf_model *m, const char *text,
          size_t len, const char *lang_hint, int with_reasons,
          struct clf_result *out)
{
    if (scorer_features(sc, m, text, len, lang_hint) < 0)
        return CLF_ENOMEM;
    out->n_labels = m->n_labels;
    if (sc->lang_version != m->version || strcmp(sc->lang, sc->doc.lang)) {
        memcpy(sc->lang, sc->doc.lang, sizeof sc->lang);
        sc->lang_code = text_language_code(sc->doc.lang);
        sc->lang_index = model_lang_index(m, sc->doc.lang);
        for (unsigned h = 0; h < m->n_labels; h++)
            sc->base[h] = lang_base(m, &m->heads[h], sc->lang_index);
        sc->lang_version = m->version;
    }
    const char *code = sc->lang_code;
    size_t code_len = strnlen(code, sizeof out->lang - 1);
    memcpy(out->lang, code, code_len);
    out->lang[code_len] = '\0';
    out->invalid_bytes = sc->doc.stats.n_invalid;
    out->truncated = (int)sc->doc.stats.truncated;
    if (sc->cache_version != m->version) {
        /* Another model, or this one learned: every cached word is stale. */
        size_t n = 1;
        while (n * 2 * wcache_set(m->n_labels) <= WCACHE_BYTES)
            n *= 2;
        memset(sc->cache, 0, WCACHE_BYTES);
        sc->cache_mask = n - 1;
        sc->cache_version = m->version;
    }
    /* One pass over the features for every head (the default model's two
     * with loops the compiler unrolls). */
    const struct sindex *ix = current_index(m);
    unsigned li = sc->lang_index;
    struct tally t;
    for (unsigned h = 0; h < m->n_labels; h++) {
        t.sum[h] = 0;
        t.known[h] = 0;
        /* Reasons: the largest contributions per head, a word's n-grams
         * counted together as one reason. */
        t.top[h].n = 0;
        t.top[h].floor = -1;
    }
    /* Without reasons, a pass with no test of with_reasons per term (GCC
     * had merged it with the test of a head's knowledge into a branch
     * mispredicted 2 M times in callgrind's model). */
    if (m->n_labels == 2 && !with_reasons)
        score_pass(sc, m, ix, 2, 0, &t);
    else if (m->n_labels == 2)
        score_pass(sc, m, ix, 2, 1, &t);
    else
        score_pass(sc, m, ix, m->n_labels, with_reasons, &t);
    const double *sum = t.sum;
    const unsigned *known = t.known;
    const struct top *top = t.top;
    for (unsigned h = 0; h < m->n_labels; h++) {
        const struct head *hd = &m->heads[h];
        struct clf_label_result *r = &out->labels[h];
        r->label = hd->name;
        const struct head_part *cal = head_calibration(hd, li);
        if (sc->shift[h].prior != hd->prior ||
            sc->shift[h].cal_rate != cal->cal_rate) {
            sc->shift[h].prior = hd->prior;
            sc->shift[h].cal_rate = cal->cal_rate;
            sc->shift[h].shift = model_prior_shift(hd->prior, cal->cal_rate);
        }
        r->score = model_calibrated(cal, sum[h], sc->shift[h].shift);
        r->unsure =
            hd->all.docs[0] + hd->all.docs[1] < m->settings.min_examples ||
            hd->all.docs[0] == 0 || hd->all.docs[1] == 0 ||
            known[h] < m->settings.min_known || sc->doc.n_tokens == 0;
        double a = cal->cal_a;
        r->n_reasons = top[h].n;
        for (unsigned j = 0; j < top[h].n; j++) {
            feat_name(&sc->fs.v[top[h].i[j]], &sc->doc, r->reasons[j].feature,
                      sizeof r->reasons[j].feature);
            r->reasons[j].weight = a * top[h].w[j];
        }
    }
    return CLF_OK;
}

/* ---- learning --------------------------------------------------------- */

/* An example is its folded text, its label and the label's value. */
static uint64_t
example_key(const struct clf_scorer *sc, const char *label, int value)
{
    uint64_t fold = feat_fold_hash(&sc->doc);
    return XXH3_64bits_withSeed(label, strlen(label), fold ^ (uint64_t)value);
}

/* Add (dir = +1) or remove (dir = -1) the counts of the current
 * comment's first n keys: how many were done (fewer than n only when an
 * add ran out of memory). */
static size_t
apply_keys(struct clf_model *m, const struct clf_scorer *sc, unsigned h,
           int value, int dir, size_t n)
{
    struct head *hd = &m->heads[h];
    for (size_t i = 0; i < n; i++) {
        uint32_t *slot = dir > 0 ? ftable_upsert(&m->ft, sc->keys[i])
                                 : ftable_find(&m->ft, sc->keys[i]);
        if (!slot) {
            if (dir > 0)
                return i;
            continue;
        }
        uint32_t *c = &slot[2 + 2 * h];
        uint32_t before = c[0] + c[1];
        if (dir > 0)
            c[value]++;
        else if (c[value])
            c[value]--;
        uint32_t after = c[0] + c[1];
        if (!before && after)
            hd->vocab++;
        else if (before && !after)
            hd->vocab--;
    }
    return n;
}

/* Add (dir = +1) or remove (dir = -1) the current comment's counts; an
 * add that runs out of memory takes back what it added and returns -1. */
static int
apply_counts(struct clf_model *m, const struct clf_scorer *sc, unsigned h,
             int value, int dir)
{
    struct head *hd = &m->heads[h];
    m->version = model_next_version();
    size_t done = apply_keys(m, sc, h, value, dir, sc->n_all);
    if (done < sc->n_all) {
        apply_keys(m, sc, h, value, -1, done);
        return -1;
    }
    struct head_part *parts[2] = {&hd->all,
                                  &hd->lang[model_lang_index(m, sc->doc.lang)]};
    for (int k = 0; k < 2; k++) {
        struct head_part *p = parts[k];
        if (dir > 0) {
            p->docs[value]++;
            p->total[value] += sc->n_all;
        } else {
            p->docs[value] -= p->docs[value] ? 1 : 0;
            p->total[value] -=
                p->total[value] >= sc->n_all ? sc->n_all : p->total[value];
        }
    }
    return 0;
}

/* Offer the example to the head's calibration reservoir (deterministic:
 * the replacement slot is drawn from the example's own key). */
static void
reservoir_offer(const struct clf_model *m, struct head *hd,
                const struct clf_scorer *sc, uint64_t ex_key, int value)
{
    uint64_t seen = hd->seen;
    uint32_t slot;
    if (seen == UINT64_MAX)
        return;
    hd->seen++;
    if (seen < RESERVOIR_MAX && hd->n_res < RESERVOIR_MAX) {
        slot = hd->n_res;
    } else {
        uint64_t le = htole64(ex_key); /* the same sample on any host */
        uint64_t j = XXH3_64bits(&le, sizeof le) % (seen + 1);
        if (j >= RESERVOIR_MAX)
            return;
        /* Unlearning (reservoir_remove) leaves room at the end, and what
         * lies past n_res is stale (moved away or freed): fill the room
         * instead, so res[0, n_res) stays exactly the live entries. */
        slot = j < hd->n_res ? (uint32_t)j : hd->n_res;
    }
    uint64_t *keys = malloc((sc->n_all ? sc->n_all : 1) * sizeof *keys);
    if (!keys)
        return; /* calibration sample one smaller; counts are exact */
    memcpy(keys, sc->keys, sc->n_all * sizeof *keys);
    struct res_example *e = &hd->res[slot];
    if (slot < hd->n_res)
        free(e->keys);
    else
        hd->n_res++;
    *e = (struct res_example){ex_key, keys, (uint32_t)sc->n_all, (uint8_t)value,
                              (uint8_t)model_lang_index(m, sc->doc.lang)};
}

/* Every entry of the example goes: a snapshot written before 26 Nov may
 * hold one twice (reservoir_offer's old slot choice). */
static void
reservoir_remove(struct head *hd, uint64_t ex_key)
{
    for (uint32_t i = 0; i < hd->n_res;) {
        if (hd->res[i].ex_key != ex_key) {
            i++;
            continue;
        }
        free(hd->res[i].keys);
        hd->res[i] = hd->res[--hd->n_res];
    }
}

static enum clf_status
learn_check(struct clf_model *m, const char *label, int value, int create,
            int *h, struct clf_error *err)
{
    if (m->scoring_only)
        return model_fail(err, CLF_EINVAL, "a scoring copy cannot learn");
    if (value != 0 && value != 1)
        return model_fail(err, CLF_EINVAL, "label value must be 0 or 1");
    if (!valid_label(label))
        return model_fail(err, CLF_EINVAL,
                          "bad label name '%s' (a-z, 0-9, _ and -, at most %d)",
                          label, CLF_LABEL_MAX - 1);
    *h = clf_model_label_index(m, label);
    if (*h < 0 && create && (*h = model_add_label(m, label)) < 0)
        return model_fail(err, CLF_ELIMIT, "cannot add label '%s' (at most %d)",
                          label, CLF_MAX_LABELS);
    return CLF_OK;
}

/* Check the arguments, find (or create) the head, analyse the text: what
 * learning and unlearning share.  *h is -1 for an unknown label when
 * create is 0. */
static enum clf_status
learn_prepare(struct clf_scorer *sc, struct clf_model *m, const char *text,
              size_t len, const char *lang_hint, const char *label, int value,
              int create, int *h, uint64_t *ex_key, struct clf_error *err)
{
    enum clf_status st = learn_check(m, label, value, create, h, err);
    if (st || *h < 0)
        return st;
    if (scorer_features(sc, m, text, len, lang_hint) < 0 ||
        scorer_expand(sc, m) < 0)
        return model_fail(err, CLF_ENOMEM, "out of memory");
    *ex_key = example_key(sc, label, value);
    return CLF_OK;
}

enum clf_status
clf_learn(struct clf_scorer *sc, struct clf_model *m, const char *text,
          size_t len, const char *lang_hint, const char *label, int value,
          enum clf_learn_outcome *outcome, struct clf_error *err)
{
    int h;
    uint64_t ex_key;
    enum clf_status st = learn_prepare(sc, m, text, len, lang_hint, label,
                                       value, 1, &h, &ex_key, err);
    if (st)
        return st;
    uint32_t *known = exset_get(&m->ex, ex_key);
    if (known) {
        if (EX_TAUGHT(*known) < EX_TAUGHT_MAX)
            *known += 1u << 8;
        *outcome = CLF_DUPLICATE;
        return CLF_OK;
    }
    unsigned lang1 = model_lang_index(m, sc->doc.lang) + 1;
    if (exset_put(&m->ex, ex_key, EX_VAL(value, lang1, 1)) < 0)
        return model_fail(err, CLF_ENOMEM, "out of memory");
    if (apply_counts(m, sc, (unsigned)h, value, +1) < 0) {
        exset_del(&m->ex, ex_key);
        return model_fail(err, CLF_ENOMEM, "out of memory");
    }
    reservoir_offer(m, &m->heads[h], sc, ex_key, value);
    *outcome = CLF_LEARNED;
    return CLF_OK;
}

int
clf_known(struct clf_scorer *sc, const struct clf_model *m, const char *text,
          size_t len, const char *lang_hint, const char *label, int value)
{
    return clf_known_id(sc, m, text, len, lang_hint, label, value, NULL) > 0;
}

int
clf_known_id(struct clf_scorer *sc, const struct clf_model *m, const char *text,
             size_t len, const char *lang_hint, const char *label, int value,
             uint64_t *id)
{
    if ((value != 0 && value != 1) ||
        text_analyze(sc->ta, &m->settings, text, len, lang_hint, &sc->doc) < 0)
        return -1;
    uint64_t key = example_key(sc, label, value);
    if (id)
        *id = key;
    return clf_model_label_index(m, label) >= 0 && exset_get(&m->ex, key);
}

/* Take back one teaching of the example (all of them when all is set);
 * the counts go with the last, from the example's features in the
 * language it was learned in. */
static enum clf_status
unlearn(struct clf_scorer *sc, struct clf_model *m, const char *text,
        size_t len, const char *lang_hint, const char *label, int value,
        int all, enum clf_learn_outcome *outcome, struct clf_error *err)
{
    int h;
    uint64_t ex_key = 0;
    enum clf_status st = learn_prepare(sc, m, text, len, lang_hint, label,
                                       value, 0, &h, &ex_key, err);
    *outcome = CLF_UNKNOWN;
    uint32_t *known = st || h < 0 ? NULL : exset_get(&m->ex, ex_key);
    if (!known)
        return st;
    if (!all && EX_TAUGHT(*known) > 1) {
        *known -= 1u << 8;
        *outcome = CLF_FORGOTTEN;
        return CLF_OK;
    }
    unsigned lang1 = EX_LANG1(*known);
    if (lang1 && lang1 - 1 != model_lang_index(m, sc->doc.lang) &&
        (scorer_features(sc, m, text, len, m->settings.languages[lang1 - 1]) <
             0 ||
         scorer_expand(sc, m) < 0))
        return model_fail(err, CLF_ENOMEM, "out of memory");
    exset_del(&m->ex, ex_key);
    apply_counts(m, sc, (unsigned)h, value, -1);
    *outcome = CLF_FORGOTTEN;
    reservoir_remove(&m->heads[h], ex_key);
    return CLF_OK;
}

enum clf_status
clf_unlearn(struct clf_scorer *sc, struct clf_model *m, const char *text,
            size_t len, const char *lang_hint, const char *label, int value,
            enum clf_learn_outcome *outcome, struct clf_error *err)
{
    return unlearn(sc, m, text, len, lang_hint, label, value, 1, outcome, err);
}

enum clf_status
clf_unteach(struct clf_scorer *sc, struct clf_model *m, const char *text,
            size_t len, const char *lang_hint, const char *label, int value,
            enum clf_learn_outcome *outcome, struct clf_error *err)
{
    return unlearn(sc, m, text, len, lang_hint, label, value, 0, outcome, err);
}
