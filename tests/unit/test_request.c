/* Unit tests of daemon/request.c (request bodies, ids) and daemon/result.c
 * (verdict, reply, stored record). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modfilterd.h"
#include "testjson.h"

static int
parse(const char *body, struct request_comment *rc, struct request_error *e)
{
    return request_parse_comment(body, strlen(body), rc, e);
}

static void
expect_reject(const char *body, int status, const char *code,
              const char *msg_part)
{
    struct request_comment rc;
    struct request_error e;

    memset(&e, 0, sizeof(e));
    if (parse(body, &rc, &e) != -1)
        fail_msg("accepted: %s", body);
    assert_int_equal(e.status, status);
    assert_string_equal(e.code, code);
    if (strstr(e.msg, msg_part) == NULL)
        fail_msg("body %s: message \"%s\" lacks \"%s\"", body, e.msg, msg_part);
    assert_null(rc.root);
}

static void
test_full(void **state)
{
    struct request_comment rc;
    struct request_error e;

    (void)state;
    assert_int_equal(
        parse("{\"id\":\"a.B_9:-\",\"text\":\"caf\\u00e9 ok\",\"author\":"
              "{\"name\":\"N\",\"email\":\"e@x\",\"url\":\"http://u\","
              "\"ip\":\"::1\"},\"post\":\"p\",\"lang\":\"es\"}",
              &rc, &e),
        0);
    assert_string_equal(rc.id, "a.B_9:-");
    assert_string_equal(rc.text, "caf\xc3\xa9 ok");
    assert_int_equal(rc.text_len, 8);
    assert_string_equal(rc.author_name, "N");
    assert_string_equal(rc.author_email, "e@x");
    assert_string_equal(rc.author_url, "http://u");
    assert_string_equal(rc.author_ip, "::1");
    assert_string_equal(rc.post, "p");
    assert_string_equal(rc.lang, "es");
    request_comment_release(&rc);
    request_comment_release(&rc); /* idempotent */
}

static void
test_minimal(void **state)
{
    struct request_comment rc;
    struct request_error e;

    (void)state;
    assert_int_equal(parse(" {\"text\":\"hi\"} \n", &rc, &e), 0);
    assert_null(rc.id);
    assert_null(rc.author_name);
    assert_null(rc.post);
    assert_null(rc.lang);
    assert_string_equal(rc.text, "hi");
    request_comment_release(&rc);
    assert_int_equal(parse("{\"text\":\"hi\",\"author\":{}}", &rc, &e), 0);
    request_comment_release(&rc);
}

static void
test_rejects(void **state)
{
    char body[400];
    struct request_comment rc;
    struct request_error e;

    (void)state;
    expect_reject("", 400, "invalid_json", "empty body");
    expect_reject("{", 400, "invalid_json", "line 1");
    expect_reject("{\"text\":\"a\"} x", 400, "invalid_json", "");
    expect_reject("{\"text\":\"a\",\"text\":\"b\"}", 400, "invalid_json",
                  "line 1, column 18: duplicate");
    /* jansson's own message names its flag JSON_ALLOW_NUL */
    expect_reject("{\"text\":\"a\\u0000b\"}", 400, "invalid_json",
                  "line 1, column 18: \\u0000 (a NUL character) is not "
                  "allowed in strings");
    expect_reject("{\"text\":\"caf\xe9\"}", 400, "invalid_json", "");
    expect_reject("[]", 400, "invalid_request", "not an array");
    expect_reject("\"text\"", 400, "invalid_request", "a string");
    expect_reject("{}", 400, "invalid_request", "\"text\" is required");
    expect_reject("{\"id\":\"x\"}", 400, "invalid_request", "required");
    expect_reject("{\"text\":\"\"}", 400, "invalid_request", "empty");
    expect_reject("{\"text\":null}", 400, "invalid_request",
                  "\"text\" must be a string, not null");
    expect_reject("{\"text\":[\"a\"]}", 400, "invalid_request", "an array");
    expect_reject("{\"text\":\"a\",\"id\":7}", 400, "invalid_request",
                  "\"id\" must be a string, not a number");
    expect_reject("{\"text\":\"a\",\"id\":\"\"}", 400, "invalid_request",
                  "1-128");
    expect_reject("{\"text\":\"a\",\"id\":\"a/b\"}", 400, "invalid_request",
                  "1-128");
    expect_reject("{\"text\":\"a\",\"id\":\"caf\\u00e9\"}", 400,
                  "invalid_request", "1-128");
    expect_reject("{\"text\":\"a\",\"author\":[]}", 400, "invalid_request",
                  "\"author\" must be an object");
    expect_reject("{\"text\":\"a\",\"author\":{\"name\":true}}", 400,
                  "invalid_request", "\"author.name\" must be a string");
    expect_reject("{\"text\":\"a\",\"author\":{\"nick\":\"x\"}}", 400,
                  "invalid_request", "unknown field \"author.nick\"");
    expect_reject("{\"text\":\"a\",\"extra\":1}", 400, "invalid_request",
                  "unknown field \"extra\"");
    expect_reject("{\"text\":\"a\",\"post\":12}", 400, "invalid_request",
                  "\"post\" must be a string");
    expect_reject("{\"text\":\"a\",\"lang\":\"a-very-long-language-tag-x\"}",
                  400, "invalid_request", "\"lang\" is longer");
    /* 128 id characters pass, 129 do not */
    snprintf(body, sizeof(body), "{\"id\":\"%0128d\",\"text\":\"a\"}", 0);
    assert_int_equal(parse(body, &rc, &e), 0);
    assert_int_equal(strlen(rc.id), 128);
    request_comment_release(&rc);
    snprintf(body, sizeof(body), "{\"id\":\"%0129d\",\"text\":\"a\"}", 0);
    expect_reject(body, 400, "invalid_request", "1-128");
}

