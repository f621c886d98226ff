/*
 * export.c - `modfilter export`: the learned model of a daemon, as a model
 * file another daemon (or `score`) can start from.
 *
 * A daemon snapshots what it learned into model.state_dir as
 * learned-<base id>-<last event id>.mfm (daemon/learn.c).  Export takes the
 * newest snapshot (of one base, with --base), checks that it loads, and
 * writes it atomically to --model; the copy keeps the id of the last
 * training event it includes, so a daemon started from it replays only the
 * events after that.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* "learned-<16 hex>-<ms>-<seq>.mfm" into its base id and event id. */
static int
snapshot_name(const char *name, char base[17], uint64_t *ms, uint64_t *seq)
{
    int end = 0;
    if (sscanf(name, "learned-%16[0-9a-f]-%" SCNu64 "-%" SCNu64 ".mfm%n", base,
               ms, seq, &end) != 3 ||
        name[end] != '\0' || strlen(base) != 16)
        return -1;
    return 0;
}

const char cli_usage_export[] = "usage: modfilter export --state-dir DIR "
                                "[--base BASE.mfm] --model OUT.mfm\n";

int
cmd_export(int argc, char **argv)
{
    const char *dir = NULL, *out = NULL, *base_path = NULL;
    char best[512] = "", want[17] = "";
    uint64_t best_ms = 0, best_seq = 0;
    struct clf_model *m = NULL;
    struct clf_error err;
    int rc = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--state-dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--model") && i + 1 < argc)
            out = argv[++i];
        else if (!strcmp(argv[i], "--base") && i + 1 < argc)
            base_path = argv[++i];
        else
            dir = out = NULL, i = argc;
    }
    if (!dir || !out) {
        fputs(cli_usage_export, stderr);
        return EXIT_USAGE;
    }
    if (base_path) {
        if (clf_model_load_scoring(base_path, &m, &err)) {
            fprintf(stderr, "modfilter: %s\n", err.msg);
            return 1;
        }
        snprintf(want, sizeof want, "%s", clf_model_id(m));
        clf_model_free(m);
        m = NULL;
    }
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "modfilter: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        char base[17];
        uint64_t ms, seq;
        if (snapshot_name(e->d_name, base, &ms, &seq) < 0 ||
            (want[0] && strcmp(base, want)))
            continue;
        if (best[0] && (ms < best_ms || (ms == best_ms && seq <= best_seq)))
            continue;
        best_ms = ms;
        best_seq = seq;
        snprintf(best, sizeof best, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (!best[0]) {
        fprintf(stderr, "modfilter: %s: no learned-*.mfm snapshot%s%s\n", dir,
                want[0] ? " of base " : "", want);
        return 1;
    }
    if (clf_model_load(best, &m, &err) || clf_model_save(m, out, &err)) {
        fprintf(stderr, "modfilter: %s\n", err.msg);
        goto out;
    }
    fprintf(stderr, "%s: from %s (training events up to %s)\n", out, best,
            clf_model_event_id(m));
    rc = 0;
out:
    clf_model_free(m);
    return rc;
}
