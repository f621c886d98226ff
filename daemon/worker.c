/*
 * worker.c - one event loop per thread.  Each worker owns its event_base,
 * httpd (accepting on dup()s of the shared listening sockets: the kernel
 * wakes whichever loop is free), clf_scorer and Redis connection.  Workers
 * share nothing mutable but atomics and the published struct state.
 *
 * Stopping (worker_stop, from the main thread): stop accepting, let
 * requests waiting on Redis finish and replies drain, bounded by
 * redis.timeout_ms + WORKER_GRACE_MS; then the loop ends and worker_free
 * fails whatever is left (queue_free) before freeing the server.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "modfilterd.h"
#include "queue.h"

#define WORKER_GRACE_MS 2000
#define WORKER_UNQUEUED_LOG_S 10
/* Worker 0 looks at Redis this often: while Redis refuses writes it
 * probes whether it takes them again, and every redis.check_interval_s
 * it reads the eviction policy again (worker_watch_cb). */
#define WORKER_WATCH_MS 1000

/* Workers, and those whose Redis connection is ready (atomics). */
static unsigned worker_total, worker_redis_up;

/* queue_keep_urgent's answer: a rebuild is worth a line in the log. */
static void
worker_kept_urgent(enum queue_status st, long long n, void *arg)
{
    (void)arg;
    if (st != QUEUE_OK)
        log_warnx("redis: could not rebuild the urgent order (%s); the first "
                  "list or claim will",
                  st == QUEUE_TIMEOUT ? "timeout" : "error");
    else if (n >= 0)
        log_info("redis: rebuilt the urgent order: %lld queued item(s)", n);
}

/* queue_memory's answer, at each connection of worker 0 (every worker
 * talks to the same Redis; one voice is enough) and every
 * redis.check_interval_s while connected (an operator's CONFIG SET is
 * seen without a reconnection).  Queued items have no TTL, so a policy
 * that evicts any key can lose comments already acknowledged (queue.h,
 * REDIS.md "Eviction").  Said in the log, in /metrics and as a /readyz
 * warning, but not by /readyz's status: the daemon still stores every
 * comment, and refusing them would lose them for certain (README,
 * "Running in production").  The log speaks at a connection and when the
 * answer changes, not at every check. */
static void
worker_memory_checked(enum queue_status st, const struct queue_memory *m,
                      void *arg)
{
    struct worker *w = arg;
    char said[sizeof w->memory_said];
    int was_evicting = strncmp(w->memory_said, "evicts ", 7) == 0;

    w->memory_asking = 0;
    if (st != QUEUE_OK) {
        metrics_redis_evicting_set(-1);
        if (strcmp(w->memory_said, "unknown") != 0 && !w->stopping)
            log_warnx("redis: cannot tell whether Redis may evict queued "
                      "comments (%s); carrying on",
                      st == QUEUE_TIMEOUT ? "INFO memory timed out"
                                          : queue_last_error(w->queue));
        snprintf(w->memory_said, sizeof w->memory_said, "unknown");
        return;
    }
    metrics_redis_evicting_set(m->evicts);
    snprintf(said, sizeof said, "%s %s",
             m->evicts    ? "evicts"
             : m->allkeys ? "may"
                          : "keeps",
             m->policy);
    if (strcmp(said, w->memory_said) == 0)
        return;
    snprintf(w->memory_said, sizeof w->memory_said, "%s", said);
    if (m->evicts)
        log_errx("redis: maxmemory-policy is %s with maxmemory %llu bytes: "
                 "Redis may evict queued comments, which are then lost "
                 "after they were acknowledged; set maxmemory-policy "
                 "noeviction",
                 m->policy, m->maxmemory);
    else if (m->allkeys)
        log_warnx("redis: maxmemory-policy is %s: once maxmemory is set, "
                  "Redis may evict queued comments; set maxmemory-policy "
                  "noeviction",
                  m->policy);
    else if (was_evicting)
        log_info("redis: maxmemory-policy is now %s: Redis no longer evicts "
                 "queued comments",
                 m->policy);
}

