/*
 * train.c - `modfilter train` and `modfilter forget`.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void
train_opts_init(struct train_opts *o)
{
    memset(o, 0, sizeof *o);
    clf_settings_init(&o->settings);
}

static int
parse_features(struct clf_settings *s, const char *list)
{
    static const struct {
        const char *name;
        unsigned bit;
    } fam[] = {{"words", CLF_FEAT_WORDS},
               {"pairs", CLF_FEAT_PAIRS},
               {"chars", CLF_FEAT_CHARGRAMS},
               {"meta", CLF_FEAT_META},
               {"langchars", CLF_FEAT_LANGCHARS}};
    unsigned bits = 0;
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ","), k;
        for (k = 0; k < sizeof fam / sizeof fam[0]; k++)
            if (strlen(fam[k].name) == n && !strncmp(p, fam[k].name, n))
                break;
        if (k == sizeof fam / sizeof fam[0])
            return -1;
        bits |= fam[k].bit;
        p += n + (p[n] == ',');
    }
    if (!bits)
        return -1;
    s->features = bits;
    return 0;
}

static int
parse_weights(struct clf_settings *s, const char *list)
{
    static const char *const fam[] = {"word",  "url",  "email", "mention",
                                      "emoji", "pair", "chars", "meta"};
    double w[8];
    memcpy(w, s->weights, sizeof w);
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, "="), k;
        for (k = 0; k < 8; k++)
            if (strlen(fam[k]) == n && !strncmp(p, fam[k], n))
                break;
        if (k == 8 || p[n] != '=')
            return -1;
        char *end;
        w[k] = strtod(p + n + 1, &end);
        if (end == p + n + 1 || (*end && *end != ',') || !(w[k] >= 0) ||
            w[k] > 10)
            return -1;
        p = *end ? end + 1 : end;
    }
    memcpy(s->weights, w, sizeof w);
    return 0;
}

static int
parse_uint(const char *v, unsigned lo, unsigned hi, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long x = strtoul(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return -1;
    *out = (unsigned)x;
    return 0;
}

int
train_opts_parse(struct train_opts *o, int argc, char **argv, int *i)
{
    const char *opt = argv[*i];
    struct clf_settings *s = &o->settings;
    struct clf_error err;
    if (!strcmp(opt, "--strict")) {
        o->strict = 1;
        return 1;
    }
    static const char *const with_value[] = {
        "--languages",    "--default-language", "--prior",     "--features",
        "--alpha",        "--chargrams",        "--max-bytes", "--max-tokens",
        "--min-examples", "--weights",          "--min-df"};
    size_t k;
    for (k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
        if (!strcmp(opt, with_value[k]))
            break;
    if (k == sizeof with_value / sizeof with_value[0])
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "modfilter: %s needs a value\n", opt);
        return -1;
    }
    const char *v = argv[++*i];
    if (strcmp(opt, "--prior") && !o->setting)
        o->setting = opt;
    if (!strcmp(opt, "--languages")) {
        if (clf_settings_set_languages(s, v, &err)) {
            fprintf(stderr, "modfilter: --languages: %s\n", err.msg);
            return -1;
        }
    } else if (!strcmp(opt, "--default-language")) {
        if (clf_settings_set_default_language(s, v, &err)) {
            fprintf(stderr,
                    "modfilter: --default-language must be one of "
                    "--languages (set that first): %s\n",
                    err.msg);
            return -1;
        }
    } else if (!strcmp(opt, "--prior")) {
        const char *eq = strchr(v, '=');
        char *end;
        double p = eq ? strtod(eq + 1, &end) : NAN;
        if (!eq || !clf_label_valid(v, (size_t)(eq - v)) || *end ||
            !(p > 0 && p < 1) || o->n_priors == CLF_MAX_LABELS) {
            fprintf(stderr,
                    "modfilter: --prior wants LABEL=P, 0<P<1 (LABEL: "
                    "%s)\n",
                    LABEL_RULE);
            return -1;
        }
        snprintf(o->priors[o->n_priors].label, CLF_LABEL_MAX, "%.*s",
                 (int)(eq - v), v);
        o->priors[o->n_priors++].p = p;
    } else if (!strcmp(opt, "--features")) {
        if (parse_features(s, v) < 0) {
            fprintf(stderr, "modfilter: --features wants a list of "
                            "words,pairs,chars,meta,langchars\n");
            return -1;
        }
    } else if (!strcmp(opt, "--alpha")) {
        char *end;
        s->alpha = strtod(v, &end);
        if (*end || !(s->alpha > 0 && s->alpha <= 100)) {
            fprintf(stderr, "modfilter: --alpha wants a number in (0,100]\n");
            return -1;
        }
    } else if (!strcmp(opt, "--chargrams")) {
        int end = -1;
        if (sscanf(v, "%u-%u%n", &s->chargram_min, &s->chargram_max, &end) !=
                2 ||
            end < 0 || v[end] != '\0' || s->chargram_min < 1 ||
            s->chargram_max > 8 || s->chargram_min > s->chargram_max) {
            fprintf(stderr, "modfilter: --chargrams wants MIN-MAX, 1..8\n");
            return -1;
        }
    } else if (!strcmp(opt, "--max-bytes")) {
        if (parse_uint(v, 16, 1u << 24, &s->max_bytes) < 0) {
            fprintf(stderr, "modfilter: --max-bytes wants 16..16777216\n");
            return -1;
        }
    } else if (!strcmp(opt, "--max-tokens")) {
        if (parse_uint(v, 1, 1u << 20, &s->max_tokens) < 0) {
            fprintf(stderr, "modfilter: --max-tokens wants 1..1048576\n");
            return -1;
        }
    } else if (!strcmp(opt, "--weights")) {
        if (parse_weights(s, v) < 0) {
            fprintf(stderr, "modfilter: --weights wants FAMILY=W,... with "
                            "families word,url,email,mention,emoji,pair,"
                            "chars,meta and 0<=W<=10\n");
            return -1;
        }
    } else if (!strcmp(opt, "--min-df")) {
        if (parse_uint(v, 1, 1000, &s->min_df) < 0) {
            fprintf(stderr, "modfilter: --min-df wants 1..1000\n");
            return -1;
        }
    } else if (!strcmp(opt, "--min-examples")) {
        if (parse_uint(v, 0, 1u << 30, &s->min_examples) < 0) {
            fprintf(stderr, "modfilter: --min-examples wants a count\n");
            return -1;
        }
    }
    return 1;
}

/* Why the record cannot be learned (or forgotten) as a whole, or NULL: every
 * label is checked before any is learned, so an invalid line changes
 * nothing. */
