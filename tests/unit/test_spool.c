/* Unit tests of daemon/spool.c: the on-disk format and its crash cases
 * (read back, torn tail, damage in the middle, full, checkpoint and
 * resume, a lost checkpoint, an unusable directory), concurrent appends,
 * and appends answered on an event loop (group commit). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "modfilterd.h"

static char test_dir[64];

static int
setup(void **state)
{
    (void)state;
    snprintf(test_dir, sizeof(test_dir), "/tmp/mf-spool-XXXXXX");
    if (mkdtemp(test_dir) == NULL)
        return -1;
    log_init(1, 0);
    return 0;
}

static int
teardown(void **state)
{
    DIR *d = opendir(test_dir);
    struct dirent *e;
    char path[600];

    (void)state;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", test_dir, e->d_name);
        unlink(path);
    }
    if (d != NULL)
        closedir(d);
    rmdir(test_dir);
    return 0;
}

static struct spool *
open_ok(unsigned long long max)
{
    char err[300];
    struct spool *s = spool_open(test_dir, max, err, sizeof(err));

    if (s == NULL)
        fail_msg("spool_open: %s", err);
    return s;
}

/* The test record of id (json: a buffer of 200 bytes). */
static void
make_record(const char *id, char *json, struct spool_record *r)
{
    snprintf(json, 200, "{\"id\":\"%s\",\"text\":\"t\\u00e9xt\"}", id);
    memset(r, 0, sizeof(*r));
    r->id = id;
    r->json = json;
    r->json_len = strlen(json);
    r->received_ms = 1700000000123LL;
    r->urgency = 0.75;
}

static void
append_ok(struct spool *s, const char *id)
{
    char json[200];
    struct spool_record r;

    make_record(id, json, &r);
    if (spool_append(s, &r) != 0)
        fail_msg("spool_append %s: %s", id, strerror(errno));
}

/* Read everything after the cursor; ids joined by ',' into out. */
static void
read_ids(struct spool *s, struct spool_cursor *c, char *out, size_t len)
{
    struct spool_record r;
    int n;

    out[0] = '\0';
    while ((n = spool_read(s, c, &r)) == 1) {
        char want[200];

        snprintf(want, sizeof(want), "{\"id\":\"%s\",\"text\":\"t\\u00e9xt\"}",
                 r.id);
        assert_int_equal(r.json_len, strlen(want));
        assert_memory_equal(r.json, want, r.json_len);
        assert_int_equal(r.received_ms, 1700000000123LL);
        assert_true(r.urgency == 0.75);
        if (out[0])
            strncat(out, ",", len - strlen(out) - 1);
        strncat(out, r.id, len - strlen(out) - 1);
    }
    assert_int_equal(n, 0);
}

/* The path of the only (or the last) segment file. */
static void
segment_path(char *buf, size_t len)
{
    DIR *d = opendir(test_dir);
    struct dirent *e;
    char best[300] = "";

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (!strncmp(e->d_name, "seg-", 4) && strcmp(e->d_name, best) > 0)
            snprintf(best, sizeof(best), "%s", e->d_name);
    closedir(d);
    assert_true(best[0] != '\0');
    snprintf(buf, len, "%s/%s", test_dir, best);
}

static unsigned
count_segments(void)
{
    DIR *d = opendir(test_dir);
    struct dirent *e;
    unsigned n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += !strncmp(e->d_name, "seg-", 4);
    closedir(d);
    return n;
}

static void
test_roundtrip(void **state)
{
    struct spool *s = open_ok(1 << 20);
    struct spool_cursor c;
    struct spool_stats st;
    char ids[200];

    (void)state;
    spool_stats(s, &st);
    assert_int_equal(st.records, 0);
    assert_int_equal(count_segments(), 0); /* created on the first append */
    append_ok(s, "a-1");
    append_ok(s, "b:2");
    append_ok(s, "c.3");
    spool_stats(s, &st);
    assert_int_equal(st.records, 3);
    assert_true(st.bytes > 0 && st.disk_bytes > st.bytes);
    spool_cursor_init(s, &c);
    read_ids(s, &c, ids, sizeof(ids));
    assert_string_equal(ids, "a-1,b:2,c.3");
    /* Appends after the reader reached the end are seen next time. */
    append_ok(s, "d-4");
    read_ids(s, &c, ids, sizeof(ids));
    assert_string_equal(ids, "d-4");
    assert_int_equal(spool_commit(s, &c, NULL, 0), 0);
    spool_stats(s, &st);
    assert_int_equal(st.records, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.disk_bytes, 0); /* the drained segment is gone */
    assert_int_equal(count_segments(), 0);
    spool_cursor_release(&c);
    spool_close(s);

    /* Reopened: nothing to send; new appends go to a new segment. */
    s = open_ok(1 << 20);
    spool_stats(s, &st);
    assert_int_equal(st.records, 0);
    append_ok(s, "e-5");
    spool_cursor_init(s, &c);
    read_ids(s, &c, ids, sizeof(ids));
    assert_string_equal(ids, "e-5");
    spool_cursor_release(&c);
    spool_close(s);
}

