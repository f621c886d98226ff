/*
 * result.c - from classifier scores to what the client and the moderator
 * see: the verdict (DESIGN.md's rule with the configured thresholds), the
 * reply object and the record stored in Redis.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonw.h"
#include "modfilterd.h"

enum clf_verdict
result_verdict(const struct state *st, const struct clf_result *r)
{
    enum clf_verdict worst = CLF_ALLOW, v;
    double review, reject;
    unsigned i;

    for (i = 0; i < r->n_labels; i++) {
        config_thresholds(st->cfg, r->labels[i].label, &review, &reject);
        v = clf_label_verdict(r->labels[i].score, r->labels[i].unsure, review,
                              reject);
        if (v > worst)
            worst = v;
    }
    return worst;
}

/* "scores" and "unsure" members; returns where the first begins in
 * w->buf (after its comma: a member always comes before them). */
static size_t
result_write_scores(struct jsonw *w, const struct clf_result *r)
{
    size_t at = w->len + 1;
    unsigned i;

    JSONW_KEY(w, "scores");
    jsonw_object_begin(w);
    for (i = 0; i < r->n_labels; i++) {
        jsonw_key(w, r->labels[i].label);
        jsonw_real(w, r->labels[i].score);
    }
    jsonw_object_end(w);
    JSONW_KEY(w, "unsure");
    jsonw_array_begin(w);
    for (i = 0; i < r->n_labels; i++)
        if (r->labels[i].unsure)
            jsonw_string(w, r->labels[i].label);
    jsonw_array_end(w);
    return at;
}

/* The "reasons" member; returns where its value begins in w->buf. */
static size_t
result_write_reasons(struct jsonw *w, const struct clf_result *r)
{
    unsigned i, j;
    size_t at;

    JSONW_KEY(w, "reasons");
    at = w->len;
    jsonw_object_begin(w);
    for (i = 0; i < r->n_labels; i++) {
        const struct clf_label_result *l = &r->labels[i];

        jsonw_key(w, l->label);
        jsonw_array_begin(w);
        for (j = 0; j < l->n_reasons; j++) {
            jsonw_object_begin(w);
            JSONW_KEY(w, "feature");
            jsonw_string(w, l->reasons[j].feature);
            JSONW_KEY(w, "weight");
            jsonw_real(w, l->reasons[j].weight);
            jsonw_object_end(w);
        }
        jsonw_array_end(w);
    }
    jsonw_object_end(w);
    return at;
}

void
result_write_reply(struct jsonw *w, const char *id, const struct clf_result *r,
                   enum clf_verdict v, int queued, int spooled,
                   const struct result_shared *shared)
{
    jsonw_object_begin(w);
    JSONW_KEY(w, "id");
    jsonw_string(w, id);
    /* The record's text where it was kept: written once. */
    if (shared != NULL && shared->scores != NULL)
        jsonw_raw(w, shared->scores, shared->scores_len); /* two members */
    else
        result_write_scores(w, r);
    JSONW_KEY(w, "verdict");
    jsonw_string(w, clf_verdict_name(v));
    JSONW_KEY(w, "queued");
    jsonw_bool(w, queued);
    if (spooled) {
        JSONW_KEY(w, "spooled");
        jsonw_bool(w, 1);
    }
    JSONW_KEY(w, "lang");
    jsonw_string(w, r->lang);
    if (shared != NULL && shared->reasons != NULL) {
        JSONW_KEY(w, "reasons");
        jsonw_raw(w, shared->reasons, shared->reasons_len);
    } else {
        result_write_reasons(w, r);
    }
    jsonw_object_end(w);
}

void
result_write_json(struct jsonw *w, const json_t *v)
{
    char *text =
        json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(6));

    if (text == NULL) {
        w->failed = 1;
        return;
    }
    jsonw_raw(w, text, strlen(text));
    free(text);
}

