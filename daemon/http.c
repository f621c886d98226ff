/*
 * http.c - listening sockets, the evhttp of each worker, and what evhttp
 * 2.1.12 lacks: connection counting and a whole-request deadline.
 *
 * Every accepted connection gets a struct http_conn through evhttp's
 * bufferevent callback.  Right after accept (an event activated from that
 * callback, run before the loop polls again) it learns its evhttp
 * connection, sets the close callback that frees it, and is counted; over
 * limits.max_connections, or limits.max_connections_per_addr from its
 * address (addrlimit.c), it is closed at once.  A callback on the input
 * buffer notices the first byte of each request and arms a timer of
 * limits.request_timeout_s; the reply disarms it.  A client that drips
 * bytes is closed when it fires (evhttp's own timeout is idle-only).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "modfilterd.h"

#define HTTP_BACKLOG 1024
#define HTTP_REFUSED_WARN_MS 10000

static int
http_socket_setup(int fd)
{
    int flags = fcntl(fd, F_GETFL);

    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -1;
    return 0;
}

int
http_listen_tcp(const char *hostport, int *port_out)
{
    char host[256], port[8];
    const char *colon = strrchr(hostport, ':');
    struct addrinfo hints, *ai = NULL;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    size_t hlen;
    int fd = -1, one = 1, r;

    if (colon == NULL || strlen(colon + 1) >= sizeof(port))
        goto bad;
    hlen = (size_t)(colon - hostport);
    if (hostport[0] == '[' && hlen >= 2 && hostport[hlen - 1] == ']') {
        hostport++;
        hlen -= 2;
    }
    if (hlen >= sizeof(host))
        goto bad;
    memcpy(host, hostport, hlen);
    host[hlen] = '\0';
    snprintf(port, sizeof(port), "%s", colon + 1);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    r = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
    if (r != 0) {
        log_warnx("server.listen %s: %s", hostport, gai_strerror(r));
        goto fail;
    }
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) {
        log_warn("server.listen %s: socket", hostport);
        goto fail;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (http_socket_setup(fd) < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) ||
        listen(fd, HTTP_BACKLOG) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) {
        log_warn("server.listen %s", hostport);
        goto fail;
    }
    if (ss.ss_family == AF_INET)
        *port_out = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    else
        *port_out = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    freeaddrinfo(ai);
    return fd;
bad:
    log_warnx("server.listen %s: not HOST:PORT", hostport);
fail:
    if (ai != NULL)
        freeaddrinfo(ai);
    if (fd >= 0)
        close(fd);
    return -1;
}

int
http_listen_unix(const char *path)
{
    struct sockaddr_un sun;
    struct stat sb;
    int fd = -1;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        log_warnx("server.socket %s: path too long", path);
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path));
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) {
        log_warn("server.socket %s: socket", path);
        return -1;
    }
    if (lstat(path, &sb) == 0) {
        /* A socket left by a daemon that died is replaced; a live one or
         * anything that is not a socket is not. */
        if (!S_ISSOCK(sb.st_mode)) {
            log_warnx("server.socket %s: exists and is not a socket", path);
            goto fail;
        }
        if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
            log_warnx("server.socket %s: another process is listening", path);
            goto fail;
        }
        close(fd);
        unlink(path);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0) {
            log_warn("server.socket %s: socket", path);
            return -1;
        }
    }
    if (http_socket_setup(fd) < 0 ||
        bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        chmod(path, 0660) < 0 || listen(fd, HTTP_BACKLOG) < 0) {
        log_warn("server.socket %s", path);
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return -1;
}

/* ---- connections ------------------------------------------------------ */

static size_t
http_bucket(const struct evhttp_connection *evcon)
{
    return ((uintptr_t)evcon >> 4) % HTTP_CONN_BUCKETS;
}

struct http_conn *
http_conn_of(struct worker *w, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct http_conn *c;

    if (evcon == NULL)
        return NULL;
    for (c = w->conns[http_bucket(evcon)]; c != NULL; c = c->next)
        if (c->evcon == evcon)
            return c;
    return NULL;
}

