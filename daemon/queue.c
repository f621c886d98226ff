/*
 * queue.c - the review queue in Redis (see queue.h for the contract and
 * daemon/REDIS.md for the keys).
 *
 * Every call is one Redis command on the worker's connection (redis.c),
 * except submits, which are gathered for the rest of the loop pass and
 * sent together (see submit_lua), and the urgent order's rebuild and a
 * claim, which go in bounded steps, one script each (urgent_step,
 * claim_call).  Submitting is one Lua script so that
 * "exists?" and "store + enqueue" cannot interleave with another daemon's
 * submit of the same id, and so is every moderation step (list, show,
 * claim, decide, undo, stats): each reads and writes the item hash, the
 * sorted sets and the streams as one.
 */
#include "queue.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "jsonw.h"
#include "redis.h"

/* Submitting, in batches: every queue_submit made during one pass of the
 * worker's event loop (up to QUEUE_BATCH_ITEMS of them, or until their
 * records pass QUEUE_BATCH_BYTES) goes to Redis as one EVALSHA of this
 * script, which then costs Redis one script call instead of one per
 * comment.
 *
 * KEYS[1] queue zset (by received_ms), KEYS[2] urgent zset (by urgency),
 * KEYS[3] the urgent zset's marker (see "The urgent order" below),
 * KEYS[3 + i] item i's hash.  ARGV[4i-3 .. 4i]: item i's id, record,
 * received_ms, urgency.  Returns one result per item, in order: 1 when
 * stored, the record stored earlier (a bulk string) when the id exists,
 * or an error for that item alone.
 *
 * The outcome is that of submitting the items one after the other, each
 * as: if its hash has a record, the result is that record; else store
 * the record, ZADD queue, ZADD urgent if the marker exists, and the
 * result is 1.  An id twice in one batch behaves as two submits in a
 * row: the second finds the first's record.  Each redis.call costs about
 * as much as the command it runs, so the script makes few: one EXISTS of
 * the marker, one HSETNX per item that is both the look-up and the write
 * (the hash holds only the record until a decision; no `state` means
 * queued, and the scores stay in the zsets until the decide script
 * copies them into the hash), then one ZADD per kept zset for all the
 * new ids.  Should a ZADD fail (WRONGTYPE) the script takes back what it
 * wrote (the first ZADD, the new hashes), so every new item of the batch
 * fails and an item hash still always means a fully queued item; a
 * script is atomic, so nobody sees the hashes in between.  Items that
 * existed keep their answer.  Failures are caught per item
 * (redis.pcall), so one bad item (say its key holds a string) fails
 * alone and its neighbours are stored as if submitted on their own. */
static const char submit_lua[] =
    "local n = #KEYS - 3\n"
    "local kept = redis.call('EXISTS', KEYS[3]) == 1\n"
    "local out, first, new, zq, zu = {}, {}, {}, {}, {}\n"
    "for i = 1, n do\n"
    "  local k, a = KEYS[i + 3], 4 * i - 3\n"
    "  if first[k] == nil then\n"
    "    first[k] = i\n"
    "    local r = redis.pcall('HSETNX', k, 'record', ARGV[a + 1])\n"
    "    if r == 1 then\n"
    "      new[#new + 1] = i\n"
    "      zq[#zq + 1] = ARGV[a + 2]\n"
    "      zq[#zq + 1] = ARGV[a]\n"
    "      zu[#zu + 1] = ARGV[a + 3]\n"
    "      zu[#zu + 1] = ARGV[a]\n"
    "    elseif r == 0 then\n"
    "      out[i] = redis.pcall('HGET', k, 'record')\n"
    "    else\n"
    "      out[i] = r\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if #new > 0 then\n"
    "  local e = redis.pcall('ZADD', KEYS[1], unpack(zq))\n"
    "  if kept and type(e) ~= 'table' then\n"
    "    e = redis.pcall('ZADD', KEYS[2], unpack(zu))\n"
    "    if type(e) == 'table' then\n"
    "      local ids = {}\n"
    "      for j, i in ipairs(new) do ids[j] = ARGV[4 * i - 3] end\n"
    "      redis.pcall('ZREM', KEYS[1], unpack(ids))\n"
    "    end\n"
    "  end\n"
    "  if type(e) == 'table' then\n"
    "    local keys = {}\n"
    "    for j, i in ipairs(new) do keys[j] = KEYS[i + 3] end\n"
    "    redis.pcall('DEL', unpack(keys))\n"
    "  end\n"
    "  for _, i in ipairs(new) do\n"
    "    if type(e) == 'table' then out[i] = e else out[i] = 1 end\n"
    "  end\n"
    "end\n"
    "for i = 1, n do\n"
    "  if out[i] == nil then\n"
    "    local j = first[KEYS[i + 3]]\n"
    "    if out[j] == 1 then out[i] = ARGV[4 * j - 2] else out[i] = out[j] "
    "end\n"
    "  end\n"
    "end\n"
    "return out\n";

#define QUEUE_BATCH_ITEMS 64         /* submits in one EVALSHA at most */
#define QUEUE_BATCH_BYTES (1u << 20) /* records of one batch, about */

#define QUEUE_KEY_MAX (QUEUE_PREFIX_MAX + 32 + QUEUE_ID_MAX)

/* One submit waiting in a batch. */
struct queue_waiter {
    queue_submit_cb *cb;
    void *arg;
};

/* A batch of submits: gathering (q->batch), in flight (the arg of its
 * EVALSHA), or not sent (on q->failed until flush_ev fails it). */
struct queue_batch {
    struct queue *q;
    struct queue_batch *next; /* on q->failed */
    size_t n;
    struct queue_waiter w[QUEUE_BATCH_ITEMS];
};

/* Where a gathered item's arguments lie: key and record in q->buf (the id
 * is the key's tail), the numbers here. */
struct queue_slot {
    size_t key, key_len, rec, rec_len, ms_len, urg_len;
    char ms[24], urg[JSONW_REAL_MAX];
};

struct queue {
    struct redis *redis;
    struct redis_script *submit;
    struct redis_script *list, *show, *claim, *decide, *undo, *stats, *keep;
    struct redis_script *train;
    char prefix[QUEUE_PREFIX_MAX + 1];
    size_t prefix_len;
    queue_state_cb *state_cb;
    void *state_arg;
    int closing;

    /* Batched submits (see submit_lua). */
    struct event *flush_ev;     /* end of the loop pass: send the batch */
    struct queue_batch *batch;  /* gathering; NULL when empty */
    struct queue_batch *spare;  /* one kept for the next batch */
    struct queue_batch *failed; /* not sent: callbacks from flush_ev */
    struct queue_slot slot[QUEUE_BATCH_ITEMS];
    char *buf; /* keys and records of the gathering batch */
    size_t buf_len, buf_cap;
    size_t items_waiting;   /* submits whose callback has not run */
    size_t batches_waiting; /* batches sent, callbacks not run */
    const char *argv[3 + 5 * QUEUE_BATCH_ITEMS];
    size_t argl[3 + 5 * QUEUE_BATCH_ITEMS];
};

/* One call in flight: the caller's callback, until Redis answers. */
struct queue_call {
    queue_submit_cb *submit_cb; /* submit, get */
    queue_count_cb *count_cb;   /* length, oldest */
    queue_train_cb *train_cb;   /* train_event */
    queue_page_cb *page_cb;     /* list, show, claim */
    queue_decide_cb *decide_cb; /* decide, undo */
    queue_history_cb *history_cb;
    queue_stats_cb *stats_cb;
    queue_memory_cb *memory_cb;
    struct queue *q; /* memory: its last error says why a reply is bad */
    unsigned limit;  /* history: the page size */
    size_t want;     /* decide, undo: the outcomes asked for */
    void *arg;
};

/* prefix + part + id into buf (QUEUE_KEY_MAX bytes); returns the length. */
static size_t
queue_key(const struct queue *q, char *buf, const char *part, const char *id,
          size_t id_len)
{
    size_t part_len = strlen(part);

    memcpy(buf, q->prefix, q->prefix_len);
    memcpy(buf + q->prefix_len, part, part_len);
    if (id_len > 0)
        memcpy(buf + q->prefix_len + part_len, id, id_len);
    return q->prefix_len + part_len + id_len;
}

/* prefix + parts[i] for i < n into keys (n buffers), argv and len. */
static void
queue_keys(const struct queue *q, const char *const *parts, size_t n,
           char (*keys)[QUEUE_KEY_MAX], const char **argv, size_t *len)
{
    for (size_t i = 0; i < n; i++) {
        argv[i] = keys[i];
        len[i] = queue_key(q, keys[i], parts[i], NULL, 0);
    }
}

/* The three keys of the orders, into keys and argv/len[0..3): P queue,
 * P queue:urgent and its marker (see "The urgent order"). */
static void
queue_order_keys(const struct queue *q, char (*keys)[QUEUE_KEY_MAX],
                 const char **argv, size_t *len)
{
    static const char *const parts[3] = {"queue", "queue:urgent",
                                         "queue:urgent:kept"};

    queue_keys(q, parts, 3, keys, argv, len);
}

static int
queue_id_ok(const char *id, size_t *len)
{
    if (id == NULL)
        return 0;
    *len = strnlen(id, QUEUE_ID_MAX + 1);
    return *len >= 1 && *len <= QUEUE_ID_MAX;
}

static struct queue_call *
queue_call_new(queue_submit_cb *scb, queue_count_cb *ccb, void *arg)
{
    struct queue_call *c = calloc(1, sizeof *c);

    if (c == NULL)
        return NULL;
    c->submit_cb = scb;
    c->count_cb = ccb;
    c->train_cb = NULL;
    c->arg = arg;
    return c;
}

static enum queue_status
queue_status_of(enum redis_result res)
{
    switch (res) {
    case REDIS_RESULT_OK:
        return QUEUE_OK;
    case REDIS_RESULT_TIMEOUT:
        return QUEUE_TIMEOUT;
    case REDIS_RESULT_ERROR:
        break;
    }
    return QUEUE_ERROR;
}

/* Sends and, when that fails, drops the call (its callback never runs). */
static int
queue_send(struct queue *q, struct queue_call *c, redis_reply_cb *fn, int argc,
           const char **argv, const size_t *len)
{
    if (c == NULL || redis_command(q->redis, argc, argv, len, fn, c) != 0) {
        free(c);
        return -1;
    }
    return 0;
}

/* Runs one of the queue's scripts; argv[0..numkeys) are keys. */
static int
queue_eval(struct queue *q, struct redis_script *s, int numkeys, int argc,
           const char **argv, const size_t *len, redis_reply_cb *fn,
           struct queue_call *c)
{
    if (c == NULL ||
        redis_eval(q->redis, s, numkeys, argc, argv, len, fn, c) != 0) {
        free(c);
        return -1;
    }
    return 0;
}

/* ---- writes Redis refuses (queue.h) ---------------------------------- */

static const char *const queue_refusal_names[QUEUE_N_REFUSALS] = {
    "OOM", "READONLY", "MISCONF", "NOREPLICAS"};
static unsigned long long queue_refused_n[QUEUE_N_REFUSALS];

