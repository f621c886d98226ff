/*
 * calibrate.c - Platt scaling of each head's naive-Bayes log-odds.
 *
 * Naive Bayes sums evidence as if features were independent, so its
 * log-odds are far too confident.  Each head keeps a reservoir sample of
 * its training examples (their feature keys); calibration scores every
 * sampled example with its own counts left out (exact leave-one-out for
 * naive Bayes), then fits p = 1 / (1 + exp(-(a * raw + b))) to those
 * out-of-sample scores by Newton's method on the log loss, with Platt's
 * smoothed targets.  A configured prior later shifts b by the difference
 * of log-odds between the prior and the sample's base rate.
 */
#include <math.h>
#include <stdlib.h>

#include "model.h"

#define ECE_BINS 10

/* Log loss of (a, b) against the smoothed targets, computed stably. */
static double
platt_loss(const double *raw, const uint8_t *y, size_t n, double tpos,
           double tneg, double a, double b)
{
    double loss = 0;
    for (size_t i = 0; i < n; i++) {
        double t = y[i] ? tpos : tneg, z = a * raw[i] + b;
        /* -t log p - (1-t) log(1-p), with p = 1 / (1 + exp(-z)) */
        loss += z >= 0 ? (1 - t) * z + log1p(exp(-z)) : -t * z + log1p(exp(z));
    }
    return loss;
}

/* Newton's method with backtracking (Lin, Lin and Weng's formulation of
 * Platt scaling), so that a nearly separable sample cannot diverge. */
static void
platt_fit(const double *raw, const uint8_t *y, size_t n, double *pa, double *pb)
{
    size_t npos = 0;
    for (size_t i = 0; i < n; i++)
        npos += y[i];
    double tpos = (npos + 1.0) / (npos + 2.0);
    double tneg = 1.0 / (n - npos + 2.0);
    double a = 0, b = log((npos + 1.0) / (n - npos + 1.0));
    double loss = platt_loss(raw, y, n, tpos, tneg, a, b);
    for (int it = 0; it < 100; it++) {
        double ga = 0, gb = 0, haa = 1e-12, hab = 0, hbb = 1e-12;
        for (size_t i = 0; i < n; i++) {
            double t = y[i] ? tpos : tneg;
            double p = 1.0 / (1.0 + exp(-(a * raw[i] + b)));
            double d = p - t, w = p * (1 - p);
            ga += d * raw[i];
            gb += d;
            haa += w * raw[i] * raw[i];
            hab += w * raw[i];
            hbb += w;
        }
        if (fabs(ga) < 1e-6 && fabs(gb) < 1e-6)
            break;
        double det = haa * hbb - hab * hab;
        if (!(det > 0))
            break;
        double da = -(hbb * ga - hab * gb) / det;
        double db = -(haa * gb - hab * ga) / det;
        double gd = ga * da + gb * db, step = 1;
        while (step >= 1e-10) {
            double na = a + step * da, nb = b + step * db;
            double nl = platt_loss(raw, y, n, tpos, tneg, na, nb);
            if (nl < loss + 1e-4 * step * gd) {
                a = na;
                b = nb;
                loss = nl;
                break;
            }
            step /= 2;
        }
        if (step < 1e-10)
            break;
    }
    *pa = a;
    *pb = b;
}

static double
ece(const double *p, const uint8_t *y, size_t n)
{
    double sum_p[ECE_BINS] = {0}, sum_y[ECE_BINS] = {0};
    size_t cnt[ECE_BINS] = {0};
    for (size_t i = 0; i < n; i++) {
        int b = (int)(p[i] * ECE_BINS);
        b = b < 0 ? 0 : b >= ECE_BINS ? ECE_BINS - 1 : b;
        sum_p[b] += p[i];
        sum_y[b] += y[i];
        cnt[b]++;
    }
    double e = 0;
    for (int b = 0; b < ECE_BINS; b++)
        if (cnt[b])
            e += fabs(sum_p[b] - sum_y[b]) / (double)n;
    return e;
}

/* Fit part p to the sampled examples whose language is li (li < 0: all).
 * Leaves p uncalibrated when the sample has fewer than min_class examples
 * of either class. */
static void
fit_part(struct head_part *p, const double *raw, const uint8_t *y,
         const uint8_t *lang, size_t n, int li, size_t min_class, double *xs,
         uint8_t *ys)
{
    size_t k = 0, npos = 0;
    for (size_t i = 0; i < n; i++) {
        if (li >= 0 && lang[i] != li)
            continue;
        xs[k] = raw[i];
        ys[k++] = y[i];
        npos += y[i];
    }
    p->calibrated = 0;
    if (npos < min_class || k - npos < min_class)
        return;
    platt_fit(xs, ys, k, &p->cal_a, &p->cal_b);
    p->cal_rate = (double)npos / k;
    p->calibrated = 1;
}

int
model_fit_head(struct clf_model *m, unsigned h)
{
    struct head *hd = &m->heads[h];
    size_t n = hd->n_res;
    double *raw = malloc((n ? n : 1) * sizeof *raw);
    double *xs = malloc((n ? n : 1) * sizeof *xs);
    uint8_t *y = malloc(n ? n : 1), *ys = malloc(n ? n : 1);
    uint8_t *lang = malloc(n ? n : 1);
    int rc = -1;
    if (!raw || !xs || !y || !ys || !lang)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const struct res_example *e = &hd->res[i];
        unsigned known;
        raw[i] =
            model_raw_score(m, h, e->lang, e->keys, e->n, e->value, &known);
        y[i] = e->value;
        lang[i] = e->lang;
    }
    fit_part(&hd->all, raw, y, lang, n, -1, 1, xs, ys);
    if (!hd->all.calibrated) {
        /* Nothing to fit (one class, or none): the features say nothing
         * trustworthy (with one class every weight leans its way), so the
         * score is the smoothed base rate, or the prior when one is set;
         * the head is unsure anyway. */
        double rate =
            (hd->all.docs[1] + 1.0) / (hd->all.docs[0] + hd->all.docs[1] + 2.0);
        hd->all.cal_a = 0;
        hd->all.cal_b = log(rate / (1 - rate));
        hd->all.cal_rate = rate;
    }
    for (unsigned li = 0; li < m->settings.n_languages; li++)
        fit_part(&hd->lang[li], raw, y, lang, n, (int)li, PART_MIN_FIT, xs, ys);
    /* Calibration error of what scoring will use, over the whole sample. */
    for (size_t i = 0; i < n; i++) {
        const struct head_part *p = head_calibration(hd, lang[i]);
        xs[i] = 1.0 / (1.0 + exp(-(p->cal_a * raw[i] + p->cal_b)));
    }
    hd->ece = hd->all.calibrated ? ece(xs, y, n) : NAN;
    rc = 0;
out:
    free(raw);
    free(xs);
    free(y);
    free(ys);
    free(lang);
    return rc;
}

enum clf_status
clf_model_calibrate(struct clf_model *m, struct clf_error *err)
{
    if (m->scoring_only)
        return model_fail(err, CLF_EINVAL,
                          "a scoring copy has no calibration sample");
    for (unsigned h = 0; h < m->n_labels; h++) {
        if (model_fit_head(m, h) < 0)
            return model_fail(err, CLF_ENOMEM, "out of memory");
    }
    return CLF_OK;
}
