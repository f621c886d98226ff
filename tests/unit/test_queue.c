/*
 * test_queue.c - daemon/queue.c and daemon/redis.c against real
 * redis-server processes.
 *
 * Each server runs on a free loopback port (and a Unix socket) in a private
 * directory under /tmp, with persistence off; it is killed by pid in the
 * test's teardown, by an atexit handler, and by the kernel
 * (PR_SET_PDEATHSIG) should this process die first.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
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

/* cmocka needs these first, in this order: clang-format must not sort it */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on

#include "jsonw.h"
#include "queue.h"
#include "redis.h"

#define REDIS_SERVER "/usr/bin/redis-server"
#define MAX_SERVERS 16

/* ---- redis-server processes ------------------------------------------ */

struct srv {
    pid_t pid;
    int port;
    char dir[64];
    char sock[128];
    char log[128];
    const char *password; /* NULL: none */
};

static pid_t started[MAX_SERVERS];

static double
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

static int
free_port(void)
{
    struct sockaddr_in sa = {0};
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    if (fd < 0)
        return -1;
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static void
forget_pid(pid_t pid)
{
    for (int i = 0; i < MAX_SERVERS; i++)
        if (started[i] == pid)
            started[i] = 0;
}

static void
kill_all_servers(void)
{
    for (int i = 0; i < MAX_SERVERS; i++)
        if (started[i] > 0) {
            kill(started[i], SIGKILL);
            waitpid(started[i], NULL, 0);
            started[i] = 0;
        }
}

/* A connected synchronous client (AUTH done), or NULL. */
static redisContext *
srv_client(const struct srv *s)
{
    struct timeval tv = {0, 300000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", s->port, tv);
    redisReply *r;

    if (c == NULL || c->err)
        goto fail;
    redisSetTimeout(c, (struct timeval){2, 0});
    if (s->password) {
        r = redisCommand(c, "AUTH %s", s->password);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            freeReplyObject(r);
            goto fail;
        }
        freeReplyObject(r);
    }
    return c;
fail:
    redisFree(c);
    return NULL;
}

static int
srv_pings(const struct srv *s)
{
    redisContext *c = srv_client(s);
    redisReply *r;
    int ok;

    if (c == NULL)
        return 0;
    r = redisCommand(c, "PING");
    ok = r != NULL && r->type == REDIS_REPLY_STATUS &&
         strcmp(r->str, "PONG") == 0;
    freeReplyObject(r);
    redisFree(c);
    return ok;
}

/* Starts redis-server; keeps s->port (and dir) when already set, so that
 * a server can be restarted in the same place. */
static int
srv_start(struct srv *s)
{
    char port[16];
    const char *argv[24];
    int n = 0;
    pid_t parent = getpid(), pid;
    double end;

    if (s->dir[0] == '\0') {
        snprintf(s->dir, sizeof s->dir, "/tmp/mfqueue.XXXXXX");
        if (mkdtemp(s->dir) == NULL)
            return -1;
    }
    if (s->port == 0)
        s->port = free_port();
    snprintf(s->sock, sizeof s->sock, "%s/redis.sock", s->dir);
    snprintf(s->log, sizeof s->log, "%s/redis.log", s->dir);
    snprintf(port, sizeof port, "%d", s->port);
    argv[n++] = REDIS_SERVER;
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--appendonly";
    argv[n++] = "no";
    argv[n++] = "--daemonize";
    argv[n++] = "no";
    argv[n++] = "--dir";
    argv[n++] = s->dir;
    argv[n++] = "--unixsocket";
    argv[n++] = s->sock;
    argv[n++] = "--unixsocketperm";
    argv[n++] = "700";
    argv[n++] = "--logfile";
    argv[n++] = s->log;
    if (s->password) {
        argv[n++] = "--requirepass";
        argv[n++] = s->password;
    }
    argv[n] = NULL;
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        execv(REDIS_SERVER, (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    for (int i = 0; i < MAX_SERVERS; i++)
        if (started[i] == 0) {
            started[i] = pid;
            break;
        }
    end = now_ms() + 5000;
    while (now_ms() < end) {
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            forget_pid(pid);
            s->pid = 0;
            return -1;
        }
        if (srv_pings(s))
            return 0;
        sleep_ms(10);
    }
    return -1;
}

static void
srv_kill(struct srv *s, int sig)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, sig);
    waitpid(s->pid, NULL, 0);
    forget_pid(s->pid);
    s->pid = 0;
}

/* Stops it (also when SIGSTOPped) and removes its directory. */
static void
srv_destroy(struct srv *s)
{
    char path[160];

    if (s->pid > 0) {
        kill(s->pid, SIGCONT);
        srv_kill(s, SIGKILL);
    }
    if (s->dir[0]) {
        unlink(s->sock);
        unlink(s->log);
        snprintf(path, sizeof path, "%s/dump.rdb", s->dir);
        unlink(path);
        rmdir(s->dir);
        s->dir[0] = '\0';
    }
}

/* One reply from the test's synchronous client; caller frees. */
static redisReply *
srv_cmd(const struct srv *s, const char *fmt, ...)
{
    redisContext *c = srv_client(s);
    redisReply *r = NULL;
    va_list ap;

    if (c == NULL)
        return NULL;
    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return r;
}

/* Run a command the test only needs done: it must not fail. */
static void
srv_run(const struct srv *s, const char *cmd)
{
    redisReply *r = srv_cmd(s, cmd); /* split at spaces, as a format */

    assert_non_null(r);
    assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
}

/* Runs a Lua script (no keys) the test only needs done. */
static void
srv_eval(const struct srv *s, const char *script)
{
    redisReply *r = srv_cmd(s, "EVAL %s 0", script);

    assert_non_null(r);
    assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
}

static long long
srv_int(const struct srv *s, const char *fmt, const char *a, const char *b)
{
    redisReply *r = srv_cmd(s, fmt, a, b);
    long long v = -999;

    if (r != NULL && r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r != NULL && r->type == REDIS_REPLY_STRING) /* HGET, ZSCORE */
        v = strtoll(r->str, NULL, 10);
    freeReplyObject(r);
    return v;
}

/* ---- loop helpers and callbacks --------------------------------------- */

static struct srv main_srv; /* shared by the tests that do not hurt it */
static struct srv extra;    /* a test's own server, destroyed in teardown */
#define MAX_QUEUES 8
static struct queue *open_qs[MAX_QUEUES]; /* closed in teardown */
static int tearing_down;      /* results of a failed test's calls are dropped */
static struct event *cont_ev; /* SIGCONT timer of the late-reply test */
static struct redis *open_r;  /* a test's bare connection */
static struct event_base *base;

typedef int cond_fn(void *);

/* Runs the loop until cond holds or ms pass; 0 when it held. */
static int
run_until(cond_fn *cond, void *arg, unsigned ms)
{
    double end = now_ms() + ms;

    while (!cond(arg)) {
        struct timeval tv = {0, 2000};
        if (now_ms() > end)
            return -1;
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    return 0;
}

static int
never(void *arg)
{
    (void)arg;
    return 0;
}

static void
run_for(unsigned ms)
{
    run_until(never, NULL, ms);
}

static int
is_connected(void *q)
{
    return queue_connected(q);
}

static int
is_down(void *q)
{
    return !queue_connected(q);
}

struct res {
    int calls;
    enum queue_status st;
    int null_stored;
    char stored[512];
    size_t stored_len;
    long long n;
    double at;
};

static int
res_done(void *arg)
{
    return ((struct res *)arg)->calls > 0;
}

static void
on_submit(enum queue_status st, const char *stored, size_t len, void *arg)
{
    struct res *r = arg;

    if (tearing_down)
        return;
    r->calls++;
    r->st = st;
    r->null_stored = stored == NULL;
    r->stored_len = len;
    if (stored && len < sizeof r->stored) {
        memcpy(r->stored, stored, len);
        r->stored[len] = '\0';
    }
    r->at = now_ms();
}

static void
on_count(enum queue_status st, long long n, void *arg)
{
    struct res *r = arg;

    if (tearing_down)
        return;
    r->calls++;
    r->st = st;
    r->n = n;
    r->at = now_ms();
}

struct states {
    int ups, downs;
    char why[512];
};

static void
on_state(int ready, const char *why, void *arg)
{
    struct states *s = arg;

    if (ready)
        s->ups++;
    else
        s->downs++;
    snprintf(s->why, sizeof s->why, "%s", why);
}

static struct queue *
open_queue(const char *url, const char *password, const char *prefix,
           unsigned timeout_ms)
{
    struct queue_config cfg = {url, password, prefix, timeout_ms};
    struct queue *q = queue_new(base, &cfg);

    for (int i = 0; q != NULL && i < MAX_QUEUES; i++)
        if (open_qs[i] == NULL) {
            open_qs[i] = q;
            break;
        }
    return q;
}

/* Starts the test's own server and a queue connected to it; its state
 * changes go to *st from the start when st is not NULL. */
static struct queue *
open_extra(const char *prefix, unsigned timeout_ms, struct states *st)
{
    char url[64];
    struct queue *q;

    assert_int_equal(srv_start(&extra), 0);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", extra.port);
    q = open_queue(url, NULL, prefix, timeout_ms);
    assert_non_null(q);
    if (st != NULL)
        queue_set_state_cb(q, on_state, st);
    assert_int_equal(run_until(is_connected, q, 5000), 0);
    return q;
}

static void
close_queue(struct queue *q)
{
    for (int i = 0; i < MAX_QUEUES; i++)
        if (open_qs[i] == q)
            open_qs[i] = NULL;
    queue_free(q);
}

static struct queue *
open_main(const char *prefix, unsigned timeout_ms)
{
    char url[64];
    struct queue *q;

    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", main_srv.port);
    q = open_queue(url, NULL, prefix, timeout_ms);
    assert_non_null(q);
    assert_int_equal(run_until(is_connected, q, 5000), 0);
    return q;
}

/* Submits and waits for the answer. */
static void
submit_wait(struct queue *q, const char *id, const char *rec, size_t len,
            long long ms, double urgency, struct res *r)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(queue_submit(q, id, rec, len, ms, urgency, on_submit, r),
                     0);
    assert_int_equal(run_until(res_done, r, 5000), 0);
    assert_int_equal(r->calls, 1);
}

/* ---- tests ------------------------------------------------------------ */

static void
test_url_parse(void **state)
{
    struct redis_url u;
    char err[256];
    static const char *bad[] = {
        "",
        "garbage",
        "http://127.0.0.1:6379",
        "redis://",
        "redis://:6379",
        "redis://h:0",
        "redis://h:65536",
        "redis://h:12a",
        "redis://h/x",
        "redis://h/1/2",
        "redis://h?db=1",
        "redis://h h",
        "redis://user@h",
        "redis://:pw%zz@h",
        "redis://:pw%4@h",
        "redis://[::1",
        "unix://rel",
        "unix:///",
        "unix:///x?foo=1",
        "unix:///x?db=",
        "redis://h:99999999",
        ("unix:///aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
    };

    (void)state;
    assert_int_equal(
        redis_url_parse("redis://127.0.0.1:6380/2", &u, err, sizeof err), 0);
    assert_false(u.is_unix);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 2);
    assert_int_equal(redis_url_parse("redis://localhost", &u, err, sizeof err),
                     0);
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_int_equal(redis_url_parse("redis://h:1/", &u, err, sizeof err), 0);
    assert_int_equal(
        redis_url_parse("redis://[::1]:7000/3", &u, err, sizeof err), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 3);
    assert_int_equal(
        redis_url_parse("redis://bob:p%40ss%3a@h:1/0", &u, err, sizeof err), 0);
    assert_string_equal(u.user, "bob");
    assert_string_equal(u.password, "p@ss:");
    assert_int_equal(redis_url_parse("redis://:x@y@h", &u, err, sizeof err), 0);
    assert_string_equal(u.password, "x@y");
    assert_string_equal(u.host, "h");
    assert_int_equal(
        redis_url_parse("unix:///run/r.sock?db=4", &u, err, sizeof err), 0);
    assert_true(u.is_unix);
    assert_string_equal(u.path, "/run/r.sock");
    assert_int_equal(u.db, 4);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (redis_url_parse(bad[i], &u, err, sizeof err) == 0)
            fail_msg("accepted bad URL '%s'", bad[i]);
        assert_true(err[0] != '\0');
        assert_int_equal(queue_url_check(bad[i], err, sizeof err), -1);
    }
    /* Reasons never carry the password. */
    assert_int_equal(
        queue_url_check("redis://:hunter2@h:99999", err, sizeof err), -1);
    assert_null(strstr(err, "hunter2"));
    /* A wrong scheme is quoted, cut at 16 bytes; "..." only when cut. */
    assert_int_equal(queue_url_check("http://x", err, sizeof err), -1);
    assert_non_null(strstr(err, "(got http://x)"));
    assert_int_equal(
        queue_url_check("http://user:longsecret@h", err, sizeof err), -1);
    assert_non_null(strstr(err, "(got http://user:long...)"));
    assert_int_equal(queue_url_check(NULL, err, sizeof err), -1);
    assert_null(open_queue("garbage", NULL, "p:", 100));
    assert_null(open_queue("redis://", NULL, "p:", 100));
    assert_null(open_queue("redis://u:@h", NULL, "p:", 100));
}

