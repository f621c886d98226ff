/*
 * test_classifier.c - naive-Bayes arithmetic against hand-computed values,
 * learning (idempotence, relabelling, unlearning), calibration, verdicts
 * and the model file (round trip, truncation, corruption, foreign files).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "classifier.h"
#include "model.h"

enum clf_status clf_model_parse(const void *p, size_t len, int scoring_only,
                                struct clf_model **out, struct clf_error *err);

/* Linked with --wrap=posix_memalign (Makefile): while fail_tables is set,
 * every table allocation (table_alloc) fails. */
static int fail_tables;
int __real_posix_memalign(void **p, size_t align, size_t size);
int __wrap_posix_memalign(void **p, size_t align, size_t size);
int
__wrap_posix_memalign(void **p, size_t align, size_t size)
{
    if (fail_tables)
        return ENOMEM;
    return __real_posix_memalign(p, align, size);
}

static struct clf_model *
words_model(void)
{
    struct clf_settings s;
    clf_settings_init(&s);
    s.features = CLF_FEAT_WORDS;
    s.alpha = 1.0;
    s.min_df = 1;
    s.min_examples = 0;
    s.min_known = 1;
    return clf_model_new(&s);
}

static void
learn(struct clf_scorer *sc, struct clf_model *m, const char *text,
      const char *label, int value, enum clf_learn_outcome want)
{
    struct clf_error err;
    enum clf_learn_outcome out;
    assert_int_equal(
        clf_learn(sc, m, text, strlen(text), "en", label, value, &out, &err),
        CLF_OK);
    assert_int_equal(out, want);
}

static double
raw_of(struct clf_model *m, const char *text)
{
    /* Feature keys of the text, through a scorer, then the raw sum. */
    struct clf_scorer *sc = clf_scorer_new();
    struct clf_result r;
    assert_int_equal(clf_score(sc, m, text, strlen(text), "en", 0, &r), CLF_OK);
    double p = r.labels[0].score;
    clf_scorer_free(sc);
    /* invert the calibration: z = a*raw + b */
    const struct head_part *cal = head_calibration(&m->heads[0], 0);
    double z = log(p / (1 - p));
    return (z - cal->cal_b) / cal->cal_a;
}

/* pos: "cat dog", "cat fish"; neg: "dog bird"; alpha 1.
 * T1 = 4, T0 = 2, V = 4: weight(f) = log(c1+1) - log(c0+1) + log(6/8). */
static void
test_nb_arithmetic(void **state)
{
    (void)state;
    struct clf_model *m = words_model();
    struct clf_scorer *sc = clf_scorer_new();
    learn(sc, m, "cat dog", "spam", 1, CLF_LEARNED);
    learn(sc, m, "cat fish", "spam", 1, CLF_LEARNED);
    learn(sc, m, "dog bird", "spam", 0, CLF_LEARNED);
    const struct head *hd = &m->heads[0];
    assert_int_equal(hd->all.docs[1], 2);
    assert_int_equal(hd->all.docs[0], 1);
    assert_int_equal(hd->all.total[1], 4);
    assert_int_equal(hd->all.total[0], 2);
    assert_int_equal(hd->vocab, 4);
    double base = log(6.0 / 8.0);
    double want = (log(3) - log(1) + base) + (log(2) - log(2) + base);
    assert_float_equal(raw_of(m, "cat dog"), want, 1e-6);
    /* unknown words add nothing */
    assert_float_equal(raw_of(m, "cat dog zebra"), want, 1e-6);
    want = (log(1) - log(2) + base);
    assert_float_equal(raw_of(m, "bird"), want, 1e-6);
    /* Leave-one-out of "dog bird" (the calibration sample holds it):
     * T0 = 0, bird unknown, dog c1 = 1: log 2 - log 1 + log(4/8) = 0. */
    const struct res_example *e = NULL;
    for (uint32_t i = 0; i < hd->n_res; i++)
        if (hd->res[i].value == 0)
            e = &hd->res[i];
    assert_non_null(e);
    unsigned known;
    assert_float_equal(model_raw_score(m, 0, e->lang, e->keys, e->n, 0, &known),
                       0.0, 1e-9);
    assert_int_equal(known, 1);
    clf_scorer_free(sc);
    clf_model_free(m);
}

static void
test_idempotent_relabel_unlearn(void **state)
{
    (void)state;
    struct clf_model *m = words_model();
    struct clf_scorer *sc = clf_scorer_new();
    struct clf_error err;
    enum clf_learn_outcome out;
    learn(sc, m, "buy cheap pills", "spam", 1, CLF_LEARNED);
    /* the same folded text counts once */
    learn(sc, m, "BUY   cheap pills", "spam", 1, CLF_DUPLICATE);
    assert_int_equal(m->heads[0].all.docs[1], 1);
    /* the other value is another example: both count */
    learn(sc, m, "buy cheap pills", "spam", 0, CLF_LEARNED);
    assert_int_equal(m->heads[0].all.docs[1], 1);
    assert_int_equal(m->heads[0].all.docs[0], 1);
    assert_true(clf_known(sc, m, "buy cheap pills", 15, NULL, "spam", 0));
    assert_true(clf_known(sc, m, "Buy  CHEAP pills", 16, NULL, "spam", 1));
    assert_false(clf_known(sc, m, "buy pills", 9, NULL, "spam", 1));
    assert_false(clf_known(sc, m, "buy cheap pills", 15, NULL, "abuse", 1));
    /* another label is another head */
    learn(sc, m, "buy cheap pills", "abuse", 0, CLF_LEARNED);
    assert_int_equal(clf_model_label_count(m), 2);
    /* unlearning one value leaves the other: an undo is exact */
    assert_int_equal(
        clf_unlearn(sc, m, "buy cheap pills", 15, NULL, "spam", 1, &out, &err),
        CLF_OK);
    assert_int_equal(out, CLF_FORGOTTEN);
    assert_int_equal(m->heads[0].all.docs[1], 0);
    assert_int_equal(m->heads[0].all.docs[0], 1);
    assert_int_equal(
        clf_unlearn(sc, m, "buy cheap pills", 15, NULL, "spam", 1, &out, &err),
        CLF_OK);
    assert_int_equal(out, CLF_UNKNOWN);
    assert_int_equal(
        clf_unlearn(sc, m, "buy cheap pills", 15, NULL, "spam", 0, &out, &err),
        CLF_OK);
    assert_int_equal(out, CLF_FORGOTTEN);
    assert_int_equal(m->heads[0].all.docs[0], 0);
    assert_int_equal(m->heads[0].all.total[0], 0);
    assert_int_equal(m->heads[0].vocab, 0);
    assert_int_equal(m->heads[0].n_res, 0);
    /* bad input */
    assert_int_equal(clf_learn(sc, m, "x", 1, NULL, "Bad Label", 1, &out, &err),
                     CLF_EINVAL);
    assert_int_equal(clf_learn(sc, m, "x", 1, NULL, "spam", 2, &out, &err),
                     CLF_EINVAL);
    clf_scorer_free(sc);
    clf_model_free(m);
}

