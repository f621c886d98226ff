/*
 * test_train.c - queue_train_event (daemon/queue.c) against a real
 * redis-server: the event lands in P training with every field, binary
 * safe; QUEUE_OK only after Redis answered; failures reach the callback
 * once; a queue that is not connected refuses at once.
 *
 * The server runs on a free loopback port with persistence off and is
 * killed by pid at the end (and by the kernel should this process die:
 * PR_SET_PDEATHSIG).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "queue.h"

static pid_t redis_pid;
static int redis_port;

static int
pick_port(void)
{
    struct sockaddr_in sa = {0};
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static redisContext *
client(void)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port, tv);

    if (c != NULL && c->err) {
        redisFree(c);
        return NULL;
    }
    return c;
}

static int
start_redis(void **state)
{
    char port[16];
    int i;

    (void)state;
    redis_port = pick_port();
    snprintf(port, sizeof port, "%d", redis_port);
    redis_pid = fork();
    if (redis_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execlp("redis-server", "redis-server", "--port", port, "--bind",
               "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", "/tmp",
               "--logfile", "/dev/null", (char *)NULL);
        _exit(127);
    }
    for (i = 0; i < 200; i++) {
        redisContext *c = client();

        if (c != NULL) {
            redisReply *r = redisCommand(c, "PING");
            int ok = r != NULL && r->type == REDIS_REPLY_STATUS;

            freeReplyObject(r);
            redisFree(c);
            if (ok)
                return 0;
        }
        usleep(25000);
    }
    return -1;
}

static int
stop_redis(void **state)
{
    (void)state;
    if (redis_pid > 0) {
        kill(redis_pid, SIGKILL);
        waitpid(redis_pid, NULL, 0);
    }
    return 0;
}

/* ---- a queue on its own loop ----------------------------------------- */

struct result {
    int calls;
    enum queue_status st;
    char entry[64];
};

static void
on_trained(enum queue_status st, const char *entry_id, void *arg)
{
    struct result *r = arg;

    r->calls++;
    r->st = st;
    snprintf(r->entry, sizeof r->entry, "%s", entry_id ? entry_id : "");
    if ((st == QUEUE_OK) != (entry_id != NULL))
        fail_msg("entry id %s with status %d", entry_id, st);
}

/* Run base until cond holds (bounded: 3 s). */
#define RUN_UNTIL(base, cond)                                                  \
    do {                                                                       \
        int spins_ = 0;                                                        \
        while (!(cond) && spins_++ < 300) {                                    \
            struct timeval tv_ = {0, 10000};                                   \
            event_base_loopexit(base, &tv_);                                   \
            event_base_dispatch(base);                                         \
        }                                                                      \
        assert_true(cond);                                                     \
    } while (0)

static struct queue *
open_queue(struct event_base *base, int port)
{
    char url[64];
    struct queue_config cfg = {url, NULL, "tt:", 1000};
    struct queue *q;

    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", port);
    q = queue_new(base, &cfg);
    assert_non_null(q);
    return q;
}

static redisReply *
cmd(const char *fmt, ...)
{
    redisContext *c = client();
    redisReply *r;
    va_list ap;

    assert_non_null(c);
    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    assert_non_null(r);
    return r;
}

/* The value of field name in a stream entry's field array. */
static const redisReply *
field(const redisReply *fields, const char *name)
{
    size_t i;

    for (i = 0; i + 1 < fields->elements; i += 2)
        if (!strcmp(fields->element[i]->str, name))
            return fields->element[i + 1];
    fail_msg("no field %s", name);
    return NULL;
}

