/*
 * akismet.c - the Akismet API 1.1 (and /1.2/usage-limit), so that blog
 * plugins and client libraries written for the hosted service work
 * unchanged.  Bodies are form-encoded (form.c) whatever Content-Type says;
 * answers are the plain words clients compare against ("valid", "true",
 * "Thanks for making the web a better place."), status 200 even for
 * "invalid", as the hosted service does.
 *
 * comment-check goes through the same path as POST /v1/comments
 * (routes_comment: score, decide, queue when the verdict is in
 * queue.verdicts); the stored record carries every Akismet field but the
 * key.  submit-spam/submit-ham append a training event to the Redis stream
 * P training (queue_train_event); every daemon's learner (learn.c) applies
 * it like a moderator's decision.
 *
 * Keys are blog-url:key pairs in the config's auth table (role
 * AUTH_AKISMET), looked up in constant time.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "modfilterd.h"
#include "queue.h"

#define AKISMET_THANKS "Thanks for making the web a better place."

/* ---- protocol helpers (pure) ------------------------------------------ */

/* 1 when an is_test value means "set" ("1", "true", "yes", "on"). */
static int
akismet_true(const char *v)
{
    return v != NULL && (!strcmp(v, "1") || !strcasecmp(v, "true") ||
                         !strcasecmp(v, "yes") || !strcasecmp(v, "on"));
}

enum akismet_trigger
akismet_trigger(const struct form *f)
{
    const char *author = form_get(f, "comment_author", NULL);
    const char *email = form_get(f, "comment_author_email", NULL);
    const char *role = form_get(f, "user_role", NULL);

    if (author != NULL && (!strcmp(author, "viagra-test-123") ||
                           !strcmp(author, "akismet-guaranteed-spam")))
        return AKISMET_TRIGGER_SPAM;
    if (email != NULL &&
        !strcasecmp(email, "akismet-guaranteed-spam@example.com"))
        return AKISMET_TRIGGER_SPAM;
    if (role != NULL && !strcasecmp(role, "administrator"))
        return AKISMET_TRIGGER_HAM;
    return AKISMET_TRIGGER_NONE;
}

/* The Akismet fields as one JSON object (the last of repeated fields),
 * without the key.  New reference; NULL on ENOMEM. */
