/*
 * routes.c - the HTTP API.  Each request: route -> method -> auth ->
 * content type and size -> parse -> score -> verdict -> (queue) -> reply,
 * with one log line and one metrics sample at the reply.
 *
 * POST /v1/comments waits for Redis when the verdict is queued.  Its state
 * (struct route_pending) is freed in exactly one place, the queue callback,
 * which struct queue guarantees to run once; or, when Redis could not take
 * the comment and the spool can, the spool's callback (route_spooled, run
 * once on the worker after the fdatasync).  If the client goes first,
 * httpd calls route_gone(): the request is freed with the connection, so
 * route_gone clears ctx.req and the callback's reply is dropped.
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "modfilterd.h"
#include "queue.h"

#define ROUTE_RETRY_AFTER "2"

#define ROUTE_SPARE_MAX 64 /* freed route_pendings a worker keeps */

/* A request waiting on Redis. */
/* Bytes of a record's "reasons" JSON, and of its "scores" and "unsure"
 * members, kept for the reply, which then need not write them again
 * (larger ones, rare, are written again). */
#define ROUTE_REASONS_KEEP 2048
#define ROUTE_SCORES_KEEP 512

struct route_pending {
    struct route_ctx ctx;
    enum clf_verdict v;    /* comments */
    routes_comment_cb *cb; /* comments: replies */
    long long queue_len;   /* metrics */
    /* comments with a spool: what went to Redis, for the spool */
    char *record; /* owned */
    size_t record_len;
    long long received_ms;
    double urgency;
    size_t reasons_len;               /* of reasons: 0 when not kept */
    size_t scores_len;                /* of scores: 0 when not kept */
    struct route_pending *next_spare; /* the worker's spares */
    /* Last: not cleared on reuse (6 KiB). */
    struct clf_result res;            /* comments: the scores, for the reply */
    char reasons[ROUTE_REASONS_KEEP]; /* the record's "reasons" value */
    char scores[ROUTE_SCORES_KEEP];   /* its "scores" and "unsure" */
};

/* The part of r that is used (n_labels labels of CLF_MAX_LABELS) into
 * *to: the whole struct is 3.8 KiB, two labels a quarter of it. */
static void
route_result_keep(struct clf_result *to, const struct clf_result *r)
{
    to->n_labels = r->n_labels;
    memcpy(to->labels, r->labels, r->n_labels * sizeof(r->labels[0]));
    memcpy(to->lang, r->lang, sizeof(to->lang));
    to->invalid_bytes = r->invalid_bytes;
    to->truncated = r->truncated;
}

/* What of p's record its reply can reuse, into sh. */
static const struct result_shared *
route_shared(const struct route_pending *p, struct result_shared *sh)
{
    sh->reasons = p->reasons_len ? p->reasons : NULL;
    sh->reasons_len = p->reasons_len;
    sh->scores = p->scores_len ? p->scores : NULL;
    sh->scores_len = p->scores_len;
    return sh;
}

/* Printable ASCII only, bounded: request lines go to the log.  The
 * length written. */
static size_t
route_sanitize(const char *in, char *out, size_t len)
{
    size_t i = 0;

    for (; in != NULL && *in && i + 1 < len; in++)
        out[i++] = (*in > 0x20 && *in < 0x7f) ? *in : '?';
    out[i] = '\0';
    return i;
}

static const char *
route_method(const struct http_request *req)
{
    switch (req->method) {
    case HTTP_METHOD_GET:
        return "GET";
    case HTTP_METHOD_POST:
        return "POST";
    case HTTP_METHOD_HEAD:
        return "HEAD";
    case HTTP_METHOD_PUT:
        return "PUT";
    case HTTP_METHOD_DELETE:
        return "DELETE";
    case HTTP_METHOD_OPTIONS:
        return "OPTIONS";
    case HTTP_METHOD_PATCH:
        return "PATCH";
    default:
        return "-";
    }
}

#define ROUTE_LOG_MAX 1023 /* what the log keeps of a line, as syslog */

/* The request's log line, "POST /v1/score 200 allow 1.25ms id=ID" (note
 * after the time), made by hand with the lengths known: vsnprintf cost
 * more than the rest of logging.  path is path_len bytes. */
