/*
 * test_text.c - the tokeniser: golden files and edge cases.
 *
 * Golden files: tests/golden/text/NAME.in holds one comment a line (lines
 * starting with "#" are comments, copied to the output; \xHH \uHHHH
 * \UHHHHHHHH \\ \n \t escapes are decoded so any bytes can be written);
 * NAME.out is the dump of every comment.  UPDATE_GOLDEN=1 rewrites the .out
 * files instead of comparing (review the diff before committing).  Files
 * are found under $TOP (tests/run.sh sets it), else the current directory.
 *
 * Extra modes (not run by the test suite):
 *   test_text --dump                      dump stdin lines (escapes decoded)
 *   test_text --langacc FILE.jsonl...     language detection accuracy
 *   test_text --bench [FILE.jsonl]        ns per comment
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "text.h"

/* ---- helpers ------------------------------------------------------------ */

static void
settings_init(struct clf_settings *s, const char *langs)
{
    memset(s, 0, sizeof(*s));
    const char *p = langs;
    while (*p && s->n_languages < CLF_MAX_LANGUAGES) {
        size_t n = strcspn(p, ",");
        snprintf(s->languages[s->n_languages++], CLF_LANG_MAX, "%.*s", (int)n,
                 p);
        p += n;
        if (*p == ',')
            p++;
    }
    snprintf(s->default_language, CLF_LANG_MAX, "%s", s->languages[0]);
    s->features = CLF_FEAT_ALL;
    s->max_bytes = 8192;
    s->max_tokens = 1024;
}

struct buf {
    char *p;
    size_t len, cap;
};

