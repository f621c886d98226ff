/*
 * moderation.c - the moderator routes of DESIGN.md: the review queue (list,
 * show, claim, decide, bulk decisions, undo), the audit log and the queue
 * statistics.  routes.c has checked the moderator token; each route here
 * parses its input, makes one queue.c call (one Lua script in Redis, so
 * the step is atomic across workers and daemons) and answers JSON.
 *
 * Deciding writes the training event (stream P training) in the same
 * script; learn.c applies it to the model.  Nothing here touches the
 * classifier.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "modfilterd.h"
#include "queue.h"

#define MODERATION_PAGE_DEFAULT 50
#define MODERATION_CLAIM_DEFAULT 10
#define MODERATION_CLAIM_MAX 100

enum moderation_op {
    MODERATION_LIST,
    MODERATION_SHOW,
    MODERATION_CLAIM,
    MODERATION_DECIDE, /* one item: /v1/queue/{id}/decision */
    MODERATION_BULK,   /* /v1/queue/decisions */
    MODERATION_UNDO,
    MODERATION_HISTORY,
    MODERATION_STATS,
};

/* A moderator request waiting on Redis. */
struct moderation_wait {
    struct route_pending *p;
    enum moderation_op op;
    json_t *results; /* bulk: one {"id", "status"} per decision, in order */
    size_t *slot;    /* bulk: results index of each decision sent */
    int *reject;     /* bulk, decide: 1 reject, 0 approve, per decision */
    char id[REQUEST_ID_MAX + 1];
};

/* Decisions taken and undone, and whether the moderator agreed with the
 * classifier's verdict (relaxed atomics; every worker adds). */
static unsigned long long moderation_decisions[2]; /* approve, reject */
static unsigned long long moderation_undos;
static unsigned long long moderation_agree[2]; /* no, yes */

#define ADD(x, n) __atomic_add_fetch(&(x), (n), __ATOMIC_RELAXED)
#define GET(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

/* ---- replies ---------------------------------------------------------- */

static void
moderation_json(struct route_ctx *ctx, int status, json_t *body)
{
    char *text =
        body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    char *line = text ? malloc(strlen(text) + 2) : NULL;

    if (line == NULL) {
        routes_reply(ctx, 500, "application/json",
                     "{\"error\":{\"code\":\"internal\","
                     "\"message\":\"out of memory\"}}\n");
    } else {
        sprintf(line, "%s\n", text);
        routes_reply(ctx, status, "application/json", line);
    }
    free(line);
    free(text);
}

/* The reply for a queue call that failed as a whole: 503 with what
 * failed (Redis's own error when it answered one), also logged: a
 * moderator's client may not show it. */
static void
moderation_unavailable(struct route_ctx *ctx, enum queue_status st)
{
    const char *why =
        ctx->w->queue != NULL ? queue_last_error(ctx->w->queue) : NULL;

    if (st == QUEUE_TIMEOUT)
        why = "Redis did not answer in time";
    else if (why == NULL || why[0] == '\0')
        why = "Redis is not available";
    log_warnx("moderation: %s (the request's line follows)", why);
    routes_error(ctx, 503, "unavailable", "%s", why);
}

/* ---- input ------------------------------------------------------------ */

/* The name of the request's moderator token (checked by routes.c). */
static const char *
moderation_who(const struct route_ctx *ctx)
{
    const char *name = NULL;
    const char *hdr = http_request_header(ctx->req, "Authorization");

    if (auth_check(ctx->st->cfg->auth, hdr, &name) != AUTH_MODERATOR ||
        name == NULL)
        return "?";
    return name;
}

static int
moderation_id_ok(const char *s)
{
    return request_id_valid(s, strlen(s));
}

/* ?limit=N&cursor=C of a paged route: limit from 1 to QUEUE_LIMIT_MAX
 * (default MODERATION_PAGE_DEFAULT), cursor ("" when absent) accepted by
 * valid, copied into cur.  0, or -1 replied. */
