/*
 * jsonw.h - a small JSON writer that appends text to one growing buffer.
 *
 * The daemon writes a reply (and for queued comments a Redis record) on
 * every request; building a jansson tree of malloc'd nodes and dumping it
 * cost more than scoring.  This writes the text directly, reusing one
 * buffer per worker.  jansson stays the parser.
 *
 * Contract:
 * - Balanced calls give one RFC 8259 JSON text in buf[0..len), always
 *   NUL-terminated.  Commas are placed by the writer: call jsonw_key before
 *   each member's value inside an object, and nothing between array
 *   elements.  Nesting deeper than JSONW_DEPTH_MAX is a programming error
 *   (assert).
 * - Strings (keys and values) are written with explicit lengths: '"', '\\'
 *   and control characters are escaped (\b \f \n \r \t, else \u00XX, NUL
 *   included); valid UTF-8 is copied as is; each byte that does not start
 *   a valid UTF-8 sequence (overlong forms, surrogates, above U+10FFFF,
 *   truncated) becomes U+FFFD, so the output is always valid UTF-8.
 * - jsonw_real writes a double as jansson's JSON_REAL_PRECISION(6) does:
 *   printf's "%.6g", with ".0" added when that reads as an integer and the
 *   exponent without '+' or leading zeros ("7.2e-5"); NaN and infinities
 *   become null.
 * - Out of memory is sticky: later calls do nothing and jsonw_failed()
 *   returns 1 until jsonw_reset.
 * Threads: a writer belongs to one thread.
 */
#ifndef MODFILTER_JSONW_H
#define MODFILTER_JSONW_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define JSONW_DEPTH_MAX 32

struct jsonw {
    char *buf; /* owned; NUL-terminated; NULL before the first write */
    size_t len, cap;
    unsigned depth;
    uint32_t more; /* bit d: the container at depth d has an element */
    int after_key; /* the next value follows a key: no comma */
    int failed;    /* out of memory */
};

void jsonw_init(struct jsonw *w);
/* Empty the text, keep the memory (bounded: a large buffer is freed). */
void jsonw_reset(struct jsonw *w);
void jsonw_release(struct jsonw *w); /* frees the buffer; NULL-safe */
int jsonw_failed(const struct jsonw *w);

/* jsonw_object_begin, _end, jsonw_array_begin, _end, jsonw_key_plain,
 * jsonw_raw, jsonw_bool, jsonw_null and jsonw_text_end are inline, below:
 * a reply calls them about a hundred times. */
/* A member's key (NUL-terminated), then write its value. */
void jsonw_key(struct jsonw *w, const char *key);
/* A key that is a string literal of plain ASCII (no '"', '\\' or control
 * character), copied without a look: JSONW_KEY(w, "feature"). */
#define JSONW_KEY(w, lit) jsonw_key_plain((w), "\"" lit "\":", sizeof(lit) + 2)
void jsonw_string(struct jsonw *w, const char *s); /* NULL: null */
void jsonw_stringn(struct jsonw *w, const char *s, size_t len);
void jsonw_real(struct jsonw *w, double x);
/* The text jsonw_real writes for a finite x, NUL-terminated into buf of
 * JSONW_REAL_MAX bytes; its length.  For the same text beside JSON (the
 * urgency queue.c sends is the record's highest score, as written). */
#define JSONW_REAL_MAX 40
size_t jsonw_real_text(double x, char *buf);
void jsonw_int(struct jsonw *w, long long n);
/* The decimal digits of v written backwards from end (exclusive, not
 * terminated); returns the first digit.  For text beside JSON too. */
char *jsonw_digits(unsigned long long v, char *end);
/* 1 when none of the 8 bytes at p needs a look in a JSON string: no
 * control character, '"', '\\' or byte >= 0x80 (the classic "has a byte
 * less than n" and "has a zero byte" word tests, exact when no byte is >=
 * 0x80).  For writing strings here and for reading them (request.c). */
static inline int
jsonw_plain8(const unsigned char *p)
{
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    uint64_t v, quote, bslash;

    memcpy(&v, p, 8);
    quote = v ^ (ones * '"');
    bslash = v ^ (ones * '\\');
    return ((v | ((v - ones * 0x20) & ~v) | ((quote - ones) & ~quote) |
             ((bslash - ones) & ~bslash)) &
            high) == 0;
}