/* Redis's answer to the last write, process-wide: the refusal, or -1 when
 * it was taken (an atomic: a taken write costs one load), and the error's
 * text under a lock (taken only when Redis refuses, and by /readyz). */
static int queue_refusal_kind = -1;
static pthread_mutex_t queue_refusal_lock = PTHREAD_MUTEX_INITIALIZER;
static char queue_refusal_text[QUEUE_REFUSAL_MAX];

int
queue_refusal_of(const char *err, size_t len)
{
    for (int k = 0; k < QUEUE_N_REFUSALS; k++) {
        size_t n = strlen(queue_refusal_names[k]);

        if (len >= n && memcmp(err, queue_refusal_names[k], n) == 0 &&
            (len == n || err[n] == ' '))
            return k;
    }
    return -1;
}

const char *
queue_refusal_name(int kind)
{
    return kind >= 0 && kind < QUEUE_N_REFUSALS ? queue_refusal_names[kind]
                                                : NULL;
}

int
queue_refusing(char *msg, size_t len)
{
    int kind = __atomic_load_n(&queue_refusal_kind, __ATOMIC_ACQUIRE);

    if (msg != NULL && len > 0) {
        msg[0] = '\0';
        if (kind >= 0) {
            pthread_mutex_lock(&queue_refusal_lock);
            snprintf(msg, len, "%s", queue_refusal_text);
            pthread_mutex_unlock(&queue_refusal_lock);
        }
    }
    return kind;
}

unsigned long long
queue_refused_count(int kind)
{
    return kind >= 0 && kind < QUEUE_N_REFUSALS
               ? __atomic_load_n(&queue_refused_n[kind], __ATOMIC_RELAXED)
               : 0;
}

static void
queue_write_taken(void)
{
    if (__atomic_load_n(&queue_refusal_kind, __ATOMIC_RELAXED) != -1)
        __atomic_store_n(&queue_refusal_kind, -1, __ATOMIC_RELEASE);
}

/* An error reply to a write that carried n comments (0: a probe):
 * recorded when it is a refusal; other errors leave the state alone. */
static void
queue_write_failed(const char *err, size_t len, size_t n)
{
    int kind = err != NULL ? queue_refusal_of(err, len) : -1;

    if (kind < 0)
        return;
    if (n > 0)
        __atomic_add_fetch(&queue_refused_n[kind], n, __ATOMIC_RELAXED);
    len = len < QUEUE_REFUSAL_MAX - 1 ? len : QUEUE_REFUSAL_MAX - 1;
    pthread_mutex_lock(&queue_refusal_lock);
    memcpy(queue_refusal_text, err, len);
    queue_refusal_text[len] = '\0';
    __atomic_store_n(&queue_refusal_kind, kind, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&queue_refusal_lock);
}

static void
on_probe(enum redis_result res, const struct redisReply *reply, void *arg)
{
    struct queue_call c = *(struct queue_call *)arg;
    enum queue_status st = queue_status_of(res);

    free(arg);
    if (st == QUEUE_OK)
        queue_write_taken(); /* nil: XX found no key, and wrote none */
    else if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
        queue_write_failed(reply->str, reply->len, 0);
    c.count_cb(st, 0, c.arg);
}

int
queue_probe_write(struct queue *q, queue_count_cb *cb, void *arg)
{
    char key[QUEUE_KEY_MAX];
    const char *argv[4] = {"SET", key, "1", "XX"};
    size_t len[4] = {3, 0, 1, 2};

    len[1] = queue_key(q, key, "write-probe", NULL, 0);
    return queue_send(q, queue_call_new(NULL, cb, arg), on_probe, 4, argv, len);
}

/* ---- submit ----------------------------------------------------------- */

static unsigned long long queue_batches_sent, queue_items_sent;

static void
batch_release(struct queue *q, struct queue_batch *b)
{
    if (q->spare == NULL && !q->closing)
        q->spare = b;
    else
        free(b);
}

/* Runs every callback of a batch with st (not sent, failed, timed out). */
static void
batch_fail(struct queue *q, struct queue_batch *b, enum queue_status st)
{
    for (size_t i = 0; i < b->n; i++)
        b->w[i].cb(st, NULL, 0, b->w[i].arg);
    batch_release(q, b);
}

static void batch_send(struct queue *q);

/* After a batch's answer: the batch that gathered meanwhile goes now (see
 * flush_cb).  After a timeout it fails at once instead: its submits have
 * waited behind a command Redis did not answer within timeout_ms, and a
 * comment is never kept waiting longer than that. */
static void
batch_next(struct queue *q, enum queue_status st)
{
    struct queue_batch *b = q->batch;

    if (b == NULL || q->batches_waiting > 0)
        return;
    if (st != QUEUE_TIMEOUT) {
        batch_send(q);
        return;
    }
    q->batch = NULL;
    q->buf_len = 0;
    q->items_waiting -= b->n;
    redis_count_errors(NULL, b->n, NULL, 0);
    batch_fail(q, b, QUEUE_TIMEOUT);
}

static void
on_batch(enum redis_result res, const struct redisReply *reply, void *arg)
{
    struct queue_batch *b = arg;
    struct queue *q = b->q;
    enum queue_status st = queue_status_of(res);

    q->batches_waiting--;
    q->items_waiting -= b->n;
    if (st == QUEUE_OK &&
        (reply->type != REDIS_REPLY_ARRAY || reply->elements != b->n)) {
        redis_count_errors(q->redis, 1, "unexpected reply to a submit batch",
                           34);
        st = QUEUE_ERROR;
    }
    if (st != QUEUE_OK) {
        /* One failed command, one failure per submit it carried. */
        if (b->n > 1)
            redis_count_errors(NULL, b->n - 1, NULL, 0);
        if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
            queue_write_failed(reply->str, reply->len, b->n);
        batch_fail(q, b, st);
        batch_next(q, st);
        return;
    }
    for (size_t i = 0; i < b->n; i++) {
        const redisReply *e = reply->element[i];
        queue_submit_cb *cb = b->w[i].cb;

        if (e->type == REDIS_REPLY_INTEGER && e->integer == 1) {
            queue_write_taken();
            cb(QUEUE_OK, NULL, 0, b->w[i].arg);
        } else if (e->type == REDIS_REPLY_STRING) {
            /* HSETNX ran, found the record and wrote nothing: a write
             * Redis refused would have been refused before that. */
            queue_write_taken();
            cb(QUEUE_EXISTS, e->str, e->len, b->w[i].arg);
        } else {
            if (e->type == REDIS_REPLY_ERROR) {
                redis_count_errors(q->redis, 1, e->str, e->len);
                queue_write_failed(e->str, e->len, 1);
            } else
                redis_count_errors(q->redis, 1, NULL, 0);
            cb(QUEUE_ERROR, NULL, 0, b->w[i].arg);
        }
    }
    batch_release(q, b);
    batch_next(q, st);
}

/* Sends the gathered batch as one EVALSHA.  When it cannot be sent, its
 * callbacks run from flush_ev (never from inside queue_submit). */
static void
batch_send(struct queue *q)
{
    struct queue_batch *b = q->batch;
    size_t n, i, k;
    char keys[3][QUEUE_KEY_MAX];
    int rc;

    if (b == NULL)
        return;
    q->batch = NULL;
    n = b->n;
    queue_order_keys(q, keys, q->argv, q->argl);
    k = 3 + n;
    for (i = 0; i < n; i++) {
        const struct queue_slot *s = &q->slot[i];
        size_t id = s->key + q->prefix_len + 5; /* after "item:" */

        q->argv[3 + i] = q->buf + s->key;
        q->argl[3 + i] = s->key_len;
        q->argv[k] = q->buf + id;
        q->argl[k++] = s->key_len - (id - s->key);
        q->argv[k] = q->buf + s->rec;
        q->argl[k++] = s->rec_len;
        q->argv[k] = s->ms;
        q->argl[k++] = s->ms_len;
        q->argv[k] = s->urg;
        q->argl[k++] = s->urg_len;
    }
    rc = redis_eval(q->redis, q->submit, (int)(3 + n), (int)k, q->argv, q->argl,
                    on_batch, b);
    q->buf_len = 0;
    if (q->buf_cap > 2 * QUEUE_BATCH_BYTES) { /* after a huge record */
        free(q->buf);
        q->buf = NULL;
        q->buf_cap = 0;
    }
    if (rc == 0) {
        q->batches_waiting++;
        __atomic_add_fetch(&queue_batches_sent, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&queue_items_sent, n, __ATOMIC_RELAXED);
        return;
    }
    /* redis_eval counted one failure; one per submit. */
    if (n > 1)
        redis_count_errors(NULL, n - 1, NULL, 0);
    b->next = q->failed;
    q->failed = b;
    event_active(q->flush_ev, EV_TIMEOUT, 1);
}

/* The end of the loop pass that gathered a batch (flush_ev was made
 * active by its first submit, so it runs after the events that were
 * already active: the requests read in the same pass have joined).  The
 * batch goes now unless one is in flight: then it keeps gathering until
 * that one's answer (batch_next), so under load each command carries the
 * comments of several passes -- fewer commands, script calls, syscalls
 * and wake-ups per comment, in Redis and here -- while a lone comment
 * still goes at once.  A full batch goes at once (queue_submit). */
static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct queue *q = arg;

    (void)fd;
    (void)what;
    if (q->batches_waiting == 0)
        batch_send(q);
    while (q->failed != NULL) {
        struct queue_batch *b = q->failed;

        q->failed = b->next;
        q->items_waiting -= b->n;
        batch_fail(q, b, QUEUE_ERROR);
    }
}

/* The urgency as the record writes a score (jsonw_real_text: six
 * significant digits), so that Redis reads the very double that the
 * rebuild of the urgent zset gets from the record; 0 unless finite and
 * above 0 (see "The urgent order"). */
static size_t
format_urgency(double urgency, char *buf)
{
    return jsonw_real_text(isfinite(urgency) && urgency > 0 ? urgency : 0, buf);
}

/* received_ms in decimal, as "%lld" writes it; its length. */
static size_t
format_ms(long long ms, char *buf, size_t len)
{
    char *end = buf + len - 1,
         *p = jsonw_digits(ms < 0 ? 0ULL - (unsigned long long)ms
                                  : (unsigned long long)ms,
                           end);
    size_t n;

    if (ms < 0)
        *--p = '-';
    n = (size_t)(end - p);
    memmove(buf, p, n);
    buf[n] = '\0';
    return n;
}

/* Room for need more bytes in q->buf; -1 when out of memory. */
static int
buf_reserve(struct queue *q, size_t need)
{
    size_t cap = q->buf_cap ? q->buf_cap : 16384;
    char *p;

    if (need <= q->buf_cap - q->buf_len)
        return 0;
    if (need > SIZE_MAX / 4 - q->buf_len)
        return -1;
    while (cap < q->buf_len + need)
        cap *= 2;
    p = realloc(q->buf, cap);
    if (p == NULL)
        return -1;
    q->buf = p;
    q->buf_cap = cap;
    return 0;
}

