/*
 * config.c - config/modfilterd.conf.  One table drives defaults, parsing,
 * ranges and messages; every error names where the value came from
 * ("file:line: key: reason", or "--set: key: reason").
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "modfilterd.h"
#include "queue.h"

enum config_type {
    CONFIG_STR,    /* char * */
    CONFIG_UINT,   /* unsigned */
    CONFIG_ULONG,  /* unsigned long */
    CONFIG_ULL,    /* unsigned long long */
    CONFIG_DOUBLE, /* double */
};

struct config_key {
    const char *section, *key;
    enum config_type type;
    size_t offset;
    const char *def;
    double min, max;     /* numbers */
    const char *choices; /* strings: "a|b" or NULL for free text */
};

#define OFF(f) offsetof(struct config, f)

/* Keep in the order of config/modfilterd.conf. */
static const struct config_key config_keys[] = {
    {"server", "listen", CONFIG_STR, OFF(listen), "127.0.0.1:8080", 0, 0, NULL},
    {"server", "socket", CONFIG_STR, OFF(socket), "", 0, 0, NULL},
    {"server", "port_file", CONFIG_STR, OFF(port_file), "", 0, 0, NULL},
    {"server", "workers", CONFIG_UINT, OFF(workers), "0", 0, 256, NULL},
    {"server", "user", CONFIG_STR, OFF(user), "", 0, 0, NULL},
    {"redis", "url", CONFIG_STR, OFF(redis_url), "redis://127.0.0.1:6379/0", 0,
     0, NULL},
    {"redis", "password_file", CONFIG_STR, OFF(redis_password_file), "", 0, 0,
     NULL},
    {"redis", "prefix", CONFIG_STR, OFF(redis_prefix), "modfilter:", 0, 0,
     NULL},
    {"redis", "timeout_ms", CONFIG_UINT, OFF(redis_timeout_ms), "1000", 10,
     60000, NULL},
    {"redis", "check_interval_s", CONFIG_UINT, OFF(redis_check_interval_s),
     "60", 0, 86400, NULL},
    {"model", "path", CONFIG_STR, OFF(model_path), "models/default.mfm", 0, 0,
     NULL},
    {"model", "state_dir", CONFIG_STR, OFF(model_state_dir), "run/state", 0, 0,
     NULL},
    {"model", "snapshot_interval_s", CONFIG_UINT,
     OFF(model_snapshot_interval_s), "60", 0, 86400, NULL},
    {"model", "trim_stream", CONFIG_UINT, OFF(model_trim_stream), "0", 0, 1,
     NULL},
    {"auth", "submit_tokens", CONFIG_STR, OFF(submit_tokens), "", 0, 0, NULL},
    {"auth", "moderator_tokens", CONFIG_STR, OFF(moderator_tokens), "", 0, 0,
     NULL},
    {"auth", "submit_tokens_file", CONFIG_STR, OFF(submit_tokens_file), "", 0,
     0, NULL},
    {"auth", "moderator_tokens_file", CONFIG_STR, OFF(moderator_tokens_file),
     "", 0, 0, NULL},
    {"thresholds", "review", CONFIG_DOUBLE, OFF(review), "0.5", 0, 1, NULL},
    {"thresholds", "reject", CONFIG_DOUBLE, OFF(reject), "0.95", 0, 1, NULL},
    {"queue", "verdicts", CONFIG_STR, OFF(queue_verdicts), "review,reject", 0,
     0, NULL},
    {"queue", "order", CONFIG_STR, OFF(queue_order), "oldest", 0, 0,
     "oldest|urgent"},
    {"queue", "claim_ttl_s", CONFIG_UINT, OFF(queue_claim_ttl_s), "300", 1,
     86400, NULL},
    {"queue", "undo_window_s", CONFIG_UINT, OFF(queue_undo_window_s), "900", 0,
     604800, NULL},
    {"limits", "max_body", CONFIG_ULONG, OFF(max_body), "65536", 256, 16777216,
     NULL},
    {"limits", "max_headers", CONFIG_ULONG, OFF(max_headers), "8192", 1024,
     1048576, NULL},
    {"limits", "max_connections", CONFIG_ULONG, OFF(max_connections), "4096", 1,
     1000000, NULL},
    {"limits", "max_connections_per_addr", CONFIG_ULONG,
     OFF(max_connections_per_addr), "256", 0, 1000000, NULL},
    {"limits", "request_timeout_s", CONFIG_UINT, OFF(request_timeout_s), "10",
     1, 3600, NULL},
    {"limits", "idle_timeout_s", CONFIG_UINT, OFF(idle_timeout_s), "60", 1,
     86400, NULL},
    {"spool", "path", CONFIG_STR, OFF(spool_path), "run/spool", 0, 0, NULL},
    {"spool", "max_bytes", CONFIG_ULL, OFF(spool_max_bytes), "1073741824", 0,
     1125899906842624.0, NULL},
    {"akismet", "keys", CONFIG_STR, OFF(akismet_keys), "", 0, 0, NULL},
    {"akismet", "keys_file", CONFIG_STR, OFF(akismet_keys_file), "", 0, 0,
     NULL},
    {"akismet", "train", CONFIG_STR, OFF(akismet_train), "yes", 0, 0, "yes|no"},
    {"akismet", "labels", CONFIG_STR, OFF(akismet_labels), "spam", 0, 0, NULL},
};

