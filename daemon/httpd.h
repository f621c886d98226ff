/*
 * httpd.h - the daemon's HTTP/1.1 server on one libevent event_base: it
 * accepts on listening sockets, reads requests (httpparse.c), hands each
 * complete request to a callback and writes the reply it is given.
 *
 * One struct httpd per worker thread; everything here runs on that
 * thread's loop.  Per connection: one read event (persistent), a write
 * event armed only while a reply could not be written at once, one timer,
 * one input and one output buffer, reused from request to request.
 *
 * A connection has at most one request being answered: while it waits
 * (for Redis, the spool), further pipelined requests stay unparsed in the
 * input buffer (bounded; reading pauses when it is full) and are answered
 * in order afterwards.  Replies of pipelined requests answered at once go
 * out in one write.  A client that shuts down its sending side still gets
 * the replies to what it sent, then the connection closes; a connection
 * that fails (reset, a write error, a deadline) closes at once, and the
 * request being answered is told through the gone hook.
 *
 * Limits (struct httpd_config): a head over max_headers -> 431, a body
 * over max_body -> the request is still handed over with too_large set
 * (the route answers 413) and the connection closes after the reply; no
 * complete request within request_timeout_s of its first byte -> 408 and
 * close; nothing for idle_timeout_s between requests -> close; a client
 * that does not read its replies for request_timeout_s (no write makes
 * progress; a slow reader that keeps reading is not cut) -> close.  Errors
 * httpd answers itself are JSON: {"error": {"code", "message"}}.
 */
#ifndef HTTPD_H
#define HTTPD_H

#include <stddef.h>
#include <sys/socket.h>

#include "httpparse.h"

struct event_base;
struct httpd;
struct http_conn;

/* A request, from the callback to its one reply.  Every pointer is valid
 * until the reply (http_reply) or, when the client goes first, until the
 * connection's gone hook has run; owned by the connection. */
struct http_request {
    struct http_conn *conn;
    int method;        /* HTTP_METHOD_* */
    const char *uri;   /* the request target as sent, without the query */
    const char *path;  /* = uri ("/v1/score"; an absolute-form target's
                          path part), NUL-terminated, not %-decoded */
    const char *query; /* after '?', NUL-terminated; NULL without '?' */
    const char *body;  /* body_len bytes (chunked: decoded) */
    size_t body_len;
    int minor;     /* HTTP/1.minor */
    int too_large; /* the body passes max_body: body is empty, reply
                      413; the connection closes after the reply */
    /* private: httpd.c's */
    const char *head;
    struct httpparse_request *parsed;
};

/* One connection.  local, gone and gone_arg are for the daemon; the rest
 * is httpd.c's. */
struct http_conn {
    int local;  /* loopback or Unix-socket peer */
    void *user; /* the accepted hook's, untouched by httpd */
    /* A request being answered later: gone(gone_arg) runs if the
     * connection closes first; after it the request must not be used
     * (its reply is dropped by the caller). */
    void (*gone)(void *arg);
    void *gone_arg;
};

struct httpd_config {
    size_t max_body, max_headers;
    unsigned request_timeout_s, idle_timeout_s;
};

struct httpd_hooks {
    /* Just accepted here, before anything is set up: 1 when the hook
     * took fd (to hand it to another server's httpd_adopt), 0 to serve
     * it here.  NULL: serve every connection where it was accepted. */
    int (*place)(int fd, const struct sockaddr *peer, socklen_t peer_len,
                 void *arg);
    /* A new connection; peer is its address (AF_UNIX for a Unix socket).
     * 0 keeps it, -1 closes it at once (closed is not called). */
    int (*accepted)(struct http_conn *c, const struct sockaddr *peer,
                    void *arg);
    /* A connection accepted with 0 is closing. */
    void (*closed)(struct http_conn *c, void *arg);
    /* A complete request: answer it once with http_reply, now or later. */
    void (*request)(struct http_request *req, void *arg);
    /* httpd answered status itself (400, 408, 431, 501, 505) after
     * seconds since the request's first byte. */
    void (*answered)(int status, double seconds, void *arg);
    /* While stopping: no connection has output waiting any more. */
    void (*drained)(void *arg);
    void *arg;
};

/* A server on base with limits cfg and hooks (both copied).  NULL on
 * allocation failure. */
struct httpd *httpd_new(struct event_base *base, const struct httpd_config *cfg,
                        const struct httpd_hooks *hooks);
/* Accept on fd (a listening socket, non-blocking; owned from now on,
 * also on failure).  -1 on failure. */
int httpd_listen(struct httpd *h, int fd);
/* Serve fd, a connection another server accepted and placed here
 * (owned from now on; closed at once while h is stopping).  On h's
 * thread. */
void httpd_adopt(struct httpd *h, int fd, const struct sockaddr *peer);
/* Stop accepting (closes the listening fds); replies from now on carry
 * Connection: close and their connections close once written. */
void httpd_stop(struct httpd *h);
/* Connections with a reply not yet fully written. */
unsigned long httpd_writing(const struct httpd *h);
/* Close every connection (gone hooks run) and free h.  NULL-safe. */
void httpd_free(struct httpd *h);

/* The value of the first header field called name (case-insensitive),
 * NUL-terminated, or NULL. */
const char *http_request_header(const struct http_request *req,
                                const char *name);
/* Add a header line to req's reply ("Name: value"); name and value are
 * copied.  Content-Type, Content-Length, Date and Connection are
 * httpd's. */
void http_reply_header(struct http_request *req, const char *name,
                       const char *value);
/* Send the reply: status, the headers added, Content-Type (when not NULL)
 * and len bytes of body (copied; not sent for HEAD).  req is finished:
 * it and its pointers must not be used after the call. */
void http_reply(struct http_request *req, int status, const char *ctype,
                const void *body, size_t len);
/* The reason phrase of status ("OK"). */
const char *http_status_text(int status);

#endif
