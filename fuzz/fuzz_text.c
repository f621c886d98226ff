/*
 * fuzz_text.c - libFuzzer target for the tokeniser: arbitrary bytes through
 * text_analyze() with the default settings, with and without a language
 * hint, and once more with tiny limits.  Every token must be a non-empty
 * NUL-terminated string of the length it claims.
 *
 *   clang -fsanitize=fuzzer,address,undefined -Iclassifier fuzz/fuzz_text.c \
 *       classifier/text.c classifier/lang.c classifier/stem.c \
 *       $(pkg-config --cflags --libs libutf8proc libxxhash) -lstemmer -lm
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const struct text_doc *d)
{
    for (unsigned i = 0; i < d->n_tokens; i++) {
        const struct text_token *t = &d->tokens[i];
        if (t->len == 0 || strlen(text_str(d, t)) != t->len ||
            strlen(text_surface(d, t)) != t->surface_len ||
            t->kind > TEXT_EMOJI)
            abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const hints[] = {"en", "es", "spanish", "xx", "", "fr"};
    struct clf_settings s;
    struct text_doc d;

    memset(&s, 0, sizeof(s));
    strcpy(s.languages[0], "english");
    strcpy(s.languages[1], "spanish");
    s.n_languages = 2;
    strcpy(s.default_language, "english");
    s.features = CLF_FEAT_ALL;
    s.max_bytes = 8192;
    s.max_tokens = 1024;

    /* One analyzer for the whole run, as a worker thread keeps one: the
     * stem cache and the reused buffers carry over between inputs. */
    static struct text_analyzer *ta;
    if (!ta)
        ta = text_analyzer_new();
    if (!ta)
        return 0;
    if (text_analyze(ta, &s, (const char *)data, size, NULL, &d) == 0)
        check(&d);
    const char *hint = hints[size % (sizeof(hints) / sizeof(hints[0]))];
    if (text_analyze(ta, &s, (const char *)data, size, hint, &d) == 0)
        check(&d);
    s.max_bytes = 17;
    s.max_tokens = 3;
    if (text_analyze(ta, &s, (const char *)data, size, NULL, &d) == 0)
        check(&d);
    return 0;
}
