/*
 * request.c - POST /v1/comments and /v1/score bodies.  The shape is strict:
 * duplicate keys, unknown fields and wrong types are 400s, so a client's
 * typo ("txt") fails loudly instead of scoring an empty comment.  jansson
 * already refuses invalid UTF-8 and \u0000, so every string here is valid
 * UTF-8 without NUL bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "modfilterd.h"

#define REQUEST_FIELD_MAX 2048 /* author fields, post */
#define REQUEST_LANG_MAX 23

static void request_fail(struct request_error *err, int status,
                         const char *code, const char *fmt, ...)
    MF_PRINTF(4, 5);

static void
request_fail(struct request_error *err, int status, const char *code,
             const char *fmt, ...)
{
    va_list ap;

    err->status = status;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

int
request_id_valid(const char *s, size_t len)
{
    size_t i;

    if (len < 1 || len > REQUEST_ID_MAX)
        return 0;
    for (i = 0; i < len; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
              c == '-'))
            return 0;
    }
    return 1;
}

static const char *
request_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "?";
}

/* A string field bounded by max bytes; *out borrowed from v. */
static int
request_string(const char *field, const json_t *v, size_t max, const char **out,
               size_t *out_len, struct request_error *err)
{
    if (!json_is_string(v)) {
        request_fail(err, 400, "invalid_request",
                     "\"%s\" must be a string, not %s", field,
                     request_type_name(v));
        return -1;
    }
    if (json_string_length(v) > max) {
        request_fail(err, 400, "invalid_request",
                     "\"%s\" is longer than %zu bytes", field, max);
        return -1;
    }
    *out = json_string_value(v);
    if (out_len != NULL)
        *out_len = json_string_length(v);
    return 0;
}

static int
request_author(const json_t *author, struct request_comment *out,
               struct request_error *err)
{
    const char *key;
    json_t *v;

    if (!json_is_object(author)) {
        request_fail(err, 400, "invalid_request",
                     "\"author\" must be an object, not %s",
                     request_type_name(author));
        return -1;
    }
    json_object_foreach((json_t *)author, key, v)
    {
        const char **slot;
        char name[40];

        if (!strcmp(key, "name"))
            slot = &out->author_name;
        else if (!strcmp(key, "email"))
            slot = &out->author_email;
        else if (!strcmp(key, "url"))
            slot = &out->author_url;
        else if (!strcmp(key, "ip"))
            slot = &out->author_ip;
        else {
            request_fail(err, 400, "invalid_request",
                         "unknown field \"author.%.60s\" (known: name, "
                         "email, url, ip)",
                         key);
            return -1;
        }
        snprintf(name, sizeof(name), "author.%s", key);
        if (request_string(name, v, REQUEST_FIELD_MAX, slot, NULL, err) < 0)
            return -1;
    }
    return 0;
}

int
request_parse_comment(const char *body, size_t len, struct request_comment *out,
                      struct request_error *err)
{
    json_error_t jerr;
    const char *key;
    json_t *v;
    size_t n;

    memset(out, 0, sizeof(*out));
    if (len == 0) {
        request_fail(err, 400, "invalid_json", "empty body");
        goto fail;
    }
    out->root =
        json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (out->root == NULL) {
        request_fail(err, 400, "invalid_json", "line %d, column %d: %s",
                     jerr.line, jerr.column, jerr.text);
        goto fail;
    }
    if (!json_is_object(out->root)) {
        request_fail(err, 400, "invalid_request",
                     "the body must be a JSON object, not %s",
                     request_type_name(out->root));
        goto fail;
    }
    json_object_foreach(out->root, key, v)
    {
        if (!strcmp(key, "id")) {
            if (request_string("id", v, REQUEST_ID_MAX + 1, &out->id, &n, err) <
                0)
                goto fail;
            if (!request_id_valid(out->id, n)) {
                request_fail(err, 400, "invalid_request",
                             "\"id\" must be 1-%d characters of "
                             "A-Za-z0-9._:-",
                             REQUEST_ID_MAX);
                goto fail;
            }
        } else if (!strcmp(key, "text")) {
            if (request_string("text", v, len, &out->text, &out->text_len,
                               err) < 0)
                goto fail;
        } else if (!strcmp(key, "author")) {
            if (request_author(v, out, err) < 0)
                goto fail;
        } else if (!strcmp(key, "post")) {
            if (request_string("post", v, REQUEST_FIELD_MAX, &out->post, NULL,
                               err) < 0)
                goto fail;
        } else if (!strcmp(key, "lang")) {
            if (request_string("lang", v, REQUEST_LANG_MAX, &out->lang, &n,
                               err) < 0)
                goto fail;
        } else {
            request_fail(err, 400, "invalid_request",
                         "unknown field \"%.60s\" (known: id, text, author, "
                         "post, lang)",
                         key);
            goto fail;
        }
    }
    if (out->text == NULL) {
        request_fail(err, 400, "invalid_request", "\"text\" is required");
        goto fail;
    }
    if (out->text_len == 0) {
        request_fail(err, 400, "invalid_request", "\"text\" must not be empty");
        goto fail;
    }
    return 0;
fail:
    request_comment_release(out);
    return -1;
}

void
request_comment_release(struct request_comment *rc)
{
    if (rc == NULL)
        return;
    json_decref(rc->root);
    memset(rc, 0, sizeof(*rc));
}

/* splitmix64: a per-thread generator seeded from getrandom(). */
static _Thread_local uint64_t request_rng;
static _Thread_local int request_rng_seeded;

static uint64_t
request_random(void)
{
    uint64_t z;

    if (!request_rng_seeded) {
        if (getrandom(&request_rng, sizeof(request_rng), 0) !=
            (ssize_t)sizeof(request_rng))
            request_rng = (uint64_t)util_now_ms() ^ (uint64_t)&z;
        request_rng_seeded = 1;
    }
    z = (request_rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void
request_make_id(char *buf, size_t len)
{
    /* Sorts by time; 64 random bits make two daemons' ids distinct. */
    snprintf(buf, len, "%011llx-%016llx", (unsigned long long)util_now_ms(),
             (unsigned long long)request_random());
}