static void
route_log(const char *method, const char *path, size_t path_len, int status,
          const char *verdict, long cms, const char *note, size_t note_len,
          const char *id)
{
    char line[ROUTE_LOG_MAX + 1], num[24], *e = num + sizeof(num), *d;
    size_t n;

    n = log_cat(line, ROUTE_LOG_MAX, 0, method, strlen(method));
    line[n++] = ' ';
    n = log_cat(line, ROUTE_LOG_MAX, n, path, path_len); /* < 160 bytes */
    line[n++] = ' ';
    d = jsonw_digits((unsigned)status, e);
    n = log_cat(line, ROUTE_LOG_MAX, n, d, (size_t)(e - d));
    line[n++] = ' ';
    if (verdict == NULL)
        verdict = "-";
    n = log_cat(line, ROUTE_LOG_MAX, n, verdict, strlen(verdict));
    if (n < ROUTE_LOG_MAX)
        line[n++] = ' ';
    /* cms hundredths of a millisecond: "12.34ms" */
    e -= 5;
    e[0] = '.';
    e[1] = (char)('0' + cms / 10 % 10);
    e[2] = (char)('0' + cms % 10);
    memcpy(e + 3, "ms", 2);
    d = jsonw_digits((unsigned long long)cms / 100, e);
    n = log_cat(line, ROUTE_LOG_MAX, n, d, (size_t)(num + sizeof(num) - d));
    n = log_cat(line, ROUTE_LOG_MAX, n, note, note_len);
    if (id[0]) {
        n = log_cat(line, ROUTE_LOG_MAX, n, " id=", 4);
        n = log_cat(line, ROUTE_LOG_MAX, n, id, strlen(id));
    }
    log_info_text(line, n);
}

/* The one exit of every request. */
static void
route_send(struct route_ctx *ctx, int status, const char *ctype,
           const char *body, size_t len)
{
    double seconds = util_monotonic() - ctx->t0;
    /* Hundredths of a millisecond, in integers: no float formatting. */
    long cms = (long)(seconds * 1e5 + 0.5);

    metrics_request(ctx->route, status, seconds);
    if (ctx->req != NULL) {
        char path[160];
        size_t n;

        n = route_sanitize(ctx->req->uri, path, sizeof(path));
        /* Not for Akismet: a key may be in its query. */
        if (ctx->req->query != NULL && ctx->route != METRICS_ROUTE_AKISMET &&
            n + 2 < sizeof(path)) {
            path[n] = '?';
            n += 1 + route_sanitize(ctx->req->query, path + n + 1,
                                    sizeof(path) - n - 1);
        }
        route_log(route_method(ctx->req), path, n, status, ctx->verdict, cms,
                  "", 0, ctx->id);
        http_reply(ctx->req, status, ctype, body, len);
    } else {
        static const char gone[] = " (client gone)";

        route_log("-", "-", 1, status, ctx->verdict, cms, gone,
                  sizeof(gone) - 1, ctx->id);
    }
    ctx->req = NULL;
    state_release(ctx->st);
    ctx->st = NULL;
}

/* A reply of len bytes of text (NULL: no body). */
static void
route_send_text(struct route_ctx *ctx, int status, const char *ctype,
                const char *text, size_t len)
{
    route_send(ctx, status, ctype, text, text != NULL ? len : 0);
}

void
routes_reply(struct route_ctx *ctx, int status, const char *ctype,
             const char *text)
{
    route_send_text(ctx, status, ctype, text, text ? strlen(text) : 0);
}

/* The JSON text in the worker's writer, and a newline. */
static void
route_send_json(struct route_ctx *ctx, int status)
{
    struct jsonw *j = &ctx->w->json;
    static const char oom[] = "{\"error\":{\"code\":\"internal\","
                              "\"message\":\"out of memory\"}}\n";

    jsonw_text_end(j, "\n", 1);
    if (jsonw_failed(j)) {
        route_send_text(ctx, 500, "application/json", oom, sizeof(oom) - 1);
        return;
    }
    route_send(ctx, status, "application/json", j->buf, j->len);
}

static void
route_json(struct route_ctx *ctx, int status, json_t *body)
{
    jsonw_reset(&ctx->w->json);
    if (body == NULL)
        ctx->w->json.failed = 1;
    else
        result_write_json(&ctx->w->json, body);
    route_send_json(ctx, status);
}

void
routes_error(struct route_ctx *ctx, int status, const char *code,
             const char *fmt, ...)
{
    struct jsonw *j = &ctx->w->json;
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (ctx->req != NULL) {
        if (status == 503)
            http_reply_header(ctx->req, "Retry-After", ROUTE_RETRY_AFTER);
        if (status == 401)
            http_reply_header(ctx->req, "WWW-Authenticate", "Bearer");
    }
    jsonw_reset(j);
    jsonw_object_begin(j);
    JSONW_KEY(j, "error");
    jsonw_object_begin(j);
    JSONW_KEY(j, "code");
    jsonw_string(j, code);
    JSONW_KEY(j, "message");
    jsonw_string(j, msg);
    jsonw_object_end(j);
    jsonw_object_end(j);
    route_send_json(ctx, status);
}

