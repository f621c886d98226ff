/*
 * score.c - `modfilter score` (JSON Lines in, one JSON object per valid
 * line out) and `modfilter explain` (one text, for people).
 */
#include <errno.h>
#include <ini.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Review and reject thresholds: defaults and per-label overrides, the same
 * keys and defaults as the daemon's [thresholds] section. */
struct thresholds {
    double review, reject;
    unsigned n;
    struct {
        char label[CLF_LABEL_MAX];
        double review, reject; /* NAN: use the default */
    } per[CLF_MAX_LABELS];
};

static void
thresholds_init(struct thresholds *t)
{
    memset(t, 0, sizeof *t);
    t->review = 0.5;
    t->reject = 0.95;
}

/* Set thresholds.KEY (KEY: review, reject, LABEL_review, LABEL_reject). */
static int
thresholds_set(struct thresholds *t, const char *key, const char *value)
{
    char *end;
    double v = strtod(value, &end);
    if (end == value || *end || !(v >= 0 && v <= 1))
        return -1;
    const char *us = strrchr(key, '_');
    const char *kind = us ? us + 1 : key;
    int is_review = !strcmp(kind, "review");
    if (!is_review && strcmp(kind, "reject"))
        return -1;
    if (!us) {
        *(is_review ? &t->review : &t->reject) = v;
        return 0;
    }
    size_t n = (size_t)(us - key);
    if (n == 0 || n >= CLF_LABEL_MAX)
        return -1;
    unsigned i;
    for (i = 0; i < t->n; i++)
        if (strlen(t->per[i].label) == n && !strncmp(t->per[i].label, key, n))
            break;
    if (i == t->n) {
        if (t->n == CLF_MAX_LABELS)
            return -1;
        snprintf(t->per[i].label, CLF_LABEL_MAX, "%.*s", (int)n, key);
        t->per[i].review = t->per[i].reject = -1;
        t->n++;
    }
    *(is_review ? &t->per[i].review : &t->per[i].reject) = v;
    return 0;
}

static void
thresholds_get(const struct thresholds *t, const char *label, double *review,
               double *reject)
{
    *review = t->review;
    *reject = t->reject;
    for (unsigned i = 0; i < t->n; i++) {
        if (strcmp(t->per[i].label, label))
            continue;
        if (t->per[i].review >= 0)
            *review = t->per[i].review;
        if (t->per[i].reject >= 0)
            *reject = t->per[i].reject;
    }
}

static int
ini_cb(void *arg, const char *section, const char *key, const char *value)
{
    if (strcmp(section, "thresholds"))
        return 1; /* other sections are the daemon's */
    return thresholds_set(arg, key, value) == 0;
}

static enum clf_verdict
verdict_of(const struct thresholds *t, const struct clf_result *r)
{
    enum clf_verdict v = CLF_ALLOW;
    for (unsigned h = 0; h < r->n_labels; h++) {
        double review, reject;
        thresholds_get(t, r->labels[h].label, &review, &reject);
        enum clf_verdict lv = clf_label_verdict(
            r->labels[h].score, r->labels[h].unsure, review, reject);
        if (lv > v)
            v = lv;
    }
    return v;
}

static json_t *
result_json(const char *id, const struct clf_result *r, enum clf_verdict v,
            int reasons)
{
    json_t *o = json_object(), *scores = json_object(), *unsure = json_array();
    json_object_set_new(o, "id", id ? json_string(id) : json_null());
    for (unsigned h = 0; h < r->n_labels; h++) {
        const struct clf_label_result *l = &r->labels[h];
        json_object_set_new(scores, l->label,
                            json_real((double)(long long)(l->score * 1e6 +
                                                          0.5) / 1e6));
        if (l->unsure)
            json_array_append_new(unsure, json_string(l->label));
    }
    json_object_set_new(o, "scores", scores);
    json_object_set_new(o, "unsure", unsure);
    json_object_set_new(o, "verdict", json_string(clf_verdict_name(v)));
    json_object_set_new(o, "lang", json_string(r->lang));
    if (reasons) {
        json_t *rs = json_object();
        for (unsigned h = 0; h < r->n_labels; h++) {
            json_t *a = json_array();
            for (unsigned k = 0; k < r->labels[h].n_reasons; k++)
                json_array_append_new(
                    a, json_pack("{s:s, s:f}", "feature",
                                 r->labels[h].reasons[k].feature, "weight",
                                 r->labels[h].reasons[k].weight));
            json_object_set_new(rs, r->labels[h].label, a);
        }
        json_object_set_new(o, "reasons", rs);
    }
    return o;
}

static void
usage_score(void)
{
    fprintf(stderr,
            "usage: modfilter score --model M.mfm [-c FILE] [--set "
            "thresholds.KEY=V] [--reasons]\n"
            "         [--strict] [FILE.jsonl | -]\n");
}

/* Options shared by score and explain: model, -c, --set. */
struct score_opts {
    const char *model, *config;
    struct thresholds t;
    int reasons, strict;
};

