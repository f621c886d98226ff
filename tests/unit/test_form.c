/* Unit tests of daemon/form.c (form-encoded bodies) and of the pure parts
 * of daemon/akismet.c (key table, test triggers, language hint, kept
 * fields). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "modfilterd.h"
#include "testjson.h"

static void
parse_ok(const char *body, const char *hint, struct form *f)
{
    char err[120];

    if (form_parse(body, strlen(body), hint, f, err, sizeof(err)) != 0)
        fail_msg("%s: %s", body, err);
}

/* The value of name must be want (NULL: absent). */
static void
expect_field(const struct form *f, const char *name, const char *want)
{
    size_t len;
    const char *v = form_get(f, name, &len);

    if (want == NULL) {
        assert_null(v);
        assert_int_equal(len, 0);
        return;
    }
    if (v == NULL)
        fail_msg("field %s missing", name);
    assert_string_equal(v, want);
    assert_int_equal(len, strlen(want));
}

static void
test_decoding(void **state)
{
    struct form f;

    (void)state;
    parse_ok("a=hello+world&b=caf%C3%A9&c=%2B%26%3D%25&d=%41%62", NULL, &f);
    assert_int_equal(f.n, 4);
    expect_field(&f, "a", "hello world");
    expect_field(&f, "b", "caf\xc3\xa9");
    expect_field(&f, "c", "+&=%");
    expect_field(&f, "d", "Ab");
    expect_field(&f, "e", NULL);
    assert_string_equal(f.charset, "utf-8");
    assert_int_equal(f.replaced, 0);
    form_release(&f);
    form_release(&f); /* idempotent */

    /* names are decoded too; '=' in a value stays */
    parse_ok("comment%5Fauthor=A+B&x=1=2", NULL, &f);
    expect_field(&f, "comment_author", "A B");
    expect_field(&f, "x", "1=2");
    form_release(&f);
}

static void
test_bad_escapes(void **state)
{
    struct form f;

    (void)state;
    /* a '%' without two hex digits stays literal */
    parse_ok("a=100%&b=%zz&c=%4&d=%%41&e=%", NULL, &f);
    expect_field(&f, "a", "100%");
    expect_field(&f, "b", "%zz");
    expect_field(&f, "c", "%4");
    expect_field(&f, "d", "%A");
    expect_field(&f, "e", "%");
    form_release(&f);
}

static void
test_empty_and_odd(void **state)
{
    struct form f;

    (void)state;
    parse_ok("", NULL, &f);
    assert_int_equal(f.n, 0);
    expect_field(&f, "a", NULL);
    form_release(&f);

    parse_ok("&&a=&b&=v&&", NULL, &f);
    assert_int_equal(f.n, 3);
    expect_field(&f, "a", "");
    expect_field(&f, "b", "");
    expect_field(&f, "", "v");
    form_release(&f);

    /* a JSON body read as a form is one odd field, never an error */
    parse_ok("{\"text\":\"a\"}", NULL, &f);
    assert_int_equal(f.n, 1);
    expect_field(&f, "{\"text\":\"a\"}", "");
    form_release(&f);
}

static void
test_repeated_and_unknown(void **state)
{
    struct form f;

    (void)state;
    parse_ok("a=1&zz_unknown=keep&a=2&a=3", NULL, &f);
    assert_int_equal(f.n, 4);   /* repeats kept in order */
    expect_field(&f, "a", "3"); /* the last wins */
    expect_field(&f, "zz_unknown", "keep");
    assert_string_equal(f.fields[0].value, "1");
    form_release(&f);
}

