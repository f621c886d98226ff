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
    /* Moderation: no such item (or cursor). */
    QUEUE_NOT_FOUND,
    /* Moderation: not in the state the call needs (decided, too late). */
    QUEUE_CONFLICT,
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
 * queue ordered by received_ms (and, while the urgent order is kept, to
 * the one by urgency).  received_ms: milliseconds since the Unix epoch.
 * urgency: the highest of the record's "scores" that is finite and above
 * 0, else 0 (a non-finite or negative value is stored as 0); it is sent
 * with the six significant digits the record writes, so that Redis can
 * compute the same value from the record when it rebuilds the urgent
 * order.  id: 1..QUEUE_ID_MAX bytes.
 * Returns 0 when the command was sent (cb will run), -1 when it could not
 * be sent (not connected, bad id, out of memory): cb is then not called.
 * QUEUE_OK is reported only after Redis has answered that it stored the
 * item.  Submits made during one pass of the event loop go to Redis as one
 * command at the end of the pass (up to 64 of them); each still gets its
 * own result, exactly as if submitted alone in that order. */
int queue_submit(struct queue *q, const char *id, const char *record,
                 size_t record_len, long long received_ms, double urgency,
                 queue_submit_cb *cb, void *arg);

/* Look up a stored item: QUEUE_OK with its record, or QUEUE_EXISTS never;
 * stored == NULL when unknown. */
int queue_get(struct queue *q, const char *id, queue_submit_cb *cb, void *arg);

/* Undecided items, claimed or not (O(1)). */
int queue_length(struct queue *q, queue_count_cb *cb, void *arg);

/* Submits are sent in batches, one EVALSHA per event-loop pass (or per
 * 64 submits): batches sent and the submits in them, since start (all
 * queues).  Any thread. */
void queue_batch_counts(unsigned long long *batches, unsigned long long *items);

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

/* ---- the server's eviction policy ------------------------------------ *
 *
 * Queued items have no TTL, so only a maxmemory-policy that evicts any key
 * (allkeys-lru, allkeys-lfu, allkeys-random) can drop them: an item
 * answered "queued": true would then be lost without a trace.  volatile-*
 * policies evict only keys with a TTL, and noeviction refuses writes
 * when full (a submit fails: spooled or 503).  The daemon asks once per
 * connection (worker.c), never per submit; daemon/REDIS.md, "Eviction". */

/* What INFO memory says about eviction. */
struct queue_memory {
    unsigned long long maxmemory; /* bytes; 0: no limit */
    char policy[32];              /* maxmemory_policy, e.g. "noeviction" */
    int allkeys;                  /* the policy is allkeys-*: it may evict
                                     keys without a TTL once maxmemory is
                                     set (CONFIG SET can set it any time) */
    int evicts;                   /* allkeys and maxmemory > 0: Redis may
                                     evict queued items now */
};

/* The fields of an INFO reply's text (len bytes, "name:value" lines;
 * INFO memory or a whole INFO): 0 and *out filled when it has a decimal
 * maxmemory and a maxmemory_policy of at most 31 characters [a-z-], else
 * -1 (*out zeroed).  Pure; any thread. */
int queue_memory_parse(const char *info, size_t len, struct queue_memory *out);

/* m: borrowed for the callback; NULL unless st is QUEUE_OK. */
typedef void queue_memory_cb(enum queue_status st, const struct queue_memory *m,
                             void *arg);

/* Sends INFO memory (which managed Redis services allow where CONFIG is
 * renamed or disabled).  A reply without the two fields (a server that
 * is not Redis, say) is QUEUE_ERROR with the reason in queue_last_error,
 * as an error reply or a lost connection is.  Returns as queue_submit. */
int queue_memory(struct queue *q, queue_memory_cb *cb, void *arg);

/* ---- writes Redis refuses -------------------------------------------- *
 *
 * A Redis that is up can still refuse every write: full with noeviction
 * (OOM), a replica (READONLY), a failed RDB save with
 * stop-writes-on-bgsave-error (MISCONF), too few replicas for
 * min-replicas-to-write (NOREPLICAS).  Every submit then fails (spooled
 * or 503) until the operator acts.  The daemon remembers Redis's answer
 * to the last write it sent -- a submit, a spool drainer's submit, or
 * queue_probe_write -- process-wide (an atomic, and Redis's error text
 * under a lock taken only while Redis refuses; any queue records, any
 * thread reads), so that /readyz can say so (daemon/REDIS.md, "Refused
 * writes").  Other error replies (a key of the wrong type, NOPERM) fail
 * their comment alone and leave this state as it is. */

enum queue_refusal {
    QUEUE_REFUSED_OOM,
    QUEUE_REFUSED_READONLY,
    QUEUE_REFUSED_MISCONF,
    QUEUE_REFUSED_NOREPLICAS,
    QUEUE_N_REFUSALS
};

#define QUEUE_REFUSAL_MAX 256 /* bytes of Redis's error kept, with NUL */