/* Why the Authorization header hdr (or NULL) gives no role. */
static const char *
route_auth_why(const char *hdr)
{
    size_t len;

    if (hdr == NULL)
        return "missing Authorization: Bearer token";
    if (auth_bearer(hdr, &len) == NULL)
        return "the Authorization header must be \"Bearer TOKEN\": no other "
               "scheme is taken";
    return len == 0 ? "empty Bearer token" : "unknown token";
}

/* 0 when the client may use a route needing role; else replied. */
static int
route_auth(struct route_ctx *ctx, enum auth_role need, int local_open)
{
    const struct auth *a = ctx->st->cfg->auth;
    const char *hdr;
    int local = ctx->c != NULL && ctx->c->local;
    enum auth_role role;

    if (local_open && local)
        return 0;
    if (need == AUTH_SUBMIT && auth_count(a, AUTH_SUBMIT) == 0) {
        if (local)
            return 0;
        routes_error(ctx, 403, "forbidden",
                     "auth.submit_tokens is empty: submit routes serve "
                     "loopback and Unix-socket clients only");
        return -1;
    }
    hdr = http_request_header(ctx->req, "Authorization");
    role = auth_check(a, hdr, NULL);
    if (role == need)
        return 0;
    if (role == AUTH_NONE)
        routes_error(ctx, 401, "unauthorized", "%s", route_auth_why(hdr));
    else
        routes_error(ctx, 403, "forbidden",
                     "this token's role may not use this route");
    return -1;
}

/* 0 with the body in body and len (contiguous, owned by the request). */
static int
route_body(struct route_ctx *ctx, const char **body, size_t *len)
{
    const char *ct = http_request_header(ctx->req, "Content-Type");
    size_t n;

    if (ct == NULL || strncasecmp(ct, "application/json", 16) ||
        (ct[16] != '\0' && ct[16] != ';' && ct[16] != ' ')) {
        routes_error(ctx, 415, "unsupported_media_type",
                     "Content-Type must be application/json");
        return -1;
    }
    n = ctx->req->body_len;
    if (n > ctx->w->max_body) {
        routes_error(ctx, 413, "payload_too_large",
                     "the body is %zu bytes; limits.max_body is %lu", n,
                     ctx->w->max_body);
        return -1;
    }
    *body = ctx->req->body;
    *len = n;
    return 0;
}

/* ---- POST /v1/comments, POST /v1/score -------------------------------- */

static void
route_gone(void *arg)
{
    struct route_pending *p = arg;

    /* The connection closed while we waited: its request is freed with
     * it; the reply is dropped. */
    p->ctx.req = NULL;
    p->ctx.c = NULL;
}

/* The reply is about to be sent: the connection need not warn us. */
static void
route_pending_unhook(struct route_pending *p)
{
    if (p->ctx.c != NULL) {
        p->ctx.c->gone = NULL;
        p->ctx.c->gone_arg = NULL;
    }
}

/* Hand ctx (its request and state reference) to a new pending request,
 * told when the connection closes first. */
struct route_pending *
routes_pending_new(struct route_ctx *ctx)
{
    struct worker *w = ctx->w;
    struct route_pending *p = w->spare;

    if (p != NULL) {
        w->spare = p->next_spare;
        w->n_spare--;
    } else if ((p = malloc(sizeof(*p))) == NULL) {
        return NULL;
    }
    memset(p, 0, offsetof(struct route_pending, res));
    p->ctx = *ctx;
    ctx->st = NULL;
    ctx->req = NULL;
    ctx->w->pending++;
    if (p->ctx.c != NULL) {
        p->ctx.c->gone = route_gone;
        p->ctx.c->gone_arg = p;
    }
    return p;
}

struct route_ctx *
routes_pending_ctx(struct route_pending *p)
{
    route_pending_unhook(p);
    return &p->ctx;
}

void
routes_pending_free(struct route_pending *p)
{
    struct worker *w = p->ctx.w;

    state_release(p->ctx.st);
    free(p->record);
    if (w->n_spare < ROUTE_SPARE_MAX) {
        p->next_spare = w->spare;
        w->spare = p;
        w->n_spare++;
    } else {
        free(p);
    }
    w->pending--;
    worker_maybe_done(w);
}

/* The spool's answer for p's comment (on p's worker): queued and spooled
 * once it is durable, else 503. */
static void
route_spooled(int err, void *arg)
{
    struct route_pending *p = arg;
    struct result_shared sh;
    struct routes_scored s = {.outcome = ROUTES_QUEUED,
                              .verdict = p->v,
                              .result = &p->res,
                              .spooled = 1,
                              .shared = route_shared(p, &sh)};

    route_pending_unhook(p);
    if (err != 0) {
        s.outcome = ROUTES_UNAVAILABLE;
        s.spooled = 0;
        s.message = err == ENOSPC
                        ? "Redis could not take the comment and the spool is "
                          "full; it is not queued, retry later"
                        : "Redis could not take the comment and the spool "
                          "could not be written; it is not queued, retry "
                          "later";
    }
    p->cb(&p->ctx, &s);
    routes_pending_free(p);
}