int
queue_submit(struct queue *q, const char *id, const char *record,
             size_t record_len, long long received_ms, double urgency,
             queue_submit_cb *cb, void *arg)
{
    struct queue_batch *b;
    struct queue_slot *s;
    size_t id_len, key_len;

    if (!queue_id_ok(id, &id_len) || (record == NULL && record_len > 0))
        return -1;
    if (q->closing) {
        redis_count_errors(NULL, 1, NULL, 0);
        return -1;
    }
    if (redis_accepting(q->redis) != 0)
        return -1;
    key_len = q->prefix_len + 5 + id_len;
    if (q->batch != NULL &&
        q->buf_len + key_len + record_len > QUEUE_BATCH_BYTES)
        batch_send(q); /* this one would make the batch too big */
    if (buf_reserve(q, key_len + record_len) != 0) {
        redis_count_errors(q->redis, 1, "out of memory", 13);
        return -1;
    }
    b = q->batch;
    if (b == NULL) {
        b = q->spare;
        q->spare = NULL;
        if (b == NULL && (b = malloc(sizeof *b)) == NULL) {
            redis_count_errors(q->redis, 1, "out of memory", 13);
            return -1;
        }
        b->q = q;
        b->n = 0;
        q->batch = b;
        event_active(q->flush_ev, EV_TIMEOUT, 1);
    }
    s = &q->slot[b->n];
    s->key = q->buf_len;
    s->key_len = queue_key(q, q->buf + q->buf_len, "item:", id, id_len);
    q->buf_len += key_len;
    s->rec = q->buf_len;
    s->rec_len = record_len;
    if (record_len > 0)
        memcpy(q->buf + q->buf_len, record, record_len);
    q->buf_len += record_len;
    s->ms_len = format_ms(received_ms, s->ms, sizeof s->ms);
    s->urg_len = format_urgency(urgency, s->urg);
    b->w[b->n].cb = cb;
    b->w[b->n].arg = arg;
    b->n++;
    q->items_waiting++;
    if (b->n == QUEUE_BATCH_ITEMS || q->buf_len >= QUEUE_BATCH_BYTES)
        batch_send(q); /* full: no need to wait for the pass to end */
    return 0;
}

void
queue_batch_counts(unsigned long long *batches, unsigned long long *items)
{
    *batches = __atomic_load_n(&queue_batches_sent, __ATOMIC_RELAXED);
    *items = __atomic_load_n(&queue_items_sent, __ATOMIC_RELAXED);
}

/* ---- reads ------------------------------------------------------------ */

static void
on_get(enum redis_result res, const struct redisReply *reply, void *arg)
{
    struct queue_call c = *(struct queue_call *)arg;
    enum queue_status st = queue_status_of(res);

    free(arg);
    if (st != QUEUE_OK)
        c.submit_cb(st, NULL, 0, c.arg);
    else if (reply->type == REDIS_REPLY_STRING)
        c.submit_cb(QUEUE_OK, reply->str, reply->len, c.arg);
    else if (reply->type == REDIS_REPLY_NIL)
        c.submit_cb(QUEUE_OK, NULL, 0, c.arg);
    else
        c.submit_cb(QUEUE_ERROR, NULL, 0, c.arg);
}

int
queue_get(struct queue *q, const char *id, queue_submit_cb *cb, void *arg)
{
    char item[QUEUE_KEY_MAX];
    const char *argv[3] = {"HGET", item, "record"};
    size_t len[3] = {4, 0, 6}, id_len;

    if (!queue_id_ok(id, &id_len))
        return -1;
    len[1] = queue_key(q, item, "item:", id, id_len);
    return queue_send(q, queue_call_new(cb, NULL, arg), on_get, 3, argv, len);
}

/* An integer reply (length, oldest) to a count callback. */
static void
on_integer(enum redis_result res, const struct redisReply *reply, void *arg)
{
    struct queue_call c = *(struct queue_call *)arg;
    enum queue_status st = queue_status_of(res);

    free(arg);
    if (st == QUEUE_OK && reply->type != REDIS_REPLY_INTEGER)
        st = QUEUE_ERROR;
    c.count_cb(st, st == QUEUE_OK ? reply->integer : 0, c.arg);
}

int
queue_length(struct queue *q, queue_count_cb *cb, void *arg)
{
    char zq[QUEUE_KEY_MAX];
    const char *argv[2] = {"ZCARD", zq};
    size_t len[2] = {5, 0};

    len[1] = queue_key(q, zq, "queue", NULL, 0);
    return queue_send(q, queue_call_new(NULL, cb, arg), on_integer, 2, argv,
                      len);
}

static void
on_oldest(enum redis_result res, const struct redisReply *reply, void *arg)
{
    struct queue_call c = *(struct queue_call *)arg;
    enum queue_status st = queue_status_of(res);
    long long n = -1;

    free(arg);
    if (st == QUEUE_OK) {
        if (reply->type != REDIS_REPLY_ARRAY ||
            (reply->elements != 0 && reply->elements != 2)) {
            st = QUEUE_ERROR;
        } else if (reply->elements == 2) {
            const redisReply *score = reply->element[1];
            char buf[64], *end;
            double v;

            if (score->type != REDIS_REPLY_STRING || score->len == 0 ||
                score->len >= sizeof buf) {
                st = QUEUE_ERROR;
            } else {
                memcpy(buf, score->str, score->len);
                buf[score->len] = '\0';
                v = strtod(buf, &end);
                if (*end != '\0' || !isfinite(v))
                    st = QUEUE_ERROR;
                else
                    n = llround(v);
            }
        }
    }
    c.count_cb(st, st == QUEUE_OK ? n : 0, c.arg);
}

int
queue_oldest(struct queue *q, queue_count_cb *cb, void *arg)
{
    char zq[QUEUE_KEY_MAX];
    const char *argv[5] = {"ZRANGE", zq, "0", "0", "WITHSCORES"};
    size_t len[5] = {6, 0, 1, 1, 10};

    len[1] = queue_key(q, zq, "queue", NULL, 0);
    return queue_send(q, queue_call_new(NULL, cb, arg), on_oldest, 5, argv,
                      len);
}

/* ---- the server's eviction policy ------------------------------------ */

/* A decimal number that fits an unsigned long long, whole: 0 or -1. */
static int
queue_parse_ull(const char *p, size_t n, unsigned long long *v)
{
    *v = 0;
    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned char)p[i] - '0';

        if (d > 9 || *v > (~0ULL - d) / 10)
            return -1;
        *v = *v * 10 + d;
    }
    return 0;
}

int
queue_memory_parse(const char *info, size_t len, struct queue_memory *out)
{
    const char *p = info, *end = info + len;
    int have_max = 0, have_policy = 0;

    memset(out, 0, sizeof *out);
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((eol != NULL ? eol : end) - p);

        if (n > 0 && p[n - 1] == '\r')
            n--;
        /* Exact names: maxmemory_human and the like are other lines. */
        if (n >= 10 && memcmp(p, "maxmemory:", 10) == 0)
            have_max = queue_parse_ull(p + 10, n - 10, &out->maxmemory) == 0;
        else if (n > 17 && n - 17 < sizeof out->policy &&
                 memcmp(p, "maxmemory_policy:", 17) == 0) {
            size_t i = 17;

            while (i < n && ((p[i] >= 'a' && p[i] <= 'z') || p[i] == '-'))
                i++;
            have_policy = i == n;
            if (have_policy) {
                memcpy(out->policy, p + 17, n - 17);
                out->policy[n - 17] = '\0';
            }
        }
        p = eol != NULL ? eol + 1 : end;
    }
    if (!have_max || !have_policy) {
        memset(out, 0, sizeof *out);
        return -1;
    }
    out->allkeys = strncmp(out->policy, "allkeys-", 8) == 0;
    out->evicts = out->allkeys && out->maxmemory > 0;
    return 0;
}

static void
on_memory(enum redis_result res, const struct redisReply *reply, void *arg)
{
    struct queue_call c = *(struct queue_call *)arg;
    enum queue_status st = queue_status_of(res);
    struct queue_memory m;

    free(arg);
    if (st == QUEUE_OK && (reply->type != REDIS_REPLY_STRING ||
                           queue_memory_parse(reply->str, reply->len, &m))) {
        static const char why[] = "no maxmemory and maxmemory_policy in "
                                  "the reply to INFO memory";

        redis_count_errors(c.q->redis, 1, why, sizeof why - 1);
        st = QUEUE_ERROR;
    }
    c.memory_cb(st, st == QUEUE_OK ? &m : NULL, c.arg);
}

int
queue_memory(struct queue *q, queue_memory_cb *cb, void *arg)
{
    const char *argv[2] = {"INFO", "memory"};
    size_t len[2] = {4, 6};
    struct queue_call *c = queue_call_new(NULL, NULL, arg);

    if (c != NULL) {
        c->memory_cb = cb;
        c->q = q;
    }
    return queue_send(q, c, on_memory, 2, argv, len);
}

/* ---- training events -------------------------------------------------- */

/* KEYS[1] training stream, KEYS[2] audit stream.  ARGV: the event's
 * field/value pairs.  Appends the event and, for a training upload (any
 * source but a moderator's decision or undo, which write their own audit
 * entries), an audit entry naming it.  Returns the event's id. */
static const char train_lua[] =
    "local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV))\n"
    "local f = {}\n"
    "for i = 1, #ARGV - 1, 2 do f[ARGV[i]] = ARGV[i + 1] end\n"
    "if f.source ~= 'decision' and f.source ~= 'undo' then\n"
    "  redis.call('XADD', KEYS[2], '*', 'action', 'train',\n"
    "             'source', f.source or '', 'by', f.by or '',\n"
    "             'at_ms', f.ts_ms or '0', 'op', f.op or '',\n"
    "             'labels', f.labels or '', 'text', f.text or '',\n"
    "             'event', id)\n"
    "end\n"
    "return id\n";

static void
on_train(enum redis_result res, const struct redisReply *reply, void *arg)
{
    struct queue_call c = *(struct queue_call *)arg;
    enum queue_status st = queue_status_of(res);

    free(arg);
    if (st == QUEUE_OK && reply->type != REDIS_REPLY_STRING)
        st = QUEUE_ERROR;
    c.train_cb(st, st == QUEUE_OK ? reply->str : NULL, c.arg);
}

/* argv[*n] = s (NULL: ""), len bytes. */
static void
queue_arg(const char **argv, size_t *len, int *n, const char *s, size_t l)
{
    argv[*n] = s != NULL ? s : "";
    len[(*n)++] = s != NULL ? l : 0;
}

