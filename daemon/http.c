/*
 * http.c - listening sockets, and the daemon's side of each worker's
 * httpd (httpd.c): its limits from the config, and at accept the
 * connection counts: over limits.max_connections, or
 * limits.max_connections_per_addr from one address (addrlimit.c), a new
 * connection is closed at once (no HTTP reply is possible before a
 * request).  Deadlines, body and header limits are httpd's.  New
 * connections are spread over the workers (placement, below).
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

#include <event2/event.h>

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
http_resolve_tcp(const char *hostport, struct addrinfo **ai, char *msg,
                 size_t len)
{
    char host[256], port[8];
    const char *colon = strrchr(hostport, ':'), *h = hostport;
    struct addrinfo hints;
    size_t hlen;
    int r;

    *ai = NULL;
    if (colon == NULL || strlen(colon + 1) >= sizeof(port))
        goto bad;
    hlen = (size_t)(colon - hostport);
    if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen >= sizeof(host))
        goto bad;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    snprintf(port, sizeof(port), "%s", colon + 1);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    r = getaddrinfo(host[0] ? host : NULL, port, &hints, ai);
    if (r != 0) {
        *ai = NULL;
        snprintf(msg, len, "%s",
                 r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
        return -1;
    }
    return 0;
bad:
    snprintf(msg, len, "not HOST:PORT");
    return -1;
}

int
http_listen_tcp(const char *hostport, int *port_out)
{
    struct addrinfo *ai;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    char msg[256];
    int fd = -1, one = 1;

    if (http_resolve_tcp(hostport, &ai, msg, sizeof(msg)) < 0) {
        log_errx("server.listen %s: %s", hostport, msg);
        return -1;
    }
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) {
        log_err("server.listen %s: socket", hostport);
        goto fail;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (http_socket_setup(fd) < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) ||
        listen(fd, HTTP_BACKLOG) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) {
        log_err("server.listen %s", hostport);
        goto fail;
    }
    if (ss.ss_family == AF_INET)
        *port_out = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    else
        *port_out = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    freeaddrinfo(ai);
    return fd;
fail:
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
        log_errx("server.socket %s: path too long", path);
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path));
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) {
        log_err("server.socket %s: socket", path);
        return -1;
    }
    if (lstat(path, &sb) == 0) {
        /* A socket left by a daemon that died is replaced; a live one or
         * anything that is not a socket is not. */
        if (!S_ISSOCK(sb.st_mode)) {
            log_errx("server.socket %s: exists and is not a socket", path);
            goto fail;
        }
        if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
            log_errx("server.socket %s: another process is listening", path);
            goto fail;
        }
        close(fd);
        unlink(path);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0) {
            log_err("server.socket %s: socket", path);
            return -1;
        }
    }
    if (http_socket_setup(fd) < 0 ||
        bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        chmod(path, 0660) < 0 || listen(fd, HTTP_BACKLOG) < 0) {
        log_err("server.socket %s", path);
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return -1;
}

/* ---- connections ------------------------------------------------------ */

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

/* Count a connection from sa against limits.max_connections_per_addr
 * (Unix-socket peers are exempt): 0 when it may stay (*key gets the
 * counted address, malloc'd, or NULL when not counted), -1 when its
 * address is at the limit.  The warning is rate-limited: a flood of
 * refusals is one line per interval. */
static int
http_count_addr(struct worker *w, const struct sockaddr *sa,
                struct addrlimit_key **key)
{
    static long long last_warn_ms; /* atomic, process-wide */
    struct addrlimit_key k;
    enum addrlimit_result r;
    unsigned long long n;
    long long now, last;
    char text[INET6_ADDRSTRLEN];

