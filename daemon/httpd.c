/*
 * httpd.c - the HTTP/1.1 server of httpd.h.
 *
 * Per request the steady state costs one read() (or fewer: pipelined
 * requests share one), the parse, and one write() of the reply; no event
 * is added or removed and no timer is touched.  The connection's one
 * timer is lazy: it is armed for the earliest deadline that could apply
 * and, when it fires, checks what the connection is doing (reading a
 * request: request_timeout_s from its first byte; idle: idle_timeout_s;
 * a reply the client does not read: request_timeout_s) and re-arms for
 * what is left.  A request's deadline only re-arms it when it falls
 * before the one already set.
 *
 * The input buffer holds bytes from in_start to in_end.  While a request
 * is being answered (C_ACTIVE) its head and body are pointed to by the
 * struct http_request, so the buffer neither moves nor grows: further
 * bytes go to the free space after in_end, and reading pauses when there
 * is none.  Between requests the buffer is compacted or grown up to
 * max_headers + max_body + slack, and released when empty and large.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "httpd.h"

#define HTTPD_MAX_LISTENERS 4
#define HTTPD_ACCEPT_BATCH 64
#define HTTPD_ACCEPT_PAUSE_MS 100  /* after EMFILE: let descriptors free */
#define HTTPD_IN_INIT 4096         /* first input buffer */
#define HTTPD_IN_KEEP 16384        /* larger empty buffers are released */
#define HTTPD_IN_SLACK 8192        /* beyond max_headers + max_body */
#define HTTPD_OUT_HIGH (64 * 1024) /* unwritten: parse nothing more */
#define HTTPD_OUT_KEEP (64 * 1024) /* larger empty buffers are released */
#define HTTPD_LINGER_MS 2000       /* reading what a refused client sends */
#define HTTPD_LINGER_BYTES (1 << 20)

enum conn_state {
    C_HEAD,    /* waiting for (the rest of) a request head */
    C_BODY,    /* waiting for a Content-Length body */
    C_CHUNKED, /* decoding a chunked body */
    C_ACTIVE,  /* handed to the request hook, not answered yet */
    C_LINGER,  /* answered and shut down for writing; discarding input */
};

struct conn {
    struct http_conn pub; /* first: &c->pub is c */
    struct httpd *h;
    struct conn *prev, *next;
    int fd;
    enum conn_state state;
    struct event *rev, *wev, *timer;
    char *in;
    size_t in_cap, in_start, in_end;
    char *out;
    size_t out_cap, out_off, out_len;
    char *oh; /* the reply's added header lines */
    size_t oh_len, oh_cap;
    struct httpparse_request pr;
    struct httpparse_chunked ch;
    struct http_request req;
    size_t req_end;           /* offset past the active request's bytes */
    long long t_first;        /* ms: the current request's first byte, or 0 */
    long long t_idle;         /* ms: the end of the last request */
    long long t_write;        /* ms: output blocked since, or 0 */
    long long timer_at;       /* ms: the timer's expiry, or 0 */
    size_t lingered;          /* bytes discarded in C_LINGER */
    unsigned in_process : 1;  /* conn_process is on the stack */
    unsigned close_after : 1; /* close once the output is written */
    unsigned linger : 1;      /* ... after reading what the client sends */
    unsigned paused : 1;      /* read event removed: the buffer is full */
    unsigned wev_on : 1;      /* write event added (counted in writing) */
    unsigned deferred : 1;    /* the next read event only processes */
    unsigned broken : 1;      /* out of memory: close without a reply */
    unsigned eof : 1;         /* the client shut down its side: answer
                                 what was read, then close */
};

struct httpd {
    struct event_base *base;
    struct httpd_config cfg;
    struct httpd_hooks hooks;
    int lfd[HTTPD_MAX_LISTENERS];
    struct event *lev[HTTPD_MAX_LISTENERS];
    unsigned n_listeners;
    struct event *accept_pause;
    struct conn *conns;
    unsigned long writing;
    int stopping;
};

static long long
httpd_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *
http_status_text(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return status < 300   ? "OK"
               : status < 400 ? "Redirect"
               : status < 500 ? "Client Error"
                              : "Server Error";
    }
}

/* ---- buffers ---------------------------------------------------------- */

