/*
 * request.c - POST /v1/comments and /v1/score bodies.  The shape is strict:
 * duplicate keys, unknown fields and wrong types are 400s, so a client's
 * typo ("txt") fails loudly instead of scoring an empty comment.  jansson
 * already refuses invalid UTF-8 and \u0000, so every string here is valid
 * UTF-8 without NUL bytes; its error messages reach clients through
 * request_json_error.
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

const char *
request_json_reason(const json_error_t *e)
{
    /* jansson's own words name its flag JSON_ALLOW_NUL. */
    if (json_error_code(e) == json_error_null_character)
        return "\\u0000 (a NUL character) is not allowed in strings";
    return e->text;
}

const char *
request_json_error(const json_error_t *e, char *buf, size_t len)
{
    snprintf(buf, len, "line %d, column %d: %s", e->line, e->column,
             request_json_reason(e));
    return buf;
}

int
request_parse_jansson(const char *body, size_t len, struct request_comment *out,
                      struct request_error *err)
{
    json_error_t jerr;
    const char *key;
    json_t *v;
    size_t n;
    char why[sizeof(err->msg)];

    memset(out, 0, sizeof(*out));
    if (len == 0) {
        request_fail(err, 400, "invalid_json", "empty body");
        goto fail;
    }
    out->root =
        json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (out->root == NULL) {
        request_fail(err, 400, "invalid_json", "%s",
                     request_json_error(&jerr, why, sizeof(why)));
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

/* ---- the common shape, without jansson --------------------------------
 *
 * Almost every body is an object of strings, maybe with an "author" object
 * of strings.  request_parse_fast reads exactly that into one arena and
 * gives up on anything else (another type, an unknown or repeated key, a
 * control character, invalid UTF-8, \u0000, a lone surrogate, a field the
 * checks above would refuse): such a body goes through jansson, whose
 * answer, or error message, it always was.  A body it accepts, jansson
 * accepts with the same strings (fuzz/fuzz_request.c checks it). */

struct request_scan {
    const unsigned char *p, *end;
    char *o; /* the next free byte of the arena */
};

static void
request_ws(struct request_scan *s)
{
    while (s->p < s->end &&
           (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* 1 and past c when c comes next (after white space). */
static int
request_next(struct request_scan *s, char c)
{
    request_ws(s);
    if (s->p < s->end && *s->p == (unsigned char)c) {
        s->p++;
        return 1;
    }
    return 0;
}

static int
request_hex4(struct request_scan *s, unsigned *out)
{
    unsigned v = 0;
    int i;

    if (s->end - s->p < 4)
        return -1;
    for (i = 0; i < 4; i++) {
        unsigned char c = s->p[i];

        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            v |= (c | 0x20) - 'a' + 10;
        else
            return -1;
    }
    s->p += 4;
    *out = v;
    return 0;
}

/* A \uXXXX escape (after the 'u'), with its low surrogate, as UTF-8. */
static int
request_unicode(struct request_scan *s)
{
    unsigned cp, lo;

    if (request_hex4(s, &cp) < 0 || cp == 0 || (cp >= 0xdc00 && cp <= 0xdfff))
        return -1;
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (s->end - s->p < 2 || s->p[0] != '\\' || s->p[1] != 'u')
            return -1;
        s->p += 2;
        if (request_hex4(s, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
            return -1;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    if (cp < 0x80) {
        *s->o++ = (char)cp;
    } else if (cp < 0x800) {
        *s->o++ = (char)(0xc0 | cp >> 6);
        *s->o++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *s->o++ = (char)(0xe0 | cp >> 12);
        *s->o++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *s->o++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *s->o++ = (char)(0xf0 | cp >> 18);
        *s->o++ = (char)(0x80 | (cp >> 12 & 0x3f));
        *s->o++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *s->o++ = (char)(0x80 | (cp & 0x3f));
    }
    return 0;
}

/* A string (after white space) into the arena, NUL-terminated.  Never
 * longer than its JSON text, quotes included: the arena needs len bytes. */
static int
request_scan_string(struct request_scan *s, const char **out, size_t *len)
{
    static const char esc[128] = {
        ['"'] = '"',  ['\\'] = '\\', ['/'] = '/',  ['b'] = '\b',
        ['f'] = '\f', ['n'] = '\n',  ['r'] = '\r', ['t'] = '\t'};
    char *start = s->o;

    if (!request_next(s, '"'))
        return -1;
    while (s->p < s->end && *s->p != '"') {
        unsigned char c;
        size_t k;

        jsonw_copy_plain(&s->o, &s->p, s->end); /* most of a text */
        if (s->p == s->end || *s->p == '"')
            break;
        c = *s->p;
        if (c >= 0x20 && c < 0x80 && c != '\\') {
            *s->o++ = (char)c;
            s->p++;
        } else if (c >= 0x80) {
            k = util_utf8_len(s->p, (size_t)(s->end - s->p));
            if (k == 0)
                return -1;
            memcpy(s->o, s->p, k);
            s->o += k;
            s->p += k;
        } else if (c == '\\' && s->end - s->p >= 2 && s->p[1] == 'u') {
            s->p += 2;
            if (request_unicode(s) < 0)
                return -1;
        } else if (c == '\\' && s->end - s->p >= 2 && s->p[1] < 128 &&
                   esc[s->p[1]]) {
            *s->o++ = esc[s->p[1]];
            s->p += 2;
        } else {
            return -1; /* a control character, a bad escape */
        }
    }
    if (s->p == s->end)
        return -1;
    s->p++;
    *s->o++ = '\0';
    *out = start;
    *len = (size_t)(s->o - start - 1);
    return 0;
}

/* The string fields of a comment: where each goes and its bound. */
struct request_slot {
    const char *name;
    const char **value;
    size_t *len;
    size_t max;
};

/* The members of an object (after its '{') whose keys are in slots, each
 * once, each a string within its bound; at the top, "author" and the four
 * slots after the first n. */
static int
request_scan_members(struct request_scan *s, struct request_slot *slots,
                     size_t n, int top)
{
    int author = 0;

    if (request_next(s, '}'))
        return 0;
    do {
        const char *key, *v;
        size_t klen, vlen, i;

        if (request_scan_string(s, &key, &klen) < 0 || !request_next(s, ':'))
            return -1;
        if (top && !strcmp(key, "author")) {
            if (author++ || !request_next(s, '{') ||
                request_scan_members(s, slots + n, 4, 0) < 0)
                return -1;
            continue;
        }
        for (i = 0; i < n && strcmp(key, slots[i].name); i++)
            ;
        if (i == n || *slots[i].value != NULL ||
            request_scan_string(s, &v, &vlen) < 0 || vlen > slots[i].max)
            return -1;
        *slots[i].value = v;
        if (slots[i].len != NULL)
            *slots[i].len = vlen;
    } while (request_next(s, ','));
    return request_next(s, '}') ? 0 : -1;
}

int
request_parse_fast(const char *body, size_t len, struct request_comment *out)
{
    size_t id_len = 0;
    struct request_slot slots[] = {
        {"id", &out->id, &id_len, REQUEST_ID_MAX},
        {"text", &out->text, &out->text_len, len},
        {"post", &out->post, NULL, REQUEST_FIELD_MAX},
        {"lang", &out->lang, NULL, REQUEST_LANG_MAX},
        /* "author": */
        {"name", &out->author_name, NULL, REQUEST_FIELD_MAX},
        {"email", &out->author_email, NULL, REQUEST_FIELD_MAX},
        {"url", &out->author_url, NULL, REQUEST_FIELD_MAX},
        {"ip", &out->author_ip, NULL, REQUEST_FIELD_MAX},
    };
    struct request_scan s;

    memset(out, 0, sizeof(*out));
    out->arena = malloc(len + 1);
    if (out->arena == NULL)
        return -1;
    s.p = (const unsigned char *)body;
    s.end = s.p + len;
    s.o = out->arena;
    if (!request_next(&s, '{') || request_scan_members(&s, slots, 4, 1) < 0)
        goto fail;
    request_ws(&s);
    if (s.p != s.end || out->text == NULL || out->text_len == 0 ||
        (out->id != NULL && !request_id_valid(out->id, id_len)))
        goto fail;
    return 0;
fail:
    request_comment_release(out);
    return -1;
}

int
request_parse_comment(const char *body, size_t len, struct request_comment *out,
                      struct request_error *err)
{
    if (request_parse_fast(body, len, out) == 0)
        return 0;
    return request_parse_jansson(body, len, out, err);
}

void
request_comment_release(struct request_comment *rc)
{
    if (rc == NULL)
        return;
    json_decref(rc->root);
    free(rc->arena);
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