static void
buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        assert_non_null(b->p);
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void __attribute__((format(printf, 2, 3)))
buf_printf(struct buf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        buf_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static int
hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static size_t
put_utf8(char *d, uint32_t c)
{
    if (c < 0x80) {
        d[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        d[0] = (char)(0xc0 | (c >> 6));
        d[1] = (char)(0x80 | (c & 0x3f));
        return 2;
    }
    if (c < 0x10000) {
        d[0] = (char)(0xe0 | (c >> 12));
        d[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        d[2] = (char)(0x80 | (c & 0x3f));
        return 3;
    }
    d[0] = (char)(0xf0 | (c >> 18));
    d[1] = (char)(0x80 | ((c >> 12) & 0x3f));
    d[2] = (char)(0x80 | ((c >> 6) & 0x3f));
    d[3] = (char)(0x80 | (c & 0x3f));
    return 4;
}

/* Decode the golden-file escapes of line (in place); returns the length. */
static size_t
unescape(char *line)
{
    char *o = line;
    for (char *p = line; *p;) {
        if (*p != '\\' || !p[1]) {
            *o++ = *p++;
            continue;
        }
        char e = p[1];
        int digits = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
        if (digits) {
            uint32_t v = 0;
            int k = 0;
            for (; k < digits && hexval(p[2 + k]) >= 0; k++)
                v = v * 16 + (uint32_t)hexval(p[2 + k]);
            if (k == digits) {
                if (e == 'x')
                    *o++ = (char)v;
                else
                    o += put_utf8(o, v); /* never longer than the escape */
                p += 2 + digits;
                continue;
            }
        }
        *o++ = e == 'n' ? '\n' : e == 't' ? '\t' : e;
        p += 2;
    }
    *o = '\0';
    return (size_t)(o - line);
}

static const char *
kind_name(unsigned k)
{
    static const char *const names[] = {"word",  "number",  "url",  "host",
                                        "email", "mention", "emoji"};
    return k < sizeof(names) / sizeof(names[0]) ? names[k] : "?";
}

static void
dump_doc(struct buf *b, const struct text_doc *d)
{
    const struct text_stats *st = &d->stats;
    buf_printf(b,
               "  lang=%s chars=%u letters=%u upper=%u emoji=%u urls=%u "
               "invalid=%u invisible=%u punct_run=%u truncated=%u\n",
               d->lang, st->n_chars, st->n_letters, st->n_upper, st->n_emoji,
               st->n_urls, st->n_invalid, st->n_invisible, st->max_punct_run,
               st->truncated);
    for (unsigned i = 0; i < d->n_tokens; i++) {
        const struct text_token *t = &d->tokens[i];
        const char *str = text_str(d, t), *surface = text_surface(d, t);
        assert_int_equal(strlen(str), t->len);
        assert_int_equal(strlen(surface), t->surface_len);
        buf_printf(b, "  %-7s %s", kind_name(t->kind), str);
        if (t->surface_len != t->len || memcmp(str, surface, t->len))
            buf_printf(b, " <%s>", surface);
        if (t->flags & TEXT_F_OBFUSCATED)
            buf_printf(b, " +obf");
        if (t->flags & TEXT_F_UPPER)
            buf_printf(b, " +upper");
        buf_add(b, "\n", 1);
    }
}

static char *
read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct buf b = {0};
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        buf_add(&b, tmp, n);
    fclose(f);
    if (!b.p)
        buf_add(&b, "", 0);
    *len = b.len;
    return b.p;
}

/* Dump every line of an .in text (modified in place) into out. */
static void
dump_lines(struct text_analyzer *ta, const struct clf_settings *s, char *in,
           struct buf *out)
{
    char *save = NULL;
    for (char *line = strtok_r(in, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') {
            buf_printf(out, "%s\n", line);
            continue;
        }
        buf_printf(out, "> %s\n", line);
        size_t len = unescape(line);
        struct text_doc d;
        assert_int_equal(text_analyze(ta, s, line, len, NULL, &d), 0);
        dump_doc(out, &d);
    }
}

static void
golden(const char *name)
{
    const char *top = getenv("TOP");
    char in_path[4096], out_path[4096];
    snprintf(in_path, sizeof(in_path), "%s/tests/golden/text/%s.in",
             top ? top : ".", name);
    snprintf(out_path, sizeof(out_path), "%s/tests/golden/text/%s.out",
             top ? top : ".", name);

    size_t in_len, want_len;
    char *in = read_file(in_path, &in_len);
    if (!in)
        fail_msg("cannot read %s (run from the repository top or set TOP)",
                 in_path);
    struct clf_settings s;
    settings_init(&s, "english,spanish");
    struct text_analyzer *ta = text_analyzer_new();
    assert_non_null(ta);
    struct buf got = {0};
    dump_lines(ta, &s, in, &got);
    text_analyzer_free(ta);
    free(in);

    const char *upd = getenv("UPDATE_GOLDEN");
    if (upd && strcmp(upd, "1") == 0) {
        FILE *f = fopen(out_path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(got.p, 1, got.len, f), got.len);
        assert_int_equal(fclose(f), 0);
        free(got.p);
        return;
    }
    char *want = read_file(out_path, &want_len);
    if (!want)
        fail_msg("cannot read %s (UPDATE_GOLDEN=1 writes it)", out_path);
    if (want_len != got.len || memcmp(want, got.p, got.len) != 0) {
        /* show the first differing line */
        size_t i = 0, line_start = 0;
        while (i < want_len && i < got.len && want[i] == got.p[i]) {
            if (want[i] == '\n')
                line_start = i + 1;
            i++;
        }
        size_t we = line_start, ge = line_start;
        while (we < want_len && want[we] != '\n')
            we++;
        while (ge < got.len && got.p[ge] != '\n')
            ge++;
        print_error("%s differs:\n  want: %.*s\n  got:  %.*s\n", out_path,
                    (int)(we - line_start), want + line_start,
                    (int)(ge - line_start), got.p + line_start);
        free(want);
        free(got.p);
        fail();
    }
    free(want);
    free(got.p);
}

/* One golden file per test; its name is the test's initial state. */
#define GOLDEN(name)                                                           \
    {                                                                          \
        "golden_" name, golden_test, NULL, NULL, (void *)name                  \
    }
static void
golden_test(void **state)
{
    golden(*state);
}

/* ---- edge cases -----------------------------------------------------------
 */

static int
setup(void **state)
{
    struct text_analyzer *ta = text_analyzer_new();
    *state = ta;
    return ta ? 0 : -1;
}

static int
teardown(void **state)
{
    text_analyzer_free(*state);
    return 0;
}

static void
test_empty(void **state)
{
    struct clf_settings s;
    struct text_doc d;
    settings_init(&s, "english,spanish");
    assert_int_equal(text_analyze(*state, &s, "", 0, NULL, &d), 0);
    assert_int_equal(d.n_tokens, 0);
    assert_string_equal(d.lang, "english");
    assert_int_equal(d.stats.n_chars, 0);
    assert_int_equal(d.stats.truncated, 0);
    /* NULL text with length 0 too */
    assert_int_equal(text_analyze(*state, &s, NULL, 0, NULL, &d), 0);
    assert_int_equal(d.n_tokens, 0);
    /* only spaces and punctuation */
    assert_int_equal(text_analyze(*state, &s, " \t\n!!! ... ", 11, NULL, &d),
                     0);
    assert_int_equal(d.n_tokens, 0);
    assert_int_equal(d.stats.max_punct_run, 3);
}

static void
test_only_invalid(void **state)
{
    struct clf_settings s;
    struct text_doc d;
    char bytes[300];
    settings_init(&s, "english,spanish");
    for (size_t i = 0; i < sizeof(bytes); i++)
        bytes[i] = (char)(0x80 + i % 0x40); /* lone continuation bytes */
    assert_int_equal(text_analyze(*state, &s, bytes, sizeof(bytes), NULL, &d),
                     0);
    assert_int_equal(d.n_tokens, 0);
    assert_int_equal(d.stats.n_invalid, sizeof(bytes));
    assert_int_equal(d.stats.n_chars, sizeof(bytes)); /* U+FFFD each */

    /* a truncated 4-byte sequence counts once; overlong and surrogate
     * forms are rejected */
    const char t[] = "\xf0\x9f\x98"
                     "a\xc0\xaf"
                     "b\xed\xa0\x80"
                     "c\xf4\x90\x80\x80";
    assert_int_equal(text_analyze(*state, &s, t, sizeof(t) - 1, NULL, &d), 0);
    assert_int_equal(d.stats.n_invalid, 1 + 2 + 3 + 4);
    assert_int_equal(d.n_tokens, 3);
    assert_string_equal(text_surface(&d, &d.tokens[0]), "a");
    assert_string_equal(text_surface(&d, &d.tokens[2]), "c");
}

static void
test_truncate_1mb(void **state)
{
    struct clf_settings s;
    struct text_doc d;
    size_t len = 1u << 20;
    char *big = malloc(len);
    assert_non_null(big);
    /* "ñandú " repeated: two-byte characters so the cut must back up */
    const char unit[] = "\xc3\xb1"
                        "and\xc3\xba ";
    for (size_t i = 0; i < len; i++)
        big[i] = unit[i % (sizeof(unit) - 1)];
    settings_init(&s, "english,spanish");
    s.max_bytes = 8192 + 1; /* falls inside a "ñ" */
    assert_int_equal(text_analyze(*state, &s, big, len, NULL, &d), 0);
    assert_int_equal(d.stats.truncated, 1);
    assert_int_equal(d.stats.n_invalid, 0);
    assert_true(d.n_tokens > 900 && d.n_tokens <= 1024);
    for (unsigned i = 0; i < d.n_tokens; i++)
        assert_string_equal(text_surface(&d, &d.tokens[i]), "ñandú");
    assert_string_equal(d.lang, "english"); /* no function words: default */

    /* max_tokens cuts too */
    s.max_bytes = 1u << 21;
    s.max_tokens = 10;
    assert_int_equal(text_analyze(*state, &s, big, len, NULL, &d), 0);
    assert_int_equal(d.n_tokens, 10);
    assert_int_equal(d.stats.truncated, 1);
    free(big);
}

static void
test_limits(void **state)
{
    struct clf_settings s;
    struct text_doc d;
    const char *t = "one two three four five";
    settings_init(&s, "english");
    s.max_tokens = 3;
    assert_int_equal(text_analyze(*state, &s, t, strlen(t), NULL, &d), 0);
    assert_int_equal(d.n_tokens, 3);
    assert_int_equal(d.stats.truncated, 1);

    s.max_tokens = 5; /* exactly enough: not truncated */
    assert_int_equal(text_analyze(*state, &s, t, strlen(t), NULL, &d), 0);
    assert_int_equal(d.n_tokens, 5);
    assert_int_equal(d.stats.truncated, 0);

    s.max_tokens = 1024;
    s.max_bytes = 7; /* "one two" */
    assert_int_equal(text_analyze(*state, &s, t, strlen(t), NULL, &d), 0);
    assert_int_equal(d.n_tokens, 2);
    assert_int_equal(d.stats.truncated, 1);

    s.max_bytes = 1;
    assert_int_equal(text_analyze(*state, &s, "\xc3\xb1", 2, NULL, &d), 0);
    assert_int_equal(d.n_tokens, 0); /* the cut never splits "ñ" */
    assert_int_equal(d.stats.n_invalid, 0);

    /* a URL needs two token slots; with one left only the URL fits */
    s.max_bytes = 8192;
    s.max_tokens = 2;
    t = "hi https://bit.ly/x";
    assert_int_equal(text_analyze(*state, &s, t, strlen(t), NULL, &d), 0);
    assert_int_equal(d.n_tokens, 2);
    assert_int_equal(d.tokens[1].kind, TEXT_URL);
    assert_int_equal(d.stats.truncated, 1);

    /* a very long word is capped, a long run of one letter collapses */
    char longw[5000];
    memset(longw, 'k', sizeof(longw));
    s.max_tokens = 1024;
    assert_int_equal(text_analyze(*state, &s, longw, sizeof(longw), NULL, &d),
                     0);
    assert_int_equal(d.n_tokens, 1);
    assert_string_equal(text_surface(&d, &d.tokens[0]), "k");
    for (size_t i = 0; i < sizeof(longw); i++)
        longw[i] = (char)('a' + i % 26);
    assert_int_equal(text_analyze(*state, &s, longw, sizeof(longw), NULL, &d),
                     0);
    assert_int_equal(d.n_tokens, 1);
    assert_int_equal(d.tokens[0].surface_len, 64);
}

static void
test_lang_hint(void **state)
{
    struct clf_settings s;
    struct text_doc d;
    const char *t = "the cats are running to the house";
    settings_init(&s, "english,spanish");
    assert_int_equal(text_analyze(*state, &s, t, strlen(t), NULL, &d), 0);
    assert_string_equal(d.lang, "english");
    assert_string_equal(text_str(&d, &d.tokens[1]), "cat");

    assert_int_equal(text_analyze(*state, &s, t, strlen(t), "es", &d), 0);
    assert_string_equal(d.lang, "spanish");
    assert_int_equal(text_analyze(*state, &s, t, strlen(t), "Spanish", &d), 0);
    assert_string_equal(d.lang, "spanish");
    assert_int_equal(text_analyze(*state, &s, t, strlen(t), "es-MX", &d), 0);
    assert_string_equal(d.lang, "spanish");

    /* a hint for a language that is not configured is ignored */
    assert_int_equal(text_analyze(*state, &s, t, strlen(t), "fr", &d), 0);
    assert_string_equal(d.lang, "english");
    assert_int_equal(text_analyze(*state, &s, t, strlen(t), "zz", &d), 0);
    assert_string_equal(d.lang, "english");
    assert_int_equal(text_analyze(*state, &s, t, strlen(t), "", &d), 0);
    assert_string_equal(d.lang, "english");

    /* detection without a hint */
    t = "los gatos están corriendo a la casa de mi madre";
    assert_int_equal(text_analyze(*state, &s, t, strlen(t), NULL, &d), 0);
    assert_string_equal(d.lang, "spanish");
    assert_string_equal(text_str(&d, &d.tokens[1]), "gat");
    /* one function word and two acute vowels: Spanish; one accent alone
     * in English text (a loanword) is not enough */
    t = "Ojal\xc3\xa1 te mueras, maldito imb\xc3\xa9"
        "cil.";
    assert_int_equal(text_analyze(*state, &s, t, strlen(t), NULL, &d), 0);
    assert_string_equal(d.lang, "spanish");
    t = "a caf\xc3\xa9 with good coffee";
    assert_int_equal(text_analyze(*state, &s, t, strlen(t), NULL, &d), 0);
    assert_string_equal(d.lang, "english");
    /* a short, ambiguous text gets the default */
    t = "no";
    assert_int_equal(text_analyze(*state, &s, t, strlen(t), NULL, &d), 0);
    assert_string_equal(d.lang, "english");
    snprintf(s.default_language, CLF_LANG_MAX, "spanish");
    assert_int_equal(text_analyze(*state, &s, t, strlen(t), NULL, &d), 0);
    assert_string_equal(d.lang, "spanish");

    /* more languages configured; a language outside the word lists */
    settings_init(&s, "english,spanish,french,german,russian");
    t = "je ne sais pas ce que tu veux dire";
    assert_int_equal(text_analyze(*state, &s, t, strlen(t), NULL, &d), 0);
    assert_string_equal(d.lang, "french");
    t = "ich weiß nicht, was du meinst, aber das ist gut";
    assert_int_equal(text_analyze(*state, &s, t, strlen(t), NULL, &d), 0);
    assert_string_equal(d.lang, "german");
    t = "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 "
        "\xd0\xbc\xd0\xb8\xd1\x80"; /* привет мир */
    assert_int_equal(text_analyze(*state, &s, t, strlen(t), NULL, &d), 0);
    assert_string_equal(d.lang, "russian");
    assert_string_equal(text_surface(&d, &d.tokens[1]),
                        "\xd0\xbc\xd0\xb8\xd1\x80");

    /* a bad configured name does not crash: its words keep their surface */
    settings_init(&s, "klingon");
    t = "running dogs";
    assert_int_equal(text_analyze(*state, &s, t, strlen(t), NULL, &d), 0);
    assert_string_equal(d.lang, "english");
}

static void
test_language_names(void **state)
{
    (void)state;
    assert_string_equal(text_language_name("en"), "english");
    assert_string_equal(text_language_name("es"), "spanish");
    assert_string_equal(text_language_name("EN"), "english");
    assert_string_equal(text_language_name("english"), "english");
    assert_string_equal(text_language_name("Portuguese"), "portuguese");
    assert_string_equal(text_language_name("pt-BR"), "portuguese");
    assert_string_equal(text_language_name("de"), "german");
    assert_string_equal(text_language_name("ru"), "russian");
    assert_null(text_language_name("xx"));
    assert_null(text_language_name(""));
    assert_null(text_language_name(NULL));
    assert_null(text_language_name("englishhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh"));
    assert_string_equal(text_language_code("english"), "en");
    assert_string_equal(text_language_code("spanish"), "es");
    assert_string_equal(text_language_code("porter"), "porter");
}

static void
test_reuse(void **state)
{
    /* the same analyzer over many calls gives the same answers (the stem
     * cache and reused buffers keep no state between comments) */
    struct clf_settings s;
    struct text_doc d;
    settings_init(&s, "english,spanish");
    const char *a = "Running runners RUN quickly to the houses";
    const char *b = "los perros corren rápidamente a las casas";
    char first[512] = "", again[512] = "";
    for (int round = 0; round < 3; round++) {
        char *dst = round == 0 ? first : again;
        dst[0] = '\0';
        for (int k = 0; k < 2; k++) {
            const char *t = k ? b : a;
            assert_int_equal(text_analyze(*state, &s, t, strlen(t), NULL, &d),
                             0);
            for (unsigned i = 0; i < d.n_tokens; i++) {
                strncat(dst, text_str(&d, &d.tokens[i]), 500 - strlen(dst));
                strncat(dst, " ", 500 - strlen(dst));
            }
        }
        if (round)
            assert_string_equal(first, again);
    }
    assert_string_equal(first, "run runner run quick to the hous "
                               "los perr corr rapid a las cas ");
}

static void
test_fuzz_regressions(void **state)
{
    /* inputs that once broke the tokeniser (from fuzz/fuzz_text.c) */
    static const struct {
        const char *s;
        size_t len;
    } cases[] = {
        {"&#", 2},
        {"&amp;", 5},
        {"&amp;&", 6},
        {"&amp;#1114111;", 14},
        {"\xe2\x83\xa3", 3},                 /* keycap mark alone */
        {"1\xef\xb8\x8f\xe2\x83\xa3", 7},    /* 1️⃣ */
        {"\xf0\x9f\x91\x8d\xe2\x80\x8d", 7}, /* 👍 + ZWJ at the end */
        {"\xe2\x80\x8d\xf0\x9f\x91\x8d", 7}, /* ZWJ before an emoji */
        {"a\xcc\x81\xcc\x81\xcc\x81", 7},    /* a + 3 acute accents */
        {"\xcc\x81", 2},                     /* a mark alone */
        {"http://", 7},
        {"http://www.", 11}, /* once an endless loop: "www." and no host */
        {"www.", 4},
        {"@", 1},
        {"$", 1},
        {"a$", 2},
        {"f*", 2},
        {"*", 1},
        {"a.b", 3},
        {"a.b.", 4},
        {"x@y.", 4},
        {"1.", 2},
        {"\xef\xb7\xba", 3}, /* U+FDFA: 18 code points under NFKC */
        {"\x00\x00", 2},
    };
    struct clf_settings s;
    struct text_doc d;
    settings_init(&s, "english,spanish");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(
            text_analyze(*state, &s, cases[i].s, cases[i].len, NULL, &d), 0);
        for (unsigned t = 0; t < d.n_tokens; t++) {
            assert_int_equal(strlen(text_str(&d, &d.tokens[t])),
                             d.tokens[t].len);
            assert_true(d.tokens[t].len > 0);
        }
    }
}

/* ---- tools ----------------------------------------------------------------
 */

/* Decode a JSON string whose opening quote is just before p; returns the
 * position after the closing quote. */
static const char *
json_string(const char *p, struct buf *out)
{
    out->len = 0;
    buf_add(out, "", 0);
    while (*p && *p != '"') {
        if (*p == '\\' && p[1] == 'u') {
            uint32_t v = 0;
            p += 2;
            for (int k = 0; k < 4 && hexval(*p) >= 0; k++, p++)
                v = v * 16 + (uint32_t)hexval(*p);
            if (v >= 0xd800 && v < 0xdc00 && p[0] == '\\' && p[1] == 'u') {
                uint32_t lo = 0;
                const char *q = p + 2;
                for (int k = 0; k < 4 && hexval(*q) >= 0; k++, q++)
                    lo = lo * 16 + (uint32_t)hexval(*q);
                if (lo >= 0xdc00 && lo < 0xe000) {
                    v = 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00);
                    p = q;
                }
            }
            char tmp[4];
            buf_add(out, tmp, put_utf8(tmp, v));
        } else if (*p == '\\' && p[1]) {
            char e = p[1];
            char c = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
            buf_add(out, &c, 1);
            p += 2;
        } else {
            buf_add(out, p++, 1);
        }
    }
    return *p ? p + 1 : p;
}

