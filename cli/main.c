/*
 * main.c - `modfilter`: train, forget, score, explain and evaluate models
 * (and, with the moderation work, drive a running daemon's queue).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "usage: modfilter COMMAND [options]\n"
    "\n"
    "  train   --model OUT.mfm [--from BASE.mfm] [--languages L,L] "
    "[--prior LABEL=P] FILE.jsonl...\n"
    "  forget  --model OUT.mfm --from BASE.mfm FILE.jsonl...\n"
    "  score   --model M.mfm [-c FILE] [--set thresholds.KEY=V] [--reasons] "
    "[FILE.jsonl | -]\n"
    "  explain --model M.mfm \"text\"\n"
    "  eval    --folds FOLDS.tsv --label LABEL FILE.jsonl\n"
    "  export  --state-dir DIR [--base BASE.mfm] --model OUT.mfm   (a daemon's "
    "learned model)\n"
    "  queue   length|list|show ID|claim N|approve ID|reject ID [--label L]|"
    "undo ID|history\n"
    "          [--url URL] [--token TOKEN] [--json]   (modfilter queue "
    "--help)\n"
    "\n"
    "Training options (train, eval): --languages, --default-language, "
    "--prior LABEL=P,\n"
    "  --features words,pairs,chars,meta,langchars, --alpha A, --min-df N,\n"
    "  --weights FAMILY=W,... (word,url,email,mention,emoji,pair,chars,meta),\n"
    "  --chargrams MIN-MAX,\n"
    "  --max-bytes N, --max-tokens N, --min-examples N, --strict.\n"
    "  With train --from only --prior and --strict: the others are the "
    "base model's.\n"
    "Invalid input lines are reported as file:line: reason on standard "
    "error and\nskipped (--strict: the run stops with exit code 1).\n"
    "\n"
    "Exit codes: 0 success; 1 failure (I/O, bad model file, invalid input "
    "under --strict);\n2 usage error.\n";

int
main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"train", cmd_train}, {"forget", cmd_forget},
                {"score", cmd_score}, {"explain", cmd_explain},
                {"eval", cmd_eval},   {"export", cmd_export},
                {"queue", cmd_queue}};
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(argv[1], cmds[i].name))
            return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "modfilter: unknown command '%s'\n%s", argv[1], usage);
    return EXIT_USAGE;
}