json_t *
akismet_fields_json(const struct form *f)
{
    json_t *o = json_object();
    unsigned i;

    if (o == NULL)
        return NULL;
    for (i = 0; i < f->n; i++) {
        const struct form_field *fl = &f->fields[i];

        if (!strcmp(fl->name, "key") || !strcmp(fl->name, "api_key"))
            continue;
        if (json_object_setn_new(o, fl->name, fl->name_len,
                                 json_stringn(fl->value, fl->value_len))) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* ---- replies ---------------------------------------------------------- */

static void
akismet_text(struct route_ctx *ctx, int status, const char *text)
{
    routes_reply(ctx, status, "text/plain; charset=utf-8", text);
}

static void
akismet_header(struct route_ctx *ctx, const char *name, const char *value)
{
    if (ctx->req != NULL)
        http_reply_header(ctx->req, name, value);
}

/* "invalid" with the reason in X-akismet-debug-help. */
static void
akismet_invalid(struct route_ctx *ctx, int status, const char *help)
{
    akismet_header(ctx, "X-akismet-debug-help", help);
    akismet_text(ctx, status, "invalid");
}

static void
akismet_unavailable(struct route_ctx *ctx, const char *why)
{
    akismet_header(ctx, "Retry-After", "2");
    akismet_header(ctx, "X-akismet-debug-help", why);
    akismet_text(ctx, 503, "unavailable");
}

/* ---- endpoints -------------------------------------------------------- */

/* One parsed Akismet request. */
struct akismet_req {
    struct form form;
    const char *blog_of_key; /* the configured blog of a valid key, or NULL */
};

/* The key: form field api_key or key (the field wins when present), else
 * the first label of the Host header when it is a configured key. */
static const char *
akismet_key_blog(const struct route_ctx *ctx, const struct form *f,
                 const char **why)
{
    const struct auth *keys = ctx->st->cfg->auth;
    const char *key = form_get(f, "api_key", NULL), *host, *dot;
    const char *blog;

    if (key == NULL)
        key = form_get(f, "key", NULL);
    if (key != NULL) {
        blog = auth_find(keys, AUTH_AKISMET, key, strlen(key));
        *why = key[0] ? "Invalid API key." : "Empty \"api_key\" value";
        return blog;
    }
    host = ctx->req ? http_request_header(ctx->req, "Host") : NULL;
    *why = "Empty \"api_key\" value";
    if (host == NULL || (dot = strchr(host, '.')) == NULL)
        return NULL;
    return auth_find(keys, AUTH_AKISMET, host, (size_t)(dot - host));
}

/* 0 when blog and user_ip are there; else answered. */
static int
akismet_required(struct route_ctx *ctx, const struct form *f)
{
    static const char *const need[] = {"blog", "user_ip"};
    char help[64];
    size_t i, len;

    for (i = 0; i < sizeof(need) / sizeof(need[0]); i++)
        if (form_get(f, need[i], &len) == NULL || len == 0) {
            snprintf(help, sizeof(help), "Empty \"%s\" value", need[i]);
            akismet_invalid(ctx, 200, help);
            return -1;
        }
    return 0;
}

static void
akismet_checked(struct route_ctx *ctx, const struct routes_scored *s)
{
    switch (s->outcome) {
    case ROUTES_UNAVAILABLE:
        akismet_unavailable(ctx, s->message);
        return;
    case ROUTES_FAILED:
        akismet_header(ctx, "X-akismet-debug-help", s->message);
        akismet_text(ctx, 500, "error");
        return;
    case ROUTES_SCORED:
    case ROUTES_QUEUED:
    case ROUTES_STORED:
        break;
    }
    akismet_header(ctx, "X-akismet-guid", ctx->id);
    akismet_header(ctx, "X-modfilter-verdict", clf_verdict_name(s->verdict));
    akismet_header(ctx, "X-modfilter-queued",
                   s->outcome == ROUTES_SCORED ? "false" : "true");
    if (s->verdict == CLF_REJECT)
        akismet_header(ctx, "X-akismet-pro-tip", "discard");
    akismet_text(ctx, 200, s->verdict == CLF_ALLOW ? "false" : "true");
}

static void
akismet_comment_check(struct route_ctx *ctx, const struct form *f)
{
    struct routes_comment_opts o;
    struct request_comment rc;
    enum akismet_trigger t = akismet_trigger(f);
    json_t *extra, *fields = akismet_fields_json(f);
    const char *post;
    size_t post_len;

    memset(&rc, 0, sizeof(rc));
    rc.text = form_get(f, "comment_content", &rc.text_len);
    if (rc.text == NULL)
        rc.text = "";
    rc.author_name = form_get(f, "comment_author", NULL);
    rc.author_email = form_get(f, "comment_author_email", NULL);
    rc.author_url = form_get(f, "comment_author_url", NULL);
    rc.author_ip = form_get(f, "user_ip", NULL);
    post = form_get(f, "permalink", &post_len);
    rc.post = post != NULL && post_len > 0 ? post : form_get(f, "blog", NULL);
    /* No language hint: blog_lang is the blog's, and comments (spam
     * above all) come in others; detection reads the comment itself
     * (98.7-99.9% right on the data sets' short texts, scripts/langacc.sh)
     * where an English comment stemmed as Spanish scores wrong. */
    extra = json_pack("{s:s, s:o}", "source", "akismet", "akismet", fields);
    if (extra == NULL) {
        akismet_header(ctx, "X-akismet-debug-help", "out of memory");
        akismet_text(ctx, 500, "error");
        return;
    }
    memset(&o, 0, sizeof(o));
    o.store = !akismet_true(form_get(f, "is_test", NULL));
    o.min_verdict = t == AKISMET_TRIGGER_SPAM ? CLF_REVIEW : CLF_ALLOW;
    o.max_verdict = t == AKISMET_TRIGGER_HAM ? CLF_ALLOW : CLF_REJECT;
    o.extra = extra;
    o.cb = akismet_checked;
    routes_comment(ctx, &rc, &o);
    json_decref(extra);
}

static void
akismet_trained(enum queue_status st, const char *entry_id, void *arg)
{
    struct route_pending *p = arg;
    struct route_ctx *ctx = routes_pending_ctx(p);

    (void)entry_id;
    if (st == QUEUE_OK)
        akismet_text(ctx, 200, AKISMET_THANKS);
    else
        akismet_unavailable(ctx, st == QUEUE_TIMEOUT
                                     ? "Redis did not acknowledge the "
                                       "example in time; retry later"
                                     : "Redis could not take the example; "
                                       "retry later");
    routes_pending_free(p);
}

/* The labels JSON of a submit-spam (value 1) or submit-ham (0). */
static char *
akismet_labels(const struct config *cfg, int value)
{
    json_t *o = json_object();
    const char *p = cfg->akismet_labels;
    char *text = NULL;

    while (o != NULL && *p) {
        size_t n;

        p += strspn(p, " \t,");
        n = strcspn(p, " \t,");
        if (n == 0)
            break;
        if (json_object_setn_new(o, p, n, json_integer(value)))
            goto done;
        p += n;
    }
    if (o != NULL)
        text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
done:
    json_decref(o);
    return text;
}

static void
akismet_submit(struct route_ctx *ctx, const struct akismet_req *ar, int spam)
{
    const struct form *f = &ar->form;
    struct queue_train ev;
    struct route_pending *p;
    char *labels = NULL;

    memset(&ev, 0, sizeof(ev));
    ev.text = form_get(f, "comment_content", &ev.text_len);
    /* A test, a key without training, or nothing to learn: thanked, not
     * recorded (the client cannot act on anything else). */
    if (akismet_true(form_get(f, "is_test", NULL)) ||
        !ctx->st->cfg->akismet_train_on || ev.text == NULL ||
        ev.text_len == 0) {
        ctx->verdict = "not-recorded";
        akismet_text(ctx, 200, AKISMET_THANKS);
        return;
    }
    labels = akismet_labels(ctx->st->cfg, spam);
    if (labels == NULL) {
        akismet_text(ctx, 500, "error");
        return;
    }
    ev.source = "akismet"; /* no lang: as comment-check, detection */
    ev.op = "learn";
    ev.labels = labels;
    ev.by = ar->blog_of_key;
    ev.ts_ms = util_now_ms();
    ctx->verdict = spam ? "spam" : "ham";
    p = routes_pending_new(ctx);
    if (p == NULL) {
        akismet_text(ctx, 500, "error");
    } else if (queue_train_event(ctx->w->queue, &ev, akismet_trained, p) < 0) {
        ctx = routes_pending_ctx(p);
        akismet_unavailable(ctx, "Redis is not connected; the example is "
                                 "not recorded, retry later");
        routes_pending_free(p);
    }
    free(labels);
}

enum akismet_endpoint {
    AKISMET_VERIFY_KEY,
    AKISMET_COMMENT_CHECK,
    AKISMET_SUBMIT_SPAM,
    AKISMET_SUBMIT_HAM,
    AKISMET_USAGE_LIMIT,
};

static const struct {
    const char *path;
    enum akismet_endpoint ep;
    int methods; /* HEAD wherever GET */
} akismet_routes[] = {
    {"/1.1/verify-key", AKISMET_VERIFY_KEY, HTTP_METHOD_POST},
    {"/1.1/comment-check", AKISMET_COMMENT_CHECK, HTTP_METHOD_POST},
    {"/1.1/submit-spam", AKISMET_SUBMIT_SPAM, HTTP_METHOD_POST},
    {"/1.1/submit-ham", AKISMET_SUBMIT_HAM, HTTP_METHOD_POST},
    {"/1.2/usage-limit", AKISMET_USAGE_LIMIT,
     HTTP_METHOD_GET | HTTP_METHOD_POST},
};

/* The Content-Type's charset parameter into out ("" when none). */
static void
akismet_ct_charset(const char *ct, char *out, size_t len)
{
    const char *cs = ct ? strcasestr(ct, "charset=") : NULL;
    size_t n;

    out[0] = '\0';
    if (cs == NULL)
        return;
    cs += 8;
    n = strcspn(cs, "; \t");
    snprintf(out, len, "%.*s", (int)n, cs);
}

/* The query string and the body as one form ("query&body": the body wins
 * for a field in both, last wins).  0, or answered. */
static int
akismet_parse(struct route_ctx *ctx, struct form *f)
{
    const char *query = ctx->req->query;
    size_t blen = ctx->req->body_len, qlen = query ? strlen(query) : 0;
    char charset[40], err[120], *all;
    int rc;

    if (ctx->req->too_large || blen > ctx->w->max_body) {
        snprintf(err, sizeof(err),
                 "The body is over %lu bytes, what this server takes",
                 ctx->w->max_body);
        akismet_invalid(ctx, 413, err);
        return -1;
    }
    akismet_ct_charset(http_request_header(ctx->req, "Content-Type"), charset,
                       sizeof(charset));
    all = malloc(qlen + 1 + blen + 1);
    if (all == NULL) {
        akismet_text(ctx, 500, "error");
        return -1;
    }
    if (qlen > 0)
        memcpy(all, query, qlen);
    all[qlen] = '&';
    if (blen > 0)
        memcpy(all + qlen + 1, ctx->req->body, blen);
    rc = form_parse(all, qlen + 1 + blen, charset[0] ? charset : NULL, f, err,
                    sizeof(err));
    free(all);
    if (rc < 0) {
        akismet_invalid(ctx, 400, err);
        return -1;
    }
    return 0;
}

void
akismet_handle(struct route_ctx *ctx, const char *path)
{
    struct akismet_req ar;
    const char *why = NULL;
    int method = ctx->req->method == HTTP_METHOD_HEAD ? HTTP_METHOD_GET
                                                      : ctx->req->method;
    size_t i, n = sizeof(akismet_routes) / sizeof(akismet_routes[0]);

    memset(&ar, 0, sizeof(ar));
    for (i = 0; i < n && strcmp(path, akismet_routes[i].path); i++)
        ;
    if (i == n) {
        akismet_text(ctx, 404, "not found");
        return;
    }
    if (!(akismet_routes[i].methods & method)) {
        char allow[32], help[80];

        routes_allow(akismet_routes[i].methods, allow, sizeof(allow));
        snprintf(help, sizeof(help), "%s takes %s only", path, allow);
        akismet_header(ctx, "Allow", allow);
        akismet_header(ctx, "X-akismet-debug-help", help);
        akismet_text(ctx, 405, "method not allowed");
        return;
    }
    if (akismet_parse(ctx, &ar.form) < 0)
        return;
    ar.blog_of_key = akismet_key_blog(ctx, &ar.form, &why);
    switch (akismet_routes[i].ep) {
    case AKISMET_VERIFY_KEY:
        if (ar.blog_of_key == NULL)
            akismet_invalid(ctx, 200, why);
        else
            akismet_text(ctx, 200, "valid");
        break;
    case AKISMET_USAGE_LIMIT:
        if (ar.blog_of_key == NULL) {
            akismet_invalid(ctx, 200, why);
        } else {
            routes_reply(ctx, 200, "application/json",
                         "{\"limit\":\"none\",\"usage\":0,"
                         "\"percentage\":\"0.00\",\"throttled\":false}\n");
        }
        break;
    case AKISMET_COMMENT_CHECK:
    case AKISMET_SUBMIT_SPAM:
    case AKISMET_SUBMIT_HAM:
        if (ar.blog_of_key == NULL)
            akismet_invalid(ctx, 200, why);
        else if (akismet_required(ctx, &ar.form) < 0)
            break;
        else if (akismet_routes[i].ep == AKISMET_COMMENT_CHECK)
            akismet_comment_check(ctx, &ar.form);
        else
            akismet_submit(ctx, &ar,
                           akismet_routes[i].ep == AKISMET_SUBMIT_SPAM);
        break;
    }
    form_release(&ar.form);
}