static int
moderation_page_args(struct route_ctx *ctx, int (*valid)(const char *),
                     unsigned *limit, char *cur, size_t cur_len)
{
    const char *query = ctx->req->query ? ctx->req->query : "";
    char v[32], cursor[256];
    long vlen, clen;
    unsigned long n;
    char *end;

    *limit = MODERATION_PAGE_DEFAULT;
    cur[0] = '\0';
    vlen = httpparse_query_get(query, "limit", v, sizeof(v));
    clen = httpparse_query_get(query, "cursor", cursor, sizeof(cursor));
    if (vlen == -2 || clen == -2) {
        routes_error(ctx, 400, "invalid_request", "bad query string");
        return -1;
    }
    if (vlen >= (long)sizeof(v))
        v[0] = 'x'; /* far too long for a limit */
    if (vlen >= 0) {
        n = strtoul(v, &end, 10);
        if (v[0] < '0' || v[0] > '9' || *end != '\0' || n < 1 ||
            n > QUEUE_LIMIT_MAX) {
            routes_error(ctx, 400, "invalid_request",
                         "limit must be a number from 1 to %d",
                         QUEUE_LIMIT_MAX);
            return -1;
        }
        *limit = (unsigned)n;
    }
    if (clen > 0) {
        if ((size_t)clen >= cur_len || (size_t)clen >= sizeof(cursor) ||
            strlen(cursor) != (size_t)clen || !valid(cursor)) {
            routes_error(ctx, 400, "invalid_request",
                         "cursor must be a next_cursor of this route");
            return -1;
        }
        snprintf(cur, cur_len, "%s", cursor);
    }
    return 0;
}

/* The body as a JSON object (an empty body is {} when empty_ok): a new
 * reference, or NULL replied. */
static json_t *
moderation_body(struct route_ctx *ctx, int empty_ok)
{
    const char *ct = http_request_header(ctx->req, "Content-Type");
    size_t n = ctx->req->body_len;
    json_error_t jerr;
    json_t *root;
    char why[200];

    if (n == 0 && empty_ok)
        return json_object();
    if (ct == NULL || strncasecmp(ct, "application/json", 16) ||
        (ct[16] != '\0' && ct[16] != ';' && ct[16] != ' ')) {
        routes_error(ctx, 415, "unsupported_media_type",
                     "Content-Type must be application/json");
        return NULL;
    }
    if (n > ctx->w->max_body) {
        routes_error(ctx, 413, "payload_too_large",
                     "the body is %zu bytes; limits.max_body is %lu", n,
                     ctx->w->max_body);
        return NULL;
    }
    root = json_loadb(ctx->req->body, n, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        routes_error(ctx, 400, "invalid_json", "%s",
                     request_json_error(&jerr, why, sizeof(why)));
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        routes_error(ctx, 400, "invalid_request",
                     "the body must be a JSON object");
        return NULL;
    }
    return root;
}

int
moderation_parse_decision(const json_t *d, const struct clf_model *m,
                          int *reject, char **labels, char *err, size_t errlen)
{
    const json_t *dec = json_object_get(d, "decision");
    const json_t *lab = json_object_get(d, "labels");
    json_t *canon = NULL;
    const char *key, *s;
    json_t *v;

    *labels = NULL;
    s = json_string_value(dec);
    if (s == NULL || (strcmp(s, "approve") && strcmp(s, "reject"))) {
        snprintf(err, errlen,
                 "\"decision\" must be \"approve\" or "
                 "\"reject\"");
        return -1;
    }
    *reject = !strcmp(s, "reject");
    json_object_foreach((json_t *)d, key, v)
    {
        if (strcmp(key, "decision") && strcmp(key, "labels") &&
            strcmp(key, "id")) {
            snprintf(err, errlen, "unknown field \"%.64s\"", key);
            return -1;
        }
    }
    if (lab == NULL || json_is_null(lab))
        return 0;
    if (!json_is_object(lab)) {
        snprintf(err, errlen,
                 "\"labels\" must be an object such as "
                 "{\"spam\": 1}");
        return -1;
    }
    if (json_object_size(lab) == 0) {
        snprintf(err, errlen,
                 "\"labels\" is empty: name at least one label, such as "
                 "{\"spam\": 1}, or leave \"labels\" out for the default");
        return -1;
    }
    canon = json_object();
    if (canon == NULL)
        goto oom;
    json_object_foreach((json_t *)lab, key, v)
    {
        long long x = json_is_boolean(v)   ? json_is_true(v)
                      : json_is_integer(v) ? json_integer_value(v)
                                           : -1;

        if (m != NULL && learn_label_known(m, key, err, errlen) < 0)
            goto fail;
        if (x != 0 && x != 1) {
            snprintf(err, errlen, "label \"%.64s\" must be 0 or 1", key);
            goto fail;
        }
        if (json_object_set_new(canon, key, json_integer(x)))
            goto oom;
    }
    *labels = json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS);
    if (*labels == NULL)
        goto oom;
    json_decref(canon);
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    json_decref(canon);
    return -1;
}

/* {"label": score at which its verdict stops being allow, "*": default}:
 * malloc'd, NULL on ENOMEM. */
