/* Unit tests of the pure parts of daemon/http.c, daemon/addrlimit.c and
 * daemon/metrics.c: which peers count as local, the per-address
 * connection counts, and the Prometheus exposition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <event2/buffer.h>

#include "modfilterd.h"

/* addr (IPv4 or IPv6 text) as a socket address in ss. */
static const struct sockaddr *
sa_of(const char *addr, struct sockaddr_storage *ss)
{
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (strchr(addr, ':') != NULL) {
        in6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, addr, &in6->sin6_addr), 1);
    } else {
        in->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, addr, &in->sin_addr), 1);
    }
    return (const struct sockaddr *)ss;
}

static int
local(const char *addr)
{
    struct sockaddr_storage ss;

    return http_addr_local(sa_of(addr, &ss));
}

static void
test_local(void **state)
{
    struct sockaddr_un un;

    (void)state;
    assert_true(local("127.0.0.1"));
    assert_true(local("127.200.3.4"));
    assert_false(local("128.0.0.1"));
    assert_false(local("10.0.0.1"));
    assert_false(local("0.0.0.0"));
    assert_true(local("::1"));
    assert_true(local("::ffff:127.0.0.2"));
    assert_false(local("::ffff:192.0.2.1"));
    assert_false(local("2001:db8::1"));
    assert_false(local("::"));
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    assert_true(http_addr_local((struct sockaddr *)&un));
    assert_false(http_addr_local(NULL));
}

static struct addrlimit_key
key(const char *addr)
{
    struct sockaddr_storage ss;
    struct addrlimit_key k;

    assert_int_equal(addrlimit_key_of(sa_of(addr, &ss), &k), 0);
    return k;
}

static void
test_addrlimit(void **state)
{
    struct addrlimit *t = addrlimit_new(3);
    struct addrlimit_key a = key("127.0.0.2"), b = key("127.0.0.1");
    struct addrlimit_key m = key("::ffff:127.0.0.2"), v6 = key("2001:db8::1");
    struct sockaddr_un un;
    struct addrlimit_key u;
    int i;

    (void)state;
    assert_non_null(t);
    /* an IPv4-mapped IPv6 peer is the IPv4 address */
    assert_memory_equal(&a, &m, sizeof(a));
    for (i = 0; i < 3; i++)
        assert_int_equal(addrlimit_acquire(t, &a), ADDRLIMIT_COUNTED);
    assert_int_equal(addrlimit_acquire(t, &m), ADDRLIMIT_REFUSED);
    assert_int_equal(addrlimit_count(t, &a), 3);
    /* other addresses are not affected */
    assert_int_equal(addrlimit_acquire(t, &b), ADDRLIMIT_COUNTED);
    assert_int_equal(addrlimit_acquire(t, &v6), ADDRLIMIT_COUNTED);
    assert_int_equal(addrlimit_entries(t), 3);
    addrlimit_release(t, &a);
    assert_int_equal(addrlimit_acquire(t, &a), ADDRLIMIT_COUNTED);
    /* entries go when their count reaches zero */
    for (i = 0; i < 3; i++)
        addrlimit_release(t, &a);
    addrlimit_release(t, &b);
    addrlimit_release(t, &b); /* one too many: harmless */
    assert_int_equal(addrlimit_count(t, &a), 0);
    assert_int_equal(addrlimit_entries(t), 1);
    addrlimit_release(t, &v6);
    assert_int_equal(addrlimit_entries(t), 0);
    /* Unix-socket peers are never counted */
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    assert_int_equal(addrlimit_key_of((struct sockaddr *)&un, &u), -1);
    assert_int_equal(addrlimit_key_of(NULL, &u), -1);
    /* a table left with entries is freed whole (ASan checks) */
    assert_int_equal(addrlimit_acquire(t, &b), ADDRLIMIT_COUNTED);
    addrlimit_free(t);
    /* limit 0: off */
    t = addrlimit_new(0);
    for (i = 0; i < 1000; i++)
        assert_int_equal(addrlimit_acquire(t, &a), ADDRLIMIT_UNCOUNTED);
    assert_int_equal(addrlimit_entries(t), 0);
    addrlimit_free(t);
    addrlimit_free(NULL);
}

static char *
render(long long queue_len, long long oldest_ms)
{
    struct evbuffer *b = evbuffer_new();
    size_t n;
    char *text;

    metrics_render(b, NULL, queue_len, oldest_ms, 1, 2);
    n = evbuffer_get_length(b);
    text = malloc(n + 1);
    evbuffer_remove(b, text, n);
    text[n] = '\0';
    evbuffer_free(b);
    return text;
}