int
http_addr_local(const struct sockaddr *sa)
{
    if (sa == NULL)
        return 0;
    if (sa->sa_family == AF_UNIX)
        return 1;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a =
            &((const struct sockaddr_in6 *)sa)->sin6_addr;

        return IN6_IS_ADDR_LOOPBACK(a) ||
               (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

static void
http_conn_closed(struct evhttp_connection *evcon, void *arg)
{
    struct http_conn *c = arg;
    struct worker *w = c->w;
    struct http_conn **pp;

    (void)evcon;
    if (c->gone != NULL)
        c->gone(c->gone_arg);
    for (pp = &w->conns[http_bucket(c->evcon)]; *pp != NULL; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    if (c->writing)
        w->writing--;
    if (c->addr_counted)
        addrlimit_release(w->addrlimit, &c->addr);
    w->n_conns--;
    metrics_connections_add(-1);
    evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->in_cb);
    event_free(c->timer);
    free(c);
    worker_maybe_done(w);
}

/* The first byte of a request arms its deadline. */
static void
http_conn_input(struct evbuffer *buf, const struct evbuffer_cb_info *info,
                void *arg)
{
    struct http_conn *c = arg;
    struct timeval tv;

    (void)buf;
    if (info->n_added == 0 || c->deadline || c->evcon == NULL)
        return;
    tv.tv_sec = c->w->request_timeout_s;
    tv.tv_usec = 0;
    evtimer_add(c->timer, &tv);
    c->deadline = 1;
}

/* Count c against limits.max_connections_per_addr (Unix-socket peers are
 * exempt): 0 when it may stay, -1 when its address is at the limit.  The
 * warning is rate-limited: a flood of refusals is one line per interval. */
static int
http_conn_count_addr(struct http_conn *c)
{
    static long long last_warn_ms; /* atomic, process-wide */
    const struct sockaddr *sa = evhttp_connection_get_addr(c->evcon);
    enum addrlimit_result r;
    unsigned long long n;
    long long now, last;
    char text[INET6_ADDRSTRLEN];

    if (c->w->addrlimit == NULL || addrlimit_key_of(sa, &c->addr) < 0)
        return 0;
    r = addrlimit_acquire(c->w->addrlimit, &c->addr);
    c->addr_counted = r == ADDRLIMIT_COUNTED;
    if (r != ADDRLIMIT_REFUSED)
        return 0;
    n = metrics_connection_refused(METRICS_REFUSED_PER_ADDR);
    if (inet_ntop(c->addr.family, c->addr.addr, text, sizeof(text)) == NULL)
        snprintf(text, sizeof(text), "?");
    now = util_now_ms();
    last = __atomic_load_n(&last_warn_ms, __ATOMIC_RELAXED);
    if (now - last >= HTTP_REFUSED_WARN_MS &&
        __atomic_compare_exchange_n(&last_warn_ms, &last, now, 0,
                                    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        log_warnx("closing new connections from %s: "
                  "limits.max_connections_per_addr=%lu reached (%llu "
                  "refused since start; at most one such line every %d s)",
                  text, c->w->max_connections_per_addr, n,
                  HTTP_REFUSED_WARN_MS / 1000);
    else
        log_debug("closing a new connection from %s: "
                  "limits.max_connections_per_addr reached",
                  text);
    return -1;
}

/* Right after accept: adopt the evhttp connection.  Later: the deadline. */
static void
http_conn_timer(evutil_socket_t fd, short what, void *arg)
{
    struct http_conn *c = arg;
    struct worker *w = c->w;
    bufferevent_data_cb rd, wr;
    bufferevent_event_cb ev;
    void *cbarg = NULL;

    (void)fd;
    (void)what;
    if (c->evcon == NULL) {
        bufferevent_getcb(c->bev, &rd, &wr, &ev, &cbarg);
        if (cbarg == NULL) {
            /* Not an evhttp connection after all (cannot happen with
             * libevent 2.1): leave it untracked rather than guess. */
            log_warnx("worker %u: an accepted connection has no evhttp "
                      "connection",
                      w->index);
            return;
        }
        c->evcon = cbarg; /* evhttp passes its connection to its callbacks */
        evhttp_connection_set_closecb(c->evcon, http_conn_closed, c);
        c->local = http_addr_local(evhttp_connection_get_addr(c->evcon));
        c->next = w->conns[http_bucket(c->evcon)];
        w->conns[http_bucket(c->evcon)] = c;
        w->n_conns++;
        metrics_connections_add(1);
        if ((unsigned long)metrics_connections() > w->max_connections ||
            w->stopping) {
            log_debug("closing a new connection: %s",
                      w->stopping ? "shutting down"
                                  : "limits.max_connections reached");
            if (!w->stopping)
                metrics_connection_refused(METRICS_REFUSED_MAX_CONNECTIONS);
            evhttp_connection_free(c->evcon); /* frees c */
            return;
        }
        if (http_conn_count_addr(c) < 0) {
            evhttp_connection_free(c->evcon); /* frees c */
            return;
        }
        if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
            struct evbuffer_cb_info info = {0, 1, 0};

            http_conn_input(NULL, &info, c);
        }
        return;
    }
    c->deadline = 0;
    if (c->gone != NULL || c->writing)
        return; /* bounded by redis.timeout_ms / the write timeout */
    log_debug("closing a connection: no complete request within "
              "limits.request_timeout_s=%u",
              w->request_timeout_s);
    metrics_request(METRICS_ROUTE_OTHER, 408, (double)w->request_timeout_s);
    evhttp_connection_free(c->evcon); /* frees c */
}

static struct bufferevent *
http_bevcb(struct event_base *base, void *arg)
{
    struct worker *w = arg;
    struct http_conn *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL; /* evhttp makes its own; the connection goes untracked */
    c->w = w;
    c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    c->timer = evtimer_new(base, http_conn_timer, c);
    if (c->bev == NULL || c->timer == NULL)
        goto fail;
    c->in_cb =
        evbuffer_add_cb(bufferevent_get_input(c->bev), http_conn_input, c);
    if (c->in_cb == NULL)
        goto fail;
    /* Runs in this loop iteration, after evhttp has set up the
     * connection and before any I/O on it. */
    event_active(c->timer, EV_TIMEOUT, 1);
    return c->bev;
fail:
    if (c->timer != NULL)
        event_free(c->timer);
    if (c->bev != NULL)
        bufferevent_free(c->bev);
    free(c);
    return NULL;
}

static void
http_sent(struct evhttp_request *req, void *arg)
{
    struct http_conn *c = arg;

    (void)req;
    if (c->writing) {
        c->writing = 0;
        c->w->writing--;
    }
    worker_maybe_done(c->w);
}

void
http_send(struct evhttp_request *req, struct http_conn *c, int status,
          const char *content_type, struct evbuffer *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);

    if (content_type != NULL)
        evhttp_add_header(h, "Content-Type", content_type);
    if (c != NULL) {
        struct worker *w = c->w;

        c->gone = NULL;
        c->gone_arg = NULL;
        if (c->deadline) {
            evtimer_del(c->timer);
            c->deadline = 0;
        }
        /* Bytes of a pipelined request already read start its clock. */
        if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
            struct evbuffer_cb_info info = {0, 1, 0};

            http_conn_input(NULL, &info, c);
        }
        if (w->stopping)
            evhttp_add_header(h, "Connection", "close");
        c->writing = 1;
        w->writing++;
        evhttp_request_set_on_complete_cb(req, http_sent, c);
    }
    /* May free the connection (Connection: close): c is not used after. */
    evhttp_send_reply(req, status, NULL, body);
}

/* ---- per-worker server ------------------------------------------------ */

int
http_worker_init(struct worker *w, const struct config *cfg, const int *fds,
                 unsigned n_fds)
{
    unsigned i;
    size_t lib_body;

    w->http = evhttp_new(w->base);
    if (w->http == NULL) {
        log_warnx("worker %u: evhttp_new failed", w->index);
        return -1;
    }
    /* libevent's body limit sits above ours so that most oversized bodies
     * get the daemon's JSON 413; only far larger ones meet libevent's. */
    lib_body = cfg->max_body * 2 + 4096;
    evhttp_set_max_body_size(w->http, (ev_ssize_t)lib_body);
    evhttp_set_max_headers_size(w->http, (ev_ssize_t)cfg->max_headers);
    evhttp_set_timeout(w->http, (int)cfg->idle_timeout_s);
    evhttp_set_allowed_methods(
        w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                     EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                     EVHTTP_REQ_PATCH);
    evhttp_set_bevcb(w->http, http_bevcb, w);
    evhttp_set_gencb(w->http, routes_dispatch, w);
    for (i = 0; i < n_fds && i < 2; i++) {
        int fd = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);

        if (fd < 0) {
            log_warn("worker %u: dup", w->index);
            return -1;
        }
        w->bound[w->n_bound] = evhttp_accept_socket_with_handle(w->http, fd);
        if (w->bound[w->n_bound] == NULL) {
            log_warnx("worker %u: cannot accept on a listener", w->index);
            close(fd);
            return -1;
        }
        w->n_bound++;
    }
    return 0;
}

void
http_worker_stop_accepting(struct worker *w)
{
    unsigned i;

    for (i = 0; i < w->n_bound; i++)
        evhttp_del_accept_socket(w->http, w->bound[i]);
    w->n_bound = 0;
}

void
http_worker_free(struct worker *w)
{
    if (w->http != NULL)
        evhttp_free(w->http);
    w->http = NULL;
}
