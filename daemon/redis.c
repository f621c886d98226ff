/*
 * redis.c - one asynchronous Redis connection on a libevent loop (see
 * redis.h for the contract).
 *
 * Lifetimes.  hiredis owns its redisAsyncContext and frees it itself when
 * the connection fails or drops; we free it ourselves (redisAsyncFree) only
 * from libevent callbacks of our own (timers, the deferred "drop" event) or
 * from redis_free(), never from inside a hiredis callback.  Either way
 * hiredis runs every pending reply callback with a NULL reply before the
 * context goes, so a request (struct redis_req) lives exactly as long as
 * its command is registered with hiredis, and its user callback runs once:
 * from the reply, from its timer, or from that final NULL reply.
 *
 * Generations.  Every connection attempt bumps r->gen.  r->ac always names
 * the live context or NULL; a hiredis callback whose context is not r->ac
 * belongs to a connection we have already given up on and is ignored.
 */
#include "redis.h"

#include <assert.h>
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#define REDIS_DEFAULT_TIMEOUT_MS 1000u
#define REDIS_DEFAULT_BACKOFF_MIN_MS 50u
#define REDIS_DEFAULT_BACKOFF_MAX_MS 2000u
#define REDIS_DEFAULT_IDLE_PING_MS 15000u
#define REDIS_HANDSHAKE_MIN_MS 1000u /* floor for connect + AUTH + SELECT */
#define REDIS_STABLE_MS 1000u /* a connection this old is retried at once */
#define REDIS_ERR_MAX 512

static atomic_ullong redis_errors;

struct redis_script {
    struct redis_script *next;
    char *body;
    size_t body_len;
    char sha[41]; /* "" until SCRIPT LOAD has answered */
};

struct redis_req {
    struct redis *r;
    redis_reply_cb *cb;
    void *arg;
    struct event *timer;
    unsigned long rx_at_send; /* r->rx when sent: progress detection */
    unsigned gen;
    int done;    /* the user callback has run */
    int retried; /* NOSCRIPT already answered by EVAL */
    /* Scripts only: the command as sent, in RESP (after the struct),
     * kept for a retry by EVAL: what follows the script (numkeys, keys,
     * arguments) is cmd[tail..cmd_len). */
    struct redis_script *script;
    char *cmd;
    size_t cmd_len, tail;
    size_t argc; /* EVALSHA's arguments, itself included */
};

struct redis {
    struct event_base *base;
    struct redis_url url;
    char target[REDIS_URL_HOST_MAX + 16]; /* "host:port" or the socket path */
    char *password;                       /* NULL or owned; wiped on free */
    unsigned timeout_ms;
    unsigned backoff_min_ms, backoff_max_ms, backoff_ms;
    unsigned idle_ping_ms;
    struct timeval cmd_tv_storage;
    const struct timeval *cmd_tv; /* a libevent common timeout when possible */
    redis_state_cb *state_cb;
    void *state_arg;

    redisAsyncContext *ac; /* NULL while down */
    unsigned gen;
    int ready;
    int closing;
    int cb_depth;            /* > 0 while a user callback runs */
    unsigned long rx;        /* replies received on the current connection */
    unsigned long sent;      /* commands sent, ever */
    unsigned long idle_sent; /* sent at the last idle tick */
    double ready_ms;         /* monotonic ms when it became ready; 0 */
    size_t pending;
    unsigned long connects;

    struct event *reconnect_ev; /* backoff timer */
    struct event *handshake_ev; /* bounds connect + AUTH + SELECT + PING */
    struct event *drop_ev;      /* deferred close, from hiredis callbacks */
    struct event *stall_ev;     /* a timed-out command saw no progress */
    struct event *idle_ev;      /* periodic: PING an idle connection */
    unsigned drop_gen;
    int drop_armed;
    char drop_why[REDIS_ERR_MAX];
    unsigned stall_gen;
    unsigned long stall_rx;

    struct redis_script *scripts;
    char *fmt; /* the command being sent, in RESP (owned) */
    size_t fmt_cap;
    unsigned rng;
    char err[REDIS_ERR_MAX];
    char notified[REDIS_ERR_MAX]; /* last reason given to state_cb */
    int notified_ready;
};

static void conn_start(struct redis *r);

static double
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- URL parsing ------------------------------------------------------ */

static void
set_msg(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;

    if (buf == NULL || len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

/* Digits only, 1..9 of them, value <= max. */
static int
parse_uint(const char *s, size_t n, long max, int *out)
{
    long v = 0;

    if (n == 0 || n > 9)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v > max)
        return -1;
    *out = (int)v;
    return 0;
}

static int
hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int
percent_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= n)
                return -1;
            hi = hexval((unsigned char)s[i + 1]);
            lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == 0 || o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

