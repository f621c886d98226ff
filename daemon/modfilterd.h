/*
 * modfilterd.h - the daemon's modules, one section per file, in the order a
 * comment travels: config -> listeners (http.c) -> routes.c -> request.c ->
 * classifier -> result.c -> queue.c (Redis) -> reply.
 *
 * Threads: main.c owns the process (flags, signals, reload, shutdown);
 * worker.c runs server.workers event loops, each with its own event_base,
 * httpd, clf_scorer and struct queue.  What workers share is read-only or
 * atomic: the current struct state (config + model, swapped on SIGHUP),
 * metrics counters, the log; the per-address connection counts and the
 * spool have their own mutexes.
 */
#ifndef MODFILTERD_H
#define MODFILTERD_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "classifier.h"
#include "httpd.h"
#include "jsonw.h"

#define MODFILTERD_VERSION "0.1.0"
#define WORKERS_MAX 256 /* server.workers at most */

struct evbuffer;
struct event;
struct event_base;
struct http_handoff;
struct queue;
struct sockaddr;

#if defined(__GNUC__)
#define MF_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define MF_PRINTF(a, b)
#endif

/* ---- log.c: stderr in the foreground, syslog otherwise ---------------- */

/* Call once before threads start.  Thread-safe afterwards. */
void log_init(int foreground, int verbose);
int log_verbose(void);
void log_warn(const char *fmt, ...) MF_PRINTF(1, 2); /* + strerror(errno) */
void log_warnx(const char *fmt, ...) MF_PRINTF(1, 2);
/* A condition the operator must fix (syslog LOG_ERR, "error: " in the
 * foreground): one the daemon carries on with, or a start-up failure that
 * ends it. */
void log_err(const char *fmt, ...) MF_PRINTF(1, 2); /* + strerror(errno) */
void log_errx(const char *fmt, ...) MF_PRINTF(1, 2);
void log_info(const char *fmt, ...) MF_PRINTF(1, 2);
/* An info line of msg (len bytes; at most 1023 kept, as syslog's): no
 * printf. */
void log_info_text(const char *msg, size_t len);
/* n bytes of s at buf[at], cut to end by buf[cap]; the new end (for
 * making a line by hand). */
size_t log_cat(char *buf, size_t cap, size_t at, const char *s, size_t n);
void log_debug(const char *fmt, ...) MF_PRINTF(1, 2); /* only with -v */
/* In the foreground, buffer this thread's lines until log_flush (or the
 * buffer is full, or a warning); wake(arg) runs when the buffer stops
 * being empty, to schedule the flush.  No-op for syslog.  -1 on ENOMEM
 * (lines are then written at once). */
int log_buffer_begin(void (*wake)(void *arg), void *arg);
void log_flush(void);      /* write this thread's buffered lines */
void log_buffer_end(void); /* flush and stop buffering (thread exit) */

/* ---- auth.c: bearer tokens and roles ---------------------------------- */

enum auth_role {
    AUTH_NONE = 0,
    AUTH_SUBMIT = 1,
    AUTH_MODERATOR = 2,
    AUTH_AKISMET = 3, /* an Akismet key (akismet.keys); its name is a blog */
};

#define AUTH_TOKEN_MAX 256 /* bytes of a token */
#define AUTH_NAME_MAX 64   /* bytes of a token name, with its NUL */
#define AUTH_KEY_MAX 128   /* bytes of an Akismet key: A-Za-z0-9_- */
#define AUTH_BLOG_MAX 512  /* bytes of an Akismet key's blog URL */

struct auth; /* immutable once built; safe to share between threads */

struct auth *auth_new(void);    /* NULL on allocation failure */
void auth_free(struct auth *a); /* NULL-safe */
/* Add "name:token,name:token" (AUTH_AKISMET: "blog-url:key,...", split at
 * the last colon).  On error fills err ("reason") and returns -1; the table
 * keeps what was added before. */
int auth_add_list(struct auth *a, enum auth_role role, const char *list,
                  char *err, size_t errlen);
/* The same, one pair a line (blank lines and '#' lines skipped); errors
 * read "path:line: reason". */
int auth_add_file(struct auth *a, enum auth_role role, const char *path,
                  char *err, size_t errlen);
unsigned auth_count(const struct auth *a, enum auth_role role);
/* The first token with role (for a command-line client reading the
 * daemon's config), or NULL; borrowed from the table. */
const char *auth_first_token(const struct auth *a, enum auth_role role);
/* The token of an Authorization header value "Bearer TOKEN" ("Bearer"
 * case-insensitive), *len bytes without the spaces around it (0 for
 * "Bearer" alone); NULL for a missing header or another scheme. */
const char *auth_bearer(const char *header, size_t *len);
/* The role of the token in an Authorization header value ("Bearer TOKEN"),
 * AUTH_NONE when missing, malformed or unknown (an Akismet key is no
 * bearer token: unknown here).  Compares against every
 * token in constant time per token.  *name (may be NULL) is set to the
 * token's name, borrowed from the table. */
enum auth_role auth_check(const struct auth *a, const char *header,
                          const char **name);
/* The name (an Akismet key's blog) of token (len bytes) when it has role,
 * else NULL; borrowed from the table.  Constant time per token. */
const char *auth_find(const struct auth *a, enum auth_role role,
                      const char *token, size_t len);