/* Redis could not take p's comment: hand it to the spool, which answers
 * through route_spooled once it is on disk (the loop does not wait for
 * the disk).  -1 when there is no spool or it cannot take the request. */
static int
route_spool(struct route_pending *p)
{
    struct spool_record r = {p->ctx.id, p->record, p->record_len,
                             p->received_ms, p->urgency};

    if (p->ctx.w->spool_client == NULL || p->record == NULL)
        return -1;
    return spool_client_append(p->ctx.w->spool_client, &r, route_spooled, p);
}

/* Redis did not take p's comment (s says why): hand it to the spool, which
 * answers, or answer s now and free p. */
static void
route_finish_unqueued(struct route_pending *p, struct routes_scored *s)
{
    /* Redis may have stored a timed-out comment late: the drainer's
     * submit of the same id then finds it, and nothing is queued twice. */
    if (route_spool(p) == 0)
        return; /* route_spooled answers */
    route_pending_unhook(p);
    p->cb(&p->ctx, s);
    routes_pending_free(p);
}

/* The answer is the id's stored record (stored_len bytes): s becomes
 * STORED with its reply (returned, the caller's to decref), or FAILED
 * when it cannot be read. */
static json_t *
route_stored(struct route_pending *p, struct routes_scored *s,
             const char *stored, size_t stored_len)
{
    json_t *reply = result_reply_from_stored(stored, stored_len), *v;

    s->outcome = ROUTES_STORED;
    s->result = NULL;
    s->shared = NULL;
    s->stored = reply;
    if (reply == NULL) {
        s->outcome = ROUTES_FAILED;
        s->message = "the stored record of this id is unreadable";
        return NULL;
    }
    v = json_object_get(reply, "verdict");
    p->ctx.verdict = "stored";
    if (json_is_string(v))
        p->ctx.verdict = json_string_value(v);
    for (s->verdict = CLF_ALLOW; s->verdict < CLF_REJECT; s->verdict++)
        if (!strcmp(p->ctx.verdict, clf_verdict_name(s->verdict)))
            break;
    return reply;
}

/* The look-up of an id whose fresh verdict is not queued (routes_comment):
 * its stored result when Redis has one, else the fresh score.  A Redis
 * that cannot answer also gets the fresh score (README, "Posting an id
 * again"). */
static void
route_looked_up(enum queue_status st, const char *stored, size_t stored_len,
                void *arg)
{
    struct route_pending *p = arg;
    struct routes_scored s = {
        .outcome = ROUTES_SCORED, .verdict = p->v, .result = &p->res};
    json_t *reply = NULL;

    if (st == QUEUE_OK && stored != NULL)
        reply = route_stored(p, &s, stored, stored_len);
    route_pending_unhook(p);
    p->cb(&p->ctx, &s);
    json_decref(reply);
    routes_pending_free(p);
}

/* 1 when the local spool holds the client's id ctx->id (answered: 503,
 * retry later), else 0.  Its comment was acknowledged and is not in Redis
 * yet, so its stored result cannot be read; and a submit now would store
 * this text under the id, and the spooled one would then be dropped as
 * already there when drained. */
static int
route_in_spool(struct route_ctx *ctx, enum clf_verdict v,
               const struct routes_comment_opts *o)
{
    struct routes_scored s = {
        .outcome = ROUTES_UNAVAILABLE,
        .verdict = v,
        .message = "this id is queued in the local spool and not yet in "
                   "Redis, so its stored result cannot be read; retry later"};

    if (!spool_holds(ctx->w->spool, ctx->id))
        return 0;
    o->cb(ctx, &s);
    return 1;
}

/* ctx's comment (scored res, verdict v) is not queued, but the client
 * named its id, which may be queued or decided already: 0 when the
 * answer waits for Redis (route_looked_up gives it), or was given (the id
 * is in the spool); -1 when Redis cannot be asked: answer res now. */
static int
route_lookup(struct route_ctx *ctx, const struct clf_result *res,
             enum clf_verdict v, const struct routes_comment_opts *o)
{
    struct route_pending *p;

    if (route_in_spool(ctx, v, o))
        return 0;
    if (ctx->w->queue == NULL || !queue_connected(ctx->w->queue) ||
        (p = routes_pending_new(ctx)) == NULL)
        return -1;
    route_result_keep(&p->res, res);
    p->v = v;
    p->cb = o->cb;
    if (queue_get(p->ctx.w->queue, p->ctx.id, route_looked_up, p) == 0)
        return 0;
    route_looked_up(QUEUE_ERROR, NULL, 0, p);
    return 0;
}