static void
test_submit_stores_fields(void **state)
{
    struct queue *q = open_main("t1:", 2000);
    static const char rec[] = "{\"text\":\"buy pills\",\"verdict\":\"review\"}";
    struct res r;
    redisReply *h;

    (void)state;
    /* The urgent order kept (its marker set): submit adds to it too. */
    srv_run(&main_srv, "SET t1:queue:urgent:kept 1");
    submit_wait(q, "c-1", rec, strlen(rec), 1700000000123LL, 0.75, &r);
    assert_int_equal(r.st, QUEUE_OK);
    h = srv_cmd(&main_srv, "HGETALL t1:item:c-1");
    assert_non_null(h);
    assert_int_equal(h->type, REDIS_REPLY_ARRAY);
    /* Only the record: no state means queued; the scores are in the
     * zsets (decide copies them into the hash). */
    assert_int_equal(h->elements, 2);
    assert_string_equal(h->element[0]->str, "record");
    assert_string_equal(h->element[1]->str, rec);
    freeReplyObject(h);
    h = srv_cmd(&main_srv, "ZSCORE t1:queue c-1");
    assert_non_null(h);
    assert_non_null(h->str); /* NULL: no such member */
    assert_string_equal(h->str, "1700000000123");
    freeReplyObject(h);
    h = srv_cmd(&main_srv, "ZSCORE t1:queue:urgent c-1");
    assert_non_null(h);
    assert_non_null(h->str); /* NULL: no such member */
    assert_float_equal(strtod(h->str, NULL), 0.75, 1e-12);
    freeReplyObject(h);

    /* Binary-safe record, NaN urgency stored as 0. */
    submit_wait(q, "c-2", "a\0b", 3, 5, NAN, &r);
    assert_int_equal(r.st, QUEUE_OK);
    memset(&r, 0, sizeof r);
    assert_int_equal(queue_get(q, "c-2", on_submit, &r), 0);
    assert_int_equal(run_until(res_done, &r, 5000), 0);
    assert_int_equal(r.st, QUEUE_OK);
    assert_int_equal(r.stored_len, 3);
    assert_memory_equal(r.stored, "a\0b", 3);
    h = srv_cmd(&main_srv, "ZSCORE t1:queue:urgent c-2");
    assert_non_null(h);
    assert_non_null(h->str); /* NULL: no such member */
    assert_string_equal(h->str, "0");
    freeReplyObject(h);

    /* The urgency goes with the six digits a record's score has. */
    submit_wait(q, "c-3", "x", 1, 5, 0.1234567891, &r);
    h = srv_cmd(&main_srv, "ZSCORE t1:queue:urgent c-3");
    assert_non_null(h);
    assert_non_null(h->str); /* NULL: no such member */
    assert_true(strtod(h->str, NULL) == strtod("0.123457", NULL));
    freeReplyObject(h);

    /* Without the marker, P queue only. */
    srv_run(&main_srv, "DEL t1:queue:urgent:kept");
    submit_wait(q, "c-4", "x", 1, 5, 0.5, &r);
    assert_int_equal(r.st, QUEUE_OK);
    assert_int_equal(srv_int(&main_srv, "ZSCORE %s %s", "t1:queue", "c-4"), 5);
    h = srv_cmd(&main_srv, "ZSCORE t1:queue:urgent c-4");
    assert_non_null(h);
    assert_int_equal(h->type, REDIS_REPLY_NIL);
    freeReplyObject(h);

    /* Bad ids are refused without a callback. */
    assert_int_equal(queue_submit(q, "", "x", 1, 1, 0, on_submit, &r), -1);
    assert_int_equal(queue_submit(q, NULL, "x", 1, 1, 0, on_submit, &r), -1);
    {
        char big[QUEUE_ID_MAX + 2];
        memset(big, 'x', sizeof big - 1);
        big[sizeof big - 1] = '\0';
        assert_int_equal(queue_submit(q, big, "x", 1, 1, 0, on_submit, &r), -1);
        big[QUEUE_ID_MAX] = '\0';
        submit_wait(q, big, "x", 1, 1, 0, &r);
        assert_int_equal(r.st, QUEUE_OK);
    }
    close_queue(q);
}

static void
test_resubmit_exists(void **state)
{
    struct queue *q = open_main("t2:", 2000);
    struct res r, a, b;

    (void)state;
    submit_wait(q, "dup", "first", 5, 100, 0.5, &r);
    assert_int_equal(r.st, QUEUE_OK);
    submit_wait(q, "dup", "second!", 7, 200, 0.9, &r);
    assert_int_equal(r.st, QUEUE_EXISTS);
    assert_int_equal(r.stored_len, 5);
    assert_string_equal(r.stored, "first");
    assert_int_equal(srv_int(&main_srv, "ZCARD %s", "t2:queue", NULL), 1);
    /* The urgent order is not kept (no marker): nothing there. */
    assert_int_equal(srv_int(&main_srv, "ZCARD %s", "t2:queue:urgent", NULL),
                     0);

    /* Two submits of one id in flight at once: exactly one stores. */
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    assert_int_equal(queue_submit(q, "race", "A", 1, 1, 0, on_submit, &a), 0);
    assert_int_equal(queue_submit(q, "race", "B", 1, 2, 0, on_submit, &b), 0);
    assert_int_equal(run_until(res_done, &b, 5000), 0);
    assert_int_equal(run_until(res_done, &a, 5000), 0);
    assert_int_equal(a.st, QUEUE_OK);
    assert_int_equal(b.st, QUEUE_EXISTS);
    assert_string_equal(b.stored, "A");
    assert_int_equal(srv_int(&main_srv, "ZCARD %s", "t2:queue", NULL), 2);
    close_queue(q);
}

static void
test_length_oldest_get(void **state)
{
    struct queue *q = open_main("t3:", 2000);
    struct res r;

    (void)state;
    memset(&r, 0, sizeof r);
    assert_int_equal(queue_length(q, on_count, &r), 0);
    assert_int_equal(run_until(res_done, &r, 5000), 0);
    assert_int_equal(r.st, QUEUE_OK);
    assert_int_equal(r.n, 0);
    memset(&r, 0, sizeof r);
    assert_int_equal(queue_oldest(q, on_count, &r), 0);
    assert_int_equal(run_until(res_done, &r, 5000), 0);
    assert_int_equal(r.st, QUEUE_OK);
    assert_int_equal(r.n, -1);

    submit_wait(q, "a", "ra", 2, 1700000003000LL, 0.1, &r);
    submit_wait(q, "b", "rb", 2, 1700000001000LL, 0.9, &r);
    submit_wait(q, "c", "rc", 2, 1700000002000LL, 0.5, &r);
    memset(&r, 0, sizeof r);
    assert_int_equal(queue_length(q, on_count, &r), 0);
    assert_int_equal(run_until(res_done, &r, 5000), 0);
    assert_int_equal(r.n, 3);
    memset(&r, 0, sizeof r);
    assert_int_equal(queue_oldest(q, on_count, &r), 0);
    assert_int_equal(run_until(res_done, &r, 5000), 0);
    assert_int_equal(r.st, QUEUE_OK);
    assert_int_equal(r.n, 1700000001000LL);

    memset(&r, 0, sizeof r);
    assert_int_equal(queue_get(q, "b", on_submit, &r), 0);
    assert_int_equal(run_until(res_done, &r, 5000), 0);
    assert_int_equal(r.st, QUEUE_OK);
    assert_string_equal(r.stored, "rb");
    memset(&r, 0, sizeof r);
    assert_int_equal(queue_get(q, "unknown", on_submit, &r), 0);
    assert_int_equal(run_until(res_done, &r, 5000), 0);
    assert_int_equal(r.st, QUEUE_OK);
    assert_true(r.null_stored);
    assert_int_equal(queue_pending(q), 0);
    close_queue(q);
}

struct flood {
    struct queue *q;
    int sent, done, ok, other, total;
    char rec[300];
};

static void
on_flood(enum queue_status st, const char *stored, size_t len, void *arg)
{
    struct flood *f = arg;
    char id[32];

    (void)stored;
    (void)len;
    if (tearing_down)
        return;
    f->done++;
    if (st == QUEUE_OK)
        f->ok++;
    else
        f->other++;
    if (f->sent < f->total) {
        /* Callbacks may submit again: keep the window full. */
        snprintf(id, sizeof id, "f%d", f->sent);
        if (queue_submit(f->q, id, f->rec, sizeof f->rec,
                         1700000000000LL + f->sent, 0.5, on_flood, f) == 0)
            f->sent++;
    }
}

static int
flood_done(void *arg)
{
    struct flood *f = arg;
    return f->done >= f->total;
}

static void
test_1000_in_flight(void **state)
{
    struct queue *q = open_main("t4:", 5000);
    static struct flood f;
    double t0, dt;
    char id[32];

    (void)state;
    memset(&f, 0, sizeof f);
    memset(f.rec, 'x', sizeof f.rec);
    f.q = q;
    f.total = 1000;
    t0 = now_ms();
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "f%d", i);
        assert_int_equal(queue_submit(q, id, f.rec, sizeof f.rec,
                                      1700000000000LL + i, 0.5, on_flood, &f),
                         0);
    }
    f.sent = 1000;
    assert_int_equal(queue_pending(q), 1000);
    assert_int_equal(run_until(flood_done, &f, 20000), 0);
    dt = now_ms() - t0;
    assert_int_equal(f.ok, 1000);
    assert_int_equal(f.other, 0);
    assert_int_equal(queue_pending(q), 0);
    assert_int_equal(srv_int(&main_srv, "ZCARD %s", "t4:queue", NULL), 1000);
    printf("# 1000 submits in flight on one connection: %.0f ms\n", dt);

    /* Throughput: 20,000 more with a window of 1,000 kept full by the
     * callbacks. */
    memset(&f, 0, sizeof f);
    memset(f.rec, 'y', sizeof f.rec);
    f.q = q;
    f.total = 21000;
    f.sent = 1000;
    f.done = 1000;
    f.ok = 1000;
    t0 = now_ms();
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "f%d", f.sent);
        assert_int_equal(queue_submit(q, id, f.rec, sizeof f.rec,
                                      1700000000000LL + f.sent, 0.5, on_flood,
                                      &f),
                         0);
        f.sent++;
    }
    assert_int_equal(run_until(flood_done, &f, 25000), 0);
    dt = now_ms() - t0;
    assert_int_equal(f.ok, 21000);
    assert_int_equal(srv_int(&main_srv, "ZCARD %s", "t4:queue", NULL), 21000);
    printf("# 20000 submits (300-byte records, window 1000): %.0f ms, "
           "%.0f submits/s\n",
           dt, 20000 / (dt / 1000));
    close_queue(q);
    srv_int(&main_srv, "DEL %s %s", "t4:queue", "t4:queue:urgent");
}

/* A queue on url never gets ready, and says why (never the password). */
static void
expect_never_ready(const char *url, const char *password, const char *why)
{
    struct states st = {0};
    struct queue *q = open_queue(url, password, "t5:", 500);
    struct res r;

    assert_non_null(q);
    queue_set_state_cb(q, on_state, &st);
    run_for(400);
    assert_false(queue_connected(q));
    assert_true(st.downs >= 1);
    assert_int_equal(st.ups, 0);
    if (strstr(st.why, why) == NULL)
        fail_msg("'%s' does not say '%s'", st.why, why);
    assert_non_null(strstr(queue_last_error(q), why));
    if (password != NULL)
        assert_null(strstr(st.why, password));
    assert_int_equal(queue_submit(q, "x", "x", 1, 1, 0, on_submit, &r), -1);
    close_queue(q);
}

static void
test_unix_socket(void **state)
{
    char url[200];
    struct queue *q;
    struct res r;
    redisReply *h;
    redisContext *c;

    (void)state;
    snprintf(url, sizeof url, "unix://%s?db=3", main_srv.sock);
    q = open_queue(url, NULL, "t5:", 2000);
    assert_non_null(q);
    assert_int_equal(run_until(is_connected, q, 5000), 0);
    submit_wait(q, "u1", "via unix", 8, 42, 1, &r);
    assert_int_equal(r.st, QUEUE_OK);
    c = srv_client(&main_srv);
    assert_non_null(c);
    h = redisCommand(c, "SELECT 3");
    freeReplyObject(h);
    h = redisCommand(c, "HGET t5:item:u1 record");
    assert_non_null(h);
    assert_int_equal(h->type, REDIS_REPLY_STRING);
    assert_string_equal(h->str, "via unix");
    freeReplyObject(h);
    redisFree(c);
    /* Not in db 0. */
    assert_int_equal(srv_int(&main_srv, "EXISTS %s", "t5:item:u1", NULL), 0);
    close_queue(q);

    /* A database Redis does not have; a socket that is not there. */
    snprintf(url, sizeof url, "unix://%s?db=99", main_srv.sock);
    expect_never_ready(url, NULL, "SELECT failed");
    snprintf(url, sizeof url, "unix://%s.missing", main_srv.sock);
    expect_never_ready(url, NULL, "No such file");
}