static int
host_char_ok(int c, int bracketed)
{
    if (isalnum(c) || c == '.' || c == '-' || c == '_')
        return 1;
    return bracketed && (c == ':' || c == '%');
}

static int
parse_unix(const char *p, struct redis_url *out, char *err, size_t errlen)
{
    size_t plen = strcspn(p, "?#");

    out->is_unix = 1;
    if (p[0] != '/') {
        set_msg(err, errlen, "unix URL needs an absolute path: unix:///path");
        return -1;
    }
    if (plen < 2 || plen >= sizeof out->path) {
        set_msg(err, errlen, "unix socket path empty or longer than %zu",
                sizeof out->path - 1);
        return -1;
    }
    memcpy(out->path, p, plen);
    out->path[plen] = '\0';
    p += plen;
    if (*p == '\0')
        return 0;
    if (strncmp(p, "?db=", 4) != 0 ||
        parse_uint(p + 4, strlen(p + 4), INT_MAX, &out->db) != 0) {
        set_msg(err, errlen, "unix URL: only ?db=N may follow the path");
        return -1;
    }
    return 0;
}

static int
parse_userinfo(const char *p, size_t n, struct redis_url *out, char *err,
               size_t errlen)
{
    const char *colon = memchr(p, ':', n);

    if (colon == NULL) {
        set_msg(err, errlen, "URL credentials must read [user]:password@");
        return -1;
    }
    if (percent_decode(p, (size_t)(colon - p), out->user, sizeof out->user) !=
            0 ||
        percent_decode(colon + 1, n - (size_t)(colon - p) - 1, out->password,
                       sizeof out->password) != 0) {
        set_msg(err, errlen, "URL credentials too long or badly escaped");
        return -1;
    }
    return 0;
}

static int
parse_tcp(const char *p, struct redis_url *out, char *err, size_t errlen)
{
    const char *end = p + strcspn(p, "/?#");
    const char *at = NULL, *host, *host_end, *after;
    int bracketed = 0;

    for (const char *s = p; s < end; s++)
        if (*s == '@')
            at = s;
    if (at != NULL) {
        if (parse_userinfo(p, (size_t)(at - p), out, err, errlen) != 0)
            return -1;
        p = at + 1;
    }
    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (close == NULL) {
            set_msg(err, errlen, "URL: unterminated [ipv6] host");
            return -1;
        }
        host = p + 1;
        host_end = close;
        after = close + 1;
        bracketed = 1;
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        host = p;
        host_end = colon ? colon : end;
        after = host_end;
    }
    if (host_end == host || (size_t)(host_end - host) >= sizeof out->host) {
        set_msg(err, errlen, "URL: host missing or too long");
        return -1;
    }
    for (const char *s = host; s < host_end; s++)
        if (!host_char_ok((unsigned char)*s, bracketed)) {
            set_msg(err, errlen, "URL: bad character in host");
            return -1;
        }
    memcpy(out->host, host, (size_t)(host_end - host));
    out->host[host_end - host] = '\0';
    if (after < end) {
        if (*after != ':' ||
            parse_uint(after + 1, (size_t)(end - after - 1), 65535,
                       &out->port) != 0 ||
            out->port == 0) {
            set_msg(err, errlen, "URL: port must be 1-65535");
            return -1;
        }
    }
    if (*end == '\0')
        return 0;
    if (*end != '/') {
        set_msg(err, errlen, "URL: query strings are not supported");
        return -1;
    }
    if (end[1] != '\0' &&
        parse_uint(end + 1, strlen(end + 1), INT_MAX, &out->db) != 0) {
        set_msg(err, errlen, "URL: database must be a number: redis://host/N");
        return -1;
    }
    return 0;
}

int
redis_url_parse(const char *url, struct redis_url *out, char *err,
                size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->port = 6379;
    if (url == NULL || *url == '\0') {
        set_msg(err, errlen, "empty Redis URL");
        return -1;
    }
    if (strncmp(url, "unix://", 7) == 0)
        return parse_unix(url + 7, out, err, errlen);
    if (strncmp(url, "redis://", 8) == 0)
        return parse_tcp(url + 8, out, err, errlen);
    /* At most 16 bytes of it: a mistyped URL may hold a password. */
    set_msg(err, errlen,
            "Redis URL must start with redis:// or unix:// (got %.16s%s)", url,
            strlen(url) > 16 ? "..." : "");
    return -1;
}

/* ---- state ------------------------------------------------------------ */

static void
set_err(struct redis *r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
}

static void
count_error(void)
{
    atomic_fetch_add_explicit(&redis_errors, 1, memory_order_relaxed);
}

/* Tells the owner about a change of readiness, or a failure reason that
 * differs from the last one told (so an outage is reported once, not at
 * every retry). */