/* A separable corpus: calibrated scores order correctly, ECE is small, a
 * prior shifts the scores the right way. */
static void
test_calibration_and_prior(void **state)
{
    (void)state;
    struct clf_model *m = words_model();
    struct clf_scorer *sc = clf_scorer_new();
    struct clf_error err;
    char text[128];
    for (int i = 0; i < 300; i++) {
        snprintf(text, sizeof text, "buy cheap pills now offer%d deal%d", i,
                 i % 7);
        learn(sc, m, text, "spam", 1, CLF_LEARNED);
        snprintf(text, sizeof text, "nice post about gardens topic%d day%d", i,
                 i % 5);
        learn(sc, m, text, "spam", 0, CLF_LEARNED);
    }
    assert_int_equal(clf_model_calibrate(m, &err), CLF_OK);
    assert_true(m->heads[0].all.calibrated);
    assert_true(m->heads[0].all.cal_a > 0);
    assert_true(clf_model_ece(m, 0) < 0.1);
    struct clf_result r;
    clf_score(sc, m, "cheap pills", 11, NULL, 1, &r);
    double spam = r.labels[0].score;
    assert_true(spam > 0.9);
    assert_true(r.labels[0].n_reasons > 0);
    assert_true(r.labels[0].reasons[0].weight > 0);
    assert_non_null(strstr(r.labels[0].reasons[0].feature, "word:"));
    clf_score(sc, m, "gardens post", 12, NULL, 0, &r);
    assert_true(r.labels[0].score < 0.1);
    /* a lower base rate lowers the score */
    assert_int_equal(clf_model_set_prior(m, "spam", 0.05, &err), CLF_OK);
    clf_score(sc, m, "cheap pills", 11, NULL, 0, &r);
    assert_true(r.labels[0].score < spam);
    assert_float_equal(clf_model_prior(m, 0), 0.05, 1e-12);
    clf_scorer_free(sc);
    clf_model_free(m);
}

static void
test_unsure(void **state)
{
    (void)state;
    struct clf_settings s;
    clf_settings_init(&s);
    struct clf_model *m = clf_model_new(&s);
    struct clf_scorer *sc = clf_scorer_new();
    learn(sc, m, "buy cheap pills", "spam", 1, CLF_LEARNED);
    learn(sc, m, "a nice post", "spam", 0, CLF_LEARNED);
    struct clf_result r;
    clf_score(sc, m, "buy cheap pills", 15, NULL, 0, &r);
    assert_int_equal(r.n_labels, 1);
    assert_true(r.labels[0].unsure); /* 2 of 50 examples */
    assert_true(r.labels[0].score >= 0 && r.labels[0].score <= 1);
    assert_int_equal(clf_label_verdict(0.1, 1, 0.5, 0.95), CLF_REVIEW);
    assert_int_equal(clf_label_verdict(0.1, 0, 0.5, 0.95), CLF_ALLOW);
    assert_int_equal(clf_label_verdict(0.5, 0, 0.5, 0.95), CLF_REVIEW);
    assert_int_equal(clf_label_verdict(0.95, 1, 0.5, 0.95), CLF_REJECT);
    /* A head whose every example was unlearned knows no feature: still a
     * probability, unsure (fuzz_jsonl found it NaN: log 0 - log 0 times
     * no known n-gram). */
    enum clf_learn_outcome out;
    struct clf_error err;
    learn(sc, m, "you idiot", "rude", 1, CLF_LEARNED);
    assert_int_equal(
        clf_unlearn(sc, m, "you idiot", 9, NULL, "rude", 1, &out, &err),
        CLF_OK);
    assert_int_equal(out, CLF_FORGOTTEN);
    clf_score(sc, m, "you idiot, check my channel", 27, NULL, 1, &r);
    assert_int_equal(r.n_labels, 2);
    assert_true(r.labels[1].score >= 0 && r.labels[1].score <= 1);
    assert_true(r.labels[1].unsure);
    clf_scorer_free(sc);
    clf_model_free(m);
}

/* The weight of the "chars:" reason of the first head when text is scored
 * as language lang, 0 when the head knows none of its n-grams. */
static double
chars_weight(struct clf_scorer *sc, const struct clf_model *m, const char *text,
             const char *lang)
{
    struct clf_result r;
    assert_int_equal(clf_score(sc, m, text, strlen(text), lang, 1, &r), CLF_OK);
    for (unsigned i = 0; i < r.labels[0].n_reasons; i++)
        if (!strncmp(r.labels[0].reasons[i].feature, "chars:", 6))
            return r.labels[0].reasons[i].weight;
    return 0;
}

/* With CLF_FEAT_LANGCHARS, n-grams learned from English comments say
 * nothing of a Spanish one (the YouTube-trained spam head sent 45% of the
 * MEX-A3T tweets to review on n-grams alone); without it they are shared. */
