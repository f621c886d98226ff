/*
 * train.c - POST /v1/train: a moderator teaches the classifier examples.
 *
 * The body is one example {"text", "labels"[, "lang"]} (other fields, such
 * as the "id" of modfilter train's files, are ignored) as
 * application/json, or JSON Lines of them as application/x-ndjson.  Each
 * valid example becomes one "upload" event on the training stream
 * (queue_train_event, pipelined, at most TRAIN_WINDOW awaiting Redis at a
 * time: a large upload neither holds its worker's loop for one long pass
 * nor queues its events ahead of every comment submit behind them), and
 * the reply {"learned", "duplicates", "errors"} goes once Redis has
 * answered every one.  The first event Redis does not take stops the
 * sending: the rest count as errors (retrying is harmless, learning is
 * idempotent).  Nothing is learned here: learn.c applies the events, on
 * every daemon, in stream order.
 *
 * learned and duplicates are counted when the request comes, against the
 * model it is served with: an example none of whose labels would change
 * it is a duplicate (known with that value already, or repeated in the
 * upload).
 * Duplicates are sent all the same (learning is idempotent, and the model
 * may be a few events behind the stream).  errors counts the lines that
 * are not a valid example and the events Redis did not take; the reply's
 * "messages" says why for the first few.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "modfilterd.h"
#include "queue.h"

#define TRAIN_MAX_MESSAGES 10
#define TRAIN_NDJSON "application/x-ndjson"
#define TRAIN_WINDOW 256 /* events awaiting Redis per request at most */

struct train_req;

/* One example's event on its way to Redis. */
struct train_sent {
    struct train_req *tr;
};

struct train_req {
    struct route_pending *p;
    json_t *examples;        /* a reference, each with "_learned" */
    char *by;                /* who teaches (malloc'd) */
    struct train_sent *sent; /* malloc'd, one per example */
    size_t n_sent, n_answered, next;
    int stopped; /* an event failed: send no more */
    unsigned learned, duplicates, errors, failed;
    json_t *messages; /* the first reasons, "line 3: no text" */
};

static void train_note(struct train_req *tr, const char *fmt, ...)
    MF_PRINTF(2, 3);

static void
train_note(struct train_req *tr, const char *fmt, ...)
{
    char msg[300];
    va_list ap;

    tr->errors++;
    if (tr->messages == NULL ||
        json_array_size(tr->messages) >= TRAIN_MAX_MESSAGES)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_array_append_new(tr->messages, json_string(msg));
}

/* One example: a new reference to {"text", "labels", "lang"?} whose labels
 * are m's (any, when m is NULL), or NULL with the reason in why. */
static json_t *
train_example(const char *s, size_t len, const struct clf_model *m, char *why,
              size_t whylen)
{
    json_error_t jerr;
    json_t *root, *text, *labels, *lang;

    root = json_loadb(s, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(why, whylen, "invalid JSON: %s", request_json_reason(&jerr));
        return NULL;
    }
    text = json_object_get(root, "text");
    labels = json_object_get(root, "labels");
    lang = json_object_get(root, "lang");
    if (!json_is_object(root))
        snprintf(why, whylen, "not a JSON object");
    else if (!json_is_string(text) || json_string_length(text) == 0)
        snprintf(why, whylen, "text must be a non-empty string");
    else if (lang != NULL && !json_is_string(lang) && !json_is_null(lang))
        snprintf(why, whylen, "lang must be a string");
    else if (learn_labels_check(labels, m, why, whylen) == 0)
        return root;
    json_decref(root);
    return NULL;
}

static void
train_reply(struct route_ctx *ctx, struct train_req *tr)
{
    json_t *body;
    char *text;

    if (tr->learned + tr->duplicates == 0 && tr->failed > 0) {
        routes_error(ctx, 503, "unavailable",
                     "Redis did not take the training events; retry later");
        return;
    }
    body = json_pack("{s:I, s:I, s:I}", "learned", (json_int_t)tr->learned,
                     "duplicates", (json_int_t)tr->duplicates, "errors",
                     (json_int_t)tr->errors);
    if (body != NULL && json_array_size(tr->messages) > 0)
        json_object_set(body, "messages", tr->messages);
    text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    if (text == NULL)
        routes_error(ctx, 500, "internal", "out of memory");
    else
        routes_reply(ctx, 200, "application/json", text);
    free(text);
    json_decref(body);
}

static void
train_req_free(struct train_req *tr)
{
    if (tr == NULL)
        return;
    free(tr->sent);
    free(tr->by);
    json_decref(tr->examples);
    json_decref(tr->messages);
    free(tr);
}

/* Example i was not taken: an error, no longer counted as learned or as
 * a duplicate (the caller notes why). */
static void
train_not_taken(struct train_req *tr, size_t i)
{
    if (json_is_true(
            json_object_get(json_array_get(tr->examples, i), "_learned")))
        tr->learned--;
    else
        tr->duplicates--;
    tr->failed++;
}

static void train_on_sent(enum queue_status st, const char *entry_id,
                          void *arg);