static void
test_ids(void **state)
{
    char a[48], b[48];

    (void)state;
    assert_true(request_id_valid("abc", 3));
    assert_true(request_id_valid("A-Z.a_z:0-9", 11));
    assert_false(request_id_valid("", 0));
    assert_false(request_id_valid("a b", 3));
    assert_false(request_id_valid("a\0b", 3));
    request_make_id(a, sizeof(a));
    request_make_id(b, sizeof(b));
    assert_true(request_id_valid(a, strlen(a)));
    assert_string_not_equal(a, b);
    assert_int_equal(strlen(a), 28);
}

/* ---- result.c ------------------------------------------------------- */

static void
fake_result(struct clf_result *r, double spam, double abuse, int unsure)
{
    memset(r, 0, sizeof(*r));
    r->n_labels = 2;
    r->labels[0].label = "spam";
    r->labels[0].score = spam;
    r->labels[0].n_reasons = 1;
    snprintf(r->labels[0].reasons[0].feature, CLF_FEATURE_NAME_MAX,
             "url:bit.ly");
    r->labels[0].reasons[0].weight = 1.5;
    r->labels[1].label = "abuse";
    r->labels[1].score = abuse;
    r->labels[1].unsure = unsure;
    snprintf(r->lang, sizeof(r->lang), "en");
}

static void
test_verdict(void **state)
{
    struct config_error err;
    struct state st;
    struct clf_result r;

    (void)state;
    memset(&st, 0, sizeof(st));
    st.cfg = config_new();
    assert_int_equal(
        config_set_arg(st.cfg, "thresholds.abuse_review=0.3", &err), 0);
    fake_result(&r, 0.1, 0.1, 0);
    assert_int_equal(result_verdict(&st, &r), CLF_ALLOW);
    fake_result(&r, 0.5, 0.1, 0);
    assert_int_equal(result_verdict(&st, &r), CLF_REVIEW);
    fake_result(&r, 0.1, 0.3, 0); /* the abuse override */
    assert_int_equal(result_verdict(&st, &r), CLF_REVIEW);
    fake_result(&r, 0.1, 0.1, 1); /* unsure: at least review */
    assert_int_equal(result_verdict(&st, &r), CLF_REVIEW);
    fake_result(&r, 0.95, 0.1, 1); /* the most severe label wins */
    assert_int_equal(result_verdict(&st, &r), CLF_REJECT);
    config_free(st.cfg);
}

