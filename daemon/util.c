/* util.c - clocks and small-file reading shared by the daemon modules. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
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