void
result_rfc3339(long long ms, char *buf, size_t len)
{
    /* This thread's last second, formatted: one strftime a second. */
    static _Thread_local long long last_sec = -1;
    static _Thread_local char base[24];
    long long sec = ms / 1000;
    int frac = (int)(ms % 1000);

    if (sec != last_sec) {
        time_t t = (time_t)sec;
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
        last_sec = sec;
    }
    if (len < 25 || frac < 0) { /* short buffer, or before 1970 */
        snprintf(buf, len, "%s.%03dZ", base, frac < 0 ? 0 : frac);
        return;
    }
    memcpy(buf, base, 19);
    buf[19] = '.';
    buf[20] = (char)('0' + frac / 100);
    buf[21] = (char)('0' + frac / 10 % 10);
    buf[22] = (char)('0' + frac % 10);
    buf[23] = 'Z';
    buf[24] = '\0';
}

/* A member when value is not NULL. */
static void
result_write_opt(struct jsonw *w, const char *key, const char *value)
{
    if (value == NULL)
        return;
    jsonw_key(w, key);
    jsonw_string(w, value);
}

void
result_write_record(struct jsonw *w, const char *id,
                    const struct request_comment *rc,
                    const struct clf_result *r, enum clf_verdict v,
                    const struct state *st, long long received_ms,
                    const json_t *extra, struct result_spans *spans)
{
    const char *key;
    json_t *val;
    char when[40];

    result_rfc3339(received_ms, when, sizeof(when));
    jsonw_object_begin(w);
    JSONW_KEY(w, "id");
    jsonw_string(w, id);
    JSONW_KEY(w, "text");
    jsonw_stringn(w, rc->text, rc->text_len);
    JSONW_KEY(w, "author");
    jsonw_object_begin(w);
    result_write_opt(w, "name", rc->author_name);
    result_write_opt(w, "email", rc->author_email);
    result_write_opt(w, "url", rc->author_url);
    result_write_opt(w, "ip", rc->author_ip);
    jsonw_object_end(w);
    /* Always there, null when not given: DESIGN.md's queue item has it. */
    JSONW_KEY(w, "post");
    jsonw_string(w, rc->post);
    spans->scores_at = result_write_scores(w, r);
    spans->scores_len = w->len - spans->scores_at;
    JSONW_KEY(w, "verdict");
    jsonw_string(w, clf_verdict_name(v));
    spans->reasons_at = result_write_reasons(w, r);
    spans->reasons_len = w->len - spans->reasons_at;
    JSONW_KEY(w, "lang");
    jsonw_string(w, r->lang);
    result_write_opt(w, "lang_hint", rc->lang);
    JSONW_KEY(w, "model_id");
    jsonw_string(w, st->model_id);
    JSONW_KEY(w, "daemon_version");
    jsonw_string(w, MODFILTERD_VERSION);
    JSONW_KEY(w, "received_at");
    jsonw_string(w, when);
    JSONW_KEY(w, "received_ms");
    jsonw_int(w, received_ms);
    json_object_foreach((json_t *)extra, key, val)
    {
        jsonw_key(w, key);
        result_write_json(w, val);
    }
    jsonw_object_end(w);
}

json_t *
result_reply_from_stored(const char *stored, size_t len)
{
    static const char *const keys[] = {"id",      "scores", "unsure",
                                       "verdict", "lang",   "reasons"};
    json_t *rec, *o = NULL;
    size_t i;

    rec = json_loadb(stored, len, 0, NULL);
    if (!json_is_object(rec))
        goto fail;
    o = json_object();
    if (o == NULL)
        goto fail;
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *v = json_object_get(rec, keys[i]);

        if (v != NULL && json_object_set(o, keys[i], v))
            goto fail;
        if (i == 3 && json_object_set_new(o, "queued", json_true()))
            goto fail;
    }
    json_decref(rec);
    return o;
fail:
    json_decref(rec);
    json_decref(o);
    return NULL;
}
