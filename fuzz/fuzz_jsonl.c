/* libFuzzer target: JSON Lines training and scoring files (cli/jsonl.c),
 * read through a memory file as `modfilter train`, `score` and `eval`
 * read theirs.  Every record the reader accepts must hold a text of the
 * length it states and labels with valid values; each is learned into a
 * small model (or forgotten, per the first byte) and scored, and every
 * score must be a probability. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct clf_model *model;
static struct clf_scorer *scorer;
static unsigned runs;
static int fd = -1;
static char path[64];

static void
check_record(const struct record *rec)
{
    if (rec->text == NULL || strlen(rec->text) != rec->text_len ||
        rec->n_labels > CLF_MAX_LABELS)
        FUZZ_FAIL("a record's text or label count");
    for (unsigned k = 0; k < rec->n_labels; k++)
        if ((rec->values[k] != 0 && rec->values[k] != 1) ||
            strnlen(rec->labels[k], CLF_LABEL_MAX) == CLF_LABEL_MAX)
            FUZZ_FAIL("a label");
}

static void
check_scores(const struct record *rec)
{
    struct clf_result r;

    if (clf_score(scorer, model, rec->text, rec->text_len, rec->lang, 1, &r) !=
        CLF_OK)
        return; /* out of memory */
    for (unsigned h = 0; h < r.n_labels; h++)
        if (!(r.labels[h].score >= 0 && r.labels[h].score <= 1)) {
            fprintf(stderr, "fuzz_jsonl: head %s score %g\n", r.labels[h].label,
                    r.labels[h].score);
            FUZZ_FAIL("a score outside [0, 1]");
        }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct clf_settings s;
    struct jsonl *j;
    struct record rec;
    char err[512];
    int forget, r;

    if (size == 0)
        return 0;
    if (fd < 0) {
        fd = memfd_create("jsonl", 0);
        if (fd < 0)
            FUZZ_FAIL("memfd_create");
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        scorer = clf_scorer_new();
    }
    /* a fresh model now and then: learning only grows it */
    if (model == NULL || ++runs % 2000 == 0) {
        clf_model_free(model);
        clf_settings_init(&s);
        model = clf_model_new(&s);
    }
    if (model == NULL || scorer == NULL)
        return 0;
    forget = data[0] & 1;
    if (ftruncate(fd, 0) < 0 ||
        pwrite(fd, data + 1, size - 1, 0) != (ssize_t)(size - 1))
        FUZZ_FAIL("writing the memory file");
    j = jsonl_open(path);
    if (j == NULL)
        FUZZ_FAIL("jsonl_open");
    while ((r = jsonl_next(j, &rec, err, sizeof err)) != 0) {
        if (r == -2)
            FUZZ_FAIL("a read error on a memory file");
        if (r < 0) {
            if (strncmp(err, path, strlen(path)) != 0)
                FUZZ_FAIL("an error not as file:line: reason");
            continue;
        }
        check_record(&rec);
        for (unsigned k = 0; k < rec.n_labels; k++) {
            struct clf_error e;
            enum clf_learn_outcome out;

            (forget ? clf_unlearn : clf_learn)(
                scorer, model, rec.text, rec.text_len, rec.lang, rec.labels[k],
                rec.values[k], &out, &e);
        }
        check_scores(&rec);
    }
    jsonl_close(j);
    return 0;
}
