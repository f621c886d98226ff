/* Unit tests of daemon/jsonw.c: structure, string escaping, UTF-8 repair,
 * number formatting; every output must read back with jansson. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "jsonw.h"

/* w's text equals want and is valid JSON. */
static void
expect_text(struct jsonw *w, const char *want)
{
    json_error_t err;
    json_t *v;

    assert_false(jsonw_failed(w));
    assert_string_equal(w->buf, want);
    assert_int_equal(w->len, strlen(want));
    v = json_loadb(w->buf, w->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (v == NULL)
        fail_msg("%s: %s", w->buf, err.text);
    json_decref(v);
}

static void
test_structure(void **state)
{
    struct jsonw w;

    (void)state;
    jsonw_init(&w);
    jsonw_object_begin(&w);
    jsonw_key(&w, "a");
    jsonw_int(&w, 1);
    jsonw_key(&w, "b");
    jsonw_array_begin(&w);
    jsonw_int(&w, 1);
    jsonw_bool(&w, 0);
    jsonw_object_begin(&w);
    jsonw_key(&w, "c");
    jsonw_null(&w);
    jsonw_object_end(&w);
    jsonw_array_begin(&w);
    jsonw_array_end(&w);
    jsonw_array_end(&w);
    jsonw_key(&w, "d");
    jsonw_object_begin(&w);
    jsonw_object_end(&w);
    jsonw_key(&w, "e");
    jsonw_raw(&w, "{\"x\":[1]}", 9);
    jsonw_key(&w, "f");
    jsonw_string(&w, NULL);
    jsonw_key(&w, "g");
    jsonw_bool(&w, 1);
    jsonw_object_end(&w);
    expect_text(&w, "{\"a\":1,\"b\":[1,false,{\"c\":null},[]],\"d\":{},"
                    "\"e\":{\"x\":[1]},\"f\":null,\"g\":true}");

    /* Reset keeps the memory and starts a new text. */
    jsonw_reset(&w);
    assert_int_equal(w.len, 0);
    assert_string_equal(w.buf, "");
    jsonw_array_begin(&w);
    jsonw_string(&w, "x");
    jsonw_array_end(&w);
    expect_text(&w, "[\"x\"]");
    jsonw_release(&w);
    jsonw_release(NULL);
}

static void
expect_quoted(const char *in, size_t len, const char *want)
{
    struct jsonw w;

    jsonw_init(&w);
    jsonw_stringn(&w, in, len);
    expect_text(&w, want);
    jsonw_release(&w);
}

static void
test_escaping(void **state)
{
    (void)state;
    expect_quoted("", 0, "\"\"");
    expect_quoted("plain / text", 12, "\"plain / text\"");
    expect_quoted("q\"b\\", 4, "\"q\\\"b\\\\\"");
    expect_quoted("\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\"");
    expect_quoted("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\x7f\"");
    expect_quoted("a\0b", 3, "\"a\\u0000b\"");
    /* Keys are escaped the same way. */
    {
        struct jsonw w;

        jsonw_init(&w);
        jsonw_object_begin(&w);
        jsonw_key(&w, "k\"\n");
        jsonw_int(&w, -5);
        jsonw_object_end(&w);
        expect_text(&w, "{\"k\\\"\\n\":-5}");
        jsonw_release(&w);
    }
}

/* Each kind of byte at each place of a long string (the writer reads
 * eight bytes at a time). */
static void
test_long_strings(void **state)
{
    static const struct {
        const char *in, *out;
    } odd[] = {{"\"", "\\\""},
               {"\\", "\\\\"},
               {"\n", "\\n"},
               {"\x1f", "\\u001f"},
               {"\xc3\xa9", "\xc3\xa9"},
               {"\xff", "\xef\xbf\xbd"},
               {"\x7f", "\x7f"},
               {" ", " "},
               {"~", "~"}};
    size_t i, k;

    (void)state;
    for (k = 0; k < sizeof(odd) / sizeof(odd[0]); k++)
        for (i = 0; i <= 24; i++) {
            char in[64], want[80];
            size_t n = strlen(odd[k].in);

            memset(in, 'a', i);
            memcpy(in + i, odd[k].in, n);
            memset(in + i + n, 'z', 24 - i);
            in[24 + n] = '\0';
            snprintf(want, sizeof(want), "\"%.*s%s%.*s\"", (int)i, in,
                     odd[k].out, (int)(24 - i), in + i + n);
            expect_quoted(in, 24 + n, want);
        }
}

static void
test_utf8(void **state)
{
    (void)state;
    /* Valid UTF-8 of every length is copied. */
    expect_quoted("caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e", 14,
                  "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e\"");
    expect_quoted("\xed\x9f\xbf\xee\x80\x80\xf4\x8f\xbf\xbf", 10,
                  "\"\xed\x9f\xbf\xee\x80\x80\xf4\x8f\xbf\xbf\"");
    /* Each bad byte becomes U+FFFD. */
    expect_quoted("a\xff", 2, "\"a\xef\xbf\xbd\"");
    expect_quoted("\xc0\xaf", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\""); /* overlong */
    expect_quoted("\xe0\x80\xaf", 3,                              /* overlong */
                  "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    expect_quoted("\xed\xa0\x80", 3, /* surrogate */
                  "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    expect_quoted("\xf4\x90\x80\x80", 4, /* above U+10FFFF */
                  "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    expect_quoted("\xe2\x82", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\""); /* cut */
    expect_quoted("\xe2\x82x", 3, "\"\xef\xbf\xbd\xef\xbf\xbdx\"");
    expect_quoted("\x80", 1, "\"\xef\xbf\xbd\"");
}

static void
expect_number(double x, const char *want)
{
    struct jsonw w;

    jsonw_init(&w);
    jsonw_real(&w, x);
    expect_text(&w, want);
    jsonw_release(&w);
}

static void
test_numbers(void **state)
{
    struct jsonw w;
    uint64_t seed = 42;
    int i;

    (void)state;
    expect_number(0.97, "0.97");
    expect_number(0.9731234, "0.973123");
    expect_number(0.02, "0.02");
    expect_number(0.5, "0.5");
    expect_number(1, "1.0");
    expect_number(0, "0.0");
    expect_number(-1.5, "-1.5");
    expect_number(-0.000123456789, "-0.000123457");
    expect_number(0.0001, "0.0001");
    expect_number(123456.7, "123457.0");
    expect_number(999999.7, "1e6");
    expect_number(0.99999996, "1.0");
    expect_number(1e-7, "1e-7");
    expect_number(2.5e20, "2.5e20");
    expect_number(NAN, "null");
    expect_number(INFINITY, "null");
    /* As jansson writes it with JSON_REAL_PRECISION(6) (what replies were
     * before jsonw), over many magnitudes. */
    jsonw_init(&w);
    for (i = 0; i < 100000; i++) {
        json_t *r;
        char *want;
        double x;

        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        x = (double)(seed >> 11) / (double)(1ULL << 53);
        x *= pow(10, (int)(seed % 30) - 15);
        if (seed & 1)
            x = -x;
        r = json_real(x);
        want = json_dumps(r, JSON_ENCODE_ANY | JSON_REAL_PRECISION(6));
        json_decref(r);
        assert_non_null(want);
        jsonw_reset(&w);
        jsonw_real(&w, x);
        if (strcmp(w.buf, want) != 0)
            fail_msg("%.17g: %s, not %s", x, w.buf, want);
        free(want);
    }
    jsonw_release(&w);

    jsonw_init(&w);
    jsonw_array_begin(&w);
    jsonw_int(&w, 0);
    jsonw_int(&w, -1);
    jsonw_int(&w, 1700000000123LL);
    jsonw_int(&w, LLONG_MAX);
    jsonw_int(&w, LLONG_MIN);
    jsonw_array_end(&w);
    expect_text(&w, "[0,-1,1700000000123,9223372036854775807,"
                    "-9223372036854775808]");
    jsonw_release(&w);
    /* jsonw_digits (two at a time) as printf's "%llu". */
    for (i = 0; i < 200000; i++) {
        char buf[24], want[24], *p;
        unsigned long long v = (unsigned long long)i;

        if (i >= 100000) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            v = seed >> (seed % 64);
        }
        p = jsonw_digits(v, buf + sizeof(buf) - 1);
        buf[sizeof(buf) - 1] = '\0';
        snprintf(want, sizeof(want), "%llu", v);
        assert_string_equal(p, want);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_structure),    cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_long_strings), cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_numbers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
