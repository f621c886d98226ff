/* Unit tests of the pure part of what a moderator sends: a decision body
 * (daemon/moderation.c) and a POST /v1/train body (daemon/train.c); the
 * routes themselves are tested against a real daemon in
 * tests/integration/test_daemon_moderation.sh and test_daemon_learning.sh. */
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

static struct clf_model *model; /* labels spam and abuse */

/* Parses body with the model; returns the result, *labels malloc'd. */
static int
parse(const char *body, int *reject, char **labels, char *err, size_t len)
{
    json_t *d = json_loads(body, 0, NULL);
    int rc;

    assert_non_null(d);
    rc = moderation_parse_decision(d, model, reject, labels, err, len);
    json_decref(d);
    return rc;
}

static void
expect_ok(const char *body, int want_reject, const char *want_labels)
{
    char err[160] = "", *labels = NULL;
    int reject = -1;

    if (parse(body, &reject, &labels, err, sizeof(err)) != 0)
        fail_msg("refused %s: %s", body, err);
    assert_int_equal(reject, want_reject);
    if (want_labels == NULL)
        assert_null(labels);
    else
        assert_string_equal(labels, want_labels);
    free(labels);
}

static void
expect_refused(const char *body, const char *msg_part)
{
    char err[160] = "", *labels = NULL;
    int reject = -1;

    if (parse(body, &reject, &labels, err, sizeof(err)) != -1)
        fail_msg("accepted: %s", body);
    assert_null(labels);
    if (strstr(err, msg_part) == NULL)
        fail_msg("%s: message \"%s\" lacks \"%s\"", body, err, msg_part);
}

static void
test_decisions(void **state)
{
    (void)state;
    expect_ok("{\"decision\": \"approve\"}", 0, NULL);
    expect_ok("{\"decision\": \"reject\"}", 1, NULL);
    expect_ok("{\"decision\": \"reject\", \"labels\": null}", 1, NULL);
    expect_ok("{\"id\": \"c1\", \"decision\": \"reject\", "
              "\"labels\": {\"spam\": 1, \"abuse\": 0}}",
              1, "{\"abuse\":0,\"spam\":1}");
    expect_ok("{\"decision\": \"approve\", \"labels\": {\"spam\": false}}", 0,
              "{\"spam\":0}");
    expect_ok("{\"decision\": \"reject\", \"labels\": {\"abuse\": true}}", 1,
              "{\"abuse\":1}");
}

static void
test_refusals(void **state)
{
    (void)state;
    expect_refused("{}", "\"decision\" must be");
    expect_refused("{\"decision\": \"maybe\"}", "\"decision\" must be");
    expect_refused("{\"decision\": 1}", "\"decision\" must be");
    expect_refused("{\"decision\": \"approve\", \"extra\": 1}",
                   "unknown field \"extra\"");
    expect_refused("{\"decision\": \"reject\", \"labels\": []}",
                   "\"labels\" must be an object");
    expect_refused("{\"decision\": \"reject\", \"labels\": {}}",
                   "\"labels\" is empty");
    expect_refused("{\"decision\": \"reject\", \"labels\": {\"nope\": 1}}",
                   "unknown label \"nope\" (the model's: spam, abuse)");
    expect_refused("{\"decision\": \"reject\", \"labels\": {\"spam\": 2}}",
                   "label \"spam\" must be 0 or 1");
    expect_refused("{\"decision\": \"reject\", \"labels\": {\"spam\": 0.5}}",
                   "label \"spam\" must be 0 or 1");
    expect_refused("{\"decision\": \"reject\", \"labels\": {\"spam\": \"1\"}}",
                   "label \"spam\" must be 0 or 1");
}

static void
test_without_model(void **state)
{
    json_t *d = json_loads("{\"decision\": \"reject\", \"labels\": "
                           "{\"anything\": 1}}",
                           0, NULL);
    char err[160], *labels = NULL;
    int reject;

    (void)state;
    assert_int_equal(
        moderation_parse_decision(d, NULL, &reject, &labels, err, sizeof(err)),
        0);
    assert_string_equal(labels, "{\"anything\":1}");
    free(labels);
    json_decref(d);
}

/* train_parse_body's notes: each line number and reason, appended. */
static void
note_line(void *arg, size_t line, const char *why)
{
    char *out = arg;
    size_t n = strlen(out);

    snprintf(out + n, 256 - n, "%zu:%s;", line, why);
}

/* body in a heap block of exactly its length (no NUL after it, as a
 * request body): under ASan a read past the end fails the test. */
static int
parse_exact(const char *body, int ndjson, json_t *examples, char *notes,
            char *why, size_t whylen)
{
    size_t len = strlen(body);
    char *copy = malloc(len ? len : 1);
    int rc;

    assert_non_null(copy);
    memcpy(copy, body, len);
    rc = train_parse_body(copy, len, ndjson, NULL, examples, note_line, notes,
                          why, whylen);
    free(copy);
    return rc;
}

static void
test_train_bodies(void **state)
{
    json_t *ex = json_array();
    char notes[256] = "", why[256];

    (void)state;
    /* JSON Lines: blank lines (also the last, of spaces and tabs) skipped,
     * a bad line numbered and skipped, CRLF taken */
    assert_int_equal(parse_exact("{\"text\":\"buy now\",\"labels\":"
                                 "{\"spam\":1}}\r\n\n{\"text\":\"\"}\n"
                                 "{\"text\":\"hola\",\"labels\":"
                                 "{\"spam\":0}}\n \t",
                                 1, ex, notes, why, sizeof(why)),
                     0);
    assert_int_equal(json_array_size(ex), 2);
    assert_string_equal(notes, "3:text must be a non-empty string;");
    assert_json_string(json_object_get(json_array_get(ex, 1), "text"), "hola");
    /* one JSON example; a body that is not one is refused with why */
    json_array_clear(ex);
    assert_int_equal(parse_exact("{\"text\":\"x\",\"labels\":"
                                 "{\"abuse\":true}}",
                                 0, ex, notes, why, sizeof(why)),
                     0);
    assert_int_equal(json_array_size(ex), 1);
    assert_int_equal(parse_exact("   ", 0, ex, notes, why, sizeof(why)), -1);
    assert_true(strncmp(why, "invalid JSON", 12) == 0);
    /* in words a client understands, not jansson's flag names */
    assert_int_equal(
        parse_exact("{\"text\":\"a\\u0000\"}", 0, ex, notes, why, sizeof(why)),
        -1);
    assert_string_equal(why, "invalid JSON: \\u0000 (a NUL character) is not "
                             "allowed in strings");
    json_decref(ex);
}

static int
setup(void **state)
{
    struct clf_settings s;
    struct clf_scorer *sc = clf_scorer_new();
    enum clf_learn_outcome out;
    struct clf_error err;

    (void)state;
    clf_settings_init(&s);
    model = clf_model_new(&s);
    if (sc == NULL || model == NULL ||
        clf_learn(sc, model, "buy now", 7, "en", "spam", 1, &out, &err) !=
            CLF_OK ||
        clf_learn(sc, model, "you idiot", 9, "en", "abuse", 1, &out, &err) !=
            CLF_OK) {
        clf_scorer_free(sc);
        return -1;
    }
    clf_scorer_free(sc);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    clf_model_free(model);
    model = NULL;
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decisions),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_without_model),
        cmocka_unit_test(test_train_bodies),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
