/*
 * eval.c - `modfilter eval`: cross-validated accuracy of one label.
 *
 * For each test fold of a folds file (`id<TAB>fold`; the fold "train" is
 * never a test fold): train a fresh model on the other folds' records,
 * calibrate it as `train` would, score the held-out records, and print ROC
 * AUC, accuracy and F1 (score >= 0.5 is positive) per fold and their mean:
 * the figures ../shared/tools/evalcli.py computes through train and score.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

struct item {
    char *id, *text, *lang, *fold;
    size_t len;
    int y;
    double score;
};

struct fold_row {
    char name[64];
    size_t n;
    double auc, acc, f1;
};

static int
cmp_id(const void *a, const void *b)
{
    return strcmp(((const struct item *)a)->id, ((const struct item *)b)->id);
}

static int
cmp_score(const void *a, const void *b)
{
    double x = (*(struct item *const *)a)->score;
    double y = (*(struct item *const *)b)->score;
    return (x > y) - (x < y);
}

/* Mann-Whitney U with mid-ranks for ties. */
static double
auc(struct item **v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_score);
    double rank_sum = 0;
    size_t npos = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && v[j + 1]->score == v[i]->score)
            j++;
        double mid = (i + j) / 2.0 + 1.0;
        for (size_t k = i; k <= j; k++)
            if (v[k]->y) {
                rank_sum += mid;
                npos++;
            }
        i = j + 1;
    }
    size_t nneg = n - npos;
    if (!npos || !nneg)
        return NAN;
    return (rank_sum - npos * (npos + 1) / 2.0) / ((double)npos * nneg);
}

static int
load_items(const char *path, const char *label, struct item **out, size_t *n,
           int strict)
{
    struct jsonl *j = jsonl_open(path);
    struct record rec;
    char msg[512];
    size_t cap = 0;
    int r;
    if (!j) {
        fprintf(stderr, "modfilter: %s: %s\n", path, strerror(errno));
        return -1;
    }
    while ((r = jsonl_next(j, &rec, msg, sizeof msg)) != 0) {
        int y = -1;
        for (unsigned k = 0; r > 0 && k < rec.n_labels; k++)
            if (!strcmp(rec.labels[k], label))
                y = rec.values[k];
        if (r < 0 || !rec.id) {
            fprintf(stderr, "%s\n", r < 0 ? msg : "a record without an id");
            if (strict)
                goto fail;
            continue;
        }
        if (y < 0)
            continue; /* this record does not teach the label */
        if (*n == cap) {
            cap = cap ? cap * 2 : 1024;
            struct item *v = realloc(*out, cap * sizeof *v);
            if (!v)
                goto fail;
            *out = v;
        }
        struct item *it = &(*out)[(*n)++];
        *it = (struct item){.id = strdup(rec.id),
                            .text = malloc(rec.text_len + 1),
                            .lang = rec.lang ? strdup(rec.lang) : NULL,
                            .len = rec.text_len,
                            .y = y};
        if (!it->id || !it->text)
            goto fail;
        memcpy(it->text, rec.text, rec.text_len + 1);
    }
    jsonl_close(j);
    return 0;
fail:
    jsonl_close(j);
    return -1;
}

static int
load_folds(const char *path, struct item *items, size_t n)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t len;
    if (!f) {
        fprintf(stderr, "modfilter: %s: %s\n", path, strerror(errno));
        return -1;
    }
    qsort(items, n, sizeof *items, cmp_id);
    while ((len = getline(&line, &cap, f)) > 0) {
        lineno++;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        char *tab = strchr(line, '\t');
        if (!tab) {
            fprintf(stderr, "%s:%zu: expected id<TAB>fold\n", path, lineno);
            fclose(f);
            free(line);
            return -1;
        }
        *tab = '\0';
        if (lineno == 1 && !strcmp(line, "id") && !strcmp(tab + 1, "fold"))
            continue;
        struct item key = {.id = line};
        struct item *it = bsearch(&key, items, n, sizeof *items, cmp_id);
        if (it && !it->fold)
            it->fold = strdup(tab + 1);
    }
    fclose(f);
    free(line);
    return 0;
}