/* The refusal an error reply (len bytes, "OOM command not allowed ...")
 * is, by its first word, or -1 for any other error.  Pure. */
int queue_refusal_of(const char *err, size_t len);
/* "OOM", "READONLY", ...; NULL out of range. */
const char *queue_refusal_name(int kind);
/* The refusal Redis answered the last write with, its error text copied
 * into msg (len bytes, NUL-terminated; may be NULL); -1 (msg "") once a
 * write has been taken since, or when none was refused.  Any thread. */
int queue_refusing(char *msg, size_t len);
/* Comments (submits) Redis refused with kind since start, all queues. */
unsigned long long queue_refused_count(int kind);

/* Asks Redis whether it takes writes now, without writing anything:
 * SET P write-probe 1 XX (a key that never exists: XX sets only an
 * existing one), which Redis refuses exactly when it refuses a submit.
 * cb gets QUEUE_OK when it was taken (n 0), else QUEUE_ERROR or
 * QUEUE_TIMEOUT; a refusal is recorded as a submit's is.  Returns as
 * queue_submit. */
int queue_probe_write(struct queue *q, queue_count_cb *cb, void *arg);

/* ---- training events ------------------------------------------------- */

/* One training example for the stream P training (daemon/REDIS.md).  Every
 * pointer is borrowed for the call; NULL strings are sent as "". */
struct queue_train {
    const char *source; /* "akismet", "decision", "upload" */
    const char *op;     /* "learn" or "forget" */
    const char *text;   /* text_len bytes, any bytes */
    size_t text_len;
    const char *lang;   /* language hint, "" when none */
    const char *labels; /* JSON object text: {"spam":1} */
    const char *by;     /* who taught it (token name, blog), "" when none */
    long long ts_ms;    /* when, ms since the Unix epoch */
};

/* entry_id: the stream entry's id (borrowed for the callback), NULL unless
 * QUEUE_OK. */
typedef void queue_train_cb(enum queue_status st, const char *entry_id,
                            void *arg);

/* Append ev to P training (XADD, no trimming: an event stays until a
 * snapshot covers it) and, in the same script, an audit entry (P audit,
 * action "train") unless ev->source is "decision" or "undo".  QUEUE_OK
 * only once Redis answered with the entry id.  Returns as queue_submit. */
int queue_train_event(struct queue *q, const struct queue_train *ev,
                      queue_train_cb *cb, void *arg);

/* 0 when url is a valid redis.url; else -1 and the reason in err (for
 * `modfilterd -t`).  Any thread. */
int queue_url_check(const char *url, char *err, size_t errlen);

/* ---- moderation ------------------------------------------------------ *
 *
 * Each call below is one Lua script (or one command): it sees and changes
 * the queue atomically, whatever other workers and daemons do at the same
 * time.  Times are Redis's clock (TIME), so every daemon on one Redis
 * agrees on claim expiry and the undo window.  Replies are borrowed for the
 * duration of the callback. */

#define QUEUE_DECISIONS_MAX 100 /* decisions in one queue_decide call */
#define QUEUE_LIMIT_MAX 1000    /* items or events in one page */

/* One stored comment.  Strings are NUL-terminated; optional ones NULL. */
struct queue_item {
    const char *id;
    const char *record; /* the JSON text stored at submit */
    size_t record_len;
    const char *state;      /* "queued" or "decided" */
    const char *claimed_by; /* NULL when unclaimed or the claim expired */
    long long claim_expires_ms;
    const char *decision;   /* "approve"/"reject" when decided, else NULL */
    const char *labels;     /* the decision's labels (JSON), or NULL */
    const char *decided_by; /* NULL unless decided */
    long long decided_at_ms;
};

struct queue_page {
    long long now_ms;        /* Redis's clock when the page was read */
    long long length;        /* undecided items, claimed or not */
    const char *next_cursor; /* NULL: nothing after this page */
    const struct queue_item *items;
    size_t n;
};

/* page is NULL unless st is QUEUE_OK.  queue_list reports QUEUE_NOT_FOUND
 * for a cursor that names no item; queue_show for an unknown id. */
typedef void queue_page_cb(enum queue_status st, const struct queue_page *page,
                           void *arg);

/* Undecided items, claimed or not: oldest first, or (urgent) most urgent
 * first, once the urgent order is kept (queue_keep_urgent); at most limit
 * (1..QUEUE_LIMIT_MAX) after cursor (the last id of the previous page; NULL or
 * "" for the first page).  A cursor stays valid after its item was decided. */
int queue_list(struct queue *q, int urgent, unsigned limit, const char *cursor,
               queue_page_cb *cb, void *arg);

/* One item, queued or decided: a page of one, or QUEUE_NOT_FOUND. */
int queue_show(struct queue *q, const char *id, queue_page_cb *cb, void *arg);