#define CONFIG_N_KEYS (sizeof(config_keys) / sizeof(config_keys[0]))
/* where[] slots: the table's keys, then one per threshold override. */
#define CONFIG_N_WHERE (CONFIG_N_KEYS + 2 * CONFIG_MAX_OVERRIDES)

struct config_where {
    char origin[200];
    unsigned line;
};

static void
config_note(struct config *c, size_t slot, const char *origin, unsigned line)
{
    snprintf(c->where[slot].origin, sizeof(c->where[slot].origin), "%s",
             origin);
    c->where[slot].line = line;
}

static void config_fail(struct config_error *err, const char *origin,
                        unsigned line, const char *section, const char *key,
                        const char *fmt, ...) MF_PRINTF(6, 7);

static void
config_fail(struct config_error *err, const char *origin, unsigned line,
            const char *section, const char *key, const char *fmt, ...)
{
    char reason[300];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (err == NULL)
        return;
    if (line > 0)
        snprintf(err->msg, sizeof(err->msg), "%s:%u: %s%s%s%s%s", origin, line,
                 section ? section : "", section ? "." : "", key ? key : "",
                 key ? ": " : "", reason);
    else
        snprintf(err->msg, sizeof(err->msg), "%s: %s%s%s%s%s", origin,
                 section ? section : "", section ? "." : "", key ? key : "",
                 key ? ": " : "", reason);
}

/* Where a table key was last set, for cross-key messages. */
static void config_fail_at(struct config_error *err, const struct config *c,
                           const char *section, const char *key,
                           const char *fmt, ...) MF_PRINTF(5, 6);

static const struct config_where *
config_where_of(const struct config *c, const char *section, const char *key)
{
    size_t i;

    for (i = 0; i < CONFIG_N_KEYS; i++)
        if (!strcmp(config_keys[i].section, section) &&
            !strcmp(config_keys[i].key, key) && c->where[i].origin[0])
            return &c->where[i];
    return NULL;
}

static void
config_fail_at(struct config_error *err, const struct config *c,
               const char *section, const char *key, const char *fmt, ...)
{
    const struct config_where *w = config_where_of(c, section, key);
    char reason[300];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    config_fail(err, w != NULL ? w->origin : "default", w != NULL ? w->line : 0,
                section, key, "%s", reason);
}

void
config_origin(const struct config *c, const char *section, const char *key,
              char *buf, size_t len)
{
    const struct config_where *w = config_where_of(c, section, key);

    if (w == NULL)
        snprintf(buf, len, "default");
    else if (w->line > 0)
        snprintf(buf, len, "%s:%u", w->origin, w->line);
    else
        snprintf(buf, len, "%s", w->origin);
}

/* Whether names (NULL-terminated: "section.key", or "section.*" for the
 * whole section) name k. */
