/* Unit tests of daemon/httpparse.c: request heads (good, split at every
 * byte, pipelined, versions and Connection (HTTP/1.0 with chunked closes),
 * repeated fields, limits,
 * malformed), chunked bodies (split at every byte, extensions, trailers,
 * bad sizes) and query strings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpparse.h"

#define MAX_HEAD 8192
#define MAX_BODY 65536

static struct httpparse_request req;

static long
head(const char *s)
{
    return httpparse_head(s, strlen(s), MAX_HEAD, MAX_BODY, &req);
}

/* The value of field name in s (parsed into req), NUL-terminated. */
static const char *
field(const char *s, const char *name)
{
    static char out[256];
    size_t len;
    const char *v = httpparse_field(&req, s, name, &len);

    if (v == NULL)
        return NULL;
    snprintf(out, sizeof(out), "%.*s", (int)len, v);
    return out;
}

static void
test_good(void **state)
{
    const char *s = "GET /v1/queue?limit=5 HTTP/1.1\r\nHost: x\r\n"
                    "Content-Type:  application/json \t\r\nX-Empty:\r\n\r\n";

    (void)state;
    assert_int_equal(head(s), (long)strlen(s));
    assert_int_equal(req.method, HTTP_METHOD_GET);
    assert_int_equal(req.minor, 1);
    assert_int_equal(req.target_len, strlen("/v1/queue?limit=5"));
    assert_memory_equal(s + req.target, "/v1/queue?limit=5", req.target_len);
    assert_true(req.keep_alive);
    assert_false(req.chunked);
    assert_false(req.has_length);
    assert_int_equal(req.n_fields, 3);
    assert_string_equal(field(s, "content-type"), "application/json");
    assert_string_equal(field(s, "HOST"), "x");
    assert_string_equal(field(s, "X-Empty"), "");
    assert_null(field(s, "Authorization"));
    /* bare LF line ends, empty lines before the request line */
    s = "\r\n\nPOST /v1/score HTTP/1.0\nContent-Length: 2\n\nhi";
    assert_int_equal(head(s), (long)strlen(s) - 2);
    assert_int_equal(req.method, HTTP_METHOD_POST);
    assert_int_equal(req.content_length, 2);
    assert_false(req.keep_alive);
}

static void
test_methods(void **state)
{
    static const struct {
        const char *m;
        long want;
    } cases[] = {
        {"GET", 0},        {"POST", 0},    {"HEAD", 0},   {"PUT", 0},
        {"DELETE", 0},     {"OPTIONS", 0}, {"PATCH", 0},  {"TRACE", -501},
        {"CONNECT", -501}, {"FOO", -501},  {"get", -501}, {"G(T", -400},
    };
    char buf[128];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long r;

        snprintf(buf, sizeof(buf), "%s / HTTP/1.1\r\n\r\n", cases[i].m);
        r = head(buf);
        if (cases[i].want == 0)
            assert_int_equal(r, (long)strlen(buf));
        else
            assert_int_equal(r, cases[i].want);
    }
}

/* Every prefix of a request is incomplete; the whole is complete. */
static void
test_split(void **state)
{
    const char *s = "POST /v1/comments HTTP/1.1\r\nHost: t\r\nContent-Type: "
                    "application/json\r\nContent-Length: 13\r\n\r\n";
    size_t i, n = strlen(s);

    (void)state;
    for (i = 0; i < n; i++)
        assert_int_equal(httpparse_head(s, i, MAX_HEAD, MAX_BODY, &req), 0);
    assert_int_equal(httpparse_head(s, n, MAX_HEAD, MAX_BODY, &req), (long)n);
    assert_int_equal(req.content_length, 13);
}

static void
test_pipelined(void **state)
{
    const char *s = "POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                    "GET /b HTTP/1.1\r\nConnection: close\r\n\r\n"
                    "GET /c HTTP/1.1\r\n";
    long n;
    size_t off;

    (void)state;
    n = head(s);
    assert_true(n > 0);
    off = (size_t)n + req.content_length;
    assert_memory_equal(s + n, "abc", 3);
    n = httpparse_head(s + off, strlen(s + off), MAX_HEAD, MAX_BODY, &req);
    assert_true(n > 0);
    assert_memory_equal(s + off + req.target, "/b", 2);
    assert_false(req.keep_alive);
    off += (size_t)n;
    assert_int_equal(
        httpparse_head(s + off, strlen(s + off), MAX_HEAD, MAX_BODY, &req), 0);
}