static char *
moderation_thresholds(const struct state *st)
{
    json_t *o = json_object();
    unsigned i, n = clf_model_label_count(st->model);
    double review, reject;
    char *text = NULL;

    if (o == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        const char *label = clf_model_label_name(st->model, i);

        config_thresholds(st->cfg, label, &review, &reject);
        if (json_object_set_new(o, label, json_real(fmin(review, reject))))
            goto done;
    }
    if (json_object_set_new(o, "*",
                            json_real(fmin(st->cfg->review, st->cfg->reject))))
        goto done;
    text = json_dumps(o, JSON_COMPACT);
done:
    json_decref(o);
    return text;
}

/* ---- output ----------------------------------------------------------- */

static int
moderation_set_time(json_t *o, const char *key, long long ms)
{
    char when[40];

    result_rfc3339(ms, when, sizeof(when));
    return json_object_set_new(o, key, json_string(when));
}

/* A JSON text field as a value (kept as a string if it does not parse). */
static json_t *
moderation_json_field(const char *text)
{
    json_t *v = json_loads(text, 0, NULL);

    return v != NULL ? v : json_string(text);
}

/* What a moderator sees of an item: the record's fields of DESIGN.md, the
 * claim while it lasts, and (detail) the state and decision.  NULL on
 * ENOMEM or an unreadable record. */
static json_t *
moderation_item(const struct queue_item *it, int detail)
{
    static const char *const keys[] = {
        "id",     "text", "author",  "post",    "scores",
        "unsure", "lang", "verdict", "reasons", "received_at"};
    json_t *rec = json_loadb(it->record, it->record_len, 0, NULL);
    json_t *o = json_object();
    size_t i;

    if (!json_is_object(rec) || o == NULL)
        goto fail;
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *v = json_object_get(rec, keys[i]);

        /* earlier daemons wrote "post" only when it was given */
        if (v == NULL && !strcmp(keys[i], "post"))
            v = json_null();
        if (v != NULL && json_object_set(o, keys[i], v))
            goto fail;
    }
    if (json_object_set_new(o, "id", json_string(it->id)))
        goto fail;
    if (it->claimed_by != NULL &&
        (json_object_set_new(o, "claimed_by", json_string(it->claimed_by)) ||
         moderation_set_time(o, "claim_expires_at", it->claim_expires_ms)))
        goto fail;
    if (detail && json_object_set_new(o, "state", json_string(it->state)))
        goto fail;
    if (detail && it->decision != NULL &&
        (json_object_set_new(o, "decision", json_string(it->decision)) ||
         json_object_set_new(
             o, "labels",
             moderation_json_field(it->labels ? it->labels : "{}")) ||
         json_object_set_new(
             o, "decided_by",
             json_string(it->decided_by ? it->decided_by : "")) ||
         moderation_set_time(o, "decided_at", it->decided_at_ms)))
        goto fail;
    json_decref(rec);
    return o;
fail:
    json_decref(rec);
    json_decref(o);
    return NULL;
}

static json_t *
moderation_items(const struct queue_page *page)
{
    json_t *items = json_array();
    size_t i;

    for (i = 0; items != NULL && i < page->n; i++) {
        json_t *it = moderation_item(&page->items[i], 0);

        /* An unreadable record is logged and left out, not fatal. */
        if (it == NULL)
            log_warnx("queue item %s: unreadable record", page->items[i].id);
        else if (json_array_append_new(items, it))
            goto fail;
    }
    return items;
fail:
    json_decref(items);
    return NULL;
}

/* ---- waiting on Redis ------------------------------------------------- */

static struct moderation_wait *
moderation_wait_new(struct route_ctx *ctx, enum moderation_op op)
{
    struct moderation_wait *mw = calloc(1, sizeof(*mw));

    if (mw == NULL)
        return NULL;
    mw->op = op;
    mw->p = routes_pending_new(ctx);
    if (mw->p == NULL) {
        free(mw);
        return NULL;
    }
    return mw;
}

/* The request to answer (its req is NULL when the client went away). */
static struct route_ctx *
moderation_wait_ctx(struct moderation_wait *mw)
{
    return routes_pending_ctx(mw->p);
}

static void
moderation_wait_free(struct moderation_wait *mw)
{
    routes_pending_free(mw->p);
    json_decref(mw->results);
    free(mw->slot);
    free(mw->reject);
    free(mw);
}