static int
conn_out_reserve(struct conn *c, size_t more)
{
    size_t need = c->out_len + more, cap;
    char *p;

    if (need <= c->out_cap)
        return 0;
    cap = c->out_cap ? c->out_cap : 4096;
    while (cap < need)
        cap *= 2;
    p = realloc(c->out, cap);
    if (p == NULL) {
        c->broken = 1;
        return -1;
    }
    c->out = p;
    c->out_cap = cap;
    return 0;
}

static void
conn_out_add(struct conn *c, const void *data, size_t len)
{
    if (len == 0 || conn_out_reserve(c, len) < 0)
        return;
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
}

static void
conn_out_str(struct conn *c, const char *s)
{
    conn_out_add(c, s, strlen(s));
}

/* Decimal n at the end of buf; returns its start. */
static char *
httpd_utoa(size_t n, char *end)
{
    *--end = '\0';
    do {
        *--end = (char)('0' + n % 10);
        n /= 10;
    } while (n > 0);
    return end;
}

/* The Date header's value, formatted once a second per thread; its
 * length in *len. */
static const char *
httpd_date(size_t *len)
{
    static _Thread_local time_t date_sec = -1;
    static _Thread_local char date[40];
    static _Thread_local size_t date_len;
    time_t now = time(NULL);

    if (now != date_sec) {
        struct tm tm;

        gmtime_r(&now, &tm); /* C locale: English names, as RFC 9110 */
        date_len =
            strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        date_sec = now;
    }
    *len = date_len;
    return date;
}

/* n bytes of s at o; past them. */
static char *
httpd_put(char *o, const char *s, size_t n)
{
    memcpy(o, s, n);
    return o + n;
}

/* A string literal's bytes at o, without its NUL. */
#define HTTPD_PUT_LIT(o, lit) httpd_put((o), (lit), sizeof(lit) - 1)

/* Status line and headers of a reply into the output buffer, written in
 * place after one reservation (every reply has one). */
static void
conn_out_head(struct conn *c, int status, const char *ctype, size_t len,
              int closing, int minor)
{
    const char *reason = http_status_text(status), *date, *n;
    size_t reason_len = strlen(reason), ctype_len = ctype ? strlen(ctype) : 0;
    size_t date_len;
    char num[24], *o;

    date = httpd_date(&date_len);
    /* the fixed text is < 128 bytes; two numbers of < 24 bytes */
    if (conn_out_reserve(c, 128 + 2 * sizeof(num) + reason_len + date_len +
                                ctype_len + c->oh_len) < 0)
        return;
    o = c->out + c->out_len;
    /* HTTP/1.0 clients get their own version back, as from evhttp. */
    if (minor == 0)
        o = HTTPD_PUT_LIT(o, "HTTP/1.0 ");
    else
        o = HTTPD_PUT_LIT(o, "HTTP/1.1 ");
    n = httpd_utoa((size_t)status, num + sizeof(num));
    o = httpd_put(o, n, (size_t)(num + sizeof(num) - 1 - n));
    *o++ = ' ';
    o = httpd_put(o, reason, reason_len);
    o = HTTPD_PUT_LIT(o, "\r\nDate: ");
    o = httpd_put(o, date, date_len);
    if (!(status < 200 || status == 204 || status == 304)) {
        o = HTTPD_PUT_LIT(o, "\r\nContent-Length: ");
        n = httpd_utoa(len, num + sizeof(num));
        o = httpd_put(o, n, (size_t)(num + sizeof(num) - 1 - n));
    }
    if (ctype != NULL) {
        o = HTTPD_PUT_LIT(o, "\r\nContent-Type: ");
        o = httpd_put(o, ctype, ctype_len);
    }
    o = HTTPD_PUT_LIT(o, "\r\n");
    if (c->oh_len > 0)
        o = httpd_put(o, c->oh, c->oh_len);
    if (closing)
        o = HTTPD_PUT_LIT(o, "Connection: close\r\n");
    else if (minor == 0)
        o = HTTPD_PUT_LIT(o, "Connection: keep-alive\r\n");
    o = HTTPD_PUT_LIT(o, "\r\n");
    c->out_len = (size_t)(o - c->out);
}

/* ---- timers ----------------------------------------------------------- */