/* spool_holds: the backlog's ids, appended or found at open (the
 * drainer takes them out; test_daemon_spool.sh). */
static void
test_holds(void **state)
{
    struct spool *s = open_ok(8 << 20);
    char id[32];
    unsigned i;

    (void)state;
    assert_false(spool_holds(NULL, "a"));
    assert_false(spool_holds(s, "h-1"));
    for (i = 0; i < 3000; i++) { /* the index grows a few times */
        snprintf(id, sizeof(id), "h-%u", i);
        append_ok(s, id);
    }
    for (i = 0; i < 3000; i++) {
        snprintf(id, sizeof(id), "h-%u", i);
        assert_true(spool_holds(s, id));
    }
    assert_false(spool_holds(s, "h-3000"));
    assert_false(spool_holds(s, "h-"));
    spool_close(s);
    s = open_ok(8 << 20); /* found at open */
    assert_true(spool_holds(s, "h-0"));
    assert_true(spool_holds(s, "h-2999"));
    assert_false(spool_holds(s, "h-3000"));
    spool_close(s);
}

static void
test_torn_tail(void **state)
{
    struct spool *s = open_ok(1 << 20);
    struct spool_cursor c;
    struct spool_stats st;
    struct spool_record r;
    unsigned char *b;
    char ids[200], path[600];
    size_t len;
    int fd;

    (void)state;
    append_ok(s, "t-1");
    append_ok(s, "t-2");
    spool_close(s); /* as after kill -9: nothing more was written */

    /* A record cut short by a crash: its first 30 bytes only. */
    memset(&r, 0, sizeof(r));
    r.id = "t-3";
    r.json = "{\"id\":\"t-3\"}";
    r.json_len = strlen(r.json);
    len = spool_encode(&r, &b);
    assert_true(len > 30);
    segment_path(path, sizeof(path));
    fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b, 30), 30);
    close(fd);
    free(b);

    s = open_ok(1 << 20);
    spool_stats(s, &st);
    assert_int_equal(st.records, 2);
    append_ok(s, "t-4"); /* a new segment, after the damaged one */
    spool_cursor_init(s, &c);
    read_ids(s, &c, ids, sizeof(ids));
    assert_string_equal(ids, "t-1,t-2,t-4");
    assert_int_equal(c.skipped, 1);
    assert_int_equal(spool_commit(s, &c, NULL, 0), 0);
    spool_stats(s, &st);
    assert_int_equal(st.records, 0);
    assert_int_equal(st.skipped, 1);
    assert_int_equal(count_segments(), 0);
    spool_cursor_release(&c);
    spool_close(s);
}

/* Damage at byte offset `at` from the start of record `which` (0-based). */
static void
damage(unsigned which, size_t at)
{
    char path[600];
    unsigned char b[16];
    struct stat sb;
    off_t off = 16; /* the segment header */
    unsigned i;
    int fd;

    segment_path(path, sizeof(path));
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &sb), 0);
    for (i = 0; i < which; i++) {
        uint32_t plen;

        assert_int_equal(pread(fd, b, 16, off), 16);
        plen = (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 |
               (uint32_t)b[7] << 24;
        off += 16 + (off_t)plen;
    }
    assert_int_equal(pread(fd, b, 1, off + (off_t)at), 1);
    b[0] ^= 0x5a;
    assert_int_equal(pwrite(fd, b, 1, off + (off_t)at), 1);
    close(fd);
}

