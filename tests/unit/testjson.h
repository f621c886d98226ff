/*
 * testjson.h - assertions on jansson values for the cmocka tests.
 * Include after <cmocka.h> and <jansson.h> (modfilterd.h).
 */
#ifndef MODFILTER_TESTJSON_H
#define MODFILTER_TESTJSON_H

/* assert_string_equal on a JSON string: a missing value, or one that is
 * not a string, fails the test with its expression instead of handing
 * NULL to strcmp (a crash, which takes the rest of the run with it under
 * ASan). */
#define assert_json_string(value, want)                                        \
    do {                                                                       \
        const json_t *json_v_ = (value);                                       \
        if (!json_is_string(json_v_))                                          \
            fail_msg("%s: %s", #value,                                         \
                     json_v_ == NULL ? "missing" : "not a string");            \
        assert_string_equal(json_string_value(json_v_), (want));               \
    } while (0)

#endif