static void
notify(struct redis *r, int ready, const char *why)
{
    if (r->closing || r->state_cb == NULL)
        return;
    if (ready == r->notified_ready && !ready && strcmp(why, r->notified) == 0)
        return;
    r->notified_ready = ready;
    snprintf(r->notified, sizeof r->notified, "%s", why);
    r->cb_depth++;
    r->state_cb(ready, why, r->state_arg);
    r->cb_depth--;
}

static void
schedule_reconnect(struct redis *r)
{
    unsigned ms = r->backoff_ms;
    struct timeval tv;

    /* "Equal jitter": half fixed, half random, so that the worker
     * threads of one daemon do not knock in step. */
    ms = ms / 2 + (unsigned)rand_r(&r->rng) % (ms / 2 + 1);
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
    evtimer_add(r->reconnect_ev, &tv);
    if (r->backoff_ms < r->backoff_max_ms / 2)
        r->backoff_ms *= 2;
    else
        r->backoff_ms = r->backoff_max_ms;
}

/* The connection is gone (hiredis freed it, or we are freeing it):
 * record why, tell the owner, and retry later. */
static void
conn_lost(struct redis *r, const char *why)
{
    /* A connection that worked for a while (and was then closed by the
     * server's idle `timeout`, CLIENT KILL, a failover...) is made again
     * at once; failed attempts back off. */
    int stable = r->ready_ms > 0 && mono_ms() - r->ready_ms >= REDIS_STABLE_MS;

    r->ready = 0;
    r->ready_ms = 0;
    r->ac = NULL;
    r->drop_armed = 0;
    evtimer_del(r->handshake_ev);
    evtimer_del(r->stall_ev);
    if (r->closing)
        return;
    set_err(r, "%s", why);
    notify(r, 0, why);
    if (evtimer_pending(r->reconnect_ev, NULL))
        return;
    if (stable)
        event_active(r->reconnect_ev, EV_TIMEOUT, 1);
    else
        schedule_reconnect(r);
}

/* Closes the live connection now.  Never from a hiredis callback. */
static void
conn_close(struct redis *r, const char *why)
{
    redisAsyncContext *ac = r->ac;

    r->ready = 0;
    r->ac = NULL; /* its callbacks, run by the free below, see it stale */
    if (ac != NULL)
        redisAsyncFree(ac);
    conn_lost(r, why);
}

/* From inside a hiredis callback: stop using the connection at once and
 * close it from the loop. */
static void
conn_fail_deferred(struct redis *r, const char *fmt, ...)
{
    va_list ap;

    r->ready = 0;
    if (r->drop_armed && r->drop_gen == r->gen)
        return; /* the first reason wins */
    va_start(ap, fmt);
    vsnprintf(r->drop_why, sizeof r->drop_why, fmt, ap);
    va_end(ap);
    r->drop_armed = 1;
    r->drop_gen = r->gen;
    event_active(r->drop_ev, EV_TIMEOUT, 1);
}

static void
drop_cb(evutil_socket_t fd, short what, void *arg)
{
    struct redis *r = arg;
    char why[REDIS_ERR_MAX];

    (void)fd;
    (void)what;
    if (!r->drop_armed || r->drop_gen != r->gen || r->ac == NULL)
        return;
    snprintf(why, sizeof why, "%s", r->drop_why);
    conn_close(r, why);
}

static void
on_idle_ping(enum redis_result res, const redisReply *reply, void *arg)
{
    (void)res;
    (void)reply;
    (void)arg;
}

/* A connection nobody uses is still checked now and then, so that a
 * half-open TCP connection or a server that closes idle clients is found
 * before a comment needs it (and /readyz tells the truth). */
static void
idle_cb(evutil_socket_t fd, short what, void *arg)
{
    struct redis *r = arg;
    const char *argv[1] = {"PING"};
    size_t len[1] = {4};

    (void)fd;
    (void)what;
    if (r->ready && r->sent == r->idle_sent && r->pending == 0)
        redis_command(r, 1, argv, len, on_idle_ping, NULL);
    r->idle_sent = r->sent;
}

static void
reconnect_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_start(arg);
}

static void
handshake_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct redis *r = arg;
    char why[REDIS_ERR_MAX];

    (void)fd;
    (void)what;
    if (r->ac == NULL || r->ready)
        return;
    snprintf(why, sizeof why,
             "%s: no answer to connect/AUTH/SELECT/PING in time", r->target);
    conn_close(r, why);
}

static void
stall_cb(evutil_socket_t fd, short what, void *arg)
{
    struct redis *r = arg;
    char why[REDIS_ERR_MAX];

    (void)fd;
    (void)what;
    if (r->ac == NULL || r->stall_gen != r->gen || r->rx != r->stall_rx)
        return;
    snprintf(why, sizeof why, "%s: no reply for %u ms; reconnecting", r->target,
             2 * r->timeout_ms);
    conn_close(r, why);
}

