/*
 * learn.c - online learning, shared by every daemon on one Redis.
 *
 * Training events (decisions, undos, uploads, Akismet reports) are entries
 * of the stream P training (daemon/REDIS.md).  Nothing is learned straight
 * from a request: the daemon that took a decision reads its own event back
 * like every other daemon, so all of them apply the same events in the
 * same order -- the stream's.
 *
 * Threads.  One learner thread with its own event_base and its own Redis
 * connection (an XREAD BLOCK would hold up a worker's commands behind it).
 * It owns a private, mutable copy of the model, applies each event with
 * clf_learn / clf_unteach, and publishes a scoring copy to the workers
 * (state_publish_model) right away when the last publish is older than
 * LEARN_PUBLISH_MS, else when that much time has passed: at most ~7
 * clones a second however fast events come.  learn_lock guards the
 * private model and its bookkeeping; the main thread takes it on SIGHUP
 * (learn_publish) and workers never do (they read published clones).
 *
 * Persistence.  Every model.snapshot_interval_s (when something changed)
 * and at shutdown, the private model is written into model.state_dir as
 * learned-<base id>-<last event id>.mfm (clf_model_save: temp file, fsync,
 * rename) with its event id set to the last applied stream entry; older
 * snapshots of the same base are then removed.  At start and on SIGHUP
 * the newest snapshot of the base model (its id is the base file's
 * checksum) stands in for the base, and the stream is read from its event
 * id on (from the start when the model has none).
 *
 * Trimming (model.trim_stream = 1).  After each periodic snapshot the
 * daemon records the snapshot's event id in the hash P training:snapshots
 * (field: host:state_dir) and trims the stream to the oldest id recorded
 * there (one Lua script), so no recorded daemon ever misses an event.  A
 * daemon that leaves for good must be removed from the hash (HDEL).
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "modfilterd.h"
#include "queue.h"
#include "redis.h"

#define LEARN_BLOCK_MS 1000 /* XREAD BLOCK: bounds a reload's re-read */
#define LEARN_BLOCK "1000"
#define LEARN_BATCH "256"    /* events per XREAD */
#define LEARN_PUBLISH_MS 150 /* at most one published clone per this */
#define LEARN_RETRY_MS 500   /* after a failed XREAD */
#define LEARN_ID_MAX 64      /* a stream id, as the model file keeps it */
#define LEARN_SNAP_PREFIX "learned-"
#define LEARN_SNAP_SUFFIX ".mfm"

/* KEYS: P training:snapshots, P training; ARGV: this daemon, its id. */
static const char learn_trim_lua[] =
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
    "local min, mms, mseq\n"
    "for _, id in ipairs(redis.call('HVALS', KEYS[1])) do\n"
    "  local ms, seq = string.match(id, '^(%d+)%-(%d+)$')\n"
    "  if ms then\n"
    "    ms, seq = tonumber(ms), tonumber(seq)\n"
    "    if not min or ms < mms or (ms == mms and seq < mseq) then\n"
    "      min, mms, mseq = id, ms, seq\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if not min then return 0 end\n"
    "return redis.call('XTRIM', KEYS[2], 'MINID', min)\n";

static const char *const learn_source_names[LEARN_N_SOURCES] = {
    "decision", "undo", "upload", "akismet", "other",
};

/* Guards the fields marked (L). */
static pthread_mutex_t learn_lock = PTHREAD_MUTEX_INITIALIZER;
/* Guards learn_shown_id (so /v1/stats never waits for a snapshot). */
static pthread_mutex_t learn_shown_lock = PTHREAD_MUTEX_INITIALIZER;
static char learn_shown_id[LEARN_ID_MAX];

/* Counters for /metrics and /v1/stats (relaxed atomics). */
static unsigned long long learn_events[LEARN_N_SOURCES];
static unsigned long long learn_skipped;
static long long learn_lag_ms = -1;     /* at the last publish */
static long long learn_snapshot_ms = 0; /* wall clock of the last one */

static struct {
    struct clf_model *model;    /* (L) private, mutable; NULL before init */
    char base_id[24];           /* (L) clf_model_id of the base file */
    char last_id[LEARN_ID_MAX]; /* (L) last applied entry; "" none */
    unsigned epoch;             /* (L) +1 when the model is replaced */
    int dirty;                  /* (L) changed since the last publish */
    int unsaved;                /* (L) changed since the last snapshot */
    long long oldest_ms;        /* (L) oldest unpublished change's entry */
    char *state_dir;            /* (L) malloc'd */
    int trim;                   /* (L) model.trim_stream */
    struct clf_scorer *scorer;  /* (L) */

    /* The learner thread's, after learn_start. */
    struct event_base *base;
    struct redis *redis;
    struct event *publish_ev, *snapshot_ev, *retry_ev, *stop_ev;
    char key[QUEUE_PREFIX_MAX + 16];  /* P training */
    char hkey[QUEUE_PREFIX_MAX + 32]; /* P training:snapshots */
    char instance[1536];              /* host:state_dir */
    struct redis_script *trim_script;
    char last_error[256]; /* last XREAD failure logged */
    double last_publish;  /* monotonic seconds */
    int reading;          /* an XREAD is in flight */
    int stopping;
    int started;
    pthread_t thread;
} learn;