/* The timer fires no later than when (ms). */
static void
conn_timer_by(struct conn *c, long long when)
{
    long long now;
    struct timeval tv;

    if (c->timer_at != 0 && c->timer_at <= when)
        return;
    now = httpd_now_ms();
    if (when < now)
        when = now;
    tv.tv_sec = (when - now) / 1000;
    tv.tv_usec = (suseconds_t)((when - now) % 1000 * 1000);
    evtimer_add(c->timer, &tv);
    c->timer_at = when;
}

/* ---- closing ---------------------------------------------------------- */

static void
conn_free(struct conn *c)
{
    if (c->rev != NULL)
        event_free(c->rev);
    if (c->wev != NULL)
        event_free(c->wev);
    if (c->timer != NULL)
        event_free(c->timer);
    if (c->fd >= 0)
        close(c->fd);
    free(c->in);
    free(c->out);
    free(c->oh);
    free(c);
}

static void
conn_close(struct conn *c)
{
    struct httpd *h = c->h;
    int was_writing = c->wev_on;

    if (c->pub.gone != NULL) {
        void (*gone)(void *) = c->pub.gone;

        c->pub.gone = NULL;
        gone(c->pub.gone_arg);
    }
    if (c->wev_on)
        h->writing--;
    if (h->hooks.closed != NULL)
        h->hooks.closed(&c->pub, h->hooks.arg);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    conn_free(c);
    if (was_writing && h->stopping && h->writing == 0 &&
        h->hooks.drained != NULL)
        h->hooks.drained(h->hooks.arg);
}

/* ---- requests --------------------------------------------------------- */

static void
conn_resume(struct conn *c)
{
    if (c->paused && !c->eof) {
        c->paused = 0;
        event_add(c->rev, NULL);
    }
}

static void
conn_request_done(struct conn *c)
{
    long long now = httpd_now_ms();

    c->pub.gone = NULL;
    c->pub.gone_arg = NULL;
    c->oh_len = 0;
    c->state = C_HEAD;
    c->in_start = c->req_end;
    if (c->in_start >= c->in_end) {
        c->in_start = c->in_end = 0;
        if (c->in_cap > HTTPD_IN_KEEP) {
            free(c->in);
            c->in = NULL;
            c->in_cap = 0;
        }
    }
    c->t_idle = now;
    c->t_first = 0;
    if (c->in_end > c->in_start) { /* a pipelined request's clock runs */
        c->t_first = now;
        conn_timer_by(c, now + (long long)c->h->cfg.request_timeout_s * 1000);
    }
    conn_resume(c);
}

/* Reply with httpd's own JSON error and close. */
static void
conn_error(struct conn *c, int status, int linger)
{
    struct httpd *h = c->h;
    char body[320];
    const char *code, *msg;
    int n;

    switch (status) {
    case 408:
        code = "request_timeout";
        msg = "no complete request within limits.request_timeout_s";
        break;
    case 431:
        code = "headers_too_large";
        msg = "the request head is over limits.max_headers bytes or has "
              "too many fields";
        break;
    case 501:
        code = "not_implemented";
        msg = "this method or transfer coding is not implemented";
        break;
    case 505:
        code = "http_version_not_supported";
        msg = "only HTTP/1.0 and HTTP/1.1 are served";
        break;
    default:
        status = 400;
        code = "bad_request";
        msg = "malformed HTTP request";
        break;
    }
    n = snprintf(body, sizeof(body),
                 "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}\n", code,
                 msg);
    c->oh_len = 0;
    conn_out_head(c, status, "application/json", (size_t)n, 1, 1);
    conn_out_add(c, body, (size_t)n);
    c->close_after = 1;
    c->linger = linger != 0;
    if (h->hooks.answered != NULL)
        h->hooks.answered(status,
                          c->t_first ? (httpd_now_ms() - c->t_first) / 1e3 : 0,
                          h->hooks.arg);
}

/* Point c->req at the parsed request (head at data) and terminate its
 * strings in place. */