static void
test_langchars(void **state)
{
    (void)state;
    for (int per_lang = 0; per_lang <= 1; per_lang++) {
        struct clf_settings s;
        clf_settings_init(&s);
        s.features = CLF_FEAT_CHARGRAMS | (per_lang ? CLF_FEAT_LANGCHARS : 0);
        s.min_df = 1;
        struct clf_model *m = clf_model_new(&s);
        struct clf_scorer *sc = clf_scorer_new();
        struct clf_error err;
        enum clf_learn_outcome out;
        assert_int_equal(
            clf_learn(sc, m, "zorglub", 7, "en", "spam", 1, &out, &err),
            CLF_OK);
        assert_int_equal(
            clf_learn(sc, m, "blorfin", 7, "en", "spam", 0, &out, &err),
            CLF_OK);
        double en = chars_weight(sc, m, "zorglub", "en");
        double es = chars_weight(sc, m, "zorglub", "es");
        assert_true(en > 0);
        if (per_lang)
            assert_true(es == 0);
        else
            assert_float_equal(es, en, 1e-12);
        /* learnt in Spanish, known in Spanish */
        assert_int_equal(
            clf_learn(sc, m, "el zorglub", 10, "es", "spam", 1, &out, &err),
            CLF_OK);
        assert_int_equal(out, CLF_LEARNED);
        assert_true(chars_weight(sc, m, "zorglub", "es") > 0);
        clf_scorer_free(sc);
        clf_model_free(m);
    }
}

static struct clf_model *
small_trained(void)
{
    struct clf_settings s;
    clf_settings_init(&s);
    struct clf_model *m = clf_model_new(&s);
    struct clf_scorer *sc = clf_scorer_new();
    char text[128];
    for (int i = 0; i < 40; i++) {
        snprintf(text, sizeof text, "check out my channel %d http://x%d.com", i,
                 i);
        learn(sc, m, text, "spam", 1, CLF_LEARNED);
        snprintf(text, sizeof text, "lovely song number %d", i);
        learn(sc, m, text, "spam", 0, CLF_LEARNED);
        snprintf(text, sizeof text, "you idiot %d", i);
        learn(sc, m, text, "abuse", 1, CLF_LEARNED);
        snprintf(text, sizeof text, "thanks friend %d", i);
        learn(sc, m, text, "abuse", 0, CLF_LEARNED);
    }
    clf_model_set_event_id(m, "1700000000000-3");
    clf_scorer_free(sc);
    return m;
}

static unsigned char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    unsigned char *p = malloc(*len);
    assert_int_equal(fread(p, 1, *len, f), *len);
    fclose(f);
    return p;
}

static void
test_model_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/mf-test-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/m.mfm", dir);
    struct clf_model *m = small_trained(), *back = NULL;
    struct clf_error err;
    assert_int_equal(clf_model_save(m, path, &err), CLF_OK);
    assert_int_equal(clf_model_load(path, &back, &err), CLF_OK);
    assert_string_equal(clf_model_id(m), clf_model_id(back));
    assert_string_equal(clf_model_event_id(back), "1700000000000-3");
    assert_int_equal(clf_model_label_count(back), 2);
    struct clf_scorer *sc = clf_scorer_new();
    struct clf_result r1, r2;
    const char *t = "check out my channel http://x3.com you idiot";
    clf_score(sc, m, t, strlen(t), NULL, 1, &r1);
    clf_score(sc, back, t, strlen(t), NULL, 1, &r2);
    for (unsigned h = 0; h < 2; h++)
        assert_float_equal(r1.labels[h].score, r2.labels[h].score, 1e-12);
    /* back is scored from its index, m (trained here) from its counts */
    assert_true(back->six.cap && back->six.version == back->version);
    assert_int_equal(m->six.cap, 0);
    /* a clone scores the same and is independent; once it learns, its
     * index is stale and it is scored from its counts */
    struct clf_model *c = clf_model_clone(back);
    assert_non_null(c);
    assert_true(c->six.cap && c->six.version == c->version);
    clf_score(sc, c, t, strlen(t), NULL, 0, &r2);
    assert_float_equal(r1.labels[0].score, r2.labels[0].score, 1e-12);
    const char *more = "my channel has free gift cards idiot";
    enum clf_learn_outcome out;
    for (struct clf_model *x = m; x; x = x == m ? c : NULL)
        assert_int_equal(
            clf_learn(sc, x, more, strlen(more), NULL, "spam", 1, &out, &err),
            CLF_OK);
    clf_score(sc, m, t, strlen(t), NULL, 0, &r1);
    clf_score(sc, c, t, strlen(t), NULL, 0, &r2);
    assert_true(c->six.version != c->version);
    assert_float_equal(r1.labels[0].score, r2.labels[0].score, 1e-12);
    clf_model_free(c);

    size_t len;
    unsigned char *p = slurp(path, &len);
    struct clf_model *bad = NULL;
    /* every truncation is refused */
    for (size_t n = 0; n < len; n += (n < 64 ? 1 : 97)) {
        assert_int_not_equal(clf_model_parse(p, n, n & 1, &bad, &err), CLF_OK);
        assert_null(bad);
    }
    /* a flipped byte anywhere is refused; past the header it is called
     * corruption, even where the parser stops first */
    for (size_t i = 0; i < len; i += 131) {
        p[i] ^= 0x40;
        enum clf_status st = clf_model_parse(p, len, i & 1, &bad, &err);
        assert_true(st == CLF_EFORMAT || st == CLF_EVERSION);
        if (i >= 24)
            assert_non_null(strstr(err.msg, "checksum mismatch"));
        assert_null(bad);
        p[i] ^= 0x40;
    }
    assert_int_equal(clf_model_parse(p, len, 0, &bad, &err), CLF_OK);
    clf_model_free(bad);
    /* another version */
    p[8] = 9;
    assert_int_equal(clf_model_parse(p, len, 0, &bad, &err), CLF_EVERSION);
    assert_non_null(strstr(err.msg, "version"));
    /* foreign files */
    assert_int_equal(
        clf_model_parse("hello world, not a model", 24, 0, &bad, &err),
        CLF_EFORMAT);
    assert_non_null(strstr(err.msg, "not a modfilter model"));
    /* a feature family from a newer modfilter (as langchars is to older
     * ones): refused, and said so */
    m->settings.features |= 0x80000000u;
    assert_int_equal(clf_model_save(m, path, &err), CLF_OK);
    assert_int_equal(clf_model_load(path, &bad, &err), CLF_EFORMAT);
    assert_null(bad);
    assert_non_null(strstr(err.msg, "unknown feature families"));
    assert_non_null(strstr(err.msg, "newer modfilter"));
    /* the same through small windows: the parse stops early, the rest is
     * still hashed, and the reason is the parser's, not corruption */
    free(p);
    p = slurp(path, &len);
    assert_int_equal(clf_model_parse(p, len, 1, &bad, &err), CLF_EFORMAT);
    assert_non_null(strstr(err.msg, "unknown feature families"));
    assert_int_equal(clf_model_load("/nonexistent/m.mfm", &bad, &err), CLF_EIO);
    assert_int_equal(clf_model_load(dir, &bad, &err), CLF_EFORMAT);
    free(p);
    clf_scorer_free(sc);
    clf_model_free(m);
    clf_model_free(back);
    unlink(path);
    rmdir(dir);
}