#define LEARN_ADD(x, n) __atomic_add_fetch(&(x), (n), __ATOMIC_RELAXED)
#define LEARN_GET(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define LEARN_SET(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/* ---- stream ids and snapshot files ------------------------------------ */

/* "ms-seq" -> numbers; -1 unless it is a stream id. */
static int
learn_id_parse(const char *s, size_t len, uint64_t *ms, uint64_t *seq)
{
    const char *dash = memchr(s, '-', len);
    size_t i;

    if (dash == NULL || dash == s || dash + 1 == s + len || len > 41)
        return -1;
    *ms = *seq = 0;
    for (i = 0; i < len; i++) {
        if (s + i == dash)
            continue;
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (s + i < dash)
            *ms = *ms * 10 + (uint64_t)(s[i] - '0');
        else
            *seq = *seq * 10 + (uint64_t)(s[i] - '0');
    }
    return 0;
}

/* The ms part of a stream id (Redis's clock at XADD), 0 if none. */
static long long
learn_id_ms(const char *id)
{
    uint64_t ms, seq;

    if (learn_id_parse(id, strlen(id), &ms, &seq) < 0)
        return 0;
    return (long long)ms;
}

struct learn_snap {
    char name[256];
    uint64_t ms, seq;
};

static int
learn_snap_cmp(const void *a, const void *b)
{
    const struct learn_snap *x = a, *y = b;

    if (x->ms != y->ms)
        return x->ms < y->ms ? 1 : -1; /* newest first */
    if (x->seq != y->seq)
        return x->seq < y->seq ? 1 : -1;
    return 0;
}

/* The snapshots of base_id in dir, newest first: a malloc'd array (caller
 * frees) of *n entries; NULL with *n = 0 when none or on error.  *unreadable
 * is set when dir exists but cannot be read (logged). */
static struct learn_snap *
learn_snap_list(const char *dir, const char *base_id, size_t *n,
                int *unreadable)
{
    char prefix[64];
    struct learn_snap *list = NULL, *grown;
    size_t cap = 0, plen, slen = strlen(LEARN_SNAP_SUFFIX);
    struct dirent *de;
    DIR *d;

    *n = 0;
    *unreadable = 0;
    d = opendir(dir);
    if (d == NULL) {
        if (errno != ENOENT) {
            log_warn("model.state_dir %s", dir);
            *unreadable = 1;
        }
        return NULL;
    }
    plen = (size_t)snprintf(prefix, sizeof(prefix), LEARN_SNAP_PREFIX "%s-",
                            base_id);
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        struct learn_snap s;

        if (len <= plen + slen || len >= sizeof(s.name) ||
            strncmp(de->d_name, prefix, plen) ||
            strcmp(de->d_name + len - slen, LEARN_SNAP_SUFFIX) ||
            learn_id_parse(de->d_name + plen, len - plen - slen, &s.ms,
                           &s.seq) < 0)
            continue;
        memcpy(s.name, de->d_name, len + 1);
        if (*n == cap) {
            cap = cap ? 2 * cap : 4;
            grown = realloc(list, cap * sizeof(*list));
            if (grown == NULL)
                break;
            list = grown;
        }
        list[(*n)++] = s;
    }
    closedir(d);
    if (*n > 1)
        qsort(list, *n, sizeof(*list), learn_snap_cmp);
    return list;
}

/* *m: the newest loadable snapshot of base_id in dir, or NULL when there
 * is none.  -1 when dir exists but cannot be read: its snapshots may hold
 * what the training stream no longer does (model.trim_stream), so
 * learning from the stream alone and then writing a snapshot there would
 * lose it. */
static int
learn_snap_load(const char *dir, const char *base_id, struct clf_model **m)
{
    struct learn_snap *list;
    size_t n, i;
    int unreadable;

    *m = NULL;
    list = learn_snap_list(dir, base_id, &n, &unreadable);
    if (unreadable)
        return -1;
    for (i = 0; i < n && *m == NULL; i++) {
        char path[4096];
        struct clf_error e;
        enum clf_status cs;

        snprintf(path, sizeof(path), "%s/%s", dir, list[i].name);
        memset(&e, 0, sizeof(e));
        cs = clf_model_load(path, m, &e);
        if (cs != CLF_OK) {
            log_warnx("snapshot %s: %s; trying an older one", path,
                      e.msg[0] ? e.msg : clf_status_str(cs));
            *m = NULL;
            continue;
        }
        log_info("learned state: %s (training events up to %s)", path,
                 clf_model_event_id(*m));
    }
    free(list);
    return 0;
}

