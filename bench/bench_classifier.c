/*
 * bench_classifier.c - classifier throughput on one core, no I/O in the
 * timed loops.
 *
 * usage: bench_classifier [--long PASSES] MODEL.mfm DATA.jsonl...
 * Reads the texts of the JSON Lines files, then measures (CPU time of
 * PASSES passes over each set on a shared machine: the best pass and the
 * median one)
 *   - scoring the texts as they are (datasets: median under 100 bytes),
 *   - scoring 300-600-byte comments made by joining consecutive texts,
 *   - training: learning every text into a fresh model (no calibration),
 * and prints comments per second and the resident memory with the model.
 * With --long, only the joined comments: one pass to warm the caches, then
 * PASSES passes, in microseconds a comment too; under
 * `valgrind --tool=callgrind --instr-atstart=no` only those passes are
 * counted (a comparison of builds by instructions, which do not move).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "classifier.h"
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#endif

struct text {
    char *s;
    size_t len;
    char label[CLF_LABEL_MAX];
    int value;
};

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long
rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kib = atol(line + 6);
    if (f)
        fclose(f);
    return kib;
}

static size_t
load(int argc, char **argv, struct text **out)
{
    size_t n = 0, cap = 0;
    for (int i = 0; i < argc; i++) {
        FILE *f = fopen(argv[i], "r");
        char *line = NULL;
        size_t lcap = 0;
        if (!f) {
            perror(argv[i]);
            exit(1);
        }
        while (getline(&line, &lcap, f) > 0) {
            json_t *o = json_loads(line, 0, NULL);
            json_t *t = json_object_get(o, "text");
            json_t *labels = json_object_get(o, "labels");
            if (json_is_string(t)) {
                if (n == cap) {
                    cap = cap ? cap * 2 : 4096;
                    *out = realloc(*out, cap * sizeof **out);
                }
                struct text *x = &(*out)[n++];
                x->len = json_string_length(t);
                x->s = malloc(x->len + 1);
                memcpy(x->s, json_string_value(t), x->len + 1);
                const char *k;
                json_t *v;
                x->label[0] = '\0';
                json_object_foreach(labels, k, v)
                {
                    snprintf(x->label, sizeof x->label, "%s", k);
                    x->value = (int)json_integer_value(v);
                }
            }
            json_decref(o);
        }
        free(line);
        fclose(f);
    }
    return n;
}

#define PASSES 11

/* Comments per second of a set's passes: the best (the pass least
 * disturbed by the rest of the machine) and the median (the host of this
 * VM runs at two speeds for seconds at a time, one about 1.5 times the
 * other: the median says which one the passes mostly saw). */
struct rate {
    double best, median;
};

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Score t[0..n) `rounds` times (at most PASSES). */
static struct rate
score_all(struct clf_scorer *sc, const struct clf_model *m,
          const struct text *t, size_t n, size_t rounds)
{
    struct clf_result r;
    double sink = 0, rate[PASSES];
    if (rounds > PASSES)
        rounds = PASSES;
    for (size_t k = 0; k < rounds; k++) {
        double t0 = now();
        for (size_t i = 0; i < n; i++) {
            clf_score(sc, m, t[i].s, t[i].len, NULL, 0, &r);
            sink += r.labels[0].score;
        }
        rate[k] = (double)n / (now() - t0);
    }
    if (sink < 0)
        puts("");
    qsort(rate, rounds, sizeof *rate, cmp_double);
    return (struct rate){rate[rounds - 1], rate[rounds / 2]};
}

