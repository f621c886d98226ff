/* Unit tests of the pure parts of daemon/http.c and daemon/metrics.c:
 * which peers count as local, and the Prometheus exposition. */
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

static int
local4(const char *addr)
{
    struct sockaddr_in in;

    memset(&in, 0, sizeof(in));
    in.sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, addr, &in.sin_addr), 1);
    return http_addr_local((struct sockaddr *)&in);
}

static int
local6(const char *addr)
{
    struct sockaddr_in6 in6;

    memset(&in6, 0, sizeof(in6));
    in6.sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, addr, &in6.sin6_addr), 1);
    return http_addr_local((struct sockaddr *)&in6);
}

static void
test_local(void **state)
{
    struct sockaddr_un un;

    (void)state;
    assert_true(local4("127.0.0.1"));
    assert_true(local4("127.200.3.4"));
    assert_false(local4("128.0.0.1"));
    assert_false(local4("10.0.0.1"));
    assert_false(local4("0.0.0.0"));
    assert_true(local6("::1"));
    assert_true(local6("::ffff:127.0.0.2"));
    assert_false(local6("::ffff:192.0.2.1"));
    assert_false(local6("2001:db8::1"));
    assert_false(local6("::"));
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    assert_true(http_addr_local((struct sockaddr *)&un));
    assert_false(http_addr_local(NULL));
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
    metrics_connections_add(3);
    metrics_connections_add(-1);
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
    assert_non_null(strstr(text, "\nmodfilter_redis_connected 1\n"));
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
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local),
        cmocka_unit_test(test_metrics),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