/* Minimal JSON: the string value of a top-level key of the object on line,
 * decoded into out.  Returns 0 when found. */
static int
json_get(const char *line, const char *key, struct buf *out)
{
    size_t klen = strlen(key);
    int depth = 0;
    for (const char *p = line; *p;) {
        if (*p == '{' || *p == '[') {
            depth++;
            p++;
        } else if (*p == '}' || *p == ']') {
            depth--;
            p++;
        } else if (*p == '"') {
            const char *s = p + 1;
            p = json_string(s, out);
            int match = depth == 1 && out->len == klen &&
                        memcmp(out->p, key, klen) == 0;
            while (*p == ' ')
                p++;
            if (*p != ':' || !match)
                continue;
            p++;
            while (*p == ' ')
                p++;
            if (*p != '"')
                return -1;
            json_string(p + 1, out);
            return 0;
        } else {
            p++;
        }
    }
    return -1;
}

static int
langacc(int argc, char **argv)
{
    static const char *const configs[] = {
        "english,spanish",
        "english,spanish,french,portuguese,italian,german,dutch",
    };
    struct text_analyzer *ta = text_analyzer_new();
    if (!ta)
        return 1;
    for (size_t c = 0; c < 2; c++) {
        struct clf_settings s;
        settings_init(&s, configs[c]);
        printf("languages %s (default english)\n", configs[c]);
        for (int a = 0; a < argc; a++) {
            size_t len;
            char *all = read_file(argv[a], &len);
            if (!all) {
                fprintf(stderr, "%s: cannot read\n", argv[a]);
                continue;
            }
            unsigned n[2] = {0, 0}, ok[2] = {0, 0};
            char want_code[8] = "";
            struct buf text = {0}, lang = {0};
            char *save = NULL;
            for (char *line = strtok_r(all, "\n", &save); line;
                 line = strtok_r(NULL, "\n", &save)) {
                if (json_get(line, "text", &text) ||
                    json_get(line, "lang", &lang))
                    continue;
                snprintf(want_code, sizeof(want_code), "%s", lang.p);
                struct text_doc d;
                if (text_analyze(ta, &s, text.p, text.len, NULL, &d))
                    return 1;
                int k = strcmp(want_code, "en") == 0 ? 0 : 1;
                n[k]++;
                int right = strcmp(text_language_code(d.lang), want_code) == 0;
                ok[k] += right;
                if (!right && getenv("LANGACC_SHOW") && c == 0)
                    printf("    miss (%s): %s\n", d.lang, text.p);
            }
            for (int k = 0; k < 2; k++)
                if (n[k])
                    printf("  %-48s %s: %5u/%5u = %.1f%%\n", argv[a],
                           k ? want_code : "en", ok[k], n[k],
                           100.0 * ok[k] / n[k]);
            free(text.p);
            free(lang.p);
            free(all);
        }
    }
    text_analyzer_free(ta);
    return 0;
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double
bench_one(struct text_analyzer *ta, const struct clf_settings *s, char **texts,
          size_t *lens, size_t n, unsigned rounds)
{
    struct text_doc d;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) /* warm up */
        text_analyze(ta, s, texts[i], lens[i], NULL, &d);
    double t0 = now_s();
    for (unsigned r = 0; r < rounds; r++)
        for (size_t i = 0; i < n; i++) {
            text_analyze(ta, s, texts[i], lens[i], NULL, &d);
            total += d.n_tokens;
        }
    double dt = now_s() - t0;
    (void)total;
    return dt * 1e9 / ((double)rounds * (double)n);
}