int
queue_train_event(struct queue *q, const struct queue_train *ev,
                  queue_train_cb *cb, void *arg)
{
    static const char *const names[] = {"source", "op", "text", "lang",
                                        "labels", "by", "ts_ms"};
    char key[QUEUE_KEY_MAX], audit[QUEUE_KEY_MAX], ms[32];
    const char *values[7], *argv[2 + 2 * 7];
    size_t len[2 + 2 * 7];
    struct queue_call *c;
    int n = 0;
    size_t i;

    if (ev->text == NULL && ev->text_len > 0)
        return -1;
    snprintf(ms, sizeof ms, "%lld", ev->ts_ms);
    values[0] = ev->source;
    values[1] = ev->op;
    values[2] = ev->text;
    values[3] = ev->lang;
    values[4] = ev->labels;
    values[5] = ev->by;
    values[6] = ms;
    queue_arg(argv, len, &n, key, queue_key(q, key, "training", NULL, 0));
    queue_arg(argv, len, &n, audit, queue_key(q, audit, "audit", NULL, 0));
    for (i = 0; i < 7; i++) {
        queue_arg(argv, len, &n, names[i], strlen(names[i]));
        queue_arg(argv, len, &n, values[i],
                  i == 2 ? ev->text_len
                         : (values[i] != NULL ? strlen(values[i]) : 0));
    }
    c = queue_call_new(NULL, NULL, arg);
    if (c != NULL)
        c->train_cb = cb;
    return queue_eval(q, q->train, 2, n, argv, len, on_train, c);
}

/* ---- moderation ------------------------------------------------------- */

/* The urgent order.  P queue:urgent (zu) is kept only while a daemon
 * needs it: its marker P queue:urgent:kept (mark) says "zu holds exactly
 * the ids of P queue (zq), each scored with its item's urgency, and every
 * script keeps it so".  An item's urgency is the highest label score of
 * its record that is finite and above 0, else 0 (urgency() below): what
 * routes.c passes to queue_submit, sent with the record's own six-digit
 * text of that score (format_urgency), so the double Redis stores at
 * submit and the one a Lua script gets from the record's JSON (cjson
 * reads the same text; a Lua number goes to redis.call as "%.17g",
 * exact) are one and the same.  Rounding is monotone, so the highest of
 * the rounded scores is the rounded highest score.
 *
 * mark holds either a time (ms: "kept") or "building C", C a cursor
 * into zq's scores ("-inf", a score S: from S on, or "(S": after S).
 * The invariants: while mark exists, zu is a subset of zq, every score
 * right (J); mark kept => zu == zq as sets (I); mark "building C" => zu
 * holds every id of zq whose score comes before C (K), and every id
 * submitted or undone since the rebuild began.  They hold under any
 * interleaving of daemons, whatever their queue.order, because every
 * change below is one atomic script that keeps them, and an order is only
 * read from zu by a script that first finds mark kept (urgent_kept):
 * - submit adds to zq, and to zu (same ids, their urgency) iff mark
 *   exists, in the script that looks at mark; its undo of a failed ZADD
 *   takes back both;
 * - decide removes from zq, and from zu iff mark exists;
 * - undo adds back to zq, and to zu iff mark exists;
 * - urgent_step, one step of a rebuild (queue_keep_urgent runs them one
 *   script after the other until mark is kept: when a daemon configured
 *   `urgent` gets its connection, and before every list and claim in the
 *   urgent order): when mark is absent, or its cursor unreadable, DEL
 *   zu (stale or partial then; nothing reads it) and start from "-inf";
 *   take the next QUEUE_URGENT_STEP ids of zq from C on with their
 *   scores, ZADD them to zu with their urgency, and move C past them (to
 *   the last one's score: its ties are taken again, harmlessly; when a
 *   whole step has one score, every id of that score at once, and C after
 *   it, so that a step always moves on).  A step that found fewer ids than
 *   it asked for has reached the end of zq: by K and J, zu == zq, and mark
 *   becomes a time (I);
 * - list and claim in the urgent order answer -2, read nothing, when mark
 *   is not kept (deleted since the rebuild, say): the caller keeps it
 *   again first;
 * - deleting mark (an operator; a full flush) makes I, J and K hold
 *   vacuously; submit, decide and undo then leave zu alone, and the next
 *   read in the urgent order rebuilds from nothing.
 * queue.order and its reload only choose which scripts read zu; the
 * writes are the same for every daemon.  Not covered: a key evicted by
 * a maxmemory policy (which would lose queued items anyway), and daemons
 * of earlier versions, which write zu always and read it without looking
 * at mark (daemon/REDIS.md, "The urgent order").
 *
 * Put before each moderation script: Redis's clock in ms; byte order of two
 * strings (Lua's < follows the server's locale); one item as nine reply
 * fields (id, record, state, claimed_by, claim_expires_ms, decision,
 * labels, decided_by, decided_at_ms), a claim shown only while it lasts,
 * state "queued" for a hash without one (as submit leaves it); an item's
 * urgency from its decoded record, or from its record's text
 * (record_urgency: only the "scores" object is decoded, about 5 times
 * cheaper for a comment of 800 bytes; it is the first `"scores":{` of
 * the text, as no JSON string can hold that unescaped and the members
 * before it are id, text, author and post, and it ends at the first `}`,
 * as label names are a-z, 0-9, _ and -; else the whole record);
 * urgent_kept(mark); urgent_step(zq, zu, mark, prefix, step), which
 * returns {-1, 1} when zu was kept already, {ids added, 0} after a step
 * that leaves the rebuild unfinished and {length of zu, 1} after the last
 * one (a cost in Redis of a few microseconds per item, REDIS.md);
 * start_after(z, urgent, prefix, c, s), the rank in z's order (urgent:
 * highest first) of the first id after the cursor c (0 for ""): after c
 * itself while c is in z, else after where its score puts it among its
 * ties (s; "" for the score its hash kept when it left the queue, nil
 * when there is none), so that a cursor outlives its item (list, claim). */
static const char common_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local function before(a, b)\n"
    "  for i = 1, math.min(#a, #b) do\n"
    "    local x, y = a:byte(i), b:byte(i)\n"
    "    if x ~= y then return x < y end\n"
    "  end\n"
    "  return #a < #b\n"
    "end\n"
    "local function item(out, p, id)\n"
    "  local f = redis.call('HMGET', p .. 'item:' .. id, 'record', 'state',\n"
    "    'claimed_by', 'claim_expires_ms', 'decision', 'labels',\n"
    "    'decided_by', 'decided_at_ms')\n"
    "  local exp = tonumber(f[4] or '') or 0\n"
    "  local by = f[3] or ''\n"
    "  if exp <= now then by = ''; exp = 0 end\n"
    "  local v = {id, f[1] or '', f[2] or (f[1] and 'queued' or ''), by,\n"
    "    exp, f[5] or '',\n"
    "    f[6] or '', f[7] or '', tonumber(f[8] or '') or 0}\n"
    "  for i = 1, 9 do out[#out + 1] = v[i] end\n"
    "end\n"
    "local function str(v) if type(v) == 'string' then return v end\n"
    "  return '' end\n"
    "local function urgency(rec)\n"
    "  local u = 0\n"
    "  if type(rec) == 'table' and type(rec.scores) == 'table' then\n"
    "    for _, s in pairs(rec.scores) do\n"
    "      if type(s) == 'number' and s > u and s < math.huge then u = s end\n"
    "    end\n"
    "  end\n"
    "  return u\n"
    "end\n"
    "local function record_urgency(r)\n"
    "  local a = r:find('\"scores\":{', 1, true)\n"
    "  local b = a and r:find('}', a, true)\n"
    "  local ok, s = pcall(cjson.decode, b and r:sub(a + 9, b) or '')\n"
    "  if ok and type(s) == 'table' then return urgency({scores = s}) end\n"
    "  ok, s = pcall(cjson.decode, r)\n"
    "  return urgency(ok and s)\n"
    "end\n"
    "local function urgent_add(zu, p, ids)\n"
    "  for i = 1, #ids, 500 do\n"
    "    local z = {}\n"
    "    for j = i, math.min(i + 499, #ids) do\n"
    "      local r = redis.pcall('HGET', p .. 'item:' .. ids[j], 'record')\n"
    "      z[#z + 1] = record_urgency(str(r))\n"
    "      z[#z + 1] = ids[j]\n"
    "    end\n"
    "    redis.call('ZADD', zu, unpack(z))\n"
    "  end\n"
    "end\n"
    "local function urgent_kept(mark)\n"
    "  local v = redis.call('GET', mark)\n"
    "  return v and v:sub(1, 9) ~= 'building '\n"
    "end\n"
    "local function urgent_step(zq, zu, mark, p, step)\n"
    "  local v = redis.call('GET', mark)\n"
    "  if v and v:sub(1, 9) ~= 'building ' then return {-1, 1} end\n"
    "  local c = v and v:sub(10) or ''\n"
    "  if c ~= '-inf' and not tonumber((c:gsub('^%(', ''))) then\n"
    "    c = '-inf'\n"
    "    redis.call('DEL', zu)\n"
    "  end\n"
    "  local r = redis.call('ZRANGEBYSCORE', zq, c, '+inf', 'WITHSCORES',\n"
    "                       'LIMIT', 0, step)\n"
    "  local n, ids = #r / 2, {}\n"
    "  if n == step and r[2] == r[2 * n] then\n"
    "    ids = redis.call('ZRANGEBYSCORE', zq, r[2], r[2])\n"
    "    c = '(' .. r[2]\n"
    "  else\n"
    "    for i = 1, n do ids[i] = r[2 * i - 1] end\n"
    "    if n > 0 then c = r[2 * n] end\n"
    "  end\n"
    "  urgent_add(zu, p, ids)\n"
    "  if n < step then\n"
    "    redis.call('SET', mark, now)\n"
    "    return {redis.call('ZCARD', zu), 1}\n"
    "  end\n"
    "  redis.call('SET', mark, 'building ' .. c)\n"
    "  return {#ids, 0}\n"
    "end\n"
    "local function start_after(z, urgent, p, c, s)\n"
    "  if c == '' then return 0 end\n"
    "  local rank\n"
    "  if urgent then rank = redis.call('ZREVRANK', z, c)\n"
    "  else rank = redis.call('ZRANK', z, c) end\n"
    "  if rank then return rank + 1 end\n"
    "  if s == '' then\n"
    "    s = redis.call('HGET', p .. 'item:' .. c,\n"
    "                   urgent and 'urgency' or 'received_ms')\n"
    "    if not s then return nil end\n"
    "  end\n"
    "  local start, eq = 0, redis.call('ZRANGEBYSCORE', z, s, s)\n"
    "  if urgent then\n"
    "    start = redis.call('ZCOUNT', z, '(' .. s, '+inf')\n"
    "    for _, m in ipairs(eq) do\n"
    "      if before(c, m) then start = start + 1 end end\n"
    "  else\n"
    "    start = redis.call('ZCOUNT', z, '-inf', '(' .. s)\n"
    "    for _, m in ipairs(eq) do\n"
    "      if before(m, c) then start = start + 1 end end\n"
    "  end\n"
    "  return start\n"
    "end\n";

/* KEYS: queue, queue:urgent, its marker.  ARGV: prefix, limit, cursor (''
 * for the first page), urgent (1: highest score first, from queue:urgent;
 * -2 when it is not kept).  A cursor whose item left the queue is placed where
 * its score (kept in the item hash) puts it (start_after).  Returns {now,
 * length, next cursor or '', items...}; -1 for an unknown cursor. */