/* ---- hiredis callbacks: connection ------------------------------------ */

static const char *
ac_errstr(const redisAsyncContext *ac)
{
    if (ac->c.err && ac->c.errstr[0])
        return ac->c.errstr;
    if (ac->err && ac->errstr)
        return ac->errstr;
    return "unknown error";
}

static void
on_connect(const redisAsyncContext *ac, int status)
{
    struct redis *r = ac->data;
    char why[REDIS_ERR_MAX];

    if (r->ac != ac || status == REDIS_OK)
        return; /* ready only once PING has answered */
    snprintf(why, sizeof why, "connect to %s: %s", r->target, ac_errstr(ac));
    conn_lost(r, why); /* hiredis frees ac after we return */
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
    struct redis *r = ac->data;
    char why[REDIS_ERR_MAX];

    if (r->ac != ac)
        return;
    if (status == REDIS_OK)
        snprintf(why, sizeof why, "%s: connection closed", r->target);
    else
        snprintf(why, sizeof why, "%s: connection lost: %s", r->target,
                 ac_errstr(ac));
    conn_lost(r, why);
}

/* Handshake replies.  A NULL reply means the connection is going away;
 * on_connect/on_disconnect or whoever closed it reports that. */
static struct redis *
handshake_owner(redisAsyncContext *ac, const redisReply *reply)
{
    struct redis *r = ac->data;

    if (reply == NULL || r->ac != ac || r->closing)
        return NULL;
    return r;
}

static void
on_handshake_ok(redisAsyncContext *ac, void *reply_, void *step)
{
    const redisReply *reply = reply_;
    struct redis *r = handshake_owner(ac, reply);

    if (r == NULL)
        return;
    if (reply->type == REDIS_REPLY_ERROR)
        conn_fail_deferred(r, "%s: %s failed: %.*s", r->target,
                           (const char *)step, (int)reply->len, reply->str);
}

static void
on_script_loaded(redisAsyncContext *ac, void *reply_, void *script)
{
    const redisReply *reply = reply_;
    struct redis_script *s = script;

    if (handshake_owner(ac, reply) == NULL)
        return;
    /* A script Redis refuses to load is run by EVAL, which will then
     * report the same error to the caller. */
    if (reply->type == REDIS_REPLY_STRING && reply->len == 40)
        snprintf(s->sha, sizeof s->sha, "%.*s", 40, reply->str);
}

static void
on_ping(redisAsyncContext *ac, void *reply_, void *unused)
{
    const redisReply *reply = reply_;
    struct redis *r = handshake_owner(ac, reply);
    char why[REDIS_ERR_MAX];

    (void)unused;
    if (r == NULL)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        conn_fail_deferred(r, "%s: PING failed: %.*s", r->target,
                           (int)reply->len, reply->str);
        return;
    }
    if (r->drop_armed && r->drop_gen == r->gen)
        return; /* AUTH or SELECT failed before */
    r->ready = 1;
    r->ready_ms = mono_ms();
    r->connects++;
    r->backoff_ms = r->backoff_min_ms;
    evtimer_del(r->handshake_ev);
    r->err[0] = '\0';
    snprintf(why, sizeof why, "connected to %s db %d", r->target, r->url.db);
    notify(r, 1, why);
}

/* Forgets a script's SHA and loads it again (once, however many
 * EVALSHAs were in flight); calls fall back to EVAL meanwhile. */
static void
script_reload(redisAsyncContext *ac, struct redis_script *s)
{
    const char *argv[3] = {"SCRIPT", "LOAD", s->body};
    size_t len[3] = {6, 4, s->body_len};

    if (s->sha[0] == '\0')
        return;
    s->sha[0] = '\0';
    redisAsyncCommandArgv(ac, on_script_loaded, s, 3, argv, len);
}