static void
conn_request_setup(struct conn *c, char *data)
{
    struct http_request *r = &c->req;
    struct httpparse_request *p = &c->pr;
    char *target = data + p->target, *q, *slash;
    unsigned i;

    memset(r, 0, sizeof(*r));
    r->conn = &c->pub;
    r->method = p->method;
    r->minor = p->minor;
    r->head = data;
    r->parsed = p;
    target[p->target_len] = '\0'; /* the SP before the version */
    q = memchr(target, '?', p->target_len);
    if (q != NULL) {
        *q = '\0';
        r->query = q + 1;
    }
    r->uri = r->path = target;
    if (target[0] != '/' && (slash = strstr(target, "://")) != NULL) {
        slash = strchr(slash + 3, '/');
        r->path = slash != NULL ? slash : "/";
    }
    for (i = 0; i < p->n_fields; i++) {
        data[p->fields[i].name + p->fields[i].name_len] = '\0'; /* ':' */
        data[p->fields[i].value + p->fields[i].value_len] = '\0';
    }
    r->body = "";
}

/* Advance the request being read.  1: complete (c->req set up, c->req_end
 * known); 0: more bytes needed; < 0: a status to answer. */
static int
conn_parse(struct conn *c)
{
    const struct httpd_config *cfg = &c->h->cfg;
    char *data = c->in + c->in_start;
    size_t len = c->in_end - c->in_start;
    long st;
    int r;

    switch (c->state) {
    case C_HEAD:
        if (len == 0)
            return 0;
        st = httpparse_head(data, len, cfg->max_headers, cfg->max_body, &c->pr);
        if (st <= 0)
            return (int)st;
        if (c->pr.too_large) {
            conn_request_setup(c, data);
            c->req.too_large = 1;
            c->req_end = c->in_end;
            return 1;
        }
        if (c->pr.chunked) {
            httpparse_chunked_init(&c->ch, c->pr.head_len);
            c->state = C_CHUNKED;
        } else {
            c->state = C_BODY;
        }
        if (c->pr.expect_continue &&
            (c->pr.chunked || len < c->pr.head_len + c->pr.content_length))
            conn_out_str(c, "HTTP/1.1 100 Continue\r\n\r\n");
        return conn_parse(c);
    case C_BODY:
        if (len < c->pr.head_len + c->pr.content_length)
            return 0;
        conn_request_setup(c, data);
        c->req.body = data + c->pr.head_len;
        c->req.body_len = c->pr.content_length;
        c->req_end = c->in_start + c->pr.head_len + c->pr.content_length;
        return 1;
    case C_CHUNKED:
        r = httpparse_chunked(data, len, cfg->max_body, cfg->max_headers,
                              &c->ch);
        if (r == 0) {
            c->in_end -= httpparse_chunked_squeeze(data, &len, &c->ch);
            return 0;
        }
        if (r == -413) {
            conn_request_setup(c, data);
            c->req.too_large = 1;
            c->req_end = c->in_end;
            return 1;
        }
        if (r < 0)
            return r;
        conn_request_setup(c, data);
        c->req.body = data + c->ch.start;
        c->req.body_len = c->ch.out - c->ch.start;
        c->req_end = c->in_start + c->ch.in;
        return 1;
    default:
        return 0;
    }
}

static int conn_flush(struct conn *c);

/* Parse and hand over what the input buffer holds, then write what was
 * answered.  -1 when c was closed (freed). */
static int
conn_process(struct conn *c)
{
    struct httpd *h = c->h;
    int r, held;

again:
    held = 0;
    c->in_process = 1;
    while (
        !c->close_after && !c->broken &&
        (c->state == C_HEAD || c->state == C_BODY || c->state == C_CHUNKED)) {
        if (c->out_len - c->out_off > HTTPD_OUT_HIGH) {
            held = 1;
            break;
        }
        r = conn_parse(c);
        if (r == 0)
            break;
        if (r < 0) {
            conn_error(c, -r, 1);
            break;
        }
        c->state = C_ACTIVE;
        h->hooks.request(&c->req, h->hooks.arg);
    }
    c->in_process = 0;
    if (c->eof && c->state != C_ACTIVE &&
        c->out_len - c->out_off <= HTTPD_OUT_HIGH)
        c->close_after = 1; /* nothing more will come */
    if (conn_flush(c) < 0)
        return -1;
    /* Requests held back by HTTPD_OUT_HIGH whose replies all went out at
     * once: nothing else would wake them (conn_write_cb runs only after a
     * write blocked). */
    if (held && !c->wev_on)
        goto again;
    return 0;
}

const char *
http_request_header(const struct http_request *req, const char *name)
{
    const struct httpparse_request *p = req->parsed;
    unsigned i;

    for (i = 0; i < p->n_fields; i++)
        if (!strcasecmp(req->head + p->fields[i].name, name))
            return req->head + p->fields[i].value;
    return NULL;
}