/* Sends examples until TRAIN_WINDOW await Redis; once stopped, the rest
 * are not taken.  Then, when every event sent has its answer, replies and
 * frees tr. */
static void
train_send_more(struct train_req *tr)
{
    size_t n = json_array_size(tr->examples);
    struct queue *q = routes_pending_ctx(tr->p)->w->queue;

    while (!tr->stopped && tr->next < n &&
           tr->n_sent - tr->n_answered < TRAIN_WINDOW) {
        size_t i = tr->next++;
        json_t *ex = json_array_get(tr->examples, i);
        json_t *text = json_object_get(ex, "text");
        struct train_sent *s = &tr->sent[i];
        struct queue_train ev;
        char *labels;

        s->tr = tr;
        labels = json_dumps(json_object_get(ex, "labels"),
                            JSON_COMPACT | JSON_SORT_KEYS);
        memset(&ev, 0, sizeof(ev));
        ev.source = "upload";
        ev.op = "learn";
        ev.text = json_string_value(text);
        ev.text_len = json_string_length(text);
        ev.lang = json_string_value(json_object_get(ex, "lang"));
        ev.labels = labels;
        ev.by = tr->by;
        ev.ts_ms = util_now_ms();
        if (labels != NULL &&
            queue_train_event(q, &ev, train_on_sent, s) == 0) {
            tr->n_sent++;
        } else {
            tr->stopped = 1;
            train_not_taken(tr, i);
            train_note(tr, "Redis did not take an event (not connected)");
        }
        free(labels);
    }
    if (tr->stopped && tr->next < n) {
        /* one message for them all, an error each */
        train_note(tr, "%zu event(s) not sent after that failure",
                   n - tr->next);
        tr->errors += (unsigned)(n - tr->next - 1);
        for (; tr->next < n; tr->next++)
            train_not_taken(tr, tr->next);
    }
    if (tr->n_answered < tr->n_sent || tr->next < n)
        return;
    train_reply(routes_pending_ctx(tr->p), tr);
    routes_pending_free(tr->p);
    train_req_free(tr);
}

static void
train_on_sent(enum queue_status st, const char *entry_id, void *arg)
{
    struct train_sent *s = arg;
    struct train_req *tr = s->tr;

    (void)entry_id;
    tr->n_answered++;
    if (st != QUEUE_OK) {
        tr->stopped = 1;
        train_not_taken(tr, (size_t)(s - tr->sent));
        train_note(tr, "Redis did not take an event (%s)",
                   st == QUEUE_TIMEOUT ? "timeout" : "error");
    }
    train_send_more(tr);
}

/* A label of an upload's example that the model in use does not know:
 * the example's identity with that label, and the example's index. */
struct train_new {
    uint64_t id;
    size_t ex;
};

static int
train_new_cmp(const void *a, const void *b)
{
    const struct train_new *x = a, *y = b;

    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return (x->ex > y->ex) - (x->ex < y->ex);
}

/* Count learned / duplicates against the model in use: an example is a
 * duplicate when that model knows it with every label it carries, or an
 * earlier example of the upload had the same identity.  Sorted, not
 * compared pairwise: an upload may hold hundreds of thousands. */
static int
train_count(struct route_ctx *ctx, json_t *examples, struct train_req *tr)
{
    size_t i, k, n = 0, cap = 0, n_ex = json_array_size(examples);
    struct train_new *nw = NULL;
    unsigned char *learned = calloc(n_ex ? n_ex : 1, 1);

    if (learned == NULL)
        return -1;
    for (i = 0; i < n_ex; i++) {
        json_t *ex = json_array_get(examples, i), *v;
        json_t *text = json_object_get(ex, "text");
        json_t *lang = json_object_get(ex, "lang");
        const char *label;

        json_object_foreach(json_object_get(ex, "labels"), label, v)
        {
            int value = json_is_boolean(v) ? json_is_true(v)
                                           : (int)json_integer_value(v);
            uint64_t id;

            if (clf_known_id(ctx->w->scorer, ctx->st->model,
                             json_string_value(text), json_string_length(text),
                             json_string_value(lang), label, value, &id) != 0)
                continue;
            if (n == cap) {
                struct train_new *more;

                cap = cap ? 2 * cap : 64;
                if ((more = realloc(nw, cap * sizeof(*nw))) == NULL) {
                    free(nw);
                    free(learned);
                    return -1;
                }
                nw = more;
            }
            nw[n++] = (struct train_new){id, i};
        }
    }
    /* the first example of each new identity learns it */
    if (n > 0)
        qsort(nw, n, sizeof(*nw), train_new_cmp);
    for (k = 0; k < n; k++)
        if (k == 0 || nw[k].id != nw[k - 1].id)
            learned[nw[k].ex] = 1;
    for (i = 0; i < n_ex; i++) {
        json_object_set_new(json_array_get(examples, i), "_learned",
                            json_boolean(learned[i]));
        if (learned[i])
            tr->learned++;
        else
            tr->duplicates++;
    }
    free(nw);
    free(learned);
    return 0;
}