/* The whole bench: both sets, then training and calibration. */
static void
bench_all(struct clf_scorer *sc, const struct clf_model *m,
          const struct text *texts, size_t n, const struct text *joined,
          size_t nj)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += texts[i].len;
    score_all(sc, m, texts, n < 2000 ? n : 2000, 1); /* warm up */
    struct rate short_rate = score_all(sc, m, texts, n, PASSES);
    struct rate long_rate = score_all(sc, m, joined, nj, PASSES);
    printf("score, dataset texts (%zu, mean %zu bytes): %.0f comments/s "
           "(best of %d passes; median %.0f)\n",
           n, bytes / (n ? n : 1), short_rate.best, PASSES, short_rate.median);
    printf("score, 300-600-byte comments (%zu): %.0f comments/s (best of %d "
           "passes; median %.0f)\n",
           nj, long_rate.best, PASSES, long_rate.median);

    struct clf_error err;
    struct clf_model *fresh = clf_model_new(clf_model_settings(m));
    enum clf_learn_outcome out;
    double t0 = now();
    for (size_t i = 0; i < n; i++)
        if (texts[i].label[0])
            clf_learn(sc, fresh, texts[i].s, texts[i].len, NULL, texts[i].label,
                      texts[i].value, &out, &err);
    printf("train (no calibration): %.0f comments/s\n", n / (now() - t0));
    t0 = now();
    clf_model_calibrate(fresh, &err);
    printf("calibration: %.1f ms\n", (now() - t0) * 1e3);
    clf_model_free(fresh);
}

/* --long: the joined comments only, warm; callgrind counts these passes. */
static void
bench_long(struct clf_scorer *sc, const struct clf_model *m,
           const struct text *joined, size_t nj, size_t passes)
{
    score_all(sc, m, joined, nj, 1); /* warm up */
    CALLGRIND_START_INSTRUMENTATION;
    struct rate rate = score_all(sc, m, joined, nj, passes);
    CALLGRIND_STOP_INSTRUMENTATION;
    printf("score, 300-600-byte comments (%zu): %.0f comments/s, %.2f us "
           "each (best of %zu passes; median %.2f us)\n",
           nj, rate.best, 1e6 / rate.best, passes, 1e6 / rate.median);
}

int
main(int argc, char **argv)
{
    const char *prog = argv[0];
    int long_passes = 0;
    if (argc > 2 && !strcmp(argv[1], "--long")) {
        long_passes = atoi(argv[2]);
        argc -= 2;
        argv += 2;
    }
    if (argc < 3 || long_passes < 0 || long_passes > PASSES) {
        fprintf(stderr,
                "usage: %s [--long PASSES (1-%d)] MODEL.mfm DATA.jsonl...\n",
                prog, PASSES);
        return 2;
    }
    struct clf_error err;
    struct clf_model *m;
    long rss0 = rss_kib();
    double t0 = now();
    if (clf_model_load_scoring(argv[1], &m, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    long rss1 = rss_kib();
    printf("model load: %.1f ms, resident memory %.1f MiB (+%.1f MiB) "
           "(a scoring copy, as modfilter score loads it)\n",
           (now() - t0) * 1e3, rss1 / 1024.0, (rss1 - rss0) / 1024.0);
    struct clf_model *whole;
    t0 = now();
    if (clf_model_load(argv[1], &whole, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("model load, whole (with the counts a learner needs): %.1f ms, "
           "+%.1f MiB\n",
           (now() - t0) * 1e3, (rss_kib() - rss1) / 1024.0);
    clf_model_free(whole);
    struct text *texts = NULL;
    size_t n = load(argc - 2, argv + 2, &texts);

    /* 300-600-byte comments from consecutive texts */
    struct text *joined = calloc(n, sizeof *joined);
    size_t nj = 0;
    for (size_t i = 0; i < n;) {
        size_t want = 300 + (i * 7919) % 301, len = 0;
        char *s = malloc(want + 1300);
        while (i < n && len < want) {
            memcpy(s + len, texts[i].s, texts[i].len);
            len += texts[i].len;
            s[len++] = ' ';
            i++;
        }
        if (len > 600)
            len = 600;
        joined[nj].s = s;
        joined[nj++].len = len;
    }

    struct clf_scorer *sc = clf_scorer_new();
    if (long_passes > 0)
        bench_long(sc, m, joined, nj, (size_t)long_passes);
    else
        bench_all(sc, m, texts, n, joined, nj);
    clf_scorer_free(sc);
    clf_model_free(m);
    for (size_t i = 0; i < n; i++)
        free(texts[i].s);
    for (size_t i = 0; i < nj; i++)
        free(joined[i].s);
    free(texts);
    free(joined);
    return 0;
}
