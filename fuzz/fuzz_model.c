/* libFuzzer target: the model file parser never crashes, never reads out of
 * bounds, and a model it accepts can score. */
#include <stddef.h>
#include <stdint.h>

#include "classifier.h"

enum clf_status clf_model_parse(const void *p, size_t len,
                                struct clf_model **out, struct clf_error *err);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct clf_model *m = NULL;
    struct clf_error err;
    if (clf_model_parse(data, size, &m, &err) == CLF_OK) {
        struct clf_scorer *sc = clf_scorer_new();
        struct clf_result r;
        if (sc)
            clf_score(sc, m, "check out my channel, idiot", 27, NULL, 1, &r);
        clf_scorer_free(sc);
        clf_model_free(m);
    }
    return 0;
}
