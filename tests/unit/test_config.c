/* Unit tests of daemon/config.c and daemon/auth.c: defaults, ranges,
 * messages with file:line, --set, thresholds, token tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "modfilterd.h"

static struct config *
load(const char *text, struct config_error *err, int *ret)
{
    struct config *c = config_new();

    assert_non_null(c);
    *ret = config_load_buffer(c, "t.conf", text, strlen(text), err);
    if (*ret == 0)
        *ret = config_check(c, err);
    return c;
}

static void
expect_error(const char *text, const char *want)
{
    struct config_error err;
    int ret;
    struct config *c = load(text, &err, &ret);

    assert_int_equal(ret, -1);
    if (strncmp(err.msg, want, strlen(want)) != 0)
        fail_msg("want \"%s...\", got \"%s\"", want, err.msg);
    config_free(c);
}

static void
test_defaults(void **state)
{
    struct config_error err;
    struct config *c = config_new();

    (void)state;
    assert_non_null(c);
    assert_int_equal(config_check(c, &err), 0);
    assert_string_equal(c->listen, "127.0.0.1:8080");
    assert_string_equal(c->socket, "");
    assert_int_equal(c->workers, 0);
    assert_string_equal(c->redis_url, "redis://127.0.0.1:6379/0");
    assert_string_equal(c->redis_prefix, "modfilter:");
    assert_int_equal(c->redis_timeout_ms, 1000);
    assert_string_equal(c->model_path, "models/default.mfm");
    assert_true(c->review == 0.5 && c->reject == 0.95);
    assert_int_equal(c->verdict_mask, (1u << CLF_REVIEW) | (1u << CLF_REJECT));
    assert_int_equal(c->order_urgent, 0);
    assert_int_equal(c->max_body, 65536);
    assert_int_equal(c->max_headers, 8192);
    assert_int_equal(c->max_connections, 4096);
    assert_int_equal(c->max_connections_per_addr, 256);
    assert_int_equal(c->request_timeout_s, 10);
    assert_int_equal(c->idle_timeout_s, 60);
    assert_string_equal(c->spool_path, "run/spool");
    assert_true(c->spool_max_bytes == 1073741824ULL);
    assert_int_equal(auth_count(c->auth, AUTH_SUBMIT), 0);
    assert_null(c->redis_password);
    config_free(c);
}

static void
test_shipped_file(void **state)
{
    struct config_error err;
    struct config *c = config_new();

    (void)state;
    /* The committed config file parses and equals the defaults. */
    assert_int_equal(config_load_file(c, "config/modfilterd.conf", &err), 0);
    assert_int_equal(config_check(c, &err), 0);
    assert_string_equal(c->listen, "127.0.0.1:8080");
    assert_int_equal(c->max_body, 65536);
    assert_string_equal(c->queue_verdicts, "review,reject");
    config_free(c);
}

static void
test_values(void **state)
{
    struct config_error err;
    int ret;
    struct config *c = load("; comment\n[server]\nlisten = [::1]:0\n"
                            "workers = 3 ; inline comment\n"
                            "[queue]\norder = urgent\nverdicts = reject\n"
                            "[thresholds]\nreview=0.4\nabuse_review = 0.2\n"
                            "abuse_reject = 0.7\nspam_reject = 0.99\n"
                            "[limits]\nmax_body = 1024\n",
                            &err, &ret);
    double rv, rj;

    (void)state;
    assert_int_equal(ret, 0);
    assert_string_equal(c->listen, "[::1]:0");
    assert_int_equal(c->workers, 3);
    assert_int_equal(c->order_urgent, 1);
    assert_int_equal(c->verdict_mask, 1u << CLF_REJECT);
    assert_int_equal(c->max_body, 1024);
    config_thresholds(c, "abuse", &rv, &rj);
    assert_true(rv == 0.2 && rj == 0.7);
    config_thresholds(c, "spam", &rv, &rj);
    assert_true(rv == 0.4 && rj == 0.99);
    config_thresholds(c, "other", &rv, &rj);
    assert_true(rv == 0.4 && rj == 0.95);
    config_free(c);
}

/* The comment rules config/modfilterd.conf's header states (inih's, as
 * Debian builds it): whole-line ';' and '#', and an inline ';' only after
 * a blank. */
static void
test_comments(void **state)
{
    struct config_error err;
    int ret;
    struct config *c = load("# hash\n  ; indented\n[redis]\n"
                            "prefix = a;b ; note\n"
                            "url = redis://h:1/0\t;tab\n"
                            "[model]\npath = m#1 #2\nstate_dir = one\n"
                            "  two\n",
                            &err, &ret);

    (void)state;
    assert_int_equal(ret, 0);
    assert_string_equal(c->redis_prefix, "a;b");
    assert_string_equal(c->redis_url, "redis://h:1/0");
    assert_string_equal(c->model_path, "m#1 #2");
    assert_string_equal(c->model_state_dir, "two");
    config_free(c);
}