static int
config_key_listed(const struct config_key *k, const char *const *names)
{
    size_t n = strlen(k->section);

    for (; *names != NULL; names++)
        if (!strncmp(*names, k->section, n) && (*names)[n] == '.' &&
            (!strcmp(*names + n + 1, "*") || !strcmp(*names + n + 1, k->key)))
            return 1;
    return 0;
}

static size_t
config_type_size(enum config_type t)
{
    switch (t) {
    case CONFIG_STR:
        return sizeof(char *);
    case CONFIG_UINT:
        return sizeof(unsigned);
    case CONFIG_ULONG:
        return sizeof(unsigned long);
    case CONFIG_ULL:
        return sizeof(unsigned long long);
    case CONFIG_DOUBLE:
        return sizeof(double);
    }
    return 0;
}

static int
config_key_differs(const struct config *a, const struct config *b,
                   const struct config_key *k)
{
    const char *pa = (const char *)a + k->offset;
    const char *pb = (const char *)b + k->offset;

    if (k->type == CONFIG_STR)
        return strcmp(*(char *const *)pa, *(char *const *)pb) != 0;
    return memcmp(pa, pb, config_type_size(k->type)) != 0;
}

unsigned
config_diff(const struct config *a, const struct config *b,
            const char *const *names, char *buf, size_t len)
{
    unsigned n = 0;
    size_t i, at = 0;

    if (len > 0)
        buf[0] = '\0';
    for (i = 0; i < CONFIG_N_KEYS; i++) {
        const struct config_key *k = &config_keys[i];

        if (!config_key_listed(k, names) || !config_key_differs(a, b, k))
            continue;
        if (at < len) {
            int w = snprintf(buf + at, len - at, "%s%s.%s", n ? ", " : "",
                             k->section, k->key);

            if (w > 0)
                at += (size_t)w;
        }
        n++;
    }
    return n;
}

int
config_copy(struct config *dst, const struct config *src,
            const char *const *names)
{
    size_t i;

    for (i = 0; i < CONFIG_N_KEYS; i++) {
        const struct config_key *k = &config_keys[i];
        const char *from = (const char *)src + k->offset;
        char *to = (char *)dst + k->offset;

        if (!config_key_listed(k, names))
            continue;
        if (k->type == CONFIG_STR) {
            char *copy = strdup(*(char *const *)from);

            if (copy == NULL)
                return -1;
            free(*(char **)to);
            *(char **)to = copy;
        } else {
            memcpy(to, from, config_type_size(k->type));
        }
    }
    return 0;
}

static int
config_parse_number(const char *value, double min, double max, int integer,
                    double *out)
{
    char *end;
    double d;

    while (isspace((unsigned char)*value))
        value++;
    if (*value == '\0')
        return -1;
    errno = 0;
    if (integer) {
        unsigned long long u;

        if (!isdigit((unsigned char)*value))
            return -1;
        u = strtoull(value, &end, 10);
        d = (double)u;
    } else {
        d = strtod(value, &end);
    }
    if (errno != 0 || end == value)
        return -1;
    while (isspace((unsigned char)*end))
        end++;
    if (*end != '\0' || isnan(d))
        return -1;
    if (d < min || d > max)
        return -2;
    *out = d;
    return 0;
}

