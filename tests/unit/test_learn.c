/* Unit tests of daemon/learn.c's pure parts: training labels, why a head is
 * unsure, the /v1/stats figures and the metrics lines for a model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "modfilterd.h"

static int
labels_ok(const char *text, char *why, size_t len)
{
    json_t *j = json_loads(text, 0, NULL);
    int r;

    assert_non_null(j);
    r = learn_labels_check(j, NULL, why, len);
    json_decref(j);
    return r;
}

static void
test_labels(void **state)
{
    char why[200];

    (void)state;
    assert_int_equal(labels_ok("{\"spam\": 1}", why, sizeof(why)), 0);
    assert_int_equal(
        labels_ok("{\"spam\": 0, \"abuse\": true}", why, sizeof(why)), 0);
    assert_int_equal(labels_ok("{\"a-b_9\": false}", why, sizeof(why)), 0);
    assert_int_equal(labels_ok("{}", why, sizeof(why)), -1);
    assert_non_null(strstr(why, "non-empty JSON object"));
    assert_int_equal(labels_ok("[1]", why, sizeof(why)), -1);
    assert_int_equal(labels_ok("{\"spam\": 2}", why, sizeof(why)), -1);
    assert_string_equal(why, "label spam: the value must be 0 or 1");
    assert_int_equal(labels_ok("{\"spam\": \"1\"}", why, sizeof(why)), -1);
    assert_int_equal(labels_ok("{\"spam\": 0.5}", why, sizeof(why)), -1);
    assert_int_equal(labels_ok("{\"Spam\": 1}", why, sizeof(why)), -1);
    assert_non_null(strstr(why, "bad label name"));
    assert_int_equal(labels_ok("{\"\": 1}", why, sizeof(why)), -1);
    assert_int_equal(labels_ok("{\"abcdefghijklmnopqrstuvwxyz0123456\": 1}",
                               why, sizeof(why)),
                     -1);
    assert_int_equal(learn_labels_check(NULL, NULL, why, sizeof(why)), -1);
}

/* A model with n_pos / n_neg distinct spam examples. */
static struct clf_model *
model_with(unsigned n_pos, unsigned n_neg, unsigned min_examples)
{
    struct clf_settings s;
    struct clf_model *m;
    struct clf_scorer *sc = clf_scorer_new();
    struct clf_error e;
    unsigned i;

    clf_settings_init(&s);
    s.min_examples = min_examples;
    m = clf_model_new(&s);
    assert_non_null(m);
    assert_non_null(sc);
    for (i = 0; i < n_pos + n_neg; i++) {
        char text[64];
        enum clf_learn_outcome out;
        int n = snprintf(text, sizeof(text), "example number %u here", i);

        assert_int_equal(clf_learn(sc, m, text, (size_t)n, NULL, "spam",
                                   i < n_pos, &out, &e),
                         CLF_OK);
        assert_int_equal(out, CLF_LEARNED);
    }
    clf_scorer_free(sc);
    return m;
}

/* Online learning teaches only the model's labels: a typo is refused
 * with the labels there are, never made a head of its own. */
static void
test_labels_of_model(void **state)
{
    struct clf_model *m = model_with(2, 2, 1);
    json_t *j = json_loads("{\"spam\": 1, \"spma\": 1}", 0, NULL);
    char why[200];

    (void)state;
    assert_non_null(j);
    assert_int_equal(learn_label_known(m, "spam", why, sizeof(why)), 0);
    assert_int_equal(learn_labels_check(j, NULL, why, sizeof(why)), 0);
    assert_int_equal(learn_labels_check(j, m, why, sizeof(why)), -1);
    assert_string_equal(why, "unknown label \"spma\" (the model's: spam)");
    /* a reason cut short stays a string */
    assert_int_equal(learn_label_known(m, "spma", why, 20), -1);
    assert_int_equal(strlen(why), 19);
    json_decref(j);
    clf_model_free(m);
}

static void
test_unsure_reason(void **state)
{
    struct clf_model *m;
    char why[100];

    (void)state;
    m = model_with(8, 4, 50);
    assert_int_equal(learn_unsure_reason(m, 0, why, sizeof(why)), 1);
    assert_string_equal(why, "spam: 12 of 50 examples");
    clf_model_free(m);
    m = model_with(3, 0, 2);
    assert_int_equal(learn_unsure_reason(m, 0, why, sizeof(why)), 1);
    assert_string_equal(why, "spam: no examples of class 0");
    clf_model_free(m);
    m = model_with(3, 2, 5);
    assert_int_equal(learn_unsure_reason(m, 0, why, sizeof(why)), 0);
    clf_model_free(m);
}

static void
test_stats_and_metrics(void **state)
{
    struct state st;
    struct evbuffer *buf = evbuffer_new();
    json_t *labels, *training;
    char *text;
    size_t len;

    (void)state;
    memset(&st, 0, sizeof(st));
    st.model = model_with(8, 4, 50);
    labels = learn_stats_labels(&st);
    assert_non_null(labels);
    text = json_dumps(labels, JSON_COMPACT);
    assert_string_equal(text, "{\"spam\":{\"examples\":{\"0\":4,\"1\":8},"
                              "\"unsure_reason\":\"spam: 12 of 50 "
                              "examples\"}}");
    free(text);
    json_decref(labels);
    training = learn_stats_training();
    assert_non_null(training);
    assert_non_null(json_object_get(training, "events"));
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(training, "events"), "upload")),
                     0);
    assert_true(json_is_null(json_object_get(training, "last_event_id")));
    json_decref(training);

    assert_non_null(buf);
    learn_metrics_render(buf, &st);
    len = evbuffer_get_length(buf);
    text = malloc(len + 1);
    assert_non_null(text);
    evbuffer_remove(buf, text, len);
    text[len] = '\0';
    assert_non_null(strstr(text, "modfilter_label_unsure{label=\"spam\"} 1\n"));
    assert_non_null(strstr(
        text, "modfilter_training_events_total{source=\"decision\"} 0\n"));
    assert_non_null(
        strstr(text, "modfilter_training_events_skipped_total 0\n"));
    assert_non_null(strstr(text, "# TYPE modfilter_training_lag_seconds "
                                 "gauge\n"));
    free(text);
    evbuffer_free(buf);
    clf_model_free(st.model);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_labels_of_model),
        cmocka_unit_test(test_unsure_reason),
        cmocka_unit_test(test_stats_and_metrics),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