static void
test_event_stored(void **state)
{
    static const char text[] = "buy\0cheap \xff pills";
    struct event_base *base = event_base_new();
    struct queue *q = open_queue(base, redis_port);
    struct queue_train ev = {
        "akismet",           "learn",        text,
        sizeof(text) - 1,    "en",           "{\"spam\":1}",
        "https://b.example", 1700000000123LL};
    struct result r = {0};
    const redisReply *e, *f, *v;
    redisReply *x;

    (void)state;
    RUN_UNTIL(base, queue_connected(q));
    assert_int_equal(queue_train_event(q, &ev, on_trained, &r), 0);
    assert_int_equal(r.calls, 0); /* never from inside the call */
    RUN_UNTIL(base, r.calls == 1);
    assert_int_equal(r.st, QUEUE_OK);
    x = cmd("XRANGE tt:training - +");
    assert_int_equal(x->type, REDIS_REPLY_ARRAY);
    assert_int_equal(x->elements, 1);
    e = x->element[0];
    assert_string_equal(e->element[0]->str, r.entry);
    f = e->element[1];
    assert_int_equal(f->elements, 14);
    assert_string_equal(field(f, "source")->str, "akismet");
    assert_string_equal(field(f, "op")->str, "learn");
    v = field(f, "text");
    assert_int_equal(v->len, sizeof(text) - 1);
    assert_memory_equal(v->str, text, sizeof(text) - 1);
    assert_string_equal(field(f, "lang")->str, "en");
    assert_string_equal(field(f, "labels")->str, "{\"spam\":1}");
    assert_string_equal(field(f, "by")->str, "https://b.example");
    assert_string_equal(field(f, "ts_ms")->str, "1700000000123");
    freeReplyObject(x);

    /* NULL strings go as empty values; events append in order */
    memset(&ev, 0, sizeof ev);
    ev.text = "ok";
    ev.text_len = 2;
    ev.labels = "{\"spam\":0}";
    assert_int_equal(queue_train_event(q, &ev, on_trained, &r), 0);
    RUN_UNTIL(base, r.calls == 2);
    assert_int_equal(r.st, QUEUE_OK);
    x = cmd("XREVRANGE tt:training + - COUNT 1");
    assert_string_equal(x->element[0]->element[0]->str, r.entry);
    f = x->element[0]->element[1];
    assert_string_equal(field(f, "source")->str, "");
    assert_string_equal(field(f, "lang")->str, "");
    assert_string_equal(field(f, "ts_ms")->str, "0");
    freeReplyObject(x);
    freeReplyObject(cmd("DEL tt:training"));

    /* text NULL with a length is refused without a callback */
    ev.text = NULL;
    assert_int_equal(queue_train_event(q, &ev, on_trained, &r), -1);
    queue_free(q);
    event_base_free(base);
    assert_int_equal(r.calls, 2);
}

static void
test_event_failures(void **state)
{
    struct event_base *base = event_base_new();
    struct queue *q = open_queue(base, redis_port);
    struct queue *dead = open_queue(base, pick_port());
    struct queue_train ev = {"akismet", "learn", "t", 1, "", "{}", "", 1};
    struct result r = {0};

    (void)state;
    RUN_UNTIL(base, queue_connected(q));
    /* a key of the wrong type: Redis refuses, the callback says so */
    freeReplyObject(cmd("SET tt:training x"));
    assert_int_equal(queue_train_event(q, &ev, on_trained, &r), 0);
    RUN_UNTIL(base, r.calls == 1);
    assert_int_equal(r.st, QUEUE_ERROR);
    freeReplyObject(cmd("DEL tt:training"));

    /* not connected: -1 at once, no callback */
    assert_false(queue_connected(dead));
    assert_int_equal(queue_train_event(dead, &ev, on_trained, &r), -1);

    /* freed while waiting: the callback runs once, with QUEUE_ERROR */
    assert_int_equal(queue_train_event(q, &ev, on_trained, &r), 0);
    queue_free(q);
    assert_int_equal(r.calls, 2);
    assert_int_equal(r.st, QUEUE_ERROR);
    queue_free(dead);
    event_base_free(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_stored),
        cmocka_unit_test(test_event_failures),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, start_redis, stop_redis);
}