static const char list_lua[] =
    "local p, limit, c = ARGV[1], tonumber(ARGV[2]), ARGV[3]\n"
    "local urgent, z = ARGV[4] == '1', KEYS[1]\n"
    "if urgent then\n"
    "  z = KEYS[2]\n"
    "  if not urgent_kept(KEYS[3]) then return -2 end\n"
    "end\n"
    "local start = start_after(z, urgent, p, c, '')\n"
    "if not start then return -1 end\n"
    "local ids\n"
    "local last = start + limit\n"
    "if urgent then ids = redis.call('ZREVRANGE', z, start, last)\n"
    "else ids = redis.call('ZRANGE', z, start, last) end\n"
    "local out = {now, redis.call('ZCARD', z), ''}\n"
    "local n = #ids\n"
    "if n > limit then n = limit; out[3] = ids[limit] end\n"
    "for i = 1, n do item(out, p, ids[i]) end\n"
    "return out\n";

/* KEYS[1] item hash.  ARGV: prefix, id.  {now, 1, '', item} or 0. */
static const char show_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
    "local out = {now, 1, ''}\n"
    "item(out, ARGV[1], ARGV[2])\n"
    "return out\n";

/* KEYS: queue, queue:urgent, its marker, claims (score = expiry ms).
 * ARGV: prefix, n, by, ttl_ms, urgent (queue:urgent's order; -2 when it
 * is not kept), cursor ('' from the start) and its score, walk.  Expired
 * claims are dropped first; then at most walk ids of the order after the
 * cursor are looked at, 100 at a time, claiming ids that have no claim
 * left, until n are claimed.  Returns {now, length, cursor, its score,
 * claimed items...}: the cursor is the last id looked at, '' when the walk
 * reached the end of the order (queue_claim calls again from a cursor
 * until it has n items or the end: claim_call). */
static const char claim_lua[] =
    "local p, n, by = ARGV[1], tonumber(ARGV[2]), ARGV[3]\n"
    "local exp, urgent, z = now + tonumber(ARGV[4]), ARGV[5] == '1', KEYS[1]\n"
    "local walk = tonumber(ARGV[8])\n"
    "if urgent then\n"
    "  z = KEYS[2]\n"
    "  if not urgent_kept(KEYS[3]) then return -2 end\n"
    "end\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)\n"
    "local start = start_after(z, urgent, p, ARGV[6], ARGV[7])\n"
    "if not start then return -1 end\n"
    "local out = {now, redis.call('ZCARD', z), ARGV[6], ARGV[7]}\n"
    "local got, walked = 0, 0\n"
    "while got < n do\n"
    "  if walked == walk then return out end\n"
    "  local m = math.min(100, walk - walked)\n"
    "  local r\n"
    "  if urgent then\n"
    "    r = redis.call('ZREVRANGE', z, start, start + m - 1, 'WITHSCORES')\n"
    "  else\n"
    "    r = redis.call('ZRANGE', z, start, start + m - 1, 'WITHSCORES')\n"
    "  end\n"
    "  for i = 1, #r, 2 do\n"
    "    if got == n then return out end\n"
    "    local id = r[i]\n"
    "    local key = p .. 'item:' .. id\n"
    "    if not redis.call('ZSCORE', KEYS[4], id)\n"
    "       and redis.call('EXISTS', key) == 1 then\n"
    "      redis.call('HSET', key, 'claimed_by', by, 'claim_expires_ms', exp)\n"
    "      redis.call('ZADD', KEYS[4], exp, id)\n"
    "      item(out, p, id)\n"
    "      got = got + 1\n"
    "    end\n"
    "    out[3], out[4] = id, r[i + 1]\n"
    "  end\n"
    "  walked = walked + #r / 2\n"
    "  if #r < 2 * m then break end\n"
    "  start = start + m\n"
    "end\n"
    "if got < n then out[3], out[4] = '', '' end\n"
    "return out\n";

/* KEYS: queue, queue:urgent, claims, decided, audit, training, stats,
 * queue:urgent's marker, then one item hash per decision.  ARGV: by,
 * review thresholds (JSON), count, then per decision id, approve|reject,
 * labels ('' for the default).  Returns, per decision, {status, verdict,
 * labels, why}: 200 decided now, 404 unknown, 409 already decided
 * (nothing written), 500 unreadable record.  Reads come before writes, so
 * a failing decision writes nothing.  The item's two scores go into its
 * hash (received_ms from the queue zset, urgency from the record, which
 * is what queue:urgent holds when kept): a list cursor on a decided item
 * needs them, undo its received_ms; submit does not write them, to stay
 * cheap. */
static const char decide_lua[] =
    "local by, thr = ARGV[1], cjson.decode(ARGV[2])\n"
    "local function defaults(rec, reject)\n"
    "  local unsure, out, any = {}, {}, false\n"
    "  if type(rec.unsure) == 'table' then\n"
    "    for _, l in ipairs(rec.unsure) do unsure[l] = true end end\n"
    "  if type(rec.scores) == 'table' then\n"
    "    for l, s in pairs(rec.scores) do\n"
    "      local r = thr[l] or thr['*'] or 0.5\n"
    "      any = true\n"
    "      out[l] = (reject and (unsure[l] or (type(s) == 'number'\n"
    "                and s >= r))) and 1 or 0\n"
    "    end\n"
    "  end\n"
    "  if not any then\n"
    "    for l, _ in pairs(thr) do\n"
    "      if l ~= '*' then out[l] = 0 end end\n"
    "  end\n"
    "  return cjson.encode(out)\n"
    "end\n"
    "local res, kept = {}, redis.call('EXISTS', KEYS[8]) == 1\n"
    "for i = 1, tonumber(ARGV[3]) do\n"
    "  local key, id = KEYS[8 + i], ARGV[1 + 3 * i]\n"
    "  local decision, labels = ARGV[2 + 3 * i], ARGV[3 + 3 * i]\n"
    "  local f = redis.call('HMGET', key, 'record', 'state', 'claimed_by',\n"
    "                       'claim_expires_ms')\n"
    "  local ok, rec = pcall(cjson.decode, f[1] or '')\n"
    "  if not f[1] then res[i] = {404, '', '', ''}\n"
    "  elseif (f[2] or 'queued') ~= 'queued' then\n"
    "    res[i] = {409, '', '', 'decided'}\n"
    "  elseif not ok or type(rec) ~= 'table' then res[i] = {500, '', '', ''}\n"
    "  else\n"
    "    if labels == '' then\n"
    "      labels = defaults(rec, decision == 'reject')\n"
    "    end\n"
    "    local prev = {state = 'queued'}\n"
    "    if f[3] and (tonumber(f[4] or '') or 0) > now then\n"
    "      prev.claimed_by = f[3]; prev.claim_expires_ms = tonumber(f[4]) end\n"
    "    local ms = redis.call('ZSCORE', KEYS[1], id)\n"
    "    redis.call('ZREM', KEYS[1], id)\n"
    "    if kept then redis.call('ZREM', KEYS[2], id) end\n"
    "    redis.call('ZREM', KEYS[3], id)\n"
    "    redis.call('ZADD', KEYS[4], now, id)\n"
    "    redis.call('HSET', key, 'state', 'decided', 'decision', decision,\n"
    "               'labels', labels, 'decided_by', by, 'decided_at_ms', now,\n"
    "               'urgency', urgency(rec))\n"
    "    if ms then redis.call('HSET', key, 'received_ms', ms) end\n"
    "    redis.call('HDEL', key, 'claimed_by', 'claim_expires_ms')\n"
    "    redis.call('XADD', KEYS[5], '*', 'action', decision, 'id', id,\n"
    "               'by', by, 'at_ms', now, 'labels', labels,\n"
    "               'verdict', str(rec.verdict),\n"
    "               'previous', cjson.encode(prev))\n"
    "    redis.call('XADD', KEYS[6], '*', 'op', 'learn',\n"
    "               'text', str(rec.text),\n"
    "               'lang', str(rec.lang_hint), 'labels', labels,\n"
    "               'source', 'decision', 'id', id, 'by', by, 'ts_ms', now)\n"
    "    redis.call('HINCRBY', KEYS[7], decision, 1)\n"
    "    res[i] = {200, str(rec.verdict), labels, ''}\n"
    "  end\n"
    "end\n"
    "return res\n";

/* KEYS: queue, queue:urgent, claims, decided, audit, training, stats,
 * queue:urgent's marker, item.  ARGV: id, by, window_ms.  Returns
 * {{status, verdict, labels, why}} like decide_lua: 200 back in the queue
 * (and in queue:urgent when kept, with the urgency of its record), 404
 * unknown, 409 not decided or past the window. */
static const char undo_lua[] =
    "local id, by, key = ARGV[1], ARGV[2], KEYS[9]\n"
    "local f = redis.call('HMGET', key, 'record', 'state', 'received_ms',\n"
    "  'decision', 'labels', 'decided_by', 'decided_at_ms')\n"
    "if not f[1] then return {{404, '', '', ''}} end\n"
    "if f[2] ~= 'decided' then return {{409, '', '', 'not_decided'}} end\n"
    "local at = tonumber(f[7] or '') or 0\n"
    "if now - at > tonumber(ARGV[3]) then\n"
    "  return {{409, '', '', 'window'}} end\n"
    "local ok, rec = pcall(cjson.decode, f[1])\n"
    "if not ok or type(rec) ~= 'table' then return {{500, '', '', ''}} end\n"
    "local labels = f[5] or '{}'\n"
    "local okl, lab = pcall(cjson.decode, labels)\n"
    "local prev = cjson.encode({state = 'decided', decision = f[4] or '',\n"
    "  labels = okl and lab or labels, decided_by = f[6] or '',\n"
    "  decided_at_ms = at})\n"
    "redis.call('ZADD', KEYS[1], f[3] or now, id)\n"
    "if redis.call('EXISTS', KEYS[8]) == 1 then\n"
    "  redis.call('ZADD', KEYS[2], urgency(rec), id) end\n"
    "redis.call('ZREM', KEYS[3], id)\n"
    "redis.call('ZREM', KEYS[4], id)\n"
    "redis.call('HSET', key, 'state', 'queued')\n"
    "redis.call('HDEL', key, 'decision', 'labels', 'decided_by',\n"
    "           'decided_at_ms', 'claimed_by', 'claim_expires_ms')\n"
    "redis.call('XADD', KEYS[5], '*', 'action', 'undo', 'id', id, 'by', by,\n"
    "           'at_ms', now, 'labels', labels, 'verdict', str(rec.verdict),\n"
    "           'previous', prev)\n"
    "redis.call('XADD', KEYS[6], '*', 'op', 'unlearn', 'text', str(rec.text),\n"
    "           'lang', str(rec.lang_hint), 'labels', labels,\n"
    "           'source', 'undo', 'id', id, 'by', by, 'ts_ms', now)\n"
    "redis.call('HINCRBY', KEYS[7], 'undo', 1)\n"
    "return {{200, str(rec.verdict), labels, ''}}\n";

/* KEYS: queue, queue:urgent, its marker.  ARGV: prefix, step.  One step
 * of keeping queue:urgent (urgent_step). */
