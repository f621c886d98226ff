/*
 * table.c - the two hash tables of a model: feature counts (ftable) and
 * known examples (exset).  Keys are 64-bit hashes; 0 is remapped to 1 so
 * that 0 can mark an empty slot.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "feature.h"
#include "model.h"

/* The feature table, the scoring index and a scorer's word cache are
 * larger than the CPU's caches and every lookup lands on a random line:
 * with 4 KiB pages nearly each one is also a TLB miss (and in a virtual
 * machine a TLB miss walks two sets of page tables).  Tables of 2 MiB and
 * more are aligned to 2 MiB and marked for transparent huge pages (a hint:
 * without THP they are ordinary memory). */
#define HUGE_PAGE (2u << 20)

void *
table_alloc(size_t bytes)
{
    void *p = NULL;
    size_t align = bytes < HUGE_PAGE ? 64 : HUGE_PAGE;
    bytes = (bytes + align - 1) & ~(align - 1);
    if (posix_memalign(&p, align, bytes ? bytes : align))
        return NULL;
    if (align == HUGE_PAGE)
        madvise(p, bytes, MADV_HUGEPAGE);
    memset(p, 0, bytes);
    return p;
}

uint32_t *
ftable_slots_alloc(size_t words)
{
    return table_alloc(words * sizeof(uint32_t));
}

static uint64_t
fix_key(uint64_t key)
{
    return key ? key : 1;
}

static int
ftable_grow(struct ftable *ft)
{
    size_t cap = ft->cap ? ft->cap * 2 : 1024;
    uint32_t *slots = ftable_slots_alloc(cap * ft->stride);
    if (!slots)
        return -1;
    for (size_t i = 0; i < ft->cap; i++) {
        const uint32_t *old = ft->slots + i * ft->stride;
        uint64_t k = ftable_slot_key(old);
        if (!k)
            continue;
        size_t j = k & (cap - 1);
        while (ftable_slot_key(slots + j * ft->stride))
            j = (j + 1) & (cap - 1);
        memcpy(slots + j * ft->stride, old, ft->stride * sizeof *slots);
    }
    free(ft->slots);
    ft->slots = slots;
    ft->cap = cap;
    return 0;
}

uint32_t *
ftable_upsert(struct ftable *ft, uint64_t key)
{
    uint32_t *slot = ftable_find(ft, key);
    if (slot)
        return slot;
    if (ftable_full(ft->n + 1, ft->cap) && ftable_grow(ft) < 0)
        return NULL;
    key = fix_key(key);
    size_t mask = ft->cap - 1, i = key & mask;
    while (ftable_slot_key(ft->slots + i * ft->stride))
        i = (i + 1) & mask;
    slot = ft->slots + i * ft->stride;
    memcpy(slot, &key, sizeof key);
    ft->n++;
    return slot;
}

unsigned
sindex_weights(const struct clf_model *m, uint64_t key, const uint32_t *slot,
               float *f)
{
    uint32_t min_df = m->settings.min_df ? m->settings.min_df : 1;
    double wf = m->settings.weights[feat_key_family(key)];
    unsigned known = 0;
    for (unsigned h = 0; h < m->n_labels; h++) {
        uint32_t c0 = slot[2 + 2 * h], c1 = slot[3 + 2 * h];
        if (c0 + c1 < min_df) {
            f[h] = NAN;
            continue;
        }
        f[h] = (float)(wf * (model_logc(m, c1) - model_logc(m, c0)));
        known++;
    }
    return known;
}

int
sindex_build(struct clf_model *m)
{
    return sindex_build_into(m, &m->six, m->version);
}

int
sindex_slot_known(const struct clf_model *m, const uint32_t *slot)
{
    uint32_t min_df = m->settings.min_df ? m->settings.min_df : 1;
    for (unsigned h = 0; h < m->n_labels; h++)
        if ((uint64_t)slot[2 + 2 * h] + slot[3 + 2 * h] >= min_df)
            return 1;
    return 0; /* an empty slot's counts are 0 */
}

int
sindex_alloc(const struct clf_model *m, struct sindex *ix, size_t known)
{
    free(ix->v);
    memset(ix, 0, sizeof *ix);
    size_t cap =
        (2 * known + 16 + SINDEX_WAYS - 1) & ~(size_t)(SINDEX_WAYS - 1);
    unsigned stride = 2 + m->n_labels;
    if (!(ix->v = ftable_slots_alloc(sindex_words(cap, stride))))
        return -1;
    sindex_place(ix, cap, stride);
    for (unsigned h = 0; h < m->n_labels; h++) {
        float nan = NAN;
        memcpy((uint32_t *)ix->none + h, &nan, sizeof nan);
    }
    return 0;
}