static int
send_handshake(struct redis *r, redisAsyncContext *ac)
{
    const char *argv[3];
    size_t len[3];
    char db[16];
    int n = 0;

    if (r->password != NULL) {
        argv[n] = "AUTH";
        len[n++] = 4;
        if (r->url.user[0]) {
            argv[n] = r->url.user;
            len[n] = strlen(r->url.user);
            n++;
        }
        argv[n] = r->password;
        len[n] = strlen(r->password);
        n++;
        if (redisAsyncCommandArgv(ac, on_handshake_ok, "AUTH", n, argv, len) !=
            REDIS_OK)
            return -1;
    }
    if (r->url.db != 0) {
        argv[0] = "SELECT";
        len[0] = 6;
        len[1] = (size_t)snprintf(db, sizeof db, "%d", r->url.db);
        argv[1] = db;
        if (redisAsyncCommandArgv(ac, on_handshake_ok, "SELECT", 2, argv,
                                  len) != REDIS_OK)
            return -1;
    }
    for (struct redis_script *s = r->scripts; s != NULL; s = s->next) {
        argv[0] = "SCRIPT";
        len[0] = 6;
        argv[1] = "LOAD";
        len[1] = 4;
        argv[2] = s->body;
        len[2] = s->body_len;
        if (redisAsyncCommandArgv(ac, on_script_loaded, s, 3, argv, len) !=
            REDIS_OK)
            return -1;
    }
    argv[0] = "PING";
    len[0] = 4;
    if (redisAsyncCommandArgv(ac, on_ping, NULL, 1, argv, len) != REDIS_OK)
        return -1;
    return 0;
}

static void
conn_start(struct redis *r)
{
    redisAsyncContext *ac;
    char why[REDIS_ERR_MAX];
    unsigned hs_ms;
    struct timeval tv;

    if (r->closing || r->ac != NULL)
        return;
    r->gen++;
    r->rx = 0;
    r->drop_armed = 0;
    if (r->url.is_unix)
        ac = redisAsyncConnectUnix(r->url.path);
    else
        ac = redisAsyncConnect(r->url.host, r->url.port);
    if (ac == NULL) {
        conn_lost(r, "out of memory");
        return;
    }
    if (ac->err) {
        snprintf(why, sizeof why, "connect to %s: %s", r->target,
                 ac_errstr(ac));
        redisAsyncFree(ac);
        conn_lost(r, why);
        return;
    }
    ac->data = r;
    if (redisLibeventAttach(ac, r->base) != REDIS_OK) {
        redisAsyncFree(ac);
        conn_lost(r, "cannot attach to the event loop");
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    if (!r->url.is_unix)
        redisEnableKeepAlive(&ac->c);
    r->ac = ac;
    if (send_handshake(r, ac) != 0) {
        snprintf(why, sizeof why, "%s: cannot queue the handshake", r->target);
        conn_close(r, why);
        return;
    }
    hs_ms = r->timeout_ms > REDIS_HANDSHAKE_MIN_MS ? r->timeout_ms
                                                   : REDIS_HANDSHAKE_MIN_MS;
    tv.tv_sec = hs_ms / 1000;
    tv.tv_usec = (suseconds_t)(hs_ms % 1000) * 1000;
    evtimer_add(r->handshake_ev, &tv);
}

/* ---- requests --------------------------------------------------------- */

static void
req_free(struct redis_req *q)
{
    event_free(q->timer);
    free(q);
}

static void
req_finish(struct redis_req *q, enum redis_result res, const redisReply *reply)
{
    struct redis *r = q->r;

    q->done = 1;
    evtimer_del(q->timer);
    if (res != REDIS_RESULT_OK)
        count_error();
    if (res == REDIS_RESULT_ERROR && reply != NULL)
        set_err(r, "Redis error: %.*s", (int)reply->len, reply->str);
    r->cb_depth++;
    q->cb(res, reply, q->arg);
    r->cb_depth--;
}

static int
is_noscript(const redisReply *reply)
{
    return reply->type == REDIS_REPLY_ERROR && reply->len >= 8 &&
           memcmp(reply->str, "NOSCRIPT", 8) == 0;
}

static size_t resp_number(char *o, char type, size_t v);
static size_t resp_bulk(char *o, const char *s, size_t len);
static void on_reply(redisAsyncContext *ac, void *reply_, void *privdata);

/* q's script again, by EVAL with its body (the EVALSHA got NOSCRIPT):
 * the same arguments, q->cmd's tail.  0, or -1 when it could not be
 * queued. */
static int
req_resend_eval(redisAsyncContext *ac, struct redis_req *q)
{
    const struct redis_script *s = q->script;
    size_t tail_len = q->cmd_len - q->tail, n;
    char *cmd = malloc(64 + s->body_len + tail_len);
    int rc;

    if (cmd == NULL)
        return -1;
    n = resp_number(cmd, '*', q->argc);
    memcpy(cmd + n, "$4\r\nEVAL\r\n", 10);
    n += 10;
    n += resp_bulk(cmd + n, s->body, s->body_len);
    memcpy(cmd + n, q->cmd + q->tail, tail_len);
    n += tail_len;
    rc = redisAsyncFormattedCommand(ac, on_reply, q, cmd, n);
    free(cmd);
    return rc == REDIS_OK ? 0 : -1;
}

static void
on_reply(redisAsyncContext *ac, void *reply_, void *privdata)
{
    const redisReply *reply = reply_;
    struct redis_req *q = privdata;
    struct redis *r = q->r;

    if (reply != NULL && r->ac == ac)
        r->rx++;
    if (reply != NULL && !q->done && q->script != NULL && !q->retried &&
        is_noscript(reply) && r->ac == ac) {
        /* The script cache was flushed (SCRIPT FLUSH, a restarted or
         * failed-over server): EVALSHA did not run it, so EVAL may. */
        q->retried = 1;
        script_reload(ac, q->script);
        if (req_resend_eval(ac, q) == 0)
            return; /* still pending */
        reply = NULL;
    }
    r->pending--;
    if (!q->done) {
        if (reply == NULL) {
            set_err(r, "%s",
                    r->closing ? "shutting down" : "connection to Redis lost");
            req_finish(q, REDIS_RESULT_ERROR, NULL);
        } else if (reply->type == REDIS_REPLY_ERROR) {
            req_finish(q, REDIS_RESULT_ERROR, reply);
        } else {
            req_finish(q, REDIS_RESULT_OK, reply);
        }
    }
    req_free(q);
}

static void
req_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct redis_req *q = arg;
    struct redis *r = q->r;

    (void)fd;
    (void)what;
    if (q->done)
        return;
    /* Nothing at all came back since this command went out: give the
     * connection one more timeout to show life, then reconnect. */
    if (r->ac != NULL && q->gen == r->gen && r->rx == q->rx_at_send &&
        !evtimer_pending(r->stall_ev, NULL)) {
        r->stall_gen = r->gen;
        r->stall_rx = r->rx;
        evtimer_add(r->stall_ev, r->cmd_tv);
    }
    set_err(r, "Redis command timed out after %u ms", r->timeout_ms);
    req_finish(q, REDIS_RESULT_TIMEOUT, NULL);
    /* q stays registered with hiredis until its reply or the context's
     * end; on_reply frees it then. */
}

