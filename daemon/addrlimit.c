/*
 * addrlimit.c - open connections per client address, shared by every
 * worker: limits.max_connections_per_addr.  Contract in modfilterd.h.
 *
 * A chained hash table of (address, count) under one mutex; the critical
 * section is a lookup and an increment, once per connection at accept and
 * once at close.  An entry lives while its address has a connection open,
 * so there are never more entries than tracked connections, which
 * limits.max_connections bounds.  The hash is seeded per table: an
 * attacker who picks addresses (IPv6) cannot aim them at one chain.
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <xxhash.h>

#include "modfilterd.h"

#define ADDRLIMIT_BUCKETS 4096 /* a power of two */

struct addrlimit_entry {
    struct addrlimit_entry *next;
    struct addrlimit_key key;
    unsigned long count;
};

struct addrlimit {
    pthread_mutex_t mu;
    unsigned long max;
    uint64_t seed;
    struct addrlimit_entry *buckets[ADDRLIMIT_BUCKETS];
};

struct addrlimit *
addrlimit_new(unsigned long max_per_addr)
{
    struct addrlimit *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    pthread_mutex_init(&t->mu, NULL);
    t->max = max_per_addr;
    if (getrandom(&t->seed, sizeof(t->seed), 0) != sizeof(t->seed))
        t->seed = (uint64_t)(uintptr_t)t ^ (uint64_t)util_now_ms();
    return t;
}

void
addrlimit_free(struct addrlimit *t)
{
    size_t i;

    if (t == NULL)
        return;
    for (i = 0; i < ADDRLIMIT_BUCKETS; i++)
        while (t->buckets[i] != NULL) {
            struct addrlimit_entry *e = t->buckets[i];

            t->buckets[i] = e->next;
            free(e);
        }
    pthread_mutex_destroy(&t->mu);
    free(t);
}

int
addrlimit_key_of(const struct sockaddr *sa, struct addrlimit_key *key)
{
    memset(key, 0, sizeof(*key));
    if (sa == NULL)
        return -1;
    if (sa->sa_family == AF_INET) {
        key->family = AF_INET;
        memcpy(key->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a =
            &((const struct sockaddr_in6 *)sa)->sin6_addr;

        /* ::ffff:a.b.c.d is the IPv4 client a.b.c.d on a dual-stack
         * socket: one count for both spellings. */
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            key->family = AF_INET;
            memcpy(key->addr, a->s6_addr + 12, 4);
        } else {
            key->family = AF_INET6;
            memcpy(key->addr, a->s6_addr, 16);
        }
        return 0;
    }
    return -1; /* AF_UNIX, or unknown: not counted */
}

static struct addrlimit_entry **
addrlimit_find(struct addrlimit *t, const struct addrlimit_key *key)
{
    struct addrlimit_entry **pp;
    uint64_t h = XXH3_64bits_withSeed(key, sizeof(*key), t->seed);

    for (pp = &t->buckets[h & (ADDRLIMIT_BUCKETS - 1)]; *pp != NULL;
         pp = &(*pp)->next)
        if (!memcmp(&(*pp)->key, key, sizeof(*key)))
            break;
    return pp;
}

enum addrlimit_result
addrlimit_acquire(struct addrlimit *t, const struct addrlimit_key *key)
{
    struct addrlimit_entry **pp, *e;
    enum addrlimit_result r = ADDRLIMIT_COUNTED;

    if (t == NULL || t->max == 0)
        return ADDRLIMIT_UNCOUNTED;
    pthread_mutex_lock(&t->mu);
    pp = addrlimit_find(t, key);
    e = *pp;
    if (e == NULL) {
        e = calloc(1, sizeof(*e));
        if (e == NULL) {
            /* Refusing everyone for want of memory would be worse. */
            r = ADDRLIMIT_UNCOUNTED;
            goto out;
        }
        e->key = *key;
        *pp = e;
    }
    if (e->count >= t->max)
        r = ADDRLIMIT_REFUSED;
    else
        e->count++;
out:
    pthread_mutex_unlock(&t->mu);
    return r;
}

void
addrlimit_release(struct addrlimit *t, const struct addrlimit_key *key)
{
    struct addrlimit_entry **pp, *e;

    if (t == NULL)
        return;
    pthread_mutex_lock(&t->mu);
    pp = addrlimit_find(t, key);
    e = *pp;
    if (e != NULL && e->count > 0 && --e->count == 0) {
        *pp = e->next;
        free(e);
    }
    pthread_mutex_unlock(&t->mu);
}

unsigned long
addrlimit_count(struct addrlimit *t, const struct addrlimit_key *key)
{
    const struct addrlimit_entry *e;
    unsigned long n;

    if (t == NULL)
        return 0;
    pthread_mutex_lock(&t->mu);
    e = *addrlimit_find(t, key);
    n = e != NULL ? e->count : 0;
    pthread_mutex_unlock(&t->mu);
    return n;
}

unsigned long
addrlimit_entries(struct addrlimit *t)
{
    unsigned long n = 0;
    size_t i;

    if (t == NULL)
        return 0;
    pthread_mutex_lock(&t->mu);
    for (i = 0; i < ADDRLIMIT_BUCKETS; i++)
        for (const struct addrlimit_entry *e = t->buckets[i]; e != NULL;
             e = e->next)
            n++;
    pthread_mutex_unlock(&t->mu);
    return n;
}