void
http_reply_header(struct http_request *req, const char *name, const char *value)
{
    struct conn *c = (struct conn *)req->conn;
    size_t nlen = strlen(name), vlen = strlen(value), need, i;
    char *p;

    need = c->oh_len + nlen + vlen + 4;
    if (need > c->oh_cap) {
        size_t cap = c->oh_cap ? c->oh_cap * 2 : 256;

        while (cap < need)
            cap *= 2;
        p = realloc(c->oh, cap);
        if (p == NULL) {
            c->broken = 1;
            return;
        }
        c->oh = p;
        c->oh_cap = cap;
    }
    p = c->oh + c->oh_len;
    memcpy(p, name, nlen);
    p[nlen] = ':';
    p[nlen + 1] = ' ';
    memcpy(p + nlen + 2, value, vlen);
    for (i = nlen + 2; i < nlen + 2 + vlen; i++)
        if (p[i] == '\r' || p[i] == '\n')
            p[i] = ' '; /* no header injection */
    p[nlen + 2 + vlen] = '\r';
    p[nlen + 3 + vlen] = '\n';
    c->oh_len = need;
}

void
http_reply(struct http_request *req, int status, const char *ctype,
           const void *body, size_t len)
{
    struct conn *c = (struct conn *)req->conn;
    int closing = c->h->stopping || req->too_large || !c->pr.keep_alive;

    conn_out_head(c, status, ctype, len, closing, req->minor);
    if (req->method != HTTP_METHOD_HEAD && status >= 200 && status != 204 &&
        status != 304)
        conn_out_add(c, body, len);
    if (closing) {
        c->close_after = 1;
        c->linger = req->too_large != 0;
    }
    conn_request_done(c);
    if (c->in_process)
        return; /* conn_process goes on with the next request */
    if (c->in_end > c->in_start && !c->close_after) {
        /* Answered later (Redis): the next pipelined request is parsed
         * from the loop, not from inside the caller's callback. */
        c->deferred = 1;
        event_active(c->rev, EV_READ, 1);
    }
    conn_flush(c);
}

/* ---- I/O -------------------------------------------------------------- */

/* Write what is pending.  -1 when c was closed (freed). */
static int
conn_flush(struct conn *c)
{
    struct httpd *h = c->h;
    ssize_t n;

    if (c->broken) {
        conn_close(c);
        return -1;
    }
    while (c->out_off < c->out_len) {
        n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n > 0) {
            c->out_off += (size_t)n;
            if (c->wev_on) /* the client reads: its deadline moves on */
                c->t_write = httpd_now_ms();
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->wev_on) {
                event_add(c->wev, NULL);
                c->wev_on = 1;
                h->writing++;
                c->t_write = httpd_now_ms();
                conn_timer_by(
                    c, c->t_write + (long long)h->cfg.request_timeout_s * 1000);
            }
            return 0;
        }
        conn_close(c); /* the client is gone */
        return -1;
    }
    c->out_off = c->out_len = 0;
    if (c->out_cap > HTTPD_OUT_KEEP) {
        free(c->out);
        c->out = NULL;
        c->out_cap = 0;
    }
    if (c->wev_on) {
        event_del(c->wev);
        c->wev_on = 0;
        c->t_write = 0;
        h->writing--;
        if (h->stopping && h->writing == 0 && h->hooks.drained != NULL)
            h->hooks.drained(h->hooks.arg);
    }
    if (c->state != C_ACTIVE)
        conn_resume(c);
    if (c->eof && c->state != C_ACTIVE && c->in_end == c->in_start)
        c->close_after = 1; /* half-closed, and everything answered */
    if (c->close_after && c->state != C_ACTIVE) {
        if (c->linger && shutdown(c->fd, SHUT_WR) == 0) {
            c->state = C_LINGER;
            c->in_start = c->in_end = 0;
            conn_timer_by(c, httpd_now_ms() + HTTPD_LINGER_MS);
            return 0;
        }
        conn_close(c);
        return -1;
    }
    return 0;
}

/* Room after in_end: compact or grow (never while C_ACTIVE).  0 when
 * there is none to be had. */
