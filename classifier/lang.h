/*
 * lang.h - language names and the function-word table behind language
 * detection (internal to the classifier library).
 *
 * Detection is deliberately simple and fast: a comment's folded words are
 * looked up in built-in lists of very frequent function words ("the", "que",
 * "und", ...) and each hit scores a point for every language whose list holds
 * the word; a few script and letter hints (ñ ¿ ¡, Cyrillic, Greek, Arabic)
 * add points.  text.c makes the decision among the configured languages.
 */
#ifndef MODFILTER_LANG_H
#define MODFILTER_LANG_H

#include <stddef.h>
#include <stdint.h>

/* Languages with built-in detection evidence (word lists or a script). */
enum lang_id {
    LANG_EN = 0,
    LANG_ES,
    LANG_FR,
    LANG_PT,
    LANG_IT,
    LANG_DE,
    LANG_NL,
    LANG_RU, /* Cyrillic script */
    LANG_EL, /* Greek script */
    LANG_AR, /* Arabic script */
    LANG_COUNT
};

/* The lang_id of a Snowball name, or -1 when there is no evidence for it. */
int lang_id(const char *snowball_name);

/* The Snowball name (libstemmer's static string) for an ISO 639-1 code or a
 * Snowball name, case-insensitive; "en-US" / "es_MX" work too.  NULL if
 * libstemmer does not know the language. */
const char *lang_name(const char *code_or_name);

/* ISO 639-1 code for a Snowball name, or the name itself when it has none. */
const char *lang_code(const char *name);

/* The function-word table: built once per analyzer (no global state). */
struct lang_table;

struct lang_table *lang_table_new(void);    /* NULL if out of memory */
void lang_table_free(struct lang_table *t); /* NULL-safe */

/* Bit mask (1u << lang_id) of the lists holding word (len bytes, folded
 * UTF-8, hash = XXH3_64bits of it); 0 if none. */
unsigned lang_table_mask(const struct lang_table *t, const char *word,
                         size_t len, uint64_t hash);

#endif
