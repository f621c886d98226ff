/*
 * jsonw.c - the JSON writer of jsonw.h.
 */
#include "jsonw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modfilterd.h"

#define JSONW_KEEP_MAX (1u << 20) /* bytes kept across jsonw_reset */

void
jsonw_init(struct jsonw *w)
{
    memset(w, 0, sizeof(*w));
}

void
jsonw_reset(struct jsonw *w)
{
    if (w->cap > JSONW_KEEP_MAX) {
        free(w->buf);
        w->buf = NULL;
        w->cap = 0;
    }
    w->len = 0;
    if (w->buf != NULL)
        w->buf[0] = '\0';
    w->depth = 0;
    w->more = 0;
    w->after_key = 0;
    w->failed = 0;
}

void
jsonw_release(struct jsonw *w)
{
    if (w == NULL)
        return;
    free(w->buf);
    jsonw_init(w);
}

int
jsonw_failed(const struct jsonw *w)
{
    return w->failed;
}

/* Out of memory: the text is lost (failed stays set until reset). */
static int
jsonw_fail(struct jsonw *w)
{
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
    w->failed = 1;
    return -1;
}

int
jsonw_grow(struct jsonw *w, size_t n)
{
    size_t cap = w->cap ? w->cap : 1024;
    char *p;

    if (w->failed)
        return -1;
    while (cap < w->len + n + 1) {
        if (cap > SIZE_MAX / 2)
            return jsonw_fail(w);
        cap *= 2;
    }
    p = realloc(w->buf, cap);
    if (p == NULL)
        return jsonw_fail(w);
    w->buf = p;
    w->cap = cap;
    return 0;
}