/* Both heads' scores of text under a and b agree to 1e-12. */
static void
assert_same_scores(struct clf_model *a, struct clf_model *b, const char *text)
{
    struct clf_scorer *sc = clf_scorer_new();
    struct clf_result r1, r2;
    assert_int_equal(clf_score(sc, a, text, strlen(text), NULL, 1, &r1),
                     CLF_OK);
    assert_int_equal(clf_score(sc, b, text, strlen(text), NULL, 1, &r2),
                     CLF_OK);
    assert_int_equal(r1.n_labels, r2.n_labels);
    for (unsigned h = 0; h < r1.n_labels; h++) {
        assert_float_equal(r1.labels[h].score, r2.labels[h].score, 1e-12);
        assert_int_equal(r1.labels[h].n_reasons, r2.labels[h].n_reasons);
    }
    clf_scorer_free(sc);
}

/* m saved to a temporary file and loaded back, whole or as a scoring
 * copy; the file is removed. */
static struct clf_model *
round_trip(struct clf_model *m, int scoring)
{
    char dir[] = "/tmp/mf-test-XXXXXX", path[64];
    struct clf_model *back = NULL;
    struct clf_error err;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/m.mfm", dir);
    assert_int_equal(clf_model_save(m, path, &err), CLF_OK);
    assert_int_equal(scoring ? clf_model_load_scoring(path, &back, &err)
                             : clf_model_load(path, &back, &err),
                     CLF_OK);
    unlink(path);
    rmdir(dir);
    return back;
}

/* A daemon's snapshot: a model loaded from it learns on exactly as the one
 * saved.  clf_model_save once left out the features seen once (min_df 2),
 * so a restarted daemon counted such a feature from 1 when it came back
 * and scored apart from the daemons that ran on (the chaos soak's two
 * daemons differed by up to 0.04). */
static void
test_snapshot_learns_on_exactly(void **state)
{
    (void)state;
    struct clf_model *m = small_trained(), *back = round_trip(m, 0);
    struct clf_error err;
    struct clf_scorer *sc = clf_scorer_new();
    enum clf_learn_outcome out;
    char text[128];
    /* "7", "x7.com" ... were seen once: the snapshot must keep them */
    for (int i = 0; i < 10; i++) {
        snprintf(text, sizeof text, "win at channel %d http://x%d.com now", i,
                 i);
        for (struct clf_model *x = m; x; x = x == m ? back : NULL)
            assert_int_equal(clf_learn(sc, x, text, strlen(text), NULL, "spam",
                                       i % 3 != 0, &out, &err),
                             CLF_OK);
    }
    assert_int_equal(clf_model_calibrate(m, &err), CLF_OK);
    assert_int_equal(clf_model_calibrate(back, &err), CLF_OK);
    for (int i = 0; i < 10; i++) {
        snprintf(text, sizeof text, "see channel %d at http://x%d.com", i, i);
        assert_same_scores(m, back, text);
    }
    clf_scorer_free(sc);
    clf_model_free(m);
    clf_model_free(back);
}

/* Forgetting examples from a model loaded from its file gives the model
 * that never learned them (`modfilter forget --from`): the file keeps the
 * features seen once too, and an example is unlearned in the language it
 * was learned in whatever the hint says now. */
static void
test_forget_from_file_is_exact(void **state)
{
    (void)state;
    struct clf_model *without = small_trained(), *with = small_trained();
    struct clf_scorer *sc = clf_scorer_new();
    struct clf_error err;
    enum clf_learn_outcome out;
    /* seen once each; the Spanish hint changes every feature */
    const char *extra[] = {"zorblax promo http://zz.example now",
                           "the zorblax is for you and the team"};
    const char *hint[] = {NULL, "es"};
    for (int i = 0; i < 2; i++)
        assert_int_equal(clf_learn(sc, with, extra[i], strlen(extra[i]),
                                   hint[i], "spam", 1, &out, &err),
                         CLF_OK);
    struct clf_model *back = round_trip(with, 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(clf_unlearn(sc, back, extra[i], strlen(extra[i]), NULL,
                                     "spam", 1, &out, &err),
                         CLF_OK);
        assert_int_equal(out, CLF_FORGOTTEN);
    }
    assert_int_equal(back->heads[0].vocab, without->heads[0].vocab);
    assert_int_equal(back->heads[0].all.total[1],
                     without->heads[0].all.total[1]);
    assert_int_equal(clf_model_calibrate(back, &err), CLF_OK);
    assert_int_equal(clf_model_calibrate(without, &err), CLF_OK);
    assert_same_scores(back, without, "zorblax promo http://zz.example now");
    assert_same_scores(back, without, "the zorblax is for you and the team");
    assert_same_scores(back, without, "check out my channel 7");
    clf_scorer_free(sc);
    clf_model_free(without);
    clf_model_free(with);
    clf_model_free(back);
}