static void
route_submitted(enum queue_status st, const char *stored, size_t stored_len,
                void *arg)
{
    struct route_pending *p = arg;
    struct result_shared sh;
    struct routes_scored s = {.outcome = ROUTES_QUEUED,
                              .verdict = p->v,
                              .result = &p->res,
                              .shared = route_shared(p, &sh)};
    json_t *reply = NULL;

    switch (st) {
    case QUEUE_OK:
        break;
    case QUEUE_EXISTS:
        reply = route_stored(p, &s, stored, stored_len);
        break;
    case QUEUE_TIMEOUT:
        s.outcome = ROUTES_UNAVAILABLE;
        s.message = "Redis did not acknowledge the comment in time; it is "
                    "not queued, retry later";
        worker_unqueued(p->ctx.w, 1);
        route_finish_unqueued(p, &s);
        return;
    case QUEUE_ERROR:
    default:
        s.outcome = ROUTES_UNAVAILABLE;
        s.message = "Redis could not take the comment; it is not queued, "
                    "retry later";
        worker_unqueued(p->ctx.w, 0);
        route_finish_unqueued(p, &s);
        return;
    }
    route_pending_unhook(p);
    p->cb(&p->ctx, &s);
    json_decref(reply);
    routes_pending_free(p);
}

void
routes_comment(struct route_ctx *ctx, const struct request_comment *rc,
               const struct routes_comment_opts *o)
{
    struct routes_scored s = {.outcome = ROUTES_FAILED,
                              .verdict = CLF_ALLOW,
                              .message = "out of memory"};
    struct result_spans sp;
    struct clf_result res;
    struct route_pending *p;
    struct state *st = ctx->st;
    struct jsonw *j = &ctx->w->json;
    enum clf_verdict v;
    enum clf_status cs;
    char *copy = NULL, msg[80];
    long long now_ms;
    double urgency = 0;
    unsigned i;

    if (rc->id != NULL) /* valid: at most REQUEST_ID_MAX bytes */
        memcpy(ctx->id, rc->id, strlen(rc->id) + 1);
    else
        request_make_id(ctx->id, sizeof(ctx->id));
    cs = clf_score(ctx->w->scorer, st->model, rc->text, rc->text_len, rc->lang,
                   1, &res);
    if (cs != CLF_OK) {
        log_warnx("scoring %s: %s", ctx->id, clf_status_str(cs));
        snprintf(msg, sizeof(msg), "scoring failed: %s", clf_status_str(cs));
        s.message = msg;
        o->cb(ctx, &s);
        return;
    }
    v = result_verdict(st, &res);
    v = v < o->min_verdict ? o->min_verdict : v;
    v = v > o->max_verdict ? o->max_verdict : v;
    metrics_verdict(v);
    ctx->verdict = clf_verdict_name(v);
    s.verdict = v;
    if (!o->store || !(st->cfg->verdict_mask & (1u << v))) {
        /* DESIGN.md: an id already queued or decided gets its stored
         * result, whatever this text scores now. */
        if (o->store && rc->id != NULL && route_lookup(ctx, &res, v, o) == 0)
            return;
        s.outcome = ROUTES_SCORED;
        s.result = &res;
        o->cb(ctx, &s);
        return;
    }
    if (rc->id != NULL && route_in_spool(ctx, v, o))
        return;
    now_ms = util_now_ms();
    /* queue_submit's urgency: the highest finite score above 0 (the
     * record writes the others as null), else 0. */
    for (i = 0; i < res.n_labels; i++)
        if (isfinite(res.labels[i].score) && res.labels[i].score > urgency)
            urgency = res.labels[i].score;
    jsonw_reset(j);
    result_write_record(j, ctx->id, rc, &res, v, st, now_ms, o->extra, &sp);
    /* With a spool the record is kept until Redis answered. */
    if (!jsonw_failed(j) && ctx->w->spool != NULL &&
        (copy = malloc(j->len + 1)) != NULL)
        memcpy(copy, j->buf, j->len + 1);
    p = !jsonw_failed(j) && (ctx->w->spool == NULL || copy != NULL)
            ? routes_pending_new(ctx)
            : NULL;
    if (p == NULL) {
        free(copy);
        o->cb(ctx, &s);
        return;
    }
    route_result_keep(&p->res, &res);
    p->v = v;
    p->cb = o->cb;
    p->record = copy;
    p->record_len = j->len;
    p->received_ms = now_ms;
    p->urgency = urgency;
    if (sp.reasons_len <= sizeof(p->reasons)) {
        memcpy(p->reasons, j->buf + sp.reasons_at, sp.reasons_len);
        p->reasons_len = sp.reasons_len;
    }
    if (sp.scores_len <= sizeof(p->scores)) {
        memcpy(p->scores, j->buf + sp.scores_at, sp.scores_len);
        p->scores_len = sp.scores_len;
    }
    if (queue_submit(p->ctx.w->queue, p->ctx.id, j->buf, j->len, now_ms,
                     urgency, route_submitted, p) < 0) {
        s.outcome = ROUTES_UNAVAILABLE;
        s.message = "Redis is not connected; the comment is not queued, "
                    "retry later";
        route_finish_unqueued(p, &s);
    }
}

