/*
 * httpparse.c - see httpparse.h.  Strict where a lenient reading would let
 * two parsers disagree about where a request ends (obs-fold, Content-Length
 * with Transfer-Encoding, differing Content-Lengths, bad chunk sizes);
 * lenient about bare LF line ends, as evhttp was.
 */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "httpparse.h"

/* RFC 9110 tchar: what a method or field name is made of (ALPHA, DIGIT
 * and !#$%&'*+-.^_`|~), a byte each (every header name byte is looked
 * up). */
static const unsigned char hp_tchar_map[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1,
    ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1, ['0'] = 1, ['1'] = 1,
    ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1,
    ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1,
    ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1,
    ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['^'] = 1, ['_'] = 1,
    ['`'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1,
    ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,
    ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1,
    ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1,
    ['x'] = 1, ['y'] = 1, ['z'] = 1, ['|'] = 1, ['~'] = 1,
};

static int
hp_tchar(unsigned char ch)
{
    return hp_tchar_map[ch];
}

/* 1 when none of the 8 bytes at p is a control character (tab included)
 * or DEL: a field value's bytes are checked a word at a time, a word with
 * a tab or anything refused byte by byte (the "has a byte less than n"
 * and "has a zero byte" word tests). */
static int
hp_plain8(const char *p)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t v, del;

    memcpy(&v, p, 8);
    del = v ^ (ones * 0x7f);
    return (((v - ones * 0x20) & ~v) | ((del - ones) & ~del)) & high ? 0 : 1;
}

static int
hp_hex(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static int
hp_method(const char *m, size_t len)
{
    static const struct {
        const char *name;
        int method;
    } known[] = {
        {"GET", HTTP_METHOD_GET},         {"POST", HTTP_METHOD_POST},
        {"HEAD", HTTP_METHOD_HEAD},       {"PUT", HTTP_METHOD_PUT},
        {"DELETE", HTTP_METHOD_DELETE},   {"OPTIONS", HTTP_METHOD_OPTIONS},
        {"PATCH", HTTP_METHOD_PATCH},     {"TRACE", HTTP_METHOD_TRACE},
        {"CONNECT", HTTP_METHOD_CONNECT},
    };
    size_t i;

    for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strlen(known[i].name) == len && !memcmp(known[i].name, m, len))
            return known[i].method;
    return 0;
}

/* 1 when the len bytes at s are name, ignoring case. */
static int
hp_is(const char *s, size_t len, const char *name)
{
    return strlen(name) == len && !strncasecmp(s, name, len);
}

/* Each comma-separated token of a field value, trimmed. */
static int
hp_next_token(const char **p, const char *end, const char **tok, size_t *len)
{
    const char *s = *p, *e;

    while (s < end && (*s == ' ' || *s == '\t' || *s == ','))
        s++;
    if (s >= end)
        return 0;
    e = memchr(s, ',', (size_t)(end - s));
    if (e == NULL)
        e = end;
    *p = e;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *tok = s;
    *len = (size_t)(e - s);
    return 1;
}

/* The offset just past the empty line ending the head that starts at
 * from, or 0 when buf has none yet. */
static size_t
hp_head_end(const char *buf, size_t len, size_t from)
{
    const char *p = buf + from, *end = buf + len, *nl;

    while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        if (nl + 1 < end && nl[1] == '\n')
            return (size_t)(nl + 2 - buf);
        if (nl + 2 < end && nl[1] == '\r' && nl[2] == '\n')
            return (size_t)(nl + 3 - buf);
        if (nl + 1 >= end || (nl[1] == '\r' && nl + 2 >= end))
            return 0;
        p = nl + 1;
    }
    return 0;
}

/* The framing fields of r: Content-Length, Transfer-Encoding, Connection,
 * Expect.  0 or a negative status. */