/* A queue call returned -1: nothing will call back. */
static void
moderation_not_sent(struct moderation_wait *mw)
{
    moderation_unavailable(moderation_wait_ctx(mw), QUEUE_ERROR);
    moderation_wait_free(mw);
}

/* ---- list, show, claim ------------------------------------------------ */

static void
moderation_on_page(enum queue_status st, const struct queue_page *page,
                   void *arg)
{
    struct moderation_wait *mw = arg;
    struct route_ctx *ctx = moderation_wait_ctx(mw);
    json_t *body = NULL, *items;

    if (st == QUEUE_NOT_FOUND) {
        if (mw->op == MODERATION_SHOW)
            routes_error(ctx, 404, "not_found", "no item %s", mw->id);
        else
            routes_error(ctx, 400, "invalid_request", "cursor names no item");
    } else if (st != QUEUE_OK) {
        moderation_unavailable(ctx, st);
    } else if (mw->op == MODERATION_SHOW) {
        body = page->n == 1 ? moderation_item(&page->items[0], 1) : NULL;
        if (body == NULL)
            routes_error(ctx, 500, "internal",
                         "the stored record of this id is unreadable");
        else
            moderation_json(ctx, 200, body);
    } else {
        items = moderation_items(page);
        body = json_pack("{s:o*, s:I, s:s?}", "items", items, "length",
                         (json_int_t)page->length, "next_cursor",
                         page->next_cursor);
        if (body != NULL && page->next_cursor == NULL)
            json_object_set_new(body, "next_cursor", json_null());
        moderation_json(ctx, 200, body);
    }
    json_decref(body);
    moderation_wait_free(mw);
}

static void
moderation_list(struct route_ctx *ctx)
{
    int urgent = ctx->st->cfg->order_urgent;
    struct queue *queue = ctx->w->queue;
    struct moderation_wait *mw;
    char cur[REQUEST_ID_MAX + 1];
    unsigned limit;

    if (moderation_page_args(ctx, moderation_id_ok, &limit, cur, sizeof(cur)) <
        0)
        return;
    mw = moderation_wait_new(ctx, MODERATION_LIST);
    if (mw == NULL) {
        routes_error(ctx, 500, "internal", "out of memory");
        return;
    }
    if (queue_list(queue, urgent, limit, cur, moderation_on_page, mw) < 0)
        moderation_not_sent(mw);
}

static void
moderation_show(struct route_ctx *ctx, const char *id)
{
    struct queue *queue = ctx->w->queue;
    struct moderation_wait *mw = moderation_wait_new(ctx, MODERATION_SHOW);

    if (mw == NULL) {
        routes_error(ctx, 500, "internal", "out of memory");
        return;
    }
    snprintf(mw->id, sizeof(mw->id), "%s", id);
    if (queue_show(queue, id, moderation_on_page, mw) < 0)
        moderation_not_sent(mw);
}

static void
moderation_claim(struct route_ctx *ctx)
{
    struct queue *queue = ctx->w->queue;
    const struct config *cfg = ctx->st->cfg;
    unsigned ttl = cfg->queue_claim_ttl_s;
    int urgent = cfg->order_urgent;
    char by[AUTH_NAME_MAX + 1];
    json_t *body = moderation_body(ctx, 1), *lim;
    struct moderation_wait *mw;
    json_int_t n = MODERATION_CLAIM_DEFAULT;

    if (body == NULL)
        return;
    lim = json_object_get(body, "limit");
    if (lim != NULL)
        n = json_is_integer(lim) ? json_integer_value(lim) : 0;
    if (n < 1 || n > MODERATION_CLAIM_MAX ||
        json_object_size(body) > (lim != NULL ? 1u : 0u)) {
        json_decref(body);
        routes_error(ctx, 400, "invalid_request",
                     "the body is {\"limit\": N}, N from 1 to %d",
                     MODERATION_CLAIM_MAX);
        return;
    }
    json_decref(body);
    snprintf(by, sizeof(by), "%s", moderation_who(ctx));
    mw = moderation_wait_new(ctx, MODERATION_CLAIM);
    if (mw == NULL) {
        routes_error(ctx, 500, "internal", "out of memory");
        return;
    }
    if (queue_claim(queue, urgent, (unsigned)n, by, ttl, moderation_on_page,
                    mw) < 0)
        moderation_not_sent(mw);
}

/* ---- decisions and undo ----------------------------------------------- */

/* Counts one decision taken now: by outcome, and whether the moderator
 * agreed with the classifier (reject <-> a verdict other than allow). */