/* 1 for the bytes copied as they are: printable ASCII but '"' and '\\'. */
static const unsigned char jsonw_plain[256] = {
    ['\x20'] = 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* " */
    ['\x30'] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    ['\x40'] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    ['\x50'] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* \ */
    ['\x60'] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    ['\x70'] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

/* The rest of a string from p (its opening quote and what came before p
 * written, room made), escaped, and its closing quote. */
static void
jsonw_quoted_rest(struct jsonw *w, const unsigned char *p,
                  const unsigned char *end)
{
    static const char hex[] = "0123456789abcdef";

    while (p < end) {
        char *o = w->buf + w->len;
        size_t k;

        /* Words, then byte by byte up to the next byte that needs a look:
         * no call to memcpy for short runs. */
        jsonw_copy_plain(&o, &p, end);
        while (p < end && jsonw_plain[*p])
            *o++ = (char)*p++;
        w->len = (size_t)(o - w->buf);
        if (p == end)
            break;
        if (*p >= 0x80) {
            k = util_utf8_len(p, (size_t)(end - p));
            if (k == 0) {
                memcpy(o, "\xef\xbf\xbd", 3);
                w->len += 3;
                p++;
            } else {
                memcpy(o, p, k);
                w->len += k;
                p += k;
            }
            continue;
        }
        o[0] = '\\';
        w->len += 2;
        switch (*p) {
        case '"':
        case '\\':
            o[1] = (char)*p;
            break;
        case '\b':
            o[1] = 'b';
            break;
        case '\f':
            o[1] = 'f';
            break;
        case '\n':
            o[1] = 'n';
            break;
        case '\r':
            o[1] = 'r';
            break;
        case '\t':
            o[1] = 't';
            break;
        default:
            memcpy(o + 1, "u00", 3);
            o[4] = hex[*p >> 4];
            o[5] = hex[*p & 15];
            w->len += 4;
            break;
        }
        p++;
    }
    w->buf[w->len++] = '"';
    w->buf[w->len] = '\0';
}

/* The string body with its quotes; escapes take at most 6 bytes per input
 * byte, U+FFFD 3.  Most strings (feature names, ids, labels, times) need
 * no escape: they are checked and copied here, a word at a time for 8
 * bytes or more (the last word overlapping the one before, so that no
 * byte is handled alone), without the escaping loop's call. */
static inline void
jsonw_quoted(struct jsonw *w, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    char *o;
    size_t i = 0;

    if (n > (SIZE_MAX - 3) / 6 || jsonw_room(w, n * 6 + 2) < 0)
        return;
    o = w->buf + w->len;
    *o++ = '"';
    if (n >= 16) {
        for (; i + 16 < n && jsonw_plain16(p + i); i += 16)
            memcpy(o + i, p + i, 16);
        if (i + 16 >= n && jsonw_plain16(end - 16)) {
            memcpy(o + n - 16, end - 16, 16);
            i = n;
        }
    } else if (n >= 8) {
        if (jsonw_plain8(p) && jsonw_plain8(end - 8)) {
            memcpy(o, p, 8);
            memcpy(o + n - 8, end - 8, 8);
            i = n;
        }
    } else {
        for (; i < n && jsonw_plain[p[i]]; i++)
            o[i] = (char)p[i];
    }
    if (i == n) {
        o[n] = '"';
        o[n + 1] = '\0';
        w->len += n + 2;
        return;
    }
    w->len += 1 + i; /* on from the first byte or word needing a look */
    jsonw_quoted_rest(w, p + i, end);
}

void
jsonw_key(struct jsonw *w, const char *key)
{
    jsonw_sep(w);
    jsonw_quoted(w, key, strlen(key));
    jsonw_putc(w, ':');
    w->after_key = 1;
}

void
jsonw_stringn(struct jsonw *w, const char *s, size_t len)
{
    jsonw_sep(w);
    jsonw_quoted(w, s, len);
}

void
jsonw_string(struct jsonw *w, const char *s)
{
    if (s == NULL)
        jsonw_null(w);
    else
        jsonw_stringn(w, s, strlen(s));
}

/* "00" to "99" */
static const char jsonw_pairs[201] =
    "0001020304050607080910111213141516171819202122232425262728293031323334"
    "3536373839404142434445464748495051525354555657585960616263646566676869"
    "707172737475767778798081828384858687888990919293949596979899";

char *
jsonw_digits(unsigned long long v, char *end)
{
    /* two at a time: a received_ms has 13 */
    while (v >= 100) {
        end -= 2;
        memcpy(end, jsonw_pairs + 2 * (v % 100), 2);
        v /= 100;
    }
    if (v >= 10) {
        end -= 2;
        memcpy(end, jsonw_pairs + 2 * v, 2);
    } else {
        *--end = (char)('0' + v);
    }
    return end;
}

void
jsonw_int(struct jsonw *w, long long n)
{
    char buf[24], *end = buf + sizeof(buf), *p;
    unsigned long long v =
        n < 0 ? 0ULL - (unsigned long long)n : (unsigned long long)n;

    p = jsonw_digits(v, end);
    if (n < 0)
        *--p = '-';
    jsonw_raw(w, p, (size_t)(end - p));
}

/* x (finite, 1e-4 <= |x| < 1e6) as "%.6g" would; 0 when it would need an
 * exponent after rounding.  The six digits are made two at a time and
 * copied in fixed-size pieces (out has room for 24 bytes): this runs for
 * every score and reason weight of every reply. */
static size_t
jsonw_fixed6(double x, char *out)
{
    static const double pow10[] = {1e0, 1e1, 1e2, 1e3, 1e4,
                                   1e5, 1e6, 1e7, 1e8, 1e9};
    static const double next[] = {1e-3, 1e-2, 1e-1, 1e0, 1e1,
                                  1e2,  1e3,  1e4,  1e5}; /* 10^(e+1) */
    double ax = fabs(x);
    uint32_t m;
    int e = -4, decimals, point, last;
    char d[16] = "0000000000000000", *o = out; /* digits, '0' after */

    /* 10^e <= ax < 10^(e+1), give or take rounding of the table. */
    while (e < 5 && ax >= next[e + 4])
        e++;
    decimals = 5 - e;
    m = (uint32_t)(ax * pow10[decimals] + 0.5); /* exact: >= 1e5 */
    if (m >= 1000000) { /* rounded up to the next power of ten */
        m /= 10;
        decimals--;
        if (decimals < 0)
            return 0;
    }
    memcpy(d, jsonw_pairs + 2 * (m / 10000), 2); /* six significant digits */
    memcpy(d + 2, jsonw_pairs + 2 * (m / 100 % 100), 2);
    memcpy(d + 4, jsonw_pairs + 2 * (m % 100), 2);
    point = 6 - decimals; /* digits before the point; <= 0: "0.00d" */
    for (last = 5; last >= point && last > 0 && d[last] == '0'; last--)
        ;
    *o = '-';
    o += x < 0;
    if (point <= 0) {
        memcpy(o, "0.000", 5); /* "0." and -point zeros (at most 3) */
        o += 2 - point;
        memcpy(o, d, 6);
        o += last + 1;
    } else {
        /* the integer digits, the point, at least one more digit */
        memcpy(o, d, 6);
        o[point] = '.';
        memcpy(o + point + 1, d + point, 8);
        o += point + 1 + (last < point ? 1 : last - point + 1);
    }
    return (size_t)(o - out);
}

size_t
jsonw_real_text(double x, char *buf)
{
    size_t n = 0;

    if (x == 0) {
        n = signbit(x) ? 4 : 3;
        memcpy(buf, signbit(x) ? "-0.0" : "0.0", n + 1);
        return n;
    }
    if (fabs(x) >= 1e-4 && fabs(x) < 1e6)
        n = jsonw_fixed6(x, buf);
    if (n > 0) {
        buf[n] = '\0';
    } else { /* rare: an exponent */
        int k = snprintf(buf, JSONW_REAL_MAX, "%.6g", x);

        char *e;

        n = k > 0 && k < JSONW_REAL_MAX ? (size_t)k : 0;
        buf[n] = '\0';
        if ((e = strchr(buf, 'e')) != NULL) {
            /* as jansson writes it: "7.2e-5" and "1e6", not printf's
             * "7.2e-05" and "1e+06" */
            char *d = e + 1 + (e[1] == '-'), *z = d + (*d == '+');

            while (*z == '0' && z[1] != '\0')
                z++;
            memmove(d, z, strlen(z) + 1);
            n = strlen(buf);
        } else if (strchr(buf, '.') == NULL && n + 2 < JSONW_REAL_MAX) {
            memcpy(buf + n, ".0", 3);
            n += 2;
        }
    }
    return n;
}

void
jsonw_real(struct jsonw *w, double x)
{
    char buf[JSONW_REAL_MAX];

    if (!isfinite(x)) {
        jsonw_null(w);
        return;
    }
    jsonw_raw(w, buf, jsonw_real_text(x, buf));
}
