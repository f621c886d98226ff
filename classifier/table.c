/*
 * table.c - the two hash tables of a model: feature counts (ftable) and
 * known examples (exset).  Keys are 64-bit hashes; 0 is remapped to 1 so
 * that 0 can mark an empty slot.
 */
#include <stdlib.h>
#include <string.h>

#include "model.h"

static uint64_t
fix_key(uint64_t key)
{
    return key ? key : 1;
}

static int
ftable_grow(struct ftable *ft)
{
    size_t cap = ft->cap ? ft->cap * 2 : 1024;
    uint32_t *slots = calloc(cap * ft->stride, sizeof *slots);
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
    if ((ft->n + 1) * 10 > ft->cap * 7 && ftable_grow(ft) < 0)
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

static size_t
exset_find(const struct exset *ex, uint64_t key)
{
    size_t mask = ex->cap - 1, i = key & mask;
    while (ex->keys[i] && ex->keys[i] != key)
        i = (i + 1) & mask;
    return i;
}

static int
exset_grow(struct exset *ex)
{
    size_t cap = ex->cap ? ex->cap * 2 : 1024;
    struct exset nx = {calloc(cap, sizeof *nx.keys), calloc(cap, 1), cap, 0};
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

int
exset_put(struct exset *ex, uint64_t key, uint8_t val)
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

int
exset_get(const struct exset *ex, uint64_t key)
{
    if (!ex->cap)
        return -1;
    size_t i = exset_find(ex, fix_key(key));
    return ex->keys[i] ? ex->vals[i] : -1;
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
