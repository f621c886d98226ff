/*
 * classifier.h - modfilter's classifier library: text in, calibrated label
 * probabilities and reasons out.
 *
 * The library knows nothing of HTTP, JSON or Redis, keeps no global state and
 * never prints or exits.  Functions that can fail return an enum clf_status
 * (CLF_OK == 0) and fill a caller-owned struct clf_error with a message.
 *
 * Objects:
 *   struct clf_model   labels, naive-Bayes heads, tokeniser settings, priors
 *                      and calibration.  Scoring reads it; learning writes it.
 *                      Concurrent readers are safe; a writer needs exclusive
 *                      access (the caller's lock).
 *   struct clf_scorer  per-thread workspace: tokeniser buffers, stemmers, stem
 *                      cache.  Never shared between threads.  Not tied to a
 *                      model: one scorer may score with any model.
 */
#ifndef MODFILTER_CLASSIFIER_H
#define MODFILTER_CLASSIFIER_H

#include <stddef.h>
#include <stdint.h>

#define CLF_MAX_LABELS 8  /* heads a model may carry */
#define CLF_LABEL_MAX 32  /* bytes of a label name, with its NUL */
#define CLF_MAX_REASONS 5 /* reasons reported per label */
#define CLF_FEATURE_NAME_MAX 80
#define CLF_LANG_MAX 24 /* "english", "spanish", ... with NUL */
#define CLF_MAX_LANGUAGES 8

enum clf_status {
    CLF_OK = 0,
    CLF_ENOMEM,   /* allocation failed */
    CLF_EIO,      /* read/write/fsync/rename failed (errno in message) */
    CLF_EFORMAT,  /* not a model file, truncated, corrupted, bad checksum */
    CLF_EVERSION, /* a model file of an unsupported version */
    CLF_EINVAL,   /* bad argument: unknown label, bad setting, ... */
    CLF_ELIMIT,   /* too many labels */
};

struct clf_error {
    char msg[256];
};

const char *clf_status_str(enum clf_status st);

/* Feature families (bit mask in clf_settings.features). */
#define CLF_FEAT_WORDS 0x01u     /* stemmed words, numbers, urls, hosts... */
#define CLF_FEAT_PAIRS 0x02u     /* adjacent word pairs */
#define CLF_FEAT_CHARGRAMS 0x04u /* character n-grams of folded words */
#define CLF_FEAT_META 0x08u      /* links, capitals, length, punctuation */
/* Character n-grams are features of the comment's language: what a head
 * learned of "_to" or "dos" from English says nothing of Spanish (words,
 * which names, loanwords and English in Spanish share, stay common). */
#define CLF_FEAT_LANGCHARS 0x10u
#define CLF_FEAT_ALL 0x1fu

/*
 * Tokeniser and feature settings.  Chosen at training time, stored in the
 * model, and used unchanged by every scorer of that model.
 */
struct clf_settings {
    char languages[CLF_MAX_LANGUAGES][CLF_LANG_MAX]; /* Snowball names */
    unsigned n_languages;
    char default_language[CLF_LANG_MAX];
    unsigned features;  /* CLF_FEAT_* */
    unsigned max_bytes; /* text beyond this is truncated, then scored */
    unsigned max_tokens;
    unsigned chargram_min, chargram_max; /* n-gram lengths in characters */
    double alpha;                        /* naive-Bayes additive smoothing */
    unsigned min_df;       /* features seen in fewer examples are ignored */
    double weights[8];     /* evidence weight per feature family: word,
                              url, email, mention, emoji, pair, chars, meta */
    unsigned min_examples; /* a head with fewer examples is unsure */
    unsigned min_known;    /* a comment with fewer known features is unsure */
};

/* Defaults: english,spanish; default english; all features; 8192 bytes;
 * 1024 tokens. */
void clf_settings_init(struct clf_settings *s);

/* Parse "english,spanish" into s->languages.  Every name must be a Snowball
 * language libstemmer knows. */
enum clf_status clf_settings_set_languages(struct clf_settings *s,
                                           const char *list,
                                           struct clf_error *err);
/* The language of comments detection cannot place: one of s->languages,
 * named as there or by a code ("es"). */