/* ---- config.c: config/modfilterd.conf, table-driven ------------------- */

#define CONFIG_MAX_OVERRIDES 16 /* thresholds.LABEL_review/_reject labels */

struct config_threshold {
    char label[CLF_LABEL_MAX];
    double review, reject; /* < 0: not set, use the default */
};

/* Every key of DESIGN.md.  Strings are malloc'd and owned by the config;
 * never NULL after config_new (empty string = unset). */
struct config {
    char *listen, *socket, *port_file, *user;
    unsigned workers;
    char *redis_url, *redis_password_file, *redis_prefix;
    unsigned redis_timeout_ms;
    unsigned redis_check_interval_s; /* INFO memory again; 0: at connect */
    char *model_path, *model_state_dir;
    unsigned model_snapshot_interval_s; /* 0: only at shutdown */
    unsigned model_trim_stream;         /* 1: XTRIM after snapshots */
    char *submit_tokens, *moderator_tokens;
    char *submit_tokens_file, *moderator_tokens_file;
    double review, reject;
    struct config_threshold overrides[CONFIG_MAX_OVERRIDES];
    unsigned n_overrides;
    char *queue_verdicts, *queue_order;
    unsigned queue_claim_ttl_s, queue_undo_window_s;
    unsigned long max_body, max_headers, max_connections;
    unsigned long max_connections_per_addr; /* 0: no limit */
    unsigned request_timeout_s, idle_timeout_s;
    char *spool_path;
    unsigned long long spool_max_bytes;
    char *akismet_keys, *akismet_keys_file;
    char *akismet_train, *akismet_labels;

    struct config_where *where; /* per key: where it was last set */

    /* Derived by config_check(). */
    unsigned verdict_mask; /* bit (1 << CLF_xxx) per queued verdict */
    int order_urgent;      /* queue.order = urgent */
    char *redis_password;  /* from redis.password_file, or NULL */
    struct auth *auth;     /* owned; also holds akismet.keys */
    int akismet_train_on;  /* akismet.train = yes */
};

struct config_where;

struct config_error {
    char msg[512]; /* "file:line: reason" */
};

struct config *config_new(void);    /* defaults; NULL on allocation failure */
void config_free(struct config *c); /* NULL-safe */
/* Parse an INI file over the current values.  -1 with "file:line: reason"
 * on the first error. */
int config_load_file(struct config *c, const char *path,
                     struct config_error *err);
/* The same from memory; name is used in messages. */
int config_load_buffer(struct config *c, const char *name, const char *buf,
                       size_t len, struct config_error *err);
/* "section.key=value" (split at the first dot and the first '='). */
int config_set_arg(struct config *c, const char *assignment,
                   struct config_error *err);
/* One key by name; origin/line for messages (line 0: no line). */
int config_set(struct config *c, const char *section, const char *key,
               const char *value, const char *origin, unsigned line,
               struct config_error *err);
/* Cross-key checks, then read the *_file keys and build c->auth.  Call
 * once, after every file and --set. */
int config_check(struct config *c, struct config_error *err);
/* config_check's part about thresholds (review <= reject, per label),
 * alone: for tools that use only the thresholds (modfilter score). */
int config_check_thresholds(const struct config *c, struct config_error *err);
/* The labels c names (thresholds.LABEL_*; akismet.labels when Akismet
 * reports train) are m's: -1 with "file:line: key: unknown label ..."
 * otherwise.  A misspelt label would go unused, or teach nothing.  Call
 * with each model loaded. */
int config_check_labels(const struct config *c, const struct clf_model *m,
                        struct config_error *err);
/* Where section.key was last set, for messages about its value:
 * "file:line", "--set" or "default". */
void config_origin(const struct config *c, const char *section, const char *key,
                   char *buf, size_t len);
/* The keys whose values differ between a and b, among those in names
 * (NULL-terminated; "section.key", or "section.*" for a whole section; the
 * table's keys, not thresholds.LABEL_*): "a.b, c.d" into buf, cut to len.
 * How many there are. */
unsigned config_diff(const struct config *a, const struct config *b,
                     const char *const *names, char *buf, size_t len);
/* The values of the keys in names (as config_diff's) from src into dst;
 * -1 when out of memory. */
int config_copy(struct config *dst, const struct config *src,
                const char *const *names);
/* Effective thresholds for a label. */
void config_thresholds(const struct config *c, const char *label,
                       double *review, double *reject);

/* ---- state.c: the running config + model, swapped as one on SIGHUP ---- */

struct state {
    struct config *cfg;      /* owned */
    struct clf_model *model; /* owned, read-only while published */
    unsigned generation;     /* 1 at start, +1 per successful reload */
    char model_id[24]; /* the base model's (model.path's) clf_model_id, also
                          while a snapshot or a learned clone of it is in
                          use: the same on every daemon with that base */
    int refs;          /* atomic */
    int *cfg_refs;     /* states sharing cfg (atomic); state.c's business */
};

/* Takes ownership of cfg and model (also on failure); model_id is the
 * base model's id (model may be its snapshot). */
struct state *state_new(struct config *cfg, struct clf_model *model,
                        const char *model_id, unsigned generation);
/* The current state with a reference held; NULL before the first
 * publish.  Thread-safe. */