static long
hp_semantics(const char *buf, size_t max_body, struct httpparse_request *r)
{
    int close = 0, ka = 0, te = 0;
    unsigned i;

    for (i = 0; i < r->n_fields; i++) {
        const struct httpparse_field *f = &r->fields[i];
        const char *name = buf + f->name, *v = buf + f->value;
        const char *end = v + f->value_len, *tok;
        size_t n, tlen, k;

        switch (f->name_len) {
        case 14: /* Content-Length */
            if (!hp_is(name, 14, "content-length"))
                break;
            if (f->value_len == 0)
                return -400;
            n = 0;
            for (k = 0; k < f->value_len; k++) {
                if (v[k] < '0' || v[k] > '9')
                    return -400;
                if (n > ((size_t)-1 - 9) / 10)
                    n = (size_t)-1; /* far too large: stays too large */
                else
                    n = n * 10 + (size_t)(v[k] - '0');
            }
            if (r->has_length && r->content_length != n)
                return -400;
            r->has_length = 1;
            r->content_length = n;
            break;
        case 17: /* Transfer-Encoding */
            if (!hp_is(name, 17, "transfer-encoding"))
                break;
            while (hp_next_token(&v, end, &tok, &tlen)) {
                if (!hp_is(tok, tlen, "chunked"))
                    return -501;
                if (te++)
                    return -400; /* chunked twice */
            }
            if (te == 0)
                return -400;
            break;
        case 10: /* Connection */
            if (!hp_is(name, 10, "connection"))
                break;
            while (hp_next_token(&v, end, &tok, &tlen)) {
                if (hp_is(tok, tlen, "close"))
                    close = 1;
                else if (hp_is(tok, tlen, "keep-alive"))
                    ka = 1;
            }
            break;
        case 6: /* Expect */
            if (hp_is(name, 6, "expect") &&
                hp_is(v, f->value_len, "100-continue") && r->minor == 1)
                r->expect_continue = 1;
            break;
        default:
            break;
        }
    }
    if (te && r->has_length)
        return -400; /* a smuggling attempt, or a broken client */
    r->chunked = te;
    if (r->has_length && r->content_length > max_body)
        r->too_large = 1;
    r->keep_alive = r->minor == 1 ? !close : (ka && !close);
    if (te && r->minor == 0)
        r->keep_alive = 0; /* RFC 9112 6.1: faulty framing, close after */
    return 0;
}

long
httpparse_head(const char *buf, size_t len, size_t max_head, size_t max_body,
               struct httpparse_request *r)
{
    size_t i = 0, end, line_end, sp, eol;
    const char *p;
    long st;

    while (i < len && (buf[i] == '\r' || buf[i] == '\n'))
        i++;
    if (i > max_head)
        return -431;
    end = hp_head_end(buf, len, i);
    if (end == 0)
        return len > max_head ? -431 : 0;
    if (end > max_head)
        return -431;
    memset(r, 0, offsetof(struct httpparse_request, fields));
    r->head_len = end;
    /* The request line: method SP target SP HTTP/1.x */
    p = memchr(buf + i, '\n', end - i);
    line_end = (size_t)(p - buf);
    eol = line_end > i && buf[line_end - 1] == '\r' ? line_end - 1 : line_end;
    for (sp = i; sp < eol && hp_tchar((unsigned char)buf[sp]); sp++)
        ;
    if (sp == i || sp >= eol || buf[sp] != ' ')
        return -400;
    r->method = hp_method(buf + i, sp - i);
    r->target = ++sp;
    while (sp < eol && (unsigned char)buf[sp] > ' ' && buf[sp] != 0x7f)
        sp++;
    r->target_len = sp - r->target;
    if (r->target_len == 0 || sp >= eol || buf[sp] != ' ')
        return -400;
    sp++;
    if (eol - sp != 8 || memcmp(buf + sp, "HTTP/", 5) || buf[sp + 5] < '0' ||
        buf[sp + 5] > '9' || buf[sp + 6] != '.' || buf[sp + 7] < '0' ||
        buf[sp + 7] > '9')
        return -400;
    if (buf[sp + 5] != '1' || buf[sp + 7] > '1')
        return -505;
    r->minor = buf[sp + 7] - '0';
    if (r->method == 0 || r->method == HTTP_METHOD_TRACE ||
        r->method == HTTP_METHOD_CONNECT)
        return -501;
    /* Header fields, up to the empty line. */
    for (i = line_end + 1; i < end;) {
        struct httpparse_field *f;
        size_t k, v;

        p = memchr(buf + i, '\n', end - i);
        line_end = (size_t)(p - buf);
        eol =
            line_end > i && buf[line_end - 1] == '\r' ? line_end - 1 : line_end;
        if (eol == i)
            break; /* the empty line */
        if (buf[i] == ' ' || buf[i] == '\t')
            return -400; /* obs-fold */
        if (r->n_fields == HTTPPARSE_MAX_FIELDS)
            return -431;
        for (k = i; k < eol && hp_tchar((unsigned char)buf[k]); k++)
            ;
        if (k == i || k >= eol || buf[k] != ':')
            return -400;
        f = &r->fields[r->n_fields++];
        f->name = i;
        f->name_len = k - i;
        for (v = k + 1; v < eol && (buf[v] == ' ' || buf[v] == '\t'); v++)
            ;
        for (k = v; eol - k >= 8 && hp_plain8(buf + k); k += 8)
            ;
        for (; k < eol; k++) {
            unsigned char ch = (unsigned char)buf[k];

            if ((ch < ' ' && ch != '\t') || ch == 0x7f)
                return -400;
        }
        while (k > v && (buf[k - 1] == ' ' || buf[k - 1] == '\t'))
            k--;
        f->value = v;
        f->value_len = k - v;
        i = line_end + 1;
    }
    st = hp_semantics(buf, max_body, r);
    if (st < 0)
        return st;
    return (long)end;
}

