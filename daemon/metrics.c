/*
 * metrics.c - process-wide counters (relaxed atomics: every worker adds,
 * /metrics reads) and their Prometheus text exposition.
 */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "modfilterd.h"
#include "queue.h"

static const char *const metrics_route_names[METRICS_N_ROUTES] = {
    "comments", "score",     "healthz", "readyz",
    "metrics",  "moderator", "akismet", "other",
};

/* Every status the daemon answers (httpd.c's and the routes'); 0: any
 * other, should one appear. */
static const int metrics_statuses[] = {200, 400, 401, 403, 404, 405, 408, 409,
                                       413, 415, 431, 500, 501, 503, 505, 0};
#define METRICS_N_STATUS (sizeof(metrics_statuses) / sizeof(int))

static const double metrics_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                         0.025,  0.05,  0.1,    0.25,  0.5,
                                         1,      2.5,   5,      10};
#define METRICS_N_BUCKETS (sizeof(metrics_buckets) / sizeof(double))

static unsigned long long metrics_requests[METRICS_N_ROUTES][METRICS_N_STATUS];
static unsigned long long metrics_hist[METRICS_N_ROUTES][METRICS_N_BUCKETS + 1];
static unsigned long long metrics_sum_us[METRICS_N_ROUTES];
static unsigned long long metrics_verdicts[3];
static long metrics_conns;
static long metrics_worker_conns[WORKERS_MAX];
static unsigned long long metrics_refused[METRICS_N_REFUSALS];
static long long metrics_start_ms;
static int metrics_evicting = -1;

#define ADD(x, n) __atomic_add_fetch(&(x), (n), __ATOMIC_RELAXED)
#define GET(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

void
metrics_init(void)
{
    metrics_start_ms = util_now_ms();
}

void
metrics_request(enum metrics_route route, int status, double seconds)
{
    size_t s, b;

    if ((unsigned)route >= METRICS_N_ROUTES)
        route = METRICS_ROUTE_OTHER;
    for (s = 0; s + 1 < METRICS_N_STATUS; s++)
        if (metrics_statuses[s] == status)
            break;
    ADD(metrics_requests[route][s], 1);
    for (b = 0; b < METRICS_N_BUCKETS; b++)
        if (seconds <= metrics_buckets[b])
            break;
    ADD(metrics_hist[route][b], 1);
    ADD(metrics_sum_us[route],
        (unsigned long long)(seconds > 0 ? seconds * 1e6 : 0));
}

void
metrics_verdict(enum clf_verdict v)
{
    if ((unsigned)v < 3)
        ADD(metrics_verdicts[v], 1);
}

void
metrics_connections_add(unsigned worker, long delta)
{
    ADD(metrics_conns, delta);
    if (worker < WORKERS_MAX)
        ADD(metrics_worker_conns[worker], delta);
}

long
metrics_connections(void)
{
    return GET(metrics_conns);
}

long
metrics_worker_connections(unsigned worker)
{
    return worker < WORKERS_MAX ? GET(metrics_worker_conns[worker]) : 0;
}

unsigned long long
metrics_connection_refused(enum metrics_refusal why)
{
    if ((unsigned)why >= METRICS_N_REFUSALS)
        why = METRICS_REFUSED_MAX_CONNECTIONS;
    return ADD(metrics_refused[why], 1);
}

void
metrics_redis_evicting_set(int v)
{
    __atomic_store_n(&metrics_evicting, v, __ATOMIC_RELAXED);
}

int
metrics_redis_evicting(void)
{
    return GET(metrics_evicting);
}

/* A label value with \, " and newline escaped. */
static void
metrics_label(struct evbuffer *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            evbuffer_add_printf(out, "\\%c", *s);
        else if (*s == '\n')
            evbuffer_add(out, "\\n", 2);
        else
            evbuffer_add(out, s, 1);
    }
}