/* extra: bytes to allocate after the struct (for a script's copies),
 * left as they are: the caller writes them (a batch of submits makes them
 * tens of KiB, which calloc cleared for nothing). */
static struct redis_req *
req_new(struct redis *r, redis_reply_cb *cb, void *arg, size_t extra)
{
    struct redis_req *q = malloc(sizeof *q + extra);

    if (q == NULL)
        return NULL;
    memset(q, 0, sizeof *q);
    q->timer = evtimer_new(r->base, req_timeout_cb, q);
    if (q->timer == NULL) {
        free(q);
        return NULL;
    }
    q->r = r;
    q->cb = cb;
    q->arg = arg;
    return q;
}

static int
refuse(struct redis *r)
{
    if (r->closing)
        set_err(r, "shutting down");
    else if (r->err[0] == '\0')
        set_err(r, "not connected to Redis");
    count_error();
    return -1;
}

#define RESP_KEEP_MAX (1u << 20) /* bytes of r->fmt kept between sends */

/* type, v in decimal, CRLF at o; the length. */
static size_t
resp_number(char *o, char type, size_t v)
{
    char digits[24], *p = digits + sizeof digits;
    size_t n;

    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    n = (size_t)(digits + sizeof digits - p);
    o[0] = type;
    memcpy(o + 1, p, n);
    memcpy(o + 1 + n, "\r\n", 2);
    return n + 3;
}

/* s (len bytes) as a RESP bulk string at o (len + 25 bytes at most); the
 * length. */
static size_t
resp_bulk(char *o, const char *s, size_t len)
{
    size_t n = resp_number(o, '$', len);

    if (len > 0)
        memcpy(o + n, s, len);
    memcpy(o + n + len, "\r\n", 2);
    return n + len + 2;
}

/* argv as a RESP array of bulk strings into r->fmt: formatting it here
 * costs a third of hiredis' sds formatting.  Its length; 0 on ENOMEM. */
static size_t
resp_format(struct redis *r, int argc, const char **argv, const size_t *argvlen)
{
    size_t need = 32, n;
    int i;

    for (i = 0; i < argc; i++) {
        if (argvlen[i] > SIZE_MAX / 2 - need)
            return 0;
        need += argvlen[i] + 32;
    }
    if (need > r->fmt_cap ||
        (r->fmt_cap > RESP_KEEP_MAX && need < RESP_KEEP_MAX)) {
        char *p = realloc(r->fmt, need);

        if (p == NULL)
            return 0;
        r->fmt = p;
        r->fmt_cap = need;
    }
    n = resp_number(r->fmt, '*', (size_t)argc);
    for (i = 0; i < argc; i++)
        n += resp_bulk(r->fmt + n, argv[i], argvlen[i]);
    return n;
}