static void
test_damage_in_middle(void **state)
{
    struct spool *s = open_ok(1 << 20);
    struct spool_cursor c;
    struct spool_stats st;
    char ids[200];

    (void)state;
    append_ok(s, "m-1");
    append_ok(s, "m-2");
    append_ok(s, "m-3");
    append_ok(s, "m-4");
    append_ok(s, "m-5");
    spool_close(s);
    damage(2, 40); /* m-3's payload: its checksum fails */
    damage(0, 5);  /* m-1's length field */

    s = open_ok(1 << 20);
    spool_stats(s, &st);
    assert_int_equal(st.records, 3);
    spool_cursor_init(s, &c);
    read_ids(s, &c, ids, sizeof(ids));
    assert_string_equal(ids, "m-2,m-4,m-5");
    assert_int_equal(c.skipped, 2);
    spool_cursor_release(&c);
    spool_close(s);
}

/* A record damaged on disk after it was acknowledged: the reader skips
 * it, and once everything published is in Redis the backlog is empty:
 * its count and its id go, instead of answering 503 until a restart. */
static void
test_damage_after_ack(void **state)
{
    struct spool *s = open_ok(1 << 20);
    struct spool_cursor c;
    struct spool_stats st;
    struct spool_record r;
    uint64_t ids[8];
    size_t n = 0;

    (void)state;
    append_ok(s, "a-1");
    append_ok(s, "a-2");
    append_ok(s, "a-3");
    damage(1, 40); /* a-2's payload, while the spool is open */
    assert_true(spool_holds(s, "a-2"));
    spool_cursor_init(s, &c);
    while (spool_read(s, &c, &r) == 1)
        ids[n++] = spool_id_hash(r.id, strlen(r.id));
    assert_int_equal(n, 2);
    assert_int_equal(c.skipped, 1);
    assert_int_equal(spool_commit(s, &c, ids, n), 0);
    spool_stats(s, &st);
    assert_int_equal(st.records, 0);
    assert_false(spool_holds(s, "a-1"));
    assert_false(spool_holds(s, "a-2"));
    assert_false(spool_holds(s, "a-3"));
    /* and the spool goes on */
    append_ok(s, "a-4");
    assert_true(spool_holds(s, "a-4"));
    spool_stats(s, &st);
    assert_int_equal(st.records, 1);
    spool_cursor_release(&c);
    spool_close(s);
}

static void
test_full(void **state)
{
    struct spool *s;
    struct spool_cursor c;
    struct spool_record r;
    char ids[200];
    unsigned n = 0;

    (void)state;
    s = open_ok(600);
    assert_true(spool_can_take(s) == 0 || spool_can_take(s) == 1);
    for (;;) {
        char id[16], json[200];

        snprintf(id, sizeof(id), "f-%u", n);
        make_record(id, json, &r);
        if (spool_append(s, &r) != 0)
            break;
        n++;
        assert_true(n < 100);
    }
    assert_int_equal(errno, ENOSPC);
    assert_true(n >= 3);
    assert_int_equal(spool_can_take(s), 0);
    /* Nothing half-written: all n read back, and room again once drained. */
    spool_cursor_init(s, &c);
    read_ids(s, &c, ids, sizeof(ids));
    assert_int_equal(strlen(ids) > 0, 1);
    assert_int_equal(spool_commit(s, &c, NULL, 0), 0);
    append_ok(s, "after");
    spool_cursor_release(&c);
    spool_close(s);
    /* An id the queue would refuse is refused here too. */
    s = open_ok(1 << 20);
    memset(&r, 0, sizeof(r));
    r.id = "";
    r.json = "{}";
    r.json_len = 2;
    assert_int_equal(spool_append(s, &r), -1);
    assert_int_equal(errno, EINVAL);
    spool_close(s);
}