struct state *state_acquire(void);
void state_release(struct state *st); /* NULL-safe */
/* Make st current (takes the caller's reference); drops the old one. */
void state_publish(struct state *st);
/* Make a state with the current config, generation and model id and this
 * model current, in one step with respect to state_publish (the learner's
 * publish cannot undo a reload).  Takes ownership of model, also on
 * failure; -1 when nothing is published yet or memory ran out. */
int state_publish_model(struct clf_model *model);

/* ---- learn.c: the training stream -> the model the workers score with --
 *
 * One learner thread reads P training (XREAD BLOCK, its own Redis
 * connection and event_base), applies each event to a private copy of the
 * model and publishes calibrated clones through state_publish_model at
 * most every 150 ms; snapshots go to model.state_dir.  See learn.c. */

enum learn_source {
    LEARN_DECISION = 0,
    LEARN_UNDO,
    LEARN_UPLOAD,
    LEARN_AKISMET,
    LEARN_OTHER,
    LEARN_N_SOURCES
};

/* Start-up, main thread, before the first state_publish: *model is the
 * base model from model.path (owned by the caller); it is replaced by the
 * newest snapshot of that base in model.state_dir if there is one.  The
 * learner keeps a private copy.  -1 (logged) when memory ran out. */
int learn_init(const struct config *cfg, struct clf_model **model);
/* Start the learner thread (after evthread_use_pthreads, with the signals
 * blocked).  cfg is borrowed for the call.  -1 (logged) on failure. */
int learn_start(const struct config *cfg);
/* Stop the thread, write a last snapshot if anything changed, free all.
 * Main thread; safe when never started. */
void learn_stop(void);
/* SIGHUP: publish st (takes the reference) keeping what was learned when
 * st->model is the same base model, else starting over from the new base
 * (or its newest snapshot) and replaying the events after its event id.
 * Main thread. */
void learn_publish(struct state *st);
/* 0 when labels is a non-empty object of label name -> 0/1 (or false/
 * true), each a label of m unless m is NULL; else -1 with the reason in
 * why. */
int learn_labels_check(json_t *labels, const struct clf_model *m, char *why,
                       size_t len);
/* 0 when name is one of m's labels; else -1 with "unknown label ... (the
 * model's: ...)" in why. */
int learn_label_known(const struct clf_model *m, const char *name, char *why,
                      size_t len);
/* 1 with "spam: 12 of 50 examples" in buf when head i answers unsure
 * whatever the comment (too few examples, or a class without any). */
int learn_unsure_reason(const struct clf_model *m, unsigned i, char *buf,
                        size_t len);
/* modfilter_training_* and modfilter_label_unsure (any thread). */
void learn_metrics_render(struct evbuffer *out, const struct state *st);
/* /v1/stats: {"spam": {"examples": {"0": n, "1": n}, "unsure_reason"}},
 * and {"events": {source: n}, "skipped", "last_event_id", "lag_seconds"}.
 * New references; NULL on ENOMEM.  Any thread. */
json_t *learn_stats_labels(const struct state *st);
json_t *learn_stats_training(void);

/* ---- request.c: JSON request bodies ----------------------------------- */

#define REQUEST_ID_MAX 128

struct request_comment {
    json_t *root;   /* owned, or NULL: the strings below live in it... */
    char *arena;    /* ...or in this (owned, or NULL) */
    const char *id; /* NULL when absent */
    const char *text;
    size_t text_len;
    const char *author_name, *author_email, *author_url, *author_ip;
    const char *post, *lang;
};

struct request_error {
    int status;       /* HTTP status */
    const char *code; /* "invalid_json", "invalid_request" */
    char msg[256];
};

/* Parse and validate a POST /v1/comments or /v1/score body (UTF-8 JSON;
 * duplicate keys, unknown fields, wrong types rejected).  On success fills
 * out (release with request_comment_release) and returns 0. */
int request_parse_comment(const char *body, size_t len,
                          struct request_comment *out,
                          struct request_error *err);
void request_comment_release(struct request_comment *rc);
/* The two ways request_parse_comment reads a body, for tests: the common
 * shape without jansson (-1, nothing filled, for anything else: no error
 * is set), and jansson (every body, every error). */
int request_parse_fast(const char *body, size_t len,
                       struct request_comment *out);
int request_parse_jansson(const char *body, size_t len,
                          struct request_comment *out,
                          struct request_error *err);
/* The reason of a jansson parse error, in words a client understands. */
const char *request_json_reason(const json_error_t *e);
/* The same with its place, "line L, column C: reason", into buf (len
 * bytes): every body's JSON error is worded so.  Returns buf. */
const char *request_json_error(const json_error_t *e, char *buf, size_t len);
/* 1 when s is a valid comment id: 1-128 of [A-Za-z0-9._:-]. */
int request_id_valid(const char *s, size_t len);
/* A fresh unique id (ms time + 64 random bits) into buf (>= 40 bytes). */
void request_make_id(char *buf, size_t len);

/* ---- result.c: scores -> verdict -> reply and stored record ----------- */

enum clf_verdict result_verdict(const struct state *st,
                                const struct clf_result *r);
/* Where result_write_record put the text a reply repeats: its "scores"
 * and "unsure" members at w->buf[scores_at..+scores_len), the value of
 * its "reasons" member at w->buf[reasons_at..+reasons_len). */