enum clf_status clf_settings_set_default_language(struct clf_settings *s,
                                                  const char *name,
                                                  struct clf_error *err);

/* ---- model ------------------------------------------------------------ */

struct clf_model;

/* A new empty model with no labels.  Labels appear as examples name them.
 * NULL on allocation failure. */
struct clf_model *clf_model_new(const struct clf_settings *s);
void clf_model_free(struct clf_model *m); /* NULL-safe */

/* Load a model file.  On success *out is malloc'd; caller frees with
 * clf_model_free.  Refuses truncated, corrupted and foreign files. */
enum clf_status clf_model_load(const char *path, struct clf_model **out,
                               struct clf_error *err);
/* The same as a scoring copy (clf_model_clone_scoring) that never holds
 * the counts: for programs that only score (modfilter score, explain),
 * faster to load and a fraction of the memory. */
enum clf_status clf_model_load_scoring(const char *path, struct clf_model **out,
                                       struct clf_error *err);

/* Refit calibration and write atomically (temp file, fsync, rename).  Every
 * counted feature is written, those seen in fewer than min_df examples too
 * (they never count when scoring): a model loaded from the file learns on
 * and unlearns exactly as m would. */
enum clf_status clf_model_save(struct clf_model *m, const char *path,
                               struct clf_error *err);

/* A deep copy (so a daemon can learn into a copy while others score). */
struct clf_model *clf_model_clone(const struct clf_model *m);
/* A copy that scores exactly as m and knows m's examples (clf_known) but
 * keeps neither the feature counts nor the calibration sample: a fraction
 * of m's memory (the daemon's workers score with one while its learner
 * keeps the whole model).  Learning, unlearning, calibrating and saving it
 * fail with CLF_EINVAL; its clones are scoring copies too. */
struct clf_model *clf_model_clone_scoring(const struct clf_model *m);

const struct clf_settings *clf_model_settings(const struct clf_model *m);
/* A short stable id: a hash of the model's contents, 16 hex chars. Borrowed;
 * valid until the model changes. */
const char *clf_model_id(const struct clf_model *m);

/* 1 when name[0, len) is a valid label name: a-z, 0-9, _ and -, 1 to
 * CLF_LABEL_MAX - 1 bytes. */
int clf_label_valid(const char *name, size_t len);
unsigned clf_model_label_count(const struct clf_model *m);
const char *clf_model_label_name(const struct clf_model *m, unsigned i);
/* Index of a label, or -1. */
int clf_model_label_index(const struct clf_model *m, const char *label);
/* Examples behind a head, per class (value 0 / value 1). */
void clf_model_label_examples(const struct clf_model *m, unsigned i,
                              uint64_t *n_neg, uint64_t *n_pos);

/* Base rate the label's calibration assumes (0 < p < 1), creating the label
 * if needed; p <= 0 restores the default (the training data's rate). */
enum clf_status clf_model_set_prior(struct clf_model *m, const char *label,
                                    double p, struct clf_error *err);
double clf_model_prior(const struct clf_model *m, unsigned i);

/* Training-event bookkeeping for the daemon: the id of the last shared
 * training event this model includes ("" if none).  Stored in the file. */
const char *clf_model_event_id(const struct clf_model *m);
void clf_model_set_event_id(struct clf_model *m, const char *id);

/* Calibration quality from the last fit: expected calibration error of the
 * out-of-sample scores (10 bins), NAN if never fitted. */
double clf_model_ece(const struct clf_model *m, unsigned i);
/* Refit every head's calibration now (clf_model_save does this too). */
enum clf_status clf_model_calibrate(struct clf_model *m, struct clf_error *err);

/* ---- scorer (per-thread workspace) ------------------------------------ */

struct clf_scorer;

struct clf_scorer *clf_scorer_new(void);     /* NULL on allocation failure */
void clf_scorer_free(struct clf_scorer *sc); /* NULL-safe */

struct clf_reason {
    char feature[CLF_FEATURE_NAME_MAX]; /* "word:stupid", "meta:links=2" */
    double weight; /* signed contribution, natural-log odds */
};