static int
config_store(struct config *c, const struct config_key *k, const char *value,
             const char *origin, unsigned line, struct config_error *err)
{
    char *base = (char *)c;
    double d = 0;
    int r;

    if (k->type == CONFIG_STR) {
        char **slot = (char **)(base + k->offset);
        char *copy;

        if (k->choices != NULL) {
            size_t n = strlen(value);
            const char *p = k->choices;
            int ok = 0;

            while (*p) {
                size_t m = strcspn(p, "|");

                if (m == n && !strncmp(p, value, n))
                    ok = 1;
                p += m + (p[m] == '|');
            }
            if (!ok) {
                config_fail(err, origin, line, k->section, k->key,
                            "\"%s\" is not one of %s", value, k->choices);
                return -1;
            }
        }
        copy = strdup(value);
        if (copy == NULL) {
            config_fail(err, origin, line, k->section, k->key, "out of memory");
            return -1;
        }
        free(*slot);
        *slot = copy;
        return 0;
    }
    r = config_parse_number(value, k->min, k->max, k->type != CONFIG_DOUBLE,
                            &d);
    if (r == -1) {
        config_fail(err, origin, line, k->section, k->key,
                    "\"%s\" is not a%s number", value,
                    k->type == CONFIG_DOUBLE ? "" : " whole non-negative");
        return -1;
    }
    if (r == -2) {
        config_fail(err, origin, line, k->section, k->key,
                    "%s is out of range %.15g..%.15g", value, k->min, k->max);
        return -1;
    }
    switch (k->type) {
    case CONFIG_UINT:
        *(unsigned *)(base + k->offset) = (unsigned)d;
        break;
    case CONFIG_ULONG:
        *(unsigned long *)(base + k->offset) = (unsigned long)d;
        break;
    case CONFIG_ULL:
        *(unsigned long long *)(base + k->offset) = (unsigned long long)d;
        break;
    case CONFIG_DOUBLE:
        *(double *)(base + k->offset) = d;
        break;
    case CONFIG_STR:
        break;
    }
    return 0;
}

/* thresholds.LABEL_review / thresholds.LABEL_reject. */
static int
config_set_override(struct config *c, const char *key, const char *value,
                    const char *origin, unsigned line, struct config_error *err)
{
    const char *us = strrchr(key, '_');
    size_t label_len, i;
    int is_reject;
    double d = 0;
    struct config_threshold *t = NULL;
    int r;

    if (us == NULL || (strcmp(us, "_review") && strcmp(us, "_reject"))) {
        config_fail(err, origin, line, "thresholds", key,
                    "unknown key (review, reject, LABEL_review or "
                    "LABEL_reject)");
        return -1;
    }
    is_reject = !strcmp(us, "_reject");
    label_len = (size_t)(us - key);
    if (label_len == 0 || label_len >= CLF_LABEL_MAX) {
        config_fail(err, origin, line, "thresholds", key,
                    "a label name must be 1-%d characters", CLF_LABEL_MAX - 1);
        return -1;
    }
    for (i = 0; i < label_len; i++)
        if (!isalnum((unsigned char)key[i]) && key[i] != '_' && key[i] != '-') {
            config_fail(err, origin, line, "thresholds", key,
                        "a label name holds only A-Za-z0-9_-");
            return -1;
        }
    r = config_parse_number(value, 0, 1, 0, &d);
    if (r < 0) {
        config_fail(err, origin, line, "thresholds", key,
                    "\"%s\" is not a number in 0..1", value);
        return -1;
    }
    for (i = 0; i < c->n_overrides; i++)
        if (strlen(c->overrides[i].label) == label_len &&
            !strncmp(c->overrides[i].label, key, label_len))
            t = &c->overrides[i];
    if (t == NULL) {
        if (c->n_overrides == CONFIG_MAX_OVERRIDES) {
            config_fail(err, origin, line, "thresholds", key,
                        "more than %d labels with their own thresholds",
                        CONFIG_MAX_OVERRIDES);
            return -1;
        }
        t = &c->overrides[c->n_overrides++];
        memcpy(t->label, key, label_len);
        t->label[label_len] = '\0';
        t->review = t->reject = -1;
    }
    if (is_reject)
        t->reject = d;
    else
        t->review = d;
    config_note(
        c, CONFIG_N_KEYS + 2 * (size_t)(t - c->overrides) + (size_t)is_reject,
        origin, line);
    return 0;
}

int
config_set(struct config *c, const char *section, const char *key,
           const char *value, const char *origin, unsigned line,
           struct config_error *err)
{
    size_t i;
    int known_section = 0;

    for (i = 0; i < CONFIG_N_KEYS; i++) {
        const struct config_key *k = &config_keys[i];

        if (strcmp(k->section, section))
            continue;
        known_section = 1;
        if (strcmp(k->key, key))
            continue;
        if (config_store(c, k, value, origin, line, err) < 0)
            return -1;
        config_note(c, i, origin, line);
        return 0;
    }
    if (!strcmp(section, "thresholds"))
        return config_set_override(c, key, value, origin, line, err);
    if (!known_section)
        config_fail(err, origin, line, NULL, NULL, "unknown section [%s]",
                    section);
    else
        config_fail(err, origin, line, section, key, "unknown key");
    return -1;
}