static void
test_connection(void **state)
{
    (void)state;
    assert_true(head("GET / HTTP/1.1\r\n\r\n") > 0);
    assert_true(req.keep_alive);
    assert_true(head("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n") > 0);
    assert_false(req.keep_alive);
    assert_true(head("GET / HTTP/1.0\r\n\r\n") > 0);
    assert_false(req.keep_alive);
    assert_true(head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n") > 0);
    assert_true(req.keep_alive);
    assert_true(
        head("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n") > 0);
    assert_false(req.keep_alive);
    assert_true(head("GET / HTTP/1.1\r\nConnection: upgrade\r\n"
                     "Connection: close\r\n\r\n") > 0);
    assert_false(req.keep_alive);
    /* HTTP/1.0 with Transfer-Encoding: faulty framing (RFC 9112 6.1), the
     * connection closes after the reply even with keep-alive */
    assert_true(head("POST / HTTP/1.0\r\nConnection: keep-alive\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n") > 0);
    assert_true(req.chunked);
    assert_false(req.keep_alive);
    assert_true(head("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n") >
                0);
    assert_true(req.keep_alive);
}

static void
test_repeated(void **state)
{
    const char *s = "GET / HTTP/1.1\r\nX-A: one\r\nx-a: two\r\n\r\n";

    (void)state;
    assert_true(head(s) > 0);
    assert_int_equal(req.n_fields, 2);
    assert_string_equal(field(s, "X-A"), "one"); /* the first, as evhttp */
}

static void
test_expect(void **state)
{
    (void)state;
    assert_true(head("POST / HTTP/1.1\r\nExpect: 100-Continue\r\n"
                     "Content-Length: 2048\r\n\r\n") > 0);
    assert_true(req.expect_continue);
    assert_true(head("POST / HTTP/1.0\r\nExpect: 100-continue\r\n"
                     "Content-Length: 2048\r\n\r\n") > 0);
    assert_false(req.expect_continue);
    assert_true(head("POST / HTTP/1.1\r\nExpect: something\r\n\r\n") > 0);
    assert_false(req.expect_continue);
}

static void
test_limits(void **state)
{
    char *big = malloc(MAX_HEAD * 2);
    size_t n;
    int i;

    (void)state;
    assert_non_null(big);
    /* incomplete and already over max_headers */
    n = (size_t)snprintf(big, MAX_HEAD * 2, "GET / HTTP/1.1\r\nX-Big: ");
    memset(big + n, 'y', MAX_HEAD);
    assert_int_equal(
        httpparse_head(big, n + MAX_HEAD, MAX_HEAD, MAX_BODY, &req), -431);
    /* complete but over it */
    memcpy(big + n + MAX_HEAD - 10, "\r\n\r\n", 4);
    assert_int_equal(
        httpparse_head(big, n + MAX_HEAD - 6, MAX_HEAD, MAX_BODY, &req), -431);
    /* just under it */
    assert_true(httpparse_head(big, n + MAX_HEAD - 6, MAX_HEAD + 100, MAX_BODY,
                               &req) > 0);
    /* too many fields */
    n = (size_t)snprintf(big, MAX_HEAD * 2, "GET / HTTP/1.1\r\n");
    for (i = 0; i <= HTTPPARSE_MAX_FIELDS; i++)
        n += (size_t)snprintf(big + n, MAX_HEAD * 2 - n, "X-%d: v\r\n", i);
    n += (size_t)snprintf(big + n, MAX_HEAD * 2 - n, "\r\n");
    assert_int_equal(httpparse_head(big, n, MAX_HEAD, MAX_BODY, &req), -431);
    free(big);
    /* a body over max_body is the caller's to answer */
    assert_true(head("POST / HTTP/1.1\r\nContent-Length: 65537\r\n\r\n") > 0);
    assert_true(req.too_large);
    assert_true(head("POST / HTTP/1.1\r\nContent-Length: 65536\r\n\r\n") > 0);
    assert_false(req.too_large);
    assert_true(head("POST / HTTP/1.1\r\nContent-Length: "
                     "99999999999999999999999999\r\n\r\n") > 0);
    assert_true(req.too_large);
}

static void
test_malformed(void **state)
{
    static const struct {
        const char *s;
        long want;
    } cases[] = {
        {"GET / HTTP/1.1\r\nX-A: a\r\n  folded\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nX-A : a\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\n: a\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nno colon\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nX-A: a\x01\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nContent-Length: 5x\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
         -400},
        {"POST / HTTP/1.1\r\nContent-Length: 3\r\n"
         "Transfer-Encoding: chunked\r\n\r\n",
         -400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", -501},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
         -400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n", -400},
        {"GET / HTTP/9.9\r\n\r\n", -505},
        {"GET / HTTP/1.2\r\n\r\n", -505},
        {"GET / HTTP/2.0\r\n\r\n", -505},
        {"GET / HTTP/1.1x\r\n\r\n", -400},
        {"GET / http/1.1\r\n\r\n", -400},
        {"GET /\r\n\r\n", -400},
        {"GET  / HTTP/1.1\r\n\r\n", -400},
        {"GET / HTTP/1.1 \r\n\r\n", -400},
        {" GET / HTTP/1.1\r\n\r\n", -400},
        {"\x00\xff\xfe garbage\r\n\r\n", -400},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* The one case starting with a NUL is 15 bytes long. */
        size_t n = cases[i].s[0] ? strlen(cases[i].s) : 15;
        long r = httpparse_head(cases[i].s, n, MAX_HEAD, MAX_BODY, &req);

        if (r != cases[i].want)
            fail_msg("case %zu: %ld, want %ld", i, r, cases[i].want);
    }
    /* equal repeated Content-Lengths are one */
    assert_true(head("POST / HTTP/1.1\r\nContent-Length: 2\r\n"
                     "Content-Length: 2\r\n\r\n") > 0);
    assert_int_equal(req.content_length, 2);
    assert_true(head("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n") >
                0);
    assert_true(req.chunked);
}

/* ---- chunked ---------------------------------------------------------- */

static const char chunked_body[] = "5\r\nhello\r\n6;ext=1;q=\"x\"\r\n world\r\n"
                                   "A \r\n, chunked!\r\n0\r\nX-Trailer: 1\r\n"
                                   "Other: 2\r\n\r\nNEXT";

static void
test_chunked(void **state)
{
    char buf[sizeof(chunked_body)];
    struct httpparse_chunked c;
    size_t len = sizeof(chunked_body) - 1;

    (void)state;
    memcpy(buf, chunked_body, sizeof(chunked_body));
    httpparse_chunked_init(&c, 0);
    assert_int_equal(httpparse_chunked(buf, len, MAX_BODY, MAX_HEAD, &c), 1);
    assert_int_equal(c.out - c.start, 21);
    assert_memory_equal(buf, "hello world, chunked!", 21);
    assert_memory_equal(buf + c.in, "NEXT", 4); /* the next request */
    /* the same body over max_body */
    memcpy(buf, chunked_body, sizeof(chunked_body));
    httpparse_chunked_init(&c, 0);
    assert_int_equal(httpparse_chunked(buf, len, 20, MAX_HEAD, &c), -413);
    /* trailers over their limit */
    memcpy(buf, chunked_body, sizeof(chunked_body));
    httpparse_chunked_init(&c, 0);
    assert_int_equal(httpparse_chunked(buf, len, MAX_BODY, 10, &c), -431);
}

/* Fed one byte at a time, squeezing after each call as httpd does. */
static void
test_chunked_split(void **state)
{
    char buf[sizeof(chunked_body)];
    struct httpparse_chunked c;
    size_t n = sizeof(chunked_body) - 1 - 4, fed = 0, len = 0;
    int r = 0;

    (void)state;
    httpparse_chunked_init(&c, 0);
    while (fed < n) {
        buf[len++] = chunked_body[fed++];
        r = httpparse_chunked(buf, len, MAX_BODY, MAX_HEAD, &c);
        assert_true(r >= 0);
        if (r == 1)
            break;
        httpparse_chunked_squeeze(buf, &len, &c);
    }
    assert_int_equal(r, 1);
    assert_int_equal(fed, n);
    assert_int_equal(c.out, 21);
    assert_memory_equal(buf, "hello world, chunked!", 21);
}

static int
chunked_of(const char *s, size_t max_body)
{
    char buf[4096];
    struct httpparse_chunked c;
    size_t len = strlen(s);

    memcpy(buf, s, len + 1);
    httpparse_chunked_init(&c, 0);
    return httpparse_chunked(buf, len, max_body, MAX_HEAD, &c);
}

static void
test_chunked_bad(void **state)
{
    char line[HTTPPARSE_MAX_LINE + 100];

    (void)state;
    assert_int_equal(chunked_of("zz\r\n", MAX_BODY), -400);
    assert_int_equal(chunked_of("\r\n", MAX_BODY), -400);
    assert_int_equal(chunked_of("-1\r\n", MAX_BODY), -400);
    assert_int_equal(chunked_of("0x5\r\nhello\r\n", MAX_BODY), -400);
    assert_int_equal(chunked_of("5 x\r\nhello\r\n", MAX_BODY), -400);
    assert_int_equal(chunked_of("ffffffffffffffffffffff\r\n", MAX_BODY), -413);
    assert_int_equal(chunked_of("10001\r\n", MAX_BODY), -413);
    assert_int_equal(chunked_of("5\r\nhelloX\r\n", MAX_BODY), -400);
    assert_int_equal(chunked_of("5\r\nhello\rX", MAX_BODY), -400);
    assert_int_equal(chunked_of("5;a\x01\r\nhello\r\n", MAX_BODY), -400);
    assert_int_equal(chunked_of("5\r\nhel", MAX_BODY), 0);
    assert_int_equal(chunked_of("5\r\nhello\r\n0\r\n", MAX_BODY), 0);
    assert_int_equal(chunked_of("5\nhello\n0\n\n", MAX_BODY), 1);
    memset(line, '1', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
    assert_int_equal(chunked_of(line, (size_t)-1), -400);
}

/* ---- query strings ---------------------------------------------------- */

static void
test_query(void **state)
{
    char out[16];

    (void)state;
    assert_int_equal(
        httpparse_query_get("limit=5&cursor=a%20b+c", "cursor", out, 16), 5);
    assert_string_equal(out, "a b c");
    assert_int_equal(httpparse_query_get("limit=5&cursor=x", "limit", out, 16),
                     1);
    assert_string_equal(out, "5");
    assert_int_equal(httpparse_query_get("limit=5", "cursor", out, 16), -1);
    assert_int_equal(httpparse_query_get("", "cursor", out, 16), -1);
    assert_int_equal(httpparse_query_get("a=1&", "a", out, 16), 1);
    assert_int_equal(httpparse_query_get("a=1&&b=2", "a", out, 16), -2);
    assert_int_equal(httpparse_query_get("=x", "a", out, 16), -2);
    assert_int_equal(httpparse_query_get("a", "a", out, 16), -2);
    assert_int_equal(httpparse_query_get("a=1&b", "a", out, 16), -2);
    assert_int_equal(httpparse_query_get("a=1&a=2", "a", out, 16), 1);
    assert_string_equal(out, "1"); /* the first, as evhttp */
    assert_int_equal(httpparse_query_get("a=%zz%4", "a", out, 16), 5);
    assert_string_equal(out, "%zz%4");
    assert_int_equal(httpparse_query_get("a%20=1", "a ", out, 16), -1);
    assert_int_equal(
        httpparse_query_get("a=0123456789abcdefghij", "a", out, 16), 20);
    assert_string_equal(out, "0123456789abcde"); /* truncated */
    assert_int_equal(httpparse_decode("a+b%41%", 7, out, 1), 5);
    assert_memory_equal(out, "a bA%", 5);
    assert_int_equal(httpparse_decode("a+b", 3, out, 0), 3);
    assert_memory_equal(out, "a+b", 3);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_connection),
        cmocka_unit_test(test_repeated),
        cmocka_unit_test(test_expect),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_chunked_split),
        cmocka_unit_test(test_chunked_bad),
        cmocka_unit_test(test_query),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