static void
test_resume(void **state)
{
    struct spool *s = open_ok(1 << 20);
    struct spool_cursor c;
    struct spool_record r;
    struct spool_stats st;
    char ids[200], path[600];
    int fd;

    (void)state;
    append_ok(s, "r-1");
    append_ok(s, "r-2");
    append_ok(s, "r-3");
    append_ok(s, "r-4");
    spool_cursor_init(s, &c);
    assert_int_equal(spool_read(s, &c, &r), 1);
    assert_int_equal(spool_read(s, &c, &r), 1);
    assert_int_equal(spool_commit(s, &c, NULL, 0),
                     0);                        /* r-1, r-2 are in Redis */
    assert_int_equal(spool_read(s, &c, &r), 1); /* r-3 sent, not confirmed */
    spool_cursor_release(&c);
    spool_close(s); /* a crash here */

    s = open_ok(1 << 20);
    spool_stats(s, &st);
    assert_int_equal(st.records, 2);
    append_ok(s, "r-5");
    spool_cursor_init(s, &c);
    read_ids(s, &c, ids, sizeof(ids));
    assert_string_equal(ids, "r-3,r-4,r-5");
    assert_int_equal(spool_commit(s, &c, NULL, 0), 0);
    assert_int_equal(count_segments(), 0);
    spool_cursor_release(&c);
    spool_close(s);

    /* The checkpoint names a segment that is gone: a new one never takes
     * its number, so nothing new hides behind the checkpoint. */
    s = open_ok(1 << 20);
    append_ok(s, "r-6");
    spool_close(s);
    s = open_ok(1 << 20);
    spool_stats(s, &st);
    assert_int_equal(st.records, 1);
    spool_cursor_init(s, &c);
    read_ids(s, &c, ids, sizeof(ids));
    assert_string_equal(ids, "r-6");
    spool_cursor_release(&c);
    spool_close(s);

    /* A damaged checkpoint: everything still on disk is sent again. */
    s = open_ok(1 << 20);
    append_ok(s, "r-7");
    spool_cursor_init(s, &c);
    assert_int_equal(spool_read(s, &c, &r), 1); /* r-6 */
    assert_int_equal(spool_commit(s, &c, NULL, 0), 0);
    spool_cursor_release(&c);
    append_ok(s, "r-8");
    spool_close(s);
    snprintf(path, sizeof(path), "%s/drained", test_dir);
    fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "X", 1, 9), 1);
    close(fd);
    s = open_ok(1 << 20);
    spool_cursor_init(s, &c);
    read_ids(s, &c, ids, sizeof(ids));
    assert_string_equal(ids, "r-6,r-7,r-8"); /* r-6 again */
    spool_cursor_release(&c);
    spool_close(s);
}