struct config *
config_new(void)
{
    struct config *c = calloc(1, sizeof(*c));
    size_t i;

    if (c == NULL)
        return NULL;
    c->where = calloc(CONFIG_N_WHERE, sizeof(*c->where));
    if (c->where == NULL)
        goto fail;
    for (i = 0; i < CONFIG_N_KEYS; i++)
        if (config_store(c, &config_keys[i], config_keys[i].def, "default", 0,
                         NULL) < 0)
            goto fail;
    return c;
fail:
    config_free(c);
    return NULL;
}

void
config_free(struct config *c)
{
    size_t i;

    if (c == NULL)
        return;
    for (i = 0; i < CONFIG_N_KEYS; i++)
        if (config_keys[i].type == CONFIG_STR)
            free(*(char **)((char *)c + config_keys[i].offset));
    if (c->redis_password != NULL) {
        explicit_bzero(c->redis_password, strlen(c->redis_password));
        free(c->redis_password);
    }
    auth_free(c->auth);
    free(c->where);
    free(c);
}

/* ---- INI reading ------------------------------------------------------ */

struct config_reader {
    struct config *c;
    const char *name;
    FILE *f;               /* a file, or */
    const char *buf, *end; /* a buffer */
    unsigned line;         /* lines handed to inih so far */
    unsigned err_line;     /* first error of ours, 0 = none */
    struct config_error err;
};

static int
config_reader_getc(struct config_reader *r)
{
    if (r->f != NULL)
        return fgetc(r->f);
    if (r->buf < r->end)
        return (unsigned char)*r->buf++;
    return EOF;
}

/* inih's ini_reader: one physical line per call, so inih's line numbers
 * and ours agree.  A line longer than inih's buffer is an error here
 * instead of being split into two lines. */
static char *
config_reader_line(char *str, int num, void *stream)
{
    struct config_reader *r = stream;
    int ch, n = 0;

    ch = config_reader_getc(r);
    if (ch == EOF)
        return NULL;
    r->line++;
    while (ch != EOF) {
        if (ch == '\0' && r->err_line == 0) {
            r->err_line = r->line;
            snprintf(r->err.msg, sizeof(r->err.msg), "%s:%u: NUL byte", r->name,
                     r->line);
        }
        if (ch == '\n')
            break; /* inih needs no newline: it strips trailing blanks */
        if (n < num - 1) {
            str[n++] = (char)ch;
        } else if (r->err_line == 0) {
            r->err_line = r->line;
            snprintf(r->err.msg, sizeof(r->err.msg),
                     "%s:%u: line longer than %d bytes (put long lists in "
                     "a *_file key)",
                     r->name, r->line, num - 1);
        }
        ch = config_reader_getc(r);
    }
    str[n] = '\0';
    return str;
}

static int
config_ini_handler(void *user, const char *section, const char *name,
                   const char *value)
{
    struct config_reader *r = user;
    struct config_error e;

    if (r->err_line != 0)
        return 1; /* report only the first error */
    if (config_set(r->c, section, name, value, r->name, r->line, &e) < 0) {
        r->err_line = r->line;
        r->err = e;
        return 0;
    }
    return 1;
}

static int
config_parse_stream(struct config_reader *r, struct config_error *err)
{
    int ret = ini_parse_stream(config_reader_line, r, config_ini_handler, r);

    if (ret == 0 && r->err_line == 0)
        return 0;
    if (ret == -2) {
        snprintf(err->msg, sizeof(err->msg), "%s: out of memory", r->name);
        return -1;
    }
    if (r->err_line != 0 && (ret <= 0 || (unsigned)ret >= r->err_line)) {
        *err = r->err;
        return -1;
    }
    snprintf(err->msg, sizeof(err->msg),
             "%s:%d: syntax error (expected [section], key = value or a "
             "comment)",
             r->name, ret);
    return -1;
}

