/*
 * score.c - `modfilter score` (JSON Lines in, one JSON object per valid
 * line out) and `modfilter explain` (one text, for people).
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "modfilterd.h"

/* The verdict with the daemon's rule and thresholds ([thresholds] of the
 * config: the same keys, defaults and code as modfilterd). */
static enum clf_verdict
verdict_of(const struct config *cfg, const struct clf_result *r)
{
    enum clf_verdict v = CLF_ALLOW;
    for (unsigned h = 0; h < r->n_labels; h++) {
        double review, reject;
        config_thresholds(cfg, r->labels[h].label, &review, &reject);
        enum clf_verdict lv = clf_label_verdict(
            r->labels[h].score, r->labels[h].unsure, review, reject);
        if (lv > v)
            v = lv;
    }
    return v;
}

/* One output line into w: {"id","scores","unsure","verdict","lang"} and,
 * with reasons, "reasons" (written directly: a jansson tree cost more than
 * scoring the comment). */
static void
result_write(struct jsonw *w, const char *id, const struct clf_result *r,
             enum clf_verdict v, int reasons)
{
    jsonw_reset(w);
    jsonw_object_begin(w);
    JSONW_KEY(w, "id");
    jsonw_string(w, id);
    JSONW_KEY(w, "scores");
    jsonw_object_begin(w);
    for (unsigned h = 0; h < r->n_labels; h++) {
        jsonw_key(w, r->labels[h].label);
        jsonw_real(w,
                   (double)(long long)(r->labels[h].score * 1e6 + 0.5) / 1e6);
    }
    jsonw_object_end(w);
    JSONW_KEY(w, "unsure");
    jsonw_array_begin(w);
    for (unsigned h = 0; h < r->n_labels; h++)
        if (r->labels[h].unsure)
            jsonw_string(w, r->labels[h].label);
    jsonw_array_end(w);
    JSONW_KEY(w, "verdict");
    jsonw_string(w, clf_verdict_name(v));
    JSONW_KEY(w, "lang");
    jsonw_string(w, r->lang);
    if (reasons) {
        JSONW_KEY(w, "reasons");
        jsonw_object_begin(w);
        for (unsigned h = 0; h < r->n_labels; h++) {
            jsonw_key(w, r->labels[h].label);
            jsonw_array_begin(w);
            for (unsigned k = 0; k < r->labels[h].n_reasons; k++) {
                jsonw_object_begin(w);
                JSONW_KEY(w, "feature");
                jsonw_string(w, r->labels[h].reasons[k].feature);
                JSONW_KEY(w, "weight");
                jsonw_real(w, r->labels[h].reasons[k].weight);
                jsonw_object_end(w);
            }
            jsonw_array_end(w);
        }
        jsonw_object_end(w);
    }
    jsonw_object_end(w);
}

const char cli_usage_score[] = "usage: modfilter score --model M.mfm [-c FILE] "
                               "[--set thresholds.KEY=V] [--reasons]\n"
                               "         [--strict] [FILE.jsonl | -]\n";
const char cli_usage_explain[] = "usage: modfilter explain --model M.mfm [-c "
                                 "FILE] [--set thresholds.KEY=V] \"text\"\n";

static void
usage_score(void)
{
    fputs(cli_usage_score, stderr);
}

/* Options shared by score and explain: model, -c, --set; score's own
 * --reasons and --strict when lines is set. */
struct score_opts {
    const char *model;
    struct config *cfg; /* owned */
    int lines, reasons, strict;
};

/* 1 an option taken, 0 not an option of these, -1 a usage error, -2 the
 * -c file could not be read (all said). */
static int
score_opt(struct score_opts *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (o->lines && !strcmp(a, "--reasons"))
        return o->reasons = 1;
    if (o->lines && !strcmp(a, "--strict"))
        return o->strict = 1;
    if (strcmp(a, "--model") && strcmp(a, "-c") && strcmp(a, "--set"))
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "modfilter: %s needs a value\n", a);
        return -1;
    }
    const char *v = argv[++*i];
    struct config_error err;
    if (!strcmp(a, "--model")) {
        o->model = v;
        return 1;
    }
    if (!strcmp(a, "-c") ? config_load_file(o->cfg, v, &err)
                         : config_set_arg(o->cfg, v, &err)) {
        fprintf(stderr, "modfilter: %s\n", err.msg);
        return strcmp(a, "-c") ? -1 : -2;
    }
    return 1;
}