static void
test_invalid_utf8_and_nul(void **state)
{
    struct form f;

    (void)state;
    /* a lone continuation byte, a cut sequence, an overlong '/', a
     * surrogate, NUL: each invalid byte becomes U+FFFD */
    parse_ok("a=x%80y&b=%E2%82&c=%C0%AF&d=%ED%A0%80&e=a%00b", NULL, &f);
    expect_field(&f, "a", "x\xef\xbf\xbdy");
    expect_field(&f, "b", "\xef\xbf\xbd\xef\xbf\xbd");
    expect_field(&f, "c", "\xef\xbf\xbd\xef\xbf\xbd");
    expect_field(&f, "d", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    expect_field(&f, "e",
                 "a\xef\xbf\xbd"
                 "b");
    assert_int_equal(f.replaced, 1 + 2 + 2 + 3 + 1);
    form_release(&f);

    /* valid 4-byte UTF-8 passes; raw (unescaped) bytes are read too */
    parse_ok("a=%F0%9F%98%80&b=\xc3\xb1", NULL, &f);
    expect_field(&f, "a", "\xf0\x9f\x98\x80");
    expect_field(&f, "b", "\xc3\xb1");
    assert_int_equal(f.replaced, 0);
    form_release(&f);
}

static void
test_latin1(void **state)
{
    struct form f;

    (void)state;
    /* blog_charset anywhere in the body decides, whatever the hint */
    parse_ok("comment_content=caf%E9+%BFs%ED%3F&blog_charset=ISO-8859-1",
             "utf-8", &f);
    assert_string_equal(f.charset, "iso-8859-1");
    expect_field(&f, "comment_content",
                 "caf\xc3\xa9 \xc2\xbf"
                 "s\xc3\xad?");
    assert_int_equal(f.replaced, 0);
    form_release(&f);

    /* the Content-Type charset as hint */
    parse_ok("n=%F1", "latin1", &f);
    expect_field(&f, "n", "\xc3\xb1");
    form_release(&f);

    /* windows-1252: the euro sign, a left quote; an unassigned byte */
    parse_ok("blog_charset=windows-1252&t=%80%93%81", NULL, &f);
    expect_field(&f, "t", "\xe2\x82\xac\xe2\x80\x9c\xef\xbf\xbd");
    assert_int_equal(f.replaced, 1);
    form_release(&f);

    /* an unknown charset reads as UTF-8 */
    parse_ok("blog_charset=KOI8-R&t=%C3%A9%E9", NULL, &f);
    assert_string_equal(f.charset, "utf-8");
    expect_field(&f, "t", "\xc3\xa9\xef\xbf\xbd");
    form_release(&f);
}

static void
test_limits(void **state)
{
    struct form f;
    char err[120];
    size_t n = 3 * (FORM_MAX_FIELDS + 1), i, big = 4u << 20;
    char *body = malloc(n + 1);

    (void)state;
    assert_non_null(body);
    for (i = 0; i < FORM_MAX_FIELDS + 1; i++)
        memcpy(body + 3 * i, "a=&", 3);
    body[n] = '\0';
    assert_int_equal(form_parse(body, n, NULL, &f, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "more than"));
    assert_null(f.fields);
    /* exactly the limit is fine (empty segments do not count) */
    assert_int_equal(form_parse(body, n - 3, NULL, &f, err, sizeof(err)), 0);
    assert_int_equal(f.n, FORM_MAX_FIELDS);
    form_release(&f);
    free(body);

    /* a huge value of invalid bytes: three bytes out for each in */
    body = malloc(big + 3);
    assert_non_null(body);
    memcpy(body, "t=", 2);
    memset(body + 2, 0xff, big);
    assert_int_equal(form_parse(body, big + 2, NULL, &f, err, sizeof(err)), 0);
    assert_int_equal(f.fields[0].value_len, 3 * big);
    assert_int_equal(f.replaced, big);
    form_release(&f);
    free(body);
}

/* ---- akismet.c ------------------------------------------------------- */

/* Akismet keys live in the auth table (daemon/auth.c) as AUTH_AKISMET. */
static void
test_keys(void **state)
{
    struct auth *k = auth_new();
    char err[200], path[] = "/tmp/mf-akismet-keys.XXXXXX";
    const char *file =
        "# comment\n\n  https://c.example:8443/blog:key3key3key3\r\n";
    int fd;

    (void)state;
    assert_non_null(k);
    assert_int_equal(auth_count(k, AUTH_AKISMET), 0);
    assert_null(auth_find(k, AUTH_AKISMET, "abcdef123456", 12));
    /* split at the last colon: the URL keeps its scheme and port */
    assert_int_equal(auth_add_list(k, AUTH_AKISMET,
                                   " https://a.example:abcdef123456 ,"
                                   "http://b.example:8080:xyz98765,",
                                   err, sizeof(err)),
                     0);
    assert_int_equal(
        auth_add_list(k, AUTH_SUBMIT, "app:submittoken1", err, sizeof(err)), 0);
    assert_int_equal(auth_count(k, AUTH_AKISMET), 2);
    assert_string_equal(auth_find(k, AUTH_AKISMET, "abcdef123456", 12),
                        "https://a.example");
    assert_string_equal(auth_find(k, AUTH_AKISMET, "xyz98765", 8),
                        "http://b.example:8080");
    assert_null(auth_find(k, AUTH_AKISMET, "abcdef12345", 11));
    assert_null(auth_find(k, AUTH_AKISMET, "abcdef1234567", 13));
    assert_null(auth_find(k, AUTH_AKISMET, "ABCDEF123456", 12));
    assert_null(auth_find(k, AUTH_AKISMET, "", 0));
    assert_null(auth_find(NULL, AUTH_AKISMET, "abcdef123456", 12));
    /* roles stay apart: a submit token is no key, a key no bearer token */
    assert_null(auth_find(k, AUTH_AKISMET, "submittoken1", 12));
    assert_int_equal(auth_check(k, "Bearer abcdef123456", NULL), AUTH_NONE);

    assert_int_equal(
        auth_add_list(k, AUTH_AKISMET, "nocolon", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "blog-url:key"));
    assert_int_equal(
        auth_add_list(k, AUTH_AKISMET, "x:short", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "the key of x must be 8-128"));
    assert_int_equal(
        auth_add_list(k, AUTH_AKISMET, "x:bad.key.123", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "A-Za-z0-9_-"));
    assert_int_equal(
        auth_add_list(k, AUTH_AKISMET, ":abcdefgh1", err, sizeof(err)), -1);
    assert_int_equal(
        auth_add_list(k, AUTH_AKISMET, "x:abcdef123456", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "twice"));
    assert_int_equal(
        auth_add_list(k, AUTH_AKISMET, "x:submittoken1", err, sizeof(err)), -1);
    assert_int_equal(auth_count(k, AUTH_AKISMET), 2);

    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, file, strlen(file)), (ssize_t)strlen(file));
    close(fd);
    assert_int_equal(auth_add_file(k, AUTH_AKISMET, path, err, sizeof(err)), 0);
    assert_string_equal(auth_find(k, AUTH_AKISMET, "key3key3key3", 12),
                        "https://c.example:8443/blog");
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "ok.example:key4key4\nbad\n", 24), 24);
    close(fd);
    assert_int_equal(auth_add_file(k, AUTH_AKISMET, path, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, ":2: "));
    unlink(path);
    assert_int_equal(
        auth_add_file(k, AUTH_AKISMET, "/nonexistent/keys", err, sizeof(err)),
        -1);
    auth_free(k);
}