static int
conn_in_room(struct conn *c)
{
    size_t limit = c->h->cfg.max_headers + c->h->cfg.max_body + HTTPD_IN_SLACK;
    size_t cap;
    char *p;

    if (c->in_end < c->in_cap)
        return 1;
    if (c->state == C_ACTIVE)
        return 0;
    if (c->in_start > 0) {
        memmove(c->in, c->in + c->in_start, c->in_end - c->in_start);
        c->in_end -= c->in_start;
        c->in_start = 0;
        return 1;
    }
    if (c->in_cap >= limit)
        return 0;
    cap = c->in_cap ? c->in_cap * 2 : HTTPD_IN_INIT;
    if (cap > limit)
        cap = limit;
    p = realloc(c->in, cap);
    if (p == NULL)
        return 0;
    c->in = p;
    c->in_cap = cap;
    return 1;
}

static void
conn_linger_read(struct conn *c)
{
    char buf[4096];
    ssize_t n = read(c->fd, buf, sizeof(buf));

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0 || (c->lingered += (size_t)n) > HTTPD_LINGER_BYTES)
        conn_close(c);
}

static void
conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    ssize_t n;

    (void)fd;
    (void)what;
    if (c->deferred) {
        c->deferred = 0;
        if (c->state != C_ACTIVE && c->state != C_LINGER)
            conn_process(c);
        return;
    }
    if (c->state == C_LINGER) {
        conn_linger_read(c);
        return;
    }
    if (!conn_in_room(c)) {
        if (c->state != C_ACTIVE && c->out_len - c->out_off <= HTTPD_OUT_HIGH) {
            conn_close(c); /* out of memory */
            return;
        }
        /* Waiting for a reply, or for the client to read the replies
         * already queued: resumed by the reply or the write. */
        event_del(c->rev);
        c->paused = 1;
        return;
    }
    n = read(c->fd, c->in + c->in_end, c->in_cap - c->in_end);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n == 0 && (c->state == C_ACTIVE || c->wev_on)) {
        /* A half-close ("printf ... | nc"): the request being answered
         * and those already read still get their replies. */
        c->eof = 1;
        c->paused = 1;
        event_del(c->rev);
        return;
    }
    if (n <= 0) {
        conn_close(c); /* end of file or an error: the client is gone */
        return;
    }
    if (c->in_end == c->in_start && c->state == C_HEAD) {
        c->t_first = httpd_now_ms();
        conn_timer_by(c, c->t_first +
                             (long long)c->h->cfg.request_timeout_s * 1000);
    }
    c->in_end += (size_t)n;
    if (c->state != C_ACTIVE && !c->in_process)
        conn_process(c);
}

static void
conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    (void)fd;
    (void)what;
    if (conn_flush(c) < 0)
        return;
    if (!c->wev_on && c->in_end > c->in_start &&
        (c->state == C_HEAD || c->state == C_BODY || c->state == C_CHUNKED))
        conn_process(c); /* requests held back by HTTPD_OUT_HIGH */
}

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    const struct httpd_config *cfg = &c->h->cfg;
    long long now = httpd_now_ms(), req_ms, idle_ms;

    (void)fd;
    (void)what;
    c->timer_at = 0;
    req_ms = (long long)cfg->request_timeout_s * 1000;
    idle_ms = (long long)cfg->idle_timeout_s * 1000;
    if (c->state == C_LINGER) {
        conn_close(c);
    } else if (c->wev_on) {
        if (now - c->t_write >= req_ms)
            conn_close(c); /* a client that does not read its replies */
        else
            conn_timer_by(c, c->t_write + req_ms);
    } else if (c->state == C_ACTIVE) {
        conn_timer_by(c, now + req_ms); /* bounded by the route */
    } else if (c->t_first != 0) {
        if (now - c->t_first >= req_ms) {
            conn_error(c, 408, 0);
            conn_flush(c);
        } else {
            conn_timer_by(c, c->t_first + req_ms);
        }
    } else if (now - c->t_idle >= idle_ms) {
        conn_close(c);
    } else {
        conn_timer_by(c, c->t_idle + idle_ms);
    }
}

/* ---- accepting -------------------------------------------------------- */