static void
moderation_count(int reject, const char *verdict)
{
    ADD(moderation_decisions[reject ? 1 : 0], 1);
    if (verdict != NULL && verdict[0] != '\0')
        ADD(moderation_agree[reject == (strcmp(verdict, "allow") != 0)], 1);
}

static int
moderation_status(enum queue_status st)
{
    switch (st) {
    case QUEUE_OK:
        return 200;
    case QUEUE_NOT_FOUND:
        return 404;
    case QUEUE_CONFLICT:
        return 409;
    default:
        return 500;
    }
}

static void
moderation_on_decided(enum queue_status st, const struct queue_outcome *out,
                      size_t n, void *arg)
{
    struct moderation_wait *mw = arg;
    struct route_ctx *ctx = moderation_wait_ctx(mw);
    json_t *body;
    size_t i;

    if (st != QUEUE_OK) {
        moderation_unavailable(ctx, st);
        moderation_wait_free(mw);
        return;
    }
    for (i = 0; i < n; i++)
        if (out[i].status == QUEUE_OK)
            moderation_count(mw->reject[i], out[i].verdict);
    if (mw->op == MODERATION_BULK) {
        for (i = 0; i < n; i++) {
            json_t *r = json_array_get(mw->results, mw->slot[i]);

            json_object_set_new(r, "status",
                                json_integer(moderation_status(out[i].status)));
        }
        body = json_pack("{s:O}", "results", mw->results);
        moderation_json(ctx, 200, body);
        json_decref(body);
    } else if (n != 1 || out[0].status == QUEUE_ERROR) {
        routes_error(ctx, 500, "internal",
                     "the stored record of this id is unreadable");
    } else if (out[0].status == QUEUE_NOT_FOUND) {
        routes_error(ctx, 404, "not_found", "no item %s", mw->id);
    } else if (out[0].status == QUEUE_CONFLICT) {
        routes_error(ctx, 409, "conflict", "%s is already decided", mw->id);
    } else {
        body = json_pack("{s:s, s:s, s:o, s:s}", "id", mw->id, "decision",
                         mw->reject[0] ? "reject" : "approve", "labels",
                         moderation_json_field(out[0].labels), "verdict",
                         out[0].verdict);
        moderation_json(ctx, 200, body);
        json_decref(body);
    }
    moderation_wait_free(mw);
}

/* Sends decisions d[0..n) for mw; d's strings are borrowed for the call. */
static void
moderation_send_decisions(struct moderation_wait *mw, struct queue *queue,
                          const struct queue_decision *d, size_t n,
                          const char *by, const char *thresholds)
{
    if (thresholds == NULL || queue_decide(queue, d, n, by, thresholds,
                                           moderation_on_decided, mw) < 0)
        moderation_not_sent(mw);
}

static void
moderation_decide(struct route_ctx *ctx, const char *id)
{
    struct queue *queue = ctx->w->queue;
    struct queue_decision d = {id, 0, NULL};
    struct moderation_wait *mw = NULL;
    char by[AUTH_NAME_MAX + 1], err[160], *labels = NULL, *thr = NULL;
    int *reject = malloc(sizeof(int));
    json_t *body = reject ? moderation_body(ctx, 0) : NULL;

    if (reject == NULL)
        routes_error(ctx, 500, "internal", "out of memory");
    if (body == NULL)
        goto done;
    if (moderation_parse_decision(body, ctx->st->model, &d.reject, &labels, err,
                                  sizeof(err)) < 0) {
        routes_error(ctx, 400, "invalid_request", "%s", err);
        goto done;
    }
    d.labels = labels;
    thr = moderation_thresholds(ctx->st);
    snprintf(by, sizeof(by), "%s", moderation_who(ctx));
    mw = moderation_wait_new(ctx, MODERATION_DECIDE);
    if (mw == NULL) {
        routes_error(ctx, 500, "internal", "out of memory");
        goto done;
    }
    mw->reject = reject;
    reject = NULL;
    mw->reject[0] = d.reject;
    snprintf(mw->id, sizeof(mw->id), "%s", id);
    moderation_send_decisions(mw, queue, &d, 1, by, thr);
done:
    free(reject);
    free(thr);
    free(labels);
    json_decref(body);
}

/* One entry of a bulk request into d (labels malloc'd into *labels), or
 * its 400 result into r. */
static int
moderation_bulk_entry(const json_t *e, const struct clf_model *m,
                      struct queue_decision *d, char **labels, json_t *r)
{
    const char *id = json_string_value(json_object_get(e, "id"));
    char err[160];