/* mkdir -p; -1 (logged) on failure. */
static int
learn_mkdirs(const char *dir)
{
    char path[4096];
    size_t i, len = strlen(dir);

    if (len == 0 || len >= sizeof(path))
        return -1;
    memcpy(path, dir, len + 1);
    for (i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        path[i] = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST) {
            log_warn("model.state_dir: mkdir %s", path);
            return -1;
        }
        path[i] = i < len ? '/' : '\0';
    }
    return 0;
}

/* Write the private model as the newest snapshot of its base (lock held);
 * then remove the older ones.  1 when written; 0 when nothing changed or
 * on failure (logged). */
static int
learn_snapshot(void)
{
    char name[256], path[4096];
    struct learn_snap *list;
    struct clf_error e;
    enum clf_status cs;
    size_t n, i;
    int unreadable;

    if (!learn.unsaved || learn.model == NULL || !learn.last_id[0] ||
        learn.state_dir == NULL || !learn.state_dir[0])
        return 0;
    if (learn_mkdirs(learn.state_dir) < 0)
        return 0;
    snprintf(name, sizeof(name), LEARN_SNAP_PREFIX "%s-%s" LEARN_SNAP_SUFFIX,
             learn.base_id, learn.last_id);
    snprintf(path, sizeof(path), "%s/%s", learn.state_dir, name);
    clf_model_set_event_id(learn.model, learn.last_id);
    memset(&e, 0, sizeof(e));
    cs = clf_model_save(learn.model, path, &e);
    if (cs != CLF_OK) {
        log_warnx("snapshot %s: %s; learned state kept in memory only", path,
                  e.msg[0] ? e.msg : clf_status_str(cs));
        return 0;
    }
    learn.unsaved = 0;
    LEARN_SET(learn_snapshot_ms, util_now_ms());
    log_info("snapshot %s written", path);
    list = learn_snap_list(learn.state_dir, learn.base_id, &n, &unreadable);
    for (i = 0; i < n; i++) {
        if (!strcmp(list[i].name, name))
            continue;
        snprintf(path, sizeof(path), "%s/%s", learn.state_dir, list[i].name);
        if (unlink(path) < 0 && errno != ENOENT)
            log_warn("removing the older snapshot %s", path);
    }
    free(list);
    return 1;
}

/* ---- applying events -------------------------------------------------- */

static void
learn_show_id(const char *id)
{
    pthread_mutex_lock(&learn_shown_lock);
    snprintf(learn_shown_id, sizeof(learn_shown_id), "%s", id);
    pthread_mutex_unlock(&learn_shown_lock);
}

static enum learn_source
learn_source_of(const char *s)
{
    unsigned i;

    for (i = 0; s != NULL && i < LEARN_OTHER; i++)
        if (!strcmp(s, learn_source_names[i]))
            return (enum learn_source)i;
    return LEARN_OTHER;
}

/* a-z 0-9 _ -, 1..CLF_LABEL_MAX-1: the classifier's label names. */
static int
learn_label_ok(const char *s)
{
    size_t n = 0;

    for (; s[n]; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') ||
              s[n] == '_' || s[n] == '-'))
            return 0;
    return n > 0 && n < CLF_LABEL_MAX;
}

int
learn_label_known(const struct clf_model *m, const char *name, char *why,
                  size_t len)
{
    size_t off;
    unsigned i, n = clf_model_label_count(m);

    if (clf_model_label_index(m, name) >= 0)
        return 0;
    off = (size_t)snprintf(why, len,
                           "unknown label \"%.64s\" (the model's: ", name);
    for (i = 0; i < n && off < len; i++)
        off += (size_t)snprintf(why + off, len - off, "%s%s", i ? ", " : "",
                                clf_model_label_name(m, i));
    if (off < len)
        snprintf(why + off, len - off, ")");
    return -1;
}

int
learn_labels_check(json_t *labels, const struct clf_model *m, char *why,
                   size_t len)
{
    const char *name;
    json_t *v;

    if (!json_is_object(labels) || json_object_size(labels) == 0) {
        snprintf(why, len, "labels must be a non-empty JSON object");
        return -1;
    }
    json_object_foreach(labels, name, v)
    {
        if (!learn_label_ok(name)) {
            snprintf(why, len,
                     "bad label name (a-z, 0-9, _ and -, at most %d "
                     "characters)",
                     CLF_LABEL_MAX - 1);
            return -1;
        }
        if (!(json_is_boolean(v) ||
              (json_is_integer(v) &&
               (json_integer_value(v) == 0 || json_integer_value(v) == 1)))) {
            snprintf(why, len, "label %s: the value must be 0 or 1", name);
            return -1;
        }
        if (m != NULL && learn_label_known(m, name, why, len) < 0)
            return -1;
    }
    return 0;
}

static int
learn_label_value(const json_t *v)
{
    return json_is_boolean(v) ? json_is_true(v) : (int)json_integer_value(v);
}

/* The fields of one stream entry (borrowed from the reply). */
struct learn_event {
    const char *op, *text, *lang, *labels, *source;
    size_t text_len, labels_len;
};