static const char *
record_problem(const struct clf_model *m, const struct record *rec, int forget,
               char *why, size_t len)
{
    unsigned added = 0;
    if (rec->n_labels == 0)
        return "a record without labels";
    /* as the daemon's /v1/train: an example with nothing to read teaches
     * only the base rate (forget still takes one back) */
    if (rec->text_len == 0 && !forget)
        return "an empty text (nothing to learn)";
    for (unsigned k = 0; k < rec->n_labels; k++) {
        if (!clf_label_valid(rec->labels[k], strlen(rec->labels[k]))) {
            snprintf(why, len, "bad label name '%s' (%s)", rec->labels[k],
                     LABEL_RULE);
            return why;
        }
        added += clf_model_label_index(m, rec->labels[k]) < 0;
    }
    if (!forget && clf_model_label_count(m) + added > CLF_MAX_LABELS) {
        snprintf(why, len, "a model has at most %d labels", CLF_MAX_LABELS);
        return why;
    }
    return NULL;
}

int
train_file(struct clf_scorer *sc, struct clf_model *m, const char *path,
           int forget, int strict, unsigned long *learned, unsigned long *dups,
           unsigned long *errors)
{
    char msg[512], why[128];
    struct record rec;
    struct jsonl *j = jsonl_open(path);
    if (!j) {
        fprintf(stderr, "modfilter: %s: %s\n", path, strerror(errno));
        return -1;
    }
    int r, rc = 0;
    while ((r = jsonl_next(j, &rec, msg, sizeof msg)) != 0) {
        const char *problem;
        if (r > 0 &&
            (problem = record_problem(m, &rec, forget, why, sizeof why)))
            r = jsonl_error(j, msg, sizeof msg, problem);
        if (r < 0) {
            fprintf(stderr, "%s\n", msg);
            ++*errors;
            if (strict || r == -2) {
                rc = -1;
                break;
            }
            continue;
        }
        for (unsigned k = 0; k < rec.n_labels; k++) {
            struct clf_error err;
            enum clf_learn_outcome out;
            enum clf_status st = (forget ? clf_unlearn : clf_learn)(
                sc, m, rec.text, rec.text_len, rec.lang, rec.labels[k],
                rec.values[k], &out, &err);
            if (st) { /* out of memory: the run stops */
                jsonl_error(j, msg, sizeof msg, err.msg);
                fprintf(stderr, "%s\n", msg);
                ++*errors;
                rc = -1;
                goto out;
            }
            if (out == CLF_LEARNED || out == CLF_FORGOTTEN)
                ++*learned;
            else
                ++*dups;
        }
    }
out:
    jsonl_close(j);
    return rc;
}

const char cli_usage_forget[] =
    "usage: modfilter forget --model OUT.mfm --from "
    "BASE.mfm [--strict] FILE.jsonl...\n";
const char cli_usage_train[] =
    "usage: modfilter train --model OUT.mfm [--from BASE.mfm] "
    "[--languages english,spanish]\n"
    "         [--default-language L] [--prior LABEL=P] "
    "[--features words,pairs,chars,meta,langchars]\n"
    "         [--alpha A] [--min-df N] [--weights FAMILY=W,...] "
    "[--chargrams MIN-MAX]\n"
    "         [--max-bytes N] [--max-tokens N] [--min-examples N] [--strict]\n"
    "         FILE.jsonl...\n";

static void
usage_train(int forget)
{
    fputs(forget ? cli_usage_forget : cli_usage_train, stderr);
}