static const char keep_lua[] =
    "return urgent_step(KEYS[1], KEYS[2], KEYS[3], ARGV[1], "
    "tonumber(ARGV[2]))\n";

/* KEYS: queue, claims, stats.  Returns {now, length, oldest_ms or -1,
 * claimed, approved, rejected, undone}. */
static const char stats_lua[] =
    "local o = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')\n"
    "local s = redis.call('HMGET', KEYS[3], 'approve', 'reject', 'undo')\n"
    "return {now, redis.call('ZCARD', KEYS[1]), tonumber(o[2] or '-1'),\n"
    "  redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf'),\n"
    "  tonumber(s[1] or '0'), tonumber(s[2] or '0'), tonumber(s[3] or '0')}\n";

/* The reply's strings are NUL-terminated (hiredis adds one). */
static const char *
queue_reply_str(const redisReply *r)
{
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
        return r->str;
    return "";
}

static const char *
queue_reply_opt(const redisReply *r)
{
    const char *s = queue_reply_str(r);

    return s[0] ? s : NULL;
}

static long long
queue_reply_int(const redisReply *r)
{
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return strtoll(r->str, NULL, 10);
    return 0;
}

#define QUEUE_ITEM_FIELDS 9

/* QUEUE_ITEM_FIELDS reply elements (common_lua's item) into it; its
 * strings point into the reply. */
static void
item_of(redisReply **f, struct queue_item *it)
{
    it->id = queue_reply_str(f[0]);
    it->record = queue_reply_str(f[1]);
    it->record_len = f[1]->type == REDIS_REPLY_STRING ? f[1]->len : 0;
    it->state = queue_reply_str(f[2]);
    it->claimed_by = queue_reply_opt(f[3]);
    it->claim_expires_ms = queue_reply_int(f[4]);
    it->decision = queue_reply_opt(f[5]);
    it->labels = queue_reply_opt(f[6]);
    it->decided_by = queue_reply_opt(f[7]);
    it->decided_at_ms = queue_reply_int(f[8]);
}

/* {now, length, cursor, items...} (list, show, claim) into a page for
 * cb; -1 (an unknown cursor, an unknown item) is QUEUE_NOT_FOUND. */
static void
page_reply(enum queue_status st, const struct redisReply *reply,
           queue_page_cb *cb, void *arg)
{
    struct queue_item *items = NULL;
    struct queue_page page;
    size_t i;

    memset(&page, 0, sizeof(page));
    if (st == QUEUE_OK && reply->type == REDIS_REPLY_INTEGER) {
        cb(QUEUE_NOT_FOUND, NULL, arg);
        return;
    }
    if (st == QUEUE_OK &&
        (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
         (reply->elements - 3) % QUEUE_ITEM_FIELDS != 0))
        st = QUEUE_ERROR;
    if (st != QUEUE_OK) {
        cb(st, NULL, arg);
        return;
    }
    page.now_ms = queue_reply_int(reply->element[0]);
    page.length = queue_reply_int(reply->element[1]);
    page.next_cursor = queue_reply_opt(reply->element[2]);
    page.n = (reply->elements - 3) / QUEUE_ITEM_FIELDS;
    if (page.n > 0) {
        items = calloc(page.n, sizeof(*items));
        if (items == NULL) {
            cb(QUEUE_ERROR, NULL, arg);
            return;
        }
    }
    for (i = 0; i < page.n; i++)
        item_of(reply->element + 3 + i * QUEUE_ITEM_FIELDS, &items[i]);
    page.items = items;
    cb(QUEUE_OK, &page, arg);
    free(items);
}

static void
on_page(enum redis_result res, const struct redisReply *reply, void *arg)
{
    struct queue_call c = *(struct queue_call *)arg;

    free(arg);
    page_reply(queue_status_of(res), reply, c.page_cb, c.arg);
}

static struct queue_call *
queue_call_page(queue_page_cb *cb, void *arg)
{
    struct queue_call *c = queue_call_new(NULL, NULL, arg);

    if (c != NULL)
        c->page_cb = cb;
    return c;
}

/* Sends the list script (see list_lua); cursor is "" or a checked id. */
static int
list_send(struct queue *q, int urgent, unsigned limit, const char *cursor,
          redis_reply_cb *fn, void *callarg)
{
    char keys[3][QUEUE_KEY_MAX], lim[16];
    const char *argv[7];
    size_t len[7];

    queue_order_keys(q, keys, argv, len);
    argv[3] = q->prefix;
    len[3] = q->prefix_len;
    argv[4] = lim;
    len[4] = (size_t)snprintf(lim, sizeof(lim), "%u", limit);
    argv[5] = cursor;
    len[5] = strlen(cursor);
    argv[6] = urgent ? "1" : "0";
    len[6] = 1;
    return redis_eval(q->redis, q->list, 3, 7, argv, len, fn, callarg);
}

/* A list in the urgent order waits for the order to be kept
 * (queue_keep_urgent), then goes; its arguments are kept meanwhile.
 * Should the order be gone again when it runs (an operator deleted the
 * marker in between), the script answers -2 and it waits again, a few
 * times at most (a claim likewise: claim_call). */
#define URGENT_TRIES 3

struct urgent_call {
    struct queue *q;
    int tries;
    unsigned n;
    queue_page_cb *cb;
    void *arg;
    char cursor[QUEUE_ID_MAX + 1]; /* "" or the cursor */
};

static void urgent_call_go(enum queue_status st, long long n, void *arg);

static void
on_urgent_page(enum redis_result res, const struct redisReply *reply, void *arg)
{
    struct urgent_call *u = arg;
    enum queue_status st = queue_status_of(res);

    if (st == QUEUE_OK && reply->type == REDIS_REPLY_INTEGER &&
        reply->integer == -2) {
        if (++u->tries < URGENT_TRIES &&
            queue_keep_urgent(u->q, urgent_call_go, u) == 0)
            return;
        u->cb(QUEUE_ERROR, NULL, u->arg);
        free(u);
        return;
    }
    page_reply(st, reply, u->cb, u->arg);
    free(u);
}

/* The order is kept (or could not be): the list itself. */
static void
urgent_call_go(enum queue_status st, long long n, void *arg)
{
    struct urgent_call *u = arg;
    int rc = -1;

    (void)n;
    if (st == QUEUE_OK && !u->q->closing)
        rc = list_send(u->q, 1, u->n, u->cursor, on_urgent_page, u);
    if (rc == 0)
        return;
    u->cb(st == QUEUE_OK ? QUEUE_ERROR : st, NULL, u->arg);
    free(u);
}

static int
urgent_call_start(struct queue *q, unsigned n, const char *cursor,
                  queue_page_cb *cb, void *arg)
{
    struct urgent_call *u = calloc(1, sizeof(*u));

    if (u == NULL)
        return -1;
    u->q = q;
    u->n = n;
    u->cb = cb;
    u->arg = arg;
    snprintf(u->cursor, sizeof(u->cursor), "%s", cursor);
    if (queue_keep_urgent(q, urgent_call_go, u) != 0) {
        free(u);
        return -1;
    }
    return 0;
}

int
queue_list(struct queue *q, int urgent, unsigned limit, const char *cursor,
           queue_page_cb *cb, void *arg)
{
    size_t cur_len = 0;
    struct queue_call *c;

    if (limit < 1 || limit > QUEUE_LIMIT_MAX ||
        (cursor != NULL && cursor[0] && !queue_id_ok(cursor, &cur_len)))
        return -1;
    if (urgent)
        return urgent_call_start(q, limit, cur_len ? cursor : "", cb, arg);
    c = queue_call_page(cb, arg);
    if (c == NULL ||
        list_send(q, 0, limit, cur_len ? cursor : "", on_page, c) != 0) {
        free(c);
        return -1;
    }
    return 0;
}

int
queue_show(struct queue *q, const char *id, queue_page_cb *cb, void *arg)
{
    char item[QUEUE_KEY_MAX];
    const char *argv[3];
    size_t len[3], id_len;

    if (!queue_id_ok(id, &id_len))
        return -1;
    argv[0] = item;
    len[0] = queue_key(q, item, "item:", id, id_len);
    argv[1] = q->prefix;
    len[1] = q->prefix_len;
    argv[2] = id;
    len[2] = id_len;
    return queue_eval(q, q->show, 1, 3, argv, len, on_page,
                      queue_call_page(cb, arg));
}

/* A claim looks at no more than this many ids of the order in one script
 * (claim_lua), so that claimed items ahead of the unclaimed ones hold
 * Redis no longer than that per call (about 6 ms when all are claimed,
 * REDIS.md), however many there are; queue_claim calls again, after the
 * last id looked at, until it has its items or the order ends. */
#define QUEUE_CLAIM_WALK 1000

/* A claim under way: the items claimed so far (copied out of the replies),
 * and where the next call goes on.  In the urgent order the order is kept
 * first (queue_keep_urgent), and again, a few times at most, when a call
 * answers -2. */
struct claim_call {
    struct queue *q;
    int urgent, tries;
    unsigned n, ttl_s;
    queue_page_cb *cb;
    void *arg;
    long long now_ms, length;
    size_t got;
    struct queue_item *items;      /* n; an item's strings in one block at id */
    char cursor[QUEUE_ID_MAX + 1]; /* "" from the start */
    char score[64];                /* the cursor's score in the order */
    char by[];
};

static void on_claim(enum redis_result res, const struct redisReply *reply,
                     void *arg);

/* Sends the next call of c (see claim_lua). */
static int
claim_send(struct claim_call *c)
{
    struct queue *q = c->q;
    char keys[4][QUEUE_KEY_MAX], num[16], ttl[24], walk[16];
    const char *argv[12];
    size_t len[12];

    if (q->closing)
        return -1;
    queue_order_keys(q, keys, argv, len);
    argv[3] = keys[3];
    len[3] = queue_key(q, keys[3], "claims", NULL, 0);
    argv[4] = q->prefix;
    len[4] = q->prefix_len;
    argv[5] = num;
    len[5] = (size_t)snprintf(num, sizeof(num), "%zu", c->n - c->got);
    argv[6] = c->by;
    len[6] = strlen(c->by);
    argv[7] = ttl;
    len[7] = (size_t)snprintf(ttl, sizeof(ttl), "%llu",
                              (unsigned long long)c->ttl_s * 1000);
    argv[8] = c->urgent ? "1" : "0";
    len[8] = 1;
    argv[9] = c->cursor;
    len[9] = strlen(c->cursor);
    argv[10] = c->score;
    len[10] = strlen(c->score);
    argv[11] = walk;
    len[11] = (size_t)snprintf(walk, sizeof(walk), "%u", QUEUE_CLAIM_WALK);
    return redis_eval(q->redis, q->claim, 4, 12, argv, len, on_claim, c);
}