int
config_load_file(struct config *c, const char *path, struct config_error *err)
{
    struct config_reader r;
    int ret;

    memset(&r, 0, sizeof(r));
    r.c = c;
    r.name = path;
    r.f = fopen(path, "r");
    if (r.f == NULL) {
        snprintf(err->msg, sizeof(err->msg), "%s: %s", path, strerror(errno));
        return -1;
    }
    ret = config_parse_stream(&r, err);
    if (ret == 0 && ferror(r.f)) {
        snprintf(err->msg, sizeof(err->msg), "%s: read error", path);
        ret = -1;
    }
    fclose(r.f);
    return ret;
}

int
config_load_buffer(struct config *c, const char *name, const char *buf,
                   size_t len, struct config_error *err)
{
    struct config_reader r;

    memset(&r, 0, sizeof(r));
    r.c = c;
    r.name = name;
    r.buf = buf;
    r.end = buf + len;
    return config_parse_stream(&r, err);
}

int
config_set_arg(struct config *c, const char *assignment,
               struct config_error *err)
{
    const char *dot = strchr(assignment, '.');
    const char *eq = strchr(assignment, '=');
    char section[64], key[128];
    size_t slen, klen;

    if (dot == NULL || eq == NULL || dot > eq || dot == assignment ||
        eq == dot + 1) {
        snprintf(err->msg, sizeof(err->msg),
                 "--set %s: expected SECTION.KEY=VALUE", assignment);
        return -1;
    }
    slen = (size_t)(dot - assignment);
    klen = (size_t)(eq - dot - 1);
    if (slen >= sizeof(section) || klen >= sizeof(key)) {
        snprintf(err->msg, sizeof(err->msg), "--set %.40s...: key too long",
                 assignment);
        return -1;
    }
    memcpy(section, assignment, slen);
    section[slen] = '\0';
    memcpy(key, dot + 1, klen);
    key[klen] = '\0';
    return config_set(c, section, key, eq + 1, "--set", 0, err);
}

/* ---- cross-key checks ------------------------------------------------- */

static int
config_check_hostport(const char *s)
{
    const char *colon;
    char *end;
    unsigned long port;

    if (s[0] == '[') {
        const char *rb = strchr(s, ']');

        if (rb == NULL || rb[1] != ':')
            return -1;
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || colon == s)
            return -1;
    }
    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno || port > 65535 ||
        !isdigit((unsigned char)colon[1]))
        return -1;
    return 0;
}

static int
config_check_verdicts(struct config *c, struct config_error *err)
{
    const char *p = c->queue_verdicts;

    c->verdict_mask = 0;
    while (*p) {
        size_t n;

        p += strspn(p, " \t,");
        n = strcspn(p, " \t,");
        if (n == 0)
            break;
        if (n == 5 && !strncmp(p, "allow", 5))
            c->verdict_mask |= 1u << CLF_ALLOW;
        else if (n == 6 && !strncmp(p, "review", 6))
            c->verdict_mask |= 1u << CLF_REVIEW;
        else if (n == 6 && !strncmp(p, "reject", 6))
            c->verdict_mask |= 1u << CLF_REJECT;
        else {
            config_fail_at(err, c, "queue", "verdicts",
                           "\"%.*s\" is not allow, review or reject", (int)n,
                           p);
            return -1;
        }
        p += n;
    }
    return 0;
}