const char *
httpparse_field(const struct httpparse_request *r, const char *buf,
                const char *name, size_t *len)
{
    size_t nlen = strlen(name);
    unsigned i;

    for (i = 0; i < r->n_fields; i++)
        if (r->fields[i].name_len == nlen &&
            !strncasecmp(buf + r->fields[i].name, name, nlen)) {
            *len = r->fields[i].value_len;
            return buf + r->fields[i].value;
        }
    return NULL;
}

/* ---- chunked bodies --------------------------------------------------- */

enum { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER, CH_DONE };

void
httpparse_chunked_init(struct httpparse_chunked *c, size_t start)
{
    memset(c, 0, sizeof(*c));
    c->in = c->out = c->start = start;
    c->state = CH_SIZE;
}

/* The chunk-size line buf[from, eol): the size into *size.  0 or a
 * negative status. */
static int
hp_chunk_size(const char *buf, size_t from, size_t eol, size_t room,
              size_t *size)
{
    size_t i = from, n = 0;
    int d;

    while (i < eol && (d = hp_hex((unsigned char)buf[i])) >= 0) {
        if (n > ((size_t)-1 - (size_t)d) / 16)
            return -413;
        n = n * 16 + (size_t)d;
        if (n > room)
            return -413;
        i++;
    }
    if (i == from)
        return -400;
    while (i < eol && (buf[i] == ' ' || buf[i] == '\t'))
        i++;
    if (i < eol && buf[i] != ';')
        return -400;
    for (; i < eol; i++) { /* extensions are ignored, not trusted */
        unsigned char ch = (unsigned char)buf[i];

        if ((ch < ' ' && ch != '\t') || ch == 0x7f)
            return -400;
    }
    *size = n;
    return 0;
}

