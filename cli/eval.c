/*
 * eval.c - `modfilter eval`: cross-validated accuracy of one label.
 *
 * For each test fold of a folds file (`id<TAB>fold`; the fold "train" is
 * never a test fold): train a fresh model on the other folds' records,
 * calibrate it as `train` would, score the held-out records, and print ROC
 * AUC, accuracy and F1 (score >= 0.5 is positive) per fold and their mean:
 * the figures ../shared/tools/evalcli.py computes through train and score.
 * Like evalcli: the records' "lang" is not used (neither to train nor to
 * score), a fold trains in folds-file order (an id at its first line there,
 * in the fold of its last line), a data id seen twice is its last record.
 * Folds-file ids that no record with the label has are left out, with a
 * warning (evalcli stops on them).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

struct item {
    char *id, *text, *fold;
    size_t len, pos; /* pos: first line in the folds file */
    int y;
    double score;
};

struct fold_row {
    size_t n;
    double auc, acc, f1;
};

static int
cmp_id(const void *a, const void *b)
{
    return strcmp(((const struct item *)a)->id, ((const struct item *)b)->id);
}

/* By id, then the later record first (the one a duplicated id keeps). */
static int
cmp_id_last(const void *a, const void *b)
{
    const struct item *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->pos < y->pos) - (x->pos > y->pos);
}

static int
cmp_pos(const void *a, const void *b)
{
    size_t x = (*(struct item *const *)a)->pos;
    size_t y = (*(struct item *const *)b)->pos;
    return (x > y) - (x < y);
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
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
        if (r > 0 && !rec.id)
            r = jsonl_error(j, msg, sizeof msg, "a record without an id");
        if (r < 0) {
            fprintf(stderr, "%s\n", msg);
            if (strict || r == -2)
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
                            .len = rec.text_len,
                            .pos = *n - 1,
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

/* Reads the folds file into the items (sorted by id, a duplicated id's
 * earlier records dropped) and returns the items with a fold in folds-file
 * order in *order (*n_order of them). */
static int
load_folds(const char *path, const char *data, const char *label,
           struct item *items, size_t *n, struct item ***order, size_t *n_order)
{
    FILE *f = fopen(path, "r");
    char *line = NULL, *first_missing = NULL;
    size_t cap = 0, lineno = 0, missing = 0, k = 0;
    ssize_t len;
    int rc = -1;
    if (!f) {
        fprintf(stderr, "modfilter: %s: %s\n", path, strerror(errno));
        return -1;
    }
    qsort(items, *n, sizeof *items, cmp_id_last);
    for (size_t i = 0; i < *n; i++) {
        if (k && !strcmp(items[k - 1].id, items[i].id)) {
            free(items[i].id);
            free(items[i].text);
            continue;
        }
        items[k] = items[i];
        items[k++].pos = SIZE_MAX;
    }
    *n = k;
    while ((len = getline(&line, &cap, f)) > 0) {
        lineno++;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        char *tab = strchr(line, '\t');
        if (!tab) {
            fprintf(stderr, "%s:%zu: expected id<TAB>fold\n", path, lineno);
            goto out;
        }
        *tab = '\0';
        if (!strcmp(line, "id") && !strcmp(tab + 1, "fold"))
            continue;
        struct item key = {.id = line};
        struct item *it = bsearch(&key, items, *n, sizeof *items, cmp_id);
        if (!it) {
            if (!missing++ && !(first_missing = strdup(line)))
                goto out;
            continue;
        }
        if (it->pos == SIZE_MAX) {
            it->pos = lineno;
            ++*n_order;
        }
        free(it->fold);
        if (!(it->fold = strdup(tab + 1)))
            goto out;
    }
    if (missing)
        fprintf(stderr,
                "modfilter: warning: %s: %zu ids are not records of %s with "
                "label %s (the first: '%s'); left out\n",
                path, missing, data, label, first_missing);
    if (*n_order && !(*order = malloc(*n_order * sizeof **order)))
        goto out;
    k = 0;
    for (size_t i = 0; i < *n; i++)
        if (items[i].fold)
            (*order)[k++] = &items[i];
    if (k)
        qsort(*order, k, sizeof **order, cmp_pos);
    rc = 0;
out:
    fclose(f);
    free(line);
    free(first_missing);
    return rc;
}

/* items: those with a fold, in training order. */
static int
run_fold(const struct train_opts *o, const char *label, struct item **items,
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
        if (!strcmp(items[i]->fold, fold)) {
            test[nt++] = items[i];
            continue;
        }
        enum clf_learn_outcome out;
        if (clf_learn(sc, m, items[i]->text, items[i]->len, NULL, label,
                      items[i]->y, &out, &err)) {
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

const char cli_usage_eval[] = "usage: modfilter eval --folds FOLDS.tsv --label "
                              "LABEL [training options] FILE.jsonl\n"
                              "  (training options: modfilter --help)\n";

int
cmd_eval(int argc, char **argv)
{
    struct train_opts o;
    const char *folds = NULL, *label = NULL, *data = NULL;
    struct item *items = NULL, **order = NULL;
    char **names = NULL;
    size_t n = 0, n_order = 0, nf = 0;
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
        fputs(cli_usage_eval, stderr);
        return EXIT_USAGE;
    }
    if (!clf_label_valid(label, strlen(label))) {
        fprintf(stderr, "modfilter: --label: bad label name '%s' (%s)\n", label,
                LABEL_RULE);
        return EXIT_USAGE;
    }
    rc = 1;
    if (load_items(data, label, &items, &n, o.strict) < 0)
        goto out;
    if (!n) {
        fprintf(stderr, "modfilter: %s: no record carries the label %s\n", data,
                label);
        goto out;
    }
    if (load_folds(folds, data, label, items, &n, &order, &n_order) < 0)
        goto out;
    /* The test folds, sorted, as evalcli.py takes them. */
    if (n_order && !(names = malloc(n_order * sizeof *names)))
        goto out;
    for (size_t i = 0; i < n_order; i++)
        if (strcmp(order[i]->fold, "train"))
            names[nf++] = order[i]->fold;
    if (nf)
        qsort(names, nf, sizeof *names, cmp_str);
    size_t u = 0;
    for (size_t k = 0; k < nf; k++)
        if (!u || strcmp(names[u - 1], names[k]))
            names[u++] = names[k];
    nf = u;
    if (!nf) {
        fprintf(stderr, "modfilter: %s: no test folds for these records\n",
                folds);
        goto out;
    }
    double sum[3] = {0};
    for (size_t k = 0; k < nf; k++) {
        struct fold_row row;
        if (run_fold(&o, label, order, n_order, names[k], &row) < 0) {
            fprintf(stderr, "modfilter: fold %s failed\n", names[k]);
            goto out;
        }
        printf("fold %10s  n=%6zu  auc=%.4f  acc=%.4f  f1=%.4f\n", names[k],
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
        free(items[i].fold);
    }
    free(items);
    free(order);
    free(names);
    return rc;
}
