/* util.c - clocks, small-file reading and constant-time comparison shared
 * by the daemon modules. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "modfilterd.h"

long long
util_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double
util_monotonic(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *
util_read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = NULL;
    char *buf = NULL;
    size_t n = 0;
    int saved;

    f = fopen(path, "rb");
    if (f == NULL)
        goto fail;
    buf = malloc(max + 2);
    if (buf == NULL)
        goto fail;
    n = fread(buf, 1, max + 1, f);
    if (ferror(f))
        goto fail;
    if (n > max) {
        errno = EFBIG;
        goto fail;
    }
    buf[n] = '\0';
    fclose(f);
    if (len != NULL)
        *len = n;
    return buf;
fail:
    saved = errno;
    free(buf);
    if (f != NULL)
        fclose(f);
    errno = saved;
    return NULL;
}

int
util_ct_equal(const char *a, size_t a_len, const char *b, size_t b_len)
{
    unsigned char diff = (unsigned char)(a_len != b_len);
    size_t i;

    /* Walk a's whole length whatever matched; b is read modulo its length
     * so it stays in bounds. */
    if (b_len == 0)
        return a_len == 0;
    for (i = 0; i < a_len; i++)
        diff |= (unsigned char)(a[i] ^ b[i % b_len]);
    return diff == 0;
}

int
util_each_line(const char *path, size_t max,
               int (*fn)(void *arg, const char *line, size_t len, char *err,
                         size_t errlen),
               void *arg, char *err, size_t errlen)
{
    char *buf, *line, reason[200];
    unsigned lineno = 0;
    size_t len;
    int ret = -1;

    buf = util_read_file(path, max, &len);
    if (buf == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (strlen(buf) != len) {
        snprintf(err, errlen, "%s: holds a NUL byte", path);
        goto done;
    }
    for (line = buf; *line != '\0';) {
        char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        size_t skip = strspn(line, " \t");

        lineno++;
        if (n > 0 && line[n - 1] == '\r')
            n--;
        if (skip < n && line[skip] != '#' &&
            fn(arg, line, n, reason, sizeof(reason)) < 0) {
            snprintf(err, errlen, "%s:%u: %s", path, lineno, reason);
            goto done;
        }
        line = nl ? nl + 1 : line + n;
        if (nl == NULL)
            break;
    }
    ret = 0;
done:
    explicit_bzero(buf, len);
    free(buf);
    return ret;
}

/* Length of the valid UTF-8 sequence (RFC 3629) starting at p (n > 0
 * bytes, p[0] >= 0x80), or 0. */
size_t
util_utf8_len(const unsigned char *p, size_t n)
{
    unsigned char lo = 0x80, hi = 0xbf;
    size_t len, i;

    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        len = 2;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        len = 3;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        len = 4;
    else
        return 0;
    if (p[0] == 0xe0)
        lo = 0xa0; /* overlong */
    else if (p[0] == 0xed)
        hi = 0x9f; /* surrogates */
    else if (p[0] == 0xf0)
        lo = 0x90; /* overlong */
    else if (p[0] == 0xf4)
        hi = 0x8f; /* above U+10FFFF */
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return len;
}