static int
bench(int argc, char **argv)
{
    static const char *const shorts[] = {
        "Check out my channel for more videos, thanks!",
        "This is the best song ever, I love it so much",
        "you are such an idiot, nobody cares about you",
        "Great post, thanks for sharing this with us!!",
        "lol this guy is so stupid he can't even spell",
        "Subscribe to my channel and win a free iPhone",
        "I don't agree with you but that's fine really",
        "what a waste of time, this video sucks so bad",
    };
    enum { N = 64 };
    char *texts[N];
    size_t lens[N];
    struct clf_settings s;
    struct text_analyzer *ta = text_analyzer_new();
    settings_init(&s, "english,spanish");
    for (size_t i = 0; i < N; i++) {
        const char *a = shorts[i % 8], *b = shorts[(i * 3 + 1) % 8];
        texts[i] = malloc(128);
        lens[i] = (size_t)snprintf(texts[i], 128, "%.30s %.30s", a, b);
    }
    /* TEXT_BENCH_DIV=100 makes a run short enough for callgrind */
    const char *div_env = getenv("TEXT_BENCH_DIV");
    unsigned div = div_env && atoi(div_env) > 0 ? (unsigned)atoi(div_env) : 1;
    double ns_short = bench_one(ta, &s, texts, lens, N, 20000 / div + 1);
    size_t sum = 0;
    for (size_t i = 0; i < N; i++)
        sum += lens[i];
    printf("short ASCII (%zu bytes avg): %.0f ns/comment\n", sum / N, ns_short);
    for (size_t i = 0; i < N; i++) {
        free(texts[i]);
        texts[i] = malloc(600);
        size_t l = 0;
        for (size_t k = i; l < 500; k++)
            l += (size_t)snprintf(texts[i] + l, 600 - l, "%s ",
                                  shorts[(k * 5) % 8]);
        lens[i] = 500;
    }
    double ns_long = bench_one(ta, &s, texts, lens, N, 2000 / div + 1);
    printf("500-byte ASCII: %.0f ns/comment\n", ns_long);
    for (size_t i = 0; i < N; i++)
        free(texts[i]);

    for (int a = 0; a < argc; a++) { /* real comments from JSON Lines */
        size_t len, n = 0, cap = 0, bytes = 0;
        char *all = read_file(argv[a], &len);
        char **tx = NULL;
        size_t *tl = NULL;
        struct buf text = {0};
        char *save = NULL;
        if (!all)
            continue;
        for (char *line = strtok_r(all, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
            if (json_get(line, "text", &text))
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 1024;
                tx = realloc(tx, cap * sizeof(*tx));
                tl = realloc(tl, cap * sizeof(*tl));
            }
            tx[n] = malloc(text.len + 1);
            memcpy(tx[n], text.p, text.len + 1);
            tl[n] = text.len;
            bytes += text.len;
            n++;
        }
        if (n) {
            double ns = bench_one(ta, &s, tx, tl, n, 5);
            printf("%s: %zu comments, %zu bytes avg: %.0f ns/comment\n",
                   argv[a], n, bytes / n, ns);
        }
        for (size_t i = 0; i < n; i++)
            free(tx[i]);
        free(tx);
        free(tl);
        free(text.p);
        free(all);
    }
    text_analyzer_free(ta);
    return 0;
}