static const char *
learn_event_parse(const redisReply *fields, struct learn_event *ev)
{
    size_t i;

    memset(ev, 0, sizeof(*ev));
    if (fields == NULL || fields->type != REDIS_REPLY_ARRAY ||
        fields->elements % 2 != 0)
        return "malformed entry";
    for (i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i], *v = fields->element[i + 1];

        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            return "malformed entry";
        if (!strcmp(k->str, "op"))
            ev->op = v->str;
        else if (!strcmp(k->str, "text")) {
            ev->text = v->str;
            ev->text_len = v->len;
        } else if (!strcmp(k->str, "lang"))
            ev->lang = v->str;
        else if (!strcmp(k->str, "labels")) {
            ev->labels = v->str;
            ev->labels_len = v->len;
        } else if (!strcmp(k->str, "source"))
            ev->source = v->str;
    }
    if (ev->text == NULL)
        return "no text";
    if (ev->text_len == 0)
        return "empty text";
    if (ev->labels == NULL)
        return "no labels";
    if (ev->op != NULL && ev->op[0] && strcmp(ev->op, "learn") &&
        strcmp(ev->op, "unlearn") && strcmp(ev->op, "forget"))
        return "op must be learn or unlearn";
    return NULL;
}

/* Apply one entry to the private model (lock held).  A bad event is
 * logged and skipped; it never stops the learner. */
static void
learn_apply(const char *id, const redisReply *fields)
{
    struct learn_event ev;
    json_error_t jerr;
    json_t *labels = NULL, *v;
    const char *why, *name;
    char msg[200];
    int forget, changed = 0;

    why = learn_event_parse(fields, &ev);
    if (why != NULL)
        goto skip;
    labels =
        json_loadb(ev.labels, ev.labels_len, JSON_REJECT_DUPLICATES, &jerr);
    if (labels == NULL) {
        snprintf(msg, sizeof(msg), "labels: %s", jerr.text);
        why = msg;
        goto skip;
    }
    if (learn_labels_check(labels, NULL, msg, sizeof(msg)) < 0) {
        why = msg;
        goto skip;
    }
    forget = ev.op != NULL &&
             (!strcmp(ev.op, "unlearn") || !strcmp(ev.op, "forget"));
    json_object_foreach(labels, name, v)
    {
        enum clf_learn_outcome out = CLF_DUPLICATE;
        struct clf_error e;
        enum clf_status cs;
        int value = learn_label_value(v);

        /* A label the model lacks would become a head of its own, unsure
         * and so sending every comment to review: /v1/train refuses
         * one, and an event from elsewhere (another daemon, an older
         * version, redis-cli) teaches only the labels the model has. */
        if (learn_label_known(learn.model, name, msg, sizeof(msg)) < 0) {
            log_warnx("training event %s: %s; label skipped", id, msg);
            continue;
        }
        memset(&e, 0, sizeof(e));
        /* An unlearn takes back what one learn event taught: an example
         * another event taught too stays (clf_unteach). */
        cs = forget ? clf_unteach(learn.scorer, learn.model, ev.text,
                                  ev.text_len, ev.lang, name, value, &out, &e)
                    : clf_learn(learn.scorer, learn.model, ev.text, ev.text_len,
                                ev.lang, name, value, &out, &e);
        if (cs != CLF_OK) {
            log_warnx("training event %s: label %s: %s", id, name,
                      e.msg[0] ? e.msg : clf_status_str(cs));
            continue;
        }
        if (out == CLF_LEARNED || out == CLF_FORGOTTEN)
            changed = 1;
    }
    json_decref(labels);
    LEARN_ADD(learn_events[learn_source_of(ev.source)], 1);
    log_debug("training event %s: %s %.*s (%s)%s", id,
              forget ? "unlearn" : "learn", (int)ev.labels_len, ev.labels,
              ev.source ? ev.source : "-", changed ? "" : ", nothing new");
    if (changed) {
        learn.dirty = learn.unsaved = 1;
        if (learn.oldest_ms == 0)
            learn.oldest_ms = learn_id_ms(id);
    }
    return;
skip:
    json_decref(labels);
    LEARN_ADD(learn_skipped, 1);
    log_warnx("training event %s: %s; skipped", id, why);
}

/* Calibrate the private model and publish a clone of it (lock held). */
static void
learn_publish_now(void)
{
    struct clf_model *m;
    struct clf_error e;

    if (!learn.dirty)
        return;
    memset(&e, 0, sizeof(e));
    if (clf_model_calibrate(learn.model, &e) != CLF_OK)
        log_warnx("learning: calibration: %s", e.msg);
    m = clf_model_clone_scoring(learn.model);
    if (m == NULL || state_publish_model(m) < 0) {
        log_warnx("learning: out of memory; the workers keep the model "
                  "they have");
        return;
    }
    learn.dirty = 0;
    learn.last_publish = util_monotonic();
    if (learn.oldest_ms > 0)
        LEARN_SET(learn_lag_ms, util_now_ms() - learn.oldest_ms);
    learn.oldest_ms = 0;
}