static int
config_check_tokens(struct config *c, struct config_error *err)
{
    char reason[400];

    auth_free(c->auth);
    c->auth = auth_new();
    if (c->auth == NULL) {
        snprintf(err->msg, sizeof(err->msg), "out of memory");
        return -1;
    }
    if (auth_add_list(c->auth, AUTH_SUBMIT, c->submit_tokens, reason,
                      sizeof(reason)) < 0) {
        config_fail_at(err, c, "auth", "submit_tokens", "%s", reason);
        return -1;
    }
    if (auth_add_list(c->auth, AUTH_MODERATOR, c->moderator_tokens, reason,
                      sizeof(reason)) < 0) {
        config_fail_at(err, c, "auth", "moderator_tokens", "%s", reason);
        return -1;
    }
    if (c->submit_tokens_file[0] &&
        auth_add_file(c->auth, AUTH_SUBMIT, c->submit_tokens_file, reason,
                      sizeof(reason)) < 0) {
        snprintf(err->msg, sizeof(err->msg), "%s", reason);
        return -1;
    }
    if (c->moderator_tokens_file[0] &&
        auth_add_file(c->auth, AUTH_MODERATOR, c->moderator_tokens_file, reason,
                      sizeof(reason)) < 0) {
        snprintf(err->msg, sizeof(err->msg), "%s", reason);
        return -1;
    }
    return 0;
}

/* The next name of a list such as akismet.labels ("spam, abuse") in
 * *name, and its length (0 at the end); *p moves past it. */
static size_t
config_list_next(const char **p, const char **name)
{
    *p += strspn(*p, " \t,");
    *name = *p;
    *p += strcspn(*p, " \t,");
    return (size_t)(*p - *name);
}

static int
config_check_akismet(struct config *c, struct config_error *err)
{
    const char *p = c->akismet_labels, *name;
    char reason[400];
    unsigned n = 0;
    size_t len, i;

    while ((len = config_list_next(&p, &name)) > 0) {
        for (i = 0; i < len; i++)
            if (!isalnum((unsigned char)name[i]) && name[i] != '_' &&
                name[i] != '-')
                break;
        if (i < len || len >= CLF_LABEL_MAX) {
            config_fail_at(err, c, "akismet", "labels",
                           "\"%.*s\" is not a label name (1-%d of "
                           "A-Za-z0-9_-)",
                           (int)len, name, CLF_LABEL_MAX - 1);
            return -1;
        }
        n++;
    }
    if (n == 0) {
        config_fail_at(err, c, "akismet", "labels",
                       "names no label (e.g. spam, or spam,abuse)");
        return -1;
    }
    c->akismet_train_on = !strcmp(c->akismet_train, "yes");
    /* After config_check_tokens: a key may not repeat a token. */
    if (auth_add_list(c->auth, AUTH_AKISMET, c->akismet_keys, reason,
                      sizeof(reason)) < 0) {
        config_fail_at(err, c, "akismet", "keys", "%s", reason);
        return -1;
    }
    if (c->akismet_keys_file[0] &&
        auth_add_file(c->auth, AUTH_AKISMET, c->akismet_keys_file, reason,
                      sizeof(reason)) < 0) {
        snprintf(err->msg, sizeof(err->msg), "%s", reason);
        return -1;
    }
    return 0;
}

static int
config_check_password(struct config *c, struct config_error *err)
{
    size_t len;
    char *pw;

    if (!c->redis_password_file[0])
        return 0;
    pw = util_read_file(c->redis_password_file, 4096, &len);
    if (pw == NULL) {
        config_fail_at(err, c, "redis", "password_file", "%s: %s",
                       c->redis_password_file, strerror(errno));
        return -1;
    }
    while (len > 0 && (pw[len - 1] == '\n' || pw[len - 1] == '\r'))
        pw[--len] = '\0';
    if (len == 0 || strlen(pw) != len) {
        explicit_bzero(pw, len);
        free(pw);
        config_fail_at(err, c, "redis", "password_file",
                       "%s: empty, or holds a NUL byte",
                       c->redis_password_file);
        return -1;
    }
    if (c->redis_password != NULL) {
        explicit_bzero(c->redis_password, strlen(c->redis_password));
        free(c->redis_password);
    }
    c->redis_password = pw;
    return 0;
}

int
config_check_thresholds(const struct config *c, struct config_error *err)
{
    if (c->review > c->reject) {
        config_fail_at(err, c, "thresholds", "review",
                       "%g is above thresholds.reject %g", c->review,
                       c->reject);
        return -1;
    }
    for (unsigned i = 0; i < c->n_overrides; i++) {
        double rv, rj;

        config_thresholds(c, c->overrides[i].label, &rv, &rj);
        if (rv > rj) {
            const struct config_where *w = &c->where[CONFIG_N_KEYS + 2 * i];

            config_fail(err, w->origin[0] ? w->origin : "default", w->line,
                        "thresholds", c->overrides[i].label,
                        "review threshold %g is above reject threshold %g", rv,
                        rj);
            return -1;
        }
    }
    return 0;
}