static void
test_auth(void **state)
{
    struct srv *s = &extra;
    struct states st = {0};
    struct queue *q;
    struct res r;
    char url[128];

    (void)state;
    s->password = "s3cret pw";
    assert_int_equal(srv_start(s), 0);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", s->port);

    /* Wrong password, or none: never ready, the reason says why. */
    expect_never_ready(url, "wrong", "AUTH failed");
    expect_never_ready(url, NULL, "NOAUTH");

    /* The right one, from the config and from the URL. */
    memset(&st, 0, sizeof st);
    q = open_queue(url, "s3cret pw", "t6:", 2000);
    queue_set_state_cb(q, on_state, &st);
    assert_int_equal(run_until(is_connected, q, 5000), 0);
    assert_int_equal(st.ups, 1);
    assert_null(strstr(st.why, "s3cret"));
    submit_wait(q, "a1", "authed", 6, 1, 0, &r);
    assert_int_equal(r.st, QUEUE_OK);
    close_queue(q);
    snprintf(url, sizeof url, "redis://:s3cret%%20pw@127.0.0.1:%d/1", s->port);
    q = open_queue(url, NULL, "t6:", 2000);
    assert_int_equal(run_until(is_connected, q, 5000), 0);
    submit_wait(q, "a1", "db1", 3, 1, 0, &r);
    assert_int_equal(r.st, QUEUE_OK); /* another database */
    close_queue(q);
    snprintf(url, sizeof url, "redis://default:s3cret%%20pw@127.0.0.1:%d/1",
             s->port);
    q = open_queue(url, NULL, "t6:", 2000);
    assert_int_equal(run_until(is_connected, q, 5000), 0);
    submit_wait(q, "a1", "again", 5, 1, 0, &r);
    assert_int_equal(r.st, QUEUE_EXISTS);
    assert_string_equal(r.stored, "db1");
    close_queue(q);
}

static void
test_noscript_fallback(void **state)
{
    struct queue *q = open_main("t7:", 2000);
    struct res r, a, b;
    unsigned long long errs;

    (void)state;
    submit_wait(q, "n1", "one", 3, 1, 0, &r);
    assert_int_equal(r.st, QUEUE_OK);
    srv_run(&main_srv, "SCRIPT FLUSH");
    errs = queue_error_count();
    /* Two EVALSHAs in flight both get NOSCRIPT and are re-run by EVAL. */
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    assert_int_equal(queue_submit(q, "n2", "two", 3, 2, 0, on_submit, &a), 0);
    assert_int_equal(queue_submit(q, "n1", "dup", 3, 3, 0, on_submit, &b), 0);
    assert_int_equal(run_until(res_done, &a, 5000), 0);
    assert_int_equal(run_until(res_done, &b, 5000), 0);
    assert_int_equal(a.st, QUEUE_OK);
    assert_int_equal(b.st, QUEUE_EXISTS);
    assert_string_equal(b.stored, "one");
    submit_wait(q, "n3", "three", 5, 3, 0, &r);
    assert_int_equal(r.st, QUEUE_OK);
    assert_int_equal(queue_error_count(), errs);
    assert_int_equal(srv_int(&main_srv, "ZCARD %s", "t7:queue", NULL), 3);
    close_queue(q);
}

static void
sigcont_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    kill(*(pid_t *)arg, SIGCONT);
}

static void
test_timeout_late_reply(void **state)
{
    struct srv *s = &extra;
    struct states st = {0};
    struct queue *q;
    struct res r;
    struct timeval tv = {0, 450000};
    unsigned long long errs;
    double t0;

    (void)state;
    q = open_extra("t8:", 300, &st);
    assert_int_equal(st.ups, 1);

    errs = queue_error_count();
    kill(s->pid, SIGSTOP);
    cont_ev = evtimer_new(base, sigcont_cb, &s->pid);
    evtimer_add(cont_ev, &tv); /* Redis wakes at 450 ms, before 2 x 300 */
    memset(&r, 0, sizeof r);
    t0 = now_ms();
    assert_int_equal(queue_submit(q, "late", "L", 1, 1, 0, on_submit, &r), 0);
    assert_int_equal(run_until(res_done, &r, 5000), 0);
    assert_int_equal(r.st, QUEUE_TIMEOUT);
    assert_true(r.at - t0 >= 290);
    assert_true(r.at - t0 < 300 + 400);
    assert_int_equal(queue_error_count(), errs + 1);
    /* The late reply arrives and is dropped: no second callback, the
     * connection stays. */
    run_for(500);
    assert_int_equal(r.calls, 1);
    assert_int_equal(queue_pending(q), 0);
    assert_true(queue_connected(q));
    assert_int_equal(st.downs, 0);
    /* Redis did run it: the id is taken (what the spool relies on). */
    submit_wait(q, "late", "L2", 2, 1, 0, &r);
    assert_int_equal(r.st, QUEUE_EXISTS);
    assert_string_equal(r.stored, "L");
    close_queue(q);
}

static void
test_timeout_stuck_reconnects(void **state)
{
    struct srv *s = &extra;
    struct states st = {0};
    struct queue *q;
    struct res r;
    double t0;

    (void)state;
    q = open_extra("t9:", 200, &st);

    kill(s->pid, SIGSTOP);
    memset(&r, 0, sizeof r);
    t0 = now_ms();
    assert_int_equal(queue_submit(q, "s1", "S", 1, 1, 0, on_submit, &r), 0);
    assert_int_equal(run_until(res_done, &r, 5000), 0);
    assert_int_equal(r.st, QUEUE_TIMEOUT);
    assert_true(r.at - t0 < 200 + 400);
    /* No sign of life for another timeout: the connection is dropped. */
    assert_int_equal(run_until(is_down, q, 3000), 0);
    assert_true(now_ms() - t0 < 2000);
    assert_int_equal(st.downs, 1);
    assert_non_null(strstr(st.why, "no reply"));
    assert_int_equal(queue_submit(q, "s2", "S", 1, 1, 0, on_submit, &r), -1);
    assert_int_equal(queue_pending(q), 0);
    assert_int_equal(r.calls, 1);
    run_for(1200); /* handshakes to a stopped server time out, too */
    assert_false(queue_connected(q));
    kill(s->pid, SIGCONT);
    assert_int_equal(run_until(is_connected, q, 6000), 0);
    submit_wait(q, "s3", "S", 1, 1, 0, &r);
    assert_int_equal(r.st, QUEUE_OK);
    close_queue(q);
}

static void
test_absent_then_started(void **state)
{
    struct srv *s = &extra;
    struct states st = {0};
    struct queue *q;
    struct res r;
    char url[64];
    unsigned long long errs;
    double t0;

    (void)state;
    s->port = free_port();
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", s->port);
    q = open_queue(url, NULL, "t10:", 1000);
    assert_non_null(q);
    queue_set_state_cb(q, on_state, &st);
    run_for(300);
    assert_false(queue_connected(q));
    assert_true(st.downs >= 1);
    assert_non_null(strstr(st.why, "refused"));
    assert_true(strlen(queue_last_error(q)) > 0);
    errs = queue_error_count();
    t0 = now_ms();
    assert_int_equal(queue_submit(q, "x", "x", 1, 1, 0, on_submit, &r), -1);
    memset(&r, 0, sizeof r);
    assert_int_equal(queue_length(q, on_count, &r), -1);
    assert_true(now_ms() - t0 < 50);
    assert_int_equal(queue_error_count(), errs + 2);
    run_for(100);
    assert_int_equal(r.calls, 0);
    /* The outage is reported once, not at every retry. */
    assert_int_equal(st.downs, 1);

    assert_int_equal(srv_start(s), 0);
    t0 = now_ms();
    assert_int_equal(run_until(is_connected, q, 5000), 0);
    assert_true(now_ms() - t0 < 2500); /* backoff is capped at 2 s */
    assert_int_equal(st.ups, 1);
    submit_wait(q, "x", "x", 1, 1, 0, &r);
    assert_int_equal(r.st, QUEUE_OK);
    close_queue(q);
}

struct res_q {
    struct res r;
    struct queue *q;
};

static void
on_submit_resubmit(enum queue_status st, const char *stored, size_t len,
                   void *arg)
{
    struct res_q *rq = arg;

    if (tearing_down)
        return;
    on_submit(st, stored, len, &rq->r);
    /* The queue is going: new commands are refused, not queued. */
    rq->r.n = queue_submit(rq->q, "again", "a", 1, 1, 0, on_submit, NULL);
}

static int
all_done(void *arg)
{
    struct res *r = arg;
    for (int i = 0; i < 50; i++)
        if (r[i].calls == 0)
            return 0;
    return 1;
}

static void
test_killed_and_restarted(void **state)
{
    struct srv *s = &extra;
    struct states st = {0};
    static struct res rs[50];
    struct queue *q;
    struct res r;
    char id[16];
    unsigned long long errs;

    (void)state;
    q = open_extra("t11:", 2000, &st);
    submit_wait(q, "before", "b", 1, 1, 0, &r);
    assert_int_equal(r.st, QUEUE_OK);

    errs = queue_error_count();
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < 50; i++) {
        snprintf(id, sizeof id, "k%d", i);
        assert_int_equal(queue_submit(q, id, "k", 1, 1, 0, on_submit, &rs[i]),
                         0);
    }
    srv_kill(s, SIGKILL);
    assert_int_equal(run_until(all_done, rs, 5000), 0);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(rs[i].calls, 1);
        assert_int_equal(rs[i].st, QUEUE_ERROR);
    }
    assert_true(queue_error_count() >= errs + 50);
    assert_false(queue_connected(q));
    assert_int_equal(st.downs, 1);
    assert_int_equal(queue_submit(q, "y", "y", 1, 1, 0, on_submit, &r), -1);
    run_for(300);

    assert_int_equal(srv_start(s), 0); /* same port, same directory */
    assert_int_equal(run_until(is_connected, q, 5000), 0);
    assert_int_equal(st.ups, 2);
    submit_wait(q, "after", "a", 1, 1, 0, &r);
    assert_int_equal(r.st, QUEUE_OK);
    for (int i = 0; i < 50; i++)
        assert_int_equal(rs[i].calls, 1);
    close_queue(q);
}

static void
test_free_with_pending(void **state)
{
    static struct res_q rq[100];
    struct queue *q = open_main("t12:", 2000);
    char id[16], url[64];

    (void)state;
    memset(rq, 0, sizeof rq);
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof id, "p%d", i);
        rq[i].q = q;
        assert_int_equal(
            queue_submit(q, id, "p", 1, 1, 0, on_submit_resubmit, &rq[i]), 0);
    }
    close_queue(q); /* callbacks run inside, once each */
    for (int i = 0; i < 100; i++) {
        assert_int_equal(rq[i].r.calls, 1);
        assert_int_equal(rq[i].r.st, QUEUE_ERROR);
        assert_int_equal(rq[i].r.n, -1);
    }
    run_for(50);

    /* Freed before the loop ever ran, during the handshake, while
     * waiting to reconnect. */
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", main_srv.port);
    q = open_queue(url, NULL, "t12:", 100);
    assert_non_null(q);
    close_queue(q);
    q = open_queue(url, NULL, "t12:", 100);
    event_base_loop(base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
    close_queue(q);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", free_port());
    q = open_queue(url, NULL, "t12:", 100);
    run_for(100);
    assert_false(queue_connected(q));
    close_queue(q);
    queue_free(NULL);
}

static int
redis_is_ready(void *r)
{
    return redis_ready(r);
}

static int
went_down(void *st)
{
    return ((struct states *)st)->downs > 0;
}