/* An undo takes back one teaching: an example taught twice (an upload,
 * then a decision on the same text) stays until both are taken back, and
 * survives a save and load in between. */
static void
test_unteach_counts_teachings(void **state)
{
    (void)state;
    struct clf_model *m = small_trained();
    struct clf_scorer *sc = clf_scorer_new();
    struct clf_error err;
    enum clf_learn_outcome out;
    const char *t = "cheap pills here";
    uint64_t docs = m->heads[0].all.docs[1];
    learn(sc, m, t, "spam", 1, CLF_LEARNED);
    learn(sc, m, "CHEAP  pills here", "spam", 1, CLF_DUPLICATE);
    struct clf_model *back = round_trip(m, 0);
    for (struct clf_model *x = m; x; x = x == m ? back : NULL) {
        assert_int_equal(
            clf_unteach(sc, x, t, strlen(t), "en", "spam", 1, &out, &err),
            CLF_OK);
        assert_int_equal(out, CLF_FORGOTTEN);
        assert_int_equal(x->heads[0].all.docs[1], docs + 1); /* stays */
        assert_true(clf_known(sc, x, t, strlen(t), "en", "spam", 1));
        assert_int_equal(
            clf_unteach(sc, x, t, strlen(t), "en", "spam", 1, &out, &err),
            CLF_OK);
        assert_int_equal(out, CLF_FORGOTTEN);
        assert_int_equal(x->heads[0].all.docs[1], docs);
        assert_false(clf_known(sc, x, t, strlen(t), "en", "spam", 1));
        assert_int_equal(
            clf_unteach(sc, x, t, strlen(t), "en", "spam", 1, &out, &err),
            CLF_OK);
        assert_int_equal(out, CLF_UNKNOWN);
    }
    /* clf_unlearn forgets every teaching at once */
    learn(sc, m, t, "spam", 1, CLF_LEARNED);
    learn(sc, m, t, "spam", 1, CLF_DUPLICATE);
    assert_int_equal(
        clf_unlearn(sc, m, t, strlen(t), "en", "spam", 1, &out, &err), CLF_OK);
    assert_int_equal(out, CLF_FORGOTTEN);
    assert_int_equal(m->heads[0].all.docs[1], docs);
    clf_scorer_free(sc);
    clf_model_free(m);
    clf_model_free(back);
}

/* A scoring copy scores as its model, knows its examples, and refuses to
 * learn, unlearn, calibrate or be saved; so do its clones. */
static void
test_scoring_copy(void **state)
{
    (void)state;
    struct clf_model *m = small_trained();
    struct clf_scorer *sc = clf_scorer_new();
    struct clf_error err;
    enum clf_learn_outcome out;
    assert_int_equal(clf_model_calibrate(m, &err), CLF_OK);
    learn(sc, m, "one more channel plug", "spam", 1, CLF_LEARNED); /* stale */
    struct clf_model *c = clf_model_clone_scoring(m);
    assert_non_null(c);
    struct clf_model *cc = clf_model_clone(c);
    assert_non_null(cc);
    assert_null(c->ft.slots);
    assert_null(cc->ft.slots);
    const char *texts[] = {"check out my channel 3 http://x3.com",
                           "you idiot 5", "lovely song", "one more channel"};
    for (int i = 0; i < 4; i++) {
        assert_same_scores(m, c, texts[i]);
        assert_same_scores(m, cc, texts[i]);
    }
    /* loaded as a scoring copy: the same scores, no counts */
    struct clf_model *back = round_trip(m, 0), *lc = round_trip(m, 1);
    assert_null(lc->ft.slots);
    assert_int_equal(lc->heads[0].n_res, 0);
    assert_string_equal(clf_model_id(lc), clf_model_id(back));
    for (int i = 0; i < 4; i++)
        assert_same_scores(back, lc, texts[i]);
    assert_true(clf_known(sc, lc, "you idiot 5", 11, "en", "abuse", 1));
    assert_int_equal(clf_learn(sc, lc, "x y z", 5, NULL, "spam", 1, &out, &err),
                     CLF_EINVAL);
    clf_model_free(back);
    clf_model_free(lc);
    assert_true(clf_known(sc, c, "you idiot 5", 11, "en", "abuse", 1));
    assert_int_equal(clf_learn(sc, c, "x y z", 5, NULL, "spam", 1, &out, &err),
                     CLF_EINVAL);
    assert_int_equal(
        clf_unlearn(sc, cc, "you idiot 5", 11, "en", "abuse", 1, &out, &err),
        CLF_EINVAL);
    assert_int_equal(clf_model_calibrate(c, &err), CLF_EINVAL);
    assert_int_equal(clf_model_save(c, "/tmp/mf-never.mfm", &err), CLF_EINVAL);
    assert_int_equal(access("/tmp/mf-never.mfm", F_OK), -1);
    clf_scorer_free(sc);
    clf_model_free(m);
    clf_model_free(c);
    clf_model_free(cc);
}

/* A head that learned one class only has nothing to calibrate: it scores
 * its prior (or the smoothed rate of its data), unsure, whatever the text;
 * its raw log-odds had made every comment 1.0 and reject. */
static void
test_one_class_head(void **state)
{
    (void)state;
    struct clf_settings s;
    clf_settings_init(&s);
    struct clf_model *m = clf_model_new(&s);
    struct clf_scorer *sc = clf_scorer_new();
    struct clf_error err;
    struct clf_result r;
    char text[64];
    for (int i = 0; i < 60; i++) {
        snprintf(text, sizeof text, "buy pills number %d now", i);
        learn(sc, m, text, "spam", 1, CLF_LEARNED);
    }
    assert_int_equal(clf_model_calibrate(m, &err), CLF_OK);
    const char *t = "buy pills number 7 now";
    assert_int_equal(clf_score(sc, m, t, strlen(t), NULL, 1, &r), CLF_OK);
    assert_float_equal(r.labels[0].score, 61.0 / 62.0, 1e-9);
    assert_true(r.labels[0].unsure);
    assert_int_equal(clf_model_set_prior(m, "spam", 0.1, &err), CLF_OK);
    assert_int_equal(clf_score(sc, m, t, strlen(t), NULL, 1, &r), CLF_OK);
    assert_float_equal(r.labels[0].score, 0.1, 1e-9);
    assert_true(r.labels[0].unsure);
    clf_scorer_free(sc);
    clf_model_free(m);
}