static void
metrics_process(struct evbuffer *out)
{
    struct rusage ru;
    long rss_pages = 0, size_pages;
    unsigned long fds = 0;
    FILE *f;
    DIR *d;

    if (getrusage(RUSAGE_SELF, &ru) == 0)
        evbuffer_add_printf(
            out,
            "# HELP process_cpu_seconds_total User and system CPU time.\n"
            "# TYPE process_cpu_seconds_total counter\n"
            "process_cpu_seconds_total %.3f\n",
            (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
    f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        if (fscanf(f, "%ld %ld", &size_pages, &rss_pages) == 2)
            evbuffer_add_printf(
                out,
                "# HELP process_resident_memory_bytes Resident memory.\n"
                "# TYPE process_resident_memory_bytes gauge\n"
                "process_resident_memory_bytes %ld\n",
                rss_pages * sysconf(_SC_PAGESIZE));
        fclose(f);
    }
    d = opendir("/proc/self/fd");
    if (d != NULL) {
        while (readdir(d) != NULL)
            fds++;
        closedir(d);
        evbuffer_add_printf(out,
                            "# HELP process_open_fds Open file descriptors.\n"
                            "# TYPE process_open_fds gauge\n"
                            "process_open_fds %lu\n",
                            fds > 3 ? fds - 3 : 0);
    }
    evbuffer_add_printf(out,
                        "# HELP process_start_time_seconds Start time.\n"
                        "# TYPE process_start_time_seconds gauge\n"
                        "process_start_time_seconds %.3f\n",
                        metrics_start_ms / 1000.0);
}

void
metrics_render(struct evbuffer *out, const struct state *st,
               long long queue_len, long long oldest_ms,
               unsigned redis_connected, unsigned workers)
{
    static const char *const verdicts[3] = {"allow", "review", "reject"};
    int evicting = metrics_redis_evicting();
    size_t r, s, b;
    unsigned i, n;

    if (queue_len >= 0)
        evbuffer_add_printf(out,
                            "# HELP modfilter_queue_length Undecided items "
                            "in Redis, claimed or not.\n"
                            "# TYPE modfilter_queue_length gauge\n"
                            "modfilter_queue_length %lld\n",
                            queue_len);
    if (queue_len >= 0) {
        double age = 0;

        if (oldest_ms >= 0 && util_now_ms() > oldest_ms)
            age = (double)(util_now_ms() - oldest_ms) / 1000.0;
        evbuffer_add_printf(out,
                            "# HELP modfilter_queue_oldest_age_seconds Age "
                            "of the oldest undecided item (0 when empty).\n"
                            "# TYPE modfilter_queue_oldest_age_seconds "
                            "gauge\n"
                            "modfilter_queue_oldest_age_seconds %.3f\n",
                            age);
    }
    evbuffer_add_printf(out,
                        "# HELP modfilter_redis_connected Workers whose "
                        "Redis connection is ready.\n"
                        "# TYPE modfilter_redis_connected gauge\n"
                        "modfilter_redis_connected %u\n",
                        redis_connected);
    if (evicting >= 0)
        evbuffer_add_printf(out,
                            "# HELP modfilter_redis_evicting 1 when Redis's "
                            "maxmemory-policy may evict queued comments "
                            "(allkeys-* with maxmemory set), as last "
                            "checked.\n"
                            "# TYPE modfilter_redis_evicting gauge\n"
                            "modfilter_redis_evicting %d\n",
                            evicting);
    evbuffer_add_printf(out,
                        "# HELP modfilter_redis_refusing_writes 1 while "
                        "Redis refused the last write (OOM, READONLY, "
                        "MISCONF, NOREPLICAS).\n"
                        "# TYPE modfilter_redis_refusing_writes gauge\n"
                        "modfilter_redis_refusing_writes %d\n"
                        "# HELP modfilter_redis_refused_writes_total "
                        "Comments Redis refused to store, by its error.\n"
                        "# TYPE modfilter_redis_refused_writes_total "
                        "counter\n",
                        queue_refusing(NULL, 0) >= 0);
    for (i = 0; i < QUEUE_N_REFUSALS; i++)
        evbuffer_add_printf(out,
                            "modfilter_redis_refused_writes_total{error=\"%s\"}"
                            " %llu\n",
                            queue_refusal_name((int)i),
                            queue_refused_count((int)i));
    evbuffer_add_printf(out,
                        "# HELP modfilter_redis_errors_total Failed or "
                        "timed-out Redis commands.\n"
                        "# TYPE modfilter_redis_errors_total counter\n"
                        "modfilter_redis_errors_total %llu\n",
                        queue_error_count());
    {
        unsigned long long batches, items;

        queue_batch_counts(&batches, &items);
        evbuffer_add_printf(
            out,
            "# HELP modfilter_redis_submit_batches_total Commands that "
            "carried queued comments to Redis (one per event-loop pass).\n"
            "# TYPE modfilter_redis_submit_batches_total counter\n"
            "modfilter_redis_submit_batches_total %llu\n"
            "# HELP modfilter_redis_submits_total Comments those commands "
            "carried.\n"
            "# TYPE modfilter_redis_submits_total counter\n"
            "modfilter_redis_submits_total %llu\n",
            batches, items);
    }
    evbuffer_add_printf(out, "# HELP modfilter_requests_total HTTP requests "
                             "by route and status.\n"
                             "# TYPE modfilter_requests_total counter\n");
    for (r = 0; r < METRICS_N_ROUTES; r++)
        for (s = 0; s < METRICS_N_STATUS; s++) {
            unsigned long long v = GET(metrics_requests[r][s]);

            if (v == 0)
                continue;
            if (metrics_statuses[s])
                evbuffer_add_printf(out,
                                    "modfilter_requests_total{route=\"%s\","
                                    "status=\"%d\"} %llu\n",
                                    metrics_route_names[r], metrics_statuses[s],
                                    v);
            else
                evbuffer_add_printf(out,
                                    "modfilter_requests_total{route=\"%s\","
                                    "status=\"other\"} %llu\n",
                                    metrics_route_names[r], v);
        }
    evbuffer_add_printf(out, "# HELP modfilter_verdicts_total Scored "
                             "comments by verdict.\n"
                             "# TYPE modfilter_verdicts_total counter\n");
    for (i = 0; i < 3; i++)
        evbuffer_add_printf(out,
                            "modfilter_verdicts_total{verdict=\"%s\"} %llu\n",
                            verdicts[i], GET(metrics_verdicts[i]));
    evbuffer_add_printf(out,
                        "# HELP modfilter_request_duration_seconds Request "
                        "latency by route.\n"
                        "# TYPE modfilter_request_duration_seconds "
                        "histogram\n");
    for (r = 0; r < METRICS_N_ROUTES; r++) {
        unsigned long long cum = 0;

        for (b = 0; b <= METRICS_N_BUCKETS; b++) {
            cum += GET(metrics_hist[r][b]);
            if (b < METRICS_N_BUCKETS)
                evbuffer_add_printf(
                    out,
                    "modfilter_request_duration_seconds_bucket{route=\"%s\","
                    "le=\"%g\"} %llu\n",
                    metrics_route_names[r], metrics_buckets[b], cum);
            else
                evbuffer_add_printf(
                    out,
                    "modfilter_request_duration_seconds_bucket{route=\"%s\","
                    "le=\"+Inf\"} %llu\n",
                    metrics_route_names[r], cum);
        }
        evbuffer_add_printf(out,
                            "modfilter_request_duration_seconds_sum{route="
                            "\"%s\"} %.6f\n"
                            "modfilter_request_duration_seconds_count{route="
                            "\"%s\"} %llu\n",
                            metrics_route_names[r],
                            GET(metrics_sum_us[r]) / 1e6,
                            metrics_route_names[r], cum);
    }
    if (st != NULL) {
        evbuffer_add_printf(out, "# HELP modfilter_model_info The model in "
                                 "use (version: reload generation).\n"
                                 "# TYPE modfilter_model_info gauge\n"
                                 "modfilter_model_info{id=\"");
        metrics_label(out, st->model_id);
        evbuffer_add_printf(out, "\",version=\"%u\"} 1\n", st->generation);
        evbuffer_add_printf(out, "# HELP modfilter_label_examples Training "
                                 "examples behind each head, by class (0/1).\n"
                                 "# TYPE modfilter_label_examples gauge\n");
        n = clf_model_label_count(st->model);
        for (i = 0; i < n; i++) {
            uint64_t neg = 0, pos = 0;
            const char *name = clf_model_label_name(st->model, i);

            clf_model_label_examples(st->model, i, &neg, &pos);
            evbuffer_add(out, "modfilter_label_examples{label=\"", 32);
            metrics_label(out, name);
            evbuffer_add_printf(out, "\",class=\"0\"} %llu\n",
                                (unsigned long long)neg);
            evbuffer_add(out, "modfilter_label_examples{label=\"", 32);
            metrics_label(out, name);
            evbuffer_add_printf(out, "\",class=\"1\"} %llu\n",
                                (unsigned long long)pos);
        }
    }
    evbuffer_add_printf(out,
                        "# HELP modfilter_connections Open client "
                        "connections.\n"
                        "# TYPE modfilter_connections gauge\n"
                        "modfilter_connections %ld\n"
                        "# HELP modfilter_connections_refused_total "
                        "Connections closed at accept, by the limit "
                        "reached.\n"
                        "# TYPE modfilter_connections_refused_total "
                        "counter\n"
                        "modfilter_connections_refused_total{reason=\""
                        "max_connections\"} %llu\n"
                        "modfilter_connections_refused_total{reason=\""
                        "per_addr\"} %llu\n"
                        "# HELP modfilter_workers Event-loop threads.\n"
                        "# TYPE modfilter_workers gauge\n"
                        "modfilter_workers %u\n"
                        "# HELP modfilter_build_info Daemon version.\n"
                        "# TYPE modfilter_build_info gauge\n"
                        "modfilter_build_info{version=\"%s\"} 1\n",
                        metrics_connections(),
                        GET(metrics_refused[METRICS_REFUSED_MAX_CONNECTIONS]),
                        GET(metrics_refused[METRICS_REFUSED_PER_ADDR]), workers,
                        MODFILTERD_VERSION);
    evbuffer_add_printf(out, "# HELP modfilter_worker_connections Open client "
                             "connections, by worker.\n"
                             "# TYPE modfilter_worker_connections gauge\n");
    for (i = 0; i < workers && i < WORKERS_MAX; i++)
        evbuffer_add_printf(out,
                            "modfilter_worker_connections{worker=\"%u\"} %ld\n",
                            i, metrics_worker_connections(i));
    learn_metrics_render(out, st); /* training, unsure heads */
    moderation_metrics_render(out);
    metrics_process(out);
}