static void
test_idle_ping_and_fast_reconnect(void **state)
{
    struct srv *s = &extra;
    struct states st1 = {0}, st2 = {0};
    struct redis_config rc = {0};
    struct queue *q;
    redisReply *h;
    char url[64], err[256];
    double t0;

    (void)state;
    assert_int_equal(srv_start(s), 0);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", s->port);
    rc.url = url;
    rc.timeout_ms = 1000;
    rc.backoff_min_ms = 1000; /* a retry after a failure waits >= 500 ms */
    rc.idle_ping_ms = 200;
    rc.state_cb = on_state;
    rc.state_arg = &st1;
    open_r = redis_new(base, &rc, err, sizeof err);
    assert_non_null(open_r);
    q = open_queue(url, NULL, "t13:", 1000); /* idle PING every 15 s */
    queue_set_state_cb(q, on_state, &st2);
    assert_int_equal(run_until(redis_is_ready, open_r, 5000), 0);
    assert_int_equal(run_until(is_connected, q, 5000), 0);

    /* The server closes clients idle for a second: PINGs keep one
     * connection alive; the other is closed and made again at once. */
    srv_run(s, "CONFIG SET timeout 1");
    run_for(3500);
    assert_int_equal(st1.downs, 0);
    assert_true(redis_ready(open_r));
    assert_true(st2.downs >= 1);
    assert_true(st2.ups >= 2);
    srv_run(s, "CONFIG SET timeout 0");
    assert_int_equal(run_until(is_connected, q, 2000), 0);

    /* A connection that had worked is made again without backoff. */
    run_for(1100);
    t0 = now_ms();
    h = srv_cmd(s, "CLIENT KILL TYPE normal");
    assert_non_null(h);
    assert_int_equal(h->type, REDIS_REPLY_INTEGER);
    assert_true(h->integer >= 2);
    freeReplyObject(h);
    assert_int_equal(run_until(went_down, &st1, 2000), 0);
    assert_int_equal(run_until(redis_is_ready, open_r, 2000), 0);
    assert_true(now_ms() - t0 < 400);
    assert_int_equal(st1.ups, 2);
    assert_int_equal(redis_connect_count(open_r), 2);
    close_queue(q);
}

/* ---- batches: one EVALSHA per loop pass ---------------------------------- */

#define BATCH_N 200
static struct res batch_rs[BATCH_N];
static int batch_want; /* how many of batch_rs to wait for */

static int
batch_done(void *arg)
{
    (void)arg;
    for (int i = 0; i < batch_want; i++)
        if (batch_rs[i].calls == 0)
            return 0;
    return 1;
}

static void
batch_wait(int n)
{
    batch_want = n;
    assert_int_equal(run_until(batch_done, NULL, 10000), 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(batch_rs[i].calls, 1);
}

static void
batch_submit(struct queue *q, int i, const char *id, const char *rec,
             size_t len, long long ms)
{
    assert_int_equal(
        queue_submit(q, id, rec, len, ms, 0.25, on_submit, &batch_rs[i]), 0);
}

/* Batches and submits sent since *b0 / *i0. */
static void
batch_delta(unsigned long long b0, unsigned long long i0,
            unsigned long long *db, unsigned long long *di)
{
    unsigned long long b, i;

    queue_batch_counts(&b, &i);
    *db = b - b0;
    *di = i - i0;
}

static void
test_batch_distinct_and_duplicates(void **state)
{
    struct queue *q = open_main("tb1:", 2000);
    unsigned long long b0, i0, db, di;
    char id[32], rec[64], key[64];
    redisReply *h;
    struct res r;

    (void)state;
    srv_run(&main_srv, "SET tb1:queue:urgent:kept 1");
    memset(batch_rs, 0, sizeof batch_rs);
    queue_batch_counts(&b0, &i0);
    /* 40 distinct ids in one pass: one command, every one stored. */
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof id, "d%d", i);
        snprintf(rec, sizeof rec, "{\"n\":%d}", i);
        batch_submit(q, i, id, rec, strlen(rec), 1700000000000LL + i);
    }
    assert_int_equal(queue_pending(q), 40);
    batch_wait(40);
    batch_delta(b0, i0, &db, &di);
    assert_int_equal(db, 1);
    assert_int_equal(di, 40);
    assert_int_equal(queue_pending(q), 0);
    for (int i = 0; i < 40; i++)
        assert_int_equal(batch_rs[i].st, QUEUE_OK);
    assert_int_equal(srv_int(&main_srv, "ZCARD %s", "tb1:queue", NULL), 40);
    assert_int_equal(srv_int(&main_srv, "ZCARD %s", "tb1:queue:urgent", NULL),
                     40);
    for (int i = 0; i < 40; i += 13) {
        snprintf(key, sizeof key, "tb1:item:d%d", i);
        snprintf(rec, sizeof rec, "{\"n\":%d}", i);
        h = srv_cmd(&main_srv, "HGET %s record", key);
        assert_non_null(h);
        assert_int_equal(h->type, REDIS_REPLY_STRING);
        assert_string_equal(h->str, rec);
        freeReplyObject(h);
    }
    h = srv_cmd(&main_srv, "ZSCORE tb1:queue d39");
    assert_non_null(h);
    assert_non_null(h->str); /* NULL: no such member */
    assert_string_equal(h->str, "1700000000039");
    freeReplyObject(h);

    /* One id three times in one batch, between others: as sequential
     * submits, the first stores and the later ones see its record. */
    memset(batch_rs, 0, sizeof batch_rs);
    queue_batch_counts(&b0, &i0);
    batch_submit(q, 0, "x1", "first", 5, 1);
    batch_submit(q, 1, "dd", "A", 1, 2);
    batch_submit(q, 2, "x2", "second", 6, 3);
    batch_submit(q, 3, "dd", "B", 1, 4);
    batch_submit(q, 4, "d7", "again", 5, 5); /* stored by the batch above */
    batch_submit(q, 5, "dd", "C", 1, 6);
    batch_wait(6);
    batch_delta(b0, i0, &db, &di);
    assert_int_equal(db, 1);
    assert_int_equal(di, 6);
    assert_int_equal(batch_rs[0].st, QUEUE_OK);
    assert_int_equal(batch_rs[1].st, QUEUE_OK);
    assert_int_equal(batch_rs[2].st, QUEUE_OK);
    assert_int_equal(batch_rs[3].st, QUEUE_EXISTS);
    assert_string_equal(batch_rs[3].stored, "A");
    assert_int_equal(batch_rs[4].st, QUEUE_EXISTS);
    assert_string_equal(batch_rs[4].stored, "{\"n\":7}");
    assert_int_equal(batch_rs[5].st, QUEUE_EXISTS);
    assert_string_equal(batch_rs[5].stored, "A");
    h = srv_cmd(&main_srv, "ZSCORE tb1:queue dd");
    assert_non_null(h);
    assert_non_null(h->str); /* NULL: no such member */
    assert_string_equal(h->str, "2");
    freeReplyObject(h);
    assert_int_equal(srv_int(&main_srv, "ZCARD %s", "tb1:queue", NULL), 43);

    /* Across batches: a later pass sees it too. */
    submit_wait(q, "dd", "D", 1, 7, 0, &r);
    assert_int_equal(r.st, QUEUE_EXISTS);
    assert_string_equal(r.stored, "A");
    close_queue(q);
}

static void
test_batch_caps(void **state)
{
    struct queue *q = open_main("tb2:", 5000);
    unsigned long long b0, i0, db, di;
    static char big[300 * 1024];
    char id[32];

    (void)state;
    /* 64 submits at most in one command: the 64th sends the batch at
     * once, without waiting for the loop. */
    memset(batch_rs, 0, sizeof batch_rs);
    queue_batch_counts(&b0, &i0);
    for (int i = 0; i < 64; i++) {
        snprintf(id, sizeof id, "c%d", i);
        batch_submit(q, i, id, "r", 1, i);
    }
    batch_delta(b0, i0, &db, &di);
    assert_int_equal(db, 1);
    assert_int_equal(di, 64);
    for (int i = 64; i < 150; i++) {
        snprintf(id, sizeof id, "c%d", i);
        batch_submit(q, i, id, "r", 1, i);
    }
    assert_int_equal(queue_pending(q), 150);
    batch_wait(150);
    batch_delta(b0, i0, &db, &di);
    assert_int_equal(db, 3); /* 64 + 64 + 22 */
    assert_int_equal(di, 150);
    for (int i = 0; i < 150; i++)
        assert_int_equal(batch_rs[i].st, QUEUE_OK);
    assert_int_equal(srv_int(&main_srv, "ZCARD %s", "tb2:queue", NULL), 150);

    /* About 1 MiB of records: 300 KiB records go three to a command. */
    memset(batch_rs, 0, sizeof batch_rs);
    memset(big, 'b', sizeof big);
    queue_batch_counts(&b0, &i0);
    for (int i = 0; i < 7; i++) {
        snprintf(id, sizeof id, "big%d", i);
        batch_submit(q, i, id, big, sizeof big, i);
    }
    batch_wait(7);
    batch_delta(b0, i0, &db, &di);
    assert_int_equal(db, 3); /* 3 + 3 + 1 */
    assert_int_equal(di, 7);
    for (int i = 0; i < 7; i++)
        assert_int_equal(batch_rs[i].st, QUEUE_OK);
    assert_int_equal(
        srv_int(&main_srv, "HSTRLEN %s %s", "tb2:item:big6", "record"),
        (long long)sizeof big);
    close_queue(q);
    srv_int(&main_srv, "DEL %s %s", "tb2:item:big0", "tb2:item:big1");
}

static void
test_batch_item_error_alone(void **state)
{
    struct queue *q = open_main("tb3:", 2000);
    unsigned long long errs;
    redisReply *h;
    struct res r;

    (void)state;
    srv_run(&main_srv, "SET tb3:queue:urgent:kept 1"); /* both zsets */
    /* A key of the wrong type fails its own item; its neighbours in the
     * batch are stored. */
    srv_run(&main_srv, "SET tb3:item:bad string");
    errs = queue_error_count();
    memset(batch_rs, 0, sizeof batch_rs);
    batch_submit(q, 0, "ok1", "1", 1, 1);
    batch_submit(q, 1, "bad", "2", 1, 2);
    batch_submit(q, 2, "ok2", "3", 1, 3);
    batch_wait(3);
    assert_int_equal(batch_rs[0].st, QUEUE_OK);
    assert_int_equal(batch_rs[1].st, QUEUE_ERROR);
    assert_int_equal(batch_rs[2].st, QUEUE_OK);
    assert_int_equal(queue_error_count(), errs + 1);
    assert_non_null(strstr(queue_last_error(q), "WRONGTYPE"));
    assert_int_equal(srv_int(&main_srv, "ZCARD %s", "tb3:queue", NULL), 2);
    h = srv_cmd(&main_srv, "ZSCORE tb3:queue bad");
    assert_non_null(h);
    assert_int_equal(h->type, REDIS_REPLY_NIL); /* nothing of it written */
    freeReplyObject(h);
    assert_true(queue_connected(q));

    /* The queue's zset of the wrong type: every new item of the batch
     * fails and no hash is written; one that existed keeps its answer. */
    submit_wait(q, "old", "kept", 4, 1, 0, &r);
    assert_int_equal(r.st, QUEUE_OK);
    srv_int(&main_srv, "DEL %s", "tb3:queue", NULL);
    srv_run(&main_srv, "SET tb3:queue string");
    memset(batch_rs, 0, sizeof batch_rs);
    batch_submit(q, 0, "new1", "1", 1, 1);
    batch_submit(q, 1, "old", "2", 1, 2);
    batch_submit(q, 2, "new2", "3", 1, 3);
    batch_submit(q, 3, "new1", "4", 1, 4);
    batch_wait(4);
    assert_int_equal(batch_rs[0].st, QUEUE_ERROR);
    assert_int_equal(batch_rs[1].st, QUEUE_EXISTS);
    assert_string_equal(batch_rs[1].stored, "kept");
    assert_int_equal(batch_rs[2].st, QUEUE_ERROR);
    assert_int_equal(batch_rs[3].st, QUEUE_ERROR);
    assert_int_equal(srv_int(&main_srv, "EXISTS %s", "tb3:item:new1", NULL), 0);
    assert_int_equal(srv_int(&main_srv, "EXISTS %s", "tb3:item:new2", NULL), 0);
    assert_int_equal(srv_int(&main_srv, "ZCARD %s", "tb3:queue:urgent", NULL),
                     3);
    srv_int(&main_srv, "DEL %s", "tb3:queue", NULL);

    /* The urgent zset of the wrong type: the ids the first ZADD wrote are
     * taken back with the new hashes. */
    srv_run(&main_srv, "SET tb3:queue:urgent string");
    memset(batch_rs, 0, sizeof batch_rs);
    batch_submit(q, 0, "new3", "1", 1, 1);
    batch_submit(q, 1, "old", "2", 1, 2);
    batch_wait(2);
    assert_int_equal(batch_rs[0].st, QUEUE_ERROR);
    assert_int_equal(batch_rs[1].st, QUEUE_EXISTS);
    assert_int_equal(srv_int(&main_srv, "EXISTS %s", "tb3:item:new3", NULL), 0);
    assert_int_equal(srv_int(&main_srv, "EXISTS %s", "tb3:queue", NULL), 0);
    srv_int(&main_srv, "DEL %s", "tb3:queue:urgent", NULL);
    close_queue(q);
}