void
routes_worker_release(struct worker *w)
{
    while (w->spare != NULL) {
        struct route_pending *p = w->spare;

        w->spare = p->next_spare;
        free(p);
    }
    w->n_spare = 0;
}

/* POST /v1/comments and /v1/score answer in JSON. */
static void
route_comment_json(struct route_ctx *ctx, const struct routes_scored *s)
{
    struct jsonw *j = &ctx->w->json;

    if (s->outcome == ROUTES_UNAVAILABLE) {
        routes_error(ctx, 503, "unavailable", "%s", s->message);
        return;
    }
    if (s->outcome == ROUTES_FAILED) {
        routes_error(ctx, 500, "internal", "%s", s->message);
        return;
    }
    jsonw_reset(j);
    if (s->outcome == ROUTES_STORED)
        result_write_json(j, s->stored);
    else
        result_write_reply(j, ctx->id, s->result, s->verdict,
                           s->outcome == ROUTES_QUEUED, s->spooled, s->shared);
    route_send_json(ctx, 200);
}

static void
route_comment(struct route_ctx *ctx, int store)
{
    struct routes_comment_opts o = {store, CLF_ALLOW, CLF_REJECT, NULL,
                                    route_comment_json};
    struct request_comment rc;
    struct request_error rerr;
    const char *body;
    size_t len;

    if (route_body(ctx, &body, &len) < 0)
        return;
    if (request_parse_comment(body, len, &rc, &rerr) < 0) {
        routes_error(ctx, rerr.status, rerr.code, "%s", rerr.msg);
        return;
    }
    routes_comment(ctx, &rc, &o);
    request_comment_release(&rc);
}

/* ---- GET /healthz, /readyz, /metrics ---------------------------------- */

static void
route_readyz(struct route_ctx *ctx)
{
    const struct config *cfg = ctx->st->cfg;
    unsigned up, total;
    int connected = worker_redis_ready(&up, &total);
    char refusal[QUEUE_REFUSAL_MAX];
    /* Redis can take comments: connected, and it took the last write
     * (queue.h, "writes Redis refuses"). */
    int refusing = queue_refusing(refusal, sizeof refusal) >= 0;
    int redis = connected && !refusing;
    int spool = spool_can_take(ctx->w->spool);
    json_t *warnings = json_array(), *body;

    if (getuid() == 0 && !cfg->user[0])
        json_array_append_new(warnings,
                              json_string("running as root and server.user "
                                          "is not set"));
    if (auth_count(cfg->auth, AUTH_SUBMIT) == 0)
        json_array_append_new(warnings,
                              json_string("auth.submit_tokens is empty: "
                                          "submit routes serve loopback and "
                                          "Unix-socket clients only"));
    if (metrics_redis_evicting() == 1) /* not a 503: worker.c says why */
        json_array_append_new(warnings,
                              json_string("Redis's maxmemory-policy may "
                                          "evict queued comments: set "
                                          "maxmemory-policy noeviction"));
    if (refusing) {
        char msg[QUEUE_REFUSAL_MAX + 100];

        snprintf(msg, sizeof(msg),
                 "Redis refuses writes (%s): comments that need queueing %s",
                 refusal, spool ? "go to the spool" : "get 503");
        json_array_append_new(warnings, json_string(msg));
    }
    if (!connected && up > 0) {
        char msg[120];

        snprintf(msg, sizeof(msg),
                 "Redis connections ready in %u of %u workers", up, total);
        json_array_append_new(warnings, json_string(msg));
    }
    if (spool) {
        struct spool_stats ss;

        spool_stats(ctx->w->spool, &ss);
        if (ss.records > 0) {
            char msg[120];

            snprintf(msg, sizeof(msg),
                     "%llu comment(s) in the spool wait for Redis", ss.records);
            json_array_append_new(warnings, json_string(msg));
        }
    } else if (ctx->w->spool != NULL) {
        json_array_append_new(warnings,
                              json_string("the spool cannot take comments "
                                          "(spool.max_bytes reached, or its "
                                          "last write failed): a comment "
                                          "Redis cannot take gets 503"));
    }
    body = json_pack("{s:b, s:b, s:b, s:o}", "ready", redis || spool, "redis",
                     redis, "spool", spool, "warnings", warnings);
    route_json(ctx, redis || spool ? 200 : 503, body);
    json_decref(body);
}

