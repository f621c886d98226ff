/*
 * log.c - one line per event: stderr in the foreground (with a UTC time
 * stamp), syslog otherwise.  Thread-safe: each line, or each batch of
 * whole lines, is one write.
 *
 * A worker thread logs a line per request.  In the foreground it buffers
 * them (log_buffer_begin): lines are written when the buffer is full, when
 * the worker flushes (once per event-loop pass, see worker.c), at
 * log_buffer_end, and at once after a warning.  Other threads, and syslog,
 * write each line at once.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "modfilterd.h"

#define LOG_LINE_MAX 1280  /* stamp, tag, message, suffix, newline */
#define LOG_BUF_SIZE 16384 /* a worker's buffered lines */

static int log_foreground = 1;
static int log_level_verbose;

/* This thread's buffered lines (NULL: unbuffered). */
struct log_buf {
    size_t len;
    void (*wake)(void *arg); /* the buffer is no longer empty */
    void *arg;
    char data[LOG_BUF_SIZE];
};
static _Thread_local struct log_buf *log_buf;
/* This thread's last time stamp, to the second. */
static _Thread_local time_t log_stamp_sec = -1;
static _Thread_local char log_stamp[24]; /* "...T23:59:59." */

void
log_init(int foreground, int verbose)
{
    log_foreground = foreground;
    log_level_verbose = verbose;
    if (!foreground)
        openlog("modfilterd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

int
log_verbose(void)
{
    return log_level_verbose;
}

static void
log_write(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(STDERR_FILENO, p, n);

        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return; /* nowhere to report it */
        p += k;
        n -= (size_t)k;
    }
}

void
log_flush(void)
{
    if (log_buf == NULL || log_buf->len == 0)
        return;
    log_write(log_buf->data, log_buf->len);
    log_buf->len = 0;
}

int
log_buffer_begin(void (*wake)(void *arg), void *arg)
{
    if (!log_foreground || log_buf != NULL)
        return 0;
    log_buf = malloc(sizeof(*log_buf));
    if (log_buf == NULL)
        return -1;
    log_buf->len = 0;
    log_buf->wake = wake;
    log_buf->arg = arg;
    return 0;
}

void
log_buffer_end(void)
{
    log_flush();
    free(log_buf);
    log_buf = NULL;
}

size_t
log_cat(char *buf, size_t cap, size_t at, const char *s, size_t n)
{
    if (n > cap - at)
        n = cap - at;
    memcpy(buf + at, s, n);
    return at + n;
}

/* "2026-11-25T23:59:59.123Z modfilterd " into line; its length.  The
 * seconds are formatted once a second per thread. */
static size_t
log_stamp_put(char *line)
{
    struct timespec ts;
    long ms;

    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != log_stamp_sec) {
        struct tm tm;

        gmtime_r(&ts.tv_sec, &tm);
        strftime(log_stamp, sizeof(log_stamp), "%Y-%m-%dT%H:%M:%S.", &tm);
        log_stamp_sec = ts.tv_sec;
    }
    ms = ts.tv_nsec / 1000000;
    memcpy(line, log_stamp, 20);
    line[20] = (char)('0' + ms / 100);
    line[21] = (char)('0' + ms / 10 % 10);
    line[22] = (char)('0' + ms % 10);
    memcpy(line + 23, "Z modfilterd ", 13);
    return 36;
}

/* One line: tag, msg (len bytes, at most 1023 kept, as syslog's) and
 * suffix. */
static void
log_emit(int prio, const char *tag, const char *suffix, const char *msg,
         size_t len)
{
    char line[LOG_LINE_MAX];
    size_t n;

    if (len > 1023)
        len = 1023;
    if (!log_foreground) {
        syslog(prio, "%s%.*s%s%s", tag, (int)len, msg, suffix[0] ? ": " : "",
               suffix);
        return;
    }
    n = log_stamp_put(line);
    n = log_cat(line, LOG_LINE_MAX - 1, n, tag, strlen(tag));
    n = log_cat(line, LOG_LINE_MAX - 1, n, msg, len);
    if (suffix[0]) {
        n = log_cat(line, LOG_LINE_MAX - 1, n, ": ", 2);
        n = log_cat(line, LOG_LINE_MAX - 1, n, suffix, strlen(suffix));
    }
    line[n++] = '\n';
    if (log_buf == NULL) {
        log_write(line, n);
        return;
    }
    if (log_buf->len + n > sizeof(log_buf->data))
        log_flush();
    if (log_buf->len == 0 && log_buf->wake != NULL)
        log_buf->wake(log_buf->arg);
    memcpy(log_buf->data + log_buf->len, line, n);
    log_buf->len += n;
    if (prio <= LOG_WARNING) /* warnings are not held back */
        log_flush();
}

static void
log_vemit(int prio, const char *tag, const char *suffix, const char *fmt,
          va_list ap)
{
    char msg[1024];
    int k = vsnprintf(msg, sizeof(msg), fmt, ap);

    log_emit(prio, tag, suffix, msg,
             k < 0                     ? 0
             : (size_t)k < sizeof(msg) ? (size_t)k
                                       : sizeof(msg) - 1);
}

/* A line with ": strerror(errno)" after it; errno is kept. */
static void
log_verrno(int prio, const char *tag, const char *fmt, va_list ap)
{
    char errbuf[128];
    int saved = errno;

    log_vemit(prio, tag, strerror_r(saved, errbuf, sizeof(errbuf)), fmt, ap);
    errno = saved;
}

void
log_warn(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_verrno(LOG_WARNING, "warning: ", fmt, ap);
    va_end(ap);
}

void
log_err(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_verrno(LOG_ERR, "error: ", fmt, ap);
    va_end(ap);
}

void
log_errx(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vemit(LOG_ERR, "error: ", "", fmt, ap);
    va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vemit(LOG_WARNING, "warning: ", "", fmt, ap);
    va_end(ap);
}

void
log_info(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vemit(LOG_INFO, "", "", fmt, ap);
    va_end(ap);
}

void
log_info_text(const char *msg, size_t len)
{
    log_emit(LOG_INFO, "", "", msg, len);
}

void
log_debug(const char *fmt, ...)
{
    va_list ap;

    if (!log_level_verbose)
        return;
    va_start(ap, fmt);
    log_vemit(LOG_DEBUG, "debug: ", "", fmt, ap);
    va_end(ap);
}
