/*
 * log.c - one line per event: stderr in the foreground (with a UTC time
 * stamp), syslog otherwise.  Thread-safe: each line is one write.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "modfilterd.h"

static int log_foreground = 1;
static int log_level_verbose;

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
log_vemit(int prio, const char *tag, const char *suffix, const char *fmt,
          va_list ap)
{
    char msg[1024];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (log_foreground) {
        char stamp[32];
        struct timespec ts;
        struct tm tm;

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
        fprintf(stderr, "%s.%03ldZ modfilterd %s%s%s%s\n", stamp,
                ts.tv_nsec / 1000000, tag, msg, suffix[0] ? ": " : "", suffix);
    } else {
        syslog(prio, "%s%s%s%s", tag, msg, suffix[0] ? ": " : "", suffix);
    }
}

void
log_warn(const char *fmt, ...)
{
    char errbuf[128];
    const char *e;
    int saved = errno;
    va_list ap;

    e = strerror_r(saved, errbuf, sizeof(errbuf));
    va_start(ap, fmt);
    log_vemit(LOG_WARNING, "warning: ", e, fmt, ap);
    va_end(ap);
    errno = saved;
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
log_debug(const char *fmt, ...)
{
    va_list ap;

    if (!log_level_verbose)
        return;
    va_start(ap, fmt);
    log_vemit(LOG_DEBUG, "debug: ", "", fmt, ap);
    va_end(ap);
}