    if (id != NULL)
        json_object_set_new(r, "id", json_string(id));
    if (!json_is_object(e))
        snprintf(err, sizeof(err), "a decision must be an object");
    else if (id == NULL || !request_id_valid(id, strlen(id)))
        snprintf(err, sizeof(err), "\"id\" must be a comment id");
    else if (moderation_parse_decision(e, m, &d->reject, labels, err,
                                       sizeof(err)) == 0) {
        d->id = id;
        d->labels = *labels;
        return 0;
    }
    json_object_set_new(r, "status", json_integer(400));
    json_object_set_new(r, "error", json_string(err));
    return -1;
}

static void
moderation_bulk(struct route_ctx *ctx)
{
    struct queue *queue = ctx->w->queue;
    struct queue_decision d[QUEUE_DECISIONS_MAX];
    char *labels[QUEUE_DECISIONS_MAX] = {0};
    char by[AUTH_NAME_MAX + 1], *thr = NULL;
    json_t *body = moderation_body(ctx, 0), *list, *results = NULL;
    struct moderation_wait *mw = NULL;
    size_t *slot = NULL, i, n = 0, total;
    int *reject = NULL;

    if (body == NULL)
        return;
    list = json_object_get(body, "decisions");
    total = json_array_size(list);
    if (!json_is_array(list) || total < 1 || total > QUEUE_DECISIONS_MAX ||
        json_object_size(body) != 1) {
        routes_error(ctx, 400, "invalid_request",
                     "the body is {\"decisions\": [...]} with 1 to %d "
                     "decisions",
                     QUEUE_DECISIONS_MAX);
        goto done;
    }
    results = json_array();
    slot = calloc(total, sizeof(*slot));
    reject = calloc(total, sizeof(*reject));
    if (results == NULL || slot == NULL || reject == NULL)
        goto oom;
    for (i = 0; i < total; i++) {
        json_t *r = json_object();

        if (r == NULL || json_array_append_new(results, r) ||
            json_object_set_new(r, "id", json_null()))
            goto oom;
        if (moderation_bulk_entry(json_array_get(list, i), ctx->st->model,
                                  &d[n], &labels[n], r) == 0) {
            slot[n] = i;
            reject[n] = d[n].reject;
            n++;
        }
    }
    if (n == 0) { /* nothing valid: nothing to ask Redis */
        json_t *reply = json_pack("{s:O}", "results", results);

        moderation_json(ctx, 200, reply);
        json_decref(reply);
        goto done;
    }
    thr = moderation_thresholds(ctx->st);
    snprintf(by, sizeof(by), "%s", moderation_who(ctx));
    mw = moderation_wait_new(ctx, MODERATION_BULK);
    if (mw == NULL)
        goto oom;
    mw->results = results;
    mw->slot = slot;
    mw->reject = reject;
    results = NULL;
    slot = NULL;
    reject = NULL;
    moderation_send_decisions(mw, queue, d, n, by, thr);
    goto done;
oom:
    routes_error(ctx, 500, "internal", "out of memory");
done:
    for (i = 0; i < n; i++)
        free(labels[i]);
    free(thr);
    free(slot);
    free(reject);
    json_decref(results);
    json_decref(body); /* d's ids lived in it */
}

static void
moderation_on_undone(enum queue_status st, const struct queue_outcome *out,
                     size_t n, void *arg)
{
    struct moderation_wait *mw = arg;
    struct route_ctx *ctx = moderation_wait_ctx(mw);
    json_t *body;

    if (st != QUEUE_OK) {
        moderation_unavailable(ctx, st);
    } else if (n != 1 || out[0].status == QUEUE_ERROR) {
        routes_error(ctx, 500, "internal",
                     "the stored record of this id is unreadable");
    } else if (out[0].status == QUEUE_NOT_FOUND) {
        routes_error(ctx, 404, "not_found", "no item %s", mw->id);
    } else if (out[0].status == QUEUE_CONFLICT) {
        if (!strcmp(out[0].why, "window"))
            routes_error(ctx, 409, "conflict",
                         "the decision on %s is older than "
                         "queue.undo_window_s",
                         mw->id);
        else
            routes_error(ctx, 409, "conflict", "%s is not decided", mw->id);
    } else {
        ADD(moderation_undos, 1);
        body = json_pack("{s:s, s:b, s:o}", "id", mw->id, "queued", 1,
                         "unlearned", moderation_json_field(out[0].labels));
        moderation_json(ctx, 200, body);
        json_decref(body);
    }
    moderation_wait_free(mw);
}