static void
test_reply_and_record(void **state)
{
    struct state st;
    struct clf_result r;
    struct request_comment rc;
    struct request_error e;
    struct jsonw w;
    json_t *reply, *rec, *back, *extra;
    struct result_spans sp;

    (void)state;
    fake_result(&r, 0.97, 0.02, 1);
    jsonw_init(&w);
    result_write_reply(&w, "c1", &r, CLF_REJECT, 0, 0, NULL);
    assert_string_equal(
        w.buf, "{\"id\":\"c1\",\"scores\":{\"spam\":0.97,\"abuse\":0.02},"
               "\"unsure\":[\"abuse\"],\"verdict\":\"reject\",\"queued\":false,"
               "\"lang\":\"en\",\"reasons\":{\"spam\":[{\"feature\":\"url:bit."
               "ly\",\"weight\":1.5}],\"abuse\":[]}}");
    reply = json_loads(w.buf, 0, NULL);
    assert_non_null(reply);
    /* Spooled: "spooled" right after "queued". */
    jsonw_reset(&w);
    result_write_reply(&w, "c1", &r, CLF_REJECT, 1, 1, NULL);
    assert_non_null(strstr(w.buf, "\"queued\":true,\"spooled\":true,\"lang\""));

    memset(&st, 0, sizeof(st));
    snprintf(st.model_id, sizeof(st.model_id), "00112233aabbccdd");
    assert_int_equal(parse("{\"text\":\"t\\n\\\"\",\"author\":{\"ip\":"
                           "\"1.2.3.4\"},\"post\":\"p1\"}",
                           &rc, &e),
                     0);
    extra = json_pack("{s:s, s:{s:i}}", "source", "akismet", "akismet", "n", 1);
    jsonw_reset(&w);
    result_write_record(&w, "c1", &rc, &r, CLF_REJECT, &st, 1700000000123LL,
                        extra, &sp);
    assert_false(jsonw_failed(&w));
    /* The record's scores and reasons, reused (each, both), make the
     * same reply. */
    {
        struct result_shared sh[3] = {
            {w.buf + sp.scores_at, w.buf + sp.reasons_at, sp.scores_len,
             sp.reasons_len},
            {w.buf + sp.scores_at, NULL, sp.scores_len, 0},
            {NULL, w.buf + sp.reasons_at, 0, sp.reasons_len}};
        struct jsonw a, b;
        int i;

        jsonw_init(&a);
        jsonw_init(&b);
        result_write_reply(&a, "c1", &r, CLF_REJECT, 1, 0, NULL);
        for (i = 0; i < 3; i++) {
            jsonw_reset(&b);
            result_write_reply(&b, "c1", &r, CLF_REJECT, 1, 0, &sh[i]);
            assert_string_equal(a.buf, b.buf);
        }
        jsonw_release(&a);
        jsonw_release(&b);
    }
    rec = json_loads(w.buf, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(rec);
    assert_json_string(json_object_get(rec, "text"), "t\n\"");
    assert_json_string(json_object_get(json_object_get(rec, "author"), "ip"),
                       "1.2.3.4");
    assert_null(json_object_get(json_object_get(rec, "author"), "name"));
    assert_json_string(json_object_get(rec, "post"), "p1");
    assert_json_string(json_object_get(rec, "model_id"), "00112233aabbccdd");
    assert_json_string(json_object_get(rec, "received_at"),
                       "2023-11-14T22:13:20.123Z");
    assert_int_equal(json_integer_value(json_object_get(rec, "received_ms")),
                     1700000000123LL);
    assert_json_string(json_object_get(rec, "daemon_version"),
                       MODFILTERD_VERSION);
    assert_non_null(json_object_get(rec, "reasons"));
    assert_json_string(json_object_get(rec, "source"), "akismet");
    assert_true(json_equal(json_object_get(rec, "akismet"),
                           json_object_get(extra, "akismet")));

    /* An id already stored answers with the stored fields, queued true. */
    back = result_reply_from_stored(w.buf, w.len);
    assert_non_null(back);
    assert_true(json_is_true(json_object_get(back, "queued")));
    assert_json_string(json_object_get(back, "verdict"), "reject");
    assert_null(json_object_get(back, "text"));
    assert_null(json_object_get(back, "author"));
    assert_true(json_equal(json_object_get(back, "scores"),
                           json_object_get(reply, "scores")));
    assert_null(result_reply_from_stored("[1]", 3));
    assert_null(result_reply_from_stored("{", 1));
    json_decref(back);
    json_decref(rec);
    request_comment_release(&rc);

    /* "post" is always there, null when not given (DESIGN.md's item) */
    assert_int_equal(parse("{\"text\":\"t\"}", &rc, &e), 0);
    jsonw_reset(&w);
    result_write_record(&w, "c2", &rc, &r, CLF_REVIEW, &st, 1700000000123LL,
                        NULL, &sp);
    rec = json_loads(w.buf, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(rec);
    assert_true(json_is_null(json_object_get(rec, "post")));
    json_decref(rec);
    json_decref(reply);
    json_decref(extra);
    jsonw_release(&w);
    request_comment_release(&rc);
}

/* 1 when two parses hold the same strings. */
static int
same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && !strcmp(a, b));
}