struct result_spans {
    size_t scores_at, scores_len, reasons_at, reasons_len;
};
/* That text, kept for the reply (borrowed); NULL: written from r. */
struct result_shared {
    const char *scores, *reasons;
    size_t scores_len, reasons_len;
};
/* The reply of DESIGN.md into w ("spooled": true only when spooled).
 * shared: NULL, or text of the record written for the same result. */
void result_write_reply(struct jsonw *w, const char *id,
                        const struct clf_result *r, enum clf_verdict v,
                        int queued, int spooled,
                        const struct result_shared *shared);
/* The record stored in Redis into w.  extra: NULL, or an object whose
 * members (keys other than the record's own) are added.  spans: where
 * the text a reply may reuse lies (result_write_reply). */
void result_write_record(struct jsonw *w, const char *id,
                         const struct request_comment *rc,
                         const struct clf_result *r, enum clf_verdict v,
                         const struct state *st, long long received_ms,
                         const json_t *extra, struct result_spans *spans);
/* v as compact JSON text (jansson's dump), as one value into w. */
void result_write_json(struct jsonw *w, const json_t *v);
/* The reply for an id already stored: the stored record's fields with
 * queued true.  NULL when the record is not a JSON object. */
json_t *result_reply_from_stored(const char *stored, size_t len);
/* RFC 3339 UTC with milliseconds into buf (>= 32 bytes). */
void result_rfc3339(long long ms, char *buf, size_t len);

/* ---- metrics.c: process-wide counters, Prometheus text ---------------- */

enum metrics_route {
    METRICS_ROUTE_COMMENTS = 0,
    METRICS_ROUTE_SCORE,
    METRICS_ROUTE_HEALTHZ,
    METRICS_ROUTE_READYZ,
    METRICS_ROUTE_METRICS,
    METRICS_ROUTE_MODERATOR,
    METRICS_ROUTE_AKISMET,
    METRICS_ROUTE_OTHER,
    METRICS_N_ROUTES
};

void metrics_init(void); /* records the start time; call once */
void metrics_request(enum metrics_route route, int status, double seconds);
void metrics_verdict(enum clf_verdict v);
/* Open connections: worker's and the whole daemon's. */
void metrics_connections_add(unsigned worker, long delta);
long metrics_connections(void);
long metrics_worker_connections(unsigned worker);
enum metrics_refusal {
    METRICS_REFUSED_MAX_CONNECTIONS = 0, /* limits.max_connections */
    METRICS_REFUSED_PER_ADDR,            /* limits.max_connections_per_addr */
    METRICS_N_REFUSALS
};
/* A connection closed at accept; returns the new total for that reason. */
unsigned long long metrics_connection_refused(enum metrics_refusal why);
/* Whether Redis's maxmemory-policy may evict queued items, as its last
 * check found (worker.c): 1, 0, or -1 unknown (no check yet, or it
 * failed): modfilter_redis_evicting, omitted while unknown, and a /readyz
 * warning while 1.  Any thread. */
void metrics_redis_evicting_set(int v);
int metrics_redis_evicting(void);
/* Append the exposition text.  queue_len < 0: unknown (omitted);
 * oldest_ms: received_ms of the oldest item, < 0 when none. */
void metrics_render(struct evbuffer *out, const struct state *st,
                    long long queue_len, long long oldest_ms,
                    unsigned redis_connected, unsigned workers);

/* ---- addrlimit.c: open connections per client address ----------------
 *
 * limits.max_connections_per_addr: one table for the process, shared by
 * every worker (a mutex around a small hash table).  An address's entry
 * exists while it has a counted connection open. */

struct addrlimit;

struct addrlimit_key {
    int family; /* AF_INET (also for ::ffff:a.b.c.d) or AF_INET6 */
    unsigned char addr[16];
};

enum addrlimit_result {
    ADDRLIMIT_REFUSED = 0,   /* the address is at the limit */
    ADDRLIMIT_COUNTED = 1,   /* counted: call addrlimit_release at close */
    ADDRLIMIT_UNCOUNTED = 2, /* let through, not counted (limit 0, ENOMEM) */
};

/* max_per_addr 0: no limit.  NULL on allocation failure. */
struct addrlimit *addrlimit_new(unsigned long max_per_addr);
void addrlimit_free(struct addrlimit *t); /* NULL-safe */
/* The key of a TCP peer; -1 for a Unix-socket (or unknown) peer, which is
 * never counted. */
int addrlimit_key_of(const struct sockaddr *sa, struct addrlimit_key *key);
/* One more connection from key.  Any thread.  t may be NULL (uncounted). */
enum addrlimit_result addrlimit_acquire(struct addrlimit *t,
                                        const struct addrlimit_key *key);
/* One connection counted by addrlimit_acquire closed.  Any thread. */
void addrlimit_release(struct addrlimit *t, const struct addrlimit_key *key);
/* For tests: connections counted for key; entries in the table. */
unsigned long addrlimit_count(struct addrlimit *t,
                              const struct addrlimit_key *key);
unsigned long addrlimit_entries(struct addrlimit *t);

/* ---- http.c: listeners, connection limits, the worker's httpd --------
 *
 * The HTTP server itself is httpd.c (httpd.h); http.c opens the listening
 * sockets and holds the daemon's policy on connections: limits.* for the
 * worker's httpd, limits.max_connections and limits.max_connections_per_addr
 * (addrlimit.c) at accept, metrics. */