static int
dump_stdin(void)
{
    size_t len;
    char *all = read_file("/dev/stdin", &len);
    struct clf_settings s;
    struct buf out = {0};
    struct text_analyzer *ta = text_analyzer_new();
    if (!all || !ta)
        return 1;
    settings_init(&s, "english,spanish");
    dump_lines(ta, &s, all, &out);
    if (out.p)
        fputs(out.p, stdout);
    free(out.p);
    free(all);
    text_analyzer_free(ta);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--langacc") == 0)
        return langacc(argc - 2, argv + 2);
    if (argc > 1 && strcmp(argv[1], "--bench") == 0)
        return bench(argc - 2, argv + 2);
    if (argc > 1 && strcmp(argv[1], "--dump") == 0)
        return dump_stdin();

    const struct CMUnitTest tests[] = {
        GOLDEN("english"),
        GOLDEN("spanish"),
        GOLDEN("obfuscation"),
        GOLDEN("urls"),
        GOLDEN("emoji"),
        GOLDEN("invalid"),
        GOLDEN("invisible"),
        GOLDEN("entities"),
        GOLDEN("scripts"),
        cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_only_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_1mb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lang_hint, setup, teardown),
        cmocka_unit_test(test_language_names),
        cmocka_unit_test_setup_teardown(test_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fuzz_regressions, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