/* Each --prior names a label with examples: setting a prior makes the
 * head, and a misspelt one (abuze) would be an empty head, unsure on
 * every comment, sending each to review wherever the model is served. */
static int
prior_labels_taught(const struct clf_model *m, const struct train_opts *o)
{
    for (unsigned k = 0; k < o->n_priors; k++) {
        int h = clf_model_label_index(m, o->priors[k].label);
        uint64_t neg = 0, pos = 0;

        if (h >= 0)
            clf_model_label_examples(m, (unsigned)h, &neg, &pos);
        if (neg + pos > 0)
            continue;
        fprintf(stderr,
                "modfilter: --prior %s: no example has this label; labels "
                "with examples:",
                o->priors[k].label);
        for (unsigned i = 0, n = 0; i < clf_model_label_count(m); i++) {
            clf_model_label_examples(m, i, &neg, &pos);
            if (neg + pos > 0)
                fprintf(stderr, "%s %s", n++ ? "," : "",
                        clf_model_label_name(m, i));
        }
        fprintf(stderr, " (nothing written)\n");
        return -1;
    }
    return 0;
}

static int
run_train(int argc, char **argv, int forget)
{
    struct train_opts o;
    const char *out = NULL, *from = NULL;
    const char **files = calloc((size_t)argc, sizeof *files);
    unsigned n_files = 0;
    struct clf_model *m = NULL;
    struct clf_scorer *sc = NULL;
    struct clf_error err;
    int rc = EXIT_USAGE;
    train_opts_init(&o);
    if (!files)
        return 1;
    for (int i = 1; i < argc; i++) {
        int t = forget ? (strcmp(argv[i], "--strict") ? 0 : (o.strict = 1))
                       : train_opts_parse(&o, argc, argv, &i);
        if (t < 0)
            goto out;
        if (t > 0)
            continue;
        if ((!strcmp(argv[i], "--model") || !strcmp(argv[i], "--from")) &&
            i + 1 >= argc) {
            fprintf(stderr, "modfilter: %s needs a value\n", argv[i]);
            goto out;
        }
        if (!strcmp(argv[i], "--model"))
            out = argv[++i];
        else if (!strcmp(argv[i], "--from"))
            from = argv[++i];
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "modfilter: unknown option %s\n", argv[i]);
            usage_train(forget);
            goto out;
        } else
            files[n_files++] = argv[i];
    }
    if (!out || !n_files || (forget && !from)) {
        usage_train(forget);
        goto out;
    }
    if (from && o.setting) {
        fprintf(stderr,
                "modfilter: %s cannot change the settings of a --from model "
                "(a model keeps the settings it was made with; --prior "
                "applies)\n",
                o.setting);
        goto out;
    }
    rc = 1;
    if (from) {
        if (clf_model_load(from, &m, &err)) {
            fprintf(stderr, "modfilter: %s\n", err.msg);
            goto out;
        }
    } else if (!(m = clf_model_new(&o.settings))) {
        fprintf(stderr, "modfilter: out of memory\n");
        goto out;
    }
    for (unsigned k = 0; k < o.n_priors; k++) {
        if (clf_model_set_prior(m, o.priors[k].label, o.priors[k].p, &err)) {
            fprintf(stderr, "modfilter: --prior: %s\n", err.msg);
            goto out;
        }
    }
    if (!(sc = clf_scorer_new())) {
        fprintf(stderr, "modfilter: out of memory\n");
        goto out;
    }
    unsigned long learned = 0, dups = 0, errors = 0;
    for (unsigned k = 0; k < n_files; k++)
        if (train_file(sc, m, files[k], forget, o.strict, &learned, &dups,
                       &errors) < 0)
            goto out;
    if (prior_labels_taught(m, &o) < 0)
        goto out;
    if (clf_model_save(m, out, &err)) {
        fprintf(stderr, "modfilter: %s\n", err.msg);
        goto out;
    }
    fprintf(stderr, "%s: %lu %s, %lu %s, %lu invalid; model id %s\n", out,
            learned, forget ? "forgotten" : "learned", dups,
            forget ? "unknown" : "duplicates", errors, clf_model_id(m));
    for (unsigned h = 0; h < clf_model_label_count(m); h++) {
        uint64_t neg, pos;
        double ece = clf_model_ece(m, h);
        char cal[48] = "no calibration (too few examples of a class)";
        if (!isnan(ece))
            snprintf(cal, sizeof cal, "calibration error %.4f", ece);
        clf_model_label_examples(m, h, &neg, &pos);
        fprintf(stderr, "  %s: %llu positive, %llu negative, prior %.3f, %s\n",
                clf_model_label_name(m, h), (unsigned long long)pos,
                (unsigned long long)neg, clf_model_prior(m, h), cal);
    }
    rc = 0;
out:
    clf_scorer_free(sc);
    clf_model_free(m);
    free(files);
    return rc;
}

int
cmd_train(int argc, char **argv)
{
    return run_train(argc, argv, 0);
}

int
cmd_forget(int argc, char **argv)
{
    return run_train(argc, argv, 1);
}