/* The daemon's own checks of the thresholds (review <= reject), and only
 * those: the rest of a daemon config (its secret files, say) is not this
 * tool's. */
static int
score_opts_check(struct score_opts *o)
{
    struct config_error err;
    if (config_check_thresholds(o->cfg, &err) < 0) {
        fprintf(stderr, "modfilter: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* The model, or NULL (said why): its labels must be those the
 * configuration's thresholds name, as in the daemon. */
static struct clf_model *
score_load_model(const struct score_opts *o)
{
    struct clf_model *m = NULL;
    struct clf_error err;
    struct config_error cerr;

    if (clf_model_load_scoring(o->model, &m, &err)) {
        fprintf(stderr, "modfilter: %s\n", err.msg);
        return NULL;
    }
    if (config_check_labels(o->cfg, m, &cerr) < 0) {
        fprintf(stderr, "%s\n", cerr.msg);
        clf_model_free(m);
        return NULL;
    }
    return m;
}

int
cmd_score(int argc, char **argv)
{
    struct score_opts o = {.cfg = config_new(), .lines = 1};
    const char *path = "-";
    struct clf_model *m = NULL;
    struct clf_scorer *sc = NULL;
    struct jsonl *j = NULL;
    struct jsonw w;
    int rc = EXIT_USAGE, n_paths = 0;
    jsonw_init(&w);
    if (!o.cfg) {
        fprintf(stderr, "modfilter: out of memory\n");
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        int t = score_opt(&o, argc, argv, &i);
        if (t < 0) {
            rc = t == -2 ? 1 : EXIT_USAGE;
            goto out;
        }
        if (t)
            continue;
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "modfilter: unknown option %s\n", argv[i]);
            usage_score();
            goto out;
        }
        path = argv[i];
        n_paths++;
    }
    if (!o.model || n_paths > 1) {
        usage_score();
        goto out;
    }
    rc = 1; /* from here on, not the arguments' fault */
    if (score_opts_check(&o) < 0)
        goto out;
    if (!(m = score_load_model(&o)))
        goto out;
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
            if (o.strict || r == -2) {
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
        result_write(&w, rec.id, &res, verdict_of(o.cfg, &res), o.reasons);
        if (jsonw_failed(&w)) {
            fprintf(stderr, "modfilter: out of memory\n");
            rc = 1;
            break;
        }
        fwrite(w.buf, 1, w.len, stdout);
        putchar('\n');
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "modfilter: writing output: %s\n", strerror(errno));
        rc = 1;
    }
out:
    jsonl_close(j);
    jsonw_release(&w);
    clf_scorer_free(sc);
    clf_model_free(m);
    config_free(o.cfg);
    return rc;
}

int
cmd_explain(int argc, char **argv)
{
    struct score_opts o = {.cfg = config_new()};
    const char *text = NULL;
    struct clf_model *m = NULL;
    struct clf_scorer *sc = NULL;
    struct clf_result res;
    int rc = EXIT_USAGE;
    if (!o.cfg) {
        fprintf(stderr, "modfilter: out of memory\n");
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        int t = score_opt(&o, argc, argv, &i);
        if (t < 0) {
            rc = t == -2 ? 1 : EXIT_USAGE;
            goto out;
        }
        if (t)
            continue;
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "modfilter: unknown option %s\n", argv[i]);
            text = NULL;
            break;
        }
        if (text) {
            fprintf(stderr, "modfilter: explain takes one text (quote it)\n");
            text = NULL;
            break;
        }
        text = argv[i];
    }
    if (!o.model || !text) {
        fputs(cli_usage_explain, stderr);
        goto out;
    }
    rc = 1; /* from here on, not the arguments' fault */
    if (score_opts_check(&o) < 0)
        goto out;
    if (!(m = score_load_model(&o)))
        goto out;
    if (!(sc = clf_scorer_new()) ||
        clf_score(sc, m, text, strlen(text), NULL, 1, &res)) {
        fprintf(stderr, "modfilter: out of memory\n");
        goto out;
    }
    enum clf_verdict v = verdict_of(o.cfg, &res);
    printf("verdict: %s   language: %s%s\n", clf_verdict_name(v), res.lang,
           res.truncated ? "   (text truncated)" : "");
    for (unsigned h = 0; h < res.n_labels; h++) {
        const struct clf_label_result *l = &res.labels[h];
        double review, reject;
        config_thresholds(o.cfg, l->label, &review, &reject);
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
    config_free(o.cfg);
    return rc;
}
