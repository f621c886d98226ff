/*
 * queue.h - the review queue in Redis, as the HTTP routes see it.
 *
 * One struct queue per worker thread: it owns one hiredis async connection
 * attached to that worker's event_base, reconnects with capped backoff, and
 * bounds every command with its own timer (hiredis 0.14 has none).
 * Callbacks always run on the worker's event loop, exactly once per call,
 * also when the command times out, fails, or the queue is freed (then with
 * QUEUE_ERROR) -- so the caller frees its request state in one place.
 * Callbacks may call queue_submit/get/length/oldest again; they must not
 * call queue_free.  A call that returns -1 never runs its callback.
 *
 * Threads: create, use and free a queue only on the thread that runs its
 * event_base (or while no thread runs it).  queue_error_count and
 * queue_url_check may be called from any thread.
 *
 * Connecting is asynchronous: queue_new returns at once and the queue
 * becomes ready once the loop has connected, authenticated and selected
 * the database; until then, and while Redis is down, calls return -1 at
 * once (the daemon then spools or answers 503).  queue_set_state_cb tells
 * when that changes.
 *
 * The process must ignore SIGPIPE: hiredis writes with write(2), and a
 * write to a Redis that died would otherwise kill it.
 *
 * Keys (all under the configured prefix) are documented in daemon/REDIS.md
 * (folded into README.md).
 */
#ifndef MODFILTER_QUEUE_H
#define MODFILTER_QUEUE_H

#include <stddef.h>

struct event_base;

#define QUEUE_ID_MAX 512     /* bytes of an id queue.c accepts */
#define QUEUE_PREFIX_MAX 256 /* bytes of a key prefix */

struct queue_config {
    const char *url;      /* redis://host:port/db or unix:///path; borrowed */
    const char *password; /* NULL or the password; borrowed */
    const char *prefix;   /* "modfilter:"; borrowed */
    unsigned timeout_ms;  /* per command */
};

enum queue_status {
    QUEUE_OK = 0,  /* stored now */
    QUEUE_EXISTS,  /* the id was already queued or decided; the stored
                      record is passed to the callback */
    QUEUE_TIMEOUT, /* no answer within timeout_ms */
    QUEUE_ERROR,   /* not connected, Redis error, shutting down */
};

/* record: the JSON text stored for the moderator (borrowed for the call).
 * On QUEUE_EXISTS, stored/stored_len is the record kept earlier (borrowed
 * for the duration of the callback). */
typedef void queue_submit_cb(enum queue_status st, const char *stored,
                             size_t stored_len, void *arg);
typedef void queue_count_cb(enum queue_status st, long long n, void *arg);

/* NULL on error: a bad URL, a prefix longer than QUEUE_PREFIX_MAX, out of
 * memory.  Use queue_url_check first to get the reason for a bad URL.
 * A Redis that is not reachable is no error (the queue keeps retrying). */
struct queue *queue_new(struct event_base *base,
                        const struct queue_config *cfg); /* NULL on error */
/* Fails pending callbacks with QUEUE_ERROR, then frees. NULL-safe.
 * Not from inside one of this queue's callbacks. */
void queue_free(struct queue *q);
/* 1 when ready to take commands (connected, AUTH and SELECT done). */
int queue_connected(const struct queue *q);

/* Atomically: unless item `id` exists, store the record and add it to the
 * queue ordered by received_ms (and urgency for the `urgent` order).
 * received_ms: milliseconds since the Unix epoch.  urgency: higher is more
 * urgent (NaN is stored as 0).  id: 1..QUEUE_ID_MAX bytes.
 * Returns 0 when the command was sent (cb will run), -1 when it could not
 * be sent (not connected, bad id, out of memory): cb is then not called.
 * QUEUE_OK is reported only after Redis has answered that it stored the
 * item. */
int queue_submit(struct queue *q, const char *id, const char *record,
                 size_t record_len, long long received_ms, double urgency,
                 queue_submit_cb *cb, void *arg);

/* Look up a stored item: QUEUE_OK with its record, or QUEUE_EXISTS never;
 * stored == NULL when unknown. */
int queue_get(struct queue *q, const char *id, queue_submit_cb *cb, void *arg);

/* Undecided items, claimed or not (O(1)). */
int queue_length(struct queue *q, queue_count_cb *cb, void *arg);

/* Redis commands that failed or timed out since start (all queues):
 * refused while not connected, error replies, connection lost, timed out. */
unsigned long long queue_error_count(void);

/* ---- additions ------------------------------------------------------- */

/* The oldest undecided item: cb gets its received_ms (ms since the Unix
 * epoch), or -1 when the queue is empty.  Age = now - n. */
int queue_oldest(struct queue *q, queue_count_cb *cb, void *arg);

/* Called on the loop when readiness changes: ready = 1 ("connected to
 * ..."), or ready = 0 with the reason (refused, AUTH failed, lost, no
 * answer...).  A failure is reported once, not at every retry, unless its
 * reason changes.  why is borrowed for the call and never holds the
 * password.  Replaces any earlier callback; cb NULL removes it.  The
 * callback must not call queue_free. */
typedef void queue_state_cb(int ready, const char *why, void *arg);
void queue_set_state_cb(struct queue *q, queue_state_cb *cb, void *arg);

/* The last failure seen by this queue, for logging ("" when none).  Owned
 * by q; valid until the next call into q or the next callback. */
const char *queue_last_error(const struct queue *q);

/* Commands sent and not yet answered (a bound for back-pressure). */
size_t queue_pending(const struct queue *q);

/* 0 when url is a valid redis.url; else -1 and the reason in err (for
 * `modfilterd -t`).  Any thread. */
int queue_url_check(const char *url, char *err, size_t errlen);

#endif