static void
test_unusable(void **state)
{
    char err[300], path[600];
    struct spool *s;
    int fd;

    (void)state;
    snprintf(path, sizeof(path), "%s/file", test_dir);
    fd = open(path, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    s = spool_open(path, 1 << 20, err, sizeof(err));
    assert_null(s);
    assert_non_null(strstr(err, "spool.path"));
    snprintf(path, sizeof(path), "%s/new/sub", test_dir);
    s = spool_open(path, 1 << 20, err, sizeof(err));
    assert_null(s); /* one level is created, not a tree */
    snprintf(path, sizeof(path), "%s/new", test_dir);
    s = spool_open(path, 1 << 20, err, sizeof(err));
    assert_non_null(s);
    /* One daemon per spool. */
    assert_null(spool_open(path, 1 << 20, err, sizeof(err)));
    assert_non_null(strstr(err, "in use by another modfilterd"));
    spool_close(s);
    {
        struct stat sb;

        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0700);
    }
    s = spool_open(path, 1 << 20, err, sizeof(err)); /* free again */
    assert_non_null(s);
    spool_close(s);
    snprintf(path, sizeof(path), "%s/new/lock", test_dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/new", test_dir);
    rmdir(path);
}

#define RACE_THREADS 4
#define RACE_EACH 250

static struct spool *race_spool;

static void *
race_append(void *arg)
{
    unsigned t = (unsigned)(uintptr_t)arg, i;
    char id[32];

    for (i = 0; i < RACE_EACH; i++) {
        snprintf(id, sizeof(id), "r%u-%u", t, i);
        append_ok(race_spool, id);
    }
    return NULL;
}

/* Appenders and the reader at once: segments retired and created under
 * the reader's feet; every record read once, each thread's in order. */
static void
test_concurrent(void **state)
{
    pthread_t th[RACE_THREADS];
    unsigned next[RACE_THREADS] = {0}, total = 0, t, i;
    struct spool_cursor c;
    struct spool_record r;
    struct spool_stats st;

    (void)state;
    race_spool = open_ok(1 << 24);
    spool_cursor_init(race_spool, &c);
    for (t = 0; t < RACE_THREADS; t++)
        assert_int_equal(
            pthread_create(&th[t], NULL, race_append, (void *)(uintptr_t)t), 0);
    for (i = 0; total < RACE_THREADS * RACE_EACH && i < 1000000; i++) {
        int n = spool_read(race_spool, &c, &r);

        assert_true(n >= 0);
        if (n == 1) {
            unsigned rt, ri;

            assert_int_equal(sscanf(r.id, "r%u-%u", &rt, &ri), 2);
            assert_true(rt < RACE_THREADS);
            assert_int_equal(ri, next[rt]);
            next[rt]++;
            total++;
        } else {
            assert_int_equal(spool_commit(race_spool, &c, NULL, 0), 0);
            usleep(200);
        }
    }
    for (t = 0; t < RACE_THREADS; t++)
        pthread_join(th[t], NULL);
    assert_int_equal(total, RACE_THREADS * RACE_EACH);
    assert_int_equal(spool_read(race_spool, &c, &r), 0);
    assert_int_equal(spool_commit(race_spool, &c, NULL, 0), 0);
    spool_stats(race_spool, &st);
    assert_int_equal(st.records, 0);
    assert_int_equal(st.disk_bytes, 0);
    assert_int_equal(count_segments(), 0);
    spool_cursor_release(&c);
    spool_close(race_spool);
}

#define CLIENT_N 200

struct client_test {
    struct event_base *base;
    struct spool *s;
    unsigned answered, failed;
};

static void
client_done(int err, void *arg)
{
    struct client_test *t = arg;
    struct spool_stats st;

    /* answered only after its fdatasync: counted as appended by then */
    spool_stats(t->s, &st);
    assert_true(st.appended > t->answered);
    t->answered++;
    t->failed += err != 0;
    if (t->answered == CLIENT_N)
        event_base_loopbreak(t->base);
}

/* An event loop's appends: each answered once, on the loop, after it is
 * durable; queued together, they share fdatasyncs.  Appends still in
 * flight when the client is freed are answered by spool_client_free. */
static void
test_client(void **state)
{
    struct spool *s = open_ok(1 << 24);
    struct client_test t = {NULL, s, 0, 0};
    struct spool_client *c;
    struct spool_record r;
    struct spool_stats st;
    struct spool_cursor cur;
    char json[200], id[32], ids[64];
    unsigned i;

    (void)state;
    assert_int_equal(evthread_use_pthreads(), 0);
    t.base = event_base_new();
    c = spool_client_new(s, t.base);
    assert_non_null(c);
    for (i = 0; i < CLIENT_N; i++) {
        snprintf(id, sizeof(id), "c%u", i);
        make_record(id, json, &r);
        assert_int_equal(spool_client_append(c, &r, client_done, &t), 0);
    }
    assert_int_equal(t.answered, 0); /* only ever on the loop */
    event_base_loop(t.base, EVLOOP_NO_EXIT_ON_EMPTY);
    assert_int_equal(t.answered, CLIENT_N);
    assert_int_equal(t.failed, 0);
    spool_stats(s, &st);
    assert_int_equal(st.appended, CLIENT_N);
    assert_int_equal(st.records, CLIENT_N);
    assert_true(st.syncs >= 1 && st.syncs < CLIENT_N);
    /* in order, all there */
    spool_cursor_init(s, &cur);
    for (i = 0; i < CLIENT_N; i++) {
        snprintf(ids, sizeof(ids), "c%u", i);
        assert_int_equal(spool_read(s, &cur, &r), 1);
        assert_string_equal(r.id, ids);
    }
    spool_cursor_release(&cur);
    /* a bad record is refused at once; its callback never runs */
    make_record("", json, &r);
    assert_int_equal(spool_client_append(c, &r, client_done, &t), -1);
    assert_int_equal(errno, EINVAL);
    /* in flight at free: answered there, without the loop */
    t.answered = 0;
    for (i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "late%u", i);
        make_record(id, json, &r);
        assert_int_equal(spool_client_append(c, &r, client_done, &t), 0);
    }
    spool_client_free(c);
    assert_int_equal(t.answered, 10);
    spool_stats(s, &st);
    assert_int_equal(st.appended, CLIENT_N + 10);
    spool_close(s);
    event_base_free(t.base);
    spool_client_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_holds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage_in_middle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage_after_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unusable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