static void
test_batch_redis_down(void **state)
{
    struct srv *s = &extra;
    struct queue *q = open_extra("tb4:", 300, NULL);
    char id[16];
    unsigned long long errs;
    struct timeval tv = {0, 450000};
    struct res r;

    (void)state;

    /* No answer in time: every submit of the batch times out; Redis ran
     * it later, so each id is then found stored. */
    kill(s->pid, SIGSTOP);
    cont_ev = evtimer_new(base, sigcont_cb, &s->pid);
    evtimer_add(cont_ev, &tv);
    errs = queue_error_count();
    memset(batch_rs, 0, sizeof batch_rs);
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof id, "t%d", i);
        batch_submit(q, i, id, "t", 1, i);
    }
    batch_wait(20);
    for (int i = 0; i < 20; i++)
        assert_int_equal(batch_rs[i].st, QUEUE_TIMEOUT);
    assert_int_equal(queue_error_count(), errs + 20);
    run_for(500);
    /* A reconnect after the timeout may still wait out its backoff on a
     * busy machine. */
    assert_int_equal(run_until(is_connected, q, 5000), 0);
    submit_wait(q, "t19", "again", 5, 1, 0, &r);
    assert_int_equal(r.st, QUEUE_EXISTS);

    /* Redis gone with a batch gathered: every submit gets an error, none
     * a second callback; then submits are refused at once. */
    errs = queue_error_count();
    memset(batch_rs, 0, sizeof batch_rs);
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof id, "k%d", i);
        batch_submit(q, i, id, "k", 1, i);
    }
    srv_kill(s, SIGKILL);
    batch_wait(100);
    for (int i = 0; i < 100; i++)
        assert_int_equal(batch_rs[i].st, QUEUE_ERROR);
    assert_true(queue_error_count() >= errs + 100);
    assert_int_equal(run_until(is_down, q, 2000), 0);
    assert_int_equal(queue_submit(q, "y", "y", 1, 1, 0, on_submit, &r), -1);
    run_for(100);
    for (int i = 0; i < 100; i++)
        assert_int_equal(batch_rs[i].calls, 1);
    assert_int_equal(queue_pending(q), 0);
    close_queue(q);
}

/* While a batch is in flight the next one gathers, over several loop
 * passes, and goes when the answer comes; when the answer does not come
 * in time, the gathered one fails at once, never sent. */
static void
test_batch_one_in_flight(void **state)
{
    struct srv *s = &extra;
    struct queue *q = open_extra("tb5:", 300, NULL);
    unsigned long long b0, i0, db, di, errs;
    struct res r;

    (void)state;

    kill(s->pid, SIGSTOP);
    memset(batch_rs, 0, sizeof batch_rs);
    queue_batch_counts(&b0, &i0);
    batch_submit(q, 0, "a", "A", 1, 1);
    run_for(30); /* sent: in flight, unanswered */
    batch_submit(q, 1, "b", "B", 1, 2);
    run_for(30);
    batch_submit(q, 2, "c", "C", 1, 3);
    run_for(30); /* b and c gathered over two passes, not sent */
    batch_delta(b0, i0, &db, &di);
    assert_int_equal(db, 1);
    assert_int_equal(di, 1);
    assert_int_equal(queue_pending(q), 3);
    kill(s->pid, SIGCONT);
    batch_wait(3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(batch_rs[i].st, QUEUE_OK);
    batch_delta(b0, i0, &db, &di);
    assert_int_equal(db, 2);
    assert_int_equal(di, 3);

    kill(s->pid, SIGSTOP);
    memset(batch_rs, 0, sizeof batch_rs);
    queue_batch_counts(&b0, &i0);
    errs = queue_error_count();
    batch_submit(q, 0, "d", "D", 1, 4);
    run_for(30);
    batch_submit(q, 1, "e", "E", 1, 5);
    batch_wait(2);
    assert_int_equal(batch_rs[0].st, QUEUE_TIMEOUT);
    assert_int_equal(batch_rs[1].st, QUEUE_TIMEOUT);
    assert_int_equal(queue_error_count(), errs + 2);
    batch_delta(b0, i0, &db, &di);
    assert_int_equal(db, 1);
    kill(s->pid, SIGCONT);
    run_for(300); /* d's late answer is dropped */
    assert_int_equal(run_until(is_connected, q, 5000), 0);
    assert_int_equal(queue_pending(q), 0);
    submit_wait(q, "d", "D2", 2, 1, 0, &r); /* Redis ran d late ... */
    assert_int_equal(r.st, QUEUE_EXISTS);
    submit_wait(q, "e", "E2", 2, 1, 0, &r); /* ... but never saw e */
    assert_int_equal(r.st, QUEUE_OK);
    close_queue(q);
}

/* One worker thread of the daemon: its own loop, its own queue. */
struct worker_run {
    pthread_t thread;
    int index, ok, refused, failed;
    struct flood f;
};

static void *
worker_main(void *arg)
{
    struct worker_run *w = arg;
    struct event_base *b = event_base_new();
    struct queue_config cfg = {NULL, NULL, "t14:", 5000};
    char url[64], id[32];
    struct queue *q;
    double end = now_ms() + 10000;

    snprintf(url, sizeof url, "redis://127.0.0.1:%d", main_srv.port);
    cfg.url = url;
    q = queue_new(b, &cfg);
    while (q != NULL && !queue_connected(q) && now_ms() < end)
        event_base_loop(b, EVLOOP_ONCE);
    memset(w->f.rec, 'w', sizeof w->f.rec);
    w->f.q = q;
    w->f.total = 250;
    for (int i = 0; q != NULL && i < 250; i++) {
        snprintf(id, sizeof id, "w%d-%d", w->index, i);
        if (queue_submit(q, id, w->f.rec, 10, i, 0, on_flood, &w->f) == 0)
            w->f.sent = w->f.total; /* no refills */
        else
            w->failed++;
    }
    while (q != NULL && w->f.done < 250 - w->failed && now_ms() < end)
        event_base_loop(b, EVLOOP_ONCE);
    w->ok = w->f.ok;
    queue_free(q);
    /* Refused commands count in the process-wide counter. */
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", free_port());
    q = queue_new(b, &cfg);
    for (int i = 0; q != NULL && i < 1000; i++)
        if (queue_submit(q, "x", "x", 1, 1, 0, on_submit, NULL) != 0)
            w->refused++;
    queue_free(q);
    event_base_free(b);
    return NULL;
}

static void
test_worker_threads(void **state)
{
    static struct worker_run w[4];
    unsigned long long errs = queue_error_count();

    (void)state;
    memset(w, 0, sizeof w);
    for (int i = 0; i < 4; i++) {
        w[i].index = i;
        assert_int_equal(pthread_create(&w[i].thread, NULL, worker_main, &w[i]),
                         0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(w[i].thread, NULL);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(w[i].failed, 0);
        assert_int_equal(w[i].ok, 250);
        assert_int_equal(w[i].refused, 1000);
    }
    assert_int_equal(queue_error_count(), errs + 4000);
    assert_int_equal(srv_int(&main_srv, "ZCARD %s", "t14:queue", NULL), 1000);
}

/* ---- moderation ------------------------------------------------------- */

struct mres {
    int calls;
    enum queue_status st;
    size_t n;
    char ids[8][16];
    char claimed_by[8][16];
    char states[8][16];
    char next[64];
    long long length;
    enum queue_status out[8];
    char labels[8][64];
    char why[8][16];
    struct queue_stats stats;
    char actions[8][16];
};

static void
on_mpage(enum queue_status st, const struct queue_page *p, void *arg)
{
    struct mres *r = arg;

    r->calls++;
    r->st = st;
    if (p == NULL)
        return;
    r->n = p->n;
    r->length = p->length;
    snprintf(r->next, sizeof r->next, "%s",
             p->next_cursor ? p->next_cursor : "");
    for (size_t i = 0; i < p->n && i < 8; i++) {
        snprintf(r->ids[i], 16, "%s", p->items[i].id);
        snprintf(r->claimed_by[i], 16, "%s",
                 p->items[i].claimed_by ? p->items[i].claimed_by : "");
        snprintf(r->states[i], 16, "%s", p->items[i].state);
    }
}

static void
on_mdecide(enum queue_status st, const struct queue_outcome *o, size_t n,
           void *arg)
{
    struct mres *r = arg;

    r->calls++;
    r->st = st;
    r->n = n;
    for (size_t i = 0; o != NULL && i < n && i < 8; i++) {
        r->out[i] = o[i].status;
        snprintf(r->labels[i], 64, "%s", o[i].labels);
        snprintf(r->why[i], 16, "%s", o[i].why);
    }
}

static void
on_mhistory(enum queue_status st, const struct queue_history *h, void *arg)
{
    struct mres *r = arg;

    r->calls++;
    r->st = st;
    if (h == NULL)
        return;
    r->n = h->n;
    snprintf(r->next, sizeof r->next, "%s",
             h->next_cursor ? h->next_cursor : "");
    for (size_t i = 0; i < h->n && i < 8; i++)
        for (size_t j = 0; j < h->events[i].n_fields; j++)
            if (!strcmp(h->events[i].names[j], "action"))
                snprintf(r->actions[i], 16, "%s", h->events[i].values[j]);
}

static void
on_mstats(enum queue_status st, const struct queue_stats *s, void *arg)
{
    struct mres *r = arg;

    r->calls++;
    r->st = st;
    if (s != NULL)
        r->stats = *s;
}

static int
mres_done(void *arg)
{
    return ((struct mres *)arg)->calls > 0;
}

#define MWAIT(r, call)                                                         \
    do {                                                                       \
        memset(&(r), 0, sizeof(r));                                            \
        assert_int_equal((call), 0);                                           \
        assert_int_equal(run_until(mres_done, &(r), 5000), 0);                 \
    } while (0)

static void
test_moderation(void **state)
{
    struct queue *q = open_main("t20:", 2000);
    struct queue_decision d[3] = {
        {"m1", 1, NULL}, {"m9", 0, NULL}, {"m1", 0, "{\"spam\":0}"}};
    static const char rec[] =
        "{\"text\":\"buy now\",\"scores\":{\"spam\":0.9,\"abuse\":0.1},"
        "\"unsure\":[\"abuse\"],\"verdict\":\"review\"}";
    struct res r;
    struct mres m;
    char id[16], cursor[64];

    (void)state;
    for (int i = 1; i <= 4; i++) {
        snprintf(id, sizeof id, "m%d", i);
        submit_wait(q, id, rec, strlen(rec), 1700000000000LL + i, 0.9, &r);
    }
    /* pages, oldest first, then most urgent first */
    MWAIT(m, queue_list(q, 0, 3, NULL, on_mpage, &m));
    assert_int_equal(m.st, QUEUE_OK);
    assert_int_equal(m.n, 3);
    assert_int_equal(m.length, 4);
    assert_string_equal(m.ids[0], "m1");
    assert_string_equal(m.next, "m3");
    MWAIT(m, queue_list(q, 0, 3, "m3", on_mpage, &m));
    assert_int_equal(m.n, 1);
    assert_string_equal(m.ids[0], "m4");
    assert_string_equal(m.next, "");
    /* equal urgency (0.9 each): reverse id order */
    MWAIT(m, queue_list(q, 1, 2, NULL, on_mpage, &m));
    assert_string_equal(m.ids[0], "m4");
    assert_string_equal(m.ids[1], "m3");
    MWAIT(m, queue_list(q, 0, 2, "nope", on_mpage, &m));
    assert_int_equal(m.st, QUEUE_NOT_FOUND);

    /* two claimers never share an item */
    MWAIT(m, queue_claim(q, 0, 3, "alice", 60, on_mpage, &m));
    assert_int_equal(m.n, 3);
    assert_string_equal(m.claimed_by[2], "alice");
    MWAIT(m, queue_claim(q, 0, 3, "bob", 60, on_mpage, &m));
    assert_int_equal(m.n, 1);
    assert_string_equal(m.ids[0], "m4");
    MWAIT(m, queue_claim(q, 0, 3, "carol", 60, on_mpage, &m));
    assert_int_equal(m.n, 0);

    /* decide: the default labels, 404, 409 */
    MWAIT(m, queue_decide(q, d, 3, "alice", "{\"spam\":0.5,\"*\":0.5}",
                          on_mdecide, &m));
    assert_int_equal(m.st, QUEUE_OK);
    assert_int_equal(m.n, 3);
    assert_int_equal(m.out[0], QUEUE_OK);
    assert_non_null(strstr(m.labels[0], "\"spam\":1"));
    assert_non_null(strstr(m.labels[0], "\"abuse\":1")); /* unsure */
    assert_int_equal(m.out[1], QUEUE_NOT_FOUND);
    assert_int_equal(m.out[2], QUEUE_CONFLICT);
    assert_string_equal(m.why[2], "decided");
    assert_int_equal(srv_int(&main_srv, "ZCARD %s", "t20:queue", NULL), 3);
    assert_int_equal(srv_int(&main_srv, "XLEN %s", "t20:training", NULL), 1);
    MWAIT(m, queue_show(q, "m1", on_mpage, &m));
    assert_int_equal(m.n, 1);
    assert_string_equal(m.states[0], "decided");
    /* submit writes no state: a queued item shows "queued" */
    MWAIT(m, queue_show(q, "m2", on_mpage, &m));
    assert_string_equal(m.states[0], "queued");
    /* the decision moved m1's scores from the zsets into its hash */
    assert_int_equal(
        srv_int(&main_srv, "HGET %s %s", "t20:item:m1", "received_ms"),
        1700000000001LL);
    MWAIT(m, queue_show(q, "m9", on_mpage, &m));
    assert_int_equal(m.st, QUEUE_NOT_FOUND);

    /* a cursor whose item was decided still pages */
    MWAIT(m, queue_list(q, 0, 5, "m1", on_mpage, &m));
    assert_int_equal(m.n, 3);
    assert_string_equal(m.ids[0], "m2");

    /* undo inside the window, then not decided, then outside it */
    MWAIT(m, queue_undo(q, "m1", "bob", 60, on_mdecide, &m));
    assert_int_equal(m.out[0], QUEUE_OK);
    assert_int_equal(srv_int(&main_srv, "ZCARD %s", "t20:queue", NULL), 4);
    /* back with its original scores */
    assert_int_equal(srv_int(&main_srv, "ZSCORE %s %s", "t20:queue", "m1"),
                     1700000000001LL);
    {
        redisReply *h = srv_cmd(&main_srv, "ZSCORE t20:queue:urgent m1");

        assert_non_null(h);
        assert_non_null(h->str); /* NULL: no such member */
        assert_true(strtod(h->str, NULL) == 0.9);
        freeReplyObject(h);
    }
    MWAIT(m, queue_undo(q, "m1", "bob", 60, on_mdecide, &m));
    assert_int_equal(m.out[0], QUEUE_CONFLICT);
    assert_string_equal(m.why[0], "not_decided");
    d[0].reject = 0;
    MWAIT(m, queue_decide(q, d, 1, "alice", "{\"*\":0.5}", on_mdecide, &m));
    assert_non_null(strstr(m.labels[0], "\"spam\":0"));
    assert_non_null(strstr(m.labels[0], "\"abuse\":0"));
    run_for(5);
    MWAIT(m, queue_undo(q, "m1", "bob", 0, on_mdecide, &m));
    assert_int_equal(m.out[0], QUEUE_CONFLICT);
    assert_string_equal(m.why[0], "window");
    assert_int_equal(srv_int(&main_srv, "XLEN %s", "t20:training", NULL), 3);

    /* history, newest first, in pages */
    MWAIT(m, queue_history(q, 2, NULL, on_mhistory, &m));
    assert_int_equal(m.n, 2);
    assert_string_equal(m.actions[0], "approve");
    assert_string_equal(m.actions[1], "undo");
    assert_true(queue_event_id_valid(m.next));
    snprintf(cursor, sizeof cursor, "%s", m.next);
    MWAIT(m, queue_history(q, 2, cursor, on_mhistory, &m));
    assert_int_equal(m.n, 1);
    assert_string_equal(m.actions[0], "reject");
    assert_string_equal(m.next, "");
    assert_false(queue_event_id_valid("1-2-3"));
    /* what Redis refuses as XREVRANGE's "(end": 400, never sent */
    assert_false(queue_event_id_valid("0-0"));
    assert_false(queue_event_id_valid("18446744073709551616"));
    assert_false(queue_event_id_valid("1-18446744073709551616"));
    assert_false(queue_event_id_valid("99999999999999999999"));
    assert_false(queue_event_id_valid("000000000000000000001"));
    assert_false(queue_event_id_valid("1-"));
    assert_false(queue_event_id_valid("-1"));
    assert_false(queue_event_id_valid(""));
    assert_true(queue_event_id_valid("0"));
    assert_true(queue_event_id_valid("0-1"));
    assert_true(
        queue_event_id_valid("18446744073709551615-18446744073709551615"));
    assert_int_equal(queue_history(q, 2, "x", on_mhistory, &m), -1);

    MWAIT(m, queue_stats(q, on_mstats, &m));
    assert_int_equal(m.st, QUEUE_OK);
    assert_int_equal(m.stats.length, 3);
    assert_int_equal(m.stats.oldest_ms, 1700000000002LL);
    assert_int_equal(m.stats.claimed, 3);
    assert_int_equal(m.stats.approved, 1);
    assert_int_equal(m.stats.rejected, 1);
    assert_int_equal(m.stats.undone, 1);
    close_queue(q);
}

/* Claims follow queue.order too: urgent takes the highest scores first. */
static void
test_moderation_urgent_claim(void **state)
{
    struct queue *q = open_main("t21:", 2000);
    static const double urgency[3] = {0.2, 0.9, 0.5};
    struct res r;
    struct mres m;
    char id[16], rec[64];

    (void)state;
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof id, "u%d", i);
        snprintf(rec, sizeof rec, "{\"scores\":{\"spam\":%.1f,\"x\":0.1}}",
                 urgency[i]);
        submit_wait(q, id, rec, strlen(rec), 1700000000000LL + i, urgency[i],
                    &r);
    }
    MWAIT(m, queue_claim(q, 1, 2, "alice", 60, on_mpage, &m));
    assert_int_equal(m.st, QUEUE_OK);
    assert_int_equal(m.n, 2);
    assert_string_equal(m.ids[0], "u1");
    assert_string_equal(m.ids[1], "u2");
    MWAIT(m, queue_claim(q, 1, 2, "bob", 60, on_mpage, &m));
    assert_int_equal(m.n, 1);
    assert_string_equal(m.ids[0], "u0");
    close_queue(q);
}