/* src's strings into one block of dst's own (at dst->id). */
static int
item_copy(struct queue_item *dst, const struct queue_item *src)
{
    const char *in[7] = {src->id,         src->record,   src->state,
                         src->claimed_by, src->decision, src->labels,
                         src->decided_by};
    const char **out[7] = {&dst->id,         &dst->record,   &dst->state,
                           &dst->claimed_by, &dst->decision, &dst->labels,
                           &dst->decided_by};
    size_t len[7], need = 0;
    char *p;

    for (int i = 0; i < 7; i++) {
        len[i] = in[i] == NULL ? 0 : i == 1 ? src->record_len : strlen(in[i]);
        need += len[i] + 1;
    }
    *dst = *src;
    p = malloc(need);
    if (p == NULL)
        return -1;
    for (int i = 0; i < 7; i++) {
        if (in[i] == NULL) {
            *out[i] = NULL;
            continue;
        }
        memcpy(p, in[i], len[i]);
        p[len[i]] = '\0';
        *out[i] = p;
        p += len[i] + 1;
    }
    return 0;
}

/* The claim's answer: the items claimed so far, also when a later call
 * failed (they are claimed in Redis for `by`: they are the moderator's to
 * decide, and would come back only when the claims expire); st when
 * there are none. */
static void
claim_finish(struct claim_call *c, enum queue_status st)
{
    struct queue_page page;

    if (st == QUEUE_OK || c->got > 0) {
        memset(&page, 0, sizeof(page));
        page.now_ms = c->now_ms;
        page.length = c->length;
        page.items = c->items;
        page.n = c->got;
        c->cb(QUEUE_OK, &page, c->arg);
    } else {
        c->cb(st, NULL, c->arg);
    }
    for (size_t i = 0; i < c->got; i++)
        free((char *)c->items[i].id);
    free(c->items);
    free(c);
}

/* The order is kept (or could not be; or needs no keeping): the next
 * call. */
static void
claim_go(enum queue_status st, long long n, void *arg)
{
    struct claim_call *c = arg;

    (void)n;
    if (st == QUEUE_OK && claim_send(c) == 0)
        return;
    claim_finish(c, st == QUEUE_OK ? QUEUE_ERROR : st);
}

static void
on_claim(enum redis_result res, const struct redisReply *reply, void *arg)
{
    struct claim_call *c = arg;
    enum queue_status st = queue_status_of(res);
    size_t k = 0;

    if (st == QUEUE_OK && reply->type == REDIS_REPLY_INTEGER &&
        reply->integer == -2) {
        if (++c->tries < URGENT_TRIES && !c->q->closing &&
            queue_keep_urgent(c->q, claim_go, c) == 0)
            return;
        claim_finish(c, QUEUE_ERROR);
        return;
    }
    if (st == QUEUE_OK &&
        (reply->type != REDIS_REPLY_ARRAY || reply->elements < 4 ||
         (reply->elements - 4) % QUEUE_ITEM_FIELDS != 0 ||
         (k = (reply->elements - 4) / QUEUE_ITEM_FIELDS) > c->n - c->got ||
         reply->element[2]->type != REDIS_REPLY_STRING ||
         reply->element[3]->type != REDIS_REPLY_STRING ||
         reply->element[2]->len >= sizeof(c->cursor) ||
         reply->element[3]->len >= sizeof(c->score)))
        st = QUEUE_ERROR;
    if (st != QUEUE_OK) {
        claim_finish(c, st);
        return;
    }
    c->now_ms = queue_reply_int(reply->element[0]);
    c->length = queue_reply_int(reply->element[1]);
    for (size_t i = 0; i < k; i++) {
        struct queue_item it;

        item_of(reply->element + 4 + i * QUEUE_ITEM_FIELDS, &it);
        if (item_copy(&c->items[c->got], &it) != 0) {
            claim_finish(c, QUEUE_ERROR);
            return;
        }
        c->got++;
    }
    memcpy(c->cursor, reply->element[2]->str, reply->element[2]->len + 1);
    memcpy(c->score, reply->element[3]->str, reply->element[3]->len + 1);
    if (c->got == c->n || c->cursor[0] == '\0')
        claim_finish(c, QUEUE_OK);
    else if (claim_send(c) != 0)
        claim_finish(c, QUEUE_ERROR);
}

int
queue_claim(struct queue *q, int urgent, unsigned n, const char *by,
            unsigned ttl_s, queue_page_cb *cb, void *arg)
{
    struct claim_call *c;
    size_t by_len;

    if (n < 1 || n > QUEUE_LIMIT_MAX || by == NULL)
        return -1;
    by_len = strlen(by);
    c = calloc(1, sizeof(*c) + by_len + 1);
    if (c == NULL || (c->items = calloc(n, sizeof(*c->items))) == NULL) {
        free(c);
        return -1;
    }
    c->q = q;
    c->urgent = urgent;
    c->n = n;
    c->ttl_s = ttl_s;
    c->cb = cb;
    c->arg = arg;
    memcpy(c->by, by, by_len + 1);
    if ((urgent ? queue_keep_urgent(q, claim_go, c) : claim_send(c)) != 0) {
        free(c->items);
        free(c);
        return -1;
    }
    return 0;
}

/* The urgent order is rebuilt in steps of at most this many items, one
 * script each (urgent_step in common_lua: about 10-15 ms of Redis for a
 * step of 1,000), so that other clients wait no longer than that. */
#define QUEUE_URGENT_STEP 1000

/* A rebuild under way: one step after the other until the set is kept. */
struct urgent_build {
    struct queue *q;
    queue_count_cb *cb;
    void *arg;
};

static int urgent_step_send(struct urgent_build *b);

static void
on_urgent_step(enum redis_result res, const struct redisReply *reply, void *arg)
{
    struct urgent_build *b = arg;
    enum queue_status st = queue_status_of(res);
    long long n = 0, done = 0;

    if (st == QUEUE_OK &&
        (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
         reply->element[0]->type != REDIS_REPLY_INTEGER ||
         reply->element[1]->type != REDIS_REPLY_INTEGER))
        st = QUEUE_ERROR;
    if (st == QUEUE_OK) {
        n = reply->element[0]->integer;
        done = reply->element[1]->integer;
        if (!done && urgent_step_send(b) == 0)
            return;
        if (!done)
            st = QUEUE_ERROR;
    }
    b->cb(st, st == QUEUE_OK ? n : 0, b->arg);
    free(b);
}

static int
urgent_step_send(struct urgent_build *b)
{
    struct queue *q = b->q;
    char keys[3][QUEUE_KEY_MAX], step[16];
    const char *argv[5];
    size_t len[5];

    if (q->closing)
        return -1;
    queue_order_keys(q, keys, argv, len);
    argv[3] = q->prefix;
    len[3] = q->prefix_len;
    argv[4] = step;
    len[4] = (size_t)snprintf(step, sizeof(step), "%u", QUEUE_URGENT_STEP);
    return redis_eval(q->redis, q->keep, 3, 5, argv, len, on_urgent_step, b);
}

int
queue_keep_urgent(struct queue *q, queue_count_cb *cb, void *arg)
{
    struct urgent_build *b = malloc(sizeof(*b));

    if (b == NULL)
        return -1;
    b->q = q;
    b->cb = cb;
    b->arg = arg;
    if (urgent_step_send(b) != 0) {
        free(b);
        return -1;
    }
    return 0;
}

/* {{status, verdict, labels, why}, ...} (decide, undo) into outcomes. */
static void
on_outcomes(enum redis_result res, const struct redisReply *reply, void *arg)
{
    struct queue_call c = *(struct queue_call *)arg;
    enum queue_status st = queue_status_of(res);
    struct queue_outcome *out = NULL;
    size_t i, n = 0;

    free(arg);
    /* One outcome per decision sent: the caller indexes its own by them. */
    if (st == QUEUE_OK &&
        (reply->type != REDIS_REPLY_ARRAY || reply->elements != c.want))
        st = QUEUE_ERROR;
    if (st == QUEUE_OK) {
        n = reply->elements;
        out = calloc(n ? n : 1, sizeof(*out));
        if (out == NULL)
            st = QUEUE_ERROR;
    }
    for (i = 0; st == QUEUE_OK && i < n; i++) {
        const redisReply *e = reply->element[i];

        if (e->type != REDIS_REPLY_ARRAY || e->elements != 4) {
            st = QUEUE_ERROR;
            break;
        }
        switch (queue_reply_int(e->element[0])) {
        case 200:
            out[i].status = QUEUE_OK;
            break;
        case 404:
            out[i].status = QUEUE_NOT_FOUND;
            break;
        case 409:
            out[i].status = QUEUE_CONFLICT;
            break;
        default:
            out[i].status = QUEUE_ERROR;
            break;
        }
        out[i].verdict = queue_reply_str(e->element[1]);
        out[i].labels = queue_reply_str(e->element[2]);
        out[i].why = queue_reply_str(e->element[3]);
    }
    c.decide_cb(st, st == QUEUE_OK ? out : NULL, st == QUEUE_OK ? n : 0, c.arg);
    free(out);
}

static struct queue_call *
queue_call_decide(queue_decide_cb *cb, void *arg, size_t want)
{
    struct queue_call *c = queue_call_new(NULL, NULL, arg);

    if (c != NULL) {
        c->decide_cb = cb;
        c->want = want;
    }
    return c;
}

/* The eight keys decide_lua and undo_lua share, into keys (8 buffers of
 * QUEUE_KEY_MAX) and argv/len. */
static void
queue_decision_keys(const struct queue *q, char (*keys)[QUEUE_KEY_MAX],
                    const char **argv, size_t *len)
{
    static const char *const parts[8] = {
        "queue", "queue:urgent", "claims", "decided",
        "audit", "training",     "stats",  "queue:urgent:kept"};

    queue_keys(q, parts, 8, keys, argv, len);
}

int
queue_decide(struct queue *q, const struct queue_decision *d, size_t n,
             const char *by, const char *review, queue_decide_cb *cb, void *arg)
{
    char keys[8][QUEUE_KEY_MAX], count[16];
    char(*items)[QUEUE_KEY_MAX] = NULL;
    const char **argv = NULL;
    size_t *len = NULL, nargs, i, id_len;
    int ret = -1;

    if (n < 1 || n > QUEUE_DECISIONS_MAX || by == NULL || review == NULL)
        return -1;
    nargs = 8 + n + 3 + 3 * n;
    items = malloc(n * sizeof(*items));
    argv = malloc(nargs * sizeof(*argv));
    len = malloc(nargs * sizeof(*len));
    if (items == NULL || argv == NULL || len == NULL)
        goto fail;
    queue_decision_keys(q, keys, argv, len);
    argv[8 + n] = by;
    len[8 + n] = strlen(by);
    argv[9 + n] = review;
    len[9 + n] = strlen(review);
    argv[10 + n] = count;
    len[10 + n] = (size_t)snprintf(count, sizeof(count), "%zu", n);
    for (i = 0; i < n; i++) {
        size_t a = 11 + n + 3 * i;

        if (!queue_id_ok(d[i].id, &id_len))
            goto fail;
        argv[8 + i] = items[i];
        len[8 + i] = queue_key(q, items[i], "item:", d[i].id, id_len);
        argv[a] = d[i].id;
        len[a] = id_len;
        argv[a + 1] = d[i].reject ? "reject" : "approve";
        len[a + 1] = strlen(argv[a + 1]);
        argv[a + 2] = d[i].labels ? d[i].labels : "";
        len[a + 2] = strlen(argv[a + 2]);
    }
    ret = queue_eval(q, q->decide, (int)(8 + n), (int)nargs, argv, len,
                     on_outcomes, queue_call_decide(cb, arg, n));
fail:
    free(items);
    free(argv);
    free(len);
    return ret;
}