static void
worker_memory_ask(struct worker *w)
{
    w->memory_due_ms =
        (long long)(util_monotonic() * 1000) + w->check_interval_s * 1000LL;
    w->memory_asking = 1;
    if (queue_memory(w->queue, worker_memory_checked, w) < 0)
        worker_memory_checked(QUEUE_ERROR, NULL, w);
}

static void
worker_probed(enum queue_status st, long long n, void *arg)
{
    struct worker *w = arg;

    (void)st;
    (void)n;
    w->probing = 0; /* queue.c recorded the answer */
}

/* Worker 0, every WORKER_WATCH_MS.  While Redis refuses writes (queue.h,
 * "writes Redis refuses"), a probe write each time: /readyz may answer
 * 503 for it, so no comment may come to find out that Redis takes them
 * again.  The log tells when the refusal starts, changes and ends. */
static void
worker_watch_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    char msg[QUEUE_REFUSAL_MAX];
    int kind = queue_refusing(msg, sizeof msg);

    (void)fd;
    (void)what;
    if (kind != w->refusal_logged) {
        if (kind >= 0)
            log_warnx("redis: Redis refuses writes (%s); comments that need "
                      "queueing %s until it takes them again",
                      msg, w->spool ? "are spooled" : "get 503");
        else
            log_info("redis: Redis takes writes again");
        w->refusal_logged = kind;
    }
    if (w->stopping || !w->redis_ready)
        return;
    if (kind >= 0 && !w->probing &&
        queue_probe_write(w->queue, worker_probed, w) == 0)
        w->probing = 1;
    if (w->check_interval_s > 0 && !w->memory_asking &&
        (long long)(util_monotonic() * 1000) >= w->memory_due_ms)
        worker_memory_ask(w);
}

void
worker_unqueued(struct worker *w, int timed_out)
{
    static long long logged_ms; /* atomic: the last line, monotonic */
    static unsigned long quiet; /* atomic: not logged since */
    long long now = (long long)(util_monotonic() * 1000);
    long long last = __atomic_load_n(&logged_ms, __ATOMIC_RELAXED);

    /* One line per WORKER_UNQUEUED_LOG_S for the whole daemon: the worker
     * that moves the time on writes it. */
    if ((last != 0 && now - last < WORKER_UNQUEUED_LOG_S * 1000) ||
        !__atomic_compare_exchange_n(&logged_ms, &last, now, 0,
                                     __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        __atomic_add_fetch(&quiet, 1, __ATOMIC_RELAXED);
        return;
    }
    log_warnx("redis: a comment was not queued (%s); it goes to the spool "
              "when one is set, else the client gets 503 (%lu more since "
              "the last such line)",
              timed_out ? "no answer in time" : queue_last_error(w->queue),
              __atomic_exchange_n(&quiet, 0, __ATOMIC_RELAXED));
}

static void
worker_redis_state(int ready, const char *why, void *arg)
{
    struct worker *w = arg;

    if (ready && !w->redis_ready)
        __atomic_add_fetch(&worker_redis_up, 1, __ATOMIC_RELAXED);
    else if (!ready && w->redis_ready)
        __atomic_sub_fetch(&worker_redis_up, 1, __ATOMIC_RELAXED);
    w->redis_ready = ready;
    /* Every worker has its own connection; one voice is enough. */
    if (w->index != 0) {
        log_debug("worker %u: redis %s%s%s", w->index,
                  ready ? "ready" : "unavailable", why ? ": " : "",
                  why ? why : "");
        return;
    }
    if (ready) {
        struct state *st = state_acquire();

        log_info("redis: %s", why ? why : "connected");
        w->memory_said[0] = '\0'; /* said again at each connection */
        worker_memory_ask(w);
        /* Ours to rebuild, not the first moderator's (REDIS.md, "The
         * urgent order"); a reload that switches to urgent leaves it to
         * the first list or claim. */
        if (st != NULL && st->cfg->order_urgent)
            queue_keep_urgent(w->queue, worker_kept_urgent, NULL);
        state_release(st);
    } else
        log_warnx("redis unavailable%s%s; comments that need queueing %s "
                  "until it is back",
                  why ? ": " : "", why ? why : "",
                  w->spool ? "are spooled" : "get 503");
}

static void
worker_grace_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;

    (void)fd;
    (void)what;
    if (w->pending > 0 || httpd_writing(w->httpd) > 0)
        log_warnx("worker %u: %lu request(s) still waiting on Redis and %lu "
                  "repl(ies) unsent after the grace period",
                  w->index, w->pending, httpd_writing(w->httpd));
    event_base_loopbreak(w->base);
}