int
config_check(struct config *c, struct config_error *err)
{
    char reason[256];

    if (!c->listen[0] && !c->socket[0]) {
        config_fail_at(err, c, "server", "listen",
                       "empty, and server.socket too: nothing to listen on");
        return -1;
    }
    if (c->listen[0] && config_check_hostport(c->listen) < 0) {
        config_fail_at(err, c, "server", "listen",
                       "\"%s\" is not HOST:PORT (port 0-65535; [v6]:port)",
                       c->listen);
        return -1;
    }
    if (c->socket[0] && strlen(c->socket) >= 108) {
        config_fail_at(err, c, "server", "socket",
                       "a Unix socket path must be under 108 bytes");
        return -1;
    }
    if (queue_url_check(c->redis_url, reason, sizeof(reason)) < 0) {
        config_fail_at(err, c, "redis", "url", "%s", reason);
        return -1;
    }
    if (!c->redis_prefix[0]) {
        config_fail_at(err, c, "redis", "prefix", "must not be empty");
        return -1;
    }
    if (strlen(c->redis_prefix) > QUEUE_PREFIX_MAX) {
        config_fail_at(err, c, "redis", "prefix", "longer than %d bytes",
                       QUEUE_PREFIX_MAX);
        return -1;
    }
    if (!c->model_path[0]) {
        config_fail_at(err, c, "model", "path", "must not be empty");
        return -1;
    }
    if (config_check_thresholds(c, err) < 0)
        return -1;
    if (config_check_verdicts(c, err) < 0)
        return -1;
    c->order_urgent = !strcmp(c->queue_order, "urgent");
    if (config_check_tokens(c, err) < 0)
        return -1;
    if (config_check_password(c, err) < 0)
        return -1;
    if (config_check_akismet(c, err) < 0)
        return -1;
    return 0;
}

int
config_check_labels(const struct config *c, const struct clf_model *m,
                    struct config_error *err)
{
    const char *p = c->akismet_labels, *name;
    char why[300], label[CLF_LABEL_MAX], key[CLF_LABEL_MAX + 8];
    size_t len;
    unsigned i;

    for (i = 0; i < c->n_overrides; i++) {
        const struct config_threshold *t = &c->overrides[i];
        int is_reject = t->review < 0; /* the key that was set */
        const struct config_where *w =
            &c->where[CONFIG_N_KEYS + 2 * (size_t)i + (size_t)is_reject];

        if (learn_label_known(m, t->label, why, sizeof(why)) == 0)
            continue;
        snprintf(key, sizeof(key), "%s_%s", t->label,
                 is_reject ? "reject" : "review");
        config_fail(err, w->origin, w->line, "thresholds", key, "%s", why);
        return -1;
    }
    /* akismet.labels only where they teach: a model without a spam head
     * serves blogs without Akismet plugins under the default "spam" */
    if (!c->akismet_train_on ||
        (!c->akismet_keys[0] && !c->akismet_keys_file[0]))
        return 0;
    while ((len = config_list_next(&p, &name)) > 0) {
        snprintf(label, sizeof(label), "%.*s", (int)len, name);
        if (learn_label_known(m, label, why, sizeof(why)) == 0)
            continue;
        config_fail_at(err, c, "akismet", "labels", "%s", why);
        return -1;
    }
    return 0;
}

void
config_thresholds(const struct config *c, const char *label, double *review,
                  double *reject)
{
    unsigned i;

    *review = c->review;
    *reject = c->reject;
    for (i = 0; i < c->n_overrides; i++) {
        if (strcmp(c->overrides[i].label, label))
            continue;
        if (c->overrides[i].review >= 0)
            *review = c->overrides[i].review;
        if (c->overrides[i].reject >= 0)
            *reject = c->overrides[i].reject;
    }
}