struct worker;

struct addrinfo;
/* server.listen's HOST:PORT ([v6]:port; empty host: every address) as
 * getaddrinfo resolves it for listening; free *ai with freeaddrinfo.  -1
 * with the reason in msg.  http_listen_tcp binds its first address; -t
 * only resolves (a port taken now may be free at the start). */
int http_resolve_tcp(const char *hostport, struct addrinfo **ai, char *msg,
                     size_t len);
/* Open a listening socket: "host:port" (TCP; *port_out gets the port) or
 * a Unix socket path.  -1 with a logged reason. */
int http_listen_tcp(const char *hostport, int *port_out);
int http_listen_unix(const char *path);
/* Set up w->httpd on w->base with the limits of cfg, accepting on dup()s
 * of fds.  -1 on failure (logged). */
int http_worker_init(struct worker *w, const struct config *cfg, const int *fds,
                     unsigned n_fds);
/* Every worker accepts on the shared listeners and places each new
 * connection on the worker with the fewest (its own on a tie): all[0..n)
 * are the daemon's workers, linked before any starts. */
void http_workers_link(struct worker *const *all, unsigned n);
/* Stop accepting (the listeners of this worker close). */
void http_worker_stop_accepting(struct worker *w);
/* Free the httpd and every connection. */
void http_worker_free(struct worker *w);
/* 1 for a loopback (127.0.0.0/8, ::1, ::ffff:127.x) or Unix-socket peer. */
int http_addr_local(const struct sockaddr *sa);

/* ---- routes.c: the HTTP API ------------------------------------------- */

/* httpd's request hook; arg is the struct worker. */
void routes_dispatch(struct http_request *req, void *arg);

/* One request, from dispatch to its one reply.  A handler replies exactly
 * once (routes_reply, or through routes_comment's callback), or hands the
 * request to a struct route_pending while it waits on Redis. */
struct route_ctx {
    struct worker *w;
    struct http_request *req; /* NULL once the client went away */
    struct http_conn *c;      /* NULL once the connection closed */
    struct state *st;         /* a reference, or NULL */
    enum metrics_route route;
    double t0;
    const char *verdict; /* for the log line, or NULL */
    char id[REQUEST_ID_MAX + 1];
};

/* The reply: text (NUL-terminated; NULL for none) with its Content-Type.
 * Headers may be added with http_reply_header(ctx->req, ...) first (when
 * ctx->req is not NULL).  Logs, counts, releases ctx->st. */
void routes_reply(struct route_ctx *ctx, int status, const char *ctype,
                  const char *text);
/* The JSON error reply {"error": {"code", "message"}}, with Retry-After on
 * 503 and WWW-Authenticate on 401; otherwise as routes_reply. */
void routes_error(struct route_ctx *ctx, int status, const char *code,
                  const char *fmt, ...) MF_PRINTF(4, 5);
/* The Allow header value of methods (HTTP_METHOD_*) into buf: "GET, POST,
 * HEAD" in that order, HEAD wherever GET. */
void routes_allow(int methods, char *buf, size_t len);

/* What routes_comment found, for the caller's reply. */
enum routes_outcome {
    ROUTES_SCORED,      /* answered, not stored (not asked, or a verdict
                           outside queue.verdicts) */
    ROUTES_QUEUED,      /* Redis acknowledged the record */
    ROUTES_STORED,      /* the id was stored before: reply is that result */
    ROUTES_UNAVAILABLE, /* Redis could not take it: answer 503 */
    ROUTES_FAILED,      /* scoring failed or out of memory: answer 500 */
};

struct routes_scored {
    enum routes_outcome outcome;
    enum clf_verdict verdict;
    /* SCORED, QUEUED: the scores (borrowed); spooled: queued in the spool
     * (Redis could not take it yet). */
    const struct clf_result *result;
    int spooled;
    /* QUEUED: text of the record the reply repeats (borrowed), or NULL */
    const struct result_shared *shared;
    const json_t *stored; /* STORED: the reply read back (borrowed) */
    const char *message;  /* UNAVAILABLE, FAILED: why (borrowed) */
};

typedef void routes_comment_cb(struct route_ctx *ctx,
                               const struct routes_scored *s);

struct routes_comment_opts {
    int store; /* queue when the verdict is in queue.verdicts */
    enum clf_verdict min_verdict, max_verdict; /* clamp (test triggers) */
    const json_t *extra;   /* NULL, or keys added to the stored record */
    routes_comment_cb *cb; /* replies, once, on the request's worker */
};

/* The path of POST /v1/comments: score rc (borrowed for the call), decide,
 * queue it when o->store and the verdict is in queue.verdicts, then call
 * o->cb once (maybe later, when Redis answers).  The id is rc->id or a new
 * one, in ctx->id. */
void routes_comment(struct route_ctx *ctx, const struct request_comment *rc,
                    const struct routes_comment_opts *o);

/* A request waiting on Redis.  routes_pending_new takes ctx's request and
 * state reference (NULL on ENOMEM, ctx untouched); when Redis answers,
 * routes_pending_ctx gives the request to reply to (its req is NULL when
 * the client went away), then routes_pending_free. */
struct route_pending;
struct route_pending *routes_pending_new(struct route_ctx *ctx);
struct route_ctx *routes_pending_ctx(struct route_pending *p);
void routes_pending_free(struct route_pending *p);
/* Free the route_pendings a worker keeps for reuse (w->spare). */
void routes_worker_release(struct worker *w);