static void
worker_stop_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    struct timeval tv;
    unsigned ms = w->redis_timeout_ms + WORKER_GRACE_MS;

    (void)fd;
    (void)what;
    if (w->stopping)
        return;
    w->stopping = 1;
    if (w->watch_ev != NULL)
        event_del(w->watch_ev);
    http_worker_stop_accepting(w);
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    evtimer_add(w->grace_ev, &tv);
    worker_maybe_done(w);
}

int
worker_redis_ready(unsigned *up, unsigned *total)
{
    unsigned u = __atomic_load_n(&worker_redis_up, __ATOMIC_RELAXED);
    unsigned t = __atomic_load_n(&worker_total, __ATOMIC_RELAXED);

    if (up != NULL)
        *up = u;
    if (total != NULL)
        *total = t;
    return t > 0 && u == t;
}

void
worker_maybe_done(struct worker *w)
{
    if (w->stopping && w->pending == 0 && httpd_writing(w->httpd) == 0)
        event_base_loopbreak(w->base);
}

/* The request lines of one loop pass, in one write. */
static void
worker_log_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    log_flush();
}

static void
worker_log_wake(void *arg)
{
    struct worker *w = arg;

    event_active(w->log_ev, EV_TIMEOUT, 1);
}

struct queue *
worker_queue_new(struct event_base *base, const struct config *cfg)
{
    struct queue_config qc;

    memset(&qc, 0, sizeof(qc));
    qc.url = cfg->redis_url;
    qc.password = cfg->redis_password;
    qc.prefix = cfg->redis_prefix;
    qc.timeout_ms = cfg->redis_timeout_ms;
    return queue_new(base, &qc);
}

/* With epoll's changelist, an event added and removed within one loop
 * pass (hiredis's write interest for each batch of commands) costs no
 * epoll_ctl, and changes are made once per pass.  Safe here: no
 * worker's loop watches two descriptors of one open file (each dup of a
 * listening socket goes to a different worker), and a descriptor number
 * closed and reused within one pass is re-added by libevent (its MOD
 * fails with ENOENT and is retried as an ADD).
 *
 * The price: a connection's removal reaches epoll after its close, as an
 * EPOLL_CTL_DEL of a number that may by then be another worker's new
 * connection.  The kernel answers EBADF or ENOENT (the closed file left
 * every epoll set when it closed) and nothing else happens, but
 * ThreadSanitizer counts descriptor numbers as memory and reports a race
 * for each (and then trips over descriptors it did not see created).
 * So a ThreadSanitizer build (make check-tsan) uses plain epoll, where
 * the removal comes before the close. */
#if defined(__SANITIZE_THREAD__)
#define WORKER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WORKER_TSAN 1
#endif
#endif

static struct event_base *
worker_base_new(void)
{
    struct event_config *ec = event_config_new();
    struct event_base *base;

    if (ec == NULL)
        return NULL;
#ifndef WORKER_TSAN
    event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
#endif
    base = event_base_new_with_config(ec);
    event_config_free(ec);
    return base;
}

