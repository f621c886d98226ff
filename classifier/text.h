/*
 * text.h - from raw comment bytes to a token stream (internal to the
 * classifier library).
 *
 * text_analyze() validates UTF-8 (invalid sequences become U+FFFD and are
 * counted), removes invisible characters without splitting words, applies
 * NFKC case folding (with an ASCII fast path), folds obfuscation (digits and
 * symbols inside words, stretched letters, s p a c e d letters, look-alike
 * letters from other scripts), splits into typed tokens, detects the
 * language among the configured ones and stems words in that language.
 *
 * Memory: the analyzer owns every buffer; the tokens and strings in a
 * struct text_doc are borrowed and valid until the next text_analyze() call
 * or text_analyzer_free().  One analyzer per thread.  After warm-up, a call
 * allocates nothing (buffers are reused; the stem cache is bounded).
 */
#ifndef MODFILTER_TEXT_H
#define MODFILTER_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "classifier.h"

enum text_kind {
    TEXT_WORD = 0, /* a word: str is its stem, surface the folded word */
    TEXT_NUMBER,   /* digits (with . , separators): str as written */
    TEXT_URL,      /* a whole URL, folded, scheme and "www." removed */
    TEXT_HOST,     /* the host of the URL just before it ("bit.ly") */
    TEXT_EMAIL,    /* a whole e-mail address, folded */
    TEXT_MENTION,  /* "@name" folded, without the @ */
    TEXT_EMOJI,    /* one emoji (or pictograph) as UTF-8 */
};

#define TEXT_F_OBFUSCATED 0x01u /* folding changed the word (f*ck, id10t) */
#define TEXT_F_UPPER 0x02u      /* the original word was all capitals */

/* Offsets into the document's arena (text_str, text_surface): the
 * analyser hands its own tokens out, without a pass to make pointers. */
struct text_token {
    uint32_t str; /* NUL-terminated; stem for words */
    uint32_t len;
    uint32_t surface; /* NUL-terminated folded form before stemming */
    uint32_t surface_len;
    uint64_t surface_hash; /* XXH3_64bits(surface, surface_len) */
    uint64_t str_hash;     /* XXH3_64bits(str, len) */
    uint8_t kind;          /* enum text_kind */
    uint8_t flags;
};

struct text_stats {
    uint32_t n_chars;       /* code points after cleaning */
    uint32_t n_letters;     /* alphabetic code points */
    uint32_t n_upper;       /* upper-case letters in the original text */
    uint32_t n_emoji;       /* emoji tokens */
    uint32_t n_urls;        /* URL tokens */
    uint32_t n_invalid;     /* invalid UTF-8 sequences replaced */
    uint32_t n_invisible;   /* invisible characters removed */
    uint32_t max_punct_run; /* longest run of the same punctuation mark */
    uint32_t truncated;     /* 1 if max_bytes or max_tokens cut the text */
};

struct text_doc {
    const struct text_token *tokens; /* borrowed, n_tokens of them */
    const char *arena;               /* borrowed: the tokens' text */
    unsigned n_tokens;
    struct text_stats stats;
    char lang[CLF_LANG_MAX]; /* Snowball name of the language used */
    uint64_t lang_hash;      /* XXH3_64bits of lang */
};

static inline const char *
text_str(const struct text_doc *d, const struct text_token *t)
{
    return d->arena + t->str;
}

static inline const char *
text_surface(const struct text_doc *d, const struct text_token *t)
{
    return d->arena + t->surface;
}

struct text_analyzer;

struct text_analyzer *text_analyzer_new(void);     /* NULL if out of memory */
void text_analyzer_free(struct text_analyzer *ta); /* NULL-safe */

/*
 * Analyse len bytes of text (any bytes; need not be NUL-terminated) with
 * the settings' limits, languages and default language.  lang_hint: NULL
 * or an ISO 639-1 code / Snowball name; used when it names a configured
 * language, else the language is detected (short or ambiguous text gets the
 * default language).  Returns 0, or -1 when out of memory.
 */
int text_analyze(struct text_analyzer *ta, const struct clf_settings *s,
                 const char *text, size_t len, const char *lang_hint,
                 struct text_doc *out);

/* The Snowball name for an ISO 639-1 code or a Snowball name ("en" ->
 * "english"); NULL if libstemmer does not know it. Static storage. */
const char *text_language_name(const char *code_or_name);

/* ISO 639-1 code for a Snowball name ("english" -> "en"), or the name
 * itself when it has none. Static storage. */
const char *text_language_code(const char *name);

#endif