static void
moderation_undo(struct route_ctx *ctx, const char *id)
{
    struct queue *queue = ctx->w->queue;
    unsigned window = ctx->st->cfg->queue_undo_window_s;
    char by[AUTH_NAME_MAX + 1];
    struct moderation_wait *mw;

    snprintf(by, sizeof(by), "%s", moderation_who(ctx));
    mw = moderation_wait_new(ctx, MODERATION_UNDO);
    if (mw == NULL) {
        routes_error(ctx, 500, "internal", "out of memory");
        return;
    }
    snprintf(mw->id, sizeof(mw->id), "%s", id);
    if (queue_undo(queue, id, by, window, moderation_on_undone, mw) < 0)
        moderation_not_sent(mw);
}

/* ---- history and stats ------------------------------------------------ */

/* One audit entry as JSON: its fields, with at_ms also as RFC 3339 and
 * labels/previous as JSON values. */
static json_t *
moderation_event(const struct queue_event *ev)
{
    json_t *o = json_object();
    size_t i;

    if (o == NULL ||
        json_object_set_new(o, "event_id", json_string(ev->event_id)))
        goto fail;
    for (i = 0; i < ev->n_fields; i++) {
        const char *k = ev->names[i], *v = ev->values[i];
        json_t *val;

        if (!strcmp(k, "at_ms")) {
            long long ms = strtoll(v, NULL, 10);

            if (moderation_set_time(o, "at", ms))
                goto fail;
            val = json_integer(ms);
        } else if (!strcmp(k, "labels") || !strcmp(k, "previous")) {
            val = moderation_json_field(v);
        } else {
            val = json_string(v);
        }
        if (json_object_set_new(o, k, val))
            goto fail;
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

static void
moderation_on_history(enum queue_status st, const struct queue_history *h,
                      void *arg)
{
    struct moderation_wait *mw = arg;
    struct route_ctx *ctx = moderation_wait_ctx(mw);
    json_t *items, *body;
    size_t i;

    if (st != QUEUE_OK) {
        moderation_unavailable(ctx, st);
        moderation_wait_free(mw);
        return;
    }
    items = json_array();
    for (i = 0; items != NULL && i < h->n; i++)
        if (json_array_append_new(items, moderation_event(&h->events[i]))) {
            json_decref(items);
            items = NULL;
        }
    body = json_pack("{s:o*, s:s?}", "items", items, "next_cursor",
                     h->next_cursor);
    if (body != NULL && h->next_cursor == NULL)
        json_object_set_new(body, "next_cursor", json_null());
    moderation_json(ctx, 200, body);
    json_decref(body);
    moderation_wait_free(mw);
}

static void
moderation_history(struct route_ctx *ctx)
{
    struct queue *queue = ctx->w->queue;
    struct moderation_wait *mw;
    char cur[48];
    unsigned limit;

    if (moderation_page_args(ctx, queue_event_id_valid, &limit, cur,
                             sizeof(cur)) < 0)
        return;
    mw = moderation_wait_new(ctx, MODERATION_HISTORY);
    if (mw == NULL) {
        routes_error(ctx, 500, "internal", "out of memory");
        return;
    }
    if (queue_history(queue, limit, cur, moderation_on_history, mw) < 0)
        moderation_not_sent(mw);
}

static void
moderation_on_stats(enum queue_status st, const struct queue_stats *s,
                    void *arg)
{
    struct moderation_wait *mw = arg;
    struct route_ctx *ctx = moderation_wait_ctx(mw);
    double age = 0;
    json_t *body;

    if (st != QUEUE_OK) {
        moderation_unavailable(ctx, st);
        moderation_wait_free(mw);
        return;
    }
    if (s->oldest_ms >= 0 && s->now_ms > s->oldest_ms)
        age = (double)(s->now_ms - s->oldest_ms) / 1000.0;
    body = json_pack("{s:I, s:f, s:I, s:{s:I, s:I, s:I}}", "length",
                     (json_int_t)s->length, "oldest_age_seconds", age,
                     "claimed", (json_int_t)s->claimed, "decisions", "approve",
                     (json_int_t)s->approved, "reject", (json_int_t)s->rejected,
                     "undo", (json_int_t)s->undone);
    /* The learner's figures: examples per label and class, why a head is
     * unsure, training events applied. */
    if (body != NULL && ctx->st != NULL)
        json_object_set_new(body, "labels", learn_stats_labels(ctx->st));
    if (body != NULL)
        json_object_set_new(body, "training", learn_stats_training());
    moderation_json(ctx, 200, body);
    json_decref(body);
    moderation_wait_free(mw);
}

static void
moderation_stats(struct route_ctx *ctx)
{
    struct queue *queue = ctx->w->queue;
    struct moderation_wait *mw = moderation_wait_new(ctx, MODERATION_STATS);

    if (mw == NULL) {
        routes_error(ctx, 500, "internal", "out of memory");
        return;
    }
    if (queue_stats(queue, moderation_on_stats, mw) < 0)
        moderation_not_sent(mw);
}

/* ---- dispatch and metrics --------------------------------------------- */

const char *
moderation_route(const char *path, int *methods)
{
    const char *slash = strchr(path + strlen("/v1/queue/"), '/');

    *methods = HTTP_METHOD_POST;
    if (slash == NULL) {
        *methods = HTTP_METHOD_GET;
        return "/v1/queue/{id}";
    }
    if (!strcmp(slash, "/decision"))
        return "/v1/queue/{id}/decision";
    if (!strcmp(slash, "/undo"))
        return "/v1/queue/{id}/undo";
    return NULL;
}

void
moderation_handle(struct route_ctx *ctx, const char *path)
{
    static const struct {
        const char *path;
        void (*fn)(struct route_ctx *);
    } routes[] = {
        {"/v1/queue", moderation_list},
        {"/v1/queue/claim", moderation_claim},
        {"/v1/queue/decisions", moderation_bulk},
        {"/v1/history", moderation_history},
        {"/v1/stats", moderation_stats},
    };
    int get = ctx->req->method == HTTP_METHOD_GET ||
              ctx->req->method == HTTP_METHOD_HEAD;
    const char *rest, *slash;
    char id[REQUEST_ID_MAX + 1], dec[3 * REQUEST_ID_MAX];
    size_t id_len, i;

    if (ctx->w->queue == NULL) {
        moderation_unavailable(ctx, QUEUE_ERROR);
        return;
    }
    /* POST /v1/queue/claim and /v1/queue/decisions are those routes; GET
     * shows the items "claim" and "decisions", which are ids like any
     * other (README, Moderation). */
    for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (!strcmp(path, routes[i].path) &&
            !(get && !strncmp(path, "/v1/queue/", 10))) {
            routes[i].fn(ctx);
            return;
        }
    /* /v1/queue/{id}[/decision|/undo] */
    rest = path + strlen("/v1/queue/");
    slash = strchr(rest, '/');
    id_len = slash ? (size_t)(slash - rest) : strlen(rest);
    /* The id as encodeURIComponent sends it ("wp%3A42"): decoded, then
     * checked (the id alphabet has no '%' or '/'). */
    if (!strncmp(path, "/v1/queue/", 10) && id_len <= 3 * REQUEST_ID_MAX)
        id_len = httpparse_decode(rest, id_len, dec, 0);
    else
        id_len = 0; /* not an id */
    if (!request_id_valid(dec, id_len)) {
        routes_error(ctx, 404, "not_found", "no such route or item");
        return;
    }
    memcpy(id, dec, id_len);
    id[id_len] = '\0';
    /* routes_dispatch answered the wrong methods (moderation_route);
     * an action it does not know is never taken for another. */
    if (slash == NULL)
        moderation_show(ctx, id);
    else if (!strcmp(slash, "/decision"))
        moderation_decide(ctx, id);
    else if (!strcmp(slash, "/undo"))
        moderation_undo(ctx, id);
    else
        routes_error(ctx, 404, "not_found", "no such route");
}

void
moderation_metrics_render(struct evbuffer *out)
{
    evbuffer_add_printf(
        out,
        "# HELP modfilter_decisions_total Moderator decisions.\n"
        "# TYPE modfilter_decisions_total counter\n"
        "modfilter_decisions_total{decision=\"approve\"} %llu\n"
        "modfilter_decisions_total{decision=\"reject\"} %llu\n"
        "# HELP modfilter_undos_total Decisions undone.\n"
        "# TYPE modfilter_undos_total counter\n"
        "modfilter_undos_total %llu\n"
        "# HELP modfilter_moderator_agreement_total Decisions that agreed "
        "with the classifier's verdict (reject when it was not allow, "
        "approve when it was).\n"
        "# TYPE modfilter_moderator_agreement_total counter\n"
        "modfilter_moderator_agreement_total{agree=\"yes\"} %llu\n"
        "modfilter_moderator_agreement_total{agree=\"no\"} %llu\n",
        GET(moderation_decisions[0]), GET(moderation_decisions[1]),
        GET(moderation_undos), GET(moderation_agree[1]),
        GET(moderation_agree[0]));
}