static int
run_fold(const struct train_opts *o, const char *label, struct item *items,
         size_t n, const char *fold, struct fold_row *row)
{
    struct clf_model *m = clf_model_new(&o->settings);
    struct clf_scorer *sc = clf_scorer_new();
    struct item **test = calloc(n, sizeof *test);
    struct clf_error err;
    int rc = -1;
    if (!m || !sc || !test)
        goto out;
    for (unsigned k = 0; k < o->n_priors; k++)
        if (clf_model_set_prior(m, o->priors[k].label, o->priors[k].p, &err))
            goto out;
    size_t nt = 0;
    for (size_t i = 0; i < n; i++) {
        if (!items[i].fold)
            continue;
        if (!strcmp(items[i].fold, fold)) {
            test[nt++] = &items[i];
            continue;
        }
        enum clf_learn_outcome out;
        if (clf_learn(sc, m, items[i].text, items[i].len, items[i].lang, label,
                      items[i].y, &out, &err)) {
            fprintf(stderr, "modfilter: %s\n", err.msg);
            goto out;
        }
    }
    if (clf_model_calibrate(m, &err))
        goto out;
    int h = clf_model_label_index(m, label);
    size_t tp = 0, fp = 0, fn = 0, tn = 0;
    for (size_t i = 0; i < nt; i++) {
        struct clf_result r;
        if (clf_score(sc, m, test[i]->text, test[i]->len, NULL, 0, &r))
            goto out;
        double s = h >= 0 ? r.labels[h].score : 0.5;
        test[i]->score = s;
        int pos = s >= 0.5;
        tp += pos && test[i]->y;
        fp += pos && !test[i]->y;
        fn += !pos && test[i]->y;
        tn += !pos && !test[i]->y;
    }
    snprintf(row->name, sizeof row->name, "%s", fold);
    row->n = nt;
    row->auc = auc(test, nt);
    row->acc = nt ? (double)(tp + tn) / nt : NAN;
    row->f1 = tp ? 2.0 * tp / (2.0 * tp + fp + fn) : 0;
    rc = 0;
out:
    free(test);
    clf_scorer_free(sc);
    clf_model_free(m);
    return rc;
}

int
cmd_eval(int argc, char **argv)
{
    struct train_opts o;
    const char *folds = NULL, *label = NULL, *data = NULL;
    struct item *items = NULL;
    size_t n = 0;
    int rc = EXIT_USAGE;
    train_opts_init(&o);
    for (int i = 1; i < argc; i++) {
        int t = train_opts_parse(&o, argc, argv, &i);
        if (t < 0)
            return EXIT_USAGE;
        if (t)
            continue;
        if (!strcmp(argv[i], "--folds") && i + 1 < argc)
            folds = argv[++i];
        else if (!strcmp(argv[i], "--label") && i + 1 < argc)
            label = argv[++i];
        else if (argv[i][0] != '-' && !data)
            data = argv[i];
        else {
            data = NULL;
            break;
        }
    }
    if (!folds || !label || !data) {
        fprintf(stderr, "usage: modfilter eval --folds FOLDS.tsv --label "
                        "LABEL [training options] FILE.jsonl\n");
        return EXIT_USAGE;
    }
    rc = 1;
    if (load_items(data, label, &items, &n, o.strict) < 0 ||
        load_folds(folds, items, n) < 0)
        goto out;
    /* The test folds, in sorted order as evalcli.py takes them. */
    char *names[256];
    size_t nf = 0;
    for (size_t i = 0; i < n; i++) {
        const char *f = items[i].fold;
        size_t k;
        if (!f || !strcmp(f, "train"))
            continue;
        for (k = 0; k < nf && strcmp(names[k], f); k++)
            ;
        if (k == nf && nf < 256)
            names[nf++] = items[i].fold;
    }
    for (size_t a = 1; a < nf; a++)
        for (size_t b = a; b > 0 && strcmp(names[b - 1], names[b]) > 0; b--) {
            char *t = names[b];
            names[b] = names[b - 1];
            names[b - 1] = t;
        }
    if (!nf) {
        fprintf(stderr, "modfilter: %s: no test folds for these records\n",
                folds);
        goto out;
    }
    double sum[3] = {0};
    for (size_t k = 0; k < nf; k++) {
        struct fold_row row;
        if (run_fold(&o, label, items, n, names[k], &row) < 0) {
            fprintf(stderr, "modfilter: fold %s failed\n", names[k]);
            goto out;
        }
        printf("fold %10s  n=%6zu  auc=%.4f  acc=%.4f  f1=%.4f\n", row.name,
               row.n, row.auc, row.acc, row.f1);
        fflush(stdout);
        sum[0] += row.auc;
        sum[1] += row.acc;
        sum[2] += row.f1;
    }
    printf("mean auc=%.4f acc=%.4f f1=%.4f\n", sum[0] / nf, sum[1] / nf,
           sum[2] / nf);
    rc = 0;
out:
    for (size_t i = 0; i < n; i++) {
        free(items[i].id);
        free(items[i].text);
        free(items[i].lang);
        free(items[i].fold);
    }
    free(items);
    return rc;
}