/* key's score of id as Redis writes it into buf ("" when none). */
static void
score_text(const char *key, const char *id, char *buf, size_t len)
{
    redisReply *h = srv_cmd(&main_srv, "ZSCORE %s %s", key, id);

    assert_non_null(h);
    snprintf(buf, len, "%s", h->type == REDIS_REPLY_STRING ? h->str : "");
    freeReplyObject(h);
}

/* The ids of a page, space-separated. */
static const char *
page_ids(const struct mres *m)
{
    static char buf[8 * 17];

    buf[0] = '\0';
    for (size_t i = 0; i < m->n; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s",
                 i ? " " : "", m->ids[i]);
    return buf;
}

/* queue_keep_urgent, waited for: its answer in *r. */
static void
keep_wait(struct queue *q, struct res *r)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(queue_keep_urgent(q, on_count, r), 0);
    assert_int_equal(run_until(res_done, r, 10000), 0);
}

/* P queue:urgent is kept only while its marker exists: submit, decide and
 * undo write it then; without the marker a list or claim in the urgent
 * order, or queue_keep_urgent, rebuilds it from P queue and the records,
 * with the very scores a submit would have written. */
static void
test_urgent_kept(void **state)
{
    struct queue *q = open_main("t22:", 2000);
    /* highest scores: 0.5; 0.9 twice (a tie); 0.1234567891, which the
     * record writes as 0.123457; none above 0 */
    static const double top[5] = {0.5, 0.9, 0.9, 0.1234567891, -1};
    static const char old[] = "{\"scores\":{\"spam\":0.95}}";
    struct queue_decision d = {"k1", 1, NULL};
    struct res r;
    struct mres m;
    char id[16], rec[96], num[JSONW_REAL_MAX], kept[5][64], s[64];

    (void)state;
    srv_run(&main_srv, "SET t22:queue:urgent:kept 1");
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "k%d", i);
        jsonw_real_text(top[i], num);
        snprintf(rec, sizeof rec,
                 "{\"scores\":{\"a\":0.0,\"b\":%s,\"c\":null},\"x\":1}", num);
        submit_wait(q, id, rec, strlen(rec), 1700000000000LL + i, top[i], &r);
        assert_int_equal(r.st, QUEUE_OK);
        score_text("t22:queue:urgent", id, kept[i], sizeof kept[i]);
    }
    assert_string_equal(kept[4], "0");

    /* No marker: the rebuild finds the scores submit wrote. */
    srv_run(&main_srv, "DEL t22:queue:urgent:kept t22:queue:urgent");
    keep_wait(q, &r);
    assert_int_equal(r.st, QUEUE_OK);
    assert_int_equal(r.n, 5);
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "k%d", i);
        score_text("t22:queue:urgent", id, s, sizeof s);
        assert_string_equal(s, kept[i]);
    }
    keep_wait(q, &r);
    assert_int_equal(r.n, -1); /* kept already */
    MWAIT(m, queue_list(q, 1, 8, NULL, on_mpage, &m));
    assert_string_equal(page_ids(&m), "k2 k1 k0 k3 k4");

    /* Kept: a new item goes in at submit; decide takes it out, undo puts
     * it back with the same score. */
    snprintf(rec, sizeof rec, "{\"scores\":{\"b\":0.7}}");
    submit_wait(q, "k5", rec, strlen(rec), 1700000000005LL, 0.7, &r);
    score_text("t22:queue:urgent", "k5", s, sizeof s);
    assert_true(strtod(s, NULL) == 0.7);
    MWAIT(m, queue_decide(q, &d, 1, "alice", "{\"*\":0.5}", on_mdecide, &m));
    assert_int_equal(m.out[0], QUEUE_OK);
    score_text("t22:queue:urgent", "k1", s, sizeof s);
    assert_string_equal(s, "");
    /* a cursor on the decided item: placed by the urgency in its hash */
    MWAIT(m, queue_list(q, 1, 2, "k1", on_mpage, &m));
    assert_string_equal(page_ids(&m), "k5 k0");
    MWAIT(m, queue_undo(q, "k1", "alice", 60, on_mdecide, &m));
    assert_int_equal(m.out[0], QUEUE_OK);
    score_text("t22:queue:urgent", "k1", s, sizeof s);
    assert_string_equal(s, kept[1]);

    /* The marker deleted: decide and undo leave the set alone, a claim in
     * the urgent order rebuilds it first. */
    srv_run(&main_srv, "DEL t22:queue:urgent:kept");
    MWAIT(m, queue_decide(q, &d, 1, "alice", "{\"*\":0.5}", on_mdecide, &m));
    MWAIT(m, queue_undo(q, "k1", "alice", 60, on_mdecide, &m));
    assert_int_equal(m.out[0], QUEUE_OK);
    score_text("t22:queue:urgent", "k1", s, sizeof s);
    assert_string_equal(s, kept[1]); /* left from before: not read */
    srv_run(&main_srv, "ZADD t22:queue:urgent 2 k1"); /* wrong, not read */
    /* an item hash as versions before 26 Nov wrote it: four fields */
    srv_int(&main_srv, "HSET t22:item:old record %s", old, NULL);
    srv_run(&main_srv, "HSET t22:item:old state queued received_ms 1 "
                       "urgency 0.25");
    srv_run(&main_srv, "ZADD t22:queue 1 old");
    MWAIT(m, queue_claim(q, 1, 3, "bob", 60, on_mpage, &m));
    assert_string_equal(page_ids(&m), "old k2 k1");
    assert_int_equal(
        srv_int(&main_srv, "EXISTS %s", "t22:queue:urgent:kept", NULL), 1);
    assert_int_equal(srv_int(&main_srv, "ZCARD %s", "t22:queue:urgent", NULL),
                     7);
    score_text("t22:queue:urgent", "k1", s, sizeof s);
    assert_string_equal(s, kept[1]);

    /* "scores":{ inside a string is no member (the rebuild reads only
     * the first real one); a record without a readable one is 0. */
    snprintf(rec, sizeof rec,
             "{\"text\":\"\\\"scores\\\":{\\\"b\\\":0.99}\","
             "\"scores\":{\"b\":0.3}}");
    submit_wait(q, "t", rec, strlen(rec), 1700000000009LL, 0.3, &r);
    submit_wait(q, "u", "{\"scores\":[", 11, 1700000000010LL, 0, &r);
    srv_run(&main_srv, "DEL t22:queue:urgent:kept");
    MWAIT(m, queue_list(q, 1, 8, "k3", on_mpage, &m));
    assert_string_equal(page_ids(&m), "u k4"); /* ties at 0 */
    score_text("t22:queue:urgent", "t", s, sizeof s);
    assert_true(strtod(s, NULL) == 0.3);
    close_queue(q);
}

/* P queue:urgent against what it must hold once kept: every id of
 * P queue, an item s<i> scored (i % 97) / 100 as its record says, any other
 * id as others[] says (NULL ends it).  Returns the number of mismatches. */
static int
urgent_mismatches(const char *zq, const char *zu, const char *const *others,
                  const double *other_scores)
{
    redisReply *a = srv_cmd(&main_srv, "ZRANGE %s 0 -1 WITHSCORES", zu);
    int bad = 0;

    assert_non_null(a);
    assert_int_equal(a->type, REDIS_REPLY_ARRAY);
    if ((long long)a->elements / 2 != srv_int(&main_srv, "ZCARD %s", zq, NULL))
        bad++;
    for (size_t k = 0; k + 1 < a->elements; k += 2) {
        const char *id = a->element[k]->str;
        double got = strtod(a->element[k + 1]->str, NULL), want = -1;
        char text[32];

        if (id[0] == 's') {
            snprintf(text, sizeof text, "%.14g", (atoi(id + 1) % 97) / 100.0);
            want = strtod(text, NULL);
        }
        for (int j = 0; others != NULL && others[j] != NULL; j++)
            if (!strcmp(id, others[j]))
                want = other_scores[j];
        if (got != want || srv_int(&main_srv, "ZSCORE %s %s", zq, id) == -999)
            bad++;
    }
    freeReplyObject(a);
    return bad;
}