/* A comment with nothing to read (empty, blanks, invisible characters)
 * leaves every head unsure: its meta features alone (every trained head
 * knows meta:len) made min_known before. */
static void
test_empty_comment_unsure(void **state)
{
    (void)state;
    struct clf_model *m = small_trained();
    struct clf_scorer *sc = clf_scorer_new();
    struct clf_error err;
    struct clf_result r;
    assert_int_equal(clf_model_calibrate(m, &err), CLF_OK);
    const char *empty[] = {"", "   \n\t", "\xe2\x80\x8b\xe2\x80\x8b"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(
            clf_score(sc, m, empty[i], strlen(empty[i]), NULL, 0, &r), CLF_OK);
        for (unsigned h = 0; h < r.n_labels; h++)
            assert_true(r.labels[h].unsure);
    }
    const char *t = "check out my channel 3 http://x3.com";
    assert_int_equal(clf_score(sc, m, t, strlen(t), NULL, 0, &r), CLF_OK);
    assert_false(r.labels[0].unsure);
    clf_scorer_free(sc);
    clf_model_free(m);
}

static void
test_settings(void **state)
{
    (void)state;
    struct clf_settings s;
    struct clf_error err;
    clf_settings_init(&s);
    assert_int_equal(clf_settings_set_languages(&s, "spanish,french", &err),
                     CLF_OK);
    assert_int_equal(s.n_languages, 2);
    assert_string_equal(s.default_language, "spanish");
    assert_int_equal(clf_settings_set_languages(&s, "klingon", &err),
                     CLF_EINVAL);
    assert_int_equal(clf_settings_set_languages(&s, "", &err), CLF_EINVAL);
    assert_int_equal(clf_settings_set_languages(&s, "english,,x", &err),
                     CLF_EINVAL);
    assert_string_equal(clf_verdict_name(CLF_REJECT), "reject");
}

/* Over-long text is truncated and scored, and scoring the same text twice
 * gives the same answer (no state leaks between comments). */
/* keymatch() against a plain loop, with keys that share one 32-bit half
 * with the key looked for (SSE2 compares halves). */
static void
test_keymatch(void **state)
{
    (void)state;
    _Alignas(16) uint64_t keys[6];
    uint64_t seed = 0x9e3779b97f4a7c15u;
    for (int round = 0; round < 20000; round++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        uint64_t key = seed | 1;
        for (unsigned j = 0; j < 6; j++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            switch (seed >> 62) {
            case 0:
                keys[j] = key;
                break;
            case 1: /* the same low half */
                keys[j] = (key & 0xffffffffu) |
                          (seed << 32 ^ key << 32 ^ (uint64_t)1 << 40);
                break;
            case 2: /* the same high half */
                keys[j] = (key & ~(uint64_t)0xffffffffu) |
                          ((uint32_t)key ^ (uint32_t)(seed | 4));
                break;
            default:
                keys[j] = seed >> 1;
            }
        }
        for (unsigned n = 2; n <= 6; n += 2) {
            unsigned want = 0;
            for (unsigned j = 0; j < n; j++)
                want |= (unsigned)(keys[j] == key) << 2 * j;
            assert_int_equal(keymatch(keys, n, key), want);
        }
    }
}

/* "qa" + i in base 26, three words: a distinct example for every i. */
static size_t
distinct_text(unsigned i, char *text)
{
    size_t len = 0;

    for (unsigned w = 0; w < 3; w++) {
        unsigned v = i * (2 * w + 1) + w * 7919;
        text[len++] = 'q';
        do {
            text[len++] = (char)('a' + v % 26);
            v /= 26;
        } while (v);
        text[len++] = ' ';
    }
    return len;
}

static int
cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a;
    uintptr_t y = (uintptr_t) * (void *const *)b;

    return x < y ? -1 : x > y;
}

/* Every live reservoir entry owns its own keys. */
static void
assert_reservoir_owns(const struct head *hd)
{
    static void *keys[RESERVOIR_MAX];

    assert_true(hd->n_res <= RESERVOIR_MAX);
    for (uint32_t i = 0; i < hd->n_res; i++)
        keys[i] = hd->res[i].keys;
    qsort(keys, hd->n_res, sizeof keys[0], cmp_ptr);
    for (uint32_t i = 1; i < hd->n_res; i++)
        assert_ptr_not_equal(keys[i - 1], keys[i]);
}

/* Unlearning leaves the reservoir room at its end; later examples that
 * draw a slot past the live entries (once more were seen than it holds)
 * must fill it, not count a stale entry: one reservoir_remove moved
 * away (its keys now another entry's) or freed.  That entry was then
 * freed twice (the daemon's learner aborted at shutdown in
 * clf_model_free: "double free or corruption"). */