struct worker *
worker_new(unsigned index, const struct config *cfg, const int *fds,
           unsigned n_fds)
{
    struct worker *w = calloc(1, sizeof(*w));

    if (w == NULL) {
        log_errx("worker %u: out of memory", index);
        return NULL;
    }
    w->index = index;
    w->request_timeout_s = cfg->request_timeout_s;
    w->max_body = cfg->max_body;
    w->max_connections = cfg->max_connections;
    w->max_connections_per_addr = cfg->max_connections_per_addr;
    w->redis_timeout_ms = cfg->redis_timeout_ms;
    w->check_interval_s = cfg->redis_check_interval_s;
    w->refusal_logged = -1;
    w->base = worker_base_new();
    if (w->base == NULL) {
        log_errx("worker %u: event_base_new failed", index);
        goto fail;
    }
    w->scorer = clf_scorer_new();
    w->stop_ev = event_new(w->base, -1, 0, worker_stop_cb, w);
    w->grace_ev = evtimer_new(w->base, worker_grace_cb, w);
    w->log_ev = event_new(w->base, -1, 0, worker_log_cb, w);
    if (w->scorer == NULL || w->stop_ev == NULL || w->grace_ev == NULL ||
        w->log_ev == NULL) {
        log_errx("worker %u: out of memory", index);
        goto fail;
    }
    w->queue = worker_queue_new(w->base, cfg);
    if (w->queue == NULL) {
        log_errx("worker %u: cannot set up the Redis queue for %s", index,
                 cfg->redis_url);
        goto fail;
    }
    queue_set_state_cb(w->queue, worker_redis_state, w);
    if (index == 0) {
        struct timeval tv = {WORKER_WATCH_MS / 1000,
                             (WORKER_WATCH_MS % 1000) * 1000};

        w->watch_ev = event_new(w->base, -1, EV_PERSIST, worker_watch_cb, w);
        if (w->watch_ev == NULL || event_add(w->watch_ev, &tv) < 0) {
            log_errx("worker %u: out of memory", index);
            goto fail;
        }
    }
    if (http_worker_init(w, cfg, fds, n_fds) < 0)
        goto fail;
    w->counted = 1;
    __atomic_add_fetch(&worker_total, 1, __ATOMIC_RELAXED);
    return w;
fail:
    worker_free(w);
    return NULL;
}

static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    char name[16];

    snprintf(name, sizeof(name), "mf-worker%u", w->index);
    pthread_setname_np(pthread_self(), name); /* for top -H and ps -L */
    log_buffer_begin(worker_log_wake, w);
    event_base_dispatch(w->base);
    log_buffer_end();
    return NULL;
}

int
worker_start(struct worker *w)
{
    if (w->spool != NULL && w->spool_client == NULL) {
        w->spool_client = spool_client_new(w->spool, w->base);
        if (w->spool_client == NULL) {
            log_errx("worker %u: out of memory", w->index);
            return -1;
        }
    }
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        log_errx("worker %u: cannot start a thread", w->index);
        return -1;
    }
    w->started = 1;
    return 0;
}

void
worker_stop(struct worker *w)
{
    if (w != NULL && w->stop_ev != NULL)
        event_active(w->stop_ev, EV_READ, 1);
}

void
worker_join(struct worker *w)
{
    if (w != NULL && w->started) {
        pthread_join(w->thread, NULL);
        w->started = 0;
    }
}

void
worker_free(struct worker *w)
{
    if (w == NULL)
        return;
    if (w->counted)
        __atomic_sub_fetch(&worker_total, 1, __ATOMIC_RELAXED);
    if (w->redis_ready)
        __atomic_sub_fetch(&worker_redis_up, 1, __ATOMIC_RELAXED);
    w->redis_ready = 0;
    if (w->queue != NULL) /* NULL when worker_new failed before it */
        queue_set_state_cb(w->queue, NULL, NULL);
    /* Fails what still waits on Redis (503 to clients still there), then
     * closes every connection. */
    queue_free(w->queue);
    w->queue = NULL;
    /* Comments being spooled (some just now, failed by queue_free) get
     * their answers while the connections are still there. */
    spool_client_free(w->spool_client);
    w->spool_client = NULL;
    http_worker_stop_accepting(w);
    http_worker_free(w);
    routes_worker_release(w);
    if (w->stop_ev != NULL)
        event_free(w->stop_ev);
    if (w->grace_ev != NULL)
        event_free(w->grace_ev);
    if (w->log_ev != NULL)
        event_free(w->log_ev);
    if (w->watch_ev != NULL)
        event_free(w->watch_ev);
    clf_scorer_free(w->scorer);
    jsonw_release(&w->json);
    if (w->base != NULL)
        event_base_free(w->base);
    free(w);
}