/* Sends q's command, cmd (n bytes of RESP; 0: could not be made). */
static int
req_send_formatted(struct redis *r, struct redis_req *q, const char *cmd,
                   size_t n)
{
    if (n == 0 ||
        redisAsyncFormattedCommand(r->ac, on_reply, q, cmd, n) != REDIS_OK) {
        req_free(q);
        return refuse(r);
    }
    q->gen = r->gen;
    q->rx_at_send = r->rx;
    evtimer_add(q->timer, r->cmd_tv);
    r->pending++;
    r->sent++;
    return 0;
}

static int
req_send(struct redis *r, struct redis_req *q, int argc, const char **argv,
         const size_t *argvlen)
{
    /* resp_format may move r->fmt: read it after the call, not as a
     * sibling argument (their order of evaluation is unspecified). */
    size_t n = resp_format(r, argc, argv, argvlen);

    return req_send_formatted(r, q, r->fmt, n);
}

int
redis_accepting(struct redis *r)
{
    if (!r->ready || r->ac == NULL || r->closing)
        return refuse(r);
    return 0;
}

void
redis_count_errors(struct redis *r, unsigned long long n, const char *msg,
                   size_t len)
{
    atomic_fetch_add_explicit(&redis_errors, n, memory_order_relaxed);
    if (r != NULL && msg != NULL)
        set_err(r, "Redis error: %.*s", (int)len, msg);
}

int
redis_command(struct redis *r, int argc, const char **argv,
              const size_t *argvlen, redis_reply_cb *cb, void *arg)
{
    struct redis_req *q;

    if (!r->ready || r->ac == NULL || r->closing)
        return refuse(r);
    q = req_new(r, cb, arg, 0);
    if (q == NULL) {
        set_err(r, "out of memory");
        return refuse(r);
    }
    return req_send(r, q, argc, argv, argvlen);
}

int
redis_eval(struct redis *r, struct redis_script *s, int numkeys, int argc,
           const char **argv, const size_t *argvlen, redis_reply_cb *cb,
           void *arg)
{
    struct redis_req *q;
    const char *name = s->sha[0] ? s->sha : s->body;
    size_t name_len = s->sha[0] ? 40 : s->body_len;
    size_t need = 96 + name_len, n, k; /* 96: what is not name or args */
    char nk[24];

    if (!r->ready || r->ac == NULL || r->closing)
        return refuse(r);
    if (argc < 0 || numkeys < 0 || numkeys > argc || argc > INT_MAX - 3)
        return refuse(r);
    for (int i = 0; i < argc; i++) {
        if (argvlen[i] > SIZE_MAX / 2 - need)
            return refuse(r);
        need += argvlen[i] + 32;
    }
    /* The command is formatted once, into the request, which keeps it for
     * a retry by EVAL (req_resend_eval): a batch of submits is tens of
     * KiB, which were copied twice before. */
    q = req_new(r, cb, arg, need);
    if (q == NULL) {
        set_err(r, "out of memory");
        return refuse(r);
    }
    q->script = s;
    q->argc = (size_t)argc + 3;
    q->cmd = (char *)(q + 1);
    n = resp_number(q->cmd, '*', q->argc);
    if (s->sha[0]) {
        memcpy(q->cmd + n, "$7\r\nEVALSHA\r\n", 13);
        n += 13;
    } else {
        memcpy(q->cmd + n, "$4\r\nEVAL\r\n", 10);
        n += 10;
        q->retried = 1; /* EVAL cannot answer NOSCRIPT */
    }
    n += resp_bulk(q->cmd + n, name, name_len);
    q->tail = n;
    k = resp_number(nk, ':', (size_t)numkeys); /* ":digits\r\n" */
    n += resp_bulk(q->cmd + n, nk + 1, k - 3);
    for (int i = 0; i < argc; i++)
        n += resp_bulk(q->cmd + n, argv[i], argvlen[i]);
    q->cmd_len = n;
    return req_send_formatted(r, q, q->cmd, n);
}

/* ---- lifecycle -------------------------------------------------------- */

struct redis_script *
redis_script_add(struct redis *r, const char *body)
{
    struct redis_script *s = calloc(1, sizeof *s);

    if (s == NULL)
        return NULL;
    s->body = strdup(body);
    if (s->body == NULL) {
        free(s);
        return NULL;
    }
    s->body_len = strlen(body);
    s->next = r->scripts;
    r->scripts = s;
    return s;
}

