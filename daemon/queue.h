/*
 * queue.h - the review queue in Redis, as the HTTP routes see it.
 *
 * One struct queue per worker thread: it owns one hiredis async connection
 * attached to that worker's event_base, reconnects with capped backoff, and
 * bounds every command with its own timer (hiredis 0.14 has none).
 * Callbacks always run on the worker's event loop, exactly once per call,
 * also when the command times out, fails, or the queue is freed (then with
 * QUEUE_ERROR) -- so the caller frees its request state in one place.
 *
 * Keys (all under the configured prefix) are documented in README.md.
 */
#ifndef MODFILTER_QUEUE_H
#define MODFILTER_QUEUE_H

#include <stddef.h>

struct event_base;

struct queue_config {
    const char *url;      /* redis://host:port/db or unix:///path; borrowed */
    const char *password; /* NULL or the password; borrowed */
    const char *prefix;   /* "modfilter:"; borrowed */
    unsigned timeout_ms;  /* per command */
};

enum queue_status {
    QUEUE_OK = 0,     /* stored now */
    QUEUE_EXISTS,     /* the id was already queued or decided; the stored
                         record is passed to the callback */
    QUEUE_TIMEOUT,    /* no answer within timeout_ms */
    QUEUE_ERROR,      /* not connected, Redis error, shutting down */
};

/* record: the JSON text stored for the moderator (borrowed for the call).
 * On QUEUE_EXISTS, stored/stored_len is the record kept earlier (borrowed
 * for the duration of the callback). */
typedef void queue_submit_cb(enum queue_status st, const char *stored,
                             size_t stored_len, void *arg);
typedef void queue_count_cb(enum queue_status st, long long n, void *arg);

struct queue *queue_new(struct event_base *base,
                        const struct queue_config *cfg); /* NULL on error */
/* Fails pending callbacks with QUEUE_ERROR, then frees. NULL-safe. */
void queue_free(struct queue *q);
int queue_connected(const struct queue *q);

/* Atomically: unless item `id` exists, store the record and add it to the
 * queue ordered by received_ms (and urgency for the `urgent` order).
 * Returns 0 when the command was sent (cb will run), -1 when it could not
 * be sent (not connected): cb is then not called. */
int queue_submit(struct queue *q, const char *id, const char *record,
                 size_t record_len, long long received_ms, double urgency,
                 queue_submit_cb *cb, void *arg);

/* Look up a stored item: QUEUE_OK with its record, or QUEUE_EXISTS never;
 * stored == NULL when unknown. */
int queue_get(struct queue *q, const char *id, queue_submit_cb *cb,
              void *arg);

/* Undecided items, claimed or not (O(1)). */
int queue_length(struct queue *q, queue_count_cb *cb, void *arg);

/* Redis commands that failed or timed out since start (all queues). */
unsigned long long queue_error_count(void);

#endif