/* ---- train.c: POST /v1/train ------------------------------------------ */

/* Answer a moderator's upload (the token was checked): one "upload"
 * training event per valid example, the reply once Redis took them. */
void train_handle(struct route_ctx *ctx);
/* The examples of a POST /v1/train body (len bytes, not NUL-terminated):
 * one JSON object, or with ndjson one a line (blank lines skipped), each
 * {"text", "labels"[, "lang", "id"]} appended to the array examples; a
 * label must be one of m's (unless m is NULL: online learning never adds
 * a head).  A JSON Lines line that is not such an example goes to note
 * (its number from 1, why) and is skipped.  Returns 0, or -1 with the
 * reason in why when a plain JSON body is not one. */
typedef void train_note_fn(void *arg, size_t line, const char *why);
int train_parse_body(const char *body, size_t len, int ndjson,
                     const struct clf_model *m, json_t *examples,
                     train_note_fn *note, void *arg, char *why, size_t whylen);

/* ---- form.c: application/x-www-form-urlencoded bodies ------------------ */

#define FORM_MAX_FIELDS 1024

struct form_field {
    char *name, *value; /* valid UTF-8 without NUL, NUL-terminated */
    size_t name_len, value_len;
};

struct form {
    struct form_field *fields; /* owned; in body order, repeats kept */
    unsigned n;
    const char *charset; /* how the bytes were read (static string) */
    unsigned replaced;   /* bytes that became U+FFFD */
    char *arena;         /* owned: every name and value */
};

/* Parse a form body ('+' and %XX decoded; a bad escape stays literal).
 * Bytes are read in the charset of the last blog_charset field, else of
 * charset_hint (NULL: UTF-8): ISO-8859-1 and windows-1252 are converted,
 * anything else is read as UTF-8; invalid UTF-8 and NUL become U+FFFD.
 * -1 with a reason in err when there are more than FORM_MAX_FIELDS fields
 * or memory ran out.  Pure; any thread. */
int form_parse(const char *body, size_t len, const char *charset_hint,
               struct form *out, char *err, size_t errlen);
/* The value of the last field called name (repeats: the last wins), NULL
 * when absent; *len (may be NULL) gets its length.  Borrowed from f. */
const char *form_get(const struct form *f, const char *name, size_t *len);
void form_release(struct form *f); /* NULL-safe, idempotent */

/* ---- akismet.c: the Akismet API 1.1 (/1.1/..., /1.2/usage-limit) ------ */

enum akismet_trigger {
    AKISMET_TRIGGER_NONE,
    AKISMET_TRIGGER_SPAM, /* a test author or e-mail: always "true" */
    AKISMET_TRIGGER_HAM,  /* user_role=administrator: always "false" */
};
/* The hosted service's documented test triggers in a request. */
enum akismet_trigger akismet_trigger(const struct form *f);
/* The fields to keep in a record (all but the key).  New reference. */
json_t *akismet_fields_json(const struct form *f);
/* Answer a request under /1.1/ or /1.2/ (keys are configured). */
void akismet_handle(struct route_ctx *ctx, const char *path);

/* ---- moderation.c: the moderator routes -------------------------------- */

/* Answer a moderator route (/v1/queue..., /v1/history, /v1/stats); the
 * moderator token was checked.  Replies once, maybe after Redis answers. */
void moderation_handle(struct route_ctx *ctx, const char *path);
/* The route a path under /v1/queue/ is, as its pattern
 * ("/v1/queue/{id}/decision"), with the methods it takes in *methods
 * (HTTP_METHOD_*); NULL when it is none. */
const char *moderation_route(const char *path, int *methods);
/* Parse one decision object {"decision", "labels"?} (an "id" member is
 * allowed, for bulk entries).  m (may be NULL) names the known labels.
 * *labels gets the labels as canonical JSON text (malloc'd; caller frees)
 * or NULL when omitted.  -1 with a message in err.  Pure. */
int moderation_parse_decision(const json_t *d, const struct clf_model *m,
                              int *reject, char **labels, char *err,
                              size_t errlen);
/* Append the moderation counters (decisions, undos, agreement). */
void moderation_metrics_render(struct evbuffer *out);

/* ---- spool.c: comments Redis cannot take, kept on disk until it can -----
 *
 * An append-only log in spool.path (segments of checksummed records and a
 * checkpoint file; the format and its crash behaviour are described at the
 * top of spool.c, the operator's view in README.md).  One struct spool per
 * process, shared by every worker: appends go to one writer thread that
 * makes each batch durable (written and fdatasync'd) before it answers
 * (spool_append blocks; a worker's spool_client answers on its loop).  One
 * reader, the drainer thread (spool_drain_start: its own event_base and
 * Redis connection), hands the records to Redis in order with the
 * idempotent queue_submit and only then advances the checkpoint, so a
 * record is sent at least once and queued exactly once. */

#define SPOOL_ID_MAX 512             /* = QUEUE_ID_MAX */
#define SPOOL_RECORD_MAX (64u << 20) /* bytes of a record's JSON */

struct spool;

/* One spooled comment: what queue_submit takes. */
struct spool_record {
    const char *id;   /* 1..SPOOL_ID_MAX bytes, NUL-terminated */
    const char *json; /* json_len bytes: the record stored in Redis */
    size_t json_len;
    long long received_ms;
    double urgency;
};