/* Publish now, or arm the timer for when LEARN_PUBLISH_MS has passed. */
static void
learn_maybe_publish(void)
{
    double wait =
        learn.last_publish + LEARN_PUBLISH_MS / 1000.0 - util_monotonic();
    struct timeval tv;

    if (!learn.dirty || evtimer_pending(learn.publish_ev, NULL))
        return;
    if (wait <= 0) {
        learn_publish_now();
        return;
    }
    tv.tv_sec = 0;
    tv.tv_usec = (long)(wait * 1e6);
    evtimer_add(learn.publish_ev, &tv);
}

static void
learn_on_trim(enum redis_result res, const redisReply *reply, void *arg)
{
    (void)arg;
    if (res == REDIS_RESULT_OK && reply->type == REDIS_REPLY_INTEGER) {
        if (reply->integer > 0)
            log_info("training stream: %lld event(s) older than every "
                     "recorded snapshot trimmed",
                     reply->integer);
    } else if (!learn.stopping) {
        log_warnx("training stream: trimming failed: %s",
                  reply != NULL && reply->type == REDIS_REPLY_ERROR
                      ? reply->str
                      : "no answer");
    }
}

/* Record this daemon's snapshot id and trim the stream (learner thread). */
static void
learn_trim(const char *id)
{
    const char *argv[4] = {learn.hkey, learn.key, learn.instance, id};
    size_t len[4];
    int i;

    for (i = 0; i < 4; i++)
        len[i] = strlen(argv[i]);
    if (redis_ready(learn.redis))
        redis_eval(learn.redis, learn.trim_script, 2, 4, argv, len,
                   learn_on_trim, NULL);
}

/* The publish timer (arg NULL) and the snapshot timer (arg non-NULL). */
static void
learn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    char id[LEARN_ID_MAX];
    int trim = 0;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&learn_lock);
    if (arg == NULL)
        learn_publish_now();
    else if (learn_snapshot() && learn.trim) {
        trim = 1;
        memcpy(id, learn.last_id, sizeof(id));
    }
    pthread_mutex_unlock(&learn_lock);
    if (trim)
        learn_trim(id);
}

/* ---- reading the stream ----------------------------------------------- */

static void learn_read(void);

static void
learn_retry(void)
{
    struct timeval tv = {0, LEARN_RETRY_MS * 1000};

    if (!learn.stopping)
        evtimer_add(learn.retry_ev, &tv);
}

static void
learn_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    learn_read();
}

static void
learn_on_read(enum redis_result res, const redisReply *reply, void *arg)
{
    unsigned epoch = (unsigned)(uintptr_t)arg;
    const redisReply *entries;
    size_t i;

    learn.reading = 0;
    if (learn.stopping)
        return;
    if (res != REDIS_RESULT_OK) {
        if (reply != NULL && reply->type == REDIS_REPLY_ERROR &&
            strcmp(learn.last_error, reply->str)) {
            snprintf(learn.last_error, sizeof(learn.last_error), "%s",
                     reply->str);
            log_warnx("training stream %s: %s; retrying", learn.key,
                      reply->str);
        }
        learn_retry();
        return;
    }
    learn.last_error[0] = '\0';
    pthread_mutex_lock(&learn_lock);
    if (epoch != learn.epoch || reply->type != REDIS_REPLY_ARRAY)
        goto next; /* a reload replaced the model, or nothing new */
    if (reply->elements != 1 || reply->element[0]->type != REDIS_REPLY_ARRAY ||
        reply->element[0]->elements != 2 ||
        reply->element[0]->element[1]->type != REDIS_REPLY_ARRAY) {
        log_warnx("training stream %s: unexpected XREAD reply", learn.key);
        pthread_mutex_unlock(&learn_lock);
        learn_retry();
        return;
    }
    entries = reply->element[0]->element[1];
    for (i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];

        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING ||
            e->element[0]->len >= LEARN_ID_MAX)
            continue;
        learn_apply(e->element[0]->str, e->element[1]);
        memcpy(learn.last_id, e->element[0]->str, e->element[0]->len + 1);
    }
    if (entries->elements > 0)
        learn_show_id(learn.last_id);
    learn_maybe_publish();
next:
    pthread_mutex_unlock(&learn_lock);
    learn_read();
}