int
queue_undo(struct queue *q, const char *id, const char *by, unsigned window_s,
           queue_decide_cb *cb, void *arg)
{
    char keys[8][QUEUE_KEY_MAX], item[QUEUE_KEY_MAX], win[24];
    const char *argv[12];
    size_t len[12], id_len;

    if (!queue_id_ok(id, &id_len) || by == NULL)
        return -1;
    queue_decision_keys(q, keys, argv, len);
    argv[8] = item;
    len[8] = queue_key(q, item, "item:", id, id_len);
    argv[9] = id;
    len[9] = id_len;
    argv[10] = by;
    len[10] = strlen(by);
    argv[11] = win;
    len[11] = (size_t)snprintf(win, sizeof(win), "%llu",
                               (unsigned long long)window_s * 1000);
    return queue_eval(q, q->undo, 9, 12, argv, len, on_outcomes,
                      queue_call_decide(cb, arg, 1));
}

/* XREVRANGE's reply: {{event id, {name, value, ...}}, ...}; one entry
 * more than the page, to know whether there is a next one. */
static void
on_history(enum redis_result res, const struct redisReply *reply, void *arg)
{
    struct queue_call c = *(struct queue_call *)arg;
    enum queue_status st = queue_status_of(res);
    struct queue_history h;
    struct queue_event *ev = NULL;
    const char **names = NULL, **values = NULL;
    size_t i, j, nf = 0, k = 0;

    free(arg);
    memset(&h, 0, sizeof(h));
    if (st == QUEUE_OK && reply->type != REDIS_REPLY_ARRAY)
        st = QUEUE_ERROR;
    for (i = 0; st == QUEUE_OK && i < reply->elements; i++) {
        const redisReply *e = reply->element[i];

        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[1]->type != REDIS_REPLY_ARRAY)
            st = QUEUE_ERROR;
        else
            nf += e->element[1]->elements / 2;
    }
    if (st == QUEUE_OK) {
        h.n = reply->elements < c.limit ? reply->elements : c.limit;
        ev = calloc(h.n ? h.n : 1, sizeof(*ev));
        names = calloc(nf ? nf : 1, sizeof(*names));
        values = calloc(nf ? nf : 1, sizeof(*values));
        if (ev == NULL || names == NULL || values == NULL)
            st = QUEUE_ERROR;
    }
    for (i = 0; st == QUEUE_OK && i < h.n; i++) {
        const redisReply *e = reply->element[i], *f = e->element[1];

        ev[i].event_id = queue_reply_str(e->element[0]);
        ev[i].names = names + k;
        ev[i].values = values + k;
        for (j = 0; j + 1 < f->elements; j += 2, k++) {
            names[k] = queue_reply_str(f->element[j]);
            values[k] = queue_reply_str(f->element[j + 1]);
            ev[i].n_fields++;
        }
    }
    if (st == QUEUE_OK && reply->elements > c.limit && h.n > 0)
        h.next_cursor = ev[h.n - 1].event_id;
    h.events = ev;
    c.history_cb(st, st == QUEUE_OK ? &h : NULL, c.arg);
    free(ev);
    free(names);
    free(values);
}

/* Reads 1..20 digits at *s worth at most UINT64_MAX into *v, moving *s
 * past them; 0 when there are none or too many. */
static int
queue_event_part(const char **s, unsigned long long *v)
{
    const char *p = *s;

    *v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');

        if (p - *s >= 20 || *v > (ULLONG_MAX - d) / 10)
            return 0;
        *v = *v * 10 + d;
    }
    if (p == *s)
        return 0;
    *s = p;
    return 1;
}

int
queue_event_id_valid(const char *s)
{
    unsigned long long ms, seq;

    if (!queue_event_part(&s, &ms))
        return 0;
    if (*s == '\0')
        return 1; /* "(ms" is before ms-0: every ms is fine */
    if (*s++ != '-' || !queue_event_part(&s, &seq) || *s != '\0')
        return 0;
    return ms > 0 || seq > 0; /* nothing is before 0-0: Redis says ERR */
}

int
queue_history(struct queue *q, unsigned limit, const char *cursor,
              queue_history_cb *cb, void *arg)
{
    char key[QUEUE_KEY_MAX], end[48], count[16];
    const char *argv[6] = {"XREVRANGE", key, end, "-", "COUNT", count};
    size_t len[6] = {9, 0, 0, 1, 5, 0};
    struct queue_call *c;

    if (limit < 1 || limit > QUEUE_LIMIT_MAX ||
        (cursor != NULL && cursor[0] && !queue_event_id_valid(cursor)))
        return -1;
    len[1] = queue_key(q, key, "audit", NULL, 0);
    len[2] = (size_t)snprintf(end, sizeof(end), "%s%s",
                              cursor && cursor[0] ? "(" : "",
                              cursor && cursor[0] ? cursor : "+");
    len[5] = (size_t)snprintf(count, sizeof(count), "%u", limit + 1);
    c = queue_call_new(NULL, NULL, arg);
    if (c != NULL) {
        c->history_cb = cb;
        c->limit = limit;
    }
    return queue_send(q, c, on_history, 6, argv, len);
}

static void
on_stats(enum redis_result res, const struct redisReply *reply, void *arg)
{
    struct queue_call c = *(struct queue_call *)arg;
    enum queue_status st = queue_status_of(res);
    struct queue_stats s;

    free(arg);
    if (st == QUEUE_OK &&
        (reply->type != REDIS_REPLY_ARRAY || reply->elements != 7))
        st = QUEUE_ERROR;
    if (st != QUEUE_OK) {
        c.stats_cb(st, NULL, c.arg);
        return;
    }
    s.now_ms = queue_reply_int(reply->element[0]);
    s.length = queue_reply_int(reply->element[1]);
    s.oldest_ms = queue_reply_int(reply->element[2]);
    s.claimed = queue_reply_int(reply->element[3]);
    s.approved = queue_reply_int(reply->element[4]);
    s.rejected = queue_reply_int(reply->element[5]);
    s.undone = queue_reply_int(reply->element[6]);
    c.stats_cb(QUEUE_OK, &s, c.arg);
}

int
queue_stats(struct queue *q, queue_stats_cb *cb, void *arg)
{
    char keys[3][QUEUE_KEY_MAX];
    const char *argv[3] = {keys[0], keys[1], keys[2]};
    size_t len[3];
    struct queue_call *c = queue_call_new(NULL, NULL, arg);

    len[0] = queue_key(q, keys[0], "queue", NULL, 0);
    len[1] = queue_key(q, keys[1], "claims", NULL, 0);
    len[2] = queue_key(q, keys[2], "stats", NULL, 0);
    if (c != NULL)
        c->stats_cb = cb;
    return queue_eval(q, q->stats, 3, 3, argv, len, on_stats, c);
}

/* A moderation script: common_lua, then body. */
static struct redis_script *
queue_script_add(struct queue *q, const char *body)
{
    size_t a = strlen(common_lua), b = strlen(body);
    char *text = malloc(a + b + 1);
    struct redis_script *s;

    if (text == NULL)
        return NULL;
    memcpy(text, common_lua, a);
    memcpy(text + a, body, b + 1);
    s = redis_script_add(q->redis, text);
    free(text);
    return s;
}

/* ---- lifecycle -------------------------------------------------------- */

static void
queue_on_state(int ready, const char *why, void *arg)
{
    struct queue *q = arg;

    if (q->state_cb != NULL)
        q->state_cb(ready, why, q->state_arg);
}

struct queue *
queue_new(struct event_base *base, const struct queue_config *cfg)
{
    struct queue *q = NULL;
    struct redis_config rc = {0};
    const char *prefix = cfg->prefix ? cfg->prefix : "modfilter:";
    size_t plen = strlen(prefix);

    if (plen > QUEUE_PREFIX_MAX)
        goto fail;
    q = calloc(1, sizeof *q);
    if (q == NULL)
        goto fail;
    memcpy(q->prefix, prefix, plen + 1);
    q->prefix_len = plen;
    rc.url = cfg->url;
    rc.password = cfg->password;
    rc.timeout_ms = cfg->timeout_ms;
    rc.state_cb = queue_on_state;
    rc.state_arg = q;
    q->flush_ev = event_new(base, -1, 0, flush_cb, q);
    if (q->flush_ev == NULL)
        goto fail;
    q->redis = redis_new(base, &rc, NULL, 0);
    if (q->redis == NULL)
        goto fail;
    q->submit = redis_script_add(q->redis, submit_lua);
    q->list = queue_script_add(q, list_lua);
    q->show = queue_script_add(q, show_lua);
    q->claim = queue_script_add(q, claim_lua);
    q->decide = queue_script_add(q, decide_lua);
    q->undo = queue_script_add(q, undo_lua);
    q->stats = queue_script_add(q, stats_lua);
    q->keep = queue_script_add(q, keep_lua);
    q->train = redis_script_add(q->redis, train_lua);
    if (q->submit == NULL || q->list == NULL || q->show == NULL ||
        q->claim == NULL || q->decide == NULL || q->undo == NULL ||
        q->stats == NULL || q->keep == NULL || q->train == NULL)
        goto fail;
    return q;
fail:
    queue_free(q);
    return NULL;
}

void
queue_free(struct queue *q)
{
    if (q == NULL)
        return;
    /* Submits not sent yet fail first, while the connection still takes
     * the commands their callbacks may send (redis_free fails those). */
    q->closing = 1; /* callbacks may not submit again: refused */
    while (q->failed != NULL) {
        struct queue_batch *b = q->failed;

        q->failed = b->next;
        batch_fail(q, b, QUEUE_ERROR);
    }
    if (q->batch != NULL) {
        struct queue_batch *b = q->batch;

        q->batch = NULL;
        batch_fail(q, b, QUEUE_ERROR);
    }
    redis_free(q->redis); /* fails the batches in flight */
    if (q->flush_ev != NULL)
        event_free(q->flush_ev);
    free(q->spare);
    free(q->buf);
    free(q);
}

int
queue_connected(const struct queue *q)
{
    return q != NULL && redis_ready(q->redis);
}

void
queue_set_state_cb(struct queue *q, queue_state_cb *cb, void *arg)
{
    q->state_cb = cb;
    q->state_arg = arg;
}

const char *
queue_last_error(const struct queue *q)
{
    return redis_last_error(q->redis);
}

size_t
queue_pending(const struct queue *q)
{
    /* A batch in flight counts as the submits it carries. */
    return redis_pending(q->redis) - q->batches_waiting + q->items_waiting;
}

unsigned long long
queue_error_count(void)
{
    return redis_error_count();
}

int
queue_url_check(const char *url, char *err, size_t errlen)
{
    struct redis_url u;
    int rc = redis_url_parse(url, &u, err, errlen);

    explicit_bzero(&u, sizeof u);
    return rc;
}
