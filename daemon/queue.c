/*
 * queue.c - the review queue in Redis (see queue.h for the contract and
 * daemon/REDIS.md for the keys).
 *
 * Every call is one Redis command on the worker's connection (redis.c);
 * submitting is one Lua script so that "exists?" and "store + enqueue"
 * cannot interleave with another daemon's submit of the same id.
 */
#include "queue.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "redis.h"

/* KEYS[1] item hash, KEYS[2] queue zset (by received_ms), KEYS[3] urgent
 * zset (by urgency).  ARGV: id, record, received_ms, urgency.
 * Returns 1 when stored, else the record stored earlier (a bulk string).
 * The zsets are written before the hash: the first write that fails
 * (WRONGTYPE, OOM) leaves nothing behind, and an item hash always means
 * the item was fully queued. */
static const char submit_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then\n"
    "  return redis.call('HGET', KEYS[1], 'record') or ''\n"
    "end\n"
    "redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])\n"
    "redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])\n"
    "redis.call('HSET', KEYS[1], 'record', ARGV[2], 'state', 'queued',\n"
    "           'received_ms', ARGV[3], 'urgency', ARGV[4])\n"
    "return 1\n";

#define QUEUE_KEY_MAX (QUEUE_PREFIX_MAX + 32 + QUEUE_ID_MAX)

struct queue {
    struct redis *redis;
    struct redis_script *submit;
    char prefix[QUEUE_PREFIX_MAX + 1];
    size_t prefix_len;
    queue_state_cb *state_cb;
    void *state_arg;
};

/* One call in flight: the caller's callback, until Redis answers. */
struct queue_call {
    queue_submit_cb *submit_cb; /* submit, get */
    queue_count_cb *count_cb;   /* length, oldest */
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
    struct queue_call *c = malloc(sizeof *c);

    if (c == NULL)
        return NULL;
    c->submit_cb = scb;
    c->count_cb = ccb;
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

/* ---- submit ----------------------------------------------------------- */

static void
on_submit(enum redis_result res, const struct redisReply *reply, void *arg)
{
    struct queue_call c = *(struct queue_call *)arg;
    enum queue_status st = queue_status_of(res);

    free(arg);
    if (st != QUEUE_OK) {
        c.submit_cb(st, NULL, 0, c.arg);
    } else if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) {
        c.submit_cb(QUEUE_OK, NULL, 0, c.arg);
    } else if (reply->type == REDIS_REPLY_STRING) {
        c.submit_cb(QUEUE_EXISTS, reply->str, reply->len, c.arg);
    } else {
        c.submit_cb(QUEUE_ERROR, NULL, 0, c.arg);
    }
}

static int
format_urgency(double urgency, char *buf, size_t len)
{
    if (isnan(urgency))
        urgency = 0;
    if (isinf(urgency))
        return snprintf(buf, len, "%s", urgency > 0 ? "+inf" : "-inf");
    return snprintf(buf, len, "%.17g", urgency);
}

int
queue_submit(struct queue *q, const char *id, const char *record,
             size_t record_len, long long received_ms, double urgency,
             queue_submit_cb *cb, void *arg)
{
    char item[QUEUE_KEY_MAX], zq[QUEUE_KEY_MAX], zu[QUEUE_KEY_MAX];
    char ms[32], urg[40];
    const char *argv[7];
    size_t len[7], id_len;
    struct queue_call *c;

    if (!queue_id_ok(id, &id_len) || (record == NULL && record_len > 0))
        return -1;
    argv[0] = item;
    len[0] = queue_key(q, item, "item:", id, id_len);
    argv[1] = zq;
    len[1] = queue_key(q, zq, "queue", NULL, 0);
    argv[2] = zu;
    len[2] = queue_key(q, zu, "queue:urgent", NULL, 0);
    argv[3] = id;
    len[3] = id_len;
    argv[4] = record ? record : "";
    len[4] = record_len;
    argv[5] = ms;
    len[5] = (size_t)snprintf(ms, sizeof ms, "%lld", received_ms);
    argv[6] = urg;
    len[6] = (size_t)format_urgency(urgency, urg, sizeof urg);
    c = queue_call_new(cb, NULL, arg);
    if (c == NULL)
        return -1;
    if (redis_eval(q->redis, q->submit, 3, 7, argv, len, on_submit, c) != 0) {
        free(c);
        return -1;
    }
    return 0;
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

static void
on_length(enum redis_result res, const struct redisReply *reply, void *arg)
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
    return queue_send(q, queue_call_new(NULL, cb, arg), on_length, 2, argv,
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
    q->redis = redis_new(base, &rc, NULL, 0);
    if (q->redis == NULL)
        goto fail;
    q->submit = redis_script_add(q->redis, submit_lua);
    if (q->submit == NULL)
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
    redis_free(q->redis);
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
    return redis_pending(q->redis);
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