/* Only spaces and tabs in s[0..n): the body is not NUL-terminated, so no
 * strspn (its last line would be read past the end). */
static int
train_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t')
            return 0;
    return 1;
}

int
train_parse_body(const char *body, size_t len, int ndjson,
                 const struct clf_model *m, json_t *examples,
                 train_note_fn *note, void *arg, char *why, size_t whylen)
{
    size_t off = 0, line = 0;
    json_t *ex;

    if (!ndjson) {
        ex = train_example(body, len, m, why, whylen);
        if (ex == NULL)
            return -1;
        json_array_append_new(examples, ex);
        return 0;
    }
    while (off < len) {
        const char *nl = memchr(body + off, '\n', len - off);
        size_t end = nl ? (size_t)(nl - body) : len, n = end - off;

        line++;
        if (n > 0 && body[off + n - 1] == '\r')
            n--;
        if (!train_blank(body + off, n)) {
            ex = train_example(body + off, n, m, why, whylen);
            if (ex == NULL)
                note(arg, line, why);
            else
                json_array_append_new(examples, ex);
        }
        off = end + 1;
    }
    return 0;
}

/* train_parse_body's note: the line's reason among the reply's messages. */
static void
train_note_line(void *arg, size_t line, const char *why)
{
    train_note(arg, "line %zu: %s", line, why);
}

/* The examples of the body, or NULL when the request was answered. */
static json_t *
train_parse(struct route_ctx *ctx, struct train_req *tr, int ndjson)
{
    json_t *examples = json_array();
    char why[256];

    if (examples == NULL || ctx->req->body == NULL) {
        json_decref(examples);
        routes_error(ctx, 500, "internal", "out of memory");
        return NULL;
    }
    if (train_parse_body(ctx->req->body, ctx->req->body_len, ndjson,
                         ctx->st->model, examples, train_note_line, tr, why,
                         sizeof(why)) < 0) {
        json_decref(examples);
        routes_error(ctx, 400,
                     strncmp(why, "invalid JSON", 12) ? "invalid_request"
                                                      : "invalid_json",
                     "%s", why);
        return NULL;
    }
    if (json_array_size(examples) == 0 && tr->errors == 0) {
        json_decref(examples);
        routes_error(ctx, 400, "invalid_request", "the body holds no example");
        return NULL;
    }
    return examples;
}

void
train_handle(struct route_ctx *ctx)
{
    const char *ct = http_request_header(ctx->req, "Content-Type");
    const char *by = NULL;
    size_t len = ctx->req->body_len;
    struct train_req *tr = NULL;
    json_t *examples = NULL;
    int ndjson;

    ndjson = ct != NULL && !strncasecmp(ct, TRAIN_NDJSON, strlen(TRAIN_NDJSON));
    if (!ndjson && (ct == NULL || strncasecmp(ct, "application/json", 16) ||
                    (ct[16] != '\0' && ct[16] != ';' && ct[16] != ' '))) {
        routes_error(ctx, 415, "unsupported_media_type",
                     "Content-Type must be application/json or "
                     "application/x-ndjson");
        return;
    }
    if (len > ctx->w->max_body) {
        routes_error(ctx, 413, "payload_too_large",
                     "the body is %zu bytes; limits.max_body is %lu", len,
                     ctx->w->max_body);
        return;
    }
    auth_check(ctx->st->cfg->auth,
               http_request_header(ctx->req, "Authorization"), &by);
    tr = calloc(1, sizeof(*tr));
    if (tr == NULL || (tr->messages = json_array()) == NULL) {
        routes_error(ctx, 500, "internal", "out of memory");
        goto done;
    }
    examples = train_parse(ctx, tr, ndjson);
    if (examples == NULL)
        goto done;
    if (json_array_size(examples) == 0) {
        train_reply(ctx, tr); /* every line was invalid */
        goto done;
    }
    if (!queue_connected(ctx->w->queue)) {
        routes_error(ctx, 503, "unavailable",
                     "Redis is not connected; nothing was learned, retry "
                     "later");
        goto done;
    }
    if (train_count(ctx, examples, tr) < 0) {
        routes_error(ctx, 500, "internal", "out of memory");
        goto done;
    }
    tr->p = routes_pending_new(ctx);
    if (tr->p == NULL) {
        routes_error(ctx, 500, "internal", "out of memory");
        goto done;
    }
    /* ctx lost its request and state to tr->p; its worker stays. */
    tr->examples = json_incref(examples);
    tr->by = strdup(by != NULL ? by : "");
    tr->sent = calloc(json_array_size(examples), sizeof(*tr->sent));
    if (tr->by == NULL || tr->sent == NULL) {
        routes_error(routes_pending_ctx(tr->p), 500, "internal",
                     "out of memory");
        routes_pending_free(tr->p);
        goto done;
    }
    /* Parsing a large upload can take this pass a second: the loop's
     * cached time would start the events' Redis timeouts that much late. */
    event_base_update_cache_time(ctx->w->base);
    train_send_more(tr); /* it, or train_on_sent, replies and frees tr */
    tr = NULL;
done:
    json_decref(examples);
    train_req_free(tr);
}