static int
score_opt(struct score_opts *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (!strcmp(a, "--reasons"))
        return o->reasons = 1;
    if (!strcmp(a, "--strict"))
        return o->strict = 1;
    if (strcmp(a, "--model") && strcmp(a, "-c") && strcmp(a, "--set"))
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "modfilter: %s needs a value\n", a);
        return -1;
    }
    const char *v = argv[++*i];
    if (!strcmp(a, "--model")) {
        o->model = v;
    } else if (!strcmp(a, "-c")) {
        int line = ini_parse(v, ini_cb, &o->t);
        if (line) {
            fprintf(stderr, "%s:%d: %s\n", v, line > 0 ? line : 0,
                    line > 0 ? "bad [thresholds] value" : strerror(errno));
            return -1;
        }
    } else {
        const char *eq = strchr(v, '=');
        char key[128];
        if (!eq || strncmp(v, "thresholds.", 11) ||
            (size_t)(eq - v - 11) >= sizeof key) {
            fprintf(stderr, "modfilter: --set wants thresholds.KEY=VALUE\n");
            return -1;
        }
        snprintf(key, sizeof key, "%.*s", (int)(eq - v - 11), v + 11);
        if (thresholds_set(&o->t, key, eq + 1) < 0) {
            fprintf(stderr, "modfilter: --set %s: bad threshold\n", v);
            return -1;
        }
    }
    return 1;
}

int
cmd_score(int argc, char **argv)
{
    struct score_opts o = {0};
    const char *path = "-";
    struct clf_model *m = NULL;
    struct clf_scorer *sc = NULL;
    struct jsonl *j = NULL;
    struct clf_error err;
    int rc = EXIT_USAGE, n_paths = 0;
    thresholds_init(&o.t);
    for (int i = 1; i < argc; i++) {
        int t = score_opt(&o, argc, argv, &i);
        if (t < 0)
            return EXIT_USAGE;
        if (t)
            continue;
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "modfilter: unknown option %s\n", argv[i]);
            usage_score();
            return EXIT_USAGE;
        }
        path = argv[i];
        n_paths++;
    }
    if (!o.model || n_paths > 1) {
        usage_score();
        return EXIT_USAGE;
    }
    rc = 1;
    if (clf_model_load(o.model, &m, &err)) {
        fprintf(stderr, "modfilter: %s\n", err.msg);
        goto out;
    }
    if (!(sc = clf_scorer_new()) || !(j = jsonl_open(path))) {
        fprintf(stderr, "modfilter: %s: %s\n", path, strerror(errno));
        goto out;
    }
    struct record rec;
    struct clf_result res;
    char msg[512];
    int r;
    rc = 0;
    while ((r = jsonl_next(j, &rec, msg, sizeof msg)) != 0) {
        if (r < 0) {
            fprintf(stderr, "%s\n", msg);
            if (o.strict) {
                rc = 1;
                break;
            }
            continue;
        }
        if (clf_score(sc, m, rec.text, rec.text_len, rec.lang, o.reasons,
                      &res)) {
            fprintf(stderr, "modfilter: out of memory\n");
            rc = 1;
            break;
        }
        json_t *out = result_json(rec.id, &res, verdict_of(&o.t, &res),
                                  o.reasons);
        char *s = json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(6));
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(out);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "modfilter: writing output: %s\n", strerror(errno));
        rc = 1;
    }
out:
    jsonl_close(j);
    clf_scorer_free(sc);
    clf_model_free(m);
    return rc;
}

int
cmd_explain(int argc, char **argv)
{
    struct score_opts o = {0};
    const char *text = NULL;
    struct clf_model *m = NULL;
    struct clf_scorer *sc = NULL;
    struct clf_error err;
    struct clf_result res;
    int rc = 1;
    thresholds_init(&o.t);
    for (int i = 1; i < argc; i++) {
        int t = score_opt(&o, argc, argv, &i);
        if (t < 0)
            return EXIT_USAGE;
        if (!t && !text && !(argv[i][0] == '-' && argv[i][1]))
            text = argv[i];
        else if (!t) {
            fprintf(stderr, "usage: modfilter explain --model M.mfm "
                            "[-c FILE] [--set K=V] \"text\"\n");
            return EXIT_USAGE;
        }
    }
    if (!o.model || !text) {
        fprintf(stderr, "usage: modfilter explain --model M.mfm \"text\"\n");
        return EXIT_USAGE;
    }
    if (clf_model_load(o.model, &m, &err)) {
        fprintf(stderr, "modfilter: %s\n", err.msg);
        goto out;
    }
    if (!(sc = clf_scorer_new()) ||
        clf_score(sc, m, text, strlen(text), NULL, 1, &res)) {
        fprintf(stderr, "modfilter: out of memory\n");
        goto out;
    }
    enum clf_verdict v = verdict_of(&o.t, &res);
    printf("verdict: %s   language: %s%s\n", clf_verdict_name(v), res.lang,
           res.truncated ? "   (text truncated)" : "");
    for (unsigned h = 0; h < res.n_labels; h++) {
        const struct clf_label_result *l = &res.labels[h];
        double review, reject;
        thresholds_get(&o.t, l->label, &review, &reject);
        printf("%-8s %.3f  %s%s\n", l->label, l->score,
               clf_verdict_name(
                   clf_label_verdict(l->score, l->unsure, review, reject)),
               l->unsure ? " (unsure: too little evidence)" : "");
        for (unsigned k = 0; k < l->n_reasons; k++)
            printf("    %+7.3f  %s\n", l->reasons[k].weight,
                   l->reasons[k].feature);
    }
    rc = 0;
out:
    clf_scorer_free(sc);
    clf_model_free(m);
    return rc;
}