struct clf_label_result {
    const char *label; /* borrowed from the model */
    double score;      /* calibrated probability in [0,1] */
    int unsure;        /* too little evidence: verdict at least review */
    unsigned n_reasons;
    struct clf_reason reasons[CLF_MAX_REASONS];
};

struct clf_result {
    unsigned n_labels;
    struct clf_label_result labels[CLF_MAX_LABELS];
    char lang[CLF_LANG_MAX]; /* language used: ISO 639-1 code ("en"), or
                                the Snowball name where there is none */
    unsigned invalid_bytes;  /* invalid UTF-8 sequences replaced */
    int truncated;           /* text was over max_bytes or max_tokens */
};

/*
 * Score text (len bytes, need not be NUL-terminated, any bytes allowed).
 * lang_hint: NULL, or an ISO 639-1 code ("en") or Snowball name
 * ("english"); used when it names a configured language.  with_reasons: fill
 * reasons.  Does not allocate once the scorer has warmed up.
 */
enum clf_status clf_score(struct clf_scorer *sc, const struct clf_model *m,
                          const char *text, size_t len, const char *lang_hint,
                          int with_reasons, struct clf_result *out);

/* ---- learning --------------------------------------------------------- */

enum clf_learn_outcome {
    CLF_LEARNED = 0, /* counted */
    CLF_DUPLICATE,   /* same folded text and value already known */
    CLF_FORGOTTEN,   /* clf_unlearn, clf_unteach: taken back */
    CLF_UNKNOWN,     /* clf_unlearn, clf_unteach: not a known example */
};

/*
 * Learn one example for one label (value 0 or 1), creating the head if new.
 * An example is the folded text, the label and its value (DESIGN.md): the
 * same again counts nothing (CLF_DUPLICATE), though the model remembers
 * that it was taught twice (see clf_unteach).  The same text with the other
 * value is another example and counts too; clf_unlearn of one leaves the
 * other, so an undo restores the counts exactly.
 */
enum clf_status clf_learn(struct clf_scorer *sc, struct clf_model *m,
                          const char *text, size_t len, const char *lang_hint,
                          const char *label, int value,
                          enum clf_learn_outcome *outcome,
                          struct clf_error *err);

/* Forget an example learned before, however often it was taught: its
 * counts go, from its features in the language it was learned in (the
 * hint only finds the example), so that the model is the one that never
 * learned it. */
enum clf_status clf_unlearn(struct clf_scorer *sc, struct clf_model *m,
                            const char *text, size_t len, const char *lang_hint,
                            const char *label, int value,
                            enum clf_learn_outcome *outcome,
                            struct clf_error *err);
/* Take back one teaching of the example: an undo of a decision whose
 * example was also taught by another decision or an upload keeps it; the
 * counts go with the last teaching (as clf_unlearn). */
enum clf_status clf_unteach(struct clf_scorer *sc, struct clf_model *m,
                            const char *text, size_t len, const char *lang_hint,
                            const char *label, int value,
                            enum clf_learn_outcome *outcome,
                            struct clf_error *err);

/* 1 when the model has learned this example (text, label, value), else 0.
 * Reads the model only; uses the scorer as workspace. */
int clf_known(struct clf_scorer *sc, const struct clf_model *m,
              const char *text, size_t len, const char *lang_hint,
              const char *label, int value);
/* The same, and the example's identity in *id (when not NULL): two
 * examples are the same, for any model with these settings, exactly when
 * their ids are equal.  1 known, 0 not, -1 when the value is not 0 or 1 or
 * the text cannot be analysed (out of memory). */
int clf_known_id(struct clf_scorer *sc, const struct clf_model *m,
                 const char *text, size_t len, const char *lang_hint,
                 const char *label, int value, uint64_t *id);

/* ---- verdict ---------------------------------------------------------- */

enum clf_verdict { CLF_ALLOW = 0, CLF_REVIEW = 1, CLF_REJECT = 2 };

/* DESIGN.md's rule for one label: reject if score >= reject, else review if
 * score >= review or unsure, else allow. */
enum clf_verdict clf_label_verdict(double score, int unsure, double review,
                                   double reject);
const char *clf_verdict_name(enum clf_verdict v);

#endif
