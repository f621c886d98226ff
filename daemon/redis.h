/*
 * redis.h - one asynchronous Redis connection on a libevent loop.
 *
 * A small layer over hiredis 0.14 and its libevent adapter that adds what
 * hiredis 0.14 lacks: connecting from a URL, AUTH and SELECT on every
 * (re)connection, reconnecting with capped exponential backoff, a timeout
 * per command, Lua scripts run by EVALSHA with a fallback to EVAL, and a
 * shutdown that fails every pending command exactly once.
 *
 * Threads: a struct redis belongs to the thread that runs its event_base.
 * Create, use and free it only there (or while no thread runs that base).
 * Only redis_error_count() and redis_url_parse() may be called from any
 * thread.
 *
 * Callbacks run on the loop, never from inside the call that sent the
 * command.  Each accepted command's callback runs exactly once: with the
 * reply, with REDIS_RESULT_TIMEOUT when no reply came in time (a reply that
 * arrives later is dropped), or with REDIS_RESULT_ERROR when the connection
 * is lost or the handle is freed.  Callbacks may send new commands; they
 * must not call redis_free().
 *
 * The process must ignore SIGPIPE (hiredis writes with write(2)).
 *
 * Nothing here logs: failures are reported through results, the state
 * callback and redis_last_error().
 */
#ifndef MODFILTER_REDIS_H
#define MODFILTER_REDIS_H

#include <stddef.h>

struct event_base;
struct redisReply; /* <hiredis/hiredis.h> */

#define REDIS_URL_HOST_MAX 256
#define REDIS_URL_PATH_MAX 108 /* sizeof(sun_path) */
#define REDIS_URL_CRED_MAX 256

/* A parsed connection URL:
 *   redis://[[user]:password@]host[:port][/db]   (host may be [ipv6])
 *   unix:///absolute/path[?db=N]
 * Credentials in the URL are percent-decoded. */
struct redis_url {
    int is_unix;
    char host[REDIS_URL_HOST_MAX];     /* TCP only */
    int port;                          /* TCP only; default 6379 */
    char path[REDIS_URL_PATH_MAX];     /* Unix only */
    int db;                            /* default 0 */
    char user[REDIS_URL_CRED_MAX];     /* "" when none */
    char password[REDIS_URL_CRED_MAX]; /* "" when none */
};

/* 0 and *out filled, or -1 with a reason in err (which never contains the
 * password).  Pure; any thread. */
int redis_url_parse(const char *url, struct redis_url *out, char *err,
                    size_t errlen);

enum redis_result {
    REDIS_RESULT_OK = 0,  /* reply != NULL and not an error reply */
    REDIS_RESULT_TIMEOUT, /* no reply within timeout_ms; reply == NULL */
    REDIS_RESULT_ERROR,   /* Redis answered an error (reply != NULL, its
                             str is the message), or the connection was
                             lost or the handle freed (reply == NULL) */
};

/* reply: borrowed for the duration of the callback. */
typedef void redis_reply_cb(enum redis_result res,
                            const struct redisReply *reply, void *arg);

/* Called on every change of readiness: ready = 1 once connected,
 * authenticated and the database selected; ready = 0 with a reason when
 * the connection is lost or an attempt failed (once per failed attempt).
 * why is borrowed for the call and never contains the password. */
typedef void redis_state_cb(int ready, const char *why, void *arg);

struct redis_config {
    const char *url;      /* borrowed for the call */
    const char *password; /* NULL: the URL's, if any; borrowed for the call */
    unsigned timeout_ms;  /* per command; 0 means 1000 */
    unsigned backoff_min_ms;  /* first reconnect delay; 0 means 50 */
    unsigned backoff_max_ms;  /* cap; 0 means 2000 */
    unsigned idle_ping_ms;    /* PING a connection idle this long; 0: 15000 */
    redis_state_cb *state_cb; /* NULL or called as described above */
    void *state_arg;
};

/* Parses the URL and starts connecting at once; it returns before the
 * connection is made (see redis_ready()).  NULL when the URL is invalid
 * (reason in err) or memory ran out.  A Redis that is not there is no
 * error: the handle keeps retrying. */
struct redis *redis_new(struct event_base *base, const struct redis_config *cfg,
                        char *err, size_t errlen);

/* Closes the connection and runs every pending callback once with
 * REDIS_RESULT_ERROR (those may not send new commands: they are refused),
 * then frees everything.  NULL-safe.  Never from inside a callback of
 * this handle. */
void redis_free(struct redis *r);

/* 1 when commands are accepted (connected, AUTH and SELECT done). */
int redis_ready(const struct redis *r);

/* The most recent failure, for the caller to log: "" when none.  Owned by
 * r, valid until the next call into r or the next callback. */
const char *redis_last_error(const struct redis *r);

/* Commands sent and not yet answered (including those that timed out and
 * whose late reply is still awaited). */
size_t redis_pending(const struct redis *r);

/* Successful connections so far (the first one counts). */
unsigned long redis_connect_count(const struct redis *r);

/* 0 when commands are accepted now; else -1, counted as a failure with
 * the reason in redis_last_error(), as a refused redis_command() would be
 * (for a caller that gathers commands before sending them). */
int redis_accepting(struct redis *r);

/* Adds n to the failure count (redis_error_count) and, with msg, makes
 * "Redis error: msg" the last error; r may be NULL (count only).  For a
 * caller whose one command stood for several (a batch) or whose reply
 * carried an error inside it. */
void redis_count_errors(struct redis *r, unsigned long long n, const char *msg,
                        size_t len);

/* Sends one command; argv/argvlen are borrowed for the call (binary safe).
 * 0: sent, cb will run once.  -1: not sent (not ready, shutting down, out
 * of memory); cb will not run and the failure is counted. */
int redis_command(struct redis *r, int argc, const char **argv,
                  const size_t *argvlen, redis_reply_cb *cb, void *arg);

/* A Lua script registered with a handle: SCRIPT LOADed on every
 * connection.  Owned by the handle, freed by redis_free(). */
struct redis_script;

/* body is copied.  May be called before the connection is up; NULL when
 * out of memory. */
struct redis_script *redis_script_add(struct redis *r, const char *body);

/* Runs a script by EVALSHA (EVAL when its SHA is not known yet, and again
 * by EVAL when Redis answers NOSCRIPT).  argv holds numkeys keys, then
 * the other arguments; all borrowed for the call (copied for a retry).
 * Returns as redis_command(). */
int redis_eval(struct redis *r, struct redis_script *s, int numkeys, int argc,
               const char **argv, const size_t *argvlen, redis_reply_cb *cb,
               void *arg);

/* Commands that failed or timed out since the process started, over all
 * handles (refused while not ready, error reply, connection lost, timed
 * out; a NOSCRIPT answered by the EVAL fallback is no failure).  Any
 * thread. */
unsigned long long redis_error_count(void);

#endif
