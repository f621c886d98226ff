/* libFuzzer target: the HTTP request parser (daemon/httpparse.c) driven as
 * httpd.c drives it: pipelined requests, Content-Length and chunked
 * bodies decoded in place, with small limits.  The input after its first
 * byte is parsed twice, whole and fed in pieces of 1 + data[0] % 16
 * bytes; both must give the same requests, and every offset must stay
 * inside what was received. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpparse.h"

#define FUZZ_MAX_HEAD 1024
#define FUZZ_MAX_BODY 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct transcript {
    unsigned char *buf;
    size_t len, cap;
};

static void
tr_add(struct transcript *t, const void *p, size_t n)
{
    if (t->len + n > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 1024;

        while (cap < t->len + n)
            cap *= 2;
        t->buf = realloc(t->buf, cap);
        if (t->buf == NULL)
            abort();
        t->cap = cap;
    }
    memcpy(t->buf + t->len, p, n);
    t->len += n;
}

static void
check_request(const char *head, size_t len, const struct httpparse_request *r)
{
    char out[8], q[FUZZ_MAX_HEAD + 1], *dec;
    const char *mark;
    unsigned i;

    if (r->head_len > len || r->head_len > FUZZ_MAX_HEAD ||
        r->target + r->target_len > r->head_len || r->minor > 1)
        __builtin_trap();
    for (i = 0; i < r->n_fields; i++)
        if (r->fields[i].value + r->fields[i].value_len > r->head_len ||
            r->fields[i].name + r->fields[i].name_len > r->head_len)
            __builtin_trap();
    /* the query, as moderation.c reads it */
    mark = memchr(head + r->target, '?', r->target_len);
    if (mark != NULL) {
        size_t qlen = r->target_len - (size_t)(mark + 1 - (head + r->target));

        memcpy(q, mark + 1, qlen);
        q[qlen] = '\0';
        if (httpparse_query_get(q, "limit", out, sizeof(out)) < -2)
            __builtin_trap();
        dec = malloc(qlen + 1);
        if (dec == NULL)
            abort();
        if (httpparse_decode(q, qlen, dec, 1) > qlen)
            __builtin_trap();
        free(dec);
    }
}

/* Parse in (n bytes), received step bytes at a time, into t. */
static void
run(const char *in, size_t n, size_t step, struct transcript *t)
{
    char *buf = malloc(n ? n : 1);
    size_t len = 0, fed = 0, pos = 0;
    struct httpparse_request *r = malloc(sizeof(*r));
    struct httpparse_chunked ch;
    enum { HEAD, BODY, CHUNKED } state = HEAD;
    long hl = 0;
    int st;

    if (buf == NULL || r == NULL)
        abort();
    for (;;) {
        int more = 0;

        if (state == HEAD) {
            hl = httpparse_head(buf + pos, len - pos, FUZZ_MAX_HEAD,
                                FUZZ_MAX_BODY, r);
            if (hl < 0) {
                tr_add(t, "E", 1);
                tr_add(t, &hl, sizeof(hl));
                break;
            }
            if (hl == 0) {
                more = 1;
            } else {
                check_request(buf + pos, len - pos, r);
                tr_add(t, "R", 1);
                tr_add(t, &r->method, sizeof(r->method));
                tr_add(t, buf + pos + r->target, r->target_len);
                if (r->too_large) {
                    tr_add(t, "T", 1);
                    break;
                }
                if (r->chunked) {
                    httpparse_chunked_init(&ch, (size_t)hl);
                    state = CHUNKED;
                } else {
                    state = BODY;
                }
                continue;
            }
        } else if (state == BODY) {
            if (len - pos >= (size_t)hl + r->content_length) {
                tr_add(t, buf + pos + hl, r->content_length);
                pos += (size_t)hl + r->content_length;
                state = HEAD;
                continue;
            }
            more = 1;
        } else {
            size_t l = len - pos;

            st = httpparse_chunked(buf + pos, l, FUZZ_MAX_BODY, FUZZ_MAX_HEAD,
                                   &ch);
            if (ch.out > ch.in || ch.in > l ||
                ch.out - ch.start > FUZZ_MAX_BODY)
                __builtin_trap();
            if (st < 0) {
                long e = st;

                tr_add(t, "E", 1);
                tr_add(t, &e, sizeof(e));
                break;
            }
            if (st == 1) {
                tr_add(t, buf + pos + ch.start, ch.out - ch.start);
                pos += ch.in;
                state = HEAD;
                continue;
            }
            httpparse_chunked_squeeze(buf + pos, &l, &ch);
            len = pos + l;
            more = 1;
        }
        if (more) {
            size_t k = n - fed < step ? n - fed : step;

            if (k == 0)
                break;
            memcpy(buf + len, in + fed, k);
            len += k;
            fed += k;
        }
    }
    free(r);
    free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct transcript whole = {NULL, 0, 0}, pieces = {NULL, 0, 0};

    if (size == 0)
        return 0;
    run((const char *)data + 1, size - 1, size, &whole);
    run((const char *)data + 1, size - 1, 1 + data[0] % 16, &pieces);
    if (whole.len != pieces.len ||
        (whole.len && memcmp(whole.buf, pieces.buf, whole.len)))
        __builtin_trap();
    free(whole.buf);
    free(pieces.buf);
    return 0;
}