/* SET key value, value with spaces (a marker's "building C"). */
static void
set_mark(const char *key, const char *value)
{
    redisReply *h = srv_cmd(&main_srv, "SET %s %s", key, value);

    assert_non_null(h);
    assert_int_not_equal(h->type, REDIS_REPLY_ERROR);
    freeReplyObject(h);
}

/* The urgent order is rebuilt in steps of 1,000 items, one script each,
 * so that Redis serves others in between; the marker holds the cursor
 * ("building <score>") until the set is whole.  2,500 items, 1,200 of
 * them received in the same millisecond (more than a step): a rebuild
 * from nothing drops what the set held and takes every item; one resumed
 * from a cursor keeps what submit, decide and undo did meanwhile; a list
 * in the urgent order finishes a rebuild first. */
static void
test_urgent_steps(void **state)
{
    struct queue *q = open_main("t23:", 5000);
    static const char fill[] =
        "for i = 0, 2499 do\n"
        "  local ms = 1700000000000\n"
        "  if i >= 1200 then ms = ms + i end\n"
        "  redis.call('HSET', 't23:item:s' .. i, 'record',\n"
        "    '{\"text\":\"x\",\"scores\":{\"spam\":' .. ((i % 97) / 100) ..\n"
        "    ',\"abuse\":0}}')\n"
        "  redis.call('ZADD', 't23:queue', ms, 's' .. i)\n"
        "end\n";
    static const char *const others[] = {"n1", NULL};
    static const double other_scores[] = {0.66};
    struct queue_decision d = {"s10", 1, NULL};
    struct res r;
    struct mres m;
    redisReply *h;

    (void)state;
    srv_eval(&main_srv, fill);

    /* From nothing: what the set held before is dropped. */
    srv_run(&main_srv, "ZADD t23:queue:urgent 5 ghost");
    keep_wait(q, &r);
    assert_int_equal(r.st, QUEUE_OK);
    assert_int_equal(r.n, 2500);
    assert_int_equal(
        urgent_mismatches("t23:queue", "t23:queue:urgent", NULL, NULL), 0);
    h = srv_cmd(&main_srv, "GET t23:queue:urgent:kept");
    assert_non_null(h);
    assert_int_equal(h->type, REDIS_REPLY_STRING);
    assert_true(strtoll(h->str, NULL, 10) > 1700000000000LL); /* a time */
    freeReplyObject(h);

    /* Resumed: the first step's items are in, the cursor after the tie;
     * meanwhile a submit (kept in step: the marker exists), a decision on
     * an item the rebuild has passed and one on an item it has not, and
     * an undo. */
    srv_run(&main_srv, "DEL t23:queue:urgent");
    srv_eval(&main_srv,
             "for i = 0, 1199 do redis.call('ZADD', 't23:queue:urgent', "
             "(i % 97) / 100, 's' .. i) end");
    set_mark("t23:queue:urgent:kept", "building (1700000000000");
    submit_wait(q, "n1", "{\"scores\":{\"spam\":0.66}}", 24, 1700000005000LL,
                0.66, &r);
    assert_int_equal(r.st, QUEUE_OK);
    MWAIT(m, queue_decide(q, &d, 1, "alice", "{\"*\":0.5}", on_mdecide, &m));
    assert_int_equal(m.out[0], QUEUE_OK);
    d.id = "s2000";
    MWAIT(m, queue_decide(q, &d, 1, "alice", "{\"*\":0.5}", on_mdecide, &m));
    assert_int_equal(m.out[0], QUEUE_OK);
    d.id = "s11";
    MWAIT(m, queue_decide(q, &d, 1, "alice", "{\"*\":0.5}", on_mdecide, &m));
    MWAIT(m, queue_undo(q, "s11", "alice", 60, on_mdecide, &m));
    assert_int_equal(m.out[0], QUEUE_OK);
    keep_wait(q, &r);
    assert_int_equal(r.st, QUEUE_OK);
    assert_int_equal(r.n, 2499); /* 2,500 - s10 - s2000 + n1 */
    assert_int_equal(urgent_mismatches("t23:queue", "t23:queue:urgent", others,
                                       other_scores),
                     0);

    /* A marker whose cursor cannot be read (set by hand): from nothing. */
    srv_run(&main_srv, "ZADD t23:queue:urgent 5 ghost");
    set_mark("t23:queue:urgent:kept", "building x");
    keep_wait(q, &r);
    assert_int_equal(r.st, QUEUE_OK);
    assert_int_equal(r.n, 2499);
    assert_int_equal(urgent_mismatches("t23:queue", "t23:queue:urgent", others,
                                       other_scores),
                     0);

    /* A list in the urgent order finishes a rebuild under way first. */
    srv_run(&main_srv, "ZREM t23:queue:urgent s96 s193");
    set_mark("t23:queue:urgent:kept", "building 1700000000000");
    MWAIT(m, queue_list(q, 1, 3, NULL, on_mpage, &m));
    assert_int_equal(m.st, QUEUE_OK);
    assert_int_equal(m.length, 2499);
    /* 0.96 each: ties in reverse id order */
    assert_string_equal(page_ids(&m), "s969 s96 s872");
    assert_int_equal(urgent_mismatches("t23:queue", "t23:queue:urgent", others,
                                       other_scores),
                     0);
    close_queue(q);
}

/* Script calls (EVALSHA, and EVAL fallbacks) s has run since the last
 * CONFIG RESETSTAT. */
static long long
script_calls(const struct srv *s)
{
    static const char *const names[] = {"cmdstat_evalsha:calls=",
                                        "cmdstat_eval:calls="};
    redisReply *r = srv_cmd(s, "INFO commandstats");
    long long n = 0;

    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    for (int i = 0; i < 2; i++) {
        const char *p = strstr(r->str, names[i]);

        if (p != NULL)
            n += strtoll(p + strlen(names[i]), NULL, 10);
    }
    freeReplyObject(r);
    return n;
}

/* A claim looks at no more than 1,000 ids in one script, and goes on from
 * where it stopped in the next: 5,000 claimed items (2,500 of them
 * received in one millisecond; all of one urgency) ahead of unclaimed ones
 * take 6 calls, in both orders, and the unclaimed ones are found.  A
 * claim that reaches the end finds nothing, and a call that fails after
 * earlier ones claimed items answers with those. */
static void
test_claim_walk_bounded(void **state)
{
    struct queue *q = open_extra("t24:", 5000, NULL);
    static const char fill[] =
        "for i = 0, 4999 do\n"
        "  local ms = 1700000000000\n"
        "  if i >= 2500 then ms = ms + i end\n"
        "  redis.call('HSET', 't24:item:c' .. i, 'record',\n"
        "    '{\"text\":\"x\",\"scores\":{\"spam\":0.9}}')\n"
        "  redis.call('ZADD', 't24:queue', ms, 'c' .. i)\n"
        "  redis.call('ZADD', 't24:queue:urgent', 0.9, 'c' .. i)\n"
        "  redis.call('ZADD', 't24:claims', 9999999999999, 'c' .. i)\n"
        "end\n"
        "for i = 0, 2 do\n"
        "  redis.call('HSET', 't24:item:u' .. i, 'record',\n"
        "    '{\"text\":\"x\",\"scores\":{\"spam\":0.5}}')\n"
        "  redis.call('ZADD', 't24:queue', 1800000000000 + i, 'u' .. i)\n"
        "  redis.call('ZADD', 't24:queue:urgent', 0.5, 'u' .. i)\n"
        "end\n"
        "redis.call('SET', 't24:queue:urgent:kept', 1700000000000)\n";
    struct mres m;

    (void)state;
    srv_eval(&extra, fill);

    /* oldest: 5 calls walk the claimed items, the 6th claims two */
    srv_run(&extra, "CONFIG RESETSTAT");
    MWAIT(m, queue_claim(q, 0, 2, "bob", 60, on_mpage, &m));
    assert_int_equal(m.st, QUEUE_OK);
    assert_string_equal(page_ids(&m), "u0 u1");
    assert_string_equal(m.claimed_by[1], "bob");
    assert_int_equal(m.length, 5003);
    assert_string_equal(m.next, "");
    assert_int_equal(script_calls(&extra), 6);

    /* urgent: one keep step (kept already), then as many calls */
    srv_run(&extra, "CONFIG RESETSTAT");
    MWAIT(m, queue_claim(q, 1, 2, "carol", 60, on_mpage, &m));
    assert_int_equal(m.st, QUEUE_OK);
    assert_string_equal(page_ids(&m), "u2");
    assert_string_equal(m.claimed_by[0], "carol");
    assert_int_equal(script_calls(&extra), 1 + 6);

    /* nothing left: the walk reaches the end, in 6 calls again */
    srv_run(&extra, "CONFIG RESETSTAT");
    MWAIT(m, queue_claim(q, 0, 5, "dave", 60, on_mpage, &m));
    assert_int_equal(m.st, QUEUE_OK);
    assert_int_equal(m.n, 0);
    assert_int_equal(m.length, 5003);
    assert_int_equal(script_calls(&extra), 6);
    assert_int_equal(srv_int(&extra, "ZCARD %s", "t24:claims", NULL), 5003);

    /* c10 and c4000 unclaimed, and between them (2,500th) "bad", whose
     * key holds a string: the third call, which would claim it, fails;
     * the answer is what the first one claimed */
    srv_run(&extra, "ZADD t24:queue 1700000001000 bad");
    srv_run(&extra, "SET t24:item:bad x");
    srv_run(&extra, "ZREM t24:claims c10 c4000");
    MWAIT(m, queue_claim(q, 0, 3, "erin", 60, on_mpage, &m));
    assert_int_equal(m.st, QUEUE_OK);
    assert_string_equal(page_ids(&m), "c10");
    assert_string_equal(m.claimed_by[0], "erin");
    assert_int_equal(srv_int(&extra, "ZSCORE %s %s", "t24:claims", "c4000"),
                     -999);
    close_queue(q);
}

/* The urgent order lost in the middle of a claim (an operator deleted
 * its marker between two of the claim's calls): the next call answers -2,
 * the claim keeps the order again (rebuilt from the records) and goes on
 * from where it was, and its answer holds what the calls before the loss
 * claimed too.  "uh" is first in the order, then 10,000 claimed items, then
 * "u0": 11 calls, and the marker goes once Redis has run two scripts (the
 * keep step and the first call, which claimed "uh"). */
struct lost_mark {
    struct mres m;
    int deleted;
};

static int
lost_mark_step(void *arg)
{
    struct lost_mark *l = arg;

    if (l->m.calls > 0)
        return 1;
    if (!l->deleted && script_calls(&extra) >= 2) {
        srv_run(&extra, "DEL t25:queue:urgent:kept");
        l->deleted = 1;
    }
    return 0;
}

static void
test_claim_urgent_lost_midway(void **state)
{
    struct queue *q = open_extra("t25:", 5000, NULL);
    static const char fill[] =
        "local function item(id, ms, spam)\n"
        "  redis.call('HSET', 't25:item:' .. id, 'record',\n"
        "    '{\"text\":\"x\",\"scores\":{\"spam\":' .. spam .. '}}')\n"
        "  redis.call('ZADD', 't25:queue', ms, id)\n"
        "  redis.call('ZADD', 't25:queue:urgent', spam, id)\n"
        "end\n"
        "item('uh', 1700000000000, 0.99)\n"
        "for i = 0, 9999 do\n"
        "  item('c' .. i, 1700000000001 + i, 0.9)\n"
        "  redis.call('ZADD', 't25:claims', 9999999999999, 'c' .. i)\n"
        "end\n"
        "item('u0', 1700000020000, 0.5)\n"
        "redis.call('SET', 't25:queue:urgent:kept', 1700000000000)\n";
    struct lost_mark l;

    (void)state;
    srv_eval(&extra, fill);
    srv_run(&extra, "CONFIG RESETSTAT");
    memset(&l, 0, sizeof l);
    assert_int_equal(queue_claim(q, 1, 2, "bob", 60, on_mpage, &l.m), 0);
    assert_int_equal(run_until(lost_mark_step, &l, 10000), 0);
    assert_true(l.deleted);
    assert_int_equal(l.m.st, QUEUE_OK);
    assert_string_equal(page_ids(&l.m), "uh u0");
    assert_string_equal(l.m.claimed_by[0], "bob");
    assert_string_equal(l.m.claimed_by[1], "bob");
    /* kept again by the claim, with every item */
    assert_int_equal(
        srv_int(&extra, "EXISTS %s", "t25:queue:urgent:kept", NULL), 1);
    assert_int_equal(srv_int(&extra, "ZCARD %s", "t25:queue:urgent", NULL),
                     10002);
    assert_int_equal(srv_int(&extra, "ZCARD %s", "t25:claims", NULL), 10002);
    close_queue(q);
}