struct redis *
redis_new(struct event_base *base, const struct redis_config *cfg, char *err,
          size_t errlen)
{
    struct redis *r = calloc(1, sizeof *r);
    const char *pw;
    struct timeval now;

    if (r == NULL) {
        set_msg(err, errlen, "out of memory");
        return NULL;
    }
    if (redis_url_parse(cfg->url, &r->url, err, errlen) != 0)
        goto fail;
    pw = cfg->password && cfg->password[0] ? cfg->password : r->url.password;
    if (r->url.user[0] && pw[0] == '\0') {
        set_msg(err, errlen, "Redis URL names a user but no password");
        goto fail;
    }
    if (pw[0] != '\0' && (r->password = strdup(pw)) == NULL) {
        set_msg(err, errlen, "out of memory");
        goto fail;
    }
    if (r->url.is_unix)
        snprintf(r->target, sizeof r->target, "%s", r->url.path);
    else if (strchr(r->url.host, ':') != NULL)
        snprintf(r->target, sizeof r->target, "[%s]:%d", r->url.host,
                 r->url.port);
    else
        snprintf(r->target, sizeof r->target, "%s:%d", r->url.host,
                 r->url.port);
    r->base = base;
    r->timeout_ms =
        cfg->timeout_ms ? cfg->timeout_ms : REDIS_DEFAULT_TIMEOUT_MS;
    r->backoff_min_ms = cfg->backoff_min_ms ? cfg->backoff_min_ms
                                            : REDIS_DEFAULT_BACKOFF_MIN_MS;
    r->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms
                                            : REDIS_DEFAULT_BACKOFF_MAX_MS;
    if (r->backoff_max_ms < r->backoff_min_ms)
        r->backoff_max_ms = r->backoff_min_ms;
    r->backoff_ms = r->backoff_min_ms;
    r->idle_ping_ms =
        cfg->idle_ping_ms ? cfg->idle_ping_ms : REDIS_DEFAULT_IDLE_PING_MS;
    r->state_cb = cfg->state_cb;
    r->state_arg = cfg->state_arg;
    r->notified_ready = -1;
    gettimeofday(&now, NULL);
    r->rng =
        (unsigned)now.tv_usec ^ (unsigned)(uintptr_t)r ^ (unsigned)getpid();
    r->cmd_tv_storage.tv_sec = r->timeout_ms / 1000;
    r->cmd_tv_storage.tv_usec = (suseconds_t)(r->timeout_ms % 1000) * 1000;
    r->cmd_tv = event_base_init_common_timeout(base, &r->cmd_tv_storage);
    if (r->cmd_tv == NULL)
        r->cmd_tv = &r->cmd_tv_storage;
    r->reconnect_ev = evtimer_new(base, reconnect_cb, r);
    r->handshake_ev = evtimer_new(base, handshake_timeout_cb, r);
    r->drop_ev = evtimer_new(base, drop_cb, r);
    r->stall_ev = evtimer_new(base, stall_cb, r);
    r->idle_ev = event_new(base, -1, EV_PERSIST, idle_cb, r);
    if (!r->reconnect_ev || !r->handshake_ev || !r->drop_ev || !r->stall_ev ||
        !r->idle_ev) {
        set_msg(err, errlen, "out of memory");
        goto fail;
    }
    {
        struct timeval tv = {r->idle_ping_ms / 1000,
                             (suseconds_t)(r->idle_ping_ms % 1000) * 1000};
        event_add(r->idle_ev, &tv);
    }
    /* The first attempt runs from the loop, so that no callback runs
     * before the caller holds the handle. */
    event_active(r->reconnect_ev, EV_TIMEOUT, 1);
    return r;
fail:
    redis_free(r);
    return NULL;
}

void
redis_free(struct redis *r)
{
    redisAsyncContext *ac;
    struct redis_script *s, *next;

    if (r == NULL)
        return;
    assert(r->cb_depth == 0 && "redis_free() from inside a callback");
    r->closing = 1;
    r->ready = 0;
    ac = r->ac;
    r->ac = NULL;
    if (ac != NULL)
        redisAsyncFree(ac); /* runs every pending callback, NULL reply */
    if (r->reconnect_ev)
        event_free(r->reconnect_ev);
    if (r->handshake_ev)
        event_free(r->handshake_ev);
    if (r->drop_ev)
        event_free(r->drop_ev);
    if (r->stall_ev)
        event_free(r->stall_ev);
    if (r->idle_ev)
        event_free(r->idle_ev);
    for (s = r->scripts; s != NULL; s = next) {
        next = s->next;
        free(s->body);
        free(s);
    }
    if (r->password) {
        explicit_bzero(r->password, strlen(r->password));
        free(r->password);
    }
    explicit_bzero(&r->url, sizeof r->url);
    free(r->fmt);
    free(r);
}

int
redis_ready(const struct redis *r)
{
    return r != NULL && r->ready;
}

const char *
redis_last_error(const struct redis *r)
{
    return r->err;
}

size_t
redis_pending(const struct redis *r)
{
    return r->pending;
}

unsigned long
redis_connect_count(const struct redis *r)
{
    return r->connects;
}

unsigned long long
redis_error_count(void)
{
    return atomic_load_explicit(&redis_errors, memory_order_relaxed);
}