/* Make sure P queue:urgent is kept (daemon/REDIS.md, "The urgent
 * order"): rebuilt from P queue unless its marker says it is kept, in
 * steps of 1,000 items, one script each (Redis serves other clients
 * between them), going on from where any daemon's rebuild stopped.  cb
 * gets the length of the kept set, or -1 when it was kept already (or
 * another caller's step finished it).  A daemon configured with the urgent
 * order calls it when its connection is ready, so that its first list or
 * claim does not wait for the rebuild; a list or claim in the urgent order
 * calls it first too. */
int queue_keep_urgent(struct queue *q, queue_count_cb *cb, void *arg);

/* Claim up to n (1..QUEUE_LIMIT_MAX) undecided items that hold no
 * unexpired claim, in the configured order, for `by` until now + ttl_s.
 * The claimed items are the page; two calls never return one item while
 * its claim lasts.  Redis looks at 1,000 ids of the order a script; the
 * claim calls again from where the last one stopped until it has n items
 * or the end.  When a later call fails the page holds what the earlier
 * ones claimed (QUEUE_OK); it fails only with nothing claimed. */
int queue_claim(struct queue *q, int urgent, unsigned n, const char *by,
                unsigned ttl_s, queue_page_cb *cb, void *arg);

/* A moderator's decision on one item. */
struct queue_decision {
    const char *id;
    int reject;         /* 1 reject, 0 approve */
    const char *labels; /* a JSON object {"label": 0|1, ...}, or NULL for the
                           default (reject: 1 for each label whose own
                           verdict was not allow, else 0; approve: all 0) */
};

/* What became of one decision or undo. */
struct queue_outcome {
    enum queue_status status; /* QUEUE_OK, QUEUE_NOT_FOUND, QUEUE_CONFLICT
                                 or QUEUE_ERROR (unreadable record) */
    const char *verdict; /* the classifier's verdict in the record, or "" */
    const char *labels;  /* OK: the labels learned (decide) or unlearned
                            (undo), JSON; else "" */
    const char *why;     /* CONFLICT: "decided", "not_decided" or
                            "window"; else "" */
};

/* out has one entry per decision or undo, in order; NULL unless st is
 * QUEUE_OK (the call as a whole ran). */
typedef void queue_decide_cb(enum queue_status st,
                             const struct queue_outcome *out, size_t n,
                             void *arg);

/* Decide n (1..QUEUE_DECISIONS_MAX) items.  Each queued item, atomically:
 * leaves the queue and its claim, records the decision, adds an audit
 * entry and one "learn" training event; an item already decided is
 * CONFLICT (nothing written), an unknown one NOT_FOUND.  by: the token's
 * name.  review: a JSON object of the score at which each label's verdict
 * stops being allow ({"spam": 0.5, "*": 0.5}; "*" for other labels), used
 * for default labels. */
int queue_decide(struct queue *q, const struct queue_decision *d, size_t n,
                 const char *by, const char *review, queue_decide_cb *cb,
                 void *arg);

/* Undo the decision on id if it was taken at most window_s ago: the item
 * goes back to the queue (unclaimed), with an audit entry and one
 * "unlearn" training event of the labels it had taught.  CONFLICT when
 * not decided ("not_decided") or too late ("window"). */
int queue_undo(struct queue *q, const char *id, const char *by,
               unsigned window_s, queue_decide_cb *cb, void *arg);

/* One audit log entry: its stream id and its fields (action, id, by,
 * at_ms, labels, verdict, previous, ...), names[i] = values[i]. */
struct queue_event {
    const char *event_id;
    const char *const *names;
    const char *const *values;
    size_t n_fields;
};

struct queue_history {
    const struct queue_event *events; /* newest first */
    size_t n;
    const char *next_cursor; /* NULL: nothing older */
};

typedef void queue_history_cb(enum queue_status st,
                              const struct queue_history *h, void *arg);

/* The audit log, newest first: at most limit (1..QUEUE_LIMIT_MAX) entries
 * older than cursor (an event id from next_cursor; NULL or "" for the
 * newest).  -1 without a callback for a cursor queue_event_id_valid
 * refuses. */
int queue_history(struct queue *q, unsigned limit, const char *cursor,
                  queue_history_cb *cb, void *arg);

struct queue_stats {
    long long now_ms;    /* Redis's clock */
    long long length;    /* undecided items */
    long long oldest_ms; /* received_ms of the oldest, -1 when empty */
    long long claimed;   /* items under an unexpired claim */
    long long approved, rejected, undone; /* decisions and undos so far */
};

/* 1 when s is a stream id Redis takes as the exclusive end of XREVRANGE
 * ("1700000000000-0" or "1700000000000"): each part 1-20 digits worth at
 * most 2^64-1, and not 0-0 (nothing is before it).  A cursor refused here
 * is a 400, never sent to Redis. */
int queue_event_id_valid(const char *s);

typedef void queue_stats_cb(enum queue_status st, const struct queue_stats *s,
                            void *arg);
int queue_stats(struct queue *q, queue_stats_cb *cb, void *arg);

#endif