static void
test_triggers(void **state)
{
    static const struct {
        const char *body;
        enum akismet_trigger want;
    } cases[] = {
        {"comment_author=viagra-test-123", AKISMET_TRIGGER_SPAM},
        {"comment_author=akismet-guaranteed-spam", AKISMET_TRIGGER_SPAM},
        {"comment_author_email=akismet-guaranteed-spam%40example.com",
         AKISMET_TRIGGER_SPAM},
        {"user_role=administrator", AKISMET_TRIGGER_HAM},
        {"user_role=Administrator&comment_author=viagra-test-123",
         AKISMET_TRIGGER_SPAM},
        {"comment_author=viagra-test-1234", AKISMET_TRIGGER_NONE},
        {"user_role=editor", AKISMET_TRIGGER_NONE},
        {"", AKISMET_TRIGGER_NONE},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct form f;

        parse_ok(cases[i].body, NULL, &f);
        if (akismet_trigger(&f) != cases[i].want)
            fail_msg("%s: trigger %d", cases[i].body, akismet_trigger(&f));
        form_release(&f);
    }
}

static void
test_fields(void **state)
{
    struct form f;
    json_t *o;

    (void)state;
    parse_ok("key=k1&api_key=k2&blog=b&x=1&x=2&odd%20name=v", NULL, &f);
    o = akismet_fields_json(&f);
    assert_non_null(o);
    assert_null(json_object_get(o, "key"));
    assert_null(json_object_get(o, "api_key"));
    assert_json_string(json_object_get(o, "blog"), "b");
    assert_json_string(json_object_get(o, "x"), "2");
    assert_json_string(json_object_get(o, "odd name"), "v");
    json_decref(o);
    form_release(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decoding),
        cmocka_unit_test(test_bad_escapes),
        cmocka_unit_test(test_empty_and_odd),
        cmocka_unit_test(test_repeated_and_unknown),
        cmocka_unit_test(test_invalid_utf8_and_nul),
        cmocka_unit_test(test_latin1),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_triggers),
        cmocka_unit_test(test_fields),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