/* XREAD from the last applied entry, unless one is in flight. */
static void
learn_read(void)
{
    char id[LEARN_ID_MAX];
    const char *argv[8];
    size_t len[8];
    unsigned epoch;
    int i;

    if (learn.stopping || learn.reading || !redis_ready(learn.redis))
        return;
    pthread_mutex_lock(&learn_lock);
    snprintf(id, sizeof(id), "%s", learn.last_id[0] ? learn.last_id : "0-0");
    epoch = learn.epoch;
    pthread_mutex_unlock(&learn_lock);
    argv[0] = "XREAD";
    argv[1] = "COUNT";
    argv[2] = LEARN_BATCH;
    argv[3] = "BLOCK";
    argv[4] = LEARN_BLOCK;
    argv[5] = "STREAMS";
    argv[6] = learn.key;
    argv[7] = id;
    for (i = 0; i < 8; i++)
        len[i] = strlen(argv[i]);
    if (redis_command(learn.redis, 8, argv, len, learn_on_read,
                      (void *)(uintptr_t)epoch) == 0)
        learn.reading = 1;
    else
        learn_retry();
}

static void
learn_redis_state(int ready, const char *why, void *arg)
{
    (void)arg;
    if (ready) {
        log_debug("training stream: redis %s", why ? why : "ready");
        learn_read();
    } else {
        log_debug("training stream: redis unavailable%s%s", why ? ": " : "",
                  why ? why : "");
    }
}

/* ---- lifecycle -------------------------------------------------------- */

static void
learn_stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    learn.stopping = 1;
    pthread_mutex_lock(&learn_lock);
    learn_snapshot();
    pthread_mutex_unlock(&learn_lock);
    event_base_loopbreak(learn.base);
}