static void
route_metrics_send(struct route_ctx *ctx, long long n, long long oldest_ms)
{
    struct evbuffer *buf = evbuffer_new();
    unsigned up = 0, workers = 0;
    size_t len;

    if (buf == NULL) {
        route_send(ctx, 500, NULL, NULL, 0);
        return;
    }
    worker_redis_ready(&up, &workers);
    metrics_render(buf, ctx->st, n, oldest_ms, up, workers);
    spool_metrics_render(buf, ctx->w->spool);
    len = evbuffer_get_length(buf);
    route_send(ctx, 200, "text/plain; version=0.0.4; charset=utf-8",
               len ? (const char *)evbuffer_pullup(buf, -1) : "", len);
    evbuffer_free(buf);
}

/* /metrics asks Redis twice: the length, then the oldest item. */
static void
route_oldest(enum queue_status st, long long n, void *arg)
{
    struct route_pending *p = arg;

    route_pending_unhook(p);
    route_metrics_send(&p->ctx, p->queue_len,
                       st == QUEUE_OK && p->queue_len > 0 ? n : -1);
    routes_pending_free(p);
}

static void
route_counted(enum queue_status st, long long n, void *arg)
{
    struct route_pending *p = arg;

    p->queue_len = st == QUEUE_OK ? n : -1;
    if (st == QUEUE_OK && p->ctx.req != NULL &&
        queue_oldest(p->ctx.w->queue, route_oldest, p) == 0)
        return;
    route_pending_unhook(p);
    route_metrics_send(&p->ctx, p->queue_len, -1);
    routes_pending_free(p);
}

static void
route_metrics(struct route_ctx *ctx)
{
    struct route_pending *p;

    if (ctx->w->queue == NULL || !queue_connected(ctx->w->queue) ||
        (p = routes_pending_new(ctx)) == NULL) {
        route_metrics_send(ctx, -1, -1);
        return;
    }
    if (queue_length(p->ctx.w->queue, route_counted, p) < 0) {
        route_pending_unhook(p);
        route_metrics_send(&p->ctx, -1, -1);
        routes_pending_free(p);
    }
}

/* ---- dispatch --------------------------------------------------------- */

enum route_kind {
    ROUTE_COMMENTS,
    ROUTE_SCORE,
    ROUTE_HEALTHZ,
    ROUTE_READYZ,
    ROUTE_METRICS,
    ROUTE_MODERATOR,
    ROUTE_TRAIN,
    ROUTE_AKISMET,
};

struct route_def {
    const char *path; /* or its pattern ("/v1/queue/{id}"), for a 405 */
    int prefix;       /* path is a prefix ("/v1/queue/") */
    enum route_kind kind;
    int methods; /* HTTP_METHOD_* */
    enum metrics_route metric;
};

static const struct route_def route_table[] = {
    {"/v1/comments", 0, ROUTE_COMMENTS, HTTP_METHOD_POST,
     METRICS_ROUTE_COMMENTS},
    {"/v1/score", 0, ROUTE_SCORE, HTTP_METHOD_POST, METRICS_ROUTE_SCORE},
    {"/healthz", 0, ROUTE_HEALTHZ, HTTP_METHOD_GET, METRICS_ROUTE_HEALTHZ},
    {"/readyz", 0, ROUTE_READYZ, HTTP_METHOD_GET, METRICS_ROUTE_READYZ},
    {"/metrics", 0, ROUTE_METRICS, HTTP_METHOD_GET, METRICS_ROUTE_METRICS},
    {"/v1/queue", 0, ROUTE_MODERATOR, HTTP_METHOD_GET, METRICS_ROUTE_MODERATOR},
    /* GET shows the items whose ids are "claim" and "decisions". */
    {"/v1/queue/claim", 0, ROUTE_MODERATOR, HTTP_METHOD_GET | HTTP_METHOD_POST,
     METRICS_ROUTE_MODERATOR},
    {"/v1/queue/decisions", 0, ROUTE_MODERATOR,
     HTTP_METHOD_GET | HTTP_METHOD_POST, METRICS_ROUTE_MODERATOR},
    /* Its item and actions: path and methods from moderation_route. */
    {"/v1/queue/", 1, ROUTE_MODERATOR, 0, METRICS_ROUTE_MODERATOR},
    {"/v1/train", 0, ROUTE_TRAIN, HTTP_METHOD_POST, METRICS_ROUTE_MODERATOR},
    {"/v1/history", 0, ROUTE_MODERATOR, HTTP_METHOD_GET,
     METRICS_ROUTE_MODERATOR},
    {"/v1/stats", 0, ROUTE_MODERATOR, HTTP_METHOD_GET, METRICS_ROUTE_MODERATOR},
    /* akismet.c checks each path's methods: its 405 is the protocol's
     * plain text, as its other answers. */
    {"/1.1/", 1, ROUTE_AKISMET, 0, METRICS_ROUTE_AKISMET},
    {"/1.2/", 1, ROUTE_AKISMET, 0, METRICS_ROUTE_AKISMET},
};