static void
test_reservoir_after_unlearn(void **state)
{
    (void)state;
    struct clf_model *m = words_model();
    struct clf_scorer *sc = clf_scorer_new();
    const struct head *hd;
    struct clf_error err;
    enum clf_learn_outcome out;
    char text[64];
    size_t len;
    unsigned i;

    for (i = 0; i < RESERVOIR_MAX; i++) {
        len = distinct_text(i, text);
        assert_int_equal(
            clf_learn(sc, m, text, len, "en", "spam", i & 1, &out, &err),
            CLF_OK);
        assert_int_equal(out, CLF_LEARNED);
    }
    hd = &m->heads[0];
    assert_int_equal(hd->n_res, RESERVOIR_MAX);
    for (i = 0; i < RESERVOIR_MAX; i += 4) { /* undo a quarter */
        len = distinct_text(i, text);
        assert_int_equal(
            clf_unlearn(sc, m, text, len, "en", "spam", i & 1, &out, &err),
            CLF_OK);
        assert_int_equal(out, CLF_FORGOTTEN);
    }
    assert_int_equal(hd->n_res, RESERVOIR_MAX * 3 / 4);
    for (i = RESERVOIR_MAX; i < RESERVOIR_MAX + 300; i++) {
        len = distinct_text(i, text);
        assert_int_equal(
            clf_learn(sc, m, text, len, "en", "spam", i & 1, &out, &err),
            CLF_OK);
        assert_reservoir_owns(hd);
    }
    assert_true(hd->n_res > RESERVOIR_MAX * 3 / 4); /* room was filled */
    clf_model_free(m); /* each entry's keys freed once */
    clf_scorer_free(sc);
}

/* An example that runs out of memory half-way through its features
 * leaves the model as it was: before, the rollback also took a count from
 * the features it never reached (counted by other examples) and from the
 * head's documents and totals, which the failed add had not touched. */
static void
test_learn_out_of_memory_rolls_back(void **state)
{
    (void)state;
    struct clf_model *m = words_model();
    struct clf_scorer *sc = clf_scorer_new();
    struct clf_result before, after;
    struct clf_error err;
    enum clf_learn_outcome out;
    const char *probe = "cat dog bird";
    size_t cap = 64 * 1024, len = 0;
    char *text = malloc(cap);

    assert_non_null(text);
    learn(sc, m, "cat dog", "spam", 1, CLF_LEARNED);
    learn(sc, m, "dog bird", "spam", 0, CLF_LEARNED);
    struct head h0 = m->heads[0];
    clf_score(sc, m, probe, strlen(probe), "en", 0, &before);
    /* new words first, so that the table must grow, then known ones */
    for (unsigned i = 0; i < 3000; i++)
        len += (size_t)snprintf(text + len, cap - len, "zq%ux ", i);
    len += (size_t)snprintf(text + len, cap - len, "cat dog bird");
    fail_tables = 1;
    enum clf_status st =
        clf_learn(sc, m, text, len, "en", "spam", 1, &out, &err);
    fail_tables = 0;
    assert_int_equal(st, CLF_ENOMEM);
    const struct head *hd = &m->heads[0];
    assert_int_equal(hd->all.docs[0], h0.all.docs[0]);
    assert_int_equal(hd->all.docs[1], h0.all.docs[1]);
    assert_int_equal(hd->all.total[1], h0.all.total[1]);
    assert_int_equal(hd->vocab, h0.vocab);
    clf_score(sc, m, probe, strlen(probe), "en", 0, &after);
    assert_float_equal(after.labels[0].score, before.labels[0].score, 1e-12);
    /* and it can still learn that example once memory is back */
    assert_int_equal(clf_learn(sc, m, text, len, "en", "spam", 1, &out, &err),
                     CLF_OK);
    assert_int_equal(out, CLF_LEARNED);
    assert_int_equal(hd->all.docs[1], h0.all.docs[1] + 1);
    free(text);
    clf_model_free(m);
    clf_scorer_free(sc);
}

/* A file whose head says fewer examples were offered than it keeps (or
 * the counter's maximum) is refused: learning into it drew a slot past
 * the full sample (heap overflow) or took a modulus of 0.  The checksum
 * is no defence: anyone can write a file that passes it. */
static void
test_reservoir_counter_checked(void **state)
{
    (void)state;
    static const uint64_t bad[] = {0, RESERVOIR_MAX - 1, UINT64_MAX};
    char dir[] = "/tmp/mf-test-XXXXXX", path[64], text[64];
    struct clf_model *m = words_model(), *back = NULL;
    struct clf_scorer *sc = clf_scorer_new();
    struct clf_error err;
    enum clf_learn_outcome out;
    size_t len;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/m.mfm", dir);
    for (unsigned i = 0; i < RESERVOIR_MAX; i++) {
        len = distinct_text(i, text);
        assert_int_equal(
            clf_learn(sc, m, text, len, "en", "spam", i & 1, &out, &err),
            CLF_OK);
    }
    for (unsigned k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        m->heads[0].seen = bad[k];
        assert_int_equal(clf_model_save(m, path, &err), CLF_OK);
        assert_int_not_equal(clf_model_load(path, &back, &err), CLF_OK);
        assert_non_null(strstr(err.msg, "calibration sample count"));
    }
    m->heads[0].seen = RESERVOIR_MAX; /* as learned: loads and learns */
    assert_int_equal(clf_model_save(m, path, &err), CLF_OK);
    assert_int_equal(clf_model_load(path, &back, &err), CLF_OK);
    len = distinct_text(RESERVOIR_MAX, text);
    assert_int_equal(
        clf_learn(sc, back, text, len, "en", "spam", 1, &out, &err), CLF_OK);
    assert_int_equal(back->heads[0].n_res, RESERVOIR_MAX);
    clf_model_free(back);
    clf_model_free(m);
    clf_scorer_free(sc);
    unlink(path);
    rmdir(dir);
}

/* A snapshot written before that fix may hold an example twice (each with
 * its own keys once loaded): unlearning it removes both. */
static void
test_reservoir_twin_unlearned(void **state)
{
    (void)state;
    struct clf_model *m = words_model();
    struct clf_scorer *sc = clf_scorer_new();
    struct head *hd;
    struct clf_error err;
    enum clf_learn_outcome out;
    char text[64];
    size_t len;

    for (unsigned i = 0; i < 10; i++) {
        len = distinct_text(i, text);
        assert_int_equal(
            clf_learn(sc, m, text, len, "en", "spam", i & 1, &out, &err),
            CLF_OK);
    }
    hd = &m->heads[0];
    assert_int_equal(hd->n_res, 10);
    struct res_example twin = hd->res[3]; /* as a load makes it */
    twin.keys = malloc(twin.n * sizeof *twin.keys);
    assert_non_null(twin.keys);
    memcpy(twin.keys, hd->res[3].keys, twin.n * sizeof *twin.keys);
    hd->res[hd->n_res++] = twin;
    len = distinct_text(3, text);
    assert_int_equal(clf_unlearn(sc, m, text, len, "en", "spam", 1, &out, &err),
                     CLF_OK);
    assert_int_equal(out, CLF_FORGOTTEN);
    assert_int_equal(hd->n_res, 9);
    for (uint32_t i = 0; i < hd->n_res; i++)
        assert_true(hd->res[i].ex_key != twin.ex_key);
    clf_model_free(m);
    clf_scorer_free(sc);
}