static void *
learn_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "mf-learn");
    event_base_loop(learn.base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

int
learn_init(const struct config *cfg, struct clf_model **model)
{
    struct clf_model *snap, *scoring;
    char why[4400] = "learning: out of memory";

    pthread_mutex_lock(&learn_lock);
    snprintf(learn.base_id, sizeof(learn.base_id), "%s", clf_model_id(*model));
    learn.state_dir = strdup(cfg->model_state_dir);
    learn.trim = cfg->model_trim_stream != 0;
    learn.scorer = clf_scorer_new();
    if (learn.state_dir == NULL || learn.scorer == NULL)
        goto fail;
    if (learn_snap_load(cfg->model_state_dir, learn.base_id, &snap) < 0) {
        snprintf(why, sizeof(why),
                 "model.state_dir %s cannot be read: its snapshots may hold "
                 "learning the training stream no longer has; not starting "
                 "without them (the daemon reads it before any switch to "
                 "server.user)",
                 cfg->model_state_dir);
        goto fail;
    }
    if (snap != NULL) {
        clf_model_free(*model);
        *model = snap;
    }
    /* The learner keeps the whole model; the workers score a copy
     * without its counts. */
    scoring = clf_model_clone_scoring(*model);
    if (scoring == NULL)
        goto fail;
    learn.model = *model;
    *model = scoring;
    snprintf(learn.last_id, sizeof(learn.last_id), "%s",
             clf_model_event_id(*model));
    learn_show_id(learn.last_id);
    pthread_mutex_unlock(&learn_lock);
    return 0;
fail:
    free(learn.state_dir);
    learn.state_dir = NULL;
    clf_scorer_free(learn.scorer);
    learn.scorer = NULL;
    pthread_mutex_unlock(&learn_lock);
    log_errx("%s", why);
    return -1;
}

int
learn_start(const struct config *cfg)
{
    struct redis_config rc;
    struct timeval tv;
    char err[256], host[256], cwd[1024];

    snprintf(learn.key, sizeof(learn.key), "%straining", cfg->redis_prefix);
    snprintf(learn.hkey, sizeof(learn.hkey), "%straining:snapshots",
             cfg->redis_prefix);
    if (gethostname(host, sizeof(host)) < 0)
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    if (cfg->model_state_dir[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL)
        cwd[0] = '\0';
    snprintf(learn.instance, sizeof(learn.instance), "%s:%s%s%s", host, cwd,
             cwd[0] ? "/" : "", cfg->model_state_dir);
    learn.base = event_base_new();
    if (learn.base == NULL)
        goto fail;
    learn.publish_ev = evtimer_new(learn.base, learn_timer_cb, NULL);
    learn.retry_ev = evtimer_new(learn.base, learn_retry_cb, NULL);
    learn.stop_ev = event_new(learn.base, -1, 0, learn_stop_cb, NULL);
    learn.snapshot_ev =
        event_new(learn.base, -1, EV_PERSIST, learn_timer_cb, &learn);
    if (learn.publish_ev == NULL || learn.retry_ev == NULL ||
        learn.stop_ev == NULL || learn.snapshot_ev == NULL)
        goto fail;
    if (cfg->model_snapshot_interval_s > 0) {
        tv.tv_sec = cfg->model_snapshot_interval_s;
        tv.tv_usec = 0;
        evtimer_add(learn.snapshot_ev, &tv);
    }
    memset(&rc, 0, sizeof(rc));
    rc.url = cfg->redis_url;
    rc.password = cfg->redis_password;
    rc.timeout_ms = LEARN_BLOCK_MS + cfg->redis_timeout_ms;
    rc.state_cb = learn_redis_state;
    learn.redis = redis_new(learn.base, &rc, err, sizeof(err));
    if (learn.redis == NULL) {
        log_errx("learning: redis.url: %s", err[0] ? err : "out of memory");
        return -1;
    }
    learn.trim_script = redis_script_add(learn.redis, learn_trim_lua);
    if (learn.trim_script == NULL)
        goto fail;
    if (pthread_create(&learn.thread, NULL, learn_main, NULL) != 0) {
        log_errx("learning: cannot start a thread");
        return -1;
    }
    learn.started = 1;
    return 0;
fail:
    log_errx("learning: out of memory");
    return -1;
}

void
learn_stop(void)
{
    if (learn.started) {
        event_active(learn.stop_ev, EV_READ, 1);
        pthread_join(learn.thread, NULL);
        learn.started = 0;
    }
    learn.stopping = 1;
    redis_free(learn.redis); /* fails the XREAD in flight */
    learn.redis = NULL;
    if (learn.publish_ev != NULL)
        event_free(learn.publish_ev);
    if (learn.retry_ev != NULL)
        event_free(learn.retry_ev);
    if (learn.stop_ev != NULL)
        event_free(learn.stop_ev);
    if (learn.snapshot_ev != NULL)
        event_free(learn.snapshot_ev);
    learn.publish_ev = learn.retry_ev = learn.stop_ev = NULL;
    learn.snapshot_ev = NULL;
    if (learn.base != NULL)
        event_base_free(learn.base);
    learn.base = NULL;
    pthread_mutex_lock(&learn_lock);
    clf_model_free(learn.model);
    learn.model = NULL;
    clf_scorer_free(learn.scorer);
    learn.scorer = NULL;
    free(learn.state_dir);
    learn.state_dir = NULL;
    pthread_mutex_unlock(&learn_lock);
}

void
learn_publish(struct state *st)
{
    char new_base[sizeof(learn.base_id)];
    struct clf_model *m = NULL;
    char *dir;

    /* A copy: st->model (the id's owner) is replaced below. */
    snprintf(new_base, sizeof(new_base), "%s", clf_model_id(st->model));
    pthread_mutex_lock(&learn_lock);
    if (learn.model == NULL)
        goto publish;
    if (!strcmp(new_base, learn.base_id)) {
        /* The same base: what was learned stays. */
        struct clf_error e;

        memset(&e, 0, sizeof(e));
        if (learn.dirty && clf_model_calibrate(learn.model, &e) != CLF_OK)
            log_warnx("learning: calibration: %s", e.msg);
        m = clf_model_clone_scoring(learn.model);
        if (m == NULL) {
            log_warnx("reload: out of memory; keeping the running model");
            pthread_mutex_unlock(&learn_lock);
            state_release(st);
            return;
        }
        clf_model_free(st->model);
        st->model = m; /* st->model_id stays the base's */
        learn.dirty = 0;
        learn.oldest_ms = 0; /* published here: no lag to report */
        log_info("reload: same base model %s: keeping what was learned "
                 "(training events up to %s)",
                 learn.base_id, learn.last_id[0] ? learn.last_id : "none");
    } else {
        /* A new base: keep the old one's learning on disk, then start
         * from the new one (or its newest snapshot). */
        struct clf_model *snap;

        learn_snapshot();
        if (learn_snap_load(st->cfg->model_state_dir, new_base, &snap) < 0) {
            log_warnx("reload: model.state_dir %s cannot be read; keeping "
                      "the running model",
                      st->cfg->model_state_dir);
            pthread_mutex_unlock(&learn_lock);
            state_release(st);
            return;
        }
        m = clf_model_clone_scoring(snap != NULL ? snap : st->model);
        if (m == NULL) {
            log_warnx("reload: out of memory; keeping the running model");
            clf_model_free(snap);
            pthread_mutex_unlock(&learn_lock);
            state_release(st);
            return;
        }
        /* The learner takes the whole model, the workers a scoring copy
         * (st->model_id stays the base's). */
        clf_model_free(learn.model);
        if (snap != NULL) {
            learn.model = snap;
            clf_model_free(st->model);
        } else {
            learn.model = st->model;
        }
        st->model = m;
        snprintf(learn.base_id, sizeof(learn.base_id), "%s", new_base);
        snprintf(learn.last_id, sizeof(learn.last_id), "%s",
                 clf_model_event_id(m));
        learn_show_id(learn.last_id);
        learn.epoch++;
        learn.dirty = learn.unsaved = 0;
        learn.oldest_ms = 0;
        log_info("reload: new base model %s: training events after %s are "
                 "replayed",
                 new_base,
                 learn.last_id[0] ? learn.last_id : "the stream's start");
    }
    dir = strdup(st->cfg->model_state_dir);
    if (dir != NULL) {
        free(learn.state_dir);
        learn.state_dir = dir;
    }
    learn.trim = st->cfg->model_trim_stream != 0;
publish:
    state_publish(st);
    pthread_mutex_unlock(&learn_lock);
}

/* ---- what /metrics and /v1/stats show ------------------------------- */

int
learn_unsure_reason(const struct clf_model *m, unsigned i, char *buf,
                    size_t len)
{
    unsigned min = clf_model_settings(m)->min_examples;
    const char *name = clf_model_label_name(m, i);
    uint64_t neg = 0, pos = 0;

    clf_model_label_examples(m, i, &neg, &pos);
    if (neg + pos < min)
        snprintf(buf, len, "%s: %" PRIu64 " of %u examples", name, neg + pos,
                 min);
    else if (pos == 0 || neg == 0)
        snprintf(buf, len, "%s: no examples of class %d", name,
                 pos == 0 ? 1 : 0);
    else
        return 0;
    return 1;
}

void
learn_metrics_render(struct evbuffer *out, const struct state *st)
{
    unsigned i, n;
    long long lag = LEARN_GET(learn_lag_ms);
    long long snap = LEARN_GET(learn_snapshot_ms);

    evbuffer_add_printf(out, "# HELP modfilter_training_events_total "
                             "Training events applied, by source.\n"
                             "# TYPE modfilter_training_events_total "
                             "counter\n");
    for (i = 0; i < LEARN_N_SOURCES; i++)
        evbuffer_add_printf(out,
                            "modfilter_training_events_total{source=\"%s\"} "
                            "%llu\n",
                            learn_source_names[i], LEARN_GET(learn_events[i]));
    evbuffer_add_printf(out,
                        "# HELP modfilter_training_events_skipped_total "
                        "Malformed training events skipped.\n"
                        "# TYPE modfilter_training_events_skipped_total "
                        "counter\n"
                        "modfilter_training_events_skipped_total %llu\n",
                        LEARN_GET(learn_skipped));
    evbuffer_add_printf(out,
                        "# HELP modfilter_training_lag_seconds At the last "
                        "publish of learned state, the age of the oldest "
                        "event it included (stream clock to this host's).\n"
                        "# TYPE modfilter_training_lag_seconds gauge\n"
                        "modfilter_training_lag_seconds %.3f\n",
                        lag > 0 ? lag / 1000.0 : 0.0);
    evbuffer_add_printf(out,
                        "# HELP modfilter_training_snapshot_timestamp_seconds "
                        "When the last snapshot was written (0: none yet).\n"
                        "# TYPE modfilter_training_snapshot_timestamp_seconds "
                        "gauge\n"
                        "modfilter_training_snapshot_timestamp_seconds "
                        "%.3f\n",
                        snap / 1000.0);
    if (st == NULL)
        return;
    evbuffer_add_printf(out, "# HELP modfilter_label_unsure 1 when a head "
                             "has too few examples (or lacks a class) and "
                             "answers unsure.\n"
                             "# TYPE modfilter_label_unsure gauge\n");
    n = clf_model_label_count(st->model);
    for (i = 0; i < n; i++) {
        char why[CLF_LABEL_MAX + 64];

        /* Label names are [a-z0-9_-]: nothing to escape. */
        evbuffer_add_printf(
            out, "modfilter_label_unsure{label=\"%s\"} %d\n",
            clf_model_label_name(st->model, i),
            learn_unsure_reason(st->model, i, why, sizeof(why)));
    }
}

json_t *
learn_stats_labels(const struct state *st)
{
    json_t *labels = json_object();
    unsigned i, n = clf_model_label_count(st->model);

    for (i = 0; labels != NULL && i < n; i++) {
        char why[CLF_LABEL_MAX + 64];
        uint64_t neg = 0, pos = 0;
        json_t *o;

        clf_model_label_examples(st->model, i, &neg, &pos);
        o = json_pack("{s:{s:I, s:I}, s:o}", "examples", "0", (json_int_t)neg,
                      "1", (json_int_t)pos, "unsure_reason",
                      learn_unsure_reason(st->model, i, why, sizeof(why))
                          ? json_string(why)
                          : json_null());
        if (o == NULL ||
            json_object_set_new(labels, clf_model_label_name(st->model, i), o) <
                0) {
            json_decref(labels);
            return NULL;
        }
    }
    return labels;
}

json_t *
learn_stats_training(void)
{
    char id[LEARN_ID_MAX];
    json_t *events = json_object();
    long long lag = LEARN_GET(learn_lag_ms);
    unsigned i;

    pthread_mutex_lock(&learn_shown_lock);
    memcpy(id, learn_shown_id, sizeof(id));
    pthread_mutex_unlock(&learn_shown_lock);
    for (i = 0; events != NULL && i < LEARN_N_SOURCES; i++)
        json_object_set_new(
            events, learn_source_names[i],
            json_integer((json_int_t)LEARN_GET(learn_events[i])));
    return json_pack("{s:o*, s:I, s:s?, s:o}", "events", events, "skipped",
                     (json_int_t)LEARN_GET(learn_skipped), "last_event_id",
                     id[0] ? id : NULL, "lag_seconds",
                     lag >= 0 ? json_real(lag / 1000.0) : json_null());
}