struct spool_stats {
    unsigned long long records, bytes; /* backlog: not yet in Redis */
    unsigned long long disk_bytes;     /* segment files (vs max_bytes) */
    unsigned long long appended, drained, skipped, failed; /* counters */
    unsigned long long syncs; /* fdatasyncs of appends (group commits) */
};

/* An append's outcome: err 0 when the record is durable, else an errno
 * (ENOSPC: spool.max_bytes would be passed; else the I/O error, logged). */
typedef void spool_done_cb(int err, void *arg);

/* Open (create with mode 0700 if missing) the spool directory dir, bounded
 * by max_bytes of segment files, and lock it (flock, kept across fork);
 * reads the checkpoint and counts the backlog (damaged records are logged
 * and skipped).  NULL with a reason in err when the directory cannot be
 * created, read or written, or another process holds it.  Not
 * thread-safe: before the workers start. */
struct spool *spool_open(const char *dir, unsigned long long max_bytes,
                         char *err, size_t errlen);
/* modfilterd -t: read the spool in dir without locking or writing
 * anything: out gets the backlog (records, bytes), the segments' size
 * (disk_bytes) and the damaged regions passed (skipped; each is logged as
 * a warning, as the drainer would).  -1 with a reason in err when dir or
 * a segment cannot be opened or read. */
int spool_check(const char *dir, struct spool_stats *out, char *err,
                size_t errlen);
/* Stops the drainer, closes the files.  NULL-safe; after the workers. */
void spool_close(struct spool *s);
/* Append r (borrowed) and make it durable.  0 once it is on disk; -1 with
 * errno ENOSPC when spool.max_bytes would be passed, EINVAL for a bad id,
 * else the I/O error (logged).  Blocks until the fdatasync that covers it
 * returned: not for an event-loop thread (use a spool_client). */
int spool_append(struct spool *s, const struct spool_record *r);

/* Appends from an event loop (a worker), answered on that loop.  Every
 * append, from any thread, goes to one writer thread (started on first
 * use) that writes whatever is queued and makes it durable with one
 * fdatasync (group commit); the loop never waits for the disk. */
struct spool_client;
/* base must have thread support (evthread_use_pthreads before it was
 * made).  NULL on allocation failure.  The client's thread. */
struct spool_client *spool_client_new(struct spool *s, struct event_base *base);
/* Queue r (copied) for appending; cb(err, arg) runs once, on base's
 * loop, after the fdatasync that covers the record returned (or the
 * append failed).  -1 with errno (EINVAL: a bad record; ENOMEM; the
 * writer cannot start) and cb never runs.  The client's thread. */
int spool_client_append(struct spool_client *c, const struct spool_record *r,
                        spool_done_cb *cb, void *arg);
/* Wait for the client's appends in flight, run their callbacks in the
 * calling thread (the loop need not run), free c.  NULL-safe.  The
 * client's thread, or any thread once base's loop has stopped; before the
 * spool is closed. */
void spool_client_free(struct spool_client *c);
/* 1 when s is not NULL, has room for a comment and its last append did
 * not fail with an I/O error.  Any thread. */
int spool_can_take(const struct spool *s);
void spool_stats(const struct spool *s, struct spool_stats *out); /* any */
/* 1 when a record of id is in the backlog: appended (durable, so its
 * client may have been told "queued") or found at open, and not yet
 * acknowledged by Redis to the drainer; 0 otherwise, or for a NULL s.
 * By a 64-bit hash of the id, so a different id matches about once in
 * 2^64.  Any thread (a mutex held for one look-up). */
int spool_holds(struct spool *s, const char *id);
/* modfilter_spool_* (NULL s: zeros).  Any thread. */
void spool_metrics_render(struct evbuffer *out, const struct spool *s);
/* Start the drainer thread with its own Redis connection (cfg borrowed
 * for the call).  0 also when s is NULL; -1 (logged) on failure. */
int spool_drain_start(struct spool *s, const struct config *cfg);
/* Stop and join it; what is in flight is sent again next time. */
void spool_drain_stop(struct spool *s);

/* Reading, one reader at a time (the drainer; tests).  Fields are
 * spool.c's business. */
struct spool_cursor {
    unsigned long long seq, off;       /* the next record's place */
    unsigned long long records, bytes; /* read since the last commit */
    unsigned long long skipped;        /* damaged regions passed */
    int fd, at_end;
    unsigned char *buf; /* the last record read (owned) */
    size_t cap;
    char id[SPOOL_ID_MAX + 1];
};
/* A cursor at the checkpoint. */
void spool_cursor_init(struct spool *s, struct spool_cursor *c);
void spool_cursor_release(struct spool_cursor *c); /* NULL-safe */
/* The next record: 1 with *out filled (borrowed from c until the next
 * call), 0 when there is none yet, -1 on an I/O error (logged).  Damaged
 * or torn records are logged and skipped. */
int spool_read(struct spool *s, struct spool_cursor *c,
               struct spool_record *out);
/* Everything c has read is in Redis: write the checkpoint (atomically),
 * delete drained segments, lower the backlog, and take the n ids (hashes
 * as spool_holds keeps them, one per record read) out of it.  When that
 * leaves no published record unread, the backlog is empty: what it still
 * counts were records damaged on disk after they were acknowledged, which
 * the reader skipped; they are dropped (and said so), so their ids do not
 * answer 503 until a restart.  -1 (logged) when the checkpoint cannot be
 * written. */