/* The scoring index gives every feature the weights its counts give, in a
 * model large enough that buckets overflow into the next (a key found past
 * its home bucket), and NaN for keys it does not hold. */
static void
test_index_agrees_with_counts(void **state)
{
    (void)state;
    struct clf_model *m = words_model();
    struct clf_scorer *sc = clf_scorer_new();
    char text[64];
    struct clf_error err;
    enum clf_learn_outcome out;
    for (unsigned i = 0; i < 3000; i++) {
        size_t len = distinct_text(i, text);
        assert_int_equal(
            clf_learn(sc, m, text, len, "en", "spam", i % 3 == 0, &out, &err),
            CLF_OK);
        assert_int_equal(
            clf_learn(sc, m, text, len, "en", "abuse", i % 5 == 0, &out, &err),
            CLF_OK);
    }
    struct clf_model *c = clf_model_clone(m); /* built with its index */
    assert_non_null(c);
    assert_int_equal(c->six.version, c->version);
    size_t overflowed = 0, n_buckets = c->six.cap / SINDEX_WAYS;
    for (size_t b = 0; b < n_buckets; b++)
        overflowed += (c->six.over[b / 64] >> (b % 64)) & 1;
    assert_true(overflowed > 0);
    size_t checked = 0;
    for (size_t i = 0; i < c->ft.cap; i++) {
        const uint32_t *slot = c->ft.slots + i * c->ft.stride;
        uint64_t key = ftable_slot_key(slot);
        float want[CLF_MAX_LABELS];
        if (!key || !sindex_weights(c, key, slot, want))
            continue;
        const uint32_t *got = sindex_find(&c->six, c->n_labels, key);
        assert_memory_equal(got, want, c->n_labels * sizeof *want);
        checked++;
    }
    assert_int_equal(checked, c->ft.n);
    for (uint64_t k = 1; k < 20000; k++) {
        const uint32_t *got =
            sindex_find(&c->six, c->n_labels, k * 0x9e3779b97f4a7c15u);
        if (got != c->six.none) /* a key it holds, by chance */
            assert_non_null(ftable_find(&c->ft, k * 0x9e3779b97f4a7c15u));
    }
    clf_model_free(c);
    clf_model_free(m);
    clf_scorer_free(sc);
}

static void
test_long_text(void **state)
{
    (void)state;
    struct clf_model *m = small_trained();
    struct clf_scorer *sc = clf_scorer_new();
    size_t len = 1 << 20;
    char *big = malloc(len);
    for (size_t i = 0; i < len; i++)
        big[i] = "idiot channel "[i % 14];
    struct clf_result r1, r2;
    assert_int_equal(clf_score(sc, m, big, len, NULL, 1, &r1), CLF_OK);
    assert_true(r1.truncated);
    assert_int_equal(clf_score(sc, m, big, len, NULL, 1, &r2), CLF_OK);
    assert_float_equal(r1.labels[1].score, r2.labels[1].score, 0);
    free(big);
    clf_scorer_free(sc);
    clf_model_free(m);
}

/* After warm-up, scoring allocates nothing: the heap in use is the same
 * after 2,000 more comments of every kind. */
static void
test_no_allocation_growth(void **state)
{
    (void)state;
    struct clf_model *m = small_trained();
    struct clf_scorer *sc = clf_scorer_new();
    static const char *const texts[] = {
        "check out my channel http://bit.ly/x now!!!",
        "you IDIOT, stuuupid f*ck",
        "Muy buen artículo, gracias por compartir 😀👍🏽",
        "s p a m and i.d.i.o.t \xef\xbb\xbf and \xff\xfe invalid",
        "lovely song number 7",
    };
    char buf[256];
    struct clf_result r;
    for (int round = 0; round < 2; round++) {
        struct mallinfo2 before = mallinfo2();
        for (int i = 0; i < 2000; i++) {
            const char *t = texts[i % 5];
            snprintf(buf, sizeof buf, "%s %d", t, i % 50);
            assert_int_equal(
                clf_score(sc, m, buf, strlen(buf), NULL, i & 1, &r), CLF_OK);
        }
        struct mallinfo2 after = mallinfo2();
        if (round == 1) /* the first round warms the buffers up */
            assert_int_equal(after.uordblks, before.uordblks);
    }
    clf_scorer_free(sc);
    clf_model_free(m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nb_arithmetic),
        cmocka_unit_test(test_idempotent_relabel_unlearn),
        cmocka_unit_test(test_calibration_and_prior),
        cmocka_unit_test(test_unsure),
        cmocka_unit_test(test_langchars),
        cmocka_unit_test(test_model_file),
        cmocka_unit_test(test_snapshot_learns_on_exactly),
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_keymatch),
        cmocka_unit_test(test_index_agrees_with_counts),
        cmocka_unit_test(test_reservoir_after_unlearn),
        cmocka_unit_test(test_reservoir_counter_checked),
        cmocka_unit_test(test_learn_out_of_memory_rolls_back),
        cmocka_unit_test(test_reservoir_twin_unlearned),
        cmocka_unit_test(test_forget_from_file_is_exact),
        cmocka_unit_test(test_unteach_counts_teachings),
        cmocka_unit_test(test_scoring_copy),
        cmocka_unit_test(test_one_class_head),
        cmocka_unit_test(test_empty_comment_unsure),
        cmocka_unit_test(test_long_text),
        cmocka_unit_test(test_no_allocation_growth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