void
routes_allow(int methods, char *buf, size_t len)
{
    static const struct {
        int method;
        const char *name;
    } order[] = {{HTTP_METHOD_GET, "GET"},
                 {HTTP_METHOD_POST, "POST"},
                 {HTTP_METHOD_HEAD, "HEAD"}};
    size_t i, n = 0;

    if (methods & HTTP_METHOD_GET)
        methods |= HTTP_METHOD_HEAD; /* HEAD wherever GET (RFC 9110 9.1) */
    buf[0] = '\0';
    for (i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        if ((methods & order[i].method) && n < len)
            n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? ", " : "",
                                  order[i].name);
}

void
routes_dispatch(struct http_request *req, void *arg)
{
    struct worker *w = arg;
    struct route_ctx ctx;
    const struct route_def *def = NULL;
    struct route_def item;
    const char *path = req->path;
    int method = req->method;
    size_t i;

    memset(&ctx, 0, sizeof(ctx));
    ctx.w = w;
    ctx.req = req;
    ctx.c = req->conn;
    ctx.t0 = util_monotonic();
    ctx.route = METRICS_ROUTE_OTHER;
    if (path == NULL || path[0] == '\0')
        path = "/";
    for (i = 0; i < sizeof(route_table) / sizeof(route_table[0]); i++) {
        const struct route_def *d = &route_table[i];

        if (d->prefix ? !strncmp(path, d->path, strlen(d->path))
                      : !strcmp(path, d->path)) {
            def = d;
            break;
        }
    }
    if (def == NULL) {
        routes_error(&ctx, 404, "not_found", "no such route");
        return;
    }
    ctx.route = def->metric;
    if (def->kind == ROUTE_MODERATOR && def->prefix) {
        item = *def;
        item.path = moderation_route(path, &item.methods);
        if (item.path == NULL) {
            routes_error(&ctx, 404, "not_found", "no such route");
            return;
        }
        def = &item;
    }
    if (method == HTTP_METHOD_HEAD)
        method = HTTP_METHOD_GET; /* HEAD wherever GET (RFC 9110 9.1) */
    if (def->kind != ROUTE_AKISMET && !(def->methods & method)) {
        char allow[32];

        routes_allow(def->methods, allow, sizeof(allow));
        http_reply_header(req, "Allow", allow);
        routes_error(&ctx, 405, "method_not_allowed", "%s takes %s only",
                     def->path, allow);
        return;
    }
    if (req->too_large && def->kind != ROUTE_AKISMET) {
        /* httpd did not read it; akismet.c answers in its own words. */
        routes_error(&ctx, 413, "payload_too_large",
                     "the body is over limits.max_body (%lu bytes)",
                     w->max_body);
        return;
    }
    if (def->kind == ROUTE_HEALTHZ) {
        json_t *body = json_pack("{s:s}", "status", "ok");

        route_json(&ctx, 200, body);
        json_decref(body);
        return;
    }
    ctx.st = state_acquire();
    if (ctx.st == NULL) {
        routes_error(&ctx, 503, "unavailable", "starting up");
        return;
    }
    switch (def->kind) {
    case ROUTE_COMMENTS:
    case ROUTE_SCORE:
        if (route_auth(&ctx, AUTH_SUBMIT, 0) == 0)
            route_comment(&ctx, def->kind == ROUTE_COMMENTS);
        break;
    case ROUTE_READYZ:
        route_readyz(&ctx);
        break;
    case ROUTE_METRICS:
        if (route_auth(&ctx, AUTH_MODERATOR, 1) == 0)
            route_metrics(&ctx);
        break;
    case ROUTE_MODERATOR:
        if (route_auth(&ctx, AUTH_MODERATOR, 0) == 0)
            moderation_handle(&ctx, path);
        break;
    case ROUTE_TRAIN:
        if (route_auth(&ctx, AUTH_MODERATOR, 0) == 0)
            train_handle(&ctx);
        break;
    case ROUTE_AKISMET:
        if (auth_count(ctx.st->cfg->auth, AUTH_AKISMET) == 0)
            routes_error(&ctx, 404, "not_found",
                         "no such route (akismet.keys is empty)");
        else
            akismet_handle(&ctx, path);
        break;
    case ROUTE_HEALTHZ:
        break;
    }
    /* Every path above replied (or handed the request to Redis). */
    state_release(ctx.st);
}
