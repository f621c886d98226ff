/*
 * form.c - application/x-www-form-urlencoded bodies, as Akismet clients
 * send them.  Pure: no I/O, no globals, no logging.
 *
 * Lenient where real clients are sloppy, strict where the result must be
 * safe: '+' is a space, %XX a byte, a '%' without two hex digits stays a
 * literal '%' (PHP's urldecode does the same); empty segments ("a=1&&b=2")
 * are skipped; a segment without '=' is a field with an empty value.  The
 * decoded bytes are then read in the body's charset (the last blog_charset
 * field, else the caller's hint, e.g. the Content-Type charset): UTF-8,
 * ISO-8859-1 or windows-1252 are converted exactly; any other charset is
 * read as UTF-8.  Whatever is not valid UTF-8 after that, and every NUL
 * byte, becomes U+FFFD, so every name and value is valid, NUL-free UTF-8.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "modfilterd.h"

enum form_charset { FORM_UTF8, FORM_LATIN1, FORM_CP1252 };

/* windows-1252 0x80-0x9F; 0 where the code page has no character. */
static const unsigned short form_cp1252[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0,      0x017D, 0,
    0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178,
};

/* A decoded name or value: where it lies in the raw buffer. */
struct form_span {
    size_t off, len;
};

static size_t
form_put_cp(unsigned cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    out[0] = (char)(0xE0 | cp >> 12);
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

/* Length of the well-formed UTF-8 sequence at s (n bytes left), 0 when
 * the bytes there are not one (overlong, surrogate, > U+10FFFF, cut). */
static size_t
form_utf8_len(const unsigned char *s, size_t n)
{
    size_t need, i;
    unsigned cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        need = 2;
        cp = s[0] & 0x1Fu;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        need = 3;
        cp = s[0] & 0x0Fu;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        need = 4;
        cp = s[0] & 0x07u;
    } else {
        return 0;
    }
    if (n < need)
        return 0;
    for (i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3Fu);
    }
    if ((need == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (need == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return need;
}

/* Convert raw bytes in charset cs to NUL-free UTF-8 in out (room for
 * 3 * len + 1 bytes); NUL-terminates; returns the length. */
static size_t
form_to_utf8(const char *raw, size_t len, enum form_charset cs, char *out,
             unsigned *replaced)
{
    const unsigned char *s = (const unsigned char *)raw;
    size_t i = 0, n = 0, k;

    while (i < len) {
        unsigned c = s[i];

        if (c == 0) {
            n += form_put_cp(0xFFFD, out + n);
            (*replaced)++;
            i++;
        } else if (cs == FORM_UTF8 || c < 0x80) {
            k = form_utf8_len(s + i, len - i);
            if (k == 0) {
                n += form_put_cp(0xFFFD, out + n);
                (*replaced)++;
                i++;
            } else {
                memcpy(out + n, s + i, k);
                n += k;
                i += k;
            }
        } else {
            unsigned cp = c;

            if (cs == FORM_CP1252 && c >= 0x80 && c <= 0x9F) {
                cp = form_cp1252[c - 0x80];
                if (cp == 0) {
                    cp = 0xFFFD;
                    (*replaced)++;
                }
            }
            n += form_put_cp(cp, out + n);
            i++;
        }
    }
    out[n] = '\0';
    return n;
}

static enum form_charset
form_charset_of(const char *name, size_t len)
{
    static const char *const latin1[] = {
        "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1",
        "latin-1",    "l1",        "iso-ir-100", "cp819",
    };
    size_t i;

    while (len > 0 && (*name == ' ' || *name == '"')) {
        name++;
        len--;
    }
    while (len > 0 && (name[len - 1] == ' ' || name[len - 1] == '"'))
        len--;
    for (i = 0; i < sizeof(latin1) / sizeof(latin1[0]); i++)
        if (strlen(latin1[i]) == len && !strncasecmp(name, latin1[i], len))
            return FORM_LATIN1;
    if ((len == 12 && !strncasecmp(name, "windows-1252", len)) ||
        (len == 6 && !strncasecmp(name, "cp1252", len)))
        return FORM_CP1252;
    return FORM_UTF8;
}

int
form_parse(const char *body, size_t len, const char *charset_hint,
           struct form *out, char *err, size_t errlen)
{
    struct form_span *spans = NULL; /* name, value per field */
    char *raw = NULL, *arena = NULL;
    enum form_charset cs;
    size_t i, n = 0, used = 0, raw_len = 0, room;
    const char *p = body, *end = body + len;
    int ret = -1;

    memset(out, 0, sizeof(*out));
    /* Fields are the non-empty '&'-separated segments. */
    for (i = 0; i < len; i++)
        n += body[i] != '&' && (i == 0 || body[i - 1] == '&');
    if (n > FORM_MAX_FIELDS) {
        snprintf(err, errlen, "more than %d form fields", FORM_MAX_FIELDS);
        goto fail;
    }
    spans = calloc(2 * n + 1, sizeof(*spans));
    raw = malloc(len + 1);
    if (spans == NULL || raw == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    n = 0;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *seg_end = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(seg_end - p));
        const char *name_end = eq ? eq : seg_end;

        if (seg_end > p) {
            spans[2 * n].off = raw_len;
            spans[2 * n].len =
                httpparse_decode(p, (size_t)(name_end - p), raw + raw_len, 1);
            raw_len += spans[2 * n].len;
            spans[2 * n + 1].off = raw_len;
            spans[2 * n + 1].len =
                eq ? httpparse_decode(eq + 1, (size_t)(seg_end - eq - 1),
                                      raw + raw_len, 1)
                   : 0;
            raw_len += spans[2 * n + 1].len;
            n++;
        }
        p = amp ? amp + 1 : end;
    }
    /* The charset: the last blog_charset field, else the hint. */
    cs = charset_hint ? form_charset_of(charset_hint, strlen(charset_hint))
                      : FORM_UTF8;
    for (i = n; i-- > 0;)
        if (spans[2 * i].len == 12 &&
            !memcmp(raw + spans[2 * i].off, "blog_charset", 12)) {
            cs = form_charset_of(raw + spans[2 * i + 1].off,
                                 spans[2 * i + 1].len);
            break;
        }
    out->charset = cs == FORM_LATIN1   ? "iso-8859-1"
                   : cs == FORM_CP1252 ? "windows-1252"
                                       : "utf-8";
    room = 3 * raw_len + 2 * n + 1;
    arena = malloc(room);
    out->fields = calloc(n ? n : 1, sizeof(*out->fields));
    if (arena == NULL || out->fields == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (i = 0; i < n; i++) {
        struct form_field *f = &out->fields[i];

        f->name = arena + used;
        f->name_len = form_to_utf8(raw + spans[2 * i].off, spans[2 * i].len, cs,
                                   f->name, &out->replaced);
        used += f->name_len + 1;
        f->value = arena + used;
        f->value_len =
            form_to_utf8(raw + spans[2 * i + 1].off, spans[2 * i + 1].len, cs,
                         f->value, &out->replaced);
        used += f->value_len + 1;
    }
    out->n = (unsigned)n;
    out->arena = arena;
    arena = NULL;
    ret = 0;
fail:
    if (ret < 0) {
        free(out->fields);
        memset(out, 0, sizeof(*out));
    }
    free(arena);
    free(raw);
    free(spans);
    return ret;
}

const char *
form_get(const struct form *f, const char *name, size_t *len)
{
    size_t name_len = strlen(name);
    unsigned i;

    for (i = f->n; i-- > 0;)
        if (f->fields[i].name_len == name_len &&
            !memcmp(f->fields[i].name, name, name_len)) {
            if (len != NULL)
                *len = f->fields[i].value_len;
            return f->fields[i].value;
        }
    if (len != NULL)
        *len = 0;
    return NULL;
}

void
form_release(struct form *f)
{
    if (f == NULL)
        return;
    free(f->fields);
    free(f->arena);
    memset(f, 0, sizeof(*f));
}