    *key = NULL;
    if (w->addrlimit == NULL || addrlimit_key_of(sa, &k) < 0)
        return 0;
    r = addrlimit_acquire(w->addrlimit, &k);
    if (r == ADDRLIMIT_COUNTED) {
        *key = malloc(sizeof(k));
        if (*key == NULL) {
            addrlimit_release(w->addrlimit, &k);
            return -1;
        }
        **key = k;
        return 0;
    }
    if (r != ADDRLIMIT_REFUSED)
        return 0;
    n = metrics_connection_refused(METRICS_REFUSED_PER_ADDR);
    if (inet_ntop(k.family, k.addr, text, sizeof(text)) == NULL)
        snprintf(text, sizeof(text), "?");
    now = util_now_ms();
    last = __atomic_load_n(&last_warn_ms, __ATOMIC_RELAXED);
    if (now - last >= HTTP_REFUSED_WARN_MS &&
        __atomic_compare_exchange_n(&last_warn_ms, &last, now, 0,
                                    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        log_warnx("closing new connections from %s: "
                  "limits.max_connections_per_addr=%lu reached (%llu "
                  "refused since start; at most one such line every %d s)",
                  text, w->max_connections_per_addr, n,
                  HTTP_REFUSED_WARN_MS / 1000);
    else
        log_debug("closing a new connection from %s: "
                  "limits.max_connections_per_addr reached",
                  text);
    return -1;
}

static int
http_accepted(struct http_conn *c, const struct sockaddr *peer, void *arg)
{
    struct worker *w = arg;
    struct addrlimit_key *key = NULL;

    if ((unsigned long)metrics_connections() >= w->max_connections ||
        w->stopping) {
        log_debug("closing a new connection: %s",
                  w->stopping ? "shutting down"
                              : "limits.max_connections reached");
        if (!w->stopping)
            metrics_connection_refused(METRICS_REFUSED_MAX_CONNECTIONS);
        return -1;
    }
    if (http_count_addr(w, peer, &key) < 0)
        return -1;
    c->user = key;
    c->local = http_addr_local(peer);
    metrics_connections_add(w->index, 1);
    return 0;
}

static void
http_closed(struct http_conn *c, void *arg)
{
    struct worker *w = arg;
    struct addrlimit_key *key = c->user;

    if (key != NULL) {
        addrlimit_release(w->addrlimit, key);
        free(key);
        c->user = NULL;
    }
    metrics_connections_add(w->index, -1);
}

static void
http_answered(int status, double seconds, void *arg)
{
    (void)arg;
    if (status == 408)
        log_debug("closing a connection: no complete request within "
                  "limits.request_timeout_s");
    metrics_request(METRICS_ROUTE_OTHER, status, seconds);
}

static void
http_drained(void *arg)
{
    worker_maybe_done(arg);
}

/* ---- placement: new connections spread over the workers ---------------
 *
 * Every worker accepts on the shared listening sockets, and the kernel
 * wakes whichever waits: a client opening its pool of keep-alive
 * connections at once could see most of them land on one worker, which
 * then does most of the work while another idles (measured: 50 of 64 on
 * one of two).  So the worker that accepts a connection places it on the
 * worker with the fewest, its own on a tie, and hands it over through that
 * worker's inbox and an event made active from this thread. */

struct http_handoff {
    struct http_handoff *next;
    int fd;
    struct sockaddr_storage peer;
};

void
http_workers_link(struct worker *const *all, unsigned n)
{
    unsigned i;

    for (i = 0; i < n; i++) {
        all[i]->peers = all;
        all[i]->n_peers = n;
    }
}

/* Connections open on w or on their way to it. */
static long
http_load(struct worker *w)
{
    return metrics_worker_connections(w->index) +
           (long)__atomic_load_n(&w->incoming, __ATOMIC_RELAXED);
}

static int
http_place(int fd, const struct sockaddr *peer, socklen_t len, void *arg)
{
    struct worker *w = arg, *to = w;
    long least = http_load(w);
    struct http_handoff *ho;
    unsigned i;

    for (i = 0; i < w->n_peers; i++) {
        long n = http_load(w->peers[i]);

        if (n < least) {
            least = n;
            to = w->peers[i];
        }
    }
    if (to == w || len > sizeof(ho->peer) ||
        (ho = calloc(1, sizeof(*ho))) == NULL)
        return 0;
    ho->fd = fd;
    memcpy(&ho->peer, peer, len);
    __atomic_add_fetch(&to->incoming, 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(&to->handoff_mu);
    ho->next = to->handoff;
    to->handoff = ho;
    pthread_mutex_unlock(&to->handoff_mu);
    event_active(to->adopt_ev, EV_READ, 1);
    return 1;
}

/* Takes the inbox; with adopt 0 (freeing) closes what it held. */
static void
http_handoff_take(struct worker *w, int adopt)
{
    struct http_handoff *ho, *next;

    pthread_mutex_lock(&w->handoff_mu);
    ho = w->handoff;
    w->handoff = NULL;
    pthread_mutex_unlock(&w->handoff_mu);
    for (; ho != NULL; ho = next) {
        next = ho->next;
        if (adopt)
            httpd_adopt(w->httpd, ho->fd, (struct sockaddr *)&ho->peer);
        else
            close(ho->fd);
        __atomic_sub_fetch(&w->incoming, 1, __ATOMIC_RELAXED);
        free(ho);
    }
}

static void
http_adopt_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    http_handoff_take(arg, 1);
}

/* ---- per-worker server ------------------------------------------------ */

int
http_worker_init(struct worker *w, const struct config *cfg, const int *fds,
                 unsigned n_fds)
{
    struct httpd_config hc;
    struct httpd_hooks hooks;
    unsigned i;

    memset(&hc, 0, sizeof(hc));
    hc.max_body = cfg->max_body;
    hc.max_headers = cfg->max_headers;
    hc.request_timeout_s = cfg->request_timeout_s;
    hc.idle_timeout_s = cfg->idle_timeout_s;
    if (pthread_mutex_init(&w->handoff_mu, NULL) != 0) {
        log_errx("worker %u: cannot set up a mutex", w->index);
        return -1;
    }
    w->adopt_ev = event_new(w->base, -1, 0, http_adopt_cb, w);
    if (w->adopt_ev == NULL) {
        pthread_mutex_destroy(&w->handoff_mu);
        log_errx("worker %u: out of memory", w->index);
        return -1;
    }
    memset(&hooks, 0, sizeof(hooks));
    hooks.place = http_place;
    hooks.accepted = http_accepted;
    hooks.closed = http_closed;
    hooks.request = routes_dispatch;
    hooks.answered = http_answered;
    hooks.drained = http_drained;
    hooks.arg = w;
    w->httpd = httpd_new(w->base, &hc, &hooks);
    if (w->httpd == NULL) {
        log_errx("worker %u: out of memory", w->index);
        return -1;
    }
    for (i = 0; i < n_fds && i < 2; i++) {
        int fd = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);

        if (fd < 0) {
            log_err("worker %u: dup", w->index);
            return -1;
        }
        if (httpd_listen(w->httpd, fd) < 0) { /* closes fd */
            log_errx("worker %u: cannot accept on a listener", w->index);
            return -1;
        }
    }
    return 0;
}

void
http_worker_stop_accepting(struct worker *w)
{
    httpd_stop(w->httpd);
}

void
http_worker_free(struct worker *w)
{
    if (w->adopt_ev != NULL) {
        http_handoff_take(w, 0);
        event_free(w->adopt_ev);
        w->adopt_ev = NULL;
        pthread_mutex_destroy(&w->handoff_mu);
    }
    httpd_free(w->httpd);
    w->httpd = NULL;
}