/* config_diff names exactly the keys that changed among those asked for,
 * config_copy copies just those (SIGHUP's "takes effect at restart"). */
static void
test_diff(void **state)
{
    static const char *const restart[] = {"server.*", "limits.*",
                                          "model.snapshot_interval_s", NULL};
    struct config_error err;
    struct config *a = config_new(), *b = config_new();
    char buf[200], small[12];

    (void)state;
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(config_diff(a, b, restart, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "");
    assert_int_equal(config_set_arg(b, "limits.max_body=1000", &err), 0);
    assert_int_equal(config_diff(a, b, restart, buf, sizeof(buf)), 1);
    assert_string_equal(buf, "limits.max_body");
    assert_int_equal(config_set_arg(b, "server.listen=127.0.0.1:1", &err), 0);
    assert_int_equal(config_set_arg(b, "model.snapshot_interval_s=5", &err), 0);
    assert_int_equal(config_set_arg(b, "queue.order=urgent", &err), 0);
    assert_int_equal(config_set_arg(b, "thresholds.review=0.1", &err), 0);
    assert_int_equal(config_diff(a, b, restart, buf, sizeof(buf)), 3);
    assert_string_equal(
        buf, "server.listen, model.snapshot_interval_s, limits.max_body");
    /* Cut to the buffer, still counted. */
    assert_int_equal(config_diff(a, b, restart, small, sizeof(small)), 3);
    assert_string_equal(small, "server.list");
    /* config_copy takes the listed keys only. */
    assert_int_equal(config_copy(a, b, restart), 0);
    assert_int_equal(config_diff(a, b, restart, buf, sizeof(buf)), 0);
    assert_int_equal(a->max_body, 1000);
    assert_string_equal(a->queue_order, "oldest");
    config_free(a);
    config_free(b);
}

static void
test_errors(void **state)
{
    (void)state;
    expect_error("[server]\nlisten = 1.2.3.4:1\nnope = 1\n",
                 "t.conf:3: server.nope: unknown key");
    expect_error("\n[what]\nx=1\n", "t.conf:3: unknown section [what]");
    expect_error("[server]\nworkers = -1\n",
                 "t.conf:2: server.workers: \"-1\" is not a whole");
    expect_error("[server]\nworkers = 3x\n",
                 "t.conf:2: server.workers: \"3x\" is not");
    expect_error("[server]\nworkers = 999\n",
                 "t.conf:2: server.workers: 999 is out of range 0..256");
    expect_error("[thresholds]\nreview = nan\n",
                 "t.conf:2: thresholds.review: \"nan\" is not a number");
    expect_error("[thresholds]\nreview = 0.9\nreject = 0.8\n",
                 "t.conf:2: thresholds.review: 0.9 is above");
    expect_error("[thresholds]\nabuse_review = 0.9\nabuse_reject = 0.8\n",
                 "t.conf:2: thresholds.abuse: review threshold 0.9");
    expect_error("[thresholds]\nabuse = 0.9\n",
                 "t.conf:2: thresholds.abuse: unknown key");
    expect_error("[thresholds]\n_review = 0.9\n",
                 "t.conf:2: thresholds._review: a label name");
    expect_error("[server]\nlisten\n", "t.conf:2: syntax error");
    expect_error("[server\n", "t.conf:1: syntax error");
    expect_error("[server]\nlisten = nope\n",
                 "t.conf:2: server.listen: \"nope\" is not HOST:PORT");
    expect_error("[server]\nlisten = 1.2.3.4:70000\n",
                 "t.conf:2: server.listen:");
    expect_error("[server]\nlisten =\n",
                 "t.conf:2: server.listen: empty, and server.socket too");
    expect_error("[redis]\nurl = http://x\n", "t.conf:2: redis.url:");
    expect_error("[redis]\nprefix =\n", "t.conf:2: redis.prefix:");
    expect_error("[queue]\norder = newest\n",
                 "t.conf:2: queue.order: \"newest\" is not one of "
                 "oldest|urgent");
    expect_error("[queue]\nverdicts = review, never\n",
                 "t.conf:2: queue.verdicts: \"never\"");
    expect_error("[auth]\nsubmit_tokens = a:0123456789,b\n",
                 "t.conf:2: auth.submit_tokens: a token entry");
    expect_error("[auth]\nsubmit_tokens = a:0123456789,b:abcdefghij\n"
                 "moderator_tokens = c:0123456789\n",
                 "t.conf:3: auth.moderator_tokens: token \"c\" is "
                 "configured twice");
    expect_error("[auth]\nsubmit_tokens = a:short\n",
                 "t.conf:2: auth.submit_tokens: token \"a\" must be");
    expect_error("[auth]\nsubmit_tokens = a b:0123456789\n",
                 "t.conf:2: auth.submit_tokens: a token name");
    expect_error("[redis]\npassword_file = /nonexistent/pw\n",
                 "t.conf:2: redis.password_file: /nonexistent/pw:");
}

static void
test_long_line(void **state)
{
    char text[600];

    (void)state;
    /* An over-long line is one error on its own line, not two lines. */
    snprintf(text, sizeof(text),
             "[auth]\nsubmit_tokens = a:%0300d\n"
             "[nope]\n",
             7);
    expect_error(text, "t.conf:2: line longer than");
}

static void
test_longest_line(void **state)
{
    char text[300], token[200];
    struct config_error err;
    int ret;
    struct config *c;

    (void)state;
    /* 199 bytes is the longest line; its last byte is kept. */
    memset(token, 'x', sizeof(token));
    snprintf(text, sizeof(text), "[auth]\nsubmit_tokens = a:%.*s9\n", 180,
             token);
    assert_int_equal(strlen(strchr(text, '\n') + 1), 200);
    c = load(text, &err, &ret);
    assert_int_equal(ret, 0);
    assert_int_equal(strlen(c->submit_tokens), 183);
    assert_int_equal(c->submit_tokens[182], '9');
    config_free(c);
}

static void
test_nul_byte(void **state)
{
    struct config_error err;
    struct config *c = config_new();
    static const char text[] = "[server]\nuser = a\0b\n";

    (void)state;
    assert_int_equal(
        config_load_buffer(c, "t.conf", text, sizeof(text) - 1, &err), -1);
    assert_string_equal(err.msg, "t.conf:2: NUL byte");
    config_free(c);
}

static void
test_set_arg(void **state)
{
    struct config_error err;
    struct config *c = config_new();
    double rv, rj;

    (void)state;
    assert_int_equal(config_set_arg(c, "server.workers=4", &err), 0);
    assert_int_equal(c->workers, 4);
    assert_int_equal(config_set_arg(c, "server.listen=127.0.0.1:0", &err), 0);
    assert_string_equal(c->listen, "127.0.0.1:0");
    /* split at the first dot and the first '=' */
    assert_int_equal(config_set_arg(c, "model.path=a.b=c", &err), 0);
    assert_string_equal(c->model_path, "a.b=c");
    assert_int_equal(config_set_arg(c, "server.socket=", &err), 0);
    assert_string_equal(c->socket, "");
    assert_int_equal(config_set_arg(c, "thresholds.spam_review=0.1", &err), 0);
    config_thresholds(c, "spam", &rv, &rj);
    assert_true(rv == 0.1 && rj == 0.95);
    assert_int_equal(config_set_arg(c, "workers=4", &err), -1);
    assert_string_equal(err.msg, "--set workers=4: expected SECTION.KEY=VALUE");
    assert_int_equal(config_set_arg(c, "server.workers", &err), -1);
    assert_int_equal(config_set_arg(c, "server.=1", &err), -1);
    assert_int_equal(config_set_arg(c, "limits.max_body=1", &err), -1);
    assert_string_equal(err.msg, "--set: limits.max_body: 1 is out of "
                                 "range 256..16777216");
    assert_int_equal(config_check(c, &err), 0);
    /* A --set can pass the config file's line limit: redis.prefix is
     * bounded by the queue's key buffers (a longer one crashed the start). */
    char arg[400];
    snprintf(arg, sizeof(arg), "redis.prefix=%0*d", 256, 0);
    assert_int_equal(config_set_arg(c, arg, &err), 0);
    assert_int_equal(config_check(c, &err), 0);
    snprintf(arg, sizeof(arg), "redis.prefix=%0*d", 257, 0);
    assert_int_equal(config_set_arg(c, arg, &err), 0);
    assert_int_equal(config_check(c, &err), -1);
    assert_string_equal(err.msg, "--set: redis.prefix: longer than 256 bytes");
    config_free(c);
}

static void
test_files(void **state)
{
    char dir[] = "/tmp/mfcfg.XXXXXX", tok[64], pw[64], set[128];
    struct config_error err;
    struct config *c = config_new();
    const char *name;
    FILE *f;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(tok, sizeof(tok), "%s/tokens", dir);
    snprintf(pw, sizeof(pw), "%s/pw", dir);
    f = fopen(tok, "w");
    fputs("# comment\n\nblog:token-from-file-1\r\n  other:token-two-xyz  \n",
          f);
    fclose(f);
    f = fopen(pw, "w");
    fputs("s3cret\n", f);
    fclose(f);
    snprintf(set, sizeof(set), "auth.moderator_tokens_file=%s", tok);
    assert_int_equal(config_set_arg(c, set, &err), 0);
    snprintf(set, sizeof(set), "redis.password_file=%s", pw);
    assert_int_equal(config_set_arg(c, set, &err), 0);
    assert_int_equal(config_check(c, &err), 0);
    assert_string_equal(c->redis_password, "s3cret");
    assert_int_equal(auth_count(c->auth, AUTH_MODERATOR), 2);
    assert_int_equal(auth_check(c->auth, "Bearer token-two-xyz", &name),
                     AUTH_MODERATOR);
    assert_string_equal(name, "other");
    config_free(c);

    f = fopen(tok, "w");
    fputs("blog:token-from-file-1\nno-colon-here\n", f);
    fclose(f);
    c = config_new();
    snprintf(set, sizeof(set), "auth.submit_tokens_file=%s", tok);
    assert_int_equal(config_set_arg(c, set, &err), 0);
    assert_int_equal(config_check(c, &err), -1);
    snprintf(set, sizeof(set), "%s:2: a token entry must be name:token", tok);
    assert_string_equal(err.msg, set);
    config_free(c);
    unlink(tok);
    unlink(pw);
    rmdir(dir);
}

static void
test_auth(void **state)
{
    char err[200];
    struct auth *a = auth_new();
    const char *name = NULL;
    size_t len;

    (void)state;
    assert_int_equal(auth_add_list(a, AUTH_SUBMIT,
                                   " blog:submit-token-1 , b2:submit-two-2",
                                   err, sizeof(err)),
                     0);
    assert_int_equal(
        auth_add_list(a, AUTH_MODERATOR, "alice:moderator-1", err, sizeof(err)),
        0);
    assert_int_equal(auth_count(a, AUTH_SUBMIT), 2);
    assert_int_equal(auth_count(a, AUTH_MODERATOR), 1);
    assert_int_equal(auth_check(a, "Bearer submit-token-1", &name),
                     AUTH_SUBMIT);
    assert_string_equal(name, "blog");
    assert_int_equal(auth_check(a, "bearer  submit-two-2 ", &name),
                     AUTH_SUBMIT);
    assert_string_equal(name, "b2");
    assert_int_equal(auth_check(a, "Bearer moderator-1", NULL), AUTH_MODERATOR);
    assert_int_equal(auth_check(a, "Bearer submit-token-", &name), AUTH_NONE);
    assert_null(name);
    assert_int_equal(auth_check(a, "Bearer submit-token-12", NULL), AUTH_NONE);
    assert_int_equal(auth_check(a, "Bearer ", NULL), AUTH_NONE);
    assert_int_equal(auth_check(a, "Basic submit-token-1", NULL), AUTH_NONE);
    assert_int_equal(auth_check(a, "submit-token-1", NULL), AUTH_NONE);
    assert_int_equal(auth_check(a, NULL, NULL), AUTH_NONE);
    assert_int_equal(auth_check(NULL, "Bearer submit-token-1", NULL),
                     AUTH_NONE);
    /* the scheme apart from the token, for 401's message */
    assert_null(auth_bearer("Basic submit-token-1", &len));
    assert_null(auth_bearer("Bearersubmit-token-1", &len));
    assert_null(auth_bearer(NULL, &len));
    assert_non_null(auth_bearer("Bearer", &len));
    assert_int_equal(len, 0);
    assert_string_equal(auth_bearer("bearer  tok ", &len), "tok ");
    assert_int_equal(len, 3);
    assert_int_equal(
        auth_add_list(a, AUTH_SUBMIT, "x:has space in", err, sizeof(err)), -1);
    assert_int_equal(
        auth_add_list(a, AUTH_SUBMIT, ":anonymous-token", err, sizeof(err)),
        -1);
    assert_int_equal(auth_add_list(a, AUTH_SUBMIT, "", err, sizeof(err)), 0);
    assert_int_equal(auth_add_list(a, AUTH_SUBMIT, " , ,", err, sizeof(err)),
                     0);
    auth_free(a);
    auth_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_shipped_file),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_comments),
        cmocka_unit_test(test_diff),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_longest_line),
        cmocka_unit_test(test_set_arg),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_auth),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