int spool_commit(struct spool *s, struct spool_cursor *c, const uint64_t *ids,
                 size_t n);
/* The hash of an id, as spool_commit takes it. */
uint64_t spool_id_hash(const char *id, size_t len);
/* The bytes of r as stored (frame + payload) into *out (malloc'd; caller
 * frees); 0 for a bad record or ENOMEM.  For tests and fuzz seeds. */
size_t spool_encode(const struct spool_record *r, unsigned char **out);

/* ---- worker.c: event-loop threads ------------------------------------- */

struct worker {
    unsigned index;
    struct event_base *base;
    struct httpd *httpd;
    struct clf_scorer *scorer;
    struct queue *queue;
    struct spool *spool; /* borrowed (main.c); NULL when disabled */
    struct spool_client *spool_client; /* owned; appends (spool set) */
    struct event *stop_ev;
    struct event *grace_ev;
    struct event *log_ev;        /* flushes the request lines of a loop pass */
    unsigned long pending;       /* requests waiting on Redis */
    struct route_pending *spare; /* freed ones, for reuse (routes.c) */
    unsigned n_spare;
    int stopping;
    long long stop_deadline_ms;
    unsigned request_timeout_s;
    unsigned long max_body;
    unsigned long max_connections;
    struct addrlimit *addrlimit; /* borrowed (main.c); NULL: no limit */
    unsigned long max_connections_per_addr;
    unsigned redis_timeout_ms;
    /* Worker 0's look at Redis every WORKER_WATCH_MS (worker.c). */
    struct event *watch_ev;
    unsigned check_interval_s;  /* redis.check_interval_s */
    long long memory_due_ms;    /* the next INFO memory, monotonic */
    int memory_asking, probing; /* INFO memory, a write probe in flight */
    char memory_said[48];       /* what the log last said of the policy */
    int refusal_logged;         /* the refusal last logged, -1 none */
    struct jsonw json;          /* replies and records, one at a time */
    /* Where new connections go (http.c): every worker of the daemon, and
     * the connections another worker placed here, not yet adopted. */
    struct worker *const *peers;
    unsigned n_peers;
    struct event *adopt_ev;       /* adopts what handoff holds */
    pthread_mutex_t handoff_mu;   /* set up with adopt_ev */
    struct http_handoff *handoff; /* under handoff_mu */
    unsigned long incoming;       /* handed here, not adopted (atomic) */
    int started;
    int counted;     /* in worker_total */
    int redis_ready; /* this worker's Redis connection is ready */
    pthread_t thread;
};

/* Everything a worker needs, built in the calling thread so errors stop
 * start-up.  fds are borrowed (dup'd). */
struct worker *worker_new(unsigned index, const struct config *cfg,
                          const int *fds, unsigned n_fds);
int worker_start(struct worker *w);
/* A Redis queue on base with cfg's redis.* settings (workers, the spool's
 * drainer); NULL on error. */
struct queue *worker_queue_new(struct event_base *base,
                               const struct config *cfg);
/* From any thread: stop accepting, finish in-flight requests (bounded),
 * then leave the loop. */
void worker_stop(struct worker *w);
void worker_join(struct worker *w);
void worker_free(struct worker *w); /* NULL-safe; after join */
/* 1 when every worker's Redis connection is ready; counts in up/total
 * (either may be NULL).  Any thread. */
int worker_redis_ready(unsigned *up, unsigned *total);
/* Called by routes/http when pending or writing drop, to finish a stop. */
void worker_maybe_done(struct worker *w);
/* A comment Redis did not take (timed out, or an error: w's queue has
 * its text): logged at most once per WORKER_UNQUEUED_LOG_S for the whole
 * daemon, with how many more there were meanwhile, so that a Redis that
 * refuses writes (full under noeviction, a read-only replica...) is named
 * in the log and not only counted.  Any worker thread. */
void worker_unqueued(struct worker *w, int timed_out);

/* ---- util.c ----------------------------------------------------------- */

long long util_now_ms(void); /* wall clock, ms since the epoch */
double util_monotonic(void); /* seconds, monotonic clock */
/* Read a whole small file (<= max bytes) into a malloc'd NUL-terminated
 * buffer; NULL with errno set on failure. */
char *util_read_file(const char *path, size_t max, size_t *len);
/* Call fn for each line of a small file but blank and '#' lines (line
 * without its newline or CR, not NUL-terminated).  -1 when the file cannot
 * be read or fn fails ("path:line: reason" in err). */
int util_each_line(const char *path, size_t max,
                   int (*fn)(void *arg, const char *line, size_t len, char *err,
                             size_t errlen),
                   void *arg, char *err, size_t errlen);
/* The length of the valid UTF-8 sequence (RFC 3629: no overlong form, no
 * surrogate, nothing above U+10FFFF) at p (n > 0 bytes, p[0] >= 0x80), or
 * 0 when there is none. */
size_t util_utf8_len(const unsigned char *p, size_t n);
/* 1 when a and b hold the same bytes; time depends on a_len only. */
int util_ct_equal(const char *a, size_t a_len, const char *b, size_t b_len);

#endif