/* The same for the 16 bytes at p: one SSE2 compare of each kind (a
 * signed "less than 0x20" is also true for bytes >= 0x80). */
static inline int
jsonw_plain16(const unsigned char *p)
{
#ifdef __SSE2__
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i bad =
        _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
                     _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                  _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));

    return _mm_movemask_epi8(bad) == 0;
#else
    return jsonw_plain8(p) && jsonw_plain8(p + 8);
#endif
}

/* Copies the bytes from *p that need no look (jsonw_plain16 and _8: most
 * of a text), sixteen then eight at a time, to *o, before end; advances
 * both.  Up to 15 such bytes may be left for the caller's byte loop. */
static inline void
jsonw_copy_plain(char **o, const unsigned char **p, const unsigned char *end)
{
    while (end - *p >= 16 && jsonw_plain16(*p)) {
        memcpy(*o, *p, 16);
        *o += 16;
        *p += 16;
    }
    while (end - *p >= 8 && jsonw_plain8(*p)) {
        memcpy(*o, *p, 8);
        *o += 8;
        *p += 8;
    }
}

/* ---- inline ----------------------------------------------------------- */

/* Grows the buffer for n more bytes and the NUL; 0 or -1 (failed: cap is
 * 0).  For jsonw_room. */
int jsonw_grow(struct jsonw *w, size_t n);

/* Room for n more bytes and the NUL; 0 or -1. */
static inline int
jsonw_room(struct jsonw *w, size_t n)
{
    return w->len + n + 1 <= w->cap ? 0 : jsonw_grow(w, n);
}

static inline void
jsonw_append(struct jsonw *w, const void *s, size_t n)
{
    if (jsonw_room(w, n) == 0) {
        memcpy(w->buf + w->len, s, n);
        w->len += n;
        w->buf[w->len] = '\0';
    }
}

static inline void
jsonw_putc(struct jsonw *w, char c)
{
    if (jsonw_room(w, 1) == 0) {
        w->buf[w->len++] = c;
        w->buf[w->len] = '\0';
    }
}

/* The comma before a value or key, unless it follows a key. */
static inline void
jsonw_sep(struct jsonw *w)
{
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (w->more & (1u << w->depth))
        jsonw_putc(w, ',');
    w->more |= 1u << w->depth;
}

static inline void
jsonw_open(struct jsonw *w, char c)
{
    jsonw_sep(w);
    jsonw_putc(w, c);
    assert(w->depth + 1 < JSONW_DEPTH_MAX);
    w->depth++;
    w->more &= ~(1u << w->depth);
}

static inline void
jsonw_close(struct jsonw *w, char c)
{
    assert(w->depth > 0);
    w->depth--;
    jsonw_putc(w, c);
}

static inline void
jsonw_object_begin(struct jsonw *w)
{
    jsonw_open(w, '{');
}

static inline void
jsonw_object_end(struct jsonw *w)
{
    jsonw_close(w, '}');
}

static inline void
jsonw_array_begin(struct jsonw *w)
{
    jsonw_open(w, '[');
}

static inline void
jsonw_array_end(struct jsonw *w)
{
    jsonw_close(w, ']');
}

static inline void
jsonw_key_plain(struct jsonw *w, const char *quoted, size_t len)
{
    jsonw_sep(w);
    jsonw_append(w, quoted, len);
    w->after_key = 1;
}

/* A value that is already JSON text (len bytes), copied as is. */
static inline void
jsonw_raw(struct jsonw *w, const char *json, size_t len)
{
    jsonw_sep(w);
    jsonw_append(w, json, len);
}

/* Bytes after the finished text (a reply's newline), no separator. */
static inline void
jsonw_text_end(struct jsonw *w, const char *s, size_t len)
{
    jsonw_append(w, s, len);
}

static inline void
jsonw_null(struct jsonw *w)
{
    jsonw_raw(w, "null", 4);
}

static inline void
jsonw_bool(struct jsonw *w, int b)
{
    if (b)
        jsonw_raw(w, "true", 4);
    else
        jsonw_raw(w, "false", 5);
}

#endif