int
httpparse_chunked(char *buf, size_t len, size_t max_body, size_t max_trailer,
                  struct httpparse_chunked *c)
{
    for (;;) {
        const char *nl;
        size_t line_end, eol, n;
        int st;

        switch (c->state) {
        case CH_SIZE:
            nl = c->in < len ? memchr(buf + c->in, '\n', len - c->in) : NULL;
            if (nl == NULL)
                return len - c->in > HTTPPARSE_MAX_LINE ? -400 : 0;
            line_end = (size_t)(nl - buf);
            if (line_end - c->in > HTTPPARSE_MAX_LINE)
                return -400;
            eol = line_end > c->in && buf[line_end - 1] == '\r' ? line_end - 1
                                                                : line_end;
            st = hp_chunk_size(buf, c->in, eol, max_body - (c->out - c->start),
                               &c->left);
            if (st < 0)
                return st;
            c->in = line_end + 1;
            c->state = c->left == 0 ? CH_TRAILER : CH_DATA;
            break;
        case CH_DATA:
            n = len - c->in < c->left ? len - c->in : c->left;
            if (n == 0)
                return 0;
            if (c->out != c->in)
                memmove(buf + c->out, buf + c->in, n);
            c->out += n;
            c->in += n;
            c->left -= n;
            if (c->left > 0)
                return 0;
            c->state = CH_DATA_END;
            break;
        case CH_DATA_END:
            if (c->in >= len)
                return 0;
            if (buf[c->in] == '\n') {
                c->in++;
            } else if (buf[c->in] == '\r') {
                if (c->in + 1 >= len)
                    return 0;
                if (buf[c->in + 1] != '\n')
                    return -400;
                c->in += 2;
            } else {
                return -400;
            }
            c->state = CH_SIZE;
            break;
        case CH_TRAILER:
            nl = c->in < len ? memchr(buf + c->in, '\n', len - c->in) : NULL;
            if (nl == NULL)
                return c->trailer + (len - c->in) > max_trailer ? -431 : 0;
            line_end = (size_t)(nl - buf);
            c->trailer += line_end + 1 - c->in;
            if (c->trailer > max_trailer)
                return -431;
            eol = line_end > c->in && buf[line_end - 1] == '\r' ? line_end - 1
                                                                : line_end;
            n = c->in;
            c->in = line_end + 1;
            if (eol == n) {
                c->state = CH_DONE;
                return 1;
            }
            break; /* a trailer field: ignored */
        default:
            return 1;
        }
    }
}

size_t
httpparse_chunked_squeeze(char *buf, size_t *len, struct httpparse_chunked *c)
{
    size_t gap = c->in - c->out;

    if (gap == 0)
        return 0;
    memmove(buf + c->out, buf + c->in, *len - c->in);
    *len -= gap;
    c->in = c->out;
    return gap;
}

/* ---- query strings ---------------------------------------------------- */

/* The byte at in[*i] decoded (%XX, and '+' when plus); *i moves past what
 * it took. */
static char
hp_unescape(const char *in, size_t len, size_t *i, int plus)
{
    char ch = in[*i];
    int hi, lo;

    if (ch == '+' && plus)
        ch = ' ';
    else if (ch == '%' && *i + 2 < len &&
             (hi = hp_hex((unsigned char)in[*i + 1])) >= 0 &&
             (lo = hp_hex((unsigned char)in[*i + 2])) >= 0) {
        ch = (char)(hi * 16 + lo);
        *i += 2;
    }
    (*i)++;
    return ch;
}

size_t
httpparse_decode(const char *in, size_t len, char *out, int plus)
{
    size_t i = 0, n = 0;

    while (i < len)
        out[n++] = hp_unescape(in, len, &i, plus);
    return n;
}

long
httpparse_query_get(const char *query, const char *name, char *out,
                    size_t out_len)
{
    const char *p = query;
    size_t nlen = strlen(name);
    long found = -1;

    if (out_len > 0)
        out[0] = '\0';
    while (*p != '\0') {
        const char *amp = strchr(p, '&');
        size_t alen = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', alen);

        if (eq == NULL || eq == p)
            return -2;
        if (found < 0 && (size_t)(eq - p) == nlen && !memcmp(p, name, nlen)) {
            const char *v = eq + 1;
            size_t vlen = alen - nlen - 1, i = 0, n = 0;

            while (i < vlen) {
                char ch = hp_unescape(v, vlen, &i, 1);

                if (n + 1 < out_len) {
                    out[n] = ch;
                    out[n + 1] = '\0';
                }
                n++;
            }
            found = (long)n;
        }
        if (amp == NULL)
            break;
        p = amp + 1;
    }
    return found;
}