static void
httpd_conn_new(struct httpd *h, int fd, const struct sockaddr *sa)
{
    struct conn *c = calloc(1, sizeof(*c));
    long long now = httpd_now_ms();
    unsigned first;

    if (c == NULL) {
        close(fd);
        return;
    }
    c->fd = fd;
    c->h = h;
    if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
        int one = 1;

        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    c->rev = event_new(h->base, fd, EV_READ | EV_PERSIST, conn_read_cb, c);
    c->wev = event_new(h->base, fd, EV_WRITE | EV_PERSIST, conn_write_cb, c);
    c->timer = evtimer_new(h->base, conn_timer_cb, c);
    if (c->rev == NULL || c->wev == NULL || c->timer == NULL ||
        (h->hooks.accepted != NULL &&
         h->hooks.accepted(&c->pub, sa, h->hooks.arg) < 0)) {
        conn_free(c);
        return;
    }
    c->next = h->conns;
    if (h->conns != NULL)
        h->conns->prev = c;
    h->conns = c;
    c->t_idle = now;
    event_add(c->rev, NULL);
    first = h->cfg.request_timeout_s < h->cfg.idle_timeout_s
                ? h->cfg.request_timeout_s
                : h->cfg.idle_timeout_s;
    conn_timer_by(c, now + (long long)first * 1000);
}

static void
httpd_listeners_enable(struct httpd *h, int on)
{
    unsigned i;

    for (i = 0; i < h->n_listeners; i++)
        if (on)
            event_add(h->lev[i], NULL);
        else
            event_del(h->lev[i]);
}

static void
httpd_accept_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    httpd_listeners_enable(arg, 1);
}

static void
httpd_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
    struct httpd *h = arg;
    int i;

    (void)what;
    for (i = 0; i < HTTPD_ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd;

        memset(&ss, 0, sizeof(ss.ss_family));
        fd = accept4(lfd, (struct sockaddr *)&ss, &sl,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM) {
                struct timeval tv = {0, HTTPD_ACCEPT_PAUSE_MS * 1000};

                httpd_listeners_enable(h, 0);
                evtimer_add(h->accept_pause, &tv);
            }
            return;
        }
        if (h->hooks.place == NULL ||
            h->hooks.place(fd, (struct sockaddr *)&ss, sl, h->hooks.arg) == 0)
            httpd_conn_new(h, fd, (struct sockaddr *)&ss);
        if (h->stopping)
            return;
    }
}

void
httpd_adopt(struct httpd *h, int fd, const struct sockaddr *peer)
{
    if (h->stopping)
        close(fd);
    else
        httpd_conn_new(h, fd, peer);
}

struct httpd *
httpd_new(struct event_base *base, const struct httpd_config *cfg,
          const struct httpd_hooks *hooks)
{
    struct httpd *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return NULL;
    h->base = base;
    h->cfg = *cfg;
    if (h->cfg.request_timeout_s == 0)
        h->cfg.request_timeout_s = 1;
    if (h->cfg.idle_timeout_s == 0)
        h->cfg.idle_timeout_s = 1;
    h->hooks = *hooks;
    h->accept_pause = evtimer_new(base, httpd_accept_resume, h);
    if (h->accept_pause == NULL) {
        free(h);
        return NULL;
    }
    return h;
}

int
httpd_listen(struct httpd *h, int fd)
{
    struct event *ev;

    if (h->n_listeners == HTTPD_MAX_LISTENERS || h->stopping) {
        close(fd);
        return -1;
    }
    ev = event_new(h->base, fd, EV_READ | EV_PERSIST, httpd_accept_cb, h);
    if (ev == NULL || event_add(ev, NULL) < 0) {
        if (ev != NULL)
            event_free(ev);
        close(fd);
        return -1;
    }
    h->lfd[h->n_listeners] = fd;
    h->lev[h->n_listeners] = ev;
    h->n_listeners++;
    return 0;
}

void
httpd_stop(struct httpd *h)
{
    unsigned i;

    if (h == NULL)
        return;
    h->stopping = 1;
    evtimer_del(h->accept_pause);
    for (i = 0; i < h->n_listeners; i++) {
        event_free(h->lev[i]);
        close(h->lfd[i]);
    }
    h->n_listeners = 0;
}

unsigned long
httpd_writing(const struct httpd *h)
{
    return h ? h->writing : 0;
}

void
httpd_free(struct httpd *h)
{
    if (h == NULL)
        return;
    httpd_stop(h);
    h->hooks.drained = NULL;
    while (h->conns != NULL)
        conn_close(h->conns);
    event_free(h->accept_pause);
    free(h);
}