/* ---- main ------------------------------------------------------------- */

static int
teardown(void **state)
{
    (void)state;
    tearing_down = 1;
    for (int i = 0; i < MAX_QUEUES; i++)
        if (open_qs[i] != NULL) {
            queue_set_state_cb(open_qs[i], NULL, NULL);
            queue_free(open_qs[i]);
            open_qs[i] = NULL;
        }
    redis_free(open_r);
    open_r = NULL;
    tearing_down = 0;
    if (cont_ev != NULL)
        event_free(cont_ev);
    cont_ev = NULL;
    srv_destroy(&extra);
    memset(&extra, 0, sizeof extra);
    return 0;
}

/* ---- the server's eviction policy --------------------------------------- */

struct mem_res {
    int calls;
    enum queue_status st;
    struct queue_memory m;
};

static void
on_memory(enum queue_status st, const struct queue_memory *m, void *arg)
{
    struct mem_res *r = arg;

    if (tearing_down)
        return;
    r->calls++;
    r->st = st;
    if (m != NULL)
        r->m = *m;
}

static int
mem_done(void *arg)
{
    return ((struct mem_res *)arg)->calls > 0;
}

static void
test_memory_policy(void **state)
{
    static const char info[] =
        "# Memory\r\nused_memory:1000\r\nmaxmemory:104857600\r\n"
        "maxmemory_human:100.00M\r\nmaxmemory_policy:allkeys-lru\r\n";
    static const struct {
        const char *text;
        int ok, allkeys, evicts;
        unsigned long long max;
        const char *policy;
    } cases[] = {
        {"maxmemory:0\r\nmaxmemory_policy:noeviction\r\n", 0, 0, 0, 0,
         "noeviction"},
        {"maxmemory:1\nmaxmemory_policy:volatile-lru", 0, 0, 0, 1,
         "volatile-lru"},
        {"maxmemory_policy:allkeys-lfu\r\nmaxmemory:5\r\n", 0, 1, 1, 5,
         "allkeys-lfu"},
        {"maxmemory:0\r\nmaxmemory_policy:allkeys-random\r\n", 0, 1, 0, 0,
         "allkeys-random"},
        {"maxmemory:18446744073709551615\r\nmaxmemory_policy:allkeys-lru", 0, 1,
         1, 18446744073709551615ULL, "allkeys-lru"},
        /* refused: a field missing, bad, too long, a look-alike name */
        {"maxmemory_policy:allkeys-lru\r\n", -1, 0, 0, 0, ""},
        {"maxmemory:100\r\n", -1, 0, 0, 0, ""},
        {"maxmemory:\r\nmaxmemory_policy:allkeys-lru\r\n", -1, 0, 0, 0, ""},
        {"maxmemory:12x\r\nmaxmemory_policy:allkeys-lru\r\n", -1, 0, 0, 0, ""},
        {"maxmemory:18446744073709551616\r\nmaxmemory_policy:noeviction", -1, 0,
         0, 0, ""},
        {"maxmemory:1\r\nmaxmemory_policy:\r\n", -1, 0, 0, 0, ""},
        {"maxmemory:1\r\nmaxmemory_policy:AllKeys-LRU\r\n", -1, 0, 0, 0, ""},
        {"maxmemory:1\r\nmaxmemory_policy:allkeys-lru-and-then-far-too-long-"
         "for-it\r\n",
         -1, 0, 0, 0, ""},
        {"maxmemory_human:1\r\nmaxmemory_policy:allkeys-lru\r\n", -1, 0, 0, 0,
         ""},
        {"", -1, 0, 0, 0, ""},
    };
    struct queue_memory m;
    struct mem_res r = {0};
    struct queue *q;

    (void)state;
    assert_int_equal(queue_memory_parse(info, sizeof info - 1, &m), 0);
    assert_int_equal(m.maxmemory, 104857600);
    assert_string_equal(m.policy, "allkeys-lru");
    assert_true(m.allkeys && m.evicts);
    /* Bounded by len, not by a NUL: the policy ends where len does. */
    assert_int_equal(queue_memory_parse(info, sizeof info - 6, &m), 0);
    assert_string_equal(m.policy, "allkeys-");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = queue_memory_parse(cases[i].text, strlen(cases[i].text), &m);

        if (rc != cases[i].ok)
            fail_msg("case %zu: %d", i, rc);
        assert_int_equal(m.allkeys, cases[i].allkeys);
        assert_int_equal(m.evicts, cases[i].evicts);
        assert_true(m.maxmemory == cases[i].max);
        assert_string_equal(m.policy, cases[i].policy);
    }

    /* A real server: its defaults (no limit, noeviction) evict nothing. */
    q = open_main("tm:", 1000);
    assert_int_equal(queue_memory(q, on_memory, &r), 0);
    assert_int_equal(r.calls, 0); /* never from inside the call */
    assert_int_equal(run_until(mem_done, &r, 5000), 0);
    assert_int_equal(r.st, QUEUE_OK);
    assert_string_equal(r.m.policy, "noeviction");
    assert_int_equal(r.m.maxmemory, 0);
    assert_false(r.m.evicts);
    close_queue(q);
}

/* ---- writes Redis refuses ---------------------------------------------- */

static void
test_refused_writes(void **state)
{
    static const struct {
        const char *err;
        int kind;
    } cases[] = {
        {"OOM command not allowed when used memory > 'maxmemory'.",
         QUEUE_REFUSED_OOM},
        {"READONLY You can't write against a read only replica.",
         QUEUE_REFUSED_READONLY},
        {"MISCONF Redis is configured to save RDB snapshots",
         QUEUE_REFUSED_MISCONF},
        {"NOREPLICAS Not enough good replicas to write.",
         QUEUE_REFUSED_NOREPLICAS},
        {"OOM", QUEUE_REFUSED_OOM},
        {"OOMX no", -1},
        {"oom lower case", -1},
        {"WRONGTYPE Operation against a key", -1},
        {"NOPERM this user has no permissions", -1},
        {"ERR OOM inside", -1},
        {"", -1},
    };
    char msg[QUEUE_REFUSAL_MAX], big[QUEUE_REFUSAL_MAX + 100];
    unsigned long long oom;
    struct queue *q;
    struct res r;

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (queue_refusal_of(cases[i].err, strlen(cases[i].err)) !=
            cases[i].kind)
            fail_msg("case %zu: %s", i, cases[i].err);
    assert_string_equal(queue_refusal_name(QUEUE_REFUSED_MISCONF), "MISCONF");
    assert_null(queue_refusal_name(QUEUE_N_REFUSALS));
    assert_null(queue_refusal_name(-1));

    q = open_main("tr:", 2000);
    submit_wait(q, "a", "1", 1, 1, 0, &r);
    assert_int_equal(r.st, QUEUE_OK);
    assert_int_equal(queue_refusing(msg, sizeof msg), -1);
    assert_string_equal(msg, "");

    /* Full under noeviction: the submit and the probe are refused, and
     * the refusal is remembered with Redis's words. */
    oom = queue_refused_count(QUEUE_REFUSED_OOM);
    srv_run(&main_srv, "CONFIG SET maxmemory 1");
    submit_wait(q, "b", "2", 1, 2, 0, &r);
    assert_int_equal(r.st, QUEUE_ERROR);
    assert_int_equal(queue_refusing(msg, sizeof msg), QUEUE_REFUSED_OOM);
    assert_non_null(strstr(msg, "OOM command not allowed"));
    assert_int_equal(queue_refused_count(QUEUE_REFUSED_OOM), oom + 1);
    memset(&r, 0, sizeof r);
    assert_int_equal(queue_probe_write(q, on_count, &r), 0);
    assert_int_equal(run_until(res_done, &r, 5000), 0);
    assert_int_equal(r.st, QUEUE_ERROR);
    assert_int_equal(queue_refusing(NULL, 0), QUEUE_REFUSED_OOM);
    /* a probe is no comment */
    assert_int_equal(queue_refused_count(QUEUE_REFUSED_OOM), oom + 1);
    /* a short buffer gets the start, terminated */
    assert_int_equal(queue_refusing(msg, 4), QUEUE_REFUSED_OOM);
    assert_string_equal(msg, "OOM");
    assert_int_equal(queue_refusing(big, sizeof big), QUEUE_REFUSED_OOM);
    assert_true(strlen(big) < QUEUE_REFUSAL_MAX);

    /* Room again: the probe says so, and wrote nothing. */
    srv_run(&main_srv, "CONFIG SET maxmemory 0");
    memset(&r, 0, sizeof r);
    assert_int_equal(queue_probe_write(q, on_count, &r), 0);
    assert_int_equal(run_until(res_done, &r, 5000), 0);
    assert_int_equal(r.st, QUEUE_OK);
    assert_int_equal(queue_refusing(msg, sizeof msg), -1);
    assert_int_equal(srv_int(&main_srv, "EXISTS %s", "tr:write-probe", NULL),
                     0);

    /* Another error (a key of the wrong type) fails its comment alone and
     * says nothing of Redis taking writes. */
    srv_run(&main_srv, "SET tr:item:bad string");
    submit_wait(q, "bad", "3", 1, 3, 0, &r);
    assert_int_equal(r.st, QUEUE_ERROR);
    assert_int_equal(queue_refusing(NULL, 0), -1);

    /* A replica refuses; an id that exists is an answer to a write
     * Redis took (HSETNX ran). */
    srv_run(&main_srv, "REPLICAOF 127.0.0.1 1");
    submit_wait(q, "c", "4", 1, 4, 0, &r);
    assert_int_equal(r.st, QUEUE_ERROR);
    assert_int_equal(queue_refusing(msg, sizeof msg), QUEUE_REFUSED_READONLY);
    assert_non_null(strstr(msg, "READONLY"));
    srv_run(&main_srv, "REPLICAOF NO ONE");
    submit_wait(q, "a", "5", 1, 5, 0, &r);
    assert_int_equal(r.st, QUEUE_EXISTS);
    assert_int_equal(queue_refusing(NULL, 0), -1);
    close_queue(q);
}

static int
group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN); /* hiredis writes with write(2) */
    atexit(kill_all_servers);
    base = event_base_new();
    if (base == NULL || srv_start(&main_srv) != 0) {
        fprintf(stderr, "cannot start %s\n", REDIS_SERVER);
        return -1;
    }
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    srv_destroy(&main_srv);
    event_base_free(base);
    base = NULL;
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_url_parse, teardown),
        cmocka_unit_test_teardown(test_submit_stores_fields, teardown),
        cmocka_unit_test_teardown(test_resubmit_exists, teardown),
        cmocka_unit_test_teardown(test_length_oldest_get, teardown),
        cmocka_unit_test_teardown(test_1000_in_flight, teardown),
        cmocka_unit_test_teardown(test_unix_socket, teardown),
        cmocka_unit_test_teardown(test_auth, teardown),
        cmocka_unit_test_teardown(test_noscript_fallback, teardown),
        cmocka_unit_test_teardown(test_timeout_late_reply, teardown),
        cmocka_unit_test_teardown(test_timeout_stuck_reconnects, teardown),
        cmocka_unit_test_teardown(test_absent_then_started, teardown),
        cmocka_unit_test_teardown(test_killed_and_restarted, teardown),
        cmocka_unit_test_teardown(test_idle_ping_and_fast_reconnect, teardown),
        cmocka_unit_test_teardown(test_worker_threads, teardown),
        cmocka_unit_test_teardown(test_free_with_pending, teardown),
        cmocka_unit_test_teardown(test_batch_distinct_and_duplicates, teardown),
        cmocka_unit_test_teardown(test_batch_caps, teardown),
        cmocka_unit_test_teardown(test_batch_item_error_alone, teardown),
        cmocka_unit_test_teardown(test_batch_redis_down, teardown),
        cmocka_unit_test_teardown(test_batch_one_in_flight, teardown),
        cmocka_unit_test_teardown(test_moderation, teardown),
        cmocka_unit_test_teardown(test_moderation_urgent_claim, teardown),
        cmocka_unit_test_teardown(test_urgent_kept, teardown),
        cmocka_unit_test_teardown(test_urgent_steps, teardown),
        cmocka_unit_test_teardown(test_claim_walk_bounded, teardown),
        cmocka_unit_test_teardown(test_claim_urgent_lost_midway, teardown),
        cmocka_unit_test_teardown(test_memory_policy, teardown),
        cmocka_unit_test_teardown(test_refused_writes, teardown),
    };
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);

    kill_all_servers();
    libevent_global_shutdown();
    return rc;
}
