/* libFuzzer target: the model file parser never crashes, never reads out of
 * bounds, and a model it accepts can score, and (a whole model) learn and
 * unlearn: what the file says about its calibration sample is used then.  An
 * input that starts with 'M' is parsed as it is (magic, length and checksum
 * checks); any other is a body after one byte that picks the file version (1 or
 * 2, by its low bit), for which the target writes the header and checksum, so
 * that mutations reach the body's parser behind the checksum.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "classifier.h"

enum clf_status clf_model_parse(const void *p, size_t len, int scoring_only,
                                struct clf_model **out, struct clf_error *err);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct clf_model *m = NULL;
    struct clf_error err;
    unsigned char *buf = NULL;
    const void *p = data;
    size_t len = size;
    if (size && data[0] != 'M') {
        len = 24 + (size - 1) + 8;
        if (!(buf = malloc(len)))
            return 0;
        memcpy(buf, "MODFILTR\1\0\0\0\0\0\0\0", 16);
        buf[8] = (unsigned char)(1 + (data[0] & 1)); /* version 1 or 2 */
        put64(buf + 16, size - 1);
        memcpy(buf + 24, data + 1, size - 1);
        put64(buf + 24 + size - 1, XXH3_64bits(buf, 24 + size - 1));
        p = buf;
    }
    /* as a whole model and as a scoring copy (another features reader) */
    for (int scoring = 0; scoring < 2; scoring++) {
        if (clf_model_parse(p, len, scoring, &m, &err) != CLF_OK)
            continue;
        struct clf_scorer *sc = clf_scorer_new();
        struct clf_result r;
        enum clf_learn_outcome out;
        if (sc)
            clf_score(sc, m, "check out my channel, idiot", 27, NULL, 1, &r);
        if (sc && !scoring && clf_model_label_count(m) > 0) {
            const char *label = clf_model_label_name(m, 0);
            clf_learn(sc, m, "buy cheap pills now", 19, NULL, label, 1, &out,
                      &err);
            clf_unlearn(sc, m, "buy cheap pills now", 19, NULL, label, 1, &out,
                        &err);
        }
        clf_scorer_free(sc);
        clf_model_free(m);
    }
    free(buf);
    return 0;
}
