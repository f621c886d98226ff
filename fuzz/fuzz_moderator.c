/* libFuzzer target: the bodies a moderator sends.  The first byte picks
 * one: POST /v1/train as one JSON example or as JSON Lines
 * (daemon/train.c), or a decision object (daemon/moderation.c).  Every
 * example taken is an object with a non-empty string text and valid
 * labels; every line refused is numbered within the body and has a
 * reason; an accepted decision has canonical labels of 0 and 1. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "modfilterd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Lines of a JSON Lines body, and the last line a note named. */
struct lines {
    size_t n, last;
};

static void
on_note(void *arg, size_t line, const char *why)
{
    struct lines *l = arg;

    if (line == 0 || line > l->n || line <= l->last || why[0] == '\0')
        FUZZ_FAIL("a refused line's number or reason");
    l->last = line;
}

static void
check_examples(json_t *examples)
{
    size_t i;
    json_t *ex;
    char why[256];

    json_array_foreach(examples, i, ex)
    {
        json_t *text = json_object_get(ex, "text");

        if (!json_is_object(ex) || !json_is_string(text) ||
            json_string_length(text) == 0)
            FUZZ_FAIL("an example without its text");
        if (learn_labels_check(json_object_get(ex, "labels"), NULL, why,
                               sizeof(why)) != 0)
            FUZZ_FAIL("an example with invalid labels");
    }
}

static void
check_decision(const char *body, size_t len)
{
    json_t *d = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL), *l, *v;
    char err[160], *labels = NULL;
    const char *key;
    int reject = -1;

    if (d == NULL)
        return;
    if (moderation_parse_decision(d, NULL, &reject, &labels, err,
                                  sizeof(err)) == 0) {
        if (reject != 0 && reject != 1)
            FUZZ_FAIL("a decision neither approve nor reject");
        if (labels != NULL) {
            l = json_loads(labels, 0, NULL);
            if (!json_is_object(l) || json_object_size(l) == 0)
                FUZZ_FAIL("labels not a non-empty object");
            json_object_foreach(l, key, v)
            {
                if (!json_is_integer(v) ||
                    (json_integer_value(v) != 0 && json_integer_value(v) != 1))
                    FUZZ_FAIL("a label value other than 0 or 1");
            }
            json_decref(l);
        }
    } else if (err[0] == '\0') {
        FUZZ_FAIL("a refusal without a reason");
    }
    free(labels);
    json_decref(d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data + 1;
    size_t len = size - 1, i;
    struct lines l = {1, 0};
    json_t *examples;
    char why[256];

    if (size == 0)
        return 0;
    if (data[0] % 3 == 2) {
        check_decision(body, len);
        return 0;
    }
    for (i = 0; i < len; i++)
        l.n += body[i] == '\n';
    examples = json_array();
    if (examples == NULL)
        return 0;
    why[0] = '\0';
    if (train_parse_body(body, len, data[0] % 3, NULL, examples, on_note, &l,
                         why, sizeof(why)) < 0) {
        if (data[0] % 3 == 1 || why[0] == '\0' ||
            json_array_size(examples) != 0)
            FUZZ_FAIL("a refused body");
    } else {
        check_examples(examples);
        if (data[0] % 3 == 0 && json_array_size(examples) != 1)
            FUZZ_FAIL("one example for a JSON body");
    }
    json_decref(examples);
    return 0;
}