static void
expect_same(const char *body, size_t len, int fast_ok)
{
    struct request_comment f, j;
    struct request_error e;
    int rf = request_parse_fast(body, len, &f);
    int rj = request_parse_jansson(body, len, &j, &e);

    if (rf != (fast_ok ? 0 : -1))
        fail_msg("fast path %s: %.*s", rf ? "refused" : "took", (int)len, body);
    if (rf == 0) {
        if (rj != 0)
            fail_msg("jansson refused what the fast path took: %.*s", (int)len,
                     body);
        assert_int_equal(f.text_len, j.text_len);
        assert_memory_equal(f.text, j.text, f.text_len);
        assert_true(same_str(f.id, j.id) && same_str(f.post, j.post) &&
                    same_str(f.lang, j.lang) &&
                    same_str(f.author_name, j.author_name) &&
                    same_str(f.author_email, j.author_email) &&
                    same_str(f.author_url, j.author_url) &&
                    same_str(f.author_ip, j.author_ip));
    }
    request_comment_release(&f);
    request_comment_release(&j);
}

static void
test_fast_path(void **state)
{
    static const char *const taken[] = {
        "{\"text\":\"hi\"}",
        " {\r\n\t\"id\" : \"a.B_9:-\" , \"text\":\"caf\\u00e9 \\\"q\\\" \\\\ "
        "\\/ "
        "\\b\\f\\n\\r\\t\"} ",
        "{\"text\":\"\\ud83d\\ude00 \xf0\x9f\x98\x80 "
        "\xe2\x82\xac\",\"lang\":\"es\"}",
        "{\"author\":{\"name\":\"N\",\"email\":\"e@x\",\"url\":\"u\",\"ip\":"
        "\"::1\"},\"post\":\"p\",\"text\":\"t\"}",
        "{\"author\":{},\"text\":\"t\"}",
        "{\"te\\u0078t\":\"escaped key\"}",
    };
    static const char *const refused[] = {
        "",
        "{}",
        "[]",
        "\"x\"",
        "{\"text\":\"\"}",
        "{\"text\":5}",
        "{\"text\":\"a\",\"text\":\"b\"}",
        "{\"text\":\"a\\u0000\"}",
        "{\"text\":\"\\ud800\"}",
        "{\"text\":\"\\udc00\"}",
        "{\"text\":\"\\ud800\\u0041\"}",
        "{\"text\":\"\xff\"}",
        "{\"text\":\"\xc0\xaf\"}",
        "{\"text\":\"a\nb\"}",
        "{\"text\":\"a\\x\"}",
        "{\"text\":\"a\"} x",
        "{\"text\":\"a\",}",
        "{\"text\":\"a\"",
        "{\"txt\":\"a\"}",
        "{\"text\":\"a\",\"id\":\"bad id\"}",
        "{\"text\":\"a\",\"author\":{\"name\":\"a\",\"name\":\"b\"}}",
        "{\"text\":\"a\",\"author\":{\"nick\":\"a\"}}",
        "{\"text\":\"a\",\"author\":\"x\"}",
        "{\"text\":\"a\",\"lang\":null}",
        "{\"text\":\"a\",\"author\":{},\"author\":{}}",
        "{\"text\":\"a\",\"lang\":\"a-very-long-language-tag-x\"}",
    };
    char big[300];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(taken) / sizeof(taken[0]); i++)
        expect_same(taken[i], strlen(taken[i]), 1);
    for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        expect_same(refused[i], strlen(refused[i]), 0);
    expect_same("{\"text\":\"a\0b\"}", 12, 0); /* a raw NUL */
    /* The id bound: 128 taken, 129 refused. */
    snprintf(big, sizeof(big), "{\"text\":\"t\",\"id\":\"%0128d\"}", 0);
    expect_same(big, strlen(big), 1);
    snprintf(big, sizeof(big), "{\"text\":\"t\",\"id\":\"%0129d\"}", 0);
    expect_same(big, strlen(big), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_minimal),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_verdict),
        cmocka_unit_test(test_reply_and_record),
        cmocka_unit_test(test_fast_path),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
