/*
 * result.c - from classifier scores to what the client and the moderator
 * see: the verdict (DESIGN.md's rule with the configured thresholds), the
 * reply object and the record stored in Redis.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

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

#define RESULT_SCORES 1  /* "scores" and "unsure" */
#define RESULT_REASONS 2 /* "reasons" */

/* The parts of r named by what into obj. */
static int
result_add_scores(json_t *obj, const struct clf_result *r, int what)
{
    json_t *scores = json_object(), *unsure = json_array();
    json_t *reasons = json_object();
    unsigned i, j;
    int ret = -1;

    if (scores == NULL || unsure == NULL || reasons == NULL)
        goto fail;
    for (i = 0; i < r->n_labels; i++) {
        const struct clf_label_result *l = &r->labels[i];
        json_t *list;

        if (json_object_set_new(scores, l->label, json_real(l->score)))
            goto fail;
        if (l->unsure && json_array_append_new(unsure, json_string(l->label)))
            goto fail;
        if (!(what & RESULT_REASONS))
            continue;
        list = json_array();
        if (json_object_set_new(reasons, l->label, list))
            goto fail;
        for (j = 0; j < l->n_reasons; j++)
            if (json_array_append_new(list,
                                      json_pack("{s:s, s:f}", "feature",
                                                l->reasons[j].feature, "weight",
                                                l->reasons[j].weight)))
                goto fail;
    }
    if ((what & RESULT_SCORES) && (json_object_set(obj, "scores", scores) ||
                                   json_object_set(obj, "unsure", unsure)))
        goto fail;
    if ((what & RESULT_REASONS) && json_object_set(obj, "reasons", reasons))
        goto fail;
    ret = 0;
fail:
    json_decref(scores);
    json_decref(unsure);
    json_decref(reasons);
    return ret;
}

json_t *
result_reply(const char *id, const struct clf_result *r, enum clf_verdict v,
             int queued)
{
    json_t *o = json_object();

    if (o == NULL)
        return NULL;
    if (json_object_set_new(o, "id", json_string(id)) ||
        result_add_scores(o, r, RESULT_SCORES) ||
        json_object_set_new(o, "verdict", json_string(clf_verdict_name(v))) ||
        json_object_set_new(o, "queued", json_boolean(queued)) ||
        json_object_set_new(o, "lang", json_string(r->lang)) ||
        result_add_scores(o, r, RESULT_REASONS))
        goto fail;
    return o;
fail:
    json_decref(o);
    return NULL;
}

void
result_rfc3339(long long ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char base[24];

    gmtime_r(&t, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", base, (int)(ms % 1000));
}

static int
result_set_str(json_t *o, const char *key, const char *value)
{
    if (value == NULL)
        return 0;
    return json_object_set_new(o, key, json_string(value));
}

json_t *
result_record(const char *id, const struct request_comment *rc,
              const struct clf_result *r, enum clf_verdict v,
              const struct state *st, long long received_ms)
{
    json_t *o = json_object(), *author = json_object();
    char when[40];

    if (o == NULL || author == NULL)
        goto fail;
    result_rfc3339(received_ms, when, sizeof(when));
    if (result_set_str(author, "name", rc->author_name) ||
        result_set_str(author, "email", rc->author_email) ||
        result_set_str(author, "url", rc->author_url) ||
        result_set_str(author, "ip", rc->author_ip))
        goto fail;
    if (json_object_set_new(o, "id", json_string(id)) ||
        json_object_set_new(o, "text", json_stringn(rc->text, rc->text_len)) ||
        json_object_set(o, "author", author) ||
        result_set_str(o, "post", rc->post) ||
        result_add_scores(o, r, RESULT_SCORES) ||
        json_object_set_new(o, "verdict", json_string(clf_verdict_name(v))) ||
        result_add_scores(o, r, RESULT_REASONS) ||
        json_object_set_new(o, "lang", json_string(r->lang)) ||
        result_set_str(o, "lang_hint", rc->lang) ||
        json_object_set_new(o, "model_id", json_string(st->model_id)) ||
        json_object_set_new(o, "daemon_version",
                            json_string(MODFILTERD_VERSION)) ||
        json_object_set_new(o, "received_at", json_string(when)) ||
        json_object_set_new(o, "received_ms", json_integer(received_ms)))
        goto fail;
    json_decref(author);
    return o;
fail:
    json_decref(author);
    json_decref(o);
    return NULL;
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