void
sindex_add(const struct clf_model *m, struct sindex *ix, const uint32_t *slot)
{
    uint64_t key = ftable_slot_key(slot);
    float f[CLF_MAX_LABELS];
    if (!key || !sindex_weights(m, key, slot, f))
        return;
    /* the first free way from the home bucket on, marking each full
     * bucket passed as overflowed */
    size_t n_buckets = ix->cap / SINDEX_WAYS;
    uint64_t *over = (uint64_t *)ix->over;
    for (size_t b = sindex_home(ix, key);; b = b + 1 == n_buckets ? 0 : b + 1) {
        uint32_t *bucket = ix->v + b * SINDEX_WAYS * ix->stride;
        unsigned j = 0;
        while (j < SINDEX_WAYS && ftable_slot_key(sindex_way_key(bucket, j)))
            j++;
        if (j < SINDEX_WAYS) {
            memcpy(sindex_way_key(bucket, j), &key, sizeof key);
            memcpy((uint32_t *)sindex_way_weights(bucket, m->n_labels, j), f,
                   m->n_labels * sizeof *f);
            return;
        }
        over[b / 64] |= (uint64_t)1 << (b % 64);
    }
}

int
sindex_build_into(const struct clf_model *m, struct sindex *ix,
                  uint64_t version)
{
    /* sized for the features some head knows (the table holds the rarer
     * ones too) */
    size_t known = 0;
    for (size_t i = 0; i < m->ft.cap; i++)
        known += sindex_slot_known(m, m->ft.slots + i * m->ft.stride);
    if (sindex_alloc(m, ix, known) < 0)
        return -1;
    /* the index's buckets in a random order: each asked for 16 slots
     * ahead (empty slots too, which cost a useless prefetch) */
    for (size_t i = 0; i < m->ft.cap; i++) {
        if (i + 16 < m->ft.cap)
            sindex_prefetch(
                ix, ftable_slot_key(m->ft.slots + (i + 16) * m->ft.stride));
        sindex_add(m, ix, m->ft.slots + i * m->ft.stride);
    }
    ix->version = version;
    return 0;
}

static size_t
exset_find(const struct exset *ex, uint64_t key)
{
    size_t mask = ex->cap - 1, i = key & mask;
    while (ex->keys[i] && ex->keys[i] != key)
        i = (i + 1) & mask;
    return i;
}

/* Rehash into cap slots (a power of two above ex->n). */
static int
exset_rehash(struct exset *ex, size_t cap)
{
    struct exset nx = {calloc(cap, sizeof *nx.keys),
                       calloc(cap, sizeof *nx.vals), cap, 0};
    if (!nx.keys || !nx.vals) {
        free(nx.keys);
        free(nx.vals);
        return -1;
    }
    for (size_t i = 0; i < ex->cap; i++) {
        if (!ex->keys[i])
            continue;
        size_t j = exset_find(&nx, ex->keys[i]);
        nx.keys[j] = ex->keys[i];
        nx.vals[j] = ex->vals[i];
        nx.n++;
    }
    free(ex->keys);
    free(ex->vals);
    *ex = nx;
    return 0;
}

static int
exset_grow(struct exset *ex)
{
    return exset_rehash(ex, ex->cap ? ex->cap * 2 : 1024);
}

int
exset_reserve(struct exset *ex, size_t n)
{
    size_t cap = ex->cap ? ex->cap : 1024;
    while ((ex->n + n) * 10 > cap * 7)
        cap *= 2;
    return cap == ex->cap ? 0 : exset_rehash(ex, cap);
}

int
exset_put(struct exset *ex, uint64_t key, uint32_t val)
{
    key = fix_key(key);
    if ((ex->n + 1) * 10 > ex->cap * 7 && exset_grow(ex) < 0)
        return -1;
    size_t i = exset_find(ex, key);
    if (!ex->keys[i]) {
        ex->keys[i] = key;
        ex->n++;
    }
    ex->vals[i] = val;
    return 0;
}

uint32_t *
exset_get(const struct exset *ex, uint64_t key)
{
    if (!ex->cap)
        return NULL;
    size_t i = exset_find(ex, fix_key(key));
    return ex->keys[i] ? &ex->vals[i] : NULL;
}

void
exset_del(struct exset *ex, uint64_t key)
{
    if (!ex->cap)
        return;
    size_t mask = ex->cap - 1, i = exset_find(ex, fix_key(key));
    if (!ex->keys[i])
        return;
    ex->keys[i] = 0;
    ex->n--;
    /* Backward shift: move later members of the run into the hole when
     * their home slot does not lie strictly between the hole and them. */
    for (size_t j = (i + 1) & mask; ex->keys[j]; j = (j + 1) & mask) {
        size_t home = ex->keys[j] & mask;
        int between =
            i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (between)
            continue;
        ex->keys[i] = ex->keys[j];
        ex->vals[i] = ex->vals[j];
        ex->keys[j] = 0;
        i = j;
    }
}