static void
test_metrics(void **state)
{
    char *text;

    (void)state;
    metrics_init();
    metrics_request(METRICS_ROUTE_SCORE, 200, 0.0007);
    metrics_request(METRICS_ROUTE_SCORE, 200, 3.0);
    metrics_request(METRICS_ROUTE_COMMENTS, 503, 1.0);
    metrics_request(METRICS_ROUTE_OTHER, 418, 0.0);
    metrics_verdict(CLF_REVIEW);
    metrics_connections_add(0, 3);
    metrics_connections_add(0, -1);
    metrics_connections_add(1, 1);
    metrics_connections_add(1, -1);
    metrics_connections_add(WORKERS_MAX, 0); /* out of range: total only */
    metrics_connection_refused(METRICS_REFUSED_PER_ADDR);
    metrics_connection_refused(METRICS_REFUSED_PER_ADDR);
    text = render(7, util_now_ms() - 2000);
    assert_non_null(strstr(text, "\nmodfilter_queue_length 7\n"));
    assert_non_null(strstr(text, "\nmodfilter_queue_oldest_age_seconds 2."));
    assert_non_null(strstr(text, "modfilter_requests_total{route=\"score\","
                                 "status=\"200\"} 2\n"));
    assert_non_null(strstr(text, "modfilter_requests_total{route="
                                 "\"comments\",status=\"503\"} 1\n"));
    assert_non_null(strstr(text, "modfilter_requests_total{route=\"other\","
                                 "status=\"other\"} 1\n"));
    assert_non_null(strstr(text, "modfilter_verdicts_total{verdict="
                                 "\"review\"} 1\n"));
    /* cumulative buckets: 0.0007 s is in le=0.001, 3 s only from le=5 */
    assert_non_null(strstr(text, "modfilter_request_duration_seconds_bucket{"
                                 "route=\"score\",le=\"0.0005\"} 0\n"));
    assert_non_null(strstr(text, "modfilter_request_duration_seconds_bucket{"
                                 "route=\"score\",le=\"0.001\"} 1\n"));
    assert_non_null(strstr(text, "modfilter_request_duration_seconds_bucket{"
                                 "route=\"score\",le=\"2.5\"} 1\n"));
    assert_non_null(strstr(text, "modfilter_request_duration_seconds_bucket{"
                                 "route=\"score\",le=\"5\"} 2\n"));
    assert_non_null(strstr(text, "modfilter_request_duration_seconds_bucket{"
                                 "route=\"score\",le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(text, "modfilter_request_duration_seconds_count{"
                                 "route=\"score\"} 2\n"));
    assert_non_null(strstr(text, "\nmodfilter_connections 2\n"));
    assert_non_null(strstr(text, "\nmodfilter_workers 2\n"));
    assert_non_null(strstr(text, "\nmodfilter_worker_connections{"
                                 "worker=\"0\"} 2\n"));
    assert_non_null(strstr(text, "\nmodfilter_worker_connections{"
                                 "worker=\"1\"} 0\n"));
    assert_null(strstr(text, "worker=\"2\"")); /* two workers */
    assert_non_null(strstr(text, "\nmodfilter_connections_refused_total{"
                                 "reason=\"per_addr\"} 2\n"));
    assert_non_null(strstr(text, "\nmodfilter_connections_refused_total{"
                                 "reason=\"max_connections\"} 0\n"));
    assert_non_null(strstr(text, "\nmodfilter_redis_connected 1\n"));
    assert_null(strstr(text, "modfilter_redis_evicting")); /* not known */
    assert_non_null(strstr(text, "# TYPE modfilter_request_duration_seconds "
                                 "histogram\n"));
    free(text);
    /* Redis unknown: no queue gauges at all */
    text = render(-1, -1);
    assert_null(strstr(text, "modfilter_queue_length"));
    assert_null(strstr(text, "modfilter_queue_oldest_age_seconds"));
    free(text);
    text = render(0, -1);
    assert_non_null(strstr(text, "\nmodfilter_queue_oldest_age_seconds 0.000"));
    free(text);
    metrics_redis_evicting_set(1);
    text = render(-1, -1);
    assert_non_null(strstr(text, "\n# TYPE modfilter_redis_evicting gauge\n"
                                 "modfilter_redis_evicting 1\n"));
    free(text);
    metrics_redis_evicting_set(0);
    text = render(-1, -1);
    assert_non_null(strstr(text, "\nmodfilter_redis_evicting 0\n"));
    free(text);
    metrics_redis_evicting_set(-1);
    text = render(-1, -1);
    assert_null(strstr(text, "modfilter_redis_evicting"));
    free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local),
        cmocka_unit_test(test_addrlimit),
        cmocka_unit_test(test_metrics),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
